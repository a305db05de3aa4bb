"""The live model: events applied to the stored rows, batching, resync.

Driven by an in-memory event source over a live testbed (events in the
kernel's order, see :mod:`tracker.testing.live`); the stored rows are compared
with a full reconcile of the same tree where it matters (the full equivalence
is in ``test_incremental_equivalence.py``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tracker.db.store import Store
from tracker.discovery import discover
from tracker.exceptions import InvalidInput, StoreUnavailable
from tracker.host.events import DeviceEvent, InMemoryEventSource
from tracker.host.records import DeviceRecord
from tracker.host.sources import SysfsTreeSource
from tracker.reconcile import LiveModel, journal, observed_host, reconcile
from tracker.testing.fakes import FakeClock
from tracker.testing.live import LiveTestbed, to_device_events
from tracker.testing.specs import Hctl
from tracker.testing.topologies import _Allocator, _lun, fc_multipath, synthetic_identity

pytestmark = pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)

_BOOKKEEPING = {"host_name", "seen_at", "changed_at"}


def rows_of(store: Store, host_name: str) -> tuple[tuple[str, ...], dict[str, list[Any]]]:
    host, rows = observed_host(store, host_name)
    return host.warnings, {
        kind: [{k: v for k, v in row.items() if k not in _BOOKKEEPING} for row in kind_rows]
        for kind, kind_rows in rows.items()
    }


def full(store: Store, root: Path) -> Any:
    reconcile(store, discover(SysfsTreeSource(root).scan(), "full"))
    return rows_of(store, "full")


class RecordingSource:
    """A device source that remembers calls and can act in the middle of a scan."""

    def __init__(self, root: Path, events: InMemoryEventSource) -> None:
        self.inner = SysfsTreeSource(root)
        self.events = events
        self.calls: list[str] = []
        self.lookups: list[str] = []
        self.during_scan: Any = None

    def scan(self) -> tuple[DeviceRecord, ...]:
        self.calls.append(f"scan (events started: {self.events.started})")
        records = self.inner.scan()
        if self.during_scan is not None:
            action, self.during_scan = self.during_scan, None
            action()
        return records

    def lookup(self, sys_path: str) -> DeviceRecord | None:
        self.lookups.append(sys_path)
        return self.inner.lookup(sys_path)


@pytest.fixture
def bed() -> Iterator[LiveTestbed]:
    root = LiveTestbed.create(prefix="incremental-").root
    live = LiveTestbed(root, deliver=False)
    fc_multipath(live, luns=2)
    try:
        yield live
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def events() -> InMemoryEventSource:
    return InMemoryEventSource()


@pytest.fixture
def source(bed: LiveTestbed, events: InMemoryEventSource) -> RecordingSource:
    return RecordingSource(bed.root, events)


def model_of(store: Store, source: RecordingSource, **kwargs: Any) -> LiveModel:
    kwargs.setdefault("window", 0.0)
    return LiveModel(store, "live", source, source.events, **kwargs)


def new_lun(bed: LiveTestbed, host: int, lun: int, seed: int) -> Any:
    identity = synthetic_identity(seed)
    return _lun(Hctl(host, 0, 0, lun), identity, _Allocator(bed).disk(identity))


def push(events: InMemoryEventSource, uevents: Any) -> tuple[DeviceEvent, ...]:
    converted = to_device_events(uevents)
    events.push(*converted)
    return converted


def drain(model: LiveModel) -> list[Any]:
    results = []
    while (result := model.step(0)) is not None:
        results.append(result)
    return results


# --- start ----------------------------------------------------------------------


def test_start_subscribes_before_it_scans_and_reconciles_the_host(
    store: Store, bed: LiveTestbed, source: RecordingSource
) -> None:
    result = model_of(store, source).start()
    assert source.calls == ["scan (events started: True)"]
    assert result.resynced and result.reason == "initial scan"
    assert sum(1 for c in result.changes if c.kind == "scsi_device") == 8
    assert rows_of(store, "live")[1] == full(store, bed.root)[1]


def test_events_of_a_change_made_during_the_initial_scan_are_applied_after_it(
    store: Store, bed: LiveTestbed, source: RecordingSource, events: InMemoryEventSource
) -> None:
    """The scan misses the LUN plugged meanwhile; its events, queued since the
    subscription, bring it in (and are applied in seqnum order)."""

    def plug() -> None:
        uevents = bed.plug_lun(new_lun(bed, 0, 5, 700))
        events.push(*reversed(to_device_events(uevents)))  # arrival order scrambled

    source.during_scan = plug
    result = model_of(store, source).start()
    assert result.resynced and result.events > 0
    assert any(c.kind == "scsi_device" and c.key == "0:0:0:5" for c in result.changes)
    assert result.first_seqnum is not None and result.last_seqnum is not None
    assert rows_of(store, "live") == full(store, bed.root)


def test_events_for_state_the_scan_already_saw_change_nothing(
    store: Store, bed: LiveTestbed, source: RecordingSource, events: InMemoryEventSource
) -> None:
    uevents = bed.plug_lun(new_lun(bed, 1, 5, 701))  # before the scan: the scan sees it
    push(events, uevents)
    result = model_of(store, source).start()
    assert result.events == len(uevents)
    lun_changes = [c for c in result.changes if "1:0:0:5" in c.key]
    assert [c.event for c in lun_changes] == ["appeared"]  # from the scan, not again
    assert rows_of(store, "live") == full(store, bed.root)


# --- applying events ----------------------------------------------------------------


def test_a_plugged_lun_is_read_by_lookup_only_and_written_in_one_batch(
    store: Store, bed: LiveTestbed, source: RecordingSource, events: InMemoryEventSource
) -> None:
    model = model_of(store, source)
    model.start()
    generation = observed_host(store, "live")[0].generation
    source.lookups.clear()
    uevents = push(events, bed.plug_lun(new_lun(bed, 0, 9, 702)))
    results = drain(model)
    assert len(results) == 1 and results[0].events == len(uevents)
    assert not results[0].resynced
    assert source.calls == ["scan (events started: True)"]  # no second scan
    assert set(source.lookups) == {e.sys_path for e in uevents if e.subsystem in {"scsi", "block"}}
    assert [(c.event, c.kind, c.key) for c in results[0].changes] == [
        ("appeared", "scsi_device", "0:0:0:9")
    ]
    assert observed_host(store, "live")[0].generation == generation + 1  # one transaction
    assert [j.key for j in journal(store, "live")][-1] == "0:0:0:9"
    assert rows_of(store, "live") == full(store, bed.root)


def test_a_removed_rport_takes_its_targets_and_luns_with_it(
    store: Store, bed: LiveTestbed, source: RecordingSource, events: InMemoryEventSource
) -> None:
    """Even when only the port's own ``remove`` arrives (the LUNs' were lost)."""
    model = model_of(store, source, gap_resync=False)
    model.start()
    uevents = to_device_events(bed.unplug_rport(0, 0, 0))
    port_event = [e for e in uevents if e.subsystem == "fc_remote_ports"]
    assert len(port_event) == 1 and len(uevents) > 1
    # The remove of the rport's kernel object itself (no subsystem: silent in the
    # kernel) is what takes the subtree; its fc_remote_ports child is announced.
    rport_object = port_event[0].sys_path.rsplit("/fc_remote_ports/", 1)[0]
    events.push(dataclasses.replace(port_event[0], sys_path=rport_object), port_event[0])
    (result,) = drain(model)
    vanished = {(c.kind, c.key) for c in result.changes if c.event == "vanished"}
    assert ("scsi_device", "0:0:0:0") in vanished and ("scsi_device", "0:0:0:1") in vanished
    assert rows_of(store, "live") == full(store, bed.root)


def test_a_map_change_rereads_its_members(
    store: Store, bed: LiveTestbed, source: RecordingSource, events: InMemoryEventSource
) -> None:
    """A path failing is announced by the map's ``change`` (the SCSI device's own
    state change has no uevent): the member devices are re-read with the map."""
    model = model_of(store, source)
    model.start()
    hctl = Hctl(1, 0, 0, 0)
    bed.set_attribute(bed.lun_path(hctl), "state", "offline")
    (index,) = bed.holders_of(bed.lun_disk(hctl).name)  # type: ignore[union-attr]
    events.push(*to_device_events([bed.sender.event("change", bed.multipaths[index])]))
    (result,) = drain(model)
    changed = {(c.kind, c.key): c for c in result.changes}
    assert changed[("scsi_device", str(hctl))].after == ("offline",)
    assert any(kind == "multipath_map" for kind, _key in changed)
    assert rows_of(store, "live") == full(store, bed.root)


def test_a_reread_applies_state_changed_without_an_event(
    store: Store, bed: LiveTestbed, source: RecordingSource, events: InMemoryEventSource
) -> None:
    """What a waiter asks for: its devices read again, as if each had a ``change``."""
    model = model_of(store, source)
    model.start()
    hctl = Hctl(0, 0, 1, 1)
    device = bed.lun_path(hctl)
    bed.set_attribute(device, "state", "offline")
    source.lookups.clear()
    result = model.reread([device, device, "/devices/not/held"])
    assert source.lookups == [device]  # once, and never a path the model does not hold
    assert not result.resynced and result.first_seqnum is None
    changed = {(c.kind, c.key): c for c in result.changes}
    assert changed[("scsi_device", str(hctl))].after == ("offline",)
    assert rows_of(store, "live") == full(store, bed.root)
    # nothing changed since: a second re-read writes nothing
    assert model.reread([device]).rows_written == 0


def test_a_burst_is_applied_in_batches_of_at_most_max_batch(
    store: Store, bed: LiveTestbed, source: RecordingSource, events: InMemoryEventSource
) -> None:
    model = model_of(store, source, max_batch=4)
    model.start()
    uevents: list[DeviceEvent] = []
    for lun in range(5, 8):
        uevents += push(events, bed.plug_lun(new_lun(bed, 0, lun, 710 + lun)))
    results = drain(model)
    assert [r.events for r in results] == [4] * (len(uevents) // 4) + (
        [len(uevents) % 4] if len(uevents) % 4 else []
    )
    assert rows_of(store, "live") == full(store, bed.root)


def test_the_window_coalesces_events_that_come_within_it(
    store: Store, source: RecordingSource, events: InMemoryEventSource, bed: LiveTestbed
) -> None:
    clock = FakeClock()
    model = model_of(store, source, clock=clock, window=0.5)
    model.start()
    uevents = push(events, bed.plug_lun(new_lun(bed, 0, 6, 720)))
    (result,) = drain(model)
    assert result.events == len(uevents)
    assert model.step(0) is None  # nothing waiting: no batch at all


def test_no_event_no_batch(store: Store, source: RecordingSource) -> None:
    model = model_of(store, source)
    model.start()
    assert model.step(0) is None


# --- resync ---------------------------------------------------------------------------


def test_a_sequence_gap_triggers_a_full_resync(
    store: Store, bed: LiveTestbed, source: RecordingSource, events: InMemoryEventSource
) -> None:
    model = model_of(store, source)
    model.start()
    first = push(events, bed.plug_lun(new_lun(bed, 0, 5, 730)))
    assert not drain(model)[0].resynced
    second = to_device_events(bed.plug_lun(new_lun(bed, 0, 6, 731)))
    events.push(*second[1:])  # the first event of the second LUN was lost
    (result,) = drain(model)
    assert result.resynced
    assert result.reason == f"sequence gap: {first[-1].seqnum} then {second[1].seqnum}"
    assert source.calls[-1].startswith("scan")
    assert len(source.calls) == 2
    assert rows_of(store, "live") == full(store, bed.root)
    # After a resync, tracking starts afresh: the next events apply normally.
    events.push(*to_device_events(bed.plug_lun(new_lun(bed, 0, 7, 732))))
    assert [r.resynced for r in drain(model)] == [False]


def test_an_overflow_triggers_a_full_resync(
    store: Store, bed: LiveTestbed, source: RecordingSource, events: InMemoryEventSource
) -> None:
    model = model_of(store, source)
    model.start()
    push(events, bed.plug_lun(new_lun(bed, 0, 5, 740)))
    events.inject_overflow(drop=3)
    result, *rest = drain(model)
    assert result.resynced and result.reason is not None and "ENOBUFS" in result.reason
    # What was still queued is applied after the resync, changing nothing.
    assert rest and all(not r.resynced and not r.changes for r in rest)
    assert rows_of(store, "live") == full(store, bed.root)


def test_a_batch_that_cannot_be_written_is_not_half_applied_and_the_next_step_resyncs(
    store: Store,
    bed: LiveTestbed,
    source: RecordingSource,
    events: InMemoryEventSource,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = model_of(store, source)
    model.start()
    before = rows_of(store, "live")
    push(events, bed.plug_lun(new_lun(bed, 0, 5, 750)))

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable(store.display_url, "connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(store, "run_write", down)
        with pytest.raises(StoreUnavailable):
            model.step(0)
    assert rows_of(store, "live") == before
    result = model.step(0)
    assert result is not None and result.resynced
    assert rows_of(store, "live") == full(store, bed.root)


@pytest.mark.parametrize(("name", "value"), [("window", -1.0), ("max_batch", 0)])
def test_bad_settings_are_refused(
    store: Store, source: RecordingSource, name: str, value: float
) -> None:
    with pytest.raises(InvalidInput):
        model_of(store, source, **{name: value})


def test_batches_prune_the_old_journal_at_most_once_an_interval(
    store: Store, bed: LiveTestbed, source: RecordingSource, events: InMemoryEventSource
) -> None:
    from sqlalchemy import insert

    from tracker.db import models, observed
    from tracker.reconcile.incremental import PRUNE_INTERVAL

    clock = FakeClock()
    model = model_of(store, source, clock=clock)
    model.start()  # a full reconcile: prunes

    def old_entry() -> None:
        with store.write() as session:
            session.execute(
                insert(observed.JOURNAL).values(
                    host_name="live",
                    at=models.utcnow() - dt.timedelta(days=400),
                    event="appeared",
                    kind="scsi_device",
                    object_key="9:9:9:9",
                    detail={},
                )
            )

    def keys() -> list[str]:
        return [j.key for j in journal(store, "live", limit=1000)]

    old_entry()
    push(events, bed.plug_lun(new_lun(bed, 0, 5, 760)))
    drain(model)
    assert "9:9:9:9" in keys()  # within the interval of the start's prune
    clock.advance(PRUNE_INTERVAL)
    push(events, bed.plug_lun(new_lun(bed, 0, 6, 761)))
    drain(model)
    assert "9:9:9:9" not in keys()
    old_entry()
    push(events, bed.plug_lun(new_lun(bed, 0, 7, 762)))
    drain(model)
    assert "9:9:9:9" in keys()
