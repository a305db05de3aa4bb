"""The ``tracker watch`` service: keep the store's model of one host live.

:class:`WatchService` drives an incremental engine (the
:class:`LiveModelLike` contract of
:class:`tracker.reconcile.incremental.LiveModel`):

1. take the host's writer lease (:mod:`tracker.db.leases`), or refuse with
   :class:`~tracker.exceptions.HostAlreadyWatched` (exit status 7), or, with
   ``wait``, wait until it is free;
2. ``start()``: subscribe to device events, full scan and reconcile, apply
   the events that came meanwhile;
3. ``step()`` forever: each applied batch is one transaction and is reported
   (one :class:`BatchReport`); every ``resync_interval`` seconds a full
   ``resync()``; the lease is renewed every ``lease_renew`` seconds;
4. a stop request (SIGTERM/SIGINT, see :func:`tracker.cli.watch.run_watch`)
   only sets a flag: the batch being applied is committed (or rolled back by
   the database if the process dies), never half-applied; the loop then
   releases the lease and :meth:`WatchService.run` returns 0.

When the store cannot be reached (:class:`~tracker.exceptions.StoreUnavailable`
or :class:`~tracker.exceptions.StoreBusy`), the service retries with growing,
jittered pauses (tenacity, on the injected clock) until it succeeds: it then
renews its lease and resynchronises, since events may have been missed.
After ``grace_period`` seconds without success it raises
:class:`~tracker.exceptions.StoreLost` (exit status 6).

Everything that waits takes the injected :class:`~tracker.clock.Clock`; the
lease's expiry is wall-clock UTC (``wall``), because other processes compare it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_random_exponential,
)

from tracker import exceptions
from tracker.clock import Clock, SystemClock

if TYPE_CHECKING:
    from tracker.db.leases import Lease
    from tracker.db.store import Store
    from tracker.reconcile.apply import Change

__all__ = [
    "BatchReport",
    "LiveModelLike",
    "WatchService",
    "WatchSettings",
    "default_owner",
]

LOG = logging.getLogger(__name__)

T = TypeVar("T")

#: The store errors a watcher outlives (for ``grace_period`` seconds).
OUTAGES: tuple[type[exceptions.StoreError], ...] = (
    exceptions.StoreUnavailable,
    exceptions.StoreBusy,
)


class BatchResultLike(Protocol):
    """What one applied batch or resync reports
    (:class:`tracker.reconcile.incremental.BatchResult`)."""

    @property
    def events(self) -> int: ...
    @property
    def changes(self) -> tuple[Change, ...]: ...
    @property
    def rows_written(self) -> int: ...
    @property
    def resynced(self) -> bool: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def first_seqnum(self) -> int | None: ...
    @property
    def last_seqnum(self) -> int | None: ...
    @property
    def duration(self) -> float: ...


class LiveModelLike(Protocol):
    """The incremental engine the service drives
    (:class:`tracker.reconcile.incremental.LiveModel`)."""

    def start(self) -> BatchResultLike:
        """Subscribe, full scan and reconcile, apply the events that came meanwhile."""
        ...

    def step(self, timeout: float | None) -> BatchResultLike | None:
        """Apply one coalesced batch in one transaction; ``None`` when none came."""
        ...

    def resync(self, reason: str) -> BatchResultLike:
        """Full scan and reconcile."""
        ...


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """How the service paces itself (the ``[watch]`` options).

    :ivar resync_interval: seconds between periodic full resyncs.
    :ivar grace_period: seconds the store may stay unreachable before the
        service gives up.
    :ivar lease_ttl: seconds a lease lasts without renewal.
    :ivar lease_renew: seconds between renewals (less than ``lease_ttl``).
    :ivar wait: wait for another watcher's lease instead of refusing.
    :ivar poll: the longest a ``step()`` waits, so a stop request is seen
        within about this many seconds.
    :ivar backoff_max: the longest pause between two attempts to reach the store.
    """

    resync_interval: float = 3600.0
    grace_period: float = 300.0
    lease_ttl: float = 30.0
    lease_renew: float = 10.0
    wait: bool = False
    poll: float = 0.5
    backoff_max: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.lease_renew < self.lease_ttl:
            raise exceptions.InvalidInput(
                "lease_renew", self.lease_renew, f"between 0 and lease_ttl ({self.lease_ttl:g})"
            )


@dataclass(frozen=True, slots=True)
class BatchReport:
    """One applied batch (or the initial reconcile, or a resync), for the operator.

    :ivar phase: ``"start"`` (subscribe and full reconcile), ``"batch"``
        (events applied) or ``"resync"`` (a full resync).
    :ivar host_name: the host.
    :ivar events: events applied.
    :ivar first_seqnum: the first event's sequence number, if any.
    :ivar last_seqnum: the last event's sequence number, if any.
    :ivar rows_written: rows written (journal included).
    :ivar reason: why a resync happened (``"periodic"``, ``"store back"`` ...).
    :ivar duration: seconds the batch took.
    :ivar changes: every change, as JSON-ready dictionaries.
    :ivar counts: changes per kind and event (``{"scsi_device": {"appeared": 4}}``).
    """

    phase: str
    host_name: str
    events: int
    first_seqnum: int | None
    last_seqnum: int | None
    rows_written: int
    reason: str | None
    duration: float
    changes: tuple[dict[str, Any], ...] = ()
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, phase: str, host_name: str, result: BatchResultLike) -> BatchReport:
        """:returns: the report of an engine's result. Never raises."""
        tally: Counter[tuple[str, str]] = Counter((c.kind, c.event) for c in result.changes)
        counts: dict[str, dict[str, int]] = {}
        for (kind, event), number in sorted(tally.items()):
            counts.setdefault(kind, {})[event] = number
        if phase == "batch" and result.resynced:
            phase = "resync"
        return cls(
            phase=phase,
            host_name=host_name,
            events=result.events,
            first_seqnum=result.first_seqnum,
            last_seqnum=result.last_seqnum,
            rows_written=result.rows_written,
            reason=result.reason,
            duration=result.duration,
            changes=tuple(change.as_dict() for change in result.changes),
            counts=counts,
        )

    def as_dict(self) -> dict[str, Any]:
        """:returns: the report as one JSON-ready object (``--json``). Never raises."""
        return {
            "phase": self.phase,
            "host_name": self.host_name,
            "events": self.events,
            "first_seqnum": self.first_seqnum,
            "last_seqnum": self.last_seqnum,
            "rows_written": self.rows_written,
            "reason": self.reason,
            "duration_ms": round(self.duration * 1000, 3),
            "counts": self.counts,
            "changes": list(self.changes),
        }

    def line(self) -> str:
        """:returns: the one log line of the batch. Never raises.

        ``batch 2041-2046 (6 events): scsi_device 1 appeared, multipath_map 1
        changed; 3 rows in 2.4 ms``
        """
        if self.phase == "batch":
            seqnums = ""
            if self.first_seqnum is not None:
                seqnums = f" {self.first_seqnum}"
                if self.last_seqnum is not None and self.last_seqnum != self.first_seqnum:
                    seqnums += f"-{self.last_seqnum}"
            head = f"batch{seqnums} ({self.events} event{'s' if self.events != 1 else ''})"
        elif self.phase == "start":
            head = "start: full reconcile"
            if self.events:
                head += f" + {self.events} event{'s' if self.events != 1 else ''}"
        else:
            head = f"resync ({self.reason or 'requested'})"
        what = ", ".join(
            f"{kind} {number} {event}"
            for kind, events in self.counts.items()
            for event, number in events.items()
        )
        return (
            f"{head}: {what or 'no change'}; "
            f"{self.rows_written} row{'s' if self.rows_written != 1 else ''} "
            f"in {self.duration * 1000:.1f} ms"
        )


def default_owner() -> str:
    """:returns: ``host/pid/uuid``: a lease owner no other process can share. Never raises."""
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4()}"


class _Stopped(Exception):
    """A stop was requested while waiting for the store (internal)."""


class WatchService:
    """Apply a host's device events to the store until asked to stop.

    :param store: the store (its URL names it in errors).
    :param host_name: the host whose lease is taken.
    :param model: the engine (subscribes in ``start()``).
    :param settings: pacing; see :class:`WatchSettings`.
    :param clock: monotonic time and sleeping (tests: a fake clock).
    :param wall: the current UTC time, for the lease's expiry.
    :param owner: this watcher's lease owner (:func:`default_owner`).
    :param report: called with every applied batch.
    :param warn: called with one line for each thing the operator should know
        (an outage, a retry, waiting for a lease).
    """

    def __init__(
        self,
        store: Store,
        host_name: str,
        model: LiveModelLike,
        *,
        settings: WatchSettings | None = None,
        clock: Clock | None = None,
        wall: Callable[[], dt.datetime] | None = None,
        owner: str | None = None,
        report: Callable[[BatchReport], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        from tracker.db.models import utcnow

        self.store = store
        self.host_name = host_name
        self.model = model
        self.settings = settings or WatchSettings()
        self.clock = clock if clock is not None else SystemClock()
        self.wall = wall or utcnow
        self.owner = owner or default_owner()
        self._report = report or (lambda batch: LOG.info("%s", batch.line()))
        self._warn = warn or (lambda text: LOG.warning("%s", text))
        self._stop = False
        self._holding = False
        self._holder: Lease | None = None
        self._renewed_at = 0.0
        self._outage_seconds = 0.0
        #: how many store outages the service outlived
        self.outages = 0

    # -- stopping --

    def request_stop(self) -> None:
        """Ask the loop to stop after the batch in progress (safe in a signal handler).

        :raises: nothing.
        """
        self._stop = True

    @property
    def stopping(self) -> bool:
        """:returns: whether a stop was requested. Never raises."""
        return self._stop

    # -- the loop --

    def run(self) -> int:
        """Take the lease, reconcile, then apply events until a stop request.

        :returns: 0 once stopped on request.
        :raises tracker.exceptions.HostAlreadyWatched: another watcher holds the
            host's lease (and ``wait`` is off).
        :raises tracker.exceptions.LeaseLost: the lease lapsed during an outage
            and another watcher took the host.
        :raises tracker.exceptions.StoreLost: the store stayed unreachable for
            longer than the grace period.
        :raises tracker.exceptions.TrackerError: what the engine raises otherwise.
        """
        try:
            try:
                self._outlasting(self._acquire, "take the lease")
                if self._stop:
                    return 0
                start = self._outlasting(self.model.start, "start")
            except _Stopped:
                return 0
            self._emit("start", start)
            self._loop()
            return 0
        finally:
            self._release()

    def _loop(self) -> None:
        settings = self.settings
        next_resync = self.clock.monotonic() + settings.resync_interval
        while not self._stop:
            now = self.clock.monotonic()
            try:
                if now >= self._renewed_at + settings.lease_renew:
                    self._renew()
                if now >= next_resync:
                    self._emit("resync", self.model.resync("periodic"))
                    next_resync = self.clock.monotonic() + settings.resync_interval
                    continue
                timeout = min(
                    settings.poll,
                    next_resync - now,
                    self._renewed_at + settings.lease_renew - now,
                )
                result = self.model.step(max(0.0, timeout))
                if result is not None:
                    self._emit("batch", result)
            except OUTAGES as error:
                try:
                    resynced = self._recover(error)
                except _Stopped:
                    return
                self._emit("resync", resynced)
                next_resync = self.clock.monotonic() + settings.resync_interval

    def _emit(self, phase: str, result: BatchResultLike) -> None:
        self._report(BatchReport.of(phase, self.host_name, result))

    # -- the lease --

    def _take(self) -> bool:
        from tracker.db import leases

        ttl = dt.timedelta(seconds=self.settings.lease_ttl)
        lease = leases.take(self.store, self.host_name, self.owner, ttl, self.wall())
        if lease.owner == self.owner:
            self._holding = True
            self._renewed_at = self.clock.monotonic()
            return True
        self._holder = lease
        return False

    def _other(self) -> Lease:
        assert self._holder is not None, "set when the lease was refused"
        return self._holder

    def _acquire(self) -> None:
        """Take the lease; refuse, or wait (checking for stop requests) for it."""
        waited = False
        while not self._take():
            lease = self._other()
            if not self.settings.wait:
                raise exceptions.HostAlreadyWatched(
                    self.host_name, lease.owner, lease.expires_at.isoformat()
                )
            if not waited:
                self._warn(
                    f"host {self.host_name} is watched by {lease.owner} (lease until "
                    f"{lease.expires_at.isoformat()}); waiting for it"
                )
                waited = True
            self._pause(self.settings.lease_renew / 2)
            if self._stop:
                return
        if waited:
            self._warn(f"took the lease of host {self.host_name}")

    def _renew(self) -> None:
        if not self._take():
            self._holding = False
            lease = self._other()
            raise exceptions.LeaseLost(self.host_name, lease.owner, lease.expires_at.isoformat())

    def _release(self) -> None:
        if not self._holding:
            return
        from tracker.db import leases

        self._holding = False
        try:
            leases.release(self.store, self.host_name, self.owner)
        except exceptions.StoreError as error:
            self._warn(f"could not release the lease of host {self.host_name}: {error}")

    # -- outages --

    def _pause(self, seconds: float) -> None:
        """Sleep on the clock in slices of at most ``poll``, waking for a stop request."""
        deadline = self.clock.monotonic() + seconds
        while not self._stop:
            left = deadline - self.clock.monotonic()
            if left <= 0:
                return
            self.clock.sleep(min(left, self.settings.poll))

    def _sleep(self, seconds: float) -> None:
        self._pause(seconds)
        if self._stop:
            raise _Stopped

    def _recover(self, error: exceptions.StoreError) -> BatchResultLike:
        """After an outage: renew the lease and resync, retrying within the grace period."""
        self.outages += 1
        state = "busy" if isinstance(error, exceptions.StoreBusy) else "unreachable"
        self._warn(f"store {state}, retrying for up to {self.settings.grace_period:g} s: {error}")

        def back() -> BatchResultLike:
            self._renew()
            return self.model.resync("store back")

        result = self._outlasting(back, "resync", first_error=error)
        self._warn(f"store reachable again after {self._outage_seconds:.1f} s; resynced")
        return result

    def _outlasting(
        self,
        work: Callable[[], T],
        what: str,
        first_error: exceptions.StoreError | None = None,
    ) -> T:
        """Run ``work``, retrying store outages for up to the grace period.

        :raises tracker.exceptions.StoreLost: still failing after the grace period.
        :raises _Stopped: a stop was requested while waiting.
        """
        started = self.clock.monotonic()
        grace = self.settings.grace_period
        last: list[exceptions.StoreError] = [first_error] if first_error is not None else []

        def out_of_time(state: RetryCallState) -> bool:
            return self.clock.monotonic() - started >= grace

        def before_sleep(state: RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome is not None else None
            if isinstance(failure, exceptions.StoreError):
                last.append(failure)
            LOG.debug("%s: attempt %d failed: %s", what, state.attempt_number, failure)

        retrying = Retrying(
            stop=out_of_time,
            wait=wait_random_exponential(multiplier=0.5, max=self.settings.backoff_max),
            retry=retry_if_exception_type(OUTAGES),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            if first_error is not None:
                self._sleep(min(0.5, self.settings.backoff_max))
            result = retrying(work)
        except OUTAGES as error:
            if self._stop:
                raise _Stopped from error
            raise exceptions.StoreLost(self.store.display_url, _reason(error), grace) from error
        self._outage_seconds = self.clock.monotonic() - started
        return result


def _reason(error: exceptions.StoreError) -> str:
    return error.reason if isinstance(error, exceptions.StoreUnavailable) else str(error)
