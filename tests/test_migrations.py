"""Alembic migrations on each database: up, down, up with data, no drift, version guards."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import func, inspect, select, table, text

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


def _row_counts(store: Store, names: set[str]) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(table(name))).scalar_one()
            for name in names
        }


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
    _track_some(store)

    # Step down one revision at a time: the rows of the first revision's
    # tables must survive every downgrade that does not remove those tables
    # (columns added later may go, with consent).
    rows = _row_counts(store, CORE_TABLES)
    revisions = [r.revision for r in migrate.history()]
    for target in reversed(revisions[:-1]):
        migrate.downgrade(store, target, allow_data_loss=True)
        assert migrate.current(store) == target
        assert _row_counts(store, CORE_TABLES) == rows
    migrate.downgrade(store, "base", allow_data_loss=True)
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


@pytest.fixture
def downgradable(store: Store) -> Iterator[Store]:
    """The shared store, brought back to head after a test that downgrades it."""
    yield store
    Backend.backends.clear()
    migrate.upgrade(store)


def test_a_downgrade_that_drops_rows_needs_consent(downgradable: Store) -> None:
    store = downgradable
    lvm = Backend("lvm", store=store, driver="LVM")
    volumes = [lvm.create_volume(1, f"v{i}", status="available") for i in range(3)]
    for volume in volumes[:2]:
        volume.create_snapshot(None)
        volume.connect({"host": "node"}, protocol="iscsi")
    before = dump(store)
    head = migrate.current(store)

    expected = {"backends": 1, "volumes": 3, "snapshots": 2, "connections": 2}
    assert migrate.planned_losses(store, "base") == expected
    with pytest.raises(exceptions.DataLossRefused) as raised:
        migrate.downgrade(store, "base")
    assert raised.value.losses == expected
    assert (raised.value.current, raised.value.target) == (head, "base")
    for part in ("3 rows of volumes", "2 rows of snapshots", "2 rows of connections"):
        assert part in str(raised.value)
    # nothing was changed
    assert migrate.current(store) == head
    assert dump(store) == before

    assert migrate.downgrade(store, "base", allow_data_loss=True) == expected
    assert migrate.current(store) is None
    assert _tables(store) == set()


def test_a_downgrade_counts_the_values_of_the_columns_it_drops(downgradable: Store) -> None:
    """Revision 0003 adds columns; nothing in the loss check names them: it is derived."""
    store = downgradable
    lvm = Backend("lvm", store=store, driver="LVM")
    described = lvm.create_volume(1, "a", "the description", True)
    lvm.create_volume(1, "b")
    head = migrate.current(store)

    losses = migrate.planned_losses(store, "0002_observed")
    assert losses == {"volumes.description": 1, "volumes.bootable": 2}
    with pytest.raises(exceptions.DataLossRefused):
        migrate.downgrade(store, "0002_observed")
    assert migrate.current(store) == head
    Backend.backends.clear()
    unchanged = Backend("lvm", store=store, driver="LVM").get_volume(described.id)
    assert (unchanged.description, unchanged.bootable) == ("the description", True)
    assert migrate.downgrade(store, "0002_observed", allow_data_loss=True) == losses
    assert migrate.current(store) == "0002_observed"
    assert _row_counts(store, {"volumes"}) == {"volumes": 2}
    migrate.upgrade(store)
    Backend.backends.clear()
    reopened = Store(store.url, auto_upgrade="never")
    kept = Backend("lvm", store=reopened, driver="LVM").get_volume(described.id)
    assert (kept.name, kept.description, kept.bootable) == ("a", None, False)


def test_a_downgrade_that_loses_nothing_needs_no_consent(downgradable: Store) -> None:
    assert migrate.planned_losses(downgradable, "base") == {}
    assert migrate.downgrade(downgradable, "base") == {}
    assert migrate.current(downgradable) is None


def test_a_newer_store_has_no_planned_losses_it_is_refused(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dfeedbeef'"))
    try:
        with pytest.raises(exceptions.SchemaTooNew):
            migrate.planned_losses(store, "base")
    finally:
        head = migrate.script_directory().get_current_head()
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :h"), {"h": head})


def test_managed_storage_connections_survive_unless_a_downgrade_is_allowed_to_drop_them(
    downgradable: Store,
) -> None:
    """Revision 0007 adds storage_connections: going below it drops the managed ones."""
    from tracker.connections.manager import StorageConnectionManager

    store = downgradable
    manager = StorageConnectionManager(store, host_name="node-1")
    manager.manage_storage_connection("iscsi://192.0.2.10/iqn.2010-10.org.x:v1", "a")
    manager.manage_storage_connection("nfs://nas.example/srv", "b")
    assert migrate.planned_losses(store, "0006_host_leases") == {"storage_connections": 2}
    with pytest.raises(exceptions.DataLossRefused):
        migrate.downgrade(store, "0006_host_leases")
    assert set(manager.get_storage_connection_list()) == {"a", "b"}
    assert migrate.downgrade(store, "0006_host_leases", allow_data_loss=True) == {
        "storage_connections": 2
    }
    assert "storage_connections" not in _tables(store)
    migrate.upgrade(store)
    assert manager.get_storage_connection_list() == {}
