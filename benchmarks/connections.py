"""Benchmark the connection monitor: how soon a failed iSCSI session is logged in again.

Two hosts (live testbeds on tmpfs), each with one managed iSCSI connection,
a :class:`~tracker.testing.iscsiadm.FakeIscsiadm` and a
:class:`~tracker.connections.monitor.ConnectionMonitor` on a store of its own:

* **event-driven**: the monitor's device events come from an
  :class:`~tracker.host.events.InMemoryEventSource` fed with the fake's
  uevents (a session failure is a ``change`` of its ``iscsi_connection`` and
  ``iscsi_session``, as the kernel sends them);
* **periodic check only** (the baseline: VDSM's design, which checked every
  connection every 10 s): the same monitor whose event source never delivers
  anything, so only its periodic check (``--check-interval``, 1 s here, each
  check re-reading the session from sysfs) finds the failure.

Each round: once the connection is up and the monitor idle, wait a random
delay in ``[0, check_interval)`` -- the same for both modes of a round, so the
failure falls anywhere in the check interval -- then fail the session
(``FakeIscsiadm.fail_session``); the figure is the time from that call to
the start of the ``iscsiadm --login`` that replaces the session, by
``time.monotonic`` around the fake executor. The modes alternate round by
round, after one untimed round of each; the garbage collector runs before
each round and is disabled during it. Logins are counted: one per failure
(no storm), or the run says so.

Run: ``.venv/bin/python benchmarks/connections.py [--dialect sqlite|postgresql|all]
[--flaps N] [--check-interval S]``; ``--flaps 5`` is a smoke run.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, fresh_store, scratch_dir, unavailable

from tracker.connections.manager import StorageConnectionManager
from tracker.connections.monitor import ConnectionMonitor, MonitorSettings
from tracker.db.store import Store
from tracker.host.events import InMemoryEventSource
from tracker.host.executor import CommandResult
from tracker.host.sources import SysfsTreeSource
from tracker.testing.iscsiadm import FakeIscsiadm
from tracker.testing.live import LiveTestbed, to_device_events
from tracker.testing.topologies import synthetic_identity
from tracker.testing.uevents import Uevent

HOST = "bench-host"
IQN = "iqn.2010-10.org.openstack:bench"
PORTAL = "192.0.2.10:3260"


class Clocked:
    """The fake iscsiadm, recording when each login starts."""

    def __init__(self, inner: FakeIscsiadm) -> None:
        self.inner = inner
        self.logins: list[float] = []

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        if "--login" in argv:
            self.logins.append(time.monotonic())
        return self.inner.run(argv, env=env, cwd=cwd, timeout=timeout)


@dataclass
class Mode:
    name: str
    fake: FakeIscsiadm
    executor: Clocked
    manager: StorageConnectionManager
    monitor: ConnectionMonitor
    latencies: list[float] = field(default_factory=list)


def build_mode(
    name: str, store: Store, directory: Path, events: bool, settings: MonitorSettings
) -> Mode:
    bed = directory / "bed"
    bed.mkdir()
    live = LiveTestbed(bed, deliver=False)
    source = InMemoryEventSource()

    def push(uevents: Sequence[Uevent]) -> None:
        if events:
            source.push(*to_device_events(uevents))

    fake = FakeIscsiadm(live, on_events=push)
    fake.add_target(IQN, PORTAL, luns=[(1, synthetic_identity(1))])
    executor = Clocked(fake)
    manager = StorageConnectionManager(
        store, host_name=HOST, executor=executor, root=live.root, mount_base=directory / "mnt"
    )
    manager.manage_storage_connection(f"iscsi://{PORTAL}/{IQN}", "bench")
    monitor = ConnectionMonitor(
        manager, source=SysfsTreeSource(live.root), events=source, settings=settings
    )
    return Mode(name, fake, executor, manager, monitor)


def until(condition: object, timeout: float = 30.0) -> None:
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise RuntimeError("the monitor did not reconnect in time")
        time.sleep(0.001)


def settled(mode: Mode) -> bool:
    listing = mode.manager.get_storage_connection_list()
    return listing["bench"].connected and not mode.monitor.workers()


def flap(mode: Mode, delay: float, timed: bool) -> None:
    until(lambda: settled(mode))
    logins = len(mode.executor.logins)
    gc.collect()
    gc.disable()
    try:
        time.sleep(delay)
        failed = time.monotonic()
        mode.fake.fail_session(IQN, PORTAL)
        until(lambda: len(mode.executor.logins) > logins)
        if timed:
            mode.latencies.append(mode.executor.logins[logins] - failed)
    finally:
        gc.enable()


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


@contextmanager
def directories() -> Iterator[Path]:
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="tracker-bench-conn-", dir=shm) as path:
        yield Path(path)


def run_dialect(dialect: str, args: argparse.Namespace) -> None:
    settings = MonitorSettings(
        check_interval=args.check_interval,
        backoff_initial=0.05,
        backoff_max=1,
        jitter=0.0,
        confirm_timeout=0.2,  # the baseline has no events: a resync confirms its logins
    )
    baseline_name = f"periodic check {args.check_interval:g} s"
    with scratch_dir() as sqlite_dir, directories() as directory, ExitStack() as stack:
        modes = []
        for name, events in (("event-driven", True), (baseline_name, False)):
            store = stack.enter_context(fresh_store(dialect, sqlite_dir))
            place = directory / name.replace(" ", "-")
            place.mkdir()
            mode = build_mode(f"{dialect} {name}", store, place, events, settings)
            mode.monitor.start()
            stack.callback(mode.monitor.stop)
            modes.append(mode)
        rng = random.Random(args.seed)
        started = time.monotonic()
        for index in range(args.flaps + 1):  # round 0 warms up
            delay = rng.uniform(0.0, args.check_interval)
            for mode in modes:
                flap(mode, delay, index > 0)
        for mode in modes:
            until(lambda m=mode: settled(m))
        emit(
            f"# {dialect}: {args.flaps} session failures per mode, alternated, in "
            f"{time.monotonic() - started:.1f} s; threads now {threading.active_count()}"
        )
        for mode in modes:
            extra = len(mode.executor.logins) - (args.flaps + 2)
            storm = "one login per failure" if extra == 0 else f"{extra} extra logins"
            emit(
                f"reconnect-latency {mode.name}: median {_ms(statistics.median(mode.latencies))}, "
                f"p95 {_ms(p95(mode.latencies))}, max {_ms(max(mode.latencies))} ({storm})"
            )
        event, baseline = modes
        median = statistics.median(event.latencies)
        ratio = statistics.median(baseline.latencies) / median
        verdict = "met" if p95(event.latencies) <= 0.100 else "MISSED"
        emit(
            f"reconnect-latency {dialect}: periodic check / event-driven {ratio:.1f}x (median) "
            f"(goal: event-driven reconnect started within 100 ms, p95: {verdict})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dialect",
        action="append",
        choices=["sqlite", "postgresql", "mariadb", "all"],
        help="repeatable; default sqlite and postgresql",
    )
    parser.add_argument("--flaps", type=int, default=40)
    parser.add_argument("--check-interval", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=20261204)
    args = parser.parse_args()
    dialects = args.dialect or ["sqlite", "postgresql"]
    if "all" in dialects:
        dialects = ["sqlite", "postgresql", "mariadb"]
    for dialect in dialects:
        reason = unavailable(dialect)
        if reason is not None:
            emit(f"# {dialect}: skipped ({reason})")
            continue
        run_dialect(dialect, args)


if __name__ == "__main__":
    main()
