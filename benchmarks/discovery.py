"""Discovery + reconcile of a large simulated host, against lsscsi in the same run.

Builds ``scale(hbas=4, luns=1024)`` (4096 paths, 4096 sd disks, 1024 multipath
maps) on tmpfs and prints one line per figure as a ratio to
``lsscsi -y <dir>/sys -t``. Every figure is timed in alternation with lsscsi,
run by run (tracked, lsscsi, tracked, lsscsi ...), so that a slow moment of the
machine hits both sides alike; the ratio printed is the median of the per-run
ratios.

The command as users run it, timed as a whole process (start-up, imports,
scan, discovery, reconcile, output):

* ``tracker --help`` (start-up alone; information only);
* ``tracker discover --root <testbed>`` into an empty store (goal <= 5x);
* the same into a store that already holds that host, unchanged (goal <= 3x).

And, in this process, for information: the sysfs-tree scan alone, discovery
(records -> HostState), the reconcile step on an already discovered state, and
raw pyudev enumeration under umockdev's preload.

Run: ``.venv/bin/python benchmarks/discovery.py [--dialect sqlite|postgresql|mariadb|all]
[--hbas 4] [--luns 1024] [--repeat 5] [--quick] [--skip-pyudev]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import Alternated, alternated, emit, fresh_store, run_process, unavailable

from tracker.db.models import Base
from tracker.db.store import Store
from tracker.discovery.discover import discover
from tracker.host.executor import SubprocessExecutor
from tracker.host.sources import SysfsTreeSource
from tracker.hotpath import paused_gc
from tracker.reconcile import reconcile
from tracker.testing import databases
from tracker.testing.testbed import Testbed, find_preload_library, run_under_preload
from tracker.testing.topologies import scale

HOST_NAME = "bench-host"
#: The records dump the pyudev figure runs under the preload.
DUMP_RECORDS = ("python", "-m", "tracker.host.dump_records")


def machine() -> str:
    """:returns: what the figures were measured on: CPUs, CPU model, Python, load."""
    model = "unknown CPU"
    try:
        for text in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if text.startswith("model name"):
                model = text.partition(":")[2].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{dt.date.today().isoformat()}, nproc {os.cpu_count()}, {model}, "
        f"Python {platform.python_version()}, load average {load:.2f} at start"
    )


def tracker_command() -> list[str]:
    """:returns: the ``tracker`` console script beside this interpreter, as users run it."""
    script = Path(sys.executable).parent / "tracker"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "tracker"]


def wipe(store: Store) -> None:
    """Empty every table (the next discover starts from nothing)."""
    with store.write() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())


def seconds(value: float) -> str:
    """:returns: ``value`` as ``0.123 s``."""
    return f"{value:.3f} s"


def process_line(label: str, timing: Alternated, note: str) -> None:
    """Print one whole-process figure."""
    tracked = sorted(timing.tracked)[len(timing.tracked) // 2]
    lsscsi = sorted(timing.baseline)[len(timing.baseline) // 2]
    emit(f"{label}: {seconds(tracked)}, {timing.ratio:.2f}x lsscsi ({seconds(lsscsi)}) ({note})")


def timed(run: Callable[[], object]) -> Callable[[], float]:
    """:returns: a function that runs ``run`` (collector paused, as the command
    runs it) and returns its seconds."""

    def once() -> float:
        with paused_gc():
            start = time.perf_counter()
            run()
            return time.perf_counter() - start

    return once


def bench_store(
    dialect: str,
    sqlite_dir: str,
    bed: Testbed,
    lsscsi: Callable[[], float],
    repeat: int,
) -> None:
    """Print the whole-process discover figures on one database."""
    with fresh_store(dialect, sqlite_dir) as store:
        url = store.engine.url.render_as_string(hide_password=False)
        argv = [
            *tracker_command(),
            "discover",
            "--root",
            str(bed.root),
            "--host-name",
            HOST_NAME,
            "--database-url",
            url,
        ]

        def discover_process() -> float:
            return run_process(argv)

        empty = alternated(discover_process, lsscsi, repeat, before=lambda: wipe(store))
        process_line(
            f"tracker discover --root T into an empty {dialect} store (whole process)",
            empty,
            "goal <= 5x",
        )
        unchanged = alternated(discover_process, lsscsi, repeat)
        process_line(
            f"tracker discover --root T, unchanged, {dialect} (whole process)",
            unchanged,
            "goal <= 3x",
        )
        state = discover(SysfsTreeSource(bed.root).scan(), HOST_NAME)
        step = alternated(timed(lambda: reconcile(store, state)), lsscsi, repeat)
        process_line(
            f"unchanged reconcile step alone on {dialect}",
            step,
            "in process, HostState already discovered; information only",
        )


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--dialect", choices=["sqlite", "postgresql", "mariadb", "all"], action="append"
    )
    parser.add_argument("--hbas", type=int, default=4)
    parser.add_argument("--luns", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 2 HBAs x 128 LUNs, 3 repeats"
    )
    parser.add_argument("--skip-pyudev", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.hbas, args.luns, args.repeat = 2, 128, 3
    dialects = args.dialect or ["sqlite", "postgresql"]
    if "all" in dialects:
        dialects = list(databases.DIALECTS)

    executor = SubprocessExecutor()
    bed = Testbed.create(prefix="bench-discovery-")
    sqlite_dir = tempfile.mkdtemp(prefix="bench-store-", dir=str(bed.root.parent))
    try:
        started = time.perf_counter()
        scale(bed, hbas=args.hbas, luns=args.luns)
        emit(f"# machine: {machine()}")
        emit(
            f"# testbed {args.hbas} HBAs x {args.luns} LUNs on {bed.root}, built in "
            f"{time.perf_counter() - started:.1f} s; each figure alternated run by run with "
            f"lsscsi, {args.repeat} timed rounds after one untimed; median of per-run ratios"
        )
        lsscsi_argv = ["lsscsi", "-y", str(bed.sys_dir), "-t"]

        def lsscsi() -> float:
            return run_process(lsscsi_argv)

        process_line(
            "tracker --help (whole process)",
            alternated(lambda: run_process([*tracker_command(), "--help"]), lsscsi, args.repeat),
            "start-up alone; information only",
        )

        source = SysfsTreeSource(bed.root)
        records = source.scan()
        process_line(
            "sysfs-tree scan",
            alternated(timed(source.scan), lsscsi, args.repeat),
            f"in process, {len(records)} records; information only",
        )
        state = discover(records, HOST_NAME)
        process_line(
            "discover (records -> HostState)",
            alternated(timed(lambda: discover(records, HOST_NAME)), lsscsi, args.repeat),
            f"in process, {len(state.scsi_devices)} paths, {len(state.multipath_maps)} maps; "
            "information only",
        )

        if not args.skip_pyudev:
            library = find_preload_library(executor)

            def pyudev() -> float:
                result = run_under_preload(
                    bed.root,
                    [*DUMP_RECORDS, "--source", "pyudev", "--no-records"],
                    executor,
                    library=library,
                    timeout=900,
                ).check()
                return float(json.loads(result.stdout)["scan_seconds"])

            process_line(
                "pyudev enumeration (attributes discovery needs)",
                alternated(pyudev, lsscsi, args.repeat),
                "libudev under the preload, scan time measured inside; information only",
            )

        for dialect in dialects:
            reason = unavailable(dialect)
            if reason is not None:
                emit(f"# {dialect}: skipped ({reason})")
                continue
            bench_store(dialect, sqlite_dir, bed, lsscsi, args.repeat)
    finally:
        shutil.rmtree(bed.root, ignore_errors=True)
        shutil.rmtree(sqlite_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
