"""The connection monitor: keeps managed storage connections connected, reconnecting with backoff.

:class:`ConnectionMonitor` is a thread (a context manager for embedding; it
runs alone in ``tracker connections monitor``, and inside ``tracker watch``
when ``[connections] monitor`` is on). It:

* keeps the host's model live with the same one-writer engine as
  ``rescan_and_wait_for`` (:class:`tracker.waiting.engine.Engine`): an
  ``iscsi_session`` / ``iscsi_connection`` state change or removal is applied
  as it happens, and the connections are checked again after each batch, so a
  reconnect starts at once (within tens of milliseconds of the event);
* checks every connection every ``check_interval`` seconds as the safety net,
  each at its own phase of the interval (spread, not all at once): an iSCSI
  session is re-read from sysfs (a session that vanished without a ``remove``
  event is caught), the mount table is read for NFS;
* reconnects a connection that is not connected -- a session to its target
  ``LOGGED_IN`` with its connection up, its export mounted at its mount point
  -- in a worker of its own: one attempt at a time per connection (a lease in
  the store keeps processes sharing it apart), retried for ever with
  exponential backoff, jitter and a cap (tenacity): an array that reboots for
  fifteen minutes comes back without help. Each failure keeps its code and
  message in ``last_error``; a success clears it;
* lets a connection be unmanaged at any time: an attempt that finds its row
  gone stops, and if its login went through meanwhile, the target is
  disconnected again unless another id still needs it.

A session that exists but is not healthy (``FAILED``, or its connection down)
is logged out before the new login: iscsid's own recovery gave up on it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tenacity import Retrying, retry_if_exception_type, stop_never, wait_exponential_jitter

from tracker import exceptions
from tracker.clock import Clock, SystemClock
from tracker.connections.uri import IscsiTarget, target_from_dict
from tracker.db import storage_connections as rows
from tracker.db.models import utcnow

if TYPE_CHECKING:
    from tracker.connections.manager import StorageConnectionManager
    from tracker.host.events import EventSource
    from tracker.host.sources import DeviceSource
    from tracker.waiting.engine import Engine

__all__ = ["ConnectionMonitor", "MonitorSettings", "default_owner"]

LOG = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    """How the monitor paces itself (the ``[connections]`` options).

    :ivar check_interval: seconds between two checks of one connection.
    :ivar backoff_initial: the first pause between two failed attempts.
    :ivar backoff_max: the longest pause (the cap), jitter included.
    :ivar jitter: at most this many seconds added at random to each pause.
    :ivar lease_ttl: how long a process holds a connection's lease for one
        attempt (longer than a command may take).
    :ivar confirm_timeout: how long a login that went through may take to show
        in the host's model (its uevents) before a full resync is asked for,
        and as long again before the attempt counts as failed (``NOT_VISIBLE``).
    """

    check_interval: float = 10.0
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    jitter: float = 1.0
    lease_ttl: float = 300.0
    confirm_timeout: float = 5.0

    def __post_init__(self) -> None:
        names = ("check_interval", "backoff_initial", "backoff_max", "lease_ttl", "confirm_timeout")
        for name in names:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise exceptions.InvalidInput(name, value, "a positive number of seconds")
        if isinstance(self.jitter, bool) or not isinstance(self.jitter, int | float):
            raise exceptions.InvalidInput("jitter", self.jitter, "0 seconds or more")
        if not self.jitter >= 0:
            raise exceptions.InvalidInput("jitter", self.jitter, "0 seconds or more")
        if self.backoff_max < self.backoff_initial:
            raise exceptions.InvalidInput(
                "backoff_max", self.backoff_max, "at least backoff_initial"
            )


def default_owner() -> str:
    """:returns: ``host/pid/uuid``: a lease owner no other process shares. Never raises."""
    from tracker.watch import default_owner as owner

    return owner()


class _Stopped(Exception):
    """The monitor is stopping, or the connection was unmanaged (internal)."""


class _Failed(Exception):
    """One attempt failed; tenacity waits and tries again (internal)."""


class ConnectionMonitor:
    """Keep a manager's connections connected, until stopped.

    :param manager: the connections, their connectors and store.
    :param source: reads the host's devices (the model's full scans, re-reads).
    :param events: the device event source (see
        :class:`~tracker.waiting.model.StorageModel`: ``UDEV``, a source, or
        ``None`` to poll sysfs).
    :param settings: pacing (:class:`MonitorSettings`).
    :param clock: monotonic time and waiting (tests: a fake clock).
    :param wall: the current UTC time, for the leases (compared across processes).
    :param owner: this monitor's lease owner.
    :param engine: an engine to share instead of one of its own (tests).
    """

    def __init__(
        self,
        manager: StorageConnectionManager,
        *,
        source: DeviceSource | None = None,
        events: EventSource | object | None = None,
        settings: MonitorSettings | None = None,
        clock: Clock | None = None,
        wall: Callable[[], dt.datetime] = utcnow,
        owner: str | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.manager = manager
        self.settings = settings if settings is not None else MonitorSettings()
        self.clock = clock if clock is not None else SystemClock()
        self.wall = wall
        self.owner = owner or default_owner()
        if engine is None:
            from tracker.host.sources import SysfsTreeSource
            from tracker.waiting.model import StorageModel

            model = StorageModel(
                manager.store,
                host_name=manager.host_name,
                source=source if source is not None else SysfsTreeSource(manager.root),
                events=events,  # type: ignore[arg-type]
                clock=self.clock,
            )
            engine = model.engine
            self._own_engine = True
        else:
            self._own_engine = False
        self.engine = engine
        self.condition = engine.condition
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._stopping = False
        self._workers: dict[str, threading.Thread] = {}
        self._unmanaged: set[str] = set()
        self._poked = 0
        self._next_check: dict[str, float] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._failure: BaseException | None = None
        #: attempts made by this monitor (all connections), for tests and logs
        self.attempts = 0

    def __repr__(self) -> str:
        return f"ConnectionMonitor(host_name={self.manager.host_name!r}, owner={self.owner!r})"

    def __enter__(self) -> ConnectionMonitor:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- start and stop --

    def start(self) -> None:
        """Start the monitor thread (it brings the host's model in sync first).

        :raises tracker.exceptions.InvalidInput: it is running already, or it was
            stopped (its event source is closed: make a new monitor).
        """
        with self.condition:
            if self._thread is not None:
                raise exceptions.InvalidInput("monitor", self, "already started")
            if self._stopped:
                raise exceptions.InvalidInput(
                    "monitor", self, "it was stopped; a new monitor starts again"
                )
            self._stopping = False
            self._failure = None
            self._thread = threading.Thread(
                target=self._run, name=f"tracker-monitor-{self.manager.host_name}", daemon=True
            )
        self._unsubscribe = self.manager.subscribe(self._changed)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the monitor and its workers (an attempt in progress ends first). Idempotent.

        :raises tracker.exceptions.TrackerError: what stopped the monitor thread
            early, if something did.
        """
        with self.condition:
            self._stopping = True
            thread, self._thread = self._thread, None
            workers = list(self._workers.values())
            self.condition.notify_all()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for worker in [*workers, thread]:
            if worker is not None and worker is not threading.current_thread():
                worker.join(timeout)
        if self._own_engine:
            self.engine.close()
            with self.condition:
                self._stopped = True
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

    @property
    def running(self) -> bool:
        """:returns: whether the monitor thread runs. Never raises."""
        with self.condition:
            return self._thread is not None and self._thread.is_alive()

    def workers(self) -> tuple[str, ...]:
        """:returns: the ids being reconnected now. Never raises."""
        with self.condition:
            return tuple(sorted(i for i, w in self._workers.items() if w.is_alive()))

    def wait_idle(self, timeout: float) -> bool:
        """Wait (real time) until no worker runs.

        :returns: whether none does. Never raises.
        """
        with self.condition:
            return self.condition.wait_for(lambda: not self._workers, timeout)

    def poke(self) -> None:
        """Check every connection now (what a manage or unmanage does). :raises: nothing."""
        with self.condition:
            self._poked += 1
            self.condition.notify_all()

    def _changed(self, what: str, connection_id: str) -> None:
        with self.condition:
            if what == "unmanaged":
                self._unmanaged.add(connection_id)
            else:
                self._unmanaged.discard(connection_id)
        self.poke()

    # -- the monitor thread --

    def _phase(self, connection_id: str) -> float:
        """Where in the interval a connection is checked (the same every time)."""
        share = (zlib.crc32(connection_id.encode("utf-8")) % 1000) / 1000
        return share * self.settings.check_interval

    def _run(self) -> None:
        engine = self.engine
        run = engine.acquire()
        try:
            while not engine.wait(
                lambda: engine.ready(run) or engine.failure(run) is not None or self._stopping,
                self.settings.check_interval,
            ):
                if self._stopping:
                    return
            error = engine.failure(run)
            if error is not None:
                raise error
            started = self.clock.monotonic()
            while not self._stopping:
                with self.condition:
                    generation, poked = engine.generation, self._poked
                self._check(started)
                now = self.clock.monotonic()
                wake = min(self._next_check.values(), default=now + self.settings.check_interval)

                def woken(seen: tuple[int, int] = (generation, poked)) -> bool:
                    return (
                        self._stopping
                        or (engine.generation, self._poked) != seen
                        or engine.failure(run) is not None
                    )

                engine.wait(woken, max(0.0, wake - now))
                error = engine.failure(run)
                if error is not None:
                    raise error
        except BaseException as error:  # given back by stop()
            LOG.error("%s: the connection monitor stopped: %s", self.manager.host_name, error)
            with self.condition:
                self._failure = error
        finally:
            engine.release()

    def _check(self, started: float) -> None:
        """Look at every managed connection; start a worker for those not connected."""
        manager = self.manager
        stored = rows.list_for_host(manager.store, manager.host_name)
        host = manager.host_connections()
        now = self.clock.monotonic()
        interval = self.settings.check_interval
        ids = {s.id for s in stored}
        self._next_check = {i: t for i, t in self._next_check.items() if i in ids}
        rereads: list[str] = []
        for connection in stored:
            due = self._next_check.get(connection.id)
            if due is None:
                due = started + self._phase(connection.id)
                while due <= now:
                    due += interval
                self._next_check[connection.id] = due
            elif now >= due:
                # the safety net: read the session again from sysfs (a session gone
                # without a remove event), the mount table is read on every check
                target = target_from_dict(connection.connection_info)
                if isinstance(target, IscsiTarget):
                    rereads.extend(s.sys_path for s in host.sessions_to(target))
                while due <= now:
                    due += interval
                self._next_check[connection.id] = due
            connected = manager.is_connected(connection, host)
            if connected:
                if not connection.connected or connection.state != "connected":
                    rows.record_check(
                        manager.store, manager.host_name, connection.id, connected=True,
                        now=self.wall(),
                    )  # fmt: skip
                continue
            if connection.connected:
                LOG.warning(
                    "%s: storage connection %s lost (%s); reconnecting",
                    manager.host_name,
                    connection.id,
                    connection.uri,
                )
                rows.record_check(
                    manager.store, manager.host_name, connection.id, connected=False,
                    now=self.wall(),
                )  # fmt: skip
            self._start_worker(connection.id)
        if rereads:
            self.engine.reread(rereads)

    # -- reconnecting --

    def _start_worker(self, connection_id: str) -> None:
        with self.condition:
            if self._stopping:
                return
            worker = self._workers.get(connection_id)
            if worker is not None and worker.is_alive():
                return
            self._unmanaged.discard(connection_id)
            worker = threading.Thread(
                target=self._reconnect,
                args=(connection_id,),
                name=f"tracker-reconnect-{connection_id}",
                daemon=True,
            )
            self._workers[connection_id] = worker
        worker.start()

    def _sleep(self, connection_id: str) -> Callable[[float], None]:
        def sleep(seconds: float) -> None:
            with self.condition:
                self.clock.wait(
                    self.condition,
                    lambda: self._stopping or connection_id in self._unmanaged,
                    seconds,
                )
                if self._stopping or connection_id in self._unmanaged:
                    raise _Stopped

        return sleep

    def _reconnect(self, connection_id: str) -> None:
        settings = self.settings
        retrying = Retrying(
            stop=stop_never,
            wait=wait_exponential_jitter(
                multiplier=settings.backoff_initial,
                max=settings.backoff_max,
                jitter=settings.jitter,
            ),
            retry=retry_if_exception_type(_Failed),
            sleep=self._sleep(connection_id),
            reraise=True,
        )
        try:
            retrying(self._attempt, connection_id)
        except _Stopped:
            pass
        except exceptions.StoreError as error:  # the next check starts a new worker
            LOG.warning("%s: reconnecting %s: %s", self.manager.host_name, connection_id, error)
        finally:
            with self.condition:
                if self._workers.get(connection_id) is threading.current_thread():
                    del self._workers[connection_id]
                # check again: a failure seen while this worker was finishing
                # started no other worker
                self._poked += 1
                self.condition.notify_all()

    def _attempt(self, connection_id: str) -> None:
        """One attempt: lease, check, connect, record. Raises _Failed to retry."""
        manager, store, host_name = self.manager, self.manager.store, self.manager.host_name
        if self._stopping:
            raise _Stopped
        stored = rows.get(store, host_name, connection_id)
        if stored is None:
            raise _Stopped
        host = manager.host_connections()
        if manager.is_connected(stored, host):  # back by itself (iscsid's own recovery)
            rows.record_check(store, host_name, connection_id, connected=True, now=self.wall())
            return
        ttl = dt.timedelta(seconds=self.settings.lease_ttl)
        if not rows.take_lease(store, host_name, connection_id, self.owner, ttl, self.wall()):
            LOG.debug("%s: %s is being reconnected by another process", host_name, connection_id)
            raise _Failed
        target = target_from_dict(stored.connection_info)
        if isinstance(target, IscsiTarget) and host.sessions_to(target):
            # The model may lag behind the host (events not applied yet, another
            # process reconnected meanwhile): read the sessions again before any
            # of them is logged out as unhealthy.
            paths = [s.sys_path for s in host.sessions_to(target)]
            self.engine.reread_now(paths, self.settings.confirm_timeout)
            host = manager.host_connections()
            if manager.is_connected(stored, host):
                rows.release_lease(store, host_name, connection_id, self.owner)
                rows.record_check(store, host_name, connection_id, connected=True, now=self.wall())
                return
        connector = manager.connector(target)
        self.attempts += 1
        try:
            try:
                secret = manager.secret_of(stored)
                if isinstance(target, IscsiTarget) and host.sessions_to(target):
                    # a session is there but not healthy: iscsid gave up on it
                    connector.disconnect(target)
                created = connector.connect(target, secret)
            except exceptions.ConnectorFailed as error:
                self._failed(stored, error.code, error.message)
                raise _Failed from error
            except exceptions.SecretFileRefused as error:
                self._failed(stored, "SECRET_FILE", str(error))
                raise _Failed from error
            if not self._confirmed(stored):
                self._failed(
                    stored,
                    "NOT_VISIBLE",
                    f"{target.uri} was connected but the host does not show it "
                    f"(no session or mount after {2 * self.settings.confirm_timeout:g} s)",
                )
                raise _Failed
        finally:
            rows.release_lease(store, host_name, connection_id, self.owner)
        still = rows.record_attempt(
            store, host_name, connection_id, now=self.wall(), error=None, established=created
        )
        LOG.info("%s: storage connection %s connected", host_name, connection_id)
        if not still:  # unmanaged during the attempt: undo it unless others need it
            manager.release_target(replace(stored, established=stored.established or created))
            raise _Stopped

    def _confirmed(self, stored: rows.StoredConnection) -> bool:
        """Wait until the host's model shows a connection just made (its events
        applied); ask for a full resync if they do not come in time."""
        engine, settings = self.engine, self.settings
        for attempt in range(2):
            deadline = engine.clock.monotonic() + settings.confirm_timeout
            while True:
                with self.condition:
                    generation = engine.generation
                if self.manager.is_connected(stored, self.manager.host_connections()):
                    return True
                remaining = deadline - engine.clock.monotonic()
                if remaining <= 0 or self._stopping:
                    break

                def moved(seen: int = generation) -> bool:
                    return engine.generation != seen or self._stopping

                engine.wait(moved, remaining)
            if attempt == 0 and not self._stopping:
                LOG.info(
                    "%s: %s connected, but not seen yet: resynchronising the host's model",
                    self.manager.host_name,
                    stored.id,
                )
                engine.request_resync(f"storage connection {stored.id} made, no event seen")
        return False

    def _failed(self, stored: rows.StoredConnection, code: str, message: str) -> None:
        LOG.warning(
            "%s: storage connection %s: attempt %d failed: %s (%s)",
            self.manager.host_name,
            stored.id,
            stored.attempts + 1,
            message,
            code,
        )
        rows.record_attempt(
            self.manager.store,
            self.manager.host_name,
            stored.id,
            now=self.wall(),
            error=(code, message),
        )
