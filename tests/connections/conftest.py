"""Fixtures of the storage connection tests: a live host with a fake iscsiadm and mount.

The host is a :class:`~tracker.testing.live.LiveTestbed` (a fake sysfs) whose
``iscsiadm`` is :class:`~tracker.testing.iscsiadm.FakeIscsiadm` and whose
``mount``/``umount`` are :class:`~tracker.testing.mounts.FakeMount`: a login
adds the session, connection and LUNs to the testbed and its uevents reach the
monitor through an in-memory event source, exactly as udev's would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tracker.clock import Clock
from tracker.connections.manager import StorageConnectionManager
from tracker.connections.monitor import ConnectionMonitor, MonitorSettings
from tracker.db.store import Store
from tracker.host.events import InMemoryEventSource
from tracker.host.executor import CommandExecutor, CommandResult
from tracker.host.sources import SysfsTreeSource
from tracker.testing.iscsiadm import FakeIscsiadm
from tracker.testing.live import LiveTestbed, to_device_events
from tracker.testing.mounts import FakeMount
from tracker.testing.topologies import synthetic_identity
from tracker.testing.uevents import Uevent
from tracker.waiting.model import StorageModel

HOST = "node-1"
IQN = "iqn.2010-10.org.openstack:volume-1"
IQN2 = "iqn.2010-10.org.openstack:volume-2"
PORTAL = "192.0.2.10:3260"
ISCSI_URI = f"iscsi://192.0.2.10/{IQN}"
EXPORT = "nas.example:/srv/volumes"
NFS_URI = "nfs://nas.example/srv/volumes"
#: Quick pacing for tests on the real clock.
QUICK = MonitorSettings(
    check_interval=0.5, backoff_initial=0.05, backoff_max=0.2, jitter=0.0, confirm_timeout=1.0
)


@pytest.fixture(params=["sqlite"])
def dialect(request: pytest.FixtureRequest) -> str:
    """SQLite unless a test asks for every database."""
    value: str = request.param
    return value


class TimedExecutor:
    """Runs commands through another executor, recording when each started.

    :ivar started: ``(time.monotonic(), argv)`` per command, in order.
    :ivar hold: while set, a login waits (real time) until it is cleared.
    """

    def __init__(self, inner: CommandExecutor) -> None:
        self.inner = inner
        self.started: list[tuple[float, tuple[str, ...]]] = []
        self.before: Callable[[tuple[str, ...]], CommandResult | None] | None = None
        self._lock = threading.Lock()

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        args = tuple(argv)
        with self._lock:
            self.started.append((time.monotonic(), args))
        if self.before is not None:
            answer = self.before(args)
            if answer is not None:
                return answer
        return self.inner.run(args, env=env, cwd=cwd, timeout=timeout)

    def logins(self) -> list[float]:
        """:returns: when each ``--login`` started."""
        with self._lock:
            return [when for when, argv in self.started if "--login" in argv]


class Rig:
    """One host: the testbed, its fake programs, the store, managers and monitors."""

    def __init__(self, directory: Path, store: Store) -> None:
        bed = directory / "bed"
        bed.mkdir()
        self.directory = directory
        self.live = LiveTestbed(bed, deliver=False)
        self.store = store
        self.sources: list[InMemoryEventSource] = []
        self.mount = FakeMount(self.live.root, exports={EXPORT})
        self.iscsiadm = FakeIscsiadm(self.live, on_events=self.push, fallback=self.mount)
        self.executor = TimedExecutor(self.iscsiadm)
        self.iscsiadm.add_target(IQN, PORTAL, luns=[(1, synthetic_identity(1))])
        self.iscsiadm.add_target(IQN2, PORTAL, luns=[(1, synthetic_identity(2))])
        self.mount_base = directory / "mnt"
        self.monitors: list[ConnectionMonitor] = []
        self.models: list[StorageModel] = []
        self.manager = self.new_manager()

    def push(self, uevents: Sequence[Uevent]) -> None:
        """Deliver events to every monitor's source (as udev multicasts them)."""
        events = to_device_events(uevents)
        for source in list(self.sources):
            source.push(*events)

    def new_events(self) -> InMemoryEventSource:
        """An event source of its own for one more listener (each engine stops its own)."""
        source = InMemoryEventSource()
        self.sources.append(source)
        return source

    def new_manager(self, store: Store | None = None, **kwargs: Any) -> StorageConnectionManager:
        kwargs.setdefault("executor", self.executor)
        return StorageConnectionManager(
            store if store is not None else self.store,
            host_name=HOST,
            root=self.live.root,
            mount_base=self.mount_base,
            **kwargs,
        )

    def monitor(
        self,
        manager: StorageConnectionManager | None = None,
        *,
        settings: MonitorSettings = QUICK,
        clock: Clock | None = None,
        **kwargs: Any,
    ) -> ConnectionMonitor:
        monitor = ConnectionMonitor(
            manager if manager is not None else self.manager,
            source=SysfsTreeSource(self.live.root),
            events=kwargs.pop("events", None) or self.new_events(),
            settings=settings,
            clock=clock,
            **kwargs,
        )
        self.monitors.append(monitor)
        return monitor

    def until(self, condition: Callable[[], bool], timeout: float = 10.0) -> float:
        """Wait (real time) until ``condition()``; fail the test after ``timeout``.

        :returns: how long it took.
        """
        started = time.monotonic()
        while not condition():
            if time.monotonic() - started > timeout:
                raise AssertionError(f"not true after {timeout} s: {condition}")
            time.sleep(0.002)
        return time.monotonic() - started

    def connected(self, connection_id: str) -> bool:
        record = self.manager.get_storage_connection_list().get(connection_id)
        return record is not None and record.connected and record.state == "connected"

    def close(self) -> None:
        for monitor in self.monitors:
            monitor.stop()
        for model in self.models:
            model.close()


@pytest.fixture
def rig_dir(tmpfs_dir: Path) -> Path:
    """A fresh directory on tmpfs when possible."""
    return tmpfs_dir


@pytest.fixture
def rig(rig_dir: Path, store: Store) -> Iterator[Rig]:
    made = Rig(rig_dir, store)
    try:
        yield made
    finally:
        made.close()
