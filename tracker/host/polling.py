"""Device events without netlink: made up by listing sysfs on a timer.

In a container (or any host where udev's netlink monitor cannot be opened)
nothing announces devices. :class:`PollingEventSource` stands in for the
monitor: every ``interval`` seconds it lists the directories a scan lists
(``sys/bus/<subsystem>/devices`` and ``sys/class/<subsystem>`` of every
storage subsystem, :data:`tracker.host.wanted.SUBSYSTEMS`) and turns the
difference with the previous listing into ``remove`` and ``add``
:class:`~tracker.host.events.DeviceEvent` values, children removed before
their parents and parents added before their children, as the kernel
announces them. Consumers apply them like real events: re-reading each
device (:meth:`DeviceSource.lookup <tracker.host.sources.DeviceSource.lookup>`).

A listing reads directory entries only; a link is resolved once, when its
entry (name and inode) is first seen, so an unchanged host costs a few dozen
``getdents`` calls per interval, whatever its size. What a listing cannot
see -- an attribute changing in place (a device going offline, a remote port
blocked, a path joining an existing multipath map) -- is the business of a
targeted re-read by the consumer
(:meth:`tracker.reconcile.incremental.LiveModel.reread`).

Events carry no sequence number and no properties.
"""

from __future__ import annotations

import os
from collections import deque
from pathlib import Path

from tracker.clock import Clock, SystemClock
from tracker.exceptions import EventSourceError, InvalidInput
from tracker.host.events import DeviceAction, DeviceEvent, EventSource
from tracker.host.sources import PRODUCTION_ROOT, listing_dirs, resolve_listed
from tracker.host.wanted import SUBSYSTEMS

__all__ = ["DEFAULT_INTERVAL", "PollingEventSource"]

#: Seconds between two listings by default (infi.storagemodel polls once a second).
DEFAULT_INTERVAL = 1.0

#: (listing directory, entry name, entry inode): what a resolved link is cached by.
_EntryKey = tuple[str, str, int]


class PollingEventSource(EventSource):
    """An :class:`~tracker.host.events.EventSource` that lists ``<root>/sys`` every
    ``interval`` seconds and reports what appeared and what went.

    :param root: the directory holding ``sys/`` (``/`` on a live host).
    :param interval: seconds between listings.
    :param clock: what :meth:`poll` sleeps and times out by.
    :raises tracker.exceptions.InvalidInput: ``interval`` is not a positive number.
    """

    _NAME = "sysfs polling"

    def __init__(
        self,
        root: Path = PRODUCTION_ROOT,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Clock | None = None,
    ) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
            raise InvalidInput("interval", interval, "a positive number of seconds")
        self.root = Path(root)
        self.interval = float(interval)
        self._sys = os.fspath(self.root / "sys")
        self._clock = clock if clock is not None else SystemClock()
        self._resolved: dict[_EntryKey, str | None] = {}
        self._known: dict[str, str] = {}
        self._queue: deque[DeviceEvent] = deque()
        self._next = 0.0
        self._pipe: tuple[int, int] | None = None
        #: how many listings were taken (the first, at :meth:`start`, included)
        self.listings = 0

    def __repr__(self) -> str:
        return f"PollingEventSource({self.root!r}, interval={self.interval:g})"

    @property
    def started(self) -> bool:
        """:returns: whether the source is started. Never raises."""
        return self._pipe is not None

    def start(self) -> None:
        """Take the first listing (what is there now is not an event). Nothing when started.

        :raises tracker.exceptions.EventSourceError: ``<root>/sys`` is not a directory.
        """
        if self._pipe is not None:
            return
        if not os.path.isdir(self._sys):
            raise EventSourceError(self._NAME, f"{self._sys} is not a directory")
        self._known = self._list()
        self._next = self._clock.monotonic() + self.interval
        self._pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def stop(self) -> None:
        """Forget the listing and close the descriptor. :raises: nothing."""
        pipe, self._pipe = self._pipe, None
        if pipe is not None:
            os.close(pipe[0])
            os.close(pipe[1])
        self._queue.clear()
        self._resolved.clear()

    def fileno(self) -> int:
        """:returns: a descriptor that never becomes readable: this source is
            polled on a timer, not woken.
        :raises tracker.exceptions.EventSourceError: when not started."""
        if self._pipe is None:
            raise EventSourceError(self._NAME, "not started")
        return self._pipe[0]

    def poll(self, timeout: float | None) -> DeviceEvent | None:
        """Return the next made-up event, listing sysfs again when the interval is over.

        :param timeout: the longest to wait (``None``: until something changes).
        :returns: the event, or ``None`` when nothing changed in time.
        :raises tracker.exceptions.EventSourceError: when not started.
        """
        if self._pipe is None:
            raise EventSourceError(self._NAME, "not started")
        deadline = None if timeout is None else self._clock.monotonic() + max(0.0, timeout)
        while not self._queue:
            now = self._clock.monotonic()
            if now >= self._next:
                self._relist()
                self._next = now + self.interval
                continue
            if deadline is not None and now >= deadline:
                return None
            wake = self._next if deadline is None else min(self._next, deadline)
            self._clock.sleep(wake - now)
        return self._queue.popleft()

    def _list(self) -> dict[str, str]:
        """:returns: device path -> subsystem, for every listed device."""
        found: dict[str, str] = {}
        seen: dict[_EntryKey, str | None] = {}
        for subsystem in SUBSYSTEMS:
            for base in listing_dirs(subsystem):
                try:
                    entries = list(os.scandir(f"{self._sys}{base}"))
                except OSError:
                    continue
                for entry in entries:
                    key = (base, entry.name, entry.inode())
                    if key in self._resolved:
                        path = self._resolved[key]
                    else:
                        path = resolve_listed(base, entry)
                    seen[key] = path
                    if path is not None:
                        found.setdefault(path, subsystem)
        self._resolved = seen
        self.listings += 1
        return found

    def _relist(self) -> None:
        now = self._list()
        before = self._known
        gone = sorted((p for p in before if p not in now), reverse=True)
        came = sorted(p for p in now if p not in before)
        for path in gone:
            self._queue.append(DeviceEvent(DeviceAction.REMOVE, path, before[path]))
        for path in came:
            self._queue.append(DeviceEvent(DeviceAction.ADD, path, now[path]))
        self._known = now
