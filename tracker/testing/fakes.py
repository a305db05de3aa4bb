"""Stand-ins for the host's time and commands in unit tests.

* :class:`FakeClock` - a :class:`tracker.clock.Clock` that only moves when
  slept on, waited on or advanced: tests of timeouts take no real time.
* :class:`RecordingExecutor` - a :class:`tracker.host.executor.CommandExecutor`
  that records each command line and answers from a table, running nothing.

The in-memory event source lives with the real one, in
:class:`tracker.host.events.InMemoryEventSource`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tracker.exceptions import CommandNotFound
from tracker.host.executor import CommandResult

__all__ = ["FakeClock", "RecordingExecutor"]


class FakeClock:
    """A clock that advances only when :meth:`sleep`, :meth:`wait` or :meth:`advance` is called.

    :param start: the first value :meth:`monotonic` returns.
    :param real_wait: the real seconds :meth:`wait` gives other threads to make
        its predicate true before it moves fake time on by the whole timeout.
    :ivar sleeps: every duration :meth:`sleep` was asked for, in order.
    :ivar waits: every timeout :meth:`wait` was asked for, in order.
    """

    def __init__(self, start: float = 1000.0, *, real_wait: float = 0.01) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.real_wait = real_wait
        self.sleeps: list[float] = []
        self.waits: list[float] = []

    def monotonic(self) -> float:
        """:returns: the current fake time. Never raises."""
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        """Record the sleep and move time forward by it (not backwards).

        :raises: nothing.
        """
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(0.0, seconds)

    def wait(
        self, condition: threading.Condition, predicate: Callable[[], bool], timeout: float
    ) -> bool:
        """Wait a little real time (:attr:`real_wait`) for ``predicate``; if it is
        still false, move fake time on by ``timeout`` (as if the whole wait passed).

        :returns: the last value of ``predicate()``.
        :raises: what ``predicate`` raises.
        """
        with self._lock:
            self.waits.append(timeout)
        if timeout == float("inf"):  # nothing to move on to: wait for real
            return condition.wait_for(predicate)
        if condition.wait_for(predicate, min(max(0.0, timeout), self.real_wait)):
            return True
        with self._lock:
            self._now += max(0.0, timeout)
        return bool(predicate())

    def advance(self, seconds: float) -> None:
        """Move time forward without recording a sleep.

        :raises ValueError: when ``seconds`` is negative (monotonic time never goes back).
        """
        if seconds < 0:
            raise ValueError("a monotonic clock never goes back")
        with self._lock:
            self._now += seconds

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now})"


Responder = Callable[[tuple[str, ...]], CommandResult]


class RecordingExecutor:
    """Records every command it is asked to run and runs none.

    :param responses: the result for a command line (as a tuple); a callable
        is called with the argv and returns the result. A command line not in
        the table succeeds with empty output.
    :param missing: program names that are "not installed":
        :class:`~tracker.exceptions.CommandNotFound` is raised for them.
    :ivar calls: each argv run, in order.
    """

    def __init__(
        self,
        responses: Mapping[tuple[str, ...], CommandResult | Responder] | None = None,
        missing: Sequence[str] = (),
    ) -> None:
        self._responses = dict(responses or {})
        self._missing = frozenset(missing)
        self.calls: list[tuple[str, ...]] = []

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Record ``argv`` and answer it from the table.

        :returns: the scripted result, else exit status 0 with no output.
        :raises tracker.exceptions.CommandNotFound: for a "missing" program.
        """
        args = tuple(argv)
        self.calls.append(args)
        if args and args[0] in self._missing:
            raise CommandNotFound(command=args[0], package=args[0])
        response = self._responses.get(args)
        if response is None:
            return CommandResult(argv=args, returncode=0, stdout="", stderr="")
        if isinstance(response, CommandResult):
            return response
        return response(args)
