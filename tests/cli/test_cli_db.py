"""``tracker db ...``: migrations through the command line, on every database."""

from __future__ import annotations

import sqlite3

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tracker import exceptions
from tracker.db import migrate
from tracker.db.store import Store, display_url
from tracker.resources import Backend
from tracker.testing.databases import ThrowawayDatabase

from .helpers import Cli, Tracked, tables_of, url_of

HEAD = migrate.script_directory().get_current_head()


def _execute(url: str, *statements: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def _empty(database: ThrowawayDatabase) -> str:
    """An empty database (a throw-away SQLite file is only a name until created)."""
    if database.dialect == "sqlite":
        assert database.url.database
        sqlite3.connect(database.url.database).close()
    return url_of(database)


def test_current_on_a_store_at_head(cli: Cli, url: str) -> None:
    run = cli("db", "current", "--json", "--database-url", url)
    assert run.code == 0, run.err
    assert run.json() == {
        "store": display_url(url),
        "current": HEAD,
        "head": HEAD,
        "known": True,
        "state": "current",
    }
    text_run = cli("db", "current", "--database-url", url)
    assert f"revision: {HEAD}" in text_run.out
    assert "state:    current" in text_run.out


def test_current_on_a_fresh_store(cli: Cli, fresh_database: ThrowawayDatabase) -> None:
    url = _empty(fresh_database)
    run = cli("db", "current", "--json", "--database-url", url)
    assert run.code == 3, run.err
    document = run.json()
    assert (document["current"], document["head"], document["state"]) == (None, HEAD, "behind")
    text_run = cli("db", "current", "--database-url", url)
    assert text_run.code == 3
    assert "revision: <none> (empty store)" in text_run.out
    assert "state:    behind" in text_run.out
    assert "tracker db upgrade" in text_run.out
    # looking did not migrate anything, not even on SQLite
    assert "alembic_version" not in tables_of(url)


def test_upgrade_downgrade_round_trip(cli: Cli, fresh_database: ThrowawayDatabase) -> None:
    url = url_of(fresh_database)
    up = cli("db", "upgrade", "--database-url", url)
    assert up.code == 0, up.err
    assert up.out.strip() == f"upgraded store {display_url(url)} from <empty> to {HEAD}"
    assert {"backends", "volumes", "snapshots", "connections"} <= tables_of(url)
    assert cli("db", "current", "--json", "--database-url", url).json()["state"] == "current"
    again = cli("db", "upgrade", "head", "--database-url", url)
    assert again.code == 0
    assert "already at" in again.out

    down = cli("db", "downgrade", "base", "--database-url", url)  # empty: nothing to lose
    assert down.code == 0, down.err
    assert down.out.strip() == f"downgraded store {display_url(url)} from {HEAD} to <empty>"
    assert not {"backends", "volumes", "snapshots", "connections"} & tables_of(url)
    assert cli("db", "current", "--json", "--database-url", url).json()["current"] is None

    up_again = cli("db", "upgrade", "--database-url", url)
    assert up_again.code == 0, up_again.err
    assert cli("db", "current", "--json", "--database-url", url).json()["state"] == "current"
    assert cli("status", "--json", "--database-url", url).json()["backends"] == []


def test_downgrade_needs_a_revision(cli: Cli, url: str) -> None:
    run = cli("db", "downgrade", "--database-url", url)
    assert run.code == 2
    assert "REVISION" in run.err


def test_upgrade_to_an_unknown_revision_fails(cli: Cli, url: str) -> None:
    run = cli("db", "upgrade", "no-such-revision", "--database-url", url)
    assert run.code == 1
    assert run.err.startswith("error: migration on ")
    assert run.err.count("\n") == 1


def test_history(cli: Cli) -> None:
    revisions = migrate.history()
    run = cli("db", "history", "--json")
    assert run.code == 0, run.err
    assert [r["revision"] for r in run.json()] == [r.revision for r in revisions]
    assert [r["head"] for r in run.json()] == [r.revision == HEAD for r in revisions]
    text_run = cli("db", "history")
    assert f"-> {HEAD} (head)" in text_run.out
    assert len(text_run.out.splitlines()) == len(revisions)


def test_check_at_head(cli: Cli, url: str) -> None:
    run = cli("db", "check", "--database-url", url)
    assert run.code == 0, run.out
    assert "matches the models" in run.out
    document = cli("db", "check", "--json", "--database-url", url).json()
    assert (document["ok"], document["differences"], document["revision"]) == (True, [], HEAD)


def test_check_reports_drift(cli: Cli, fresh_database: ThrowawayDatabase) -> None:
    url = url_of(fresh_database)
    assert cli("db", "upgrade", "--database-url", url).code == 0
    _execute(url, "CREATE TABLE stray_drift_table (id INTEGER PRIMARY KEY)")
    run = cli("db", "check", "--database-url", url)
    assert run.code == 1
    assert "drifts from the models: 1 difference" in run.out
    assert "stray_drift_table" in run.out
    document = cli("db", "check", "--json", "--database-url", url)
    assert document.code == 1
    assert document.json()["ok"] is False
    assert any("stray_drift_table" in line for line in document.json()["differences"])


def test_check_on_a_store_behind_fails(cli: Cli, fresh_database: ThrowawayDatabase) -> None:
    url = _empty(fresh_database)
    run = cli("db", "check", "--database-url", url)
    assert run.code == 1
    assert str(exceptions.SchemaOutdated(display_url(url), None, str(HEAD))) in run.err


def test_store_newer_than_the_code(cli: Cli, fresh_database: ThrowawayDatabase) -> None:
    url = url_of(fresh_database)
    assert cli("db", "upgrade", "--database-url", url).code == 0
    _execute(url, "UPDATE alembic_version SET version_num = '9999_from_the_future'")

    current = cli("db", "current", "--json", "--database-url", url)
    assert current.code == 4, current.err
    document = current.json()
    assert document["state"] == "newer than this tracker"
    assert (document["current"], document["known"]) == ("9999_from_the_future", False)
    text_run = cli("db", "current", "--database-url", url)
    assert text_run.code == 4
    assert "state:    newer than this tracker" in text_run.out

    expected = exceptions.SchemaTooNew(display_url(url), "9999_from_the_future", str(HEAD))
    status = cli("status", "--database-url", url)
    assert status.code == 1
    assert status.out == ""
    assert status.err == f"error: {expected}\n"
    assert "Traceback" not in status.err
    upgrade = cli("db", "upgrade", "--database-url", url)
    assert (upgrade.code, upgrade.err) == (1, f"error: {expected}\n")


def test_status_on_an_empty_store(cli: Cli, fresh_database: ThrowawayDatabase) -> None:
    """A read-only command gives no schema to an empty database, SQLite included."""
    url = _empty(fresh_database)
    run = cli("status", "--database-url", url)
    assert run.code == 1
    assert "run `tracker db upgrade`" in run.err
    assert run.err.count("\n") == 1
    assert tables_of(url) == set()


def test_status_on_a_store_behind_upgrades_sqlite_only(
    cli: Cli, fresh_database: ThrowawayDatabase, dialect: str
) -> None:
    """SQLite stores with a schema upgrade themselves by default; servers need `db upgrade`."""
    url = url_of(fresh_database)
    assert cli("db", "upgrade", "0001_core", "--database-url", url).code == 0
    run = cli("status", "--database-url", url)
    if dialect == "sqlite":
        assert (run.code, run.out.strip()) == (0, "(no backends tracked)")
        assert cli("db", "current", "--database-url", url).code == 0
    else:
        assert run.code == 1
        assert "run `tracker db upgrade`" in run.err
        assert run.err.count("\n") == 1
        assert cli("db", "current", "--database-url", url).code == 3


def test_current_exit_statuses_are_in_its_help(cli: Cli) -> None:
    run = cli("db", "current", "--help")
    assert run.code == 0
    text = " ".join(run.out.split())
    assert "0 current, 3 behind" in text
    assert "4 newer than this tracker" in text


def test_downgrade_that_would_lose_data_is_refused_without_yes(
    cli: Cli, url: str, tracked: Tracked
) -> None:
    before = cli("dump", "--database-url", url).json()
    run = cli("db", "downgrade", "base", "--database-url", url)
    assert run.code == 1
    assert run.out == ""
    assert run.err.count("\n") == 1
    for part in (
        "1 row of backends",
        "3 rows of volumes",
        "2 rows of snapshots",
        "2 rows of connections",
        "1 row of key_values",
        "--yes",
    ):
        assert part in run.err
    # nothing changed
    assert cli("db", "current", "--json", "--database-url", url).json()["current"] == HEAD
    assert cli("dump", "--database-url", url).json() == before

    document = cli("db", "downgrade", "base", "--json", "--database-url", url)
    assert document.code == 2  # downgrade has no --json: usage error, nothing done
    assert cli("db", "current", "--json", "--database-url", url).json()["current"] == HEAD


def test_downgrade_with_yes_drops_and_says_what(
    cli: Cli, fresh_database: ThrowawayDatabase
) -> None:
    url = url_of(fresh_database)
    assert cli("db", "upgrade", "--database-url", url).code == 0
    store = Store(url_of(fresh_database), auto_upgrade="never")
    lvm = Backend("lvm", store=store)
    lvm.create_volume(1, "a", "described")
    store.dispose()
    refused = cli("db", "downgrade", "0002_observed", "--database-url", url)
    assert refused.code == 1
    assert "1 value of volumes.description" in refused.err
    assert "1 value of volumes.bootable" in refused.err
    run = cli("db", "downgrade", "0002_observed", "--yes", "--database-url", url)
    assert run.code == 0, run.err
    assert run.out.splitlines()[0] == (
        "dropped 1 value of volumes.bootable, 1 value of volumes.description"
    )
    assert cli("db", "current", "--json", "--database-url", url).json()["current"] == (
        "0002_observed"
    )
