"""``tracker watch`` as a real process: signals, kill -9, two watchers, a store going away.

Each test runs ``python -m tracker watch --root BED --events-file FILE`` on a
live testbed: the test plugs LUNs into the testbed and appends their events
to FILE (the testing aid that replaces udev's netlink monitor), then looks at
what the process printed and at the store. "No half-applied batch" is checked
on the store afterwards: every observed row has its journal entry and the
reverse, and a full reconcile of the final tree finds nothing to change but
LUNs that appeared after the last committed batch.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tracker.db import leases
from tracker.db.store import Store
from tracker.discovery.discover import discover
from tracker.host.sources import SysfsTreeSource
from tracker.reconcile import reconcile
from tracker.testing.eventfile import append_events
from tracker.testing.live import LiveTestbed
from tracker.testing.testbed import DiskSpec, Hctl, HostSpec, LunSpec, sd_devnum, sd_name
from tracker.testing.uevents import Uevent

from .helpers import url_of

HOST = "watch-host"
#: Seconds a process gets to print what is expected of it.
PATIENCE = 60.0


def lun(number: int) -> LunSpec:
    major, minor = sd_devnum(number)
    return LunSpec(
        hctl=Hctl(0, 0, 0, number),
        vendor="NETAPP",
        model="LUN C-Mode",
        wwid=f"naa.600a098038303053{number:08x}",
        disk=DiskSpec(name=sd_name(number), major=major, minor=minor),
    )


class Bed:
    """A live testbed with one SCSI host and the events file the watcher tails."""

    def __init__(self, directory: Path) -> None:
        (directory / "bed").mkdir(parents=True)
        self.live = LiveTestbed(directory / "bed", deliver=False)
        self.live.add_host(HostSpec(host=0))
        self.events = directory / "events.jsonl"
        self.events.touch()
        self.plugged = 0

    def plug(self, count: int = 1) -> None:
        """Plug ``count`` more LUNs and append all their events in one write."""
        events: list[Uevent] = []
        for _ in range(count):
            self.plugged += 1
            events.extend(self.live.plug_lun(lun(self.plugged)))
        append_events(self.events, events)


class Watcher:
    """One ``tracker watch`` process; its JSON lines are read by a thread."""

    def __init__(
        self,
        tmp_path: Path,
        bed: Bed,
        url: str,
        *extra: str,
        host_name: str = HOST,
        env: dict[str, str] | None = None,
    ) -> None:
        argv = [sys.executable, "-m", "tracker", "watch", "--json", "--root", str(bed.live.root)]
        argv += ["--events-file", str(bed.events), "--host-name", host_name]
        argv += ["--database-url", url, *extra]
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "XDG_STATE_HOME": str(tmp_path),
            "OS_WATCH__LEASE_TTL": "5",
            "OS_WATCH__LEASE_RENEW": "1",
            **(env or {}),
        }
        self.stderr_path = tmp_path / f"stderr-{time.monotonic_ns()}.txt"
        self._stderr = open(self.stderr_path, "w")  # noqa: SIM115 -- closed in wait()
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=self._stderr, env=environment, text=True
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.raw: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.raw.append(line)
            self.lines.put(json.loads(line))  # a torn line fails here, and the test below

    def next(self, timeout: float = PATIENCE) -> dict[str, Any]:
        try:
            document = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no batch within {timeout} s; stderr: {self.stderr()}") from None
        self.seen.append(document)
        return document

    def until(self, phase: str, appeared: int | None = None) -> dict[str, Any]:
        """Read batches until one of ``phase`` (and, if given, ``appeared`` LUNs in all)."""
        while True:
            document = self.next()
            if document["phase"] != phase:
                continue
            if appeared is None or self.appeared() >= appeared:
                return document

    def appeared(self) -> int:
        return sum(d["counts"].get("scsi_device", {}).get("appeared", 0) for d in self.seen)

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def wait(self, timeout: float = PATIENCE) -> int:
        try:
            code = self.process.wait(timeout)
        finally:
            self._stderr.close()
        return code

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait()


@pytest.fixture
def watchers() -> Iterator[list[Watcher]]:
    started: list[Watcher] = []
    yield started
    for watcher in started:
        watcher.stop()


@pytest.fixture
def bed(tmp_path: Path) -> Bed:
    return Bed(tmp_path)


def assert_consistent(store: Store, bed: Bed) -> Counter[str]:
    """No half-applied batch: rows and journal agree, and a full reconcile of the
    final tree only adds LUNs (whole) that no committed batch had applied.

    :returns: the changes a full reconcile would still make, counted per kind.
    """
    from tracker.db import observed

    view = observed.host_view(store, HOST)
    rows = {kind: len(records) for kind, records in view.kinds().items()}
    net: Counter[str] = Counter()
    for entry in observed.journal(store, HOST, limit=100_000):
        net[entry.kind] += {"appeared": 1, "vanished": -1}.get(entry.event, 0)
    assert {kind: net[kind] for kind in rows} == rows  # a journal entry per row, and back
    check = reconcile(store, discover(SysfsTreeSource(bed.live.root).scan(), HOST), dry_run=True)
    assert {c.event for c in check.changes} <= {"appeared"}, check.changes
    missing = Counter(c.kind for c in check.changes)
    # A LUN is applied whole or not at all: its scsi_device row comes with its disk.
    devices = view.kinds()["scsi_device"]
    assert all(device.block_name for device in devices), devices
    assert set(missing) <= {"scsi_device"}
    assert rows["scsi_device"] + missing["scsi_device"] == bed.plugged
    return missing


# --- signals ----------------------------------------------------------------------


def test_sigterm_while_batches_stream_commits_them_whole_and_exits_0(
    tmp_path: Path, bed: Bed, store: Store, watchers: list[Watcher]
) -> None:
    watcher = Watcher(tmp_path, bed, url_of(store))
    watchers.append(watcher)
    start = watcher.until("start")
    assert start["counts"] == {"scsi_host": {"appeared": 1}}
    bed.plug(3)
    first = watcher.until("batch", appeared=3)
    assert first["first_seqnum"] is not None and first["duration_ms"] >= 0
    bed.plug(40)  # a burst, and the signal while it is being applied
    time.sleep(0.05)
    watcher.process.send_signal(signal.SIGTERM)
    assert watcher.wait() == 0, watcher.stderr()
    assert all(line.endswith("\n") for line in watcher.raw)  # every JSON line whole
    missing = assert_consistent(store, bed)
    while not watcher.lines.empty():
        watcher.next()
    # What the process reported is what the store holds.
    assert watcher.appeared() == bed.plugged - missing["scsi_device"]
    assert leases.holder(store, HOST) is None  # released on the way out
    assert "Traceback" not in watcher.stderr()


def test_kill_9_mid_burst_leaves_no_half_applied_batch(
    tmp_path: Path, bed: Bed, store: Store, watchers: list[Watcher]
) -> None:
    watcher = Watcher(tmp_path, bed, url_of(store))
    watchers.append(watcher)
    watcher.until("start")
    bed.plug(60)
    watcher.next()  # the first batch of the burst is committed ...
    watcher.process.kill()  # ... and the process dies while the rest is applied
    assert watcher.wait() == -signal.SIGKILL
    missing = assert_consistent(store, bed)
    # A full reconcile afterwards adds exactly the LUNs the dead process had not
    # committed, and then nothing is left to do.
    done = reconcile(store, discover(SysfsTreeSource(bed.live.root).scan(), HOST))
    assert Counter(c.kind for c in done.changes) == missing
    assert reconcile(store, discover(SysfsTreeSource(bed.live.root).scan(), HOST)).changes == ()
    # The dead process's lease stays until it lapses.
    lease = leases.holder(store, HOST)
    assert lease is not None and f"/{watcher.process.pid}/" in lease.owner


# --- two watchers -------------------------------------------------------------------


def test_a_second_watcher_of_the_host_refuses_or_waits_for_the_lease(
    tmp_path: Path, bed: Bed, store: Store, watchers: list[Watcher]
) -> None:
    url = url_of(store)
    first = Watcher(tmp_path, bed, url)
    watchers.append(first)
    first.until("start")
    second = Watcher(tmp_path, bed, url)
    watchers.append(second)
    assert second.wait() == 7
    message = second.stderr()
    assert f"host {HOST} is already watched by " in message
    assert f"/{first.process.pid}/" in message and "--wait" in message
    assert "Traceback" not in message
    # Another host's watcher shares the store.
    other_bed = Bed(tmp_path / "other")
    other = Watcher(tmp_path, other_bed, url, host_name="other-host")
    watchers.append(other)
    other.until("start")
    # With --wait, a second watcher takes over once the first stops.
    waiting = Watcher(tmp_path, bed, url, "--wait")
    watchers.append(waiting)
    deadline = time.monotonic() + PATIENCE
    while "waiting for it" not in waiting.stderr():
        assert time.monotonic() < deadline, waiting.stderr()
        time.sleep(0.05)
    bed.plug(1)
    first.until("batch", appeared=1)
    assert waiting.lines.empty()  # it wrote nothing while it waited
    first.process.send_signal(signal.SIGTERM)
    assert first.wait() == 0
    assert waiting.until("start")["counts"] == {}  # the first had applied everything
    lease = leases.holder(store, HOST)
    assert lease is not None and f"/{waiting.process.pid}/" in lease.owner
    bed.plug(1)
    assert waiting.until("batch", appeared=1)["counts"]["scsi_device"] == {"appeared": 1}
    for watcher in (waiting, other):
        watcher.process.send_signal(signal.SIGINT)
        assert watcher.wait() == 0
    assert_consistent(store, bed)


# --- the store going away -----------------------------------------------------------


class Proxy:
    """A TCP relay on loopback to a database server, that a test can cut and restore."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for one, other in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(one, other), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Refuse new connections and break the open ones."""
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept()
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


#: Parametrises a test over the databases that have a server to lose (SQLite's
#: outage is a busy lock: see the busy test).
on_servers = pytest.mark.parametrize("dialect", ["postgresql", "mariadb"])


@pytest.fixture
def server_store(store: Store, dialect: str) -> Store:
    assert dialect != "sqlite", "use @on_servers"
    return store


@pytest.fixture
def proxy(server_store: Store) -> Iterator[Proxy]:
    url = server_store.url
    relay = Proxy((url.host or "127.0.0.1", int(url.port or 0) or _default_port(url)))
    relay.start()
    yield relay
    relay.cut()


def _default_port(url: Any) -> int:
    return 5432 if url.get_backend_name() == "postgresql" else 3306


@on_servers
def test_store_down_then_back_is_retried_then_resynced(
    tmp_path: Path, bed: Bed, server_store: Store, proxy: Proxy, watchers: list[Watcher]
) -> None:
    relayed = url_of(make_url(url_of(server_store)).set(host="127.0.0.1", port=proxy.port))
    env = {"OS_WATCH__GRACE_PERIOD": "120", "OS_DATABASE__CONNECT_TIMEOUT": "2"}
    watcher = Watcher(tmp_path, bed, relayed, env=env)
    watchers.append(watcher)
    watcher.until("start")
    proxy.cut()
    bed.plug(2)  # events that cannot be written now
    deadline = time.monotonic() + PATIENCE
    while "store unreachable, retrying" not in watcher.stderr():
        assert time.monotonic() < deadline, watcher.stderr()
        time.sleep(0.05)
    assert watcher.process.poll() is None  # still retrying
    proxy.start()  # the store is back
    back = watcher.until("resync")
    assert back["reason"] == "store back"
    assert back["counts"]["scsi_device"] == {"appeared": 2}
    assert "reachable again" in watcher.stderr()
    bed.plug(1)
    watcher.until("batch", appeared=3)
    watcher.process.send_signal(signal.SIGTERM)
    assert watcher.wait() == 0, watcher.stderr()
    assert assert_consistent(server_store, bed) == Counter()


@on_servers
def test_store_down_past_the_grace_period_exits_6(
    tmp_path: Path, bed: Bed, server_store: Store, proxy: Proxy, watchers: list[Watcher]
) -> None:
    relayed = url_of(make_url(url_of(server_store)).set(host="127.0.0.1", port=proxy.port))
    env = {"OS_WATCH__GRACE_PERIOD": "2", "OS_DATABASE__CONNECT_TIMEOUT": "1"}
    watcher = Watcher(tmp_path, bed, relayed, env=env)
    watchers.append(watcher)
    watcher.until("start")
    proxy.cut()
    bed.plug(1)
    assert watcher.wait() == 6
    message = watcher.stderr()
    assert "unreachable for more than 2 s" in message
    assert "tracker watch gives up" in message
    assert "Traceback" not in message
    # Nothing half-written: the LUN is simply not there yet.
    assert assert_consistent(server_store, bed) == Counter({"scsi_device": 1})


@pytest.mark.parametrize("dialect", ["sqlite"])
def test_a_busy_sqlite_store_is_waited_for_then_resynced(
    tmp_path: Path, bed: Bed, store: Store, watchers: list[Watcher]
) -> None:
    assert store.sqlite_path is not None
    env = {"OS_DATABASE__SQLITE_BUSY_TIMEOUT": "0.2", "OS_WATCH__GRACE_PERIOD": "120"}
    watcher = Watcher(tmp_path, bed, url_of(store), env=env)
    watchers.append(watcher)
    watcher.until("start")
    blocker = sqlite3.connect(store.sqlite_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        bed.plug(1)
        deadline = time.monotonic() + PATIENCE
        while "store busy, retrying" not in watcher.stderr():
            assert time.monotonic() < deadline, watcher.stderr()
            time.sleep(0.05)
        assert "another writer held the lock" in watcher.stderr()
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    back = watcher.until("resync")
    assert back["reason"] == "store back"
    assert back["counts"]["scsi_device"] == {"appeared": 1}
    watcher.process.send_signal(signal.SIGTERM)
    assert watcher.wait() == 0
    assert assert_consistent(store, bed) == Counter()
