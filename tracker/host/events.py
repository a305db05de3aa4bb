"""Device events: what the kernel and udev say changed, as frozen records.

A :class:`DeviceEvent` is taken at the host boundary, like a
:class:`~tracker.host.records.DeviceRecord`: pyudev's ``Device`` and
``Monitor`` never leave :mod:`tracker.host`. Its text is decoded by the same
one function as records (:func:`tracker.host.sources.escape_host_text`) and
bounded (:data:`MAX_PROPERTIES`, :data:`MAX_VALUE_CHARS`).

An :class:`EventSource` delivers events one at a time:

* :meth:`~EventSource.poll` waits at most ``timeout`` seconds and returns the
  next event or ``None``;
* :meth:`~EventSource.fileno` is a descriptor that is readable when an event
  may be waiting, so a caller can ``select`` on several sources at once;
* ``start()``/``stop()`` are idempotent, and the source is a context manager;
* when events were lost (the kernel's netlink buffer overflowed: ``ENOBUFS``),
  the next :meth:`~EventSource.poll` raises
  :class:`~tracker.exceptions.EventsLost`: the caller must resynchronise with a
  full scan. The source stays usable afterwards.

Two implementations: :class:`PyudevEventSource` (a udev netlink monitor
filtered on :data:`EVENT_SUBSYSTEMS`; under umockdev's preload it receives a
testbed's events) and :class:`InMemoryEventSource` (events pushed by a test).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

from tracker.clock import Clock, SystemClock
from tracker.exceptions import EventsLost, EventSourceError
from tracker.host.records import FrozenMap
from tracker.host.sources import escape_host_text

if TYPE_CHECKING:
    import pyudev

__all__ = [
    "EVENT_SUBSYSTEMS",
    "MAX_PROPERTIES",
    "MAX_VALUE_CHARS",
    "DeviceAction",
    "DeviceEvent",
    "EventSource",
    "InMemoryEventSource",
    "PyudevEventSource",
    "decode_event",
]

logger = logging.getLogger(__name__)

#: The subsystems whose events matter for storage, in the order the monitor
#: filter is built.
EVENT_SUBSYSTEMS: tuple[str, ...] = (
    "scsi",
    "block",
    "fc_host",
    "fc_remote_ports",
    "fc_transport",
    "iscsi_session",
    "iscsi_connection",
    "scsi_host",
)

#: The most properties an event keeps (a uevent has a few dozen); the rest
#: are dropped and named in the event's ``problems``.
MAX_PROPERTIES = 256
#: The longest property name or value kept, in characters (a longer one is
#: dropped and named in ``problems``).
MAX_VALUE_CHARS = 4096

# Properties that become fields of the event rather than entries of its map.
_FIELDS = frozenset({"ACTION", "DEVPATH", "SUBSYSTEM", "DEVTYPE", "SEQNUM"})
_DEVICES_PREFIX = "/devices/"


class DeviceAction(StrEnum):
    """What happened to a device (the kernel's ``ACTION``)."""

    ADD = "add"
    REMOVE = "remove"
    CHANGE = "change"
    BIND = "bind"
    UNBIND = "unbind"
    ONLINE = "online"
    OFFLINE = "offline"
    MOVE = "move"


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """One device event as seen at the host boundary.

    :ivar action: what happened.
    :ivar sys_path: the device path relative to the sysfs root
        (``/devices/...``), as in :attr:`DeviceRecord.sys_path
        <tracker.host.records.DeviceRecord.sys_path>`.
    :ivar subsystem: e.g. ``"scsi"``, ``"block"``.
    :ivar devtype: e.g. ``"scsi_device"``, ``"disk"``, or ``None``.
    :ivar seqnum: the kernel's sequence number (``SEQNUM``), ``None`` when the
        event has none; gaps mean lost events.
    :ivar properties: the other properties (``DEVNAME``, ``DEVLINKS``,
        ``ID_SERIAL`` ...), valid UTF-8 and bounded; ``ACTION``, ``DEVPATH``,
        ``SUBSYSTEM``, ``DEVTYPE`` and ``SEQNUM`` are the fields above instead.
    :ivar problems: what was escaped or left out, mapped to why (as in
        :attr:`DeviceRecord.problems <tracker.host.records.DeviceRecord.problems>`).
    """

    action: DeviceAction
    sys_path: str
    subsystem: str
    devtype: str | None = None
    seqnum: int | None = None
    properties: FrozenMap = field(default_factory=FrozenMap)
    problems: FrozenMap = field(default_factory=FrozenMap)

    @property
    def sys_name(self) -> str:
        """:returns: the last component of :attr:`sys_path`. Never raises."""
        return self.sys_path.rsplit("/", 1)[-1]


def _text(raw: str | bytes) -> tuple[str, bool]:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "surrogateescape")
    return escape_host_text(raw)


def decode_event(properties: Mapping[str, str] | Mapping[bytes, bytes]) -> DeviceEvent | None:
    """Build an event from the raw properties of a uevent.

    Names and values are decoded like every host text (bytes that are not
    UTF-8 become backslash escapes), and bounded: at most
    :data:`MAX_PROPERTIES` properties of at most :data:`MAX_VALUE_CHARS`
    characters are kept; what was escaped or dropped is in ``problems``.

    :param properties: ``KEY=VALUE`` pairs, ``str`` or ``bytes``; ``ACTION``,
        ``DEVPATH`` and ``SUBSYSTEM`` are required.
    :returns: the event, or ``None`` (logged at debug level) when a required
        property is missing, the action is unknown, or the path is not below
        ``/devices/``.
    :raises: nothing.
    """
    decoded: dict[str, str] = {}
    problems: dict[str, str] = {}
    for raw_key, raw_value in properties.items():
        key, bad_key = _text(raw_key)
        value, bad_value = _text(raw_value)
        if len(key) > MAX_VALUE_CHARS:
            problems.setdefault("property names", f"longer than {MAX_VALUE_CHARS} characters")
            continue
        if len(value) > MAX_VALUE_CHARS:
            problems[f"property {key}"] = f"longer than {MAX_VALUE_CHARS} characters"
            continue
        if bad_key or bad_value:
            problems[f"property {key}"] = "bytes that are not UTF-8 were escaped"
        decoded[key] = value
    action_text = decoded.get("ACTION")
    sys_path = decoded.get("DEVPATH")
    subsystem = decoded.get("SUBSYSTEM")
    try:
        action = DeviceAction(action_text or "")
    except ValueError:
        logger.debug("ignoring an event with action %r", action_text)
        return None
    if sys_path is None or subsystem is None:
        logger.debug("ignoring a %s event without DEVPATH or SUBSYSTEM", action)
        return None
    sys_path = os.path.normpath(sys_path)
    if not sys_path.startswith(_DEVICES_PREFIX):
        logger.debug("ignoring an event for %r, not below /devices", sys_path)
        return None
    seqnum_text = decoded.get("SEQNUM")
    seqnum = None
    if seqnum_text is not None:
        if seqnum_text.isascii() and seqnum_text.isdigit() and len(seqnum_text) <= 20:
            seqnum = int(seqnum_text)
        else:
            problems["property SEQNUM"] = "not a sequence number"
    rest = sorted((key, value) for key, value in decoded.items() if key not in _FIELDS)
    if len(rest) > MAX_PROPERTIES:
        problems["properties"] = f"more than {MAX_PROPERTIES}: the rest were left out"
        rest = rest[:MAX_PROPERTIES]
    return DeviceEvent(
        action=action,
        sys_path=sys_path,
        subsystem=subsystem,
        devtype=decoded.get("DEVTYPE") or None,
        seqnum=seqnum,
        properties=FrozenMap(rest),
        problems=FrozenMap(problems),
    )


@runtime_checkable
class EventSource(Protocol):
    """Where device events come from (see the module documentation)."""

    def start(self) -> None:
        """Subscribe; events from now on are delivered. Does nothing when started.

        :raises tracker.exceptions.EventSourceError: when the source cannot
            subscribe.
        """
        ...

    def stop(self) -> None:
        """Unsubscribe and release the descriptor. Does nothing when stopped.

        :raises: nothing.
        """
        ...

    def poll(self, timeout: float | None) -> DeviceEvent | None:
        """Wait for the next event.

        :param timeout: at most this many seconds (``0``: do not wait;
            ``None``: wait as long as it takes).
        :returns: the event, or ``None`` when none came in time.
        :raises tracker.exceptions.EventsLost: when events were dropped since
            the last poll; resynchronise, then poll again.
        :raises tracker.exceptions.EventSourceError: when the source is not
            started or cannot be read.
        """
        ...

    def fileno(self) -> int:
        """:returns: a descriptor that is readable when an event may be waiting.
        :raises tracker.exceptions.EventSourceError: when the source is not started.
        """
        ...

    def __enter__(self) -> Self:
        """Start the source (sources that subclass the protocol inherit this).

        :returns: it.
        :raises tracker.exceptions.EventSourceError: when it cannot start.
        """
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the source. :raises: nothing."""
        self.stop()


def _errno_text(error: OSError) -> str:
    name = errno.errorcode.get(error.errno or 0, "error")
    return f"{name} ({error.strerror or 'no detail'})"


class PyudevEventSource(EventSource):
    """Events from udev's netlink monitor, through pyudev.

    The monitor is filtered (in the kernel) on :data:`EVENT_SUBSYSTEMS` and
    non-blocking. libudev always listens on the real netlink socket, or, in a
    process started under umockdev's preload, on the testbed's (see
    :mod:`tracker.testing.umockdev`): like :class:`~tracker.host.sources.PyudevSource`
    it has no sysfs root parameter.

    :param context_factory: makes the pyudev context at :meth:`start`
        (``pyudev.Context`` when ``None``).
    :param source: ``"udev"`` (events after udev processed them: with
        ``DEVLINKS`` and udev's ``ID_*`` properties) or ``"kernel"``.
    :param subsystems: the subsystems to receive.
    :param receive_buffer_size: the socket's receive buffer in bytes, or
        ``None`` for the system default. A bigger buffer survives bigger bursts
        before the kernel drops events (``ENOBUFS``). Without
        ``CAP_NET_ADMIN`` the buffer is set with ``SO_RCVBUF`` instead, which
        the kernel caps at ``net.core.rmem_max``.
    :param clock: the clock :meth:`poll` times out by.
    """

    def __init__(
        self,
        context_factory: Callable[[], pyudev.Context] | None = None,
        *,
        source: str = "udev",
        subsystems: Iterable[str] = EVENT_SUBSYSTEMS,
        receive_buffer_size: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._context_factory = context_factory
        self._source = source
        self._subsystems = tuple(subsystems)
        self._buffer_size = receive_buffer_size
        self._clock = clock if clock is not None else SystemClock()
        self._monitor: pyudev.Monitor | None = None
        self._name = f"udev netlink ({source})"

    def __repr__(self) -> str:
        return f"PyudevEventSource(source={self._source!r}, started={self.started})"

    @property
    def started(self) -> bool:
        """:returns: whether the monitor is listening. Never raises."""
        return self._monitor is not None

    def start(self) -> None:
        """Open, filter and start the netlink monitor (nothing when started).

        :raises tracker.exceptions.EventSourceError: pyudev is missing, or the
            socket cannot be opened or its buffer set.
        """
        if self._monitor is not None:
            return
        try:
            import pyudev
        except ImportError as error:
            raise EventSourceError(self._name, "pyudev is not installed") from error
        try:
            context = (self._context_factory or pyudev.Context)()
            monitor = pyudev.Monitor.from_netlink(context, source=self._source)
            for subsystem in self._subsystems:
                monitor.filter_by(subsystem)
            if self._buffer_size is not None:
                self._set_buffer(monitor, self._buffer_size)
            monitor.start()
        except OSError as error:
            raise EventSourceError(self._name, f"cannot listen: {_errno_text(error)}") from error
        except ValueError as error:  # an unknown source name
            raise EventSourceError(self._name, "cannot listen: unknown monitor source") from error
        self._monitor = monitor

    @staticmethod
    def _set_buffer(monitor: pyudev.Monitor, size: int) -> None:
        try:
            monitor.set_receive_buffer_size(size)  # SO_RCVBUFFORCE: needs CAP_NET_ADMIN
            return
        except OSError as error:
            if error.errno != errno.EPERM:
                raise
        with socket.socket(fileno=os.dup(monitor.fileno())) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    def stop(self) -> None:
        """Close the monitor (nothing when stopped). :raises: nothing."""
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            # pyudev has no close(): dropping the last reference unrefs the
            # libudev monitor, which closes the socket.
            del monitor

    def _require(self) -> pyudev.Monitor:
        if self._monitor is None:
            raise EventSourceError(self._name, "not started")
        return self._monitor

    def fileno(self) -> int:
        """:returns: the monitor's socket.
        :raises tracker.exceptions.EventSourceError: when not started."""
        return int(self._require().fileno())

    def poll(self, timeout: float | None) -> DeviceEvent | None:
        """Receive the next event of the filtered subsystems.

        Events that cannot be decoded (see :func:`decode_event`) are skipped
        within the same timeout.

        :returns: the event, or ``None`` after ``timeout`` seconds.
        :raises tracker.exceptions.EventsLost: the kernel dropped events
            (``ENOBUFS``).
        :raises tracker.exceptions.EventSourceError: not started, or the socket
            failed.
        """
        monitor = self._require()
        deadline = None if timeout is None else self._clock.monotonic() + max(0.0, timeout)
        while True:
            remaining = None if deadline is None else max(0.0, deadline - self._clock.monotonic())
            try:
                device = monitor.poll(remaining)
            except OSError as error:
                if error.errno == errno.ENOBUFS:
                    reason = "ENOBUFS: the receive buffer overflowed"
                    raise EventsLost(self._name, reason) from error
                raise EventSourceError(
                    self._name, f"cannot receive: {_errno_text(error)}"
                ) from error
            if device is None:
                return None
            event = _event_of(device)
            if event is not None:
                return event
            if remaining is not None and remaining <= 0:
                return None


def _event_of(device: pyudev.Device) -> DeviceEvent | None:
    from tracker.host.sources import _raw_properties

    properties = _raw_properties(device)
    if "ACTION" not in properties and device.action is not None:
        properties["ACTION"] = str(device.action)
    if "SEQNUM" not in properties and device.sequence_number:
        properties["SEQNUM"] = str(device.sequence_number)
    return decode_event(properties)


class InMemoryEventSource(EventSource):
    """Events a test pushes, with a real descriptor so ``select`` works.

    Events pushed before :meth:`start` are kept (they are delivered after it).
    Thread-safe: one thread may push while another polls.
    """

    _NAME = "in-memory"

    def __init__(self, events: Iterable[DeviceEvent] = ()) -> None:
        self._queue: deque[DeviceEvent] = deque(events)
        self._lost: str | None = None
        self._lock = threading.Lock()
        self._pipe: tuple[int, int] | None = None
        self._signalled = False

    def __repr__(self) -> str:
        return f"InMemoryEventSource(queued={len(self._queue)}, started={self.started})"

    @property
    def started(self) -> bool:
        """:returns: whether the source is started. Never raises."""
        return self._pipe is not None

    def start(self) -> None:
        """Open the descriptor (nothing when started). :raises: nothing."""
        with self._lock:
            if self._pipe is None:
                read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
                self._pipe = (read_end, write_end)
                self._signalled = False
                self._update()

    def stop(self) -> None:
        """Close the descriptor; queued events stay queued. :raises: nothing."""
        with self._lock:
            pipe, self._pipe = self._pipe, None
            if pipe is not None:
                os.close(pipe[0])
                os.close(pipe[1])

    def _update(self) -> None:
        """Keep the pipe readable exactly when something is waiting (lock held)."""
        if self._pipe is None:
            return
        pending = bool(self._queue) or self._lost is not None
        if pending and not self._signalled:
            os.write(self._pipe[1], b"!")
            self._signalled = True
        elif not pending and self._signalled:
            with contextlib.suppress(BlockingIOError):  # the byte is always there
                os.read(self._pipe[0], 1)
            self._signalled = False

    def push(self, *events: DeviceEvent) -> None:
        """Queue events, in order. :raises: nothing."""
        with self._lock:
            self._queue.extend(events)
            self._update()

    def inject_overflow(self, drop: int = 0) -> None:
        """Simulate a receive-buffer overflow: the next :meth:`poll` raises
        :class:`~tracker.exceptions.EventsLost`.

        :param drop: how many of the queued events were lost (dropped from
            the front of the queue, as the kernel drops what did not fit).
        :raises: nothing.
        """
        with self._lock:
            for _ in range(min(drop, len(self._queue))):
                self._queue.popleft()
            self._lost = "ENOBUFS: the receive buffer overflowed (simulated)"
            self._update()

    def fileno(self) -> int:
        """:returns: the read end of a pipe, readable while events are queued.
        :raises tracker.exceptions.EventSourceError: when not started."""
        pipe = self._pipe
        if pipe is None:
            raise EventSourceError(self._NAME, "not started")
        return pipe[0]

    def poll(self, timeout: float | None) -> DeviceEvent | None:
        """Take the next queued event, waiting (for a pusher thread) up to ``timeout``.

        :returns: the event, or ``None`` when the queue stayed empty.
        :raises tracker.exceptions.EventsLost: after :meth:`inject_overflow`
            (once).
        :raises tracker.exceptions.EventSourceError: when not started.
        """
        read_end = self.fileno()
        if not self._take_ready():
            try:
                select.select([read_end], [], [], timeout)
            except (OSError, ValueError) as error:  # stopped by another thread meanwhile
                raise EventSourceError(self._NAME, "stopped while polling") from error
        return self._take()

    def _take_ready(self) -> bool:
        with self._lock:
            return bool(self._queue) or self._lost is not None

    def _take(self) -> DeviceEvent | None:
        with self._lock:
            if self._pipe is None:
                raise EventSourceError(self._NAME, "not started")
            if self._lost is not None:
                reason, self._lost = self._lost, None
                self._update()
                raise EventsLost(self._NAME, reason)
            event = self._queue.popleft() if self._queue else None
            self._update()
            return event
