"""Discovery + reconcile of a large simulated host, against lsscsi in the same run.

Builds ``scale(hbas=4, luns=1024)`` (4096 paths, 4096 sd disks, 1024 multipath
maps) on tmpfs, then prints one line per figure as a ratio to
``lsscsi -y <dir>/sys -t`` (median of ``--repeat`` runs each):

* raw pyudev enumeration reading the attributes discovery needs
  (:class:`~tracker.host.sources.PyudevSource` in a subprocess under umockdev's
  preload; the scan time it measures itself);
* the sysfs-tree scan alone (:class:`~tracker.host.sources.SysfsTreeSource`);
* full scan + discover + reconcile into an empty store (goal <= 5x);
* an unchanged re-reconcile, scan and discovery included (goal <= 2x, zero
  rows written), and the reconcile step alone on an already discovered state.

Run: ``.venv/bin/python benchmarks/discovery.py [--dialect sqlite|postgresql|all]
[--hbas 4] [--luns 1024] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tracker.db.models import Base
from tracker.db.store import Store
from tracker.discovery.discover import discover
from tracker.discovery.model import HostState
from tracker.host.executor import SubprocessExecutor
from tracker.host.sources import SysfsTreeSource
from tracker.reconcile import ReconcileResult, reconcile
from tracker.testing import databases
from tracker.testing.queries import count_queries
from tracker.testing.testbed import Testbed, find_preload_library, run_under_preload
from tracker.testing.topologies import scale


def median_of(repeat: int, run: Callable[[], object]) -> float:
    """:returns: the median wall time of ``repeat`` calls of ``run``."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@contextmanager
def empty_store(dialect: str, sqlite_dir: str) -> Iterator[Store]:
    """A store with the schema at head, in a database made for this run."""
    with databases.throwaway_database(dialect, sqlite_dir) as database:
        store = Store(database.url, auto_upgrade="always")
        try:
            yield store
        finally:
            store.dispose()


def wipe(store: Store) -> None:
    """Empty every table (the next reconcile starts from nothing)."""
    with store.write() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())


def line(label: str, seconds: float, lsscsi: float, note: str = "") -> None:
    """Print one figure."""
    suffix = f" ({note})" if note else ""
    print(f"{label}: {seconds:.3f} s, {seconds / lsscsi:.2f}x lsscsi{suffix}", flush=True)


def bench_reconcile(
    store: Store,
    dialect: str,
    source: SysfsTreeSource,
    state: HostState,
    lsscsi: float,
    repeat: int,
) -> None:
    """Print the full and the unchanged reconcile figures on one database."""

    def full() -> ReconcileResult:
        return reconcile(store, discover(source.scan(), state.host_name))

    full_times = []
    written = 0
    for _ in range(repeat):
        wipe(store)
        started = time.perf_counter()
        written = full().rows_written
        full_times.append(time.perf_counter() - started)
    line(
        f"full scan + discover + reconcile into an empty {dialect} store",
        statistics.median(full_times),
        lsscsi,
        f"{written} rows written; goal <= 5x",
    )
    with count_queries(store.engine) as log:
        unchanged = median_of(repeat, full)
    line(
        f"unchanged re-reconcile on {dialect}, scan + discover included",
        unchanged,
        lsscsi,
        f"{len(log.writes)} rows written; goal <= 2x with zero writes",
    )
    line(
        f"unchanged reconcile step alone on {dialect}",
        median_of(repeat, lambda: reconcile(store, state)),
        lsscsi,
        "HostState already discovered; information only",
    )


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dialect", choices=["sqlite", "postgresql", "mariadb", "all"], action="append"
    )
    parser.add_argument("--hbas", type=int, default=4)
    parser.add_argument("--luns", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-pyudev", action="store_true")
    args = parser.parse_args()
    dialects = args.dialect or ["sqlite", "postgresql"]
    if "all" in dialects:
        dialects = list(databases.DIALECTS)

    executor = SubprocessExecutor()
    bed = Testbed.create(prefix="bench-discovery-")
    sqlite_dir = tempfile.mkdtemp(prefix="bench-store-", dir=str(bed.root.parent))
    try:
        started = time.perf_counter()
        scale(bed, hbas=args.hbas, luns=args.luns)
        print(
            f"# testbed {args.hbas} HBAs x {args.luns} LUNs on {bed.root}, built in "
            f"{time.perf_counter() - started:.1f} s; medians of {args.repeat}",
            flush=True,
        )
        lsscsi = median_of(
            args.repeat,
            lambda: executor.run(["lsscsi", "-y", str(bed.sys_dir), "-t"], timeout=300).check(),
        )
        print(f"lsscsi -y <testbed>/sys -t: {lsscsi:.3f} s (the baseline)", flush=True)

        if not args.skip_pyudev:
            library = find_preload_library(executor)
            pyudev_times = []
            for _ in range(args.repeat):
                result = run_under_preload(
                    bed.root,
                    [
                        "python",
                        "-m",
                        "tracker.host.dump_records",
                        "--source",
                        "pyudev",
                        "--no-records",
                    ],
                    executor,
                    library=library,
                    timeout=900,
                ).check()
                pyudev_times.append(float(json.loads(result.stdout)["scan_seconds"]))
            line(
                "pyudev enumeration (attributes discovery needs)",
                statistics.median(pyudev_times),
                lsscsi,
                "libudev under the preload",
            )

        source = SysfsTreeSource(bed.root)
        records = source.scan()
        line(
            "sysfs-tree scan",
            median_of(args.repeat, source.scan),
            lsscsi,
            f"{len(records)} records",
        )
        state = discover(records, "bench-host")
        line(
            "discover (records -> HostState)",
            median_of(args.repeat, lambda: discover(records, "bench-host")),
            lsscsi,
            f"{len(state.scsi_devices)} paths, {len(state.multipath_maps)} maps",
        )

        for dialect in dialects:
            reason = databases.server_unavailable(dialect)
            if reason is not None:
                print(f"# {dialect}: skipped ({reason})")
                continue
            with empty_store(dialect, sqlite_dir) as store:
                bench_reconcile(store, dialect, source, state, lsscsi, args.repeat)
    finally:
        shutil.rmtree(bed.root, ignore_errors=True)
        shutil.rmtree(sqlite_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
