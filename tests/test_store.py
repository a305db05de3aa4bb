"""Opening stores: configuration, unreachable databases, SQLite settings, key-values."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from oslo_config import cfg
from sqlalchemy import inspect, text

from tracker import exceptions, open_store, opts
from tracker.db import models
from tracker.db.store import Store
from tracker.testing.databases import ThrowawayDatabase

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "mysql+pymysql://nobody@127.0.0.1:1/none",
        "sqlite:///{tmp}/a-file/x.sqlite",
    ],
    ids=["postgresql", "mariadb", "sqlite"],
)
def test_unreachable_database_is_store_unavailable(url: str, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(exceptions.StoreUnavailable) as raised:
        Store(url.format(tmp=tmp_path), connect_timeout=2)
    assert raised.value.url == url.format(tmp=tmp_path)
    assert raised.value.reason


def test_unreachable_server_is_typed_with_a_hidden_password() -> None:
    with pytest.raises(exceptions.StoreUnavailable) as raised:
        Store("postgresql+psycopg://admin:s3cret@127.0.0.1:1/none", connect_timeout=2)
    assert "s3cret" not in str(raised.value)
    assert raised.value.url.startswith("postgresql+psycopg://admin:***@")


@pytest.mark.parametrize(
    "url", ["not a url", "nosuchdriver://x/y", "sqlite://", "sqlite:///:memory:"]
)
def test_malformed_urls_are_config_errors(url: str) -> None:
    with pytest.raises(exceptions.ConfigError):
        Store(url)


def test_bad_auto_upgrade_choice(tmp_path: Path) -> None:
    with pytest.raises(exceptions.InvalidInput):
        Store(f"sqlite:///{tmp_path}/t.sqlite", auto_upgrade="sometimes")


def test_sqlite_runs_with_foreign_keys_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/sub/dir/t.sqlite", sqlite_busy_timeout=7)
    assert (tmp_path / "sub" / "dir" / "t.sqlite").exists()
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 7000


def test_default_store_lives_in_the_per_user_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    store = open_store(config_files=[])
    assert store.url.database == str(tmp_path / "state" / "tracker" / "tracker.sqlite")
    assert Path(store.url.database).exists()


def test_store_from_a_config_file(tmp_path: Path, dialect: str, store: Store) -> None:
    conf_file = tmp_path / "tracker.conf"
    url = store.url.render_as_string(hide_password=False)
    conf_file.write_text(f"[database]\nconnection = {url}\nauto_upgrade = never\n")
    opened = open_store(config_files=[str(conf_file)])
    assert opened.url == store.url
    assert opened.auto_upgrade == "never"


def test_key_values(store: Store) -> None:
    store.set_key_value("a", "1")
    store.set_key_value("b", "2")
    store.set_key_value("a", "3")
    assert store.get_key_values() == {"a": "3", "b": "2"}
    assert store.get_key_values("b") == {"b": "2"}
    assert store.get_key_values("zz") == {}
    store.delete_key_value("a")
    store.delete_key_value("never-there")
    assert store.get_key_values() == {"b": "2"}
    with pytest.raises(exceptions.InvalidInput):
        store.set_key_value("", "x")
    with pytest.raises(exceptions.InvalidInput):
        store.set_key_value("k", 5)  # type: ignore[arg-type]
    assert store.get_key_values() == {"b": "2"}


def test_several_stores_coexist(store: Store, fresh_database: ThrowawayDatabase) -> None:
    from tracker.resources import Backend

    other = Store(fresh_database.url, auto_upgrade="always")
    a = Backend("a", store=store)
    b = Backend("b", store=other)
    a.create_volume(1)
    assert b.volumes == ()
    assert len(a.volumes) == 1


def test_sample_config_is_up_to_date(tmp_path: Path) -> None:
    generated = tmp_path / "tracker.conf.sample"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "oslo_config.generator",
            "--namespace",
            "tracker",
            "--output-file",
            str(generated),
        ],
        check=True,
        env={**os.environ, "XDG_STATE_HOME": "/nonexistent"},
    )
    committed = REPO / "etc" / "tracker" / "tracker.conf.sample"
    assert committed.read_text() == generated.read_text(), (
        "etc/tracker/tracker.conf.sample is out of date: run `tox -e genconfig`"
    )


def test_options_are_listed_for_the_generator() -> None:
    names = {opt.dest for _group, group_opts in opts.list_opts() for opt in group_opts}
    assert {"connection", "auto_upgrade", "sqlite_busy_timeout", "connect_timeout"} <= names
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([])
    assert conf.database.connection is None
    assert conf.database.auto_upgrade == "sqlite"


# --- read-only opens create nothing; an open store never re-creates its file ---


def test_read_only_open_of_a_missing_sqlite_file_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "mistyped" / "dir" / "t.sqlite"
    with pytest.raises(exceptions.StoreNotFound) as raised:
        Store(f"sqlite:///{path}", create=False)
    assert raised.value.path == str(path)
    assert raised.value.removed is False
    assert str(path) in str(raised.value)
    assert "tracker db upgrade" in str(raised.value)
    assert isinstance(raised.value, exceptions.StoreUnavailable)
    assert not (tmp_path / "mistyped").exists()


def _empty(database: ThrowawayDatabase) -> None:
    """Make sure an empty database exists (a throw-away SQLite file is only a name)."""
    if database.dialect == "sqlite":
        assert database.url.database
        sqlite3.connect(database.url.database).close()


def test_read_only_open_gives_no_schema_to_an_empty_database(
    fresh_database: ThrowawayDatabase,
) -> None:
    _empty(fresh_database)
    with pytest.raises(exceptions.SchemaOutdated) as raised:
        Store(fresh_database.url, create=False, auto_upgrade="always")
    assert raised.value.current is None
    assert "tracker db upgrade" in str(raised.value)
    probe = Store(fresh_database.url, check_schema=False)
    assert inspect(probe.engine).get_table_names() == []
    probe.dispose()


def test_read_only_open_of_an_existing_store(store: Store) -> None:
    opened = Store(store.url, create=False, auto_upgrade="never")
    assert opened.get_key_values() == {}
    opened.dispose()


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def test_a_sqlite_file_removed_under_an_open_store_is_not_recreated(tmp_path: Path) -> None:
    from tracker.resources import Backend

    path = tmp_path / "t.sqlite"
    store = Store(f"sqlite:///{path}")
    backend = Backend("lvm", store=store)
    backend.create_volume(1, "before")
    _remove_sqlite_files(path)

    with pytest.raises(exceptions.StoreNotFound) as raised:
        backend.create_volume(1, "after")
    assert raised.value.removed is True
    assert f"the SQLite file {path} was removed" in str(raised.value)
    with pytest.raises(exceptions.StoreNotFound):
        store.get_key_values()
    assert not path.exists()


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not the bytes of an SQLite database\n" * 20)
    for create in (True, False):
        with pytest.raises(exceptions.StoreUnavailable) as raised:
            Store(f"sqlite:///{path}", create=create)
        assert f"the file {path} is not an SQLite database" in str(raised.value)
    assert path.read_bytes().startswith(b"these are not")


def test_a_home_relative_sqlite_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    store = Store("sqlite:///~/state/t.sqlite")
    assert store.sqlite_path == tmp_path / "state" / "t.sqlite"
    assert (tmp_path / "state" / "t.sqlite").is_file()
    store.dispose()


def test_a_bad_url_is_shown_with_its_password_masked() -> None:
    with pytest.raises(exceptions.ConfigError) as raised:
        Store("postgresql+psycopg://admin:s3cret@db.example:notaport/tracker")
    assert "s3cret" not in str(raised.value)
    assert "postgresql+psycopg://admin:***@db.example:notaport/tracker" in str(raised.value)


def test_every_option_of_the_sample_config_is_valid_uncommented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = (REPO / "etc" / "tracker" / "tracker.conf.sample").read_text()
    option_line = re.compile(r"^#([a-z_]+) = ")
    lines = [line[1:] if option_line.match(line) else line for line in sample.splitlines()]
    uncommented = [line for line in lines if re.match(r"^[a-z_]+ = ", line)]
    expected = {opt.dest for _group, group_opts in opts.list_opts() for opt in group_opts}
    assert {line.split(" = ")[0] for line in uncommented} == expected
    conf_file = tmp_path / "tracker.conf"
    conf_file.write_text("\n".join(lines) + "\n")

    monkeypatch.setenv("HOME", str(tmp_path))
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf(["--config-file", str(conf_file)], project="tracker", default_config_files=[])
    for group, group_opts in opts.list_opts():
        for opt in group_opts:
            conf[group.name][opt.dest]  # converts and validates the value
    # and the store it names is the default one
    store = Store.from_config(conf)
    assert store.sqlite_path == tmp_path / ".local" / "state" / "tracker" / "tracker.sqlite"
    store.dispose()


def test_two_writers_creating_one_key_both_succeed(store: Store) -> None:
    """The second writer's insert collides with the first's: it becomes an update."""
    errors: list[BaseException] = []

    def second_writer() -> None:
        try:
            store.set_key_value("owner", "second")
        except BaseException as error:
            errors.append(error)

    with store.write() as session:
        session.add(models.KeyValue(key="owner", value="first"))
        session.flush()
        thread = threading.Thread(target=second_writer)
        thread.start()
        time.sleep(0.5)  # the second writer now waits on the first one's key (or lock)
    thread.join(30)
    assert not thread.is_alive()
    assert errors == []
    assert store.get_key_values("owner") == {"owner": "second"}
