"""Benchmark the device sources on a large simulated host, against lsscsi.

Builds ``scale(hbas=4, luns=1024)`` (4096 sd disks, 1024 dm maps) on tmpfs,
then times, as medians of ``--repeat`` runs:

* ``lsscsi -y <dir>/sys -t`` (wall time of the command);
* :class:`tracker.host.sources.PyudevSource` ``scan()`` in a subprocess under
  umockdev's preload (the in-process scan time it measures itself);
* :class:`tracker.host.sources.SysfsTreeSource` ``scan()`` in this process.

Prints one line per figure, with its ratio to lsscsi.

Run: ``.venv/bin/python benchmarks/host_sources.py [--hbas 4] [--luns 1024]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time

from tracker.host.executor import SubprocessExecutor
from tracker.host.sources import SysfsTreeSource
from tracker.testing.testbed import Testbed, find_preload_library, run_under_preload
from tracker.testing.topologies import scale


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hbas", type=int, default=4)
    parser.add_argument("--luns", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    executor = SubprocessExecutor()
    library = find_preload_library(executor)
    bed = Testbed.create(prefix="bench-")
    try:
        started = time.perf_counter()
        scale(bed, hbas=args.hbas, luns=args.luns)
        build = time.perf_counter() - started

        lsscsi = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            executor.run(["lsscsi", "-y", str(bed.sys_dir), "-t"], timeout=300).check()
            lsscsi.append(time.perf_counter() - started)

        pyudev = []
        count_pyudev = 0
        for _ in range(args.repeat):
            result = run_under_preload(
                bed.root,
                ["python", "-m", "tracker.host.dump_records", "--source", "pyudev", "--no-records"],
                executor,
                library=library,
                timeout=600,
            ).check()
            document = json.loads(result.stdout)
            pyudev.append(float(document["scan_seconds"]))
            count_pyudev = int(document["count"])

        sysfs = []
        source = SysfsTreeSource(bed.root)
        count_sysfs = 0
        for _ in range(args.repeat):
            started = time.perf_counter()
            count_sysfs = len(source.scan())
            sysfs.append(time.perf_counter() - started)

        base = statistics.median(lsscsi)
        print(f"testbed {args.hbas}x{args.luns} on {bed.root}: built in {build:.2f} s")
        print(f"lsscsi -y sys -t: {base:.3f} s (1.00x lsscsi)")
        for label, times, count in (
            ("PyudevSource.scan (preload)", pyudev, count_pyudev),
            ("SysfsTreeSource.scan", sysfs, count_sysfs),
        ):
            median = statistics.median(times)
            print(f"{label}: {median:.3f} s, {count} records ({median / base:.2f}x lsscsi)")
    finally:
        shutil.rmtree(bed.root, ignore_errors=True)


if __name__ == "__main__":
    main()
