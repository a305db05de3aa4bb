"""Opening stores: configuration, unreachable databases, SQLite settings, key-values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from oslo_config import cfg
from sqlalchemy import text

from tracker import exceptions, open_store, opts
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
