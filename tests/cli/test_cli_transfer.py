"""``tracker dump`` and ``tracker load``: round trips through files, bad dumps."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tracker import report, serialization
from tracker.db.store import Store
from tracker.testing.databases import ThrowawayDatabase

from .helpers import Cli, Tracked, url_of


@pytest.fixture
def target(cli: Cli, fresh_database: ThrowawayDatabase) -> str:
    """An empty database migrated to head through the CLI."""
    url = url_of(fresh_database)
    run = cli("db", "upgrade", "--database-url", url)
    assert run.code == 0, run.err
    return url


def _counts(url: str) -> tuple[int, int, int, int]:
    store = Store(url, auto_upgrade="never")
    try:
        tree = report.collect(store)
    finally:
        store.dispose()
    volumes = [v for b in tree.backends for v in b.volumes]
    return (
        len(tree.backends),
        len(volumes),
        sum(len(v.snapshots) for v in volumes),
        sum(len(v.connections) for v in volumes),
    )


def test_dump_to_stdout_is_the_library_dump(cli: Cli, url: str, tracked: Tracked) -> None:
    run = cli("dump", "--database-url", url)
    assert run.code == 0, run.err
    assert run.json() == serialization.dump(tracked.backend.store)
    assert run.json()["key_values"] == {"cluster": "east"}


def test_dump_one_backend(cli: Cli, url: str, tracked: Tracked) -> None:
    run = cli("dump", "--backend", "lvm-1", "--database-url", url)
    assert run.code == 0, run.err
    assert run.json() == serialization.dump(tracked.backend.store, "lvm-1")
    missing = cli("dump", "--backend", "nope", "--database-url", url)
    assert (missing.code, missing.out, missing.err) == (1, "", "error: backend nope not found\n")


def test_dump_load_round_trip_into_a_fresh_database(
    cli: Cli, url: str, tracked: Tracked, target: str, tmp_path: Path
) -> None:
    path = tmp_path / "dump.json"
    dumped = cli("dump", "-o", str(path), "--database-url", url)
    assert dumped.code == 0, dumped.err
    assert "1 backend, 3 volumes, 2 snapshots, 2 connections, 1 key-value pair" in dumped.out
    original = json.loads(path.read_text())
    assert original == serialization.dump(tracked.backend.store)

    loaded = cli("load", str(path), "--json", "--database-url", target)
    assert loaded.code == 0, loaded.err
    assert loaded.json() == {
        "store": loaded.json()["store"],
        "source": str(path),
        "backends": 1,
        "volumes": 3,
        "snapshots": 2,
        "connections": 2,
        "key_values": 1,
    }
    assert loaded.err == "", "no progress line when stderr is not a terminal"
    again = cli("dump", "--database-url", target)
    assert again.json() == original

    status = cli("status", "--json", "--database-url", target).json()
    assert {v["id"] for v in status["backends"][0]["volumes"]} == set(tracked.volumes)


def test_load_text_summary(
    cli: Cli, url: str, tracked: Tracked, target: str, tmp_path: Path
) -> None:
    path = tmp_path / "dump.json"
    path.write_text(serialization.dumps(tracked.backend.store))
    run = cli("load", str(path), "--database-url", target)
    assert run.code == 0, run.err
    assert run.out.startswith(
        f"loaded 1 backend, 3 volumes, 2 snapshots, 2 connections, 1 key-value pair from {path}"
    )


def test_load_twice_is_refused(cli: Cli, url: str, tracked: Tracked, tmp_path: Path) -> None:
    path = tmp_path / "dump.json"
    path.write_text(serialization.dumps(tracked.backend.store))
    run = cli("load", str(path), "--database-url", url)  # into the store it came from
    assert run.code == 1
    assert "already exists" in run.err
    assert run.err.count("\n") == 1


def _corrupt_last_connection(document: dict[str, object]) -> None:
    backends = document["backends"]
    assert isinstance(backends, list)
    volume = next(v for v in reversed(backends[-1]["volumes"]) if v["connections"])
    volume["connections"][-1]["status"] = "teleported"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not json", "not a valid tracker dump: not JSON"),
        (b'{"format": "something-else"}', "not a valid tracker dump: $.format"),
        (b"\xff\xfe\x00garbage", "not a valid tracker dump: not JSON"),
        (
            b'{"format": "tracker-dump", "format_version": 1, "backends": [{"name": "x"}]}',
            "not a valid tracker dump: $.backends[0]: missing",
        ),
    ],
)
def test_bad_dump_file(cli: Cli, url: str, tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    run = cli("load", str(path), "--database-url", url)
    assert run.code == 1
    assert run.out == ""
    assert run.err.startswith(f"error: {message}")
    assert run.err.count("\n") == 1
    assert _counts(url) == (0, 0, 0, 0)


def test_dump_broken_at_its_last_record_writes_nothing(
    cli: Cli, url: str, tracked: Tracked, target: str, tmp_path: Path
) -> None:
    document = serialization.dump(tracked.backend.store)
    _corrupt_last_connection(document)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    run = cli("load", str(path), "--database-url", target)
    assert run.code == 1
    assert run.out == ""
    assert run.err.startswith("error: not a valid tracker dump: $.backends[0].volumes[")
    assert "teleported" in run.err
    assert _counts(target) == (0, 0, 0, 0)
    assert cli("dump", "--database-url", target).json()["key_values"] == {}
    # the same dump, repaired, loads: the failure was the bad record alone
    path.write_text(serialization.dumps(tracked.backend.store))
    assert cli("load", str(path), "--database-url", target).code == 0
    assert _counts(target) == (1, 3, 2, 2)


def test_load_missing_file(cli: Cli, url: str, tmp_path: Path) -> None:
    run = cli("load", str(tmp_path / "absent.json"), "--database-url", url)
    assert run.code == 1
    assert run.err == f"error: cannot read {tmp_path / 'absent.json'}: No such file or directory\n"


def test_dump_into_unwritable_place(cli: Cli, url: str, tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "dump.json"
    run = cli("dump", "-o", str(target), "--database-url", url)
    assert run.code == 1
    assert run.err.startswith(f"error: cannot write {target}")
    assert not target.exists()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_load_shows_progress_on_a_terminal(
    cli: Cli,
    url: str,
    tracked: Tracked,
    target: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "dump.json"
    path.write_text(serialization.dumps(tracked.backend.store))
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    run = cli("load", str(path), "--database-url", target)
    assert run.code == 0
    shown = terminal.getvalue()
    assert f"\rloading {path}: 9/9 (100%)" in shown
    assert shown.endswith("\n")


def test_load_of_a_very_deep_or_many_times_bad_dump_is_one_line(
    cli: Cli, url: str, tracked: Tracked, tmp_path: Path
) -> None:
    before = serialization.dumps(tracked.backend.store)
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    run = cli("load", str(path), "--database-url", url)
    assert (run.code, run.out) == (1, "")
    assert run.err == (
        "error: not a valid tracker dump: not JSON tracker can read: nested too deeply "
        "for the parser\n"
    )
    document = serialization.dump(tracked.backend.store)
    document["backends"].append(dict(document["backends"][0]))  # the same backend twice
    path.write_text(json.dumps(document))
    run = cli("load", str(path), "--database-url", url)
    assert run.code == 1
    assert run.err.count("\n") == 1
    assert (
        "$.backends[1].name: backend name 'lvm-1' appears twice (also at $.backends[0].name)"
        in (run.err)
    )
    assert "$.backends[1].volumes[0].id: volume id" in run.err
    assert serialization.dumps(tracked.backend.store) == before
