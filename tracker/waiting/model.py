"""``rescan_and_wait_for``: block until the host sees (or stops seeing) storage, event-driven.

:class:`StorageModel` is infi.storagemodel's entry point, on tracker's
reconciled SQL model of one host. :func:`get_storage_model` builds one from
tracker's configuration (once per configuration per process);
``StorageModel(store, host_name=..., source=..., events=..., rescanner=...,
clock=...)`` builds one explicitly, with no globals.

How :meth:`StorageModel.rescan_and_wait_for` waits:

1. the engine (:mod:`tracker.waiting.engine`) subscribes to device events and
   brings the store in line with the host: a full scan and reconcile the first
   time, the events queued meanwhile on later calls;
2. the predicate is evaluated on the store (one snapshot, through
   :class:`~tracker.waiting.view.ModelView`); if it holds, the call returns
   at once, without a rescan;
3. otherwise a rescan is asked for in the background -- targeted when the
   predicate names an FC or iSCSI target (:meth:`Predicate.rescan_plan
   <tracker.waiting.predicates.Predicate.rescan_plan>`), else every FC, iSCSI
   and SAS host;
4. after each batch of events the engine commits, the predicate is evaluated
   again. When the predicate's state has not changed for ``quiet_period``
   seconds (no relevant event: an unrelated device flapping does not count),
   the rescan is asked for again -- never on every evaluation. Each finished
   rescan, and in polling mode each interval, re-reads the devices the
   predicate looked at (state such as ``offline`` changes without an event);
5. the deadline is hard: the call returns or raises
   :class:`~tracker.exceptions.WaitTimeout` within ``timeout`` seconds plus
   the time of one evaluation, whatever a rescan or a batch is doing (both
   run in other threads).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker import exceptions, validation
from tracker.clock import Clock, SystemClock
from tracker.waiting.engine import Engine, Rescans
from tracker.waiting.predicates import (
    CallablePredicate,
    Predicate,
    Verdict,
    WaitForNothing,
    as_predicate,
)

if TYPE_CHECKING:
    from oslo_config import cfg

    from tracker.db.store import Store
    from tracker.host.events import EventSource
    from tracker.host.rescan import Rescanner
    from tracker.host.sources import DeviceSource
    from tracker.waiting.predicates import ScanAddress

__all__ = [
    "StorageModel",
    "WaitProgress",
    "WaitResult",
    "WaitSettings",
    "get_storage_model",
]

LOG = logging.getLogger(__name__)


class _Udev:
    """The default event source: udev's netlink monitor (polling when it cannot open)."""

    def __repr__(self) -> str:
        return "UDEV"


#: ``events=UDEV`` (the default): the udev netlink monitor, or polling sysfs when
#: it cannot be opened. ``events=None`` polls from the start.
UDEV: Any = _Udev()


@dataclass(frozen=True, slots=True)
class WaitSettings:
    """How waits pace themselves (the ``[waiting]`` options).

    :ivar quiet_period: seconds without a relevant change (the predicate's
        state) after which a wait rescans again.
    :ivar poll_interval: seconds between two sysfs listings when there is no
        event source, and between two re-reads of what a wait is about there.
    :ivar window: seconds events are gathered into one batch after the first.
    :ivar progress_interval: the longest a wait goes without calling its
        progress callback.
    """

    quiet_period: float = 5.0
    poll_interval: float = 1.0
    window: float = 0.005
    progress_interval: float = 0.25

    def __post_init__(self) -> None:
        for name in ("quiet_period", "poll_interval", "progress_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise exceptions.InvalidInput(name, value, "a positive number of seconds")
        if isinstance(self.window, bool) or not isinstance(self.window, int | float):
            raise exceptions.InvalidInput("window", self.window, "a number of seconds")
        if not self.window >= 0:
            raise exceptions.InvalidInput("window", self.window, "0 seconds or more")

    @classmethod
    def from_config(cls, conf: cfg.ConfigOpts) -> WaitSettings:
        """:returns: the settings of a configuration's ``[waiting]`` group."""
        group = conf.waiting
        return cls(
            quiet_period=group.quiet_period,
            poll_interval=group.poll_interval,
            window=group.window,
        )


@dataclass(frozen=True, slots=True)
class WaitProgress:
    """Where a wait is, for a progress display.

    :ivar predicate: what is waited for.
    :ivar elapsed: seconds since the call.
    :ivar events: device events applied meanwhile.
    :ivar rescans: rescans asked for.
    :ivar state: the predicate's last state, in words.
    :ivar polling: whether the host is polled (no event source).
    """

    predicate: Predicate
    elapsed: float
    events: int
    rescans: int
    state: str
    polling: bool


@dataclass(frozen=True, slots=True)
class WaitResult:
    """What a successful wait saw.

    :ivar predicate: what was waited for.
    :ivar state: its state when it held, in words.
    :ivar elapsed: seconds the call took, by the model's clock.
    :ivar events: device events applied meanwhile.
    :ivar rescans: rescans asked for.
    :ivar polling: whether the host was polled (no event source).
    """

    predicate: Predicate
    state: str
    elapsed: float
    events: int
    rescans: int
    polling: bool

    def __bool__(self) -> bool:
        return True

    def as_dict(self) -> dict[str, Any]:
        """:returns: the result as JSON-ready data. Never raises."""
        return {
            "holds": True,
            "predicate": repr(self.predicate),
            "state": self.state,
            "elapsed": round(self.elapsed, 6),
            "events": self.events,
            "rescans": self.rescans,
            "mode": "polling" if self.polling else "events",
        }


Progress = Callable[[WaitProgress], None]


def _timeout(value: object) -> float:
    if value is None:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise exceptions.InvalidInput("timeout", value, "a number of seconds, 0 or more, or None")
    return float(value)


def _has_callables(predicate: Predicate) -> bool:
    if isinstance(predicate, CallablePredicate):
        return True
    parts = getattr(predicate, "predicates", None)
    if parts is not None:
        return any(_has_callables(p) for p in parts)
    inner = getattr(predicate, "predicate", None)
    return isinstance(inner, Predicate) and _has_callables(inner)


class StorageModel:
    """infi.storagemodel's storage model, on one host's reconciled model in a store.

    Nothing runs until the first wait or check. Safe to share between threads:
    they share one engine (one writer) and one rescanner.

    :param store: the store the host's model is reconciled into.
    :param host_name: the host's name in the store (the kernel's host name by default).
    :param source: reads the host's devices (``SysfsTreeSource("/")`` by default).
    :param events: the device event source: :data:`UDEV` (the default, udev's
        netlink monitor, or polling when it cannot be opened), an
        :class:`~tracker.host.events.EventSource`, or ``None`` to poll sysfs.
    :param rescanner: asks the kernel to scan (a
        :class:`~tracker.host.rescan.Rescanner` of the source's root by default).
    :param clock: monotonic time and waiting (tests: a fake clock).
    :param settings: pacing (:class:`WaitSettings`).
    :param gap_resync: whether a sequence gap means lost events (only for
        sources that number every event they deliver, such as the events file).
    :raises tracker.exceptions.InvalidInput: ``store`` is not a Store, or a
        bad host name.
    """

    def __init__(
        self,
        store: Store,
        *,
        host_name: str | None = None,
        source: DeviceSource | None = None,
        events: EventSource | None = UDEV,
        rescanner: Rescanner | None = None,
        clock: Clock | None = None,
        settings: WaitSettings | None = None,
        gap_resync: bool = False,
    ) -> None:
        from tracker import opts
        from tracker.host.polling import PollingEventSource
        from tracker.host.rescan import Rescanner
        from tracker.host.sources import PRODUCTION_ROOT, SysfsTreeSource

        self.store = validation.store("store", store)
        self.host_name = validation.text(
            "host_name", host_name if host_name is not None else opts.default_host_name()
        )
        self.clock = clock if clock is not None else SystemClock()
        self.settings = settings if settings is not None else WaitSettings()
        self.source = source if source is not None else SysfsTreeSource(PRODUCTION_ROOT)
        root = Path(getattr(self.source, "root", PRODUCTION_ROOT))
        self.root = root
        if events is UDEV:
            from tracker.host.events import PyudevEventSource

            events = PyudevEventSource(clock=self.clock)
        self.rescanner = rescanner if rescanner is not None else Rescanner(root, clock=self.clock)
        interval = self.settings.poll_interval
        self.engine = Engine(
            self.store,
            self.host_name,
            self.source,
            events,
            fallback=lambda: PollingEventSource(root, interval=interval, clock=self.clock),
            clock=self.clock,
            window=self.settings.window,
            gap_resync=gap_resync,
        )
        self.rescans = Rescans(self.rescanner, self.engine.condition, self.clock)

    def __repr__(self) -> str:
        return f"StorageModel(host_name={self.host_name!r}, store={self.store.display_url!r})"

    def __enter__(self) -> StorageModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the engine and the event subscription; the model cannot wait any more.

        :raises: nothing.
        """
        self.engine.close()

    # -- reading -----------------------------------------------------------------

    def evaluate(self, predicate: object) -> Verdict:
        """Evaluate a predicate on the store as it is now (one snapshot; no sync, no rescan).

        :returns: the verdict.
        :raises tracker.exceptions.TrackerError: the store cannot be read, or
            the predicate raises a typed error.
        :raises Exception: what the predicate raises, unchanged.
        """
        from tracker.waiting.view import ModelView

        wanted = as_predicate(predicate)
        with self.store.read(f"evaluate {wanted!r}") as session:
            verdict = wanted.evaluate(ModelView(session, self.host_name))
        LOG.debug(
            "%s: %r %s: %s",
            self.host_name,
            wanted,
            "holds" if verdict.holds else "does not hold",
            verdict.state,
        )
        return verdict

    def rescan_plan(self, predicate: object) -> tuple[ScanAddress, ...]:
        """:returns: the scan requests a rescan for ``predicate`` writes now (one snapshot).

        :raises tracker.exceptions.TrackerError: the store cannot be read.
        """
        from tracker.waiting.view import ModelView

        wanted = as_predicate(predicate)
        with self.store.read(f"plan a rescan for {wanted!r}") as session:
            view = ModelView(session, self.host_name)
            return wanted.rescan_plan(view).resolve(view)

    def check(self, predicate: object) -> Verdict:
        """Bring the host's model up to date (no rescan), then evaluate a predicate.

        :returns: the verdict.
        :raises tracker.exceptions.TrackerError: as :meth:`rescan_and_wait_for`.
        """
        run = self.engine.acquire()
        try:
            self._sync(run, math.inf)
            return self.evaluate(predicate)
        finally:
            self.engine.release()

    def refresh(self) -> None:
        """Make the next wait scan and reconcile the whole host first (as infi's
        ``refresh()`` drops its caches).

        :raises: nothing.
        """
        self.engine.request_resync("refresh requested")

    def _sync(self, run: int, deadline: float) -> bool:
        """Wait until the engine's run is in sync; :returns: whether it is (else the
        deadline passed). :raises: what ended the run."""
        engine = self.engine
        done = engine.wait(
            lambda: engine.ready(run) or engine.failure(run) is not None,
            deadline - self.clock.monotonic(),
        )
        self._raise_failure(run)
        return done

    def _raise_failure(self, run: int) -> None:
        with self.engine.condition:
            error = self.engine.failure(run)
        if error is not None:
            raise error

    # -- waiting -----------------------------------------------------------------

    def rescan_and_wait_for(
        self,
        predicate: object = None,
        timeout: float | None = 60,
        *,
        rescan: bool = True,
        progress: Progress | None = None,
        timeout_in_seconds: float | None = None,
    ) -> WaitResult:
        """Rescan and block until ``predicate`` holds on this host.

        :param predicate: a :class:`~tracker.waiting.predicates.Predicate`, a
            list or tuple of them (all must hold), a callable taking no
            argument, or ``None`` (only rescan).
        :param timeout: seconds before :class:`~tracker.exceptions.WaitTimeout`
            (a hard deadline); ``None`` waits for ever.
        :param rescan: ``False`` only waits for events, writing no scan request.
        :param progress: called with a :class:`WaitProgress` after each
            evaluation and at least every ``progress_interval`` seconds.
        :param timeout_in_seconds: infi.storagemodel's name for ``timeout``
            (wins when given).
        :returns: what was seen when it held.
        :raises tracker.exceptions.WaitTimeout: it did not hold in time (also a
            :class:`TimeoutError`); carries the last state seen.
        :raises tracker.exceptions.InvalidInput: a bad predicate or timeout.
        :raises tracker.exceptions.StoreError: the store cannot be read or written.
        :raises tracker.exceptions.HostError: the host cannot be read.
        :raises Exception: what the predicate raises, unchanged.
        """
        wanted = as_predicate(predicate)
        limit = _timeout(timeout_in_seconds if timeout_in_seconds is not None else timeout)
        return _Wait(self, wanted, limit, rescan, progress).run()


class _Wait:
    """One call of :meth:`StorageModel.rescan_and_wait_for`."""

    def __init__(
        self,
        model: StorageModel,
        predicate: Predicate,
        timeout: float,
        rescan: bool,
        progress: Progress | None,
    ) -> None:
        self.model = model
        self.predicate = predicate
        self.timeout = timeout
        self.rescan = rescan
        self.progress = progress
        self.clock = model.clock
        self.engine = model.engine
        self.settings = model.settings
        self.started = self.clock.monotonic()
        self.deadline = self.started + timeout
        self.events_at_start = 0
        self.rescans = 0
        self.state = "the host's model is not in sync yet (first scan of the host)"
        self.paths: frozenset[str] = frozenset()

    def elapsed(self) -> float:
        return self.clock.monotonic() - self.started

    def events(self) -> int:
        return self.engine.events_applied - self.events_at_start

    def timed_out(self) -> exceptions.WaitTimeout:
        LOG.info(
            "%s: %r did not hold in %g s: %s",
            self.model.host_name,
            self.predicate,
            self.timeout,
            self.state,
        )
        return exceptions.WaitTimeout(
            self.predicate, self.timeout, self.elapsed(), self.state, self.events(), self.rescans
        )

    def report(self) -> None:
        if self.progress is not None:
            self.progress(
                WaitProgress(
                    self.predicate,
                    self.elapsed(),
                    self.events(),
                    self.rescans,
                    self.state,
                    self.engine.polling,
                )
            )

    def holds(self) -> WaitResult:
        LOG.info(
            "%s: %r holds after %.3f s: %s",
            self.model.host_name,
            self.predicate,
            self.elapsed(),
            self.state,
        )
        self.report()
        return WaitResult(
            self.predicate,
            self.state,
            self.elapsed(),
            self.events(),
            self.rescans,
            self.engine.polling,
        )

    def ask_rescan(self) -> None:
        plan = self.model.rescan_plan(self.predicate)
        if self.model.rescans.request(plan):
            self.rescans += 1
            LOG.debug("%s: rescan %s", self.model.host_name, plan)

    def run(self) -> WaitResult:
        engine = self.engine
        with engine.condition:
            self.events_at_start = engine.events_applied
        run = engine.acquire()
        try:
            if not self.model._sync(run, self.deadline):
                raise self.timed_out()
            return self._loop(run)
        finally:
            engine.release()

    def _evaluate(self) -> Verdict:
        verdict = self.model.evaluate(self.predicate)
        self.state, self.paths = verdict.state, verdict.paths
        return verdict

    def _loop(self, run: int) -> WaitResult:
        engine, rescans, settings, clock = (
            self.engine,
            self.model.rescans,
            self.settings,
            self.clock,
        )
        with engine.condition:
            generation, completed = engine.generation, rescans.completed
        verdict = self._evaluate()
        nothing = isinstance(self.predicate, WaitForNothing)
        if verdict.holds and not nothing:
            return self.holds()
        if self.rescan:
            self.ask_rescan()
        if nothing:
            return self.holds()
        self.report()
        changed_at = asked_at = reread_at = clock.monotonic()
        poll_predicate = _has_callables(self.predicate)
        while True:
            now = clock.monotonic()
            if now >= self.deadline:
                raise self.timed_out()
            # Rescan again only once the predicate's state stayed the same for a
            # quiet period after the last rescan (never while one runs).
            next_rescan = math.inf
            if self.rescan and not rescans.running:
                done = rescans.last_done if rescans.last_done is not None else -math.inf
                next_rescan = max(changed_at, asked_at, done) + settings.quiet_period
                if now >= next_rescan:
                    self.ask_rescan()
                    engine.reread(self.paths)
                    asked_at = now
                    next_rescan = now + settings.quiet_period
            wake = min(self.deadline, next_rescan)
            if self.progress is not None:
                wake = min(wake, now + settings.progress_interval)
            if engine.polling or poll_predicate:
                wake = min(wake, now + settings.poll_interval)
            seen_generation, seen_completed = generation, completed

            def woken(seen: tuple[int, int] = (generation, completed)) -> bool:
                return (engine.generation, rescans.completed) != seen or (
                    engine.failure(run) is not None
                )

            engine.wait(woken, wake - now)
            self.model._raise_failure(run)
            with engine.condition:
                generation, completed = engine.generation, rescans.completed
            now = clock.monotonic()
            if completed != seen_completed or (
                engine.polling and now - reread_at >= settings.poll_interval
            ):
                engine.reread(self.paths)
                reread_at = now
            if generation == seen_generation and not poll_predicate:
                self.report()
                continue
            before = self.state
            verdict = self._evaluate()
            if verdict.holds:
                return self.holds()
            if verdict.state != before:
                changed_at = clock.monotonic()
            self.report()


# --- from configuration ------------------------------------------------------------

_MODELS: dict[tuple[Any, ...], StorageModel] = {}
_MODELS_LOCK = threading.Lock()


def get_storage_model(config_files: list[str] | None = None) -> StorageModel:
    """The storage model of this host, built from tracker's configuration.

    Reads oslo.config's default files (``~/.tracker/tracker.conf``,
    ``/etc/tracker/tracker.conf`` ...) or ``config_files``, and the
    ``OS_<GROUP>__<OPTION>`` environment variables, as the ``tracker``
    command does: the store (``[database]``), the host name, source and root
    (``[discovery]``) and the pacing (``[waiting]``). One object per
    configuration per process: calling it again (infi.storagemodel code does,
    for every predicate) returns the same model while the configuration is
    the same.

    :param config_files: configuration files to read instead of the defaults.
    :returns: the model.
    :raises tracker.exceptions.ConfigError: a bad option value.
    :raises tracker.exceptions.StoreError: the store cannot be opened.
    """
    from oslo_config import cfg

    from tracker import opts
    from tracker.db.store import Store
    from tracker.host.sources import open_source

    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    try:
        conf([], project="tracker", default_config_files=config_files)
        settings = WaitSettings.from_config(conf)
        key = (
            conf.database.connection or opts.default_connection(),
            conf.database.auto_upgrade,
            conf.discovery.host_name or opts.default_host_name(),
            conf.discovery.source,
            conf.discovery.root,
            settings,
        )
    except cfg.Error as error:
        raise exceptions.ConfigError(
            "tracker configuration", " ".join(str(error).split())
        ) from error
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            store = Store.from_config(conf)
            model = StorageModel(
                store,
                host_name=key[2],
                source=open_source(conf.discovery.source, Path(conf.discovery.root)),
                settings=settings,
            )
            _MODELS[key] = model
        return model
