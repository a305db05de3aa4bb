"""Alembic migrations on each database: up, down, up with data, no drift, version guards."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import inspect, text

from tracker import exceptions
from tracker.db import migrate
from tracker.db.models import Base
from tracker.db.store import Store
from tracker.resources import Backend
from tracker.serialization import dump
from tracker.testing.databases import ThrowawayDatabase

CORE_TABLES = {"backends", "volumes", "snapshots", "connections", "key_values"}


def _tables(store: Store) -> set[str]:
    return set(inspect(store.engine).get_table_names()) - {"alembic_version"}


def _track_some(store: Store) -> dict[str, object]:
    lvm = Backend("lvm", store=store, driver="LVM", vg="cinder")
    volume = lvm.create_volume(4, "kept", status="available", metadata={"k": "v"})
    volume.create_snapshot("snap")
    volume.connect({"host": "node"}, protocol="iscsi")
    store.set_key_value("driver-state", "{}")
    return dump(store)


def test_empty_to_head_down_to_base_and_up_again_with_data(
    fresh_database: ThrowawayDatabase,
) -> None:
    store = Store(fresh_database.url, check_schema=False)
    assert migrate.current(store) is None
    migrate.upgrade(store)
    head = migrate.script_directory().get_current_head()
    assert migrate.current(store) == head
    assert _tables(store) >= CORE_TABLES
    data = _track_some(store)

    # Step down one revision at a time: tracked intent created by the first
    # revision must survive every downgrade that does not remove its tables.
    revisions = [r.revision for r in migrate.history()]
    for target in reversed(revisions[:-1]):
        migrate.downgrade(store, target)
        assert migrate.current(store) == target
        assert dump(store) == data
    migrate.downgrade(store, "base")
    assert migrate.current(store) is None
    assert _tables(store) == set()

    migrate.upgrade(store, "head")
    Backend.backends.clear()
    again = _track_some(store)
    assert [b["name"] for b in again["backends"]] == ["lvm"]  # type: ignore[index]
    assert migrate.check(store) == []


def test_head_has_no_drift_from_the_models(store: Store) -> None:
    assert migrate.check(store) == []
    assert _tables(store) == {table.name for table in Base.metadata.sorted_tables}


def test_a_store_behind_the_code_is_refused_unless_allowed(
    fresh_database: ThrowawayDatabase,
) -> None:
    with pytest.raises(exceptions.SchemaOutdated) as raised:
        Store(fresh_database.url, auto_upgrade="never")
    assert raised.value.current is None
    assert "tracker db upgrade" in str(raised.value)
    # still empty: refusing wrote nothing
    probe = Store(fresh_database.url, check_schema=False)
    assert migrate.current(probe) is None
    assert _tables(probe) == set()

    upgraded = Store(fresh_database.url, auto_upgrade="always")
    assert migrate.schema_state(upgraded).is_current


def test_sqlite_upgrades_itself_by_default_servers_do_not(
    fresh_database: ThrowawayDatabase,
) -> None:
    if fresh_database.dialect == "sqlite":
        store = Store(fresh_database.url)
        assert migrate.schema_state(store).is_current
    else:
        with pytest.raises(exceptions.SchemaOutdated):
            Store(fresh_database.url)


def test_a_store_newer_than_the_code_is_refused(store: Store) -> None:
    _track_some(store)
    before = dump(store)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeedbeef'"))
    for auto_upgrade in ("never", "sqlite", "always"):
        with pytest.raises(exceptions.SchemaTooNew) as raised:
            Store(store.url, auto_upgrade=auto_upgrade)
        assert raised.value.current == "f00dfeedbeef"
    with pytest.raises(exceptions.SchemaTooNew):
        migrate.upgrade(store)
    with pytest.raises(exceptions.SchemaTooNew):
        migrate.downgrade(store, "base")
    head = migrate.script_directory().get_current_head()
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
    assert dump(store) == before  # nothing was touched


def test_history_lists_the_shipped_revisions_oldest_first() -> None:
    history = migrate.history()
    assert history[0].down_revision is None
    for older, newer in itertools.pairwise(history):
        assert newer.down_revision == older.revision
    assert history[-1].revision == migrate.script_directory().get_current_head()
