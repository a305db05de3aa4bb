"""Read-only commands never create a file, a directory or a schema (issue 6)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tracker.testing.databases import ThrowawayDatabase

from .helpers import Cli, tables_of, url_of

READ_ONLY = [
    ["status"],
    ["status", "--json"],
    ["db", "current"],
    ["db", "check"],
    ["db", "downgrade", "base"],
    ["host", "show", "--host-name", "node-1"],
    ["journal"],
    ["dump"],
]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_mistyped_sqlite_path_is_not_created(
    cli: Cli, tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "typo" / "tracker.sqlite"
    run = cli(*command, "--database-url", f"sqlite:///{path}")
    assert run.code == 1
    assert run.out == ""
    assert str(path) in run.err
    assert "does not exist" in run.err
    assert "`tracker db upgrade`" in run.err
    assert run.err.count("\n") == 1
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_an_empty_database_is_given_no_schema(
    cli: Cli, fresh_database: ThrowawayDatabase, command: list[str]
) -> None:
    if fresh_database.dialect == "sqlite":
        assert fresh_database.url.database
        sqlite3.connect(fresh_database.url.database).close()
    url = url_of(fresh_database)
    run = cli(*command, "--database-url", url)
    if command == ["db", "current"]:
        assert run.code == 3  # behind: the empty store
    elif command == ["db", "downgrade", "base"]:
        assert run.code == 0  # nothing to do, nothing created
    else:
        assert run.code == 1
        assert "`tracker db upgrade`" in run.err
    assert tables_of(url) == set()


def test_the_default_store_is_created_by_a_write_not_by_a_read(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)  # no tracker.conf around
    default = tmp_path / "state" / "tracker" / "tracker.sqlite"
    status = cli("status")
    assert status.code == 1
    assert str(default) in status.err
    assert not (tmp_path / "state").exists()

    upgrade = cli("db", "upgrade")
    assert upgrade.code == 0, upgrade.err
    assert default.is_file()
    assert cli("status").code == 0
