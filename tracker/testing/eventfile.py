"""A testing aid: device events read from a JSON-lines file that a test appends to.

``tracker watch --events-file PATH`` uses :class:`JsonLinesEventSource`
instead of udev's netlink monitor, so that a test can drive a real
``tracker watch`` process on a testbed (``--root``) without netlink or
umockdev: it appends one JSON object per event (the uevent's properties,
``ACTION``, ``DEVPATH``, ``SUBSYSTEM``, ``SEQNUM`` ...; see
:func:`event_line`) and the process applies them. The file is read like
``tail -f``: from its start, then whatever is appended; a line is taken only
once its newline is written. Lines that are not events are skipped.

Not for production: nothing here listens to the kernel.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from tracker.clock import Clock, SystemClock
from tracker.exceptions import EventSourceError
from tracker.host.events import DeviceEvent, EventSource, decode_event

if TYPE_CHECKING:
    from tracker.testing.uevents import Uevent

__all__ = ["JsonLinesEventSource", "append_events", "event_line"]

#: How often an idle :meth:`JsonLinesEventSource.poll` looks at the file again.
POLL_INTERVAL = 0.01


def event_line(event: Uevent) -> str:
    """:returns: one event as a JSON line (with its newline). Never raises."""
    return json.dumps(dict(event.properties), sort_keys=True) + "\n"


def append_events(path: Path, events: Iterable[Uevent]) -> None:
    """Append events to the file a :class:`JsonLinesEventSource` reads, in one write.

    :raises OSError: the file cannot be written.
    """
    with open(path, "a", encoding="utf-8") as out:
        out.write("".join(event_line(event) for event in events))


class JsonLinesEventSource(EventSource):
    """An :class:`~tracker.host.events.EventSource` tailing a JSON-lines file.

    :param path: the file (created empty at :meth:`start` when missing).
    :param clock: what an idle :meth:`poll` sleeps and times out by.
    """

    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self._clock = clock if clock is not None else SystemClock()
        self._fd: int | None = None
        self._buffer = b""

    def __repr__(self) -> str:
        return f"JsonLinesEventSource({str(self.path)!r})"

    def start(self) -> None:
        """Open the file (nothing when open).

        :raises tracker.exceptions.EventSourceError: it cannot be opened.
        """
        if self._fd is not None:
            return
        try:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as error:
            raise EventSourceError(str(self.path), f"cannot open: {error.strerror}") from error

    def stop(self) -> None:
        """Close the file (nothing when closed). :raises: nothing."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def fileno(self) -> int:
        """:returns: the file's descriptor (a regular file is always "readable").
        :raises tracker.exceptions.EventSourceError: when not started."""
        if self._fd is None:
            raise EventSourceError(str(self.path), "not started")
        return self._fd

    def _next_line(self) -> bytes | None:
        fd = self.fileno()
        while b"\n" not in self._buffer:
            try:
                chunk = os.read(fd, 65536)
            except OSError as error:
                raise EventSourceError(str(self.path), f"cannot read: {error.strerror}") from error
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def poll(self, timeout: float | None) -> DeviceEvent | None:
        """Take the next complete event line, waiting up to ``timeout`` for one.

        :returns: the event, or ``None`` when none was appended in time.
        :raises tracker.exceptions.EventSourceError: not started, or unreadable.
        """
        deadline = None if timeout is None else self._clock.monotonic() + max(0.0, timeout)
        while True:
            line = self._next_line()
            while line is not None:
                event = _decode(line)
                if event is not None:
                    return event
                line = self._next_line()
            if deadline is not None and self._clock.monotonic() >= deadline:
                return None
            left = POLL_INTERVAL if deadline is None else deadline - self._clock.monotonic()
            self._clock.sleep(min(POLL_INTERVAL, max(0.0, left)))


def _decode(line: bytes) -> DeviceEvent | None:
    try:
        properties = json.loads(line)
    except ValueError:
        return None
    if not isinstance(properties, dict):
        return None
    return decode_event({str(key): str(value) for key, value in properties.items()})
