"""The injected clock: monotonic time and sleeping, in one replaceable place.

Code that waits or times out (event sources, the rescanner, the event loop of
``tracker watch``, ``rescan_and_wait_for``) takes a :class:`Clock` rather than
calling :mod:`time` or waiting on a condition with a real timeout, so
tests drive time with :class:`tracker.testing.fakes.FakeClock` instead of
sleeping. The clock lives at the top of the package, not in
:mod:`tracker.host`, because the layers above the host (incremental
reconcile's batching window, the resync interval of ``watch``) wait too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Monotonic time and sleeping."""

    def monotonic(self) -> float:
        """Read the clock.

        :returns: seconds since an arbitrary, fixed origin; never goes back.
        :raises: nothing.
        """
        ...

    def sleep(self, seconds: float) -> None:
        """Wait.

        :param seconds: how long; ``0`` or less returns at once.
        :raises: nothing.
        """
        ...

    def wait(
        self, condition: threading.Condition, predicate: Callable[[], bool], timeout: float
    ) -> bool:
        """Wait on ``condition`` (held by the caller) until ``predicate()`` is true.

        :param timeout: at most this many seconds of this clock.
        :returns: the last value of ``predicate()``.
        :raises: what ``predicate`` raises.
        """
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic` and :func:`time.sleep`."""

    def monotonic(self) -> float:
        """:returns: :func:`time.monotonic`. Never raises."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Sleep for ``seconds`` (nothing when it is ``0`` or less).

        :raises: nothing.
        """
        if seconds > 0:
            time.sleep(seconds)

    def wait(
        self, condition: threading.Condition, predicate: Callable[[], bool], timeout: float
    ) -> bool:
        """:meth:`threading.Condition.wait_for` (``condition`` held by the caller).

        :returns: the last value of ``predicate()``.
        :raises: what ``predicate`` raises.
        """
        if timeout == float("inf"):
            return condition.wait_for(predicate)
        return condition.wait_for(predicate, max(0.0, timeout))

    def __repr__(self) -> str:
        return "SystemClock()"
