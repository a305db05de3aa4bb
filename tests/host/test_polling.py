"""The polling event source: what a sysfs listing says appeared or went, between two polls."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tracker.exceptions import EventSourceError, InvalidInput
from tracker.host.events import DeviceAction
from tracker.host.polling import PollingEventSource
from tracker.testing.fakes import FakeClock
from tracker.testing.live import LiveTestbed
from tracker.testing.specs import Hctl
from tracker.testing.topologies import _Allocator, _lun, fc_multipath, synthetic_identity


@pytest.fixture
def live(bed_dir: Path) -> LiveTestbed:
    bed = LiveTestbed(bed_dir, deliver=False)
    fc_multipath(bed, luns=1)
    return bed


def drain(source: PollingEventSource) -> list[tuple[str, str, str]]:
    found = []
    while (event := source.poll(0)) is not None:
        found.append((event.action.value, event.subsystem, event.sys_path))
    return found


def test_what_is_there_at_start_is_not_an_event(live: LiveTestbed) -> None:
    clock = FakeClock()
    with PollingEventSource(live.root, interval=1.0, clock=clock) as source:
        assert source.poll(0) is None
        clock.advance(5)
        assert source.poll(0) is None
        assert source.listings == 2


def test_a_plugged_lun_is_announced_parents_first_at_the_next_listing(live: LiveTestbed) -> None:
    clock = FakeClock()
    identity = synthetic_identity(9)
    spec = _lun(Hctl(0, 0, 0, 9), identity, _Allocator(live).disk(identity))
    with PollingEventSource(live.root, interval=1.0, clock=clock) as source:
        live.plug_lun(spec)
        assert source.poll(0) is None  # the interval is not over: nothing listed yet
        clock.advance(1.0)
        events = drain(source)
        device = live.lun_path(spec.hctl)
        assert spec.disk is not None
        assert events == [
            ("add", "scsi", device),
            ("add", "block", f"{device}/block/{spec.disk.name}"),
        ]
        clock.advance(1.0)
        live.unplug_lun(spec.hctl)
        clock.advance(1.0)
        assert drain(source) == [
            ("remove", "block", f"{device}/block/{spec.disk.name}"),
            ("remove", "scsi", device),
        ]


def test_poll_waits_on_the_clock_until_the_next_listing(live: LiveTestbed) -> None:
    clock = FakeClock()
    with PollingEventSource(live.root, interval=2.0, clock=clock) as source:
        assert source.poll(0.5) is None
        assert clock.sleeps == [0.5]
        identity = synthetic_identity(10)
        live.plug_lun(_lun(Hctl(1, 0, 0, 9), identity, _Allocator(live).disk(identity)))
        event = source.poll(5.0)
        assert event is not None and event.action is DeviceAction.ADD
        assert sum(clock.sleeps) == pytest.approx(2.0)  # woke at the listing, not at 5 s


def test_a_link_replaced_under_the_same_name_is_resolved_again(live: LiveTestbed) -> None:
    clock = FakeClock()
    with PollingEventSource(live.root, interval=1.0, clock=clock) as source:
        link = live.sys_dir / "class" / "fc_remote_ports" / "rport-0:0-0"
        link.unlink()
        moved = live.sys_dir / "devices" / "virtual" / "elsewhere" / "rport-0:0-0"
        moved.mkdir(parents=True)
        os.symlink(os.path.relpath(moved, link.parent), link)
        clock.advance(1.0)
        events = drain(source)
        assert ("add", "fc_remote_ports", "/devices/virtual/elsewhere/rport-0:0-0") in events
        assert any(a == "remove" and p.endswith("rport-0:0-0") for a, _s, p in events)


def test_bad_settings_and_states_are_typed_errors(live: LiveTestbed, tmp_path: Path) -> None:
    for interval in (0, -1, True, "1"):
        with pytest.raises(InvalidInput):
            PollingEventSource(live.root, interval=interval)  # type: ignore[arg-type]
    source = PollingEventSource(live.root)
    with pytest.raises(EventSourceError):
        source.poll(0)
    with pytest.raises(EventSourceError):
        source.fileno()
    with pytest.raises(EventSourceError):
        PollingEventSource(tmp_path).start()
    source.start()
    source.start()  # idempotent
    assert isinstance(source.fileno(), int)
    source.stop()
    source.stop()
