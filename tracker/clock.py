"""The injected clock: monotonic time and sleeping, in one replaceable place.

Code that waits or times out (event sources, the rescanner, the event loop of
``tracker watch``) takes a :class:`Clock` rather than calling :mod:`time`, so
tests drive time with :class:`tracker.testing.fakes.FakeClock` instead of
sleeping. The clock lives at the top of the package, not in
:mod:`tracker.host`, because the layers above the host (incremental
reconcile's batching window, the resync interval of ``watch``) wait too.
"""

from __future__ import annotations

import time
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

    def __repr__(self) -> str:
        return "SystemClock()"
