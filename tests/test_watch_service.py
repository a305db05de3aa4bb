"""The ``tracker watch`` service loop, its host lease and its store-outage handling.

The engine is a small scripted stand-in with the contract of
:class:`tracker.reconcile.incremental.LiveModel`; the clock is a
:class:`~tracker.testing.fakes.FakeClock`, so timeouts, backoff and the grace
period take no real time. The lease runs against every database.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tracker import exceptions
from tracker.db import leases
from tracker.db.store import Store
from tracker.reconcile.apply import Change
from tracker.testing.fakes import FakeClock
from tracker.watch import BatchReport, WatchService, WatchSettings

HOST = "compute-7"
T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
TTL = dt.timedelta(seconds=30)


@dataclass(frozen=True)
class Result:
    events: int = 0
    changes: tuple[Change, ...] = ()
    rows_written: int = 0
    resynced: bool = False
    reason: str | None = None
    first_seqnum: int | None = None
    last_seqnum: int | None = None
    duration: float = 0.001


Step = Callable[[], Result | None]


@dataclass
class ScriptedModel:
    """Plays ``steps`` (each returns a result, returns None, or raises), then stops the service."""

    clock: FakeClock
    steps: list[Step] = field(default_factory=list)
    resyncs: list[Callable[[], Result]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    service: WatchService | None = None

    def start(self) -> Result:
        self.calls.append("start")
        return Result(changes=(Change("appeared", "scsi_host", "host0"),), rows_written=2)

    def step(self, timeout: float | None) -> Result | None:
        self.calls.append("step")
        if not self.steps:
            assert self.service is not None
            self.service.request_stop()
            return None
        action = self.steps.pop(0)
        self.clock.sleep(timeout or 0.0)  # waited for events that did not come
        return action()

    def resync(self, reason: str) -> Result:
        self.calls.append(f"resync:{reason}")
        if self.resyncs:
            return self.resyncs.pop(0)()
        return Result(resynced=True, reason=reason)


def make_service(
    store: Store,
    model: ScriptedModel,
    clock: FakeClock,
    *,
    owner: str = "node/1/a",
    reports: list[BatchReport] | None = None,
    warnings: list[str] | None = None,
    **settings: float | bool,
) -> WatchService:
    def wall() -> dt.datetime:
        return T0 + dt.timedelta(seconds=clock.monotonic() - 1000.0)

    service = WatchService(
        store,
        HOST,
        model,
        settings=WatchSettings(**settings),  # type: ignore[arg-type]
        clock=clock,
        wall=wall,
        owner=owner,
        report=(reports if reports is not None else []).append,
        warn=(warnings if warnings is not None else []).append,
    )
    model.service = service
    return service


def batch(first: int, last: int, *changes: Change) -> Step:
    return lambda: Result(
        events=last - first + 1,
        changes=changes,
        rows_written=2 * len(changes),
        first_seqnum=first,
        last_seqnum=last,
    )


def idle() -> Result | None:
    return None


def unavailable() -> Result:
    raise exceptions.StoreUnavailable("postgresql://db/tracker", "connection refused")


def busy() -> Result:
    raise exceptions.StoreBusy("sqlite:///t.sqlite", "apply events", 30.0, "SQLITE_BUSY")


# --- the lease ----------------------------------------------------------------------


def test_lease_is_taken_renewed_refused_and_released(store: Store) -> None:
    first = leases.take(store, HOST, "a/1/x", TTL, T0)
    assert (first.owner, first.acquired_at, first.expires_at) == ("a/1/x", T0, T0 + TTL)
    refused = leases.take(store, HOST, "b/2/y", TTL, T0 + dt.timedelta(seconds=10))
    assert refused.owner == "a/1/x"
    renewed = leases.take(store, HOST, "a/1/x", TTL, T0 + dt.timedelta(seconds=20))
    assert renewed.acquired_at == T0  # the same holder keeps its start time
    assert renewed.expires_at == T0 + dt.timedelta(seconds=20) + TTL
    # Another host's lease is independent.
    assert leases.take(store, "compute-8", "b/2/y", TTL, T0).owner == "b/2/y"
    assert not leases.release(store, HOST, "b/2/y")  # not the holder: nothing released
    assert leases.release(store, HOST, "a/1/x")
    assert leases.holder(store, HOST) is None
    assert leases.take(store, HOST, "b/2/y", TTL, T0).owner == "b/2/y"


def test_an_expired_lease_goes_to_the_next_asker(store: Store) -> None:
    leases.take(store, HOST, "a/1/x", TTL, T0)
    later = T0 + TTL + dt.timedelta(microseconds=1)
    taken = leases.take(store, HOST, "b/2/y", TTL, later)
    assert (taken.owner, taken.acquired_at, taken.expires_at) == ("b/2/y", later, later + TTL)
    # The old holder cannot renew it back.
    assert leases.take(store, HOST, "a/1/x", TTL, later).owner == "b/2/y"


@pytest.mark.parametrize("existing", [False, True], ids=["new-row", "expired-row"])
def test_one_of_many_simultaneous_askers_gets_the_lease(store: Store, existing: bool) -> None:
    if existing:
        leases.take(store, HOST, "old/0/z", TTL, T0 - 2 * TTL)
    askers = 6
    barrier = threading.Barrier(askers)
    got: dict[str, str] = {}
    errors: list[BaseException] = []

    def ask(owner: str) -> None:
        own = Store(store.url, auto_upgrade="never")
        try:
            barrier.wait()
            got[owner] = leases.take(own, HOST, owner, TTL, T0).owner
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            own.dispose()

    threads = [threading.Thread(target=ask, args=(f"n/{i}/u",)) for i in range(askers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    winners = set(got.values())
    assert len(winners) == 1, got  # everyone agrees on one holder ...
    (winner,) = winners
    assert winner in got  # ... which is one of them
    holder = leases.holder(store, HOST)
    assert holder is not None and holder.owner == winner


# --- the loop ----------------------------------------------------------------------


def test_batches_are_reported_then_a_stop_request_ends_with_the_lease_released(
    store: Store,
) -> None:
    clock = FakeClock()
    appeared = Change("appeared", "scsi_device", "0:0:0:1")
    changed = Change("changed", "multipath_map", "3600a0b8", ("paths",), (1,), (2,))
    model = ScriptedModel(clock, [batch(10, 14, appeared, appeared, changed), idle])
    reports: list[BatchReport] = []
    service = make_service(store, model, clock, reports=reports)
    assert service.run() == 0
    assert [r.phase for r in reports] == ["start", "batch"]
    applied = reports[1]
    assert applied.counts == {"multipath_map": {"changed": 1}, "scsi_device": {"appeared": 2}}
    assert applied.line() == (
        "batch 10-14 (5 events): multipath_map 1 changed, scsi_device 2 appeared; 6 rows in 1.0 ms"
    )
    document = applied.as_dict()
    assert (document["first_seqnum"], document["last_seqnum"], document["events"]) == (10, 14, 5)
    assert document["changes"][2]["changes"] == {"paths": {"before": 1, "after": 2}}
    assert leases.holder(store, HOST) is None  # released on the way out


def test_the_lease_is_renewed_while_running(store: Store) -> None:
    clock = FakeClock()
    model = ScriptedModel(clock, [idle] * 100)
    service = make_service(store, model, clock, poll=1.0, lease_renew=10.0, lease_ttl=30.0)
    expiries: list[dt.datetime] = []
    original = model.step

    def step(timeout: float | None) -> Result | None:
        lease = leases.holder(store, HOST)
        assert lease is not None and lease.owner == "node/1/a"
        expiries.append(lease.expires_at)
        return original(timeout)

    model.step = step  # type: ignore[method-assign]
    service.run()
    # 100 one-second steps: renewed about every 10 s, never left to lapse.
    assert len(set(expiries)) >= 9
    assert all(b - a <= dt.timedelta(seconds=11) for a, b in itertools.pairwise(expiries))


def test_a_periodic_resync_runs_every_interval(store: Store) -> None:
    clock = FakeClock()
    model = ScriptedModel(clock, [idle] * 25)
    reports: list[BatchReport] = []
    service = make_service(store, model, clock, reports=reports, poll=1.0, resync_interval=10.0)
    service.run()
    assert model.calls.count("resync:periodic") == 2
    resyncs = [r for r in reports if r.phase == "resync"]
    assert [r.reason for r in resyncs] == ["periodic", "periodic"]
    assert resyncs[0].line().startswith("resync (periodic): no change; 0 rows")


# --- two watchers -------------------------------------------------------------------


def test_a_second_watcher_of_the_host_is_refused(store: Store) -> None:
    leases.take(store, HOST, "other/99/b", TTL, T0)
    clock = FakeClock()
    model = ScriptedModel(clock, [idle])
    service = make_service(store, model, clock)
    with pytest.raises(exceptions.HostAlreadyWatched) as caught:
        service.run()
    assert caught.value.exit_code == 7
    assert caught.value.owner == "other/99/b"
    assert "--wait" in str(caught.value)
    assert model.calls == []  # nothing scanned, nothing written
    lease = leases.holder(store, HOST)
    assert lease is not None and lease.owner == "other/99/b"  # untouched


def test_with_wait_the_second_watcher_takes_over_when_the_lease_lapses(store: Store) -> None:
    leases.take(store, HOST, "other/99/b", TTL, T0)  # never renewed: a killed watcher
    clock = FakeClock()
    model = ScriptedModel(clock, [idle])
    warnings: list[str] = []
    service = make_service(store, model, clock, warnings=warnings, wait=True)
    assert service.run() == 0
    assert model.calls[0] == "start"
    assert clock.monotonic() - 1000.0 >= TTL.total_seconds()  # waited for the expiry
    assert "watched by other/99/b" in warnings[0]
    assert "took the lease" in warnings[1]


def test_a_watcher_of_another_host_is_not_affected(store: Store) -> None:
    leases.take(store, "compute-8", "other/99/b", TTL, T0)
    clock = FakeClock()
    model = ScriptedModel(clock, [idle])
    assert make_service(store, model, clock).run() == 0
    assert model.calls[0] == "start"


def test_a_watcher_whose_lease_was_taken_over_stops_writing(store: Store) -> None:
    clock = FakeClock()

    def stolen() -> Result | None:
        # The lease lapsed (the process was stopped); another watcher took it.
        later = T0 + dt.timedelta(seconds=clock.monotonic() - 1000.0) + TTL
        assert leases.take(store, HOST, "other/99/b", TTL, later).owner == "other/99/b"
        clock.advance(TTL.total_seconds())
        return None

    model = ScriptedModel(clock, [stolen, batch(1, 1, Change("vanished", "scsi_device", "x"))])
    service = make_service(store, model, clock)
    with pytest.raises(exceptions.LeaseLost) as caught:
        service.run()
    assert caught.value.exit_code == 7
    assert model.calls == ["start", "step"]  # the next batch was never applied
    lease = leases.holder(store, HOST)
    assert lease is not None and lease.owner == "other/99/b"  # not released by the loser


# --- store outages -----------------------------------------------------------------


@pytest.mark.parametrize("failure", [unavailable, busy], ids=["unavailable", "busy"])
def test_an_outage_is_retried_with_backoff_then_resynced(
    store: Store, failure: Callable[[], Result]
) -> None:
    clock = FakeClock()
    model = ScriptedModel(
        clock,
        [failure, batch(7, 7, Change("appeared", "scsi_device", "1:0:0:0"))],
        resyncs=[failure, failure, failure, lambda: Result(resynced=True, reason="store back")],
    )
    reports: list[BatchReport] = []
    warnings: list[str] = []
    service = make_service(
        store, model, clock, reports=reports, warnings=warnings, grace_period=300.0
    )
    before = len(clock.sleeps)
    assert service.run() == 0
    assert service.outages == 1
    assert model.calls.count("resync:store back") == 4
    assert [r.phase for r in reports] == ["start", "resync", "batch"]
    assert reports[1].reason == "store back"
    # Pauses between attempts, on the injected clock, growing (jittered) and bounded.
    pauses = [s for s in clock.sleeps[before:] if s > 0]
    assert len(pauses) >= 3 and max(pauses) <= 10.0
    assert "retrying for up to 300 s" in warnings[0]
    assert "reachable again" in warnings[-1]


def test_an_outage_longer_than_the_grace_period_gives_up(store: Store) -> None:
    clock = FakeClock()
    model = ScriptedModel(clock, [unavailable], resyncs=[unavailable] * 1000)
    service = make_service(store, model, clock, grace_period=60.0)
    started = clock.monotonic()
    with pytest.raises(exceptions.StoreLost) as caught:
        service.run()
    assert caught.value.exit_code == 6
    assert "unreachable for more than 60 s" in str(caught.value)
    assert "connection refused" in str(caught.value)
    assert 60.0 <= clock.monotonic() - started <= 60.0 + 10.0 + 1.0
    assert 3 <= model.calls.count("resync:store back") < 1000


def test_a_stop_request_during_an_outage_ends_the_wait(store: Store) -> None:
    clock = FakeClock()
    model = ScriptedModel(clock, [unavailable])

    def down_then_stop() -> Result:
        assert model.service is not None
        model.service.request_stop()
        return unavailable()

    model.resyncs = [down_then_stop] + [unavailable] * 100
    service = make_service(store, model, clock, grace_period=3600.0)
    assert service.run() == 0
    assert model.calls.count("resync:store back") == 1
    assert clock.monotonic() - 1000.0 < 60.0  # did not sit out the grace period


def test_settings_refuse_a_renewal_slower_than_the_lease() -> None:
    with pytest.raises(exceptions.InvalidInput, match="lease_renew"):
        WatchSettings(lease_ttl=10.0, lease_renew=10.0)


# --- with the real engine on a testbed ----------------------------------------------


def test_the_service_applies_a_plugged_lun_on_a_testbed(store: Store, tmp_path: Path) -> None:
    from tracker.discovery.discover import discover
    from tracker.host.events import InMemoryEventSource
    from tracker.host.sources import SysfsTreeSource
    from tracker.reconcile import reconcile
    from tracker.reconcile.incremental import LiveModel
    from tracker.testing.live import LiveTestbed, to_device_events
    from tracker.testing.testbed import DiskSpec, Hctl, HostSpec, LunSpec, sd_devnum, sd_name

    live = LiveTestbed(tmp_path, deliver=False)
    live.add_host(HostSpec(host=0))
    events = InMemoryEventSource()
    clock = FakeClock()
    source = SysfsTreeSource(live.root)
    model = LiveModel(store, HOST, source, events, clock=clock, window=0.0)
    reports: list[BatchReport] = []

    def lun(number: int) -> LunSpec:
        major, minor = sd_devnum(number)
        disk = DiskSpec(name=sd_name(number), major=major, minor=minor)
        return LunSpec(
            hctl=Hctl(0, 0, 0, number),
            vendor="NETAPP",
            model="LUN",
            wwid=f"naa.60{number}",
            disk=disk,
        )

    def report(batch: BatchReport) -> None:
        reports.append(batch)
        if batch.phase == "start":  # the host changes once the watcher is up
            events.push(*to_device_events(live.plug_lun(lun(1))))
        elif sum(r.counts.get("scsi_device", {}).get("appeared", 0) for r in reports) >= 1:
            service.request_stop()

    service = WatchService(
        store, HOST, model, settings=WatchSettings(poll=0.05), clock=clock, report=report
    )
    try:
        assert service.run() == 0
    finally:
        events.stop()
    assert reports[0].phase == "start"
    assert all(r.phase == "batch" for r in reports[1:])
    assert reports[-1].last_seqnum == live.events[-1].seqnum
    # What the events applied is exactly what a full reconcile of the final tree writes.
    check = reconcile(store, discover(source.scan(), HOST), dry_run=True)
    assert check.changes == ()
    assert check.counts["scsi_device"] == 1
    assert leases.holder(store, HOST) is None
