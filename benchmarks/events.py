"""Benchmark the live model (incremental reconcile) on the 4 HBA x 1024 LUN host.

Builds ``scale(hbas=4, luns=1024)`` (4096 sd disks, 1024 dm maps) on tmpfs and
makes the kernel's events of every LU: for each of its four paths ``scsi_device``
-> its ``scsi_device`` class device -> ``scsi_disk`` -> ``block``, then the
map's ``change`` (the order :class:`tracker.testing.live.LiveTestbed` sends;
the events are made from the tree rather than recorded by a live build, which
takes minutes at this size). A device source over the tree can *hide* LUs
(their four SCSI devices and their map): the model starts on a host without
them, then an LU is "mapped" by unhiding it and queueing its events. Figures:

* ``lun-latency``: from one LUN's last event (4 paths + 1 map) being queued to
  its rows committed (:meth:`LiveModel.step` returning), median and p95 over
  ``--luns-timed`` LUNs; baseline: one ``lookup`` of each of the LUN's
  devices (the reads the model cannot avoid). Goal: median <= 10 ms, p95 <= 30 ms.
* ``burst``: all 4096 paths' events (the whole array mapped at once) applied
  in batches of ``max_batch``, against a full scan + discovery + reconcile of
  the final tree, alternated run by run in the same process, from the same
  state (no LUN stored). Goal: <= 1.5x.

The model runs with ``window=0``: a batch is what is queued when the first
event is taken (the coalescing window adds its own length to the latency).

Run: ``.venv/bin/python benchmarks/events.py [--dialect sqlite|postgresql|all] [--repeat N]``
"""

from __future__ import annotations

import argparse
import gc
import re
import shutil
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ALL_DIALECTS, emit, fresh_store, interleaved, scratch_dir, unavailable

from tracker.discovery import discover
from tracker.host.events import DeviceAction, DeviceEvent, InMemoryEventSource
from tracker.host.records import DeviceRecord
from tracker.host.sources import SysfsTreeSource
from tracker.reconcile import LiveModel, reconcile
from tracker.testing.testbed import Testbed
from tracker.testing.topologies import scale

_LUN_PATH = re.compile(r"^(.*/target[^/]+/[0-9]+:[0-9]+:[0-9]+:[0-9]+)(?:/|$)")


class HidingSource:
    """A sysfs-tree source that hides the devices below some paths."""

    def __init__(self, root: Path) -> None:
        self.inner = SysfsTreeSource(root)
        self.hidden: set[str] = set()

    def _visible(self, sys_path: str) -> bool:
        match = _LUN_PATH.match(sys_path)
        top = match.group(1) if match else sys_path
        return top not in self.hidden

    def scan(self) -> tuple[DeviceRecord, ...]:
        return tuple(r for r in self.inner.scan() if self._visible(r.sys_path))

    def lookup(self, sys_path: str) -> DeviceRecord | None:
        return self.inner.lookup(sys_path) if self._visible(sys_path) else None


def lun_groups(root: Path) -> list[tuple[set[str], list[DeviceEvent]]]:
    """Each LU's hidden paths (its SCSI devices and map) and its events, in order."""
    records = SysfsTreeSource(root).scan()
    by_path = {r.sys_path: r for r in records}
    groups = []
    for dm in (r for r in records if r.sys_name.startswith("dm-")):
        hidden = {dm.sys_path}
        events: list[DeviceEvent] = []
        for name, target in sorted(dm.links.items()):
            if not name.startswith("slaves/") or target not in by_path:
                continue
            block = by_path[target]
            device = by_path[block.parent or target.rsplit("/block/", 1)[0]]
            hidden.add(device.sys_path)
            hctl = device.sys_name
            events += [
                DeviceEvent(DeviceAction.ADD, device.sys_path, "scsi", "scsi_device"),
                DeviceEvent(
                    DeviceAction.ADD, f"{device.sys_path}/scsi_device/{hctl}", "scsi_device"
                ),
                DeviceEvent(DeviceAction.ADD, f"{device.sys_path}/scsi_disk/{hctl}", "scsi_disk"),
                DeviceEvent(DeviceAction.ADD, block.sys_path, "block", "disk"),
            ]
        events.append(DeviceEvent(DeviceAction.CHANGE, dm.sys_path, "block", "disk"))
        groups.append((hidden, events))
    return groups


def renumber(events: Iterable[DeviceEvent], start: int) -> list[DeviceEvent]:
    """The events with consecutive sequence numbers from ``start`` (no gap)."""
    import dataclasses

    return [dataclasses.replace(e, seqnum=start + i) for i, e in enumerate(events)]


def latency(store_dialect: str, root: Path, groups: list, count: int, sqlite_dir: str) -> None:
    source = HidingSource(root)
    timed = groups[:: max(1, len(groups) // count)][:count]
    for hidden, _events in timed:
        source.hidden |= hidden
    with fresh_store(store_dialect, sqlite_dir) as store:
        events = InMemoryEventSource()
        model = LiveModel(store, "bench", source, events, window=0.0)
        model.start()
        seqnum = 1
        times: list[float] = []
        lookups: list[float] = []
        for hidden, lun_events in timed:
            source.hidden -= hidden
            batch = renumber(lun_events, seqnum)
            seqnum += len(batch)
            gc.collect()
            gc.disable()
            try:
                events.push(*batch)
                start = time.perf_counter()
                result = model.step(0)
                times.append(time.perf_counter() - start)
                start = time.perf_counter()
                for path in sorted(hidden):
                    source.inner.lookup(path)
                lookups.append(time.perf_counter() - start)
            finally:
                gc.enable()
            assert result is not None and not result.resynced and result.events == len(batch)
            assert model.step(0) is None
        times.sort()
        median = statistics.median(times)
        p95 = times[min(len(times) - 1, round(0.95 * len(times)) - 1)]
        base = statistics.median(lookups)
        emit(
            f"lun-latency {store_dialect}: median {median * 1000:.2f} ms, "
            f"p95 {p95 * 1000:.2f} ms over {len(times)} LUNs; {median / base:.2f}x the "
            f"{len(timed[0][0])} lookups of the LUN's devices ({base * 1000:.2f} ms) "
            f"(goal: median <= 10 ms, p95 <= 30 ms)"
        )


def burst(store_dialect: str, root: Path, groups: list, repeat: int, sqlite_dir: str) -> None:
    source = HidingSource(root)
    every = set().union(*(hidden for hidden, _ in groups))
    all_events = [e for _hidden, lun_events in groups for e in lun_events]
    with fresh_store(store_dialect, sqlite_dir) as store:
        events = InMemoryEventSource()
        model = LiveModel(store, "bench", source, events, window=0.0)
        source.hidden = set(every)
        model.start()
        full_source = HidingSource(root)
        full_source.hidden = set(every)
        reconcile(store, discover(full_source.scan(), "full"))

        def reset() -> None:
            source.hidden = set(every)
            full_source.hidden = set(every)
            model.resync("reset")
            reconcile(store, discover(full_source.scan(), "full"))
            source.hidden = set()
            full_source.hidden = set()

        def tracked() -> int:
            events.push(*renumber(all_events, 1))
            batches = 0
            while (result := model.step(0)) is not None:
                assert not result.resynced
                batches += 1
            return batches

        def baseline() -> None:
            reconcile(store, discover(full_source.scan(), "full"))

        reset()
        seconds, base, batches = interleaved(tracked, baseline, repeat, between=reset)
        emit(
            f"burst {store_dialect}: {len(all_events)} events in {batches} batches, "
            f"{seconds:.3f} s, {seconds / base:.2f}x a full scan + reconcile of the final "
            f"tree ({base:.3f} s) (goal <= 1.5x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialect", choices=(*ALL_DIALECTS, "all"), action="append")
    parser.add_argument("--hbas", type=int, default=4)
    parser.add_argument("--luns", type=int, default=1024)
    parser.add_argument("--luns-timed", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("lun-latency", "burst"), action="append")
    args = parser.parse_args()
    dialects: list[str] = []
    for value in args.dialect or ("sqlite", "postgresql"):
        for dialect in ALL_DIALECTS if value == "all" else (value,):
            if dialect not in dialects:
                dialects.append(dialect)
    only = set(args.only or ("lun-latency", "burst"))
    bed = Testbed.create(prefix="bench-events-")
    try:
        started = time.perf_counter()
        topology = scale(bed, hbas=args.hbas, luns=args.luns)
        groups = lun_groups(bed.root)
        emit(
            f"# built {topology.name} in {time.perf_counter() - started:.1f} s: "
            f"{len(groups)} LUs, {sum(len(e) for _h, e in groups)} events"
        )
        with scratch_dir() as sqlite_dir:
            for dialect in dialects:
                reason = unavailable(dialect)
                if reason is not None:
                    emit(f"# skipping {dialect}: {reason}")
                    continue
                if "lun-latency" in only:
                    latency(dialect, bed.root, groups, args.luns_timed, sqlite_dir)
                if "burst" in only:
                    burst(dialect, bed.root, groups, args.repeat, sqlite_dir)
    finally:
        shutil.rmtree(bed.root, ignore_errors=True)


if __name__ == "__main__":
    main()
