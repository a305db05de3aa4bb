"""``tracker connections manage|unmanage|list|monitor``: output, JSON, exit statuses.

The commands run in-process; their ``iscsiadm`` and ``mount`` are the fakes
of a live testbed (the executor factory is replaced), so no real command runs.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker.cli import connections as cli_connections
from tracker.db.store import Store
from tracker.discovery.discover import discover
from tracker.host.sources import SysfsTreeSource
from tracker.reconcile import reconcile
from tracker.testing.eventfile import append_events
from tracker.testing.iscsiadm import FakeIscsiadm
from tracker.testing.live import LiveTestbed
from tracker.testing.mounts import FakeMount
from tracker.testing.topologies import synthetic_identity
from tracker.testing.uevents import Uevent

from .helpers import Cli

HOST = "node-1"
IQN = "iqn.2010-10.org.openstack:volume-1"
PORTAL = "192.0.2.10:3260"
URI = f"iscsi://192.0.2.10/{IQN}"


@pytest.fixture(params=["sqlite"])
def dialect(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


class Bed:
    def __init__(self, directory: Path) -> None:
        root = directory / "bed"
        root.mkdir()
        self.live = LiveTestbed(root, deliver=False)
        self.events_file = directory / "events.jsonl"
        self.events_file.touch()
        self.mount = FakeMount(self.live.root, exports={"nas.example:/srv"})
        self.iscsiadm = FakeIscsiadm(self.live, on_events=self.append, fallback=self.mount)
        self.iscsiadm.add_target(IQN, PORTAL, luns=[(1, synthetic_identity(1))])
        self.mount_base = directory / "mnt"

    def append(self, events: list[Uevent] | tuple[Uevent, ...]) -> None:
        append_events(self.events_file, events)


@pytest.fixture
def bed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Bed:
    made = Bed(tmp_path)
    monkeypatch.setattr(cli_connections, "connection_executor", lambda: made.iscsiadm)
    monkeypatch.setenv("OS_CONNECTIONS__MOUNT_BASE", str(made.mount_base))
    return made


@pytest.fixture
def tracker(cli: Cli, url: str, bed: Bed) -> Cli:
    def run(action: str, *args: str) -> object:
        return cli(
            "--database-url", url, "connections", action, *args,
            "--root", str(bed.live.root), "--host-name", HOST,
        )  # fmt: skip

    return run  # type: ignore[return-value]


def test_manage_prints_what_it_registered(tracker: Cli, bed: Bed) -> None:
    run = tracker("manage", URI + "?lun=1", "vol-1")
    assert run.code == 0, run.err
    assert run.out == f"managing vol-1: iscsi {IQN} @ {PORTAL} (pending)\n"
    assert bed.iscsiadm.calls == []  # the monitor connects, not manage
    run = tracker("manage", "nfs://nas.example/srv", "share", "--option", "vers=4.1", "--json")
    assert run.code == 0, run.err
    assert run.json() == {
        "share": {
            "attempts": 0,
            "connected": False,
            "connectionInfo": {
                "type": "nfs",
                "server": "nas.example",
                "export": "/srv",
                "options": {"vers": "4.1"},
            },
            "lastError": None,
            "managed": True,
            "state": "pending",
        }
    }


def test_errors_exit_1_with_a_message_and_no_traceback(tracker: Cli) -> None:
    run = tracker("manage", "iscsi://192.0.2.10/not-an-iqn", "vol-1")
    assert run.code == 1
    assert run.err.startswith("error: invalid storage URI")
    assert "iscsi://PORTAL[:PORT]/IQN" in run.err and "Traceback" not in run.err
    assert tracker("manage", URI, "vol-1").code == 0
    run = tracker("manage", URI, "vol-1", "--json")
    assert run.code == 1
    error = json.loads(run.err)["error"]
    assert error["type"] == "StorageConnectionInUse"
    run = tracker("unmanage", "nope")
    assert (run.code, run.err) == (
        1,
        f"error: storage connection 'nope' is not managed on host {HOST}\n",
    )
    assert tracker("manage", URI, "a/b").code == 1
    assert tracker("manage", URI, "vol-2", "--option", "novalue").code == 2  # usage


def test_a_secret_file_is_stored_by_absolute_path_and_refused_when_open(
    tracker: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "chap"
    secret.write_text("username = u\npassword = p\n")
    secret.chmod(0o640)
    monkeypatch.chdir(tmp_path)
    run = tracker("manage", URI, "vol-1", "--secret-file", "chap")
    assert run.code == 1
    assert "readable by group or others (mode 0640)" in run.err
    secret.chmod(0o600)
    assert tracker("manage", URI, "vol-1", "--secret-file", "chap").code == 0


def test_list_shows_managed_and_unmanaged_connections(tracker: Cli, bed: Bed, url: str) -> None:
    bed.iscsiadm.run(["iscsiadm", "-m", "node", "-T", IQN, "-p", PORTAL, "-o", "new"])
    bed.iscsiadm.run(["iscsiadm", "-m", "node", "-T", IQN, "-p", PORTAL, "--login"])
    store = Store(url, auto_upgrade="never")
    try:
        reconcile(store, discover(SysfsTreeSource(bed.live.root).scan(), HOST))
    finally:
        store.dispose()
    assert tracker("manage", "nfs://nas.example/srv", "share").code == 0
    run = tracker("list", "--json")
    assert run.code == 0, run.err
    document = run.json()
    assert set(document) == {"share", f"iscsi:{IQN}@{PORTAL}"}
    assert document["share"]["managed"] is True
    unmanaged = document[f"iscsi:{IQN}@{PORTAL}"]
    assert (unmanaged["managed"], unmanaged["connected"]) == (False, True)
    text = tracker("list")
    assert text.out.splitlines() == [
        "share: nfs nas.example:/srv [pending, not connected]",
        f"iscsi:{IQN}@{PORTAL}: iscsi {IQN} @ {PORTAL} [unmanaged, connected]",
    ]


def test_list_on_a_missing_store_creates_nothing(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "none.db"
    run = cli("--database-url", f"sqlite:///{path}", "connections", "list", "--host-name", "h")
    assert run.code == 1
    assert not path.exists()


def test_unmanage_reports_what_it_did(tracker: Cli) -> None:
    assert tracker("manage", URI + "?lun=1", "a").code == 0
    assert tracker("manage", URI + "?lun=2", "b").code == 0
    run = tracker("unmanage", "a", "--json")
    assert run.code == 0
    assert run.json() == {
        "id": "a",
        "disconnected": False,
        "keptFor": ["b"],
        "error": None,
        "reason": "managed under other ids",
    }
    run = tracker("unmanage", "b")
    assert run.out == "unmanaged b; tracker did not make this connection: left as it is\n"


@pytest.fixture
def sigterm_when() -> Iterator[list[object]]:
    """Send SIGTERM to this process once a condition holds (from a thread)."""
    conditions: list[object] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.02):
            if conditions and callable(conditions[0]) and conditions[0]():
                os.kill(os.getpid(), signal.SIGTERM)
                return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    yield conditions
    stop.set()
    thread.join(5)


def test_monitor_connects_in_the_foreground_until_sigterm(
    tracker: Cli, bed: Bed, sigterm_when: list[object]
) -> None:
    assert tracker("manage", URI, "vol-1").code == 0
    sigterm_when.append(lambda: bed.iscsiadm.logins == 1 and bed.iscsiadm.sessions)
    started = time.monotonic()
    run = tracker("monitor", "--events-file", str(bed.events_file))
    assert run.code == 0, run.err
    assert time.monotonic() - started < 20
    assert f"monitoring the storage connections of {HOST}" in run.err
    assert len(bed.iscsiadm.sessions) == 1


def test_watch_runs_the_monitor_when_configured(
    cli: Cli,
    url: str,
    bed: Bed,
    sigterm_when: list[object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (
        cli("--database-url", url, "connections", "manage", URI, "vol-1", "--host-name", HOST).code
        == 0
    )
    monkeypatch.setenv("OS_CONNECTIONS__MONITOR", "true")
    sigterm_when.append(lambda: bed.iscsiadm.logins == 1 and bed.iscsiadm.sessions)
    run = cli(
        "--database-url", url, "watch", "--root", str(bed.live.root), "--host-name", HOST,
        "--events-file", str(bed.events_file),
    )  # fmt: skip
    assert run.code == 0, run.err
    assert len(bed.iscsiadm.sessions) == 1


def test_watch_leaves_connections_alone_by_default(
    cli: Cli, url: str, bed: Bed, sigterm_when: list[object]
) -> None:
    assert (
        cli("--database-url", url, "connections", "manage", URI, "vol-1", "--host-name", HOST).code
        == 0
    )
    started = time.monotonic()
    sigterm_when.append(lambda: time.monotonic() - started > 1.0)
    run = cli(
        "--database-url", url, "watch", "--root", str(bed.live.root), "--host-name", HOST,
        "--events-file", str(bed.events_file),
    )  # fmt: skip
    assert run.code == 0, run.err
    assert bed.iscsiadm.calls == []
