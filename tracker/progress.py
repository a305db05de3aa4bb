"""A tiny progress reporter for long operations (``tracker load``, discovery).

:class:`ProgressLine` writes one self-updating line (``\\r``-rewritten) to
standard error, and only when that stream is a terminal: piped or captured
output stays clean. It is callable as ``progress(done, total)``, the shape
:func:`tracker.serialization.load` expects for its ``progress`` argument.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

#: ANSI "erase to end of line", so a shorter update leaves no leftovers.
_ERASE = "\x1b[K"


def is_tty(stream: TextIO) -> bool:
    """:returns: whether ``stream`` is an interactive terminal (``False`` on any doubt)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class ProgressLine:
    """A self-updating progress line on a terminal, silent elsewhere.

    Use it as a context manager so the line is ended (a newline written)
    however the operation finishes::

        with ProgressLine("loading") as progress:
            tracker.load(store, text, progress=progress)

    :param label: what is in progress (``"loading"``).
    :param stream: where to write; standard error (looked up at each call,
        so redirections made later are honoured) by default.
    :param enabled: force the reporter on or off; by default it is on only
        when the stream is a TTY.
    :param interval: minimum seconds between two updates (the last update,
        ``done == total``, is always written).
    :param clock: monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        label: str,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self._stream = stream
        self._enabled = enabled
        self._interval = interval
        self._clock = clock
        self._last: float | None = None
        self._written = False

    @property
    def stream(self) -> TextIO:
        """:returns: the stream updates go to."""
        return self._stream if self._stream is not None else sys.stderr

    @property
    def enabled(self) -> bool:
        """:returns: whether updates are written at all."""
        return self._enabled if self._enabled is not None else is_tty(self.stream)

    @property
    def written(self) -> bool:
        """:returns: whether anything has been written so far."""
        return self._written

    def __call__(self, done: int, total: int | None = None) -> None:
        """Report that ``done`` of ``total`` units are finished.

        :param done: units finished so far.
        :param total: units in all; ``None`` or ``0`` when unknown.
        :returns: nothing.
        """
        self.update(done, total)

    def update(self, done: int, total: int | None = None) -> None:
        """Rewrite the line, at most every ``interval`` seconds.

        :param done: units finished so far.
        :param total: units in all; ``None`` or ``0`` when unknown.
        :returns: nothing.
        """
        if not self.enabled:
            return
        now = self._clock()
        final = bool(total) and done >= (total or 0)
        if not final and self._last is not None and now - self._last < self._interval:
            return
        self._last = now
        self.stream.write(f"\r{self.format(done, total)}{_ERASE}")
        self.stream.flush()
        self._written = True

    def format(self, done: int, total: int | None = None) -> str:
        """:returns: the text of the line for ``done`` of ``total``."""
        if total:
            percent = min(100, done * 100 // total)
            return f"{self.label}: {done}/{total} ({percent}%)"
        return f"{self.label}: {done}"

    def finish(self) -> None:
        """End the line (write a newline) if anything was written.

        :returns: nothing.
        """
        if self._written:
            self.stream.write("\n")
            self.stream.flush()
            self._written = False
            self._last = None

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish()
