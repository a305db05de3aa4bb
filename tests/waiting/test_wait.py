"""``rescan_and_wait_for`` on live testbeds: devices appear when a rescan is written.

The testbed's ``scan`` files are FIFOs answered by a
:class:`~tracker.testing.scanfifo.ScanResponder`: a write plugs the LUNs the
test scheduled, some milliseconds later, and their kernel-order uevents go to
an in-memory event source (the real netlink monitor, under umockdev's
preload, is in ``test_wait_preload.py``). Deadlines are measured with the real
clock on short timeouts and with the fake clock on long ones.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tracker import TrackerError
from tracker.db import observed
from tracker.db.store import Store
from tracker.exceptions import (
    EventSourceError,
    InvalidInput,
    SysfsRootMissing,
    WaitTimeout,
)
from tracker.host.events import DeviceAction, DeviceEvent, InMemoryEventSource
from tracker.host.records import DeviceRecord
from tracker.host.rescan import Rescanner, RescanResult
from tracker.host.sources import SysfsTreeSource
from tracker.predicates import (
    DiskExists,
    DiskNotExists,
    FiberChannelMappingExists,
    FiberChannelMappingNotExists,
    IscsiSessionExists,
    MultipathPathsAtLeast,
    Predicate,
    Verdict,
)
from tracker.testing.fakes import FakeClock
from tracker.testing.live import LiveTestbed, to_device_events
from tracker.testing.scanfifo import ScanRequest, ScanResponder
from tracker.testing.specs import (
    Hctl,
    IscsiHostSpec,
    IscsiSessionSpec,
    LunSpec,
    MultipathSpec,
)
from tracker.testing.topologies import (
    _Allocator,
    _lun,
    fc_multipath,
    offline_devices,
    synthetic_identity,
)
from tracker.testing.uevents import Uevent
from tracker.waiting import StorageModel, WaitProgress, WaitSettings
from tracker.waiting.view import ModelView


@pytest.fixture(params=["sqlite"])
def dialect(request: pytest.FixtureRequest) -> str:
    """SQLite unless a test asks for every database (the waits' SQL is the read model's)."""
    value: str = request.param
    return value


HOST = "h"
INITIATOR0 = "0x2100001B32000000"
TARGET01 = "50:0a:09:80:00:00:00:01"
#: How much a wait may overrun its timeout (the issue's bound).
SLACK = 0.1
QUICK = WaitSettings(quiet_period=0.3, poll_interval=0.05)


def serial(index: int) -> str:
    return f"80AB{index:08X}"


_ALLOCATORS: dict[int, _Allocator] = {}


def new_lun(live: LiveTestbed, hctl: Hctl, index: int) -> LunSpec:
    """A LUN with the ``index``-th synthetic identity and a disk name no other LUN
    of the testbed has (plugged yet or only scheduled)."""
    allocator = _ALLOCATORS.setdefault(id(live), _Allocator(live))
    identity = synthetic_identity(index)
    return _lun(hctl, identity, allocator.disk(identity))


class Host:
    """A live FC host (fc_multipath, one LUN on 4 paths), its events and its responder."""

    def __init__(self, live: LiveTestbed, store: Store, *, delay: float = 0.02) -> None:
        self.live = live
        self.store = store
        self.topology = fc_multipath(live, luns=1)
        self.events = InMemoryEventSource()
        self.responder = ScanResponder(live, delay=delay, listener=self.push)
        self.models: list[StorageModel] = []

    def push(self, uevents: Sequence[Uevent]) -> None:
        self.events.push(*to_device_events(uevents))

    def model(self, **kwargs: Any) -> StorageModel:
        kwargs.setdefault("source", SysfsTreeSource(self.live.root))
        kwargs.setdefault("events", self.events)
        kwargs.setdefault("rescanner", Rescanner(self.live.root))
        kwargs.setdefault("settings", QUICK)
        model = StorageModel(self.store, host_name=HOST, **kwargs)
        self.models.append(model)
        return model

    def later(self, seconds: float, change: Callable[[], Sequence[Uevent]]) -> threading.Thread:
        """Make a change (and push its events) from another thread, ``seconds`` from now."""

        def run() -> None:
            time.sleep(seconds)
            self.push(change())

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


@pytest.fixture(autouse=True)
def _fresh_allocators() -> Iterator[None]:
    yield
    _ALLOCATORS.clear()


@pytest.fixture
def host(live: LiveTestbed, store: Store) -> Iterator[Host]:
    bed = Host(live, store)
    bed.responder.start()
    try:
        yield bed
    finally:
        for model in bed.models:
            model.close()
        bed.responder.stop()


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


# --- devices appear and go ---------------------------------------------------------


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mariadb"], indirect=True)
def test_a_single_path_disk_appears_after_the_rescan(host: Host) -> None:
    lun = new_lun(host.live, Hctl(0, 0, 1, 5), 77)
    host.responder.schedule(0, lun)
    model = host.model()
    result = model.rescan_and_wait_for(DiskExists(serial(77)), timeout=10)
    assert lun.disk is not None
    assert result.state == f"present: /dev/{lun.disk.name} (0:0:1:5)"
    assert result.events > 0
    assert result.rescans == 1
    assert not result.polling
    # every FC host was asked once; the store holds the disk, as host show would read it
    assert host.responder.requests == [
        ScanRequest(0, None, None, None),
        ScanRequest(1, None, None, None),
    ]
    units = observed.by_serial(host.store, serial(77), HOST)
    assert [d.hctl for d in units.devices] == ["0:0:1:5"]


def test_a_multipath_disk_appears_and_counts_once(host: Host) -> None:
    first = new_lun(host.live, Hctl(0, 0, 0, 3), 40)
    assert first.disk is not None
    index = 7
    mpath = MultipathSpec(
        index=index,
        name="mpathz",
        uuid=f"mpath-{synthetic_identity(40).id_serial}",
        paths=(first.disk.name,),
    )
    host.responder.schedule(0, first, multipath=mpath)
    model = host.model()
    result = model.rescan_and_wait_for(DiskExists(serial(40)), timeout=10)
    assert result.state == "present: /dev/mapper/mpathz (1 of 1 paths active)"
    # a second path joins the map: a new disk, then the map's change event
    second = new_lun(host.live, Hctl(1, 0, 0, 3), 40)
    host.responder.schedule(1, second, multipath=index)
    result = model.rescan_and_wait_for(MultipathPathsAtLeast(serial(40), 2), timeout=10)
    assert result.state == "mpathz: 2 of 2 paths active"
    assert result.rescans == 1


def test_a_path_goes_away_without_any_rescan(host: Host) -> None:
    model = host.model()
    four = MultipathPathsAtLeast(serial(0), 4)
    assert model.rescan_and_wait_for(four, timeout=5).state == "mpatha: 4 of 4 paths active"
    host.later(0.2, lambda: host.live.unplug_lun(host.topology.luns[0].hctl))
    gone, took = timed(lambda: model.rescan_and_wait_for(~four, timeout=5))
    assert gone.state == "mpatha: 3 of 3 paths active (needs 4)"
    assert took >= 0.2
    # a rescan cannot make a device go away: none was written for the negation
    assert host.responder.requests == []


def test_disk_not_exists_waits_until_every_path_is_gone(host: Host) -> None:
    model = host.model()
    paths = [lun.hctl for lun in host.topology.luns]

    def unplug_all() -> Sequence[Uevent]:
        events: list[Uevent] = []
        for hctl in paths:
            events.extend(host.live.unplug_lun(hctl))
            time.sleep(0.02)
        return events

    host.later(0.1, unplug_all)
    result, took = timed(lambda: model.rescan_and_wait_for(DiskNotExists(serial(0)), timeout=5))
    assert result.state == "gone: no device with serial '80AB00000000'"
    assert took >= 0.1
    assert host.responder.requests == []


def test_a_path_added_to_an_existing_map(host: Host) -> None:
    model = host.model()
    spare = host.topology.luns[-1]
    host.live.unplug_lun(spare.hctl)  # before the model starts: no event needed
    host.responder.schedule(spare.hctl.host, spare, multipath=0)
    result = model.rescan_and_wait_for(MultipathPathsAtLeast(serial(0), 4), timeout=10)
    assert result.state == "mpatha: 4 of 4 paths active"
    assert result.rescans == 1


def test_an_fc_mapping_appears_then_disappears(host: Host) -> None:
    lun = new_lun(host.live, Hctl(0, 0, 1, 9), 90)
    host.responder.schedule(0, lun)
    model = host.model()
    mapped = FiberChannelMappingExists(INITIATOR0, TARGET01, 9)
    result = model.rescan_and_wait_for(mapped, timeout=10)
    assert result.state.startswith("mapped: ") and result.state.endswith(" (0:0:1:9)")
    # targeted: only the target behind the remote port of that WWPN was scanned
    assert host.responder.requests == [ScanRequest(0, 0, 1, None)]
    host.later(0.1, lambda: host.live.unplug_lun(Hctl(0, 0, 1, 9)))
    gone = model.rescan_and_wait_for(
        FiberChannelMappingNotExists(INITIATOR0, TARGET01, 9), timeout=5
    )
    assert gone.state == "no such FC mapping"
    assert host.responder.requests == [ScanRequest(0, 0, 1, None)]


def test_an_iscsi_session_logs_in(host: Host) -> None:
    host.live.add_iscsi_host(IscsiHostSpec(host=4))
    iqn = "iqn.2010-10.org.openstack:volume-77"
    session = IscsiSessionSpec(host=4, session=3, target_iqn=iqn, portal_address="192.0.2.20")
    lun = new_lun(host.live, Hctl(4, 0, 0, 1), 60)
    model = host.model()
    host.later(0.15, lambda: host.live.plug_iscsi_session(session, [lun]))
    result = model.rescan_and_wait_for(
        [IscsiSessionExists(iqn.upper(), portal="192.0.2.20"), DiskExists(serial(60))], timeout=5
    )
    assert result.state == "all 2 hold"
    assert model.check(IscsiSessionExists(iqn)).state == "logged in: session 3 to 192.0.2.20:3260"


def test_a_list_of_predicates_waits_for_all_of_them(host: Host) -> None:
    a = new_lun(host.live, Hctl(0, 0, 0, 4), 41)
    b = new_lun(host.live, Hctl(1, 0, 1, 4), 42)
    host.responder.schedule(0, a)
    host.responder.schedule(1, b)
    model = host.model()
    result = model.rescan_and_wait_for(
        (DiskExists(serial(41)), DiskExists(serial(42)), DiskNotExists(serial(43))), timeout=10
    )
    assert result.state == "all 3 hold"
    assert host.responder.pending == ()


def test_a_predicate_that_already_holds_returns_without_a_rescan(host: Host) -> None:
    model = host.model()
    result = model.rescan_and_wait_for(DiskExists(serial(0)), timeout=5)
    assert result.rescans == 0
    assert host.responder.requests == []
    assert DiskExists(serial(0))(model)
    assert not DiskExists(serial(1))(model)


def test_without_a_predicate_it_only_rescans(host: Host) -> None:
    model = host.model()
    result = model.rescan_and_wait_for()
    assert result.rescans == 1
    assert host.responder.wait_for_requests(2, timeout=5)


# --- deadlines -------------------------------------------------------------------


def test_a_timeout_raises_with_the_last_state_within_the_deadline(host: Host) -> None:
    model = host.model()
    model.check(DiskExists("warm-up"))  # the first scan of the host is not timed
    with pytest.raises(WaitTimeout) as caught:
        model.rescan_and_wait_for(DiskExists("NOSUCH"), timeout=0.4)
    error = caught.value
    assert isinstance(error, TimeoutError) and isinstance(error, TrackerError)
    assert 0.4 <= error.elapsed <= 0.4 + SLACK
    assert error.last_state == f"no disk with serial 'NOSUCH' on {HOST}"
    assert error.predicate == DiskExists("NOSUCH")
    assert error.rescans >= 1
    assert str(error).startswith("timed out after 0.4 s (timeout 0.4 s) waiting for DiskExists")


class SlowRescanner(Rescanner):
    """A rescanner whose writes block like a real kernel's scan."""

    def __init__(self, root: Path, seconds: float) -> None:
        super().__init__(root)
        self.seconds = seconds
        self.calls: list[tuple[Any, ...]] = []

    def scan(
        self,
        host: int,
        channel: int | None = None,
        target: int | None = None,
        lun: int | None = None,
    ) -> RescanResult:
        self.calls.append((host, channel, target, lun))
        time.sleep(self.seconds)
        return RescanResult((host,), False)


def test_a_rescan_that_blocks_never_overruns_the_deadline(host: Host) -> None:
    slow = SlowRescanner(host.live.root, 3.0)
    model = host.model(rescanner=slow)
    model.check(DiskExists("warm-up"))
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        model.rescan_and_wait_for(DiskExists("NOSUCH"), timeout=0.3)
    assert time.monotonic() - started <= 0.3 + SLACK
    assert caught.value.elapsed <= 0.3 + SLACK
    assert slow.calls  # a rescan was asked for, and is still writing


class SlowSource(SysfsTreeSource):
    """A source whose full scans take long (a host with thousands of LUNs)."""

    def __init__(self, root: Path, seconds: float) -> None:
        super().__init__(root)
        self.seconds = seconds

    def scan(self) -> tuple[DeviceRecord, ...]:
        time.sleep(self.seconds)
        return super().scan()


def test_a_slow_first_scan_never_overruns_the_deadline(host: Host) -> None:
    model = host.model(source=SlowSource(host.live.root, 1.5))
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        model.rescan_and_wait_for(DiskExists(serial(0)), timeout=0.3)
    assert time.monotonic() - started <= 0.3 + SLACK
    assert caught.value.last_state.startswith("the host's model is not in sync yet")
    # the scan went on in the background: the next wait finds the disk
    assert model.rescan_and_wait_for(DiskExists(serial(0)), timeout=10).rescans == 0


def test_a_long_timeout_on_the_fake_clock_rescans_after_each_quiet_period(host: Host) -> None:
    clock = FakeClock(real_wait=0.3)
    model = host.model(clock=clock, settings=WaitSettings(quiet_period=600.0))
    model.check(DiskExists("warm-up"))
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as caught:
        model.rescan_and_wait_for(DiskExists("NOSUCH"), timeout=3600)
    assert time.monotonic() - started < 10  # an hour on the fake clock, seconds of real time
    error = caught.value
    assert error.elapsed == pytest.approx(3600.0)
    # one rescan at the start, then one per quiet period at most (never on every wake)
    assert 2 <= error.rescans <= 6
    assert len(clock.waits) < 30


# --- what must not stall a wait ----------------------------------------------------


def test_an_unrelated_flapping_device_does_not_stall_the_rescan(
    live: LiveTestbed, store: Store
) -> None:
    offline_devices(live)  # host 0 plain; host 1 FC, a LUN offline behind a Blocked port
    events = InMemoryEventSource()
    responder = ScanResponder(
        live, delay=0.02, listener=lambda evs: events.push(*to_device_events(evs))
    )
    model = StorageModel(
        store,
        host_name=HOST,
        source=SysfsTreeSource(live.root),
        events=events,
        rescanner=Rescanner(live.root),
        settings=WaitSettings(quiet_period=0.3),
    )
    offline_lun = live.lun_path(Hctl(1, 0, 0, 0))
    stop = threading.Event()

    def flap() -> None:  # the unrelated offline device keeps sending change events
        while not stop.wait(0.02):
            events.push(DeviceEvent(DeviceAction.CHANGE, offline_lun, "scsi", "scsi_device"))

    lun = new_lun(live, Hctl(1, 0, 0, 7), 70)

    def schedule_after_the_first_rescan() -> None:
        # the first rescan finds nothing: only a second one (after a quiet period,
        # despite the flapping device) makes the LUN appear
        if responder.wait_for_requests(1, timeout=10):
            responder.schedule(1, lun)

    with responder:
        flapping = threading.Thread(target=flap, daemon=True)
        late = threading.Thread(target=schedule_after_the_first_rescan, daemon=True)
        flapping.start()
        late.start()
        try:
            result = model.rescan_and_wait_for(DiskExists(serial(70)), timeout=10)
        finally:
            stop.set()
            model.close()
        late.join(5)
    assert result.rescans == 2
    assert result.state.startswith("present: ")
    assert [r.host for r in responder.requests] == [1, 1]


def test_relevant_events_postpone_the_rescan(host: Host) -> None:
    """A rescan is asked for again only after a quiet period, not on every batch."""
    model = host.model(settings=WaitSettings(quiet_period=0.5))
    hctls = [Hctl(0, 0, 0, 20 + i) for i in range(4)]
    specs = [new_lun(host.live, h, 200 + i) for i, h in enumerate(hctls)]

    def trickle() -> Sequence[Uevent]:
        events: list[Uevent] = []
        for spec in specs:  # one LUN every 0.2 s: each changes the state waited on
            host.push(host.live.plug_lun(spec))
            time.sleep(0.2)
        return events

    host.later(0.0, trickle)
    result = model.rescan_and_wait_for([DiskExists(serial(200 + i)) for i in range(4)], timeout=10)
    assert result.rescans == 1


def test_a_predicate_that_raises_propagates_unchanged(host: Host) -> None:
    model = host.model()
    boom = RuntimeError("the predicate's own bug")

    def broken() -> bool:
        raise boom

    with pytest.raises(RuntimeError) as caught:
        model.rescan_and_wait_for(broken, timeout=5)
    assert caught.value is boom

    class Raising(Predicate):
        calls = 0

        def evaluate(self, view: ModelView) -> Verdict:
            Raising.calls += 1
            if Raising.calls > 1:
                raise boom
            return Verdict(False, "not yet")

    host.later(0.1, lambda: host.live.unplug_lun(host.topology.luns[0].hctl))
    with pytest.raises(RuntimeError):
        model.rescan_and_wait_for(Raising(), timeout=5)
    assert Raising.calls == 2  # evaluated again after the batch, and not retried
    # the model is still usable
    assert model.rescan_and_wait_for(DiskExists(serial(0)), timeout=5).state.startswith("present")


def test_bad_arguments_are_typed_errors(host: Host) -> None:
    model = host.model()
    for predicate in ("DiskExists('x')", 42):
        with pytest.raises(InvalidInput):
            model.rescan_and_wait_for(predicate, timeout=1)
    for timeout in (-1, "5", float("nan")):
        with pytest.raises(InvalidInput):
            model.rescan_and_wait_for(DiskExists("x"), timeout=timeout)  # type: ignore[arg-type]


def test_infi_names_the_timeout_timeout_in_seconds(host: Host) -> None:
    model = host.model()
    model.check(DiskExists("warm-up"))
    with pytest.raises(WaitTimeout) as caught:
        model.rescan_and_wait_for(DiskExists("NOSUCH"), timeout_in_seconds=0.2)
    assert caught.value.timeout == 0.2


def test_progress_is_reported_while_waiting(host: Host) -> None:
    model = host.model(settings=WaitSettings(quiet_period=5, progress_interval=0.05))
    seen: list[WaitProgress] = []
    with pytest.raises(WaitTimeout):
        model.rescan_and_wait_for(DiskExists("NOSUCH"), timeout=0.5, progress=seen.append)
    assert len(seen) >= 5
    assert all(p.state for p in seen)
    assert [p.elapsed for p in seen] == sorted(p.elapsed for p in seen)


# --- the engine ---------------------------------------------------------------------


def test_without_an_event_source_it_polls_and_says_so_once(
    host: Host, caplog: pytest.LogCaptureFixture
) -> None:
    host.responder.listener = None  # no event at all: only sysfs shows the LUN
    host.responder.schedule(0, new_lun(host.live, Hctl(0, 0, 1, 6), 66))
    model = host.model(events=None)
    with caplog.at_level(logging.WARNING, logger="tracker.waiting.engine"):
        result = model.rescan_and_wait_for(DiskExists(serial(66)), timeout=10)
        assert result.polling
        host.later(0.1, lambda: host.live.unplug_lun(Hctl(0, 0, 1, 6)))
        gone = model.rescan_and_wait_for(DiskNotExists(serial(66)), timeout=10)
    assert gone.polling
    warnings = [r.getMessage() for r in caplog.records if "polling" in r.getMessage()]
    assert len(warnings) == 1
    assert "no device event source" in warnings[0]


def test_polling_re_reads_what_the_wait_is_about(host: Host) -> None:
    """A device coming back online changes an attribute, with no event and no new entry."""
    model = host.model(events=None)
    hctl = host.topology.luns[0].hctl
    device = host.live.lun_path(hctl)
    host.live.set_attribute(device, "state", "offline")

    def back_online() -> Sequence[Uevent]:
        host.live.set_attribute(device, "state", "running")
        return ()  # the kernel sends no event for a state change

    host.later(0.2, back_online)
    result = model.rescan_and_wait_for(
        FiberChannelMappingExists(INITIATOR0, "0x500a098000000000", hctl.lun), timeout=5
    )
    assert result.state.startswith("mapped: ")


class FailingEvents(InMemoryEventSource):
    def start(self) -> None:
        raise EventSourceError("udev netlink", "cannot listen: EPERM (Operation not permitted)")


def test_an_event_source_that_cannot_start_falls_back_to_polling(
    host: Host, caplog: pytest.LogCaptureFixture
) -> None:
    host.responder.listener = None
    host.responder.schedule(0, new_lun(host.live, Hctl(0, 0, 1, 8), 88))
    model = host.model(events=FailingEvents())
    with caplog.at_level(logging.WARNING, logger="tracker.waiting.engine"):
        result = model.rescan_and_wait_for(DiskExists(serial(88)), timeout=10)
    assert result.polling
    assert any("EPERM" in r.getMessage() for r in caplog.records)


class BrokenSource(SysfsTreeSource):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.broken = True

    def scan(self) -> tuple[DeviceRecord, ...]:
        if self.broken:
            raise SysfsRootMissing(root="/gone")
        return super().scan()


def test_a_host_that_cannot_be_read_is_a_typed_error_then_recovers(host: Host) -> None:
    source = BrokenSource(host.live.root)
    model = host.model(source=source)
    with pytest.raises(SysfsRootMissing):
        model.rescan_and_wait_for(DiskExists(serial(0)), timeout=5)
    source.broken = False
    assert model.rescan_and_wait_for(DiskExists(serial(0)), timeout=5).rescans == 0


def test_threads_waiting_on_one_model_share_one_engine(host: Host) -> None:
    a = new_lun(host.live, Hctl(0, 0, 0, 11), 111)
    b = new_lun(host.live, Hctl(1, 0, 1, 11), 112)
    model = host.model()
    results: dict[str, Any] = {}

    def wait(name: str, predicate: Predicate) -> None:
        try:
            results[name] = model.rescan_and_wait_for(predicate, timeout=10)
        except Exception as error:  # reported below
            results[name] = error

    threads = [
        threading.Thread(target=wait, args=("a", DiskExists(serial(111)))),
        threading.Thread(target=wait, args=("b", DiskExists(serial(112)))),
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    host.push(host.live.plug_lun(a))
    host.push(host.live.plug_lun(b))
    for thread in threads:
        thread.join(15)
    assert results["a"].state.startswith("present")
    assert results["b"].state.startswith("present")


def test_a_closed_model_refuses_to_wait(host: Host) -> None:
    model = host.model()
    model.close()
    with pytest.raises(InvalidInput):
        model.rescan_and_wait_for(DiskExists(serial(0)), timeout=1)
