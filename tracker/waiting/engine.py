"""The machinery behind a wait: one writer applying events, rescans in the background.

A :class:`~tracker.waiting.model.StorageModel` owns one :class:`Engine` and
one :class:`Rescans`, shared by every thread that waits on it:

* :class:`Engine` runs a :class:`~tracker.reconcile.incremental.LiveModel` in
  a thread of its own while at least one wait is in progress -- the one
  writer of the host's observed rows in this process (pyroute2 NDB's shape:
  subscribe, then dump, then apply events). Its first run subscribes to the
  device events, scans the host in full and reconciles it; later runs first
  apply what the kernel queued on the still-open subscription meanwhile (a
  netlink overflow makes that a full resync). Each committed batch bumps
  :attr:`Engine.generation` and wakes the waiters, which evaluate their
  predicates again. Without an event source (no netlink in a container) the
  engine polls sysfs instead (:class:`~tracker.host.polling.PollingEventSource`),
  and says so in the log once.
* :class:`Rescans` writes scan requests (:class:`~tracker.host.rescan.Rescanner`)
  in a thread of its own: on a real host a write to ``scan`` returns only when
  the kernel has finished scanning, which can take seconds, and a wait must
  never overrun its deadline by a rescan.

Waiters never block on either: they wait on the shared condition through the
injected clock, until the deadline at most.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from tracker.clock import Clock
from tracker.exceptions import EventSourceError, InvalidInput, RescanFailed, ScanFileMissing
from tracker.host.events import EventSource

if TYPE_CHECKING:
    from tracker.db.store import Store
    from tracker.host.rescan import Rescanner
    from tracker.host.sources import DeviceSource
    from tracker.reconcile.incremental import BatchResult, LiveModel
    from tracker.waiting.predicates import ScanAddress

__all__ = ["Engine", "Rescans"]

LOG = logging.getLogger(__name__)

#: The most batches a resumed engine applies before it says it is in sync (the
#: rest are applied as they come, the waiters re-evaluating after each).
RESUME_BATCHES = 50


class Engine:
    """Applies one host's device events to the store while someone waits.

    :param store: the store.
    :param host_name: the host whose rows it writes.
    :param source: reads devices (full scans and lookups).
    :param events: the device event source, or ``None`` to poll from the start.
    :param fallback: makes the polling source, used when ``events`` is
        ``None`` or cannot start.
    :param clock: the clock of the live model.
    :param window: the live model's coalescing window (seconds).
    :param step_timeout: the longest one step waits for an event, so a
        re-read request or the last waiter leaving is seen within that time.
    :param gap_resync: whether a sequence-number gap means lost events (only
        for sources that number every event they deliver).
    """

    def __init__(
        self,
        store: Store,
        host_name: str,
        source: DeviceSource,
        events: EventSource | None,
        *,
        fallback: Callable[[], EventSource],
        clock: Clock,
        window: float,
        step_timeout: float = 0.05,
        gap_resync: bool = False,
    ) -> None:
        self.store = store
        self.host_name = host_name
        self.source = source
        self.clock = clock
        self.window = window
        self.step_timeout = step_timeout
        self.gap_resync = gap_resync
        self.condition = threading.Condition()
        self._events = events
        self._fallback = fallback
        self._model: LiveModel | None = None
        self._active: EventSource | None = None
        self._polling = False
        self._thread: threading.Thread | None = None
        self._users = 0
        self._run = 0
        self._ready_run = 0
        self._failures: dict[int, BaseException] = {}
        self._rereads: dict[str, None] = {}
        self._reread_asked = 0
        self._reread_done = 0
        self._resync: str | None = None
        self._closed = False
        #: committed batches (and resyncs) since the model was built
        self.generation = 0
        #: device events applied since the model was built
        self.events_applied = 0

    def __repr__(self) -> str:
        mode = "polling" if self._polling else "events"
        return f"Engine(host_name={self.host_name!r}, mode={mode}, generation={self.generation})"

    @property
    def polling(self) -> bool:
        """:returns: whether the engine polls sysfs (no event source). Never raises."""
        return self._polling

    # -- for waiters (call with the condition held where noted) --

    def acquire(self) -> int:
        """Count one more waiter; start the engine's thread if it is not running.

        :returns: the run the waiter belongs to (for :meth:`ready` and :meth:`failure`).
        :raises tracker.exceptions.InvalidInput: the engine was closed.
        """
        with self.condition:
            if self._closed:
                raise InvalidInput("storage model", self.host_name, "it was closed")
            self._users += 1
            if self._thread is None:
                self._run += 1
                self._thread = threading.Thread(
                    target=self._loop,
                    args=(self._run,),
                    name=f"tracker-wait-{self.host_name}",
                    daemon=True,
                )
                self._thread.start()
            return self._run

    def release(self) -> None:
        """Count one waiter less; the thread stops after its step when none is left.

        :raises: nothing.
        """
        with self.condition:
            self._users = max(0, self._users - 1)

    def ready(self, run: int) -> bool:
        """Tell whether ``run`` has brought the store in line with the host
        (call with the condition held).

        :returns: whether it has. Never raises.
        """
        return self._ready_run >= run

    def failure(self, run: int) -> BaseException | None:
        """:returns: what ended ``run``, if it failed (condition held). Never raises."""
        return self._failures.get(run)

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait (through the clock) until ``predicate()`` -- called with the
        condition held -- is true, for at most ``timeout`` seconds.

        :returns: the last value of ``predicate()``.
        :raises: what ``predicate`` raises.
        """
        with self.condition:
            return self.clock.wait(self.condition, predicate, timeout)

    def reread(self, paths: Iterable[str]) -> None:
        """Ask for a re-read of some devices (state the kernel changes without an event).

        :raises: nothing.
        """
        with self.condition:
            self._rereads.update(dict.fromkeys(paths))

    def reread_now(self, paths: Iterable[str], timeout: float) -> bool:
        """Re-read some devices and wait (through the clock) until that is in the store.

        :returns: whether the re-read was applied within ``timeout`` seconds.
        :raises: nothing.
        """
        with self.condition:
            self._rereads.update(dict.fromkeys(paths))
            self._reread_asked += 1
            ticket = self._reread_asked
            self.condition.notify_all()
            return (
                self.clock.wait(
                    self.condition,
                    lambda: self._reread_done >= ticket or self._closed,
                    timeout,
                )
                and not self._closed
            )

    def request_resync(self, reason: str) -> None:
        """Ask for a full scan and reconcile at the next step.

        :raises: nothing.
        """
        with self.condition:
            self._resync = reason

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread and the event source. Idempotent.

        :raises: nothing.
        """
        with self.condition:
            self._closed = True
            self._users = 0
            thread = self._thread
            self.condition.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._stop_events()

    # -- the thread --

    def _build(self) -> LiveModel:
        from tracker.reconcile.incremental import LiveModel

        events = self._events
        if events is not None:
            try:
                events.start()
            except EventSourceError as error:
                LOG.warning(
                    "%s: no device events (%s); polling sysfs instead, with a targeted "
                    "re-read of what the wait is about",
                    self.host_name,
                    error,
                )
                events = None
        if events is None:
            events = self._fallback()
            if self._events is None:
                LOG.warning(
                    "%s: no device event source; polling sysfs (%r), with a targeted "
                    "re-read of what the wait is about",
                    self.host_name,
                    events,
                )
            self._polling = True
        self._active = events
        return LiveModel(
            self.store,
            self.host_name,
            self.source,
            events,
            clock=self.clock,
            window=self.window,
            gap_resync=self.gap_resync and not self._polling,
        )

    def _stop_events(self) -> None:
        active, self._active = self._active, None
        if active is not None:
            active.stop()

    def _applied(self, result: BatchResult | None) -> None:
        if result is None:
            return
        with self.condition:
            self.generation += 1
            self.events_applied += result.events
            self.condition.notify_all()

    def _loop(self, run: int) -> None:
        try:
            if self._model is None:
                model = self._build()
                try:
                    self._applied(model.start())
                except BaseException:
                    self._stop_events()
                    raise
                self._model = model
            else:
                model = self._model
                for _ in range(RESUME_BATCHES):
                    result = model.step(0)
                    if result is None:
                        break
                    self._applied(result)
            with self.condition:
                self._ready_run = run
                self.generation += 1
                self.condition.notify_all()
            while True:
                with self.condition:
                    if self._users == 0 or self._closed:
                        self._thread = None
                        return
                    paths, self._rereads = list(self._rereads), {}
                    asked = self._reread_asked
                    resync, self._resync = self._resync, None
                if resync is not None:
                    self._applied(model.resync(resync))
                if paths:
                    self._applied(model.reread(paths))
                if asked != self._reread_done:
                    with self.condition:
                        self._reread_done = asked
                        self.condition.notify_all()
                self._applied(model.step(self.step_timeout))
        except BaseException as error:  # handed to the waiters, who raise it
            LOG.debug("%s: the wait engine stopped: %r", self.host_name, error)
            with self.condition:
                self._failures = {run: error}
                self._thread = None
                self.condition.notify_all()


class Rescans:
    """Writes scan requests in a background thread, one pass at a time.

    Requests made while a pass runs are merged into the next pass. Failures
    are logged and kept (:attr:`failures`), never raised: a wait goes on, its
    condition may still come true (an array that announces its LUNs itself).

    :param rescanner: writes the requests.
    :param condition: notified when a pass ends (the engine's).
    :param clock: when passes end, by this clock.
    """

    def __init__(self, rescanner: Rescanner, condition: threading.Condition, clock: Clock) -> None:
        self.rescanner = rescanner
        self.condition = condition
        self.clock = clock
        self._pending: dict[ScanAddress, None] = {}
        self._thread: threading.Thread | None = None
        #: passes finished so far
        self.completed = 0
        #: when the last pass finished (``None``: none yet)
        self.last_done: float | None = None
        #: what the last pass could not write, one text per request
        self.failures: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Rescans({self.rescanner!r}, completed={self.completed})"

    @property
    def running(self) -> bool:
        """:returns: whether a pass is in progress or queued. Never raises."""
        with self.condition:
            return self._thread is not None

    def request(self, addresses: Sequence[ScanAddress]) -> bool:
        """Queue scan requests for the next pass (starting one when none runs).

        :returns: whether anything was queued (``False`` for no address).
        :raises: nothing.
        """
        if not addresses:
            return False
        with self.condition:
            self._pending.update(dict.fromkeys(addresses))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="tracker-rescan", daemon=True
                )
                self._thread.start()
        return True

    def _loop(self) -> None:
        while True:
            with self.condition:
                if not self._pending:
                    self._thread = None
                    return
                batch, self._pending = list(self._pending), {}
            failures = []
            for host, channel, target, lun in batch:
                try:
                    self.rescanner.scan(host, channel, target, lun)
                except (RescanFailed, ScanFileMissing, InvalidInput) as error:
                    failures.append(str(error))
                except Exception as error:  # a thread of ours must never die silently
                    LOG.exception("rescan of host%d failed", host)
                    failures.append(f"host{host}: {type(error).__name__}")
            if failures:
                LOG.warning("rescan: %s", "; ".join(failures))
            with self.condition:
                self.completed += 1
                self.last_done = self.clock.monotonic()
                self.failures = tuple(failures)
                self.condition.notify_all()
