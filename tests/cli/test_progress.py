"""tracker.progress: a self-updating line on terminals only."""

from __future__ import annotations

import io

from tracker.progress import ProgressLine, is_tty


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_silent_when_not_a_terminal() -> None:
    stream = io.StringIO()
    with ProgressLine("loading", stream=stream) as progress:
        for done in range(1, 11):
            progress(done, 10)
    assert stream.getvalue() == ""
    assert not progress.enabled


def test_updates_one_line_on_a_terminal() -> None:
    stream = Terminal()
    clock = Clock()
    with ProgressLine("loading", stream=stream, clock=clock) as progress:
        progress(1, 4)
        clock.now += 1
        progress(2, 4)
        clock.now += 1
        progress(4, 4)
    text = stream.getvalue()
    assert text.count("\n") == 1
    assert text.endswith("\n")
    assert text.split("\r")[1:] == [
        "loading: 1/4 (25%)\x1b[K",
        "loading: 2/4 (50%)\x1b[K",
        "loading: 4/4 (100%)\x1b[K\n",
    ]


def test_throttled_but_the_last_update_always_shows() -> None:
    stream = Terminal()
    clock = Clock()
    progress = ProgressLine("x", stream=stream, clock=clock, interval=10)
    for done in range(1, 101):
        progress(done, 100)
    assert stream.getvalue().count("\r") == 2  # the first and the final update
    assert "x: 100/100 (100%)" in stream.getvalue()
    progress.finish()
    progress.finish()
    assert stream.getvalue().count("\n") == 1


def test_unknown_total_and_forced_states() -> None:
    stream = io.StringIO()
    progress = ProgressLine("scanning", stream=stream, enabled=True)
    progress(7)
    assert stream.getvalue() == "\rscanning: 7\x1b[K"
    off = Terminal()
    ProgressLine("x", stream=off, enabled=False)(1, 1)
    assert off.getvalue() == ""


def test_nothing_written_means_no_newline() -> None:
    stream = Terminal()
    with ProgressLine("x", stream=stream):
        pass
    assert stream.getvalue() == ""


def test_is_tty_on_odd_streams() -> None:
    closed = io.StringIO()
    closed.close()
    assert is_tty(closed) is False
    assert is_tty(Terminal()) is True
