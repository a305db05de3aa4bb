"""Benchmark ``rescan_and_wait_for``: event-driven against the polling fallback.

Builds ``scale(hbas=4, luns=1024)`` (4096 sd disks, 1024 dm maps) on tmpfs,
twice: one tree for each mode, so that what one mode maps never shows up in
the other's listings. Some LUs of each tree are *unlisted* before anything
starts: every sysfs entry that lists them -- ``bus/scsi/devices/H:C:T:L``,
``class/scsi_device``, ``class/scsi_disk``, ``class/block`` and ``block/``
(the four ``sd`` disks and the ``dm`` map), ``dev/block/M:m`` -- is removed,
the device directories staying where they are. A scan (and a polling listing)
finds devices through those entries only, so the host looks as if the LUs
were not mapped. An LU *appears* when its entries are put back, device after
device in the kernel's order (per path ``scsi_device``, its class device,
``scsi_disk``, ``block``; then the map), which is what a polling listing sees.

Two :class:`tracker.waiting.StorageModel` objects, each on a store of its own:

* **event-driven**: ``events=`` an :class:`~tracker.host.events.InMemoryEventSource`;
  as each device of the LU is put back, its uevent is queued (the 17 events
  of :func:`events.lun_groups`), as the kernel sends a device's uevent once
  its sysfs entries exist;
* **polling**: ``events=None``, the fallback (:class:`~tracker.host.polling.PollingEventSource`),
  listing sysfs every ``poll_interval`` seconds (1 s, as infi.storagemodel).

Each appearance: a thread waits until the wait has evaluated its predicate
once (its first ``progress`` call), sleeps a random delay in ``[0,
poll_interval)`` -- the same delay for both modes of one round, so the
appearance falls anywhere between two listings -- and makes the LU appear;
meanwhile the main thread is in ``model.rescan_and_wait_for(DiskExists(serial)
& MultipathPathsAtLeast(serial, 4), timeout=10, rescan=False)``. The figure is
the time from the LU's **last** event being queued (event-driven) or its last
sysfs entry being put back (polling) -- the same moment but for the queueing
-- to the call returning, by ``time.monotonic``. ``rescan=False``: no scan
request is written, the figure is the path from the event to the waiter.

The figures run in alternation, appearance by appearance (event-driven,
polling, event-driven with no idle, event-driven, ...), after one untimed round
of each; the garbage collector is run before, and disabled during, each
appearance. Printed: median, p95 and max of each figure, the polling /
event-driven ratios, the goal (event-driven median <= 50 ms), and where the
time of a median appearance goes, measured from the outside (no tracker code
is changed): the event source, the device source (``lookup``), the store
(``run_write``) and :meth:`StorageModel.evaluate` are wrapped to record when
they ran.

*event-driven, no idle* (information; ``--no-no-idle`` leaves it out): the
same as event-driven, on the same model, but the LU appears right after the
wait's first evaluation, without the random delay, so the machine has not been
idle before the batch. On a virtual machine whose CPUs come back slow from
idle the difference is large; the first line printed measures that effect on
a plain Python loop.

The first wait of each model -- a full scan and reconcile of the host -- is
timed separately, for information.

Run: ``.venv/bin/python benchmarks/waiting.py [--dialect sqlite|postgresql|all]
[--appearances N]``; ``--hbas 2 --luns 64 --appearances 10`` is a smoke run.
``--profile DIR`` writes a cProfile of the event-driven appearances (waiter
and engine threads merged) into DIR; the figures of such a run are slowed by
the profiler.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import random
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ALL_DIALECTS, DEFAULT_DIALECTS, emit, fresh_store, scratch_dir, unavailable
from events import lun_groups, renumber

from tracker.db.store import Store
from tracker.host.events import DeviceEvent, InMemoryEventSource
from tracker.host.records import DeviceRecord
from tracker.host.sources import SysfsTreeSource
from tracker.predicates import DiskExists, MultipathPathsAtLeast, Predicate, WaitForNothing
from tracker.testing.testbed import Testbed
from tracker.testing.topologies import scale, synthetic_identity
from tracker.waiting import StorageModel, WaitSettings
from tracker.waiting.predicates import Verdict

#: the sysfs directories whose entries list devices (relative to ``sys/``)
_LISTING_GLOBS = ("class/*", "bus/*/devices", "block", "dev/block")

#: seconds a wait may take before the run is declared broken
WAIT_TIMEOUT = 10.0


# --- timestamps, recorded from the outside ----------------------------------------


@dataclass
class Marks:
    """When the wrapped parts of one model ran (``time.monotonic`` seconds)."""

    #: (start, end) of each device lookup
    lookups: list[tuple[float, float]] = field(default_factory=list)
    #: (start, end) of each write transaction (``Store.run_write``)
    writes: list[tuple[float, float]] = field(default_factory=list)
    #: (start, end, holds) of each predicate evaluation
    evaluations: list[tuple[float, float, bool]] = field(default_factory=list)
    #: when the event source handed out the first event of a batch
    first_taken: list[float] = field(default_factory=list)
    #: when the event source said the coalescing window was over (a batch taken)
    window_ends: list[float] = field(default_factory=list)

    def clear(self) -> None:
        for value in (
            self.lookups,
            self.writes,
            self.evaluations,
            self.first_taken,
            self.window_ends,
        ):
            value.clear()


class TimedSource:
    """A sysfs-tree device source that records when each lookup ran."""

    def __init__(self, root: Path, marks: Marks) -> None:
        self.inner = SysfsTreeSource(root)
        self.root = self.inner.root  # the polling fallback lists <root>/sys
        self.marks = marks

    def scan(self) -> tuple[DeviceRecord, ...]:
        return self.inner.scan()

    def lookup(self, sys_path: str) -> DeviceRecord | None:
        start = time.monotonic()
        try:
            return self.inner.lookup(sys_path)
        finally:
            self.marks.lookups.append((start, time.monotonic()))


class TimedEvents(InMemoryEventSource):
    """An in-memory event source that records when batches were taken from it."""

    def __init__(self, marks: Marks) -> None:
        super().__init__()
        self.marks = marks
        self._in_batch = False

    def poll(self, timeout: float | None) -> DeviceEvent | None:
        event = super().poll(timeout)
        now = time.monotonic()
        if event is not None and not self._in_batch:
            self._in_batch = True
            self.marks.first_taken.append(now)
        elif event is None and self._in_batch:
            self._in_batch = False
            self.marks.window_ends.append(now)
        return event


class TimedModel(StorageModel):
    """A storage model whose predicate evaluations are timed."""

    marks: Marks

    def evaluate(self, predicate: object) -> Verdict:
        start = time.monotonic()
        verdict = super().evaluate(predicate)
        self.marks.evaluations.append((start, time.monotonic(), verdict.holds))
        return verdict


def time_writes(store: Store, marks: Marks) -> None:
    """Record every write transaction of ``store`` (its instance's ``run_write``)."""
    run_write = store.run_write

    def timed(work: Callable[[Any], Any], operation: str = "write") -> Any:
        start = time.monotonic()
        try:
            return run_write(work, operation)
        finally:
            marks.writes.append((start, time.monotonic()))

    store.run_write = timed  # type: ignore[method-assign]


# --- unlisting and re-listing LUs ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lu:
    """One LU of a tree: its events, and the listing entries of each of its devices.

    :ivar serial: its unit serial (what the predicate asks for).
    :ivar paths: its number of SCSI paths (one per HBA).
    :ivar events: its uevents, in the kernel's order.
    :ivar entries: for each event, the entries to put back before it is sent,
        as (entry path, link text).
    """

    serial: str
    paths: int
    events: tuple[DeviceEvent, ...]
    entries: tuple[tuple[tuple[str, str], ...], ...]

    def unlist(self) -> None:
        for entries in self.entries:
            for path, _text in entries:
                os.unlink(path)

    def relist(self, before_event: Callable[[int], None] | None = None) -> None:
        """Put the entries back, device by device; ``before_event(i)`` runs after
        event ``i``'s entries are back."""
        for index, entries in enumerate(self.entries):
            for path, text in entries:
                os.symlink(text, path)
            if before_event is not None:
                before_event(index)


def listing_entries(root: Path) -> dict[str, list[tuple[str, str]]]:
    """:returns: device path (``/devices/...``) -> the listing links that resolve to it."""
    sys_dir = root / "sys"
    found: dict[str, list[tuple[str, str]]] = {}
    for pattern in _LISTING_GLOBS:
        for directory in sorted(sys_dir.glob(pattern)):
            relative = "/" + directory.relative_to(sys_dir).as_posix()
            with os.scandir(directory) as entries:
                for entry in entries:
                    if not entry.is_symlink():
                        continue
                    text = os.readlink(entry.path)
                    target = os.path.normpath(os.path.join(relative, text))
                    found.setdefault(target, []).append((entry.path, text))
    return found


def make_lus(root: Path) -> list[Lu]:
    """Every LU of the tree, its listing entries assigned to its events.

    An entry belongs to the event whose device path is the longest prefix of
    the entry's target (``class/block/sdb`` to the ``block`` event of ``sdb``).
    """
    groups = lun_groups(root)
    owner = {top: index for index, (hidden, _events) in enumerate(groups) for top in hidden}
    assigned: list[list[list[tuple[str, str]]]] = [[[] for _ in e] for _h, e in groups]
    for target, links in listing_entries(root).items():
        ancestor = target
        while ancestor and ancestor not in owner:
            ancestor = ancestor.rsplit("/", 1)[0]
        if not ancestor:
            continue  # not part of an LU (a host, a target, a remote port)
        index = owner[ancestor]
        devices = [event.sys_path for event in groups[index][1]]
        matching = [
            (len(device), i)
            for i, device in enumerate(devices)
            if target == device or target.startswith(device + "/")
        ]
        if not matching:
            raise RuntimeError(f"no event for the listing entry of {target}")
        assigned[index][max(matching)[1]].extend(sorted(links))
    lus = []
    for (_hidden, events), per_event in zip(groups, assigned, strict=True):
        lun = int(events[0].sys_path.rsplit(":", 1)[1])
        serial = synthetic_identity(lun).serial
        assert serial is not None
        paths = sum(1 for e in events if e.subsystem == "scsi")
        lus.append(Lu(serial, paths, tuple(events), tuple(tuple(e) for e in per_event)))
    return lus


# --- one model, its figures -------------------------------------------------------


@dataclass
class Mode:
    """One storage model and the LUs it will see appear."""

    name: str
    polling: bool
    model: TimedModel
    marks: Marks
    lus: Iterator[Lu]
    events: TimedEvents | None
    seqnum: int = 1
    profiles: list[cProfile.Profile] = field(default_factory=list)


@dataclass
class Figure:
    """The appearances timed for one line: a mode, and whether the host idled first.

    :ivar idle: the LU appears after a random delay (the host idle meanwhile);
        without, right after the wait's first evaluation.
    """

    name: str
    mode: Mode
    idle: bool
    latencies: list[float] = field(default_factory=list)
    phases: list[dict[str, float]] = field(default_factory=list)
    applied: list[int] = field(default_factory=list)


def predicate_for(lu: Lu) -> Predicate:
    """The disk, usable, with its map and all its paths (4 on 4 HBAs) active."""
    return DiskExists(lu.serial) & MultipathPathsAtLeast(lu.serial, lu.paths)


def appearance(figure: Figure, delay: float, timed: bool, profile: bool) -> None:
    """Make one LU appear while a wait for it is in progress; record the latency."""
    mode = figure.mode
    lu = next(mode.lus)
    ready = threading.Event()
    last: list[float] = []
    failed: list[BaseException] = []
    events = mode.events
    batch = renumber(lu.events, mode.seqnum) if events is not None else []
    mode.seqnum += len(batch)

    def before_event(index: int) -> None:
        if events is None:
            return
        if index == len(batch) - 1:
            last.append(time.monotonic())
        events.push(batch[index])

    def appear() -> None:
        try:
            if not ready.wait(WAIT_TIMEOUT):
                return
            if delay > 0:
                time.sleep(delay)
            lu.relist(before_event)
            if events is None:
                last.append(time.monotonic())
        except BaseException as error:
            failed.append(error)

    def first_progress(_progress: object) -> None:
        ready.set()

    thread = threading.Thread(target=appear, name="bench-appear", daemon=True)
    thread.start()
    mode.marks.clear()
    gc.collect()
    gc.disable()
    try:
        with profiled(mode.profiles, profile):
            result = mode.model.rescan_and_wait_for(
                predicate_for(lu), timeout=WAIT_TIMEOUT, rescan=False, progress=first_progress
            )
            returned = time.monotonic()
    finally:
        gc.enable()
        ready.set()
        thread.join()
    if failed:
        raise failed[0]
    if not last or last[0] > returned:
        raise RuntimeError(f"{mode.name}: the wait for {lu.serial} returned before it appeared")
    if timed:
        figure.latencies.append(returned - last[0])
        figure.applied.append(result.events)
        figure.phases.append(phases(mode, last[0], returned))


@contextmanager
def profiled(profiles: list[cProfile.Profile], enabled: bool) -> Iterator[None]:
    """Profile this thread and the wait engine's threads started meanwhile (into
    ``profiles``, one per thread), when ``enabled``."""
    if not enabled:
        yield
        return

    def hook(_frame: object, _event: str, _arg: object) -> None:
        sys.setprofile(None)
        if threading.current_thread().name.startswith("tracker-wait"):
            engine = cProfile.Profile()
            profiles.append(engine)
            engine.enable()

    profiler = cProfile.Profile()
    threading.setprofile(hook)
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiles.append(profiler)
        threading.setprofile(None)


def phases(mode: Mode, last: float, returned: float) -> dict[str, float]:
    """Where one appearance's latency went (seconds per phase; they add up to it).

    * ``to-batch``: from the last event to the engine having taken its batch
      (event-driven: the wake-up and the rest of the coalescing ``window``;
      polling: the wait for the next listing and the listing, up to the first
      lookup);
    * ``lookups``, ``write``, ``other``: the batch -- re-reading its devices,
      its write transaction, and the rest (discovery, planning);
    * ``to-evaluation``: from the commit to the waiter evaluating;
    * ``evaluation``: the predicate read from the store;
    * ``return``: from the evaluation to the call returning.
    """
    marks = mode.marks
    evaluation = next(e for e in reversed(marks.evaluations) if e[2])
    write = max((w for w in marks.writes if w[1] <= evaluation[0]), key=lambda w: w[1])
    if mode.polling:
        start = min(s for s, _e in marks.lookups if s >= last)
    else:
        start = max(t for t in marks.window_ends if t <= write[0])
    lookups = sum(e - s for s, e in marks.lookups if s >= start and e <= write[0])
    return {
        "to-batch": start - last,
        "lookups": lookups,
        "write": write[1] - write[0],
        "other": write[0] - start - lookups,
        "to-evaluation": evaluation[0] - write[1],
        "evaluation": evaluation[1] - evaluation[0],
        "return": returned - evaluation[1],
    }


# --- the run --------------------------------------------------------------------------


def p95(values: list[float]) -> float:
    """:returns: the 95th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def idle_penalty() -> str:
    """How much slower this machine runs a little Python right after being idle.

    :returns: a note: the median of a short loop run back to back, and right
        after 0.5 s of sleep (a virtual CPU that idles may come back slower).
    """

    def loop() -> float:
        start = time.perf_counter()
        total = 0
        for i in range(20_000):
            total += i
        return time.perf_counter() - start

    warm, cold = [], []
    for _ in range(5):
        loop()
        warm.append(loop())
        time.sleep(0.5)
        cold.append(loop())
    w, c = statistics.median(warm), statistics.median(cold)
    return (
        f"# machine: a 20,000-step Python loop takes {_ms(w)} back to back and {_ms(c)} "
        f"right after 0.5 s idle ({c / w:.1f}x; median of 5)"
    )


def build_mode(
    name: str,
    polling: bool,
    store: Store,
    root: Path,
    lus: list[Lu],
    settings: WaitSettings,
) -> Mode:
    """Make a storage model on ``store`` and do its first (untimed) wait."""
    marks = Marks()
    time_writes(store, marks)
    events = None if polling else TimedEvents(marks)
    model = TimedModel(
        store,
        host_name="bench",
        source=TimedSource(root, marks),
        events=events,
        settings=settings,
    )
    model.marks = marks
    started = time.monotonic()
    model.check(WaitForNothing())
    emit(
        f"# {name}: first wait (full scan + reconcile of the host, untimed) "
        f"{time.monotonic() - started:.2f} s"
    )
    return Mode(name, polling, model, marks, iter(lus), events)


def run_dialect(dialect: str, trees: dict[str, tuple[Path, list[Lu]]], args: Any) -> None:
    """Build both models on fresh stores, alternate their appearances, print the figures."""
    settings = WaitSettings(
        poll_interval=args.poll_interval, window=args.window, progress_interval=3600.0
    )
    polling_name = f"polling {args.poll_interval:g} s"
    with scratch_dir() as sqlite_dir, ExitStack() as stack:
        modes = []
        for name, polling in (("event-driven", False), (polling_name, True)):
            store = stack.enter_context(fresh_store(dialect, sqlite_dir))
            root, lus = trees["polling" if polling else "events"]
            mode = build_mode(f"{dialect} {name}", polling, store, root, lus, settings)
            stack.callback(mode.model.close)
            modes.append(mode)
        event_mode, polling_mode = modes
        event = Figure(f"{dialect} event-driven", event_mode, idle=True)
        polled = Figure(f"{dialect} {polling_name}", polling_mode, idle=True)
        figures = [event, polled]
        if args.no_idle:
            figures.append(Figure(f"{dialect} event-driven, no idle", event_mode, idle=False))
        rng = random.Random(args.seed)
        started = time.monotonic()
        for index in range(args.appearances + 1):  # round 0 warms up
            delay = rng.uniform(0.0, args.poll_interval)
            for figure in figures:
                profile = args.profile is not None and index > 0 and figure is event
                appearance(figure, delay if figure.idle else 0.0, index > 0, profile)
        emit(
            f"# {dialect}: {args.appearances} appearances per figure, alternated, in "
            f"{time.monotonic() - started:.1f} s"
        )
        for figure in figures:
            note = "" if figure.idle else "; information only"
            emit(
                f"wait-latency {figure.name}: median {_ms(statistics.median(figure.latencies))}, "
                f"p95 {_ms(p95(figure.latencies))}, max {_ms(max(figure.latencies))} over "
                f"{len(figure.latencies)} appearances ({statistics.median(figure.applied):g} "
                f"events applied per wait{note})"
            )
        event_median = statistics.median(event.latencies)
        ratio = statistics.median(polled.latencies) / event_median
        ratio95 = p95(polled.latencies) / p95(event.latencies)
        verdict = "met" if event_median <= 0.050 else "MISSED"
        emit(
            f"wait-latency {dialect}: polling / event-driven {ratio:.1f}x (median), "
            f"{ratio95:.1f}x (p95) (goal: event-driven median <= 50 ms: {verdict})"
        )
        for figure in figures:
            names = list(figure.phases[0])
            parts = ", ".join(
                f"{name} {_ms(statistics.median(p[name] for p in figure.phases))}" for name in names
            )
            emit(f"breakdown {figure.name} (median of each phase): {parts}")
        if args.profile is not None:
            import pstats

            path = args.profile / f"waiting-{dialect}-event-driven.pstats"
            pstats.Stats(*event_mode.profiles).dump_stats(path)
            emit(f"# wrote {path} (waiter and engine threads of the event-driven waits)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dialect",
        choices=(*ALL_DIALECTS, "all"),
        action="append",
        help="database to run on (repeatable; default: sqlite and postgresql)",
    )
    parser.add_argument("--hbas", type=int, default=4)
    parser.add_argument("--luns", type=int, default=1024)
    parser.add_argument(
        "--appearances", type=int, default=100, help="timed appearances per figure (default 100)"
    )
    parser.add_argument(
        "--poll-interval", type=float, default=1.0, help="the polling fallback's interval (s)"
    )
    parser.add_argument(
        "--window",
        type=float,
        default=WaitSettings().window,
        help="the engine's coalescing window (s; default the [waiting] default)",
    )
    parser.add_argument("--seed", type=int, default=20261204, help="seed of the random delays")
    parser.add_argument(
        "--no-idle",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time event-driven appearances with no idle time before them "
        "(information; default on)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="write a cProfile of the event-driven waits into DIR (slows the figures)",
    )
    args = parser.parse_args()
    if args.appearances < 1:
        parser.error("--appearances must be at least 1")
    if args.poll_interval <= 0:
        parser.error("--poll-interval must be positive")
    dialects: list[str] = []
    for value in args.dialect or DEFAULT_DIALECTS:
        for dialect in ALL_DIALECTS if value == "all" else (value,):
            if dialect not in dialects:
                dialects.append(dialect)
    runnable = []
    for dialect in dialects:
        reason = unavailable(dialect)
        if reason is None:
            runnable.append(dialect)
        else:
            emit(f"# skipping {dialect}: {reason}")
    if not runnable:
        return
    # One LU per appearance (and the warm-up) per figure and database, per tree.
    per_dialect = {
        "events": (args.appearances + 1) * (2 if args.no_idle else 1),
        "polling": args.appearances + 1,
    }
    if per_dialect["events"] * len(runnable) > args.luns:
        parser.error(f"--luns must be at least {per_dialect['events'] * len(runnable)}")
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    emit(idle_penalty())
    beds: list[Testbed] = []
    try:
        trees = build_trees(args, per_dialect, len(runnable), beds)
        for offset, dialect in enumerate(runnable):
            run_dialect(dialect, {kind: trees[kind][offset] for kind in trees}, args)
    finally:
        for bed in beds:
            shutil.rmtree(bed.root, ignore_errors=True)


def build_trees(
    args: Any, per_dialect: dict[str, int], dialects: int, beds: list[Testbed]
) -> dict[str, list[tuple[Path, list[Lu]]]]:
    """Build one tree per mode (appended to ``beds``) and unlist the LUs that will appear.

    :returns: for each tree (``events``, ``polling``), per database: its root
        and the LUs it makes appear, in order.
    """
    started = time.monotonic()
    trees: dict[str, list[tuple[Path, list[Lu]]]] = {"events": [], "polling": []}
    unlisted = {}
    for kind, slices in trees.items():
        bed = Testbed.create(prefix=f"bench-waiting-{kind}-")
        beds.append(bed)
        topology = scale(bed, hbas=args.hbas, luns=args.luns)
        lus = make_lus(bed.root)
        count = per_dialect[kind]
        wanted = count * dialects
        chosen = lus[:: max(1, len(lus) // wanted)][:wanted]
        for lu in chosen:
            lu.unlist()
        unlisted[kind] = len(chosen)
        for offset in range(dialects):
            slices.append((bed.root, chosen[offset * count : (offset + 1) * count]))
    emit(
        f"# built {topology.name} twice (one tree per mode) in "
        f"{time.monotonic() - started:.1f} s: {len(lus)} LUs, {len(lus[0].events)} events "
        f"each; unlisted: {unlisted['events']} (event tree), {unlisted['polling']} (polling "
        f"tree); window {args.window:g} s, python {sys.version.split()[0]}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    return trees


if __name__ == "__main__":
    main()
