"""Device events at the host boundary: decoding, the in-memory source, the pyudev source.

The pyudev source is driven here through a stand-in ``pyudev`` module (its
monitor's receive errors and devices are scripted); a real ``pyudev.Monitor``
under umockdev's preload receiving a testbed's uevents is tested with the
uevent sender of :mod:`tracker.testing`.
"""

from __future__ import annotations

import errno
import select
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

import pytest

from tracker.exceptions import EventsLost, EventSourceError, HostError
from tracker.host.events import (
    MAX_PROPERTIES,
    MAX_VALUE_CHARS,
    DeviceAction,
    DeviceEvent,
    EventSource,
    InMemoryEventSource,
    PyudevEventSource,
    decode_event,
)
from tracker.host.records import FrozenMap
from tracker.testing.fakes import FakeClock

SD = "/devices/platform/host0/session1/target0:0:0/0:0:0:1/block/sdb"


def _event(seqnum: int, action: str = "add", path: str = SD) -> DeviceEvent:
    event = decode_event(
        {"ACTION": action, "DEVPATH": path, "SUBSYSTEM": "block", "SEQNUM": str(seqnum)}
    )
    assert event is not None
    return event


# --- decoding ---------------------------------------------------------------------


@pytest.mark.parametrize("action", [a.value for a in DeviceAction])
def test_every_kernel_action_is_decoded(action: str) -> None:
    event = decode_event(
        {
            "ACTION": action,
            "DEVPATH": SD,
            "SUBSYSTEM": "block",
            "DEVTYPE": "disk",
            "SEQNUM": "4711",
            "DEVNAME": "/dev/sdb",
            "DEVLINKS": "/dev/disk/by-id/wwn-0x1 /dev/disk/by-path/ip-x",
        }
    )
    assert event == DeviceEvent(
        action=DeviceAction(action),
        sys_path=SD,
        subsystem="block",
        devtype="disk",
        seqnum=4711,
        properties=FrozenMap(
            {
                "DEVNAME": "/dev/sdb",
                "DEVLINKS": "/dev/disk/by-id/wwn-0x1 /dev/disk/by-path/ip-x",
            }
        ),
    )
    assert event.sys_name == "sdb"
    assert hash(event) == hash(decode_event(dict(_raw(event))))


def _raw(event: DeviceEvent) -> dict[str, str]:
    raw = {
        "ACTION": event.action.value,
        "DEVPATH": event.sys_path,
        "SUBSYSTEM": event.subsystem,
        **event.properties,
    }
    if event.devtype:
        raw["DEVTYPE"] = event.devtype
    if event.seqnum is not None:
        raw["SEQNUM"] = str(event.seqnum)
    return raw


@pytest.mark.parametrize(
    "properties",
    [
        {"ACTION": "explode", "DEVPATH": SD, "SUBSYSTEM": "block"},
        {"DEVPATH": SD, "SUBSYSTEM": "block"},
        {"ACTION": "add", "SUBSYSTEM": "block"},
        {"ACTION": "add", "DEVPATH": SD},
        {"ACTION": "add", "DEVPATH": "/module/scsi_mod", "SUBSYSTEM": "module"},
        {"ACTION": "add", "DEVPATH": "/devices/../../etc", "SUBSYSTEM": "block"},
    ],
)
def test_events_that_make_no_sense_are_ignored(properties: dict[str, str]) -> None:
    assert decode_event(properties) is None


def test_bytes_are_decoded_like_records_and_named_in_problems() -> None:
    event = decode_event(
        {
            b"ACTION": b"change",
            b"DEVPATH": SD.encode(),
            b"SUBSYSTEM": b"block",
            b"ID_MODEL": b"caf\xa9",
            b"SEQNUM": b"12x",
        }
    )
    assert event is not None
    assert event.properties["ID_MODEL"] == "caf\\xa9"
    assert event.seqnum is None
    assert event.problems == {
        "property ID_MODEL": "bytes that are not UTF-8 were escaped",
        "property SEQNUM": "not a sequence number",
    }


def test_oversize_values_and_too_many_properties_are_bounded() -> None:
    raw = {"ACTION": "add", "DEVPATH": SD, "SUBSYSTEM": "block"}
    raw["HUGE"] = "x" * (MAX_VALUE_CHARS + 1)
    raw.update({f"P{i:04d}": str(i) for i in range(MAX_PROPERTIES + 10)})
    event = decode_event(raw)
    assert event is not None
    assert "HUGE" not in event.properties
    assert len(event.properties) == MAX_PROPERTIES
    assert set(event.problems) == {"property HUGE", "properties"}


# --- the in-memory source ----------------------------------------------------------


def _readable(source: EventSource) -> bool:
    return bool(select.select([source.fileno()], [], [], 0)[0])


def test_in_memory_source_is_an_event_source_and_selectable() -> None:
    source = InMemoryEventSource([_event(1)])
    assert isinstance(source, EventSource)
    with pytest.raises(EventSourceError, match="not started"):
        source.poll(0)
    with source:
        assert _readable(source)
        source.push(_event(2), _event(3))
        assert [source.poll(0), source.poll(0), source.poll(0)] == [
            _event(1),
            _event(2),
            _event(3),
        ]
        assert not _readable(source)
        assert source.poll(0) is None
    assert not source.started
    with pytest.raises(EventSourceError):
        source.fileno()


def test_start_and_stop_are_idempotent() -> None:
    source = InMemoryEventSource()
    source.start()
    fd = source.fileno()
    source.start()
    assert source.fileno() == fd
    source.stop()
    source.stop()
    source.push(_event(7))
    with source:
        assert source.poll(0) == _event(7)


def test_overflow_surfaces_once_as_events_lost_then_the_source_goes_on() -> None:
    with InMemoryEventSource([_event(1), _event(2), _event(3)]) as source:
        assert source.poll(0) == _event(1)
        source.inject_overflow(drop=1)
        assert _readable(source)
        with pytest.raises(EventsLost) as raised:
            source.poll(0)
        assert isinstance(raised.value, HostError)
        assert "resynchronise" in str(raised.value)
        assert source.poll(0) == _event(3)
        assert source.poll(0) is None


def test_poll_wakes_up_when_another_thread_pushes() -> None:
    with InMemoryEventSource() as source:
        pusher = threading.Timer(0.05, source.push, args=(_event(9),))
        pusher.start()
        try:
            assert source.poll(10) == _event(9)
        finally:
            pusher.join()


# --- the pyudev source (through a stand-in pyudev module) ---------------------------


class _FakeDevice:
    def __init__(self, properties: dict[str, str]) -> None:
        self.properties = properties
        self.action = properties.get("ACTION")
        self.sequence_number = int(properties.get("SEQNUM", "0"))


class _FakeMonitor:
    def __init__(self, script: list[Any]) -> None:
        self.script = script
        self.filters: list[str] = []
        self.buffer: int | None = None
        self.started = False

    def filter_by(self, subsystem: str) -> None:
        self.filters.append(subsystem)

    def set_receive_buffer_size(self, size: int) -> None:
        self.buffer = size

    def start(self) -> None:
        self.started = True

    def fileno(self) -> int:
        return 99

    def poll(self, timeout: float | None) -> _FakeDevice | None:
        if not self.script:
            return None
        step = self.script.pop(0)
        if isinstance(step, OSError):
            raise step
        return _FakeDevice(step) if step is not None else None


@pytest.fixture
def fake_pyudev(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[_FakeMonitor]]:
    monitors: list[_FakeMonitor] = []
    script: list[Any] = []
    module = types.ModuleType("pyudev")

    class Monitor:
        @staticmethod
        def from_netlink(context: object, source: str = "udev") -> _FakeMonitor:
            if source not in ("udev", "kernel"):
                raise ValueError(source)
            monitor = _FakeMonitor(script)
            monitors.append(monitor)
            return monitor

    module.Context = object  # type: ignore[attr-defined]
    module.Monitor = Monitor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyudev", module)
    yield monitors
    monitors.clear()


def test_pyudev_source_filters_on_storage_subsystems(fake_pyudev: list[_FakeMonitor]) -> None:
    with PyudevEventSource(receive_buffer_size=1 << 20) as source:
        (monitor,) = fake_pyudev
        assert monitor.started and monitor.buffer == 1 << 20
        assert set(monitor.filters) == {
            "scsi",
            "block",
            "fc_host",
            "fc_remote_ports",
            "fc_transport",
            "iscsi_session",
            "iscsi_connection",
            "scsi_host",
        }
        assert source.fileno() == 99
    assert not source.started


def test_pyudev_source_turns_enobufs_into_events_lost(fake_pyudev: list[_FakeMonitor]) -> None:
    with PyudevEventSource() as source:
        fake_pyudev[0].script[:] = [
            OSError(errno.ENOBUFS, "No buffer space available"),
            {"ACTION": "remove", "DEVPATH": SD, "SUBSYSTEM": "block", "SEQNUM": "5"},
        ]
        with pytest.raises(EventsLost, match="ENOBUFS"):
            source.poll(1)
        assert source.poll(1) == _event(5, "remove")


def test_pyudev_source_skips_undecodable_events_within_the_timeout(
    fake_pyudev: list[_FakeMonitor],
) -> None:
    with PyudevEventSource(clock=FakeClock()) as source:
        fake_pyudev[0].script[:] = [
            {"ACTION": "add", "DEVPATH": "/module/x", "SUBSYSTEM": "module"},
            {"ACTION": "add", "DEVPATH": SD, "SUBSYSTEM": "block", "SEQNUM": "6"},
        ]
        assert source.poll(1) == _event(6)
        assert source.poll(1) is None


def test_pyudev_source_errors_are_typed(fake_pyudev: list[_FakeMonitor]) -> None:
    with pytest.raises(EventSourceError, match="not started"):
        PyudevEventSource().poll(0)
    with pytest.raises(EventSourceError, match="unknown monitor source"):
        PyudevEventSource(source="bogus").start()
    with PyudevEventSource() as source:
        fake_pyudev[-1].script[:] = [OSError(errno.EBADF, "Bad file descriptor")]
        with pytest.raises(EventSourceError, match="EBADF") as raised:
            source.poll(0)
        assert not isinstance(raised.value, EventsLost)
