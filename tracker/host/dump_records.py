"""Print the records a device source sees, as JSON (``python -m tracker.host.dump_records``).

Used to run :class:`~tracker.host.sources.PyudevSource` in a process started
under umockdev's preload library, which is the only way pyudev sees a testbed::

    LD_PRELOAD=libumockdev-preload.so.0 UMOCKDEV_DIR=/dev/shm/bed \\
        python -m tracker.host.dump_records --source pyudev

Output: one JSON object ``{"source": ..., "scan_seconds": ..., "count": ...,
"records": [...]}``; each record is in the form of
:func:`tracker.host.records.record_to_json`. ``--no-records`` leaves the list
out (for timing).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tracker.host.records import record_to_json
from tracker.host.sources import PRODUCTION_ROOT, DeviceSource, PyudevSource, SysfsTreeSource


def main(argv: Sequence[str] | None = None) -> int:
    """Scan with the chosen source and print the JSON document on stdout.

    :param argv: command-line arguments (``sys.argv[1:]`` when ``None``).
    :returns: the exit status, 0.
    :raises tracker.exceptions.SysfsRootMissing: when ``--root`` has no
        ``sys/`` directory.
    """
    parser = argparse.ArgumentParser(prog="python -m tracker.host.dump_records")
    parser.add_argument("--source", choices=("pyudev", "sysfs"), default="pyudev")
    parser.add_argument(
        "--root", type=Path, default=PRODUCTION_ROOT, help="sysfs tree root (sysfs source)"
    )
    parser.add_argument("--no-records", action="store_true", help="print only counts and time")
    args = parser.parse_args(argv)
    source: DeviceSource = PyudevSource() if args.source == "pyudev" else SysfsTreeSource(args.root)
    started = time.perf_counter()
    records = source.scan()
    elapsed = time.perf_counter() - started
    document = {
        "source": args.source,
        "scan_seconds": elapsed,
        "count": len(records),
        "records": [] if args.no_records else [record_to_json(record) for record in records],
    }
    json.dump(document, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
