"""Helpers shared by the benchmark scripts: stores, timing, output lines.

Nothing here is part of tracker; the scripts import it as a sibling module.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tracker.db.store import Store
from tracker.resources import Backend
from tracker.testing import databases

T = TypeVar("T")

#: the dialects ``--dialect all`` runs, in order
ALL_DIALECTS = ("sqlite", "postgresql", "mariadb")
#: what runs without ``--dialect``
DEFAULT_DIALECTS = ("sqlite", "postgresql")


@dataclass(frozen=True, slots=True)
class Settings:
    """What the command line asked for.

    :ivar dialects: the databases to run on, in order.
    :ivar scale: multiplier of every record count (1.0 = the documented sizes).
    :ivar repeat: timed repetitions per figure (the median is printed).
    :ivar only: names of the benchmarks to run; empty means all.
    :ivar profile: write a cProfile of the tracker side of each figure here.
    """

    dialects: tuple[str, ...]
    scale: float
    repeat: int
    only: tuple[str, ...]
    profile: Path | None

    def scaled(self, count: int, minimum: int = 1) -> int:
        """:returns: ``count`` times the scale, at least ``minimum``."""
        return max(minimum, round(count * self.scale))


def parse_args(description: str, benchmarks: tuple[str, ...]) -> Settings:
    """Parse the options every benchmark script takes.

    :returns: the settings.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--dialect",
        choices=(*ALL_DIALECTS, "all"),
        action="append",
        help="database to run on (repeatable; 'all' = sqlite, postgresql and mariadb; "
        "default: sqlite and postgresql)",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every record count by this (0.05 for a quick smoke run)",
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="timed repetitions per figure (median printed)"
    )
    parser.add_argument(
        "--only", choices=benchmarks, action="append", help="run only this benchmark (repeatable)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="also write a cProfile (.pstats) of one tracker-side run of each figure into DIR",
    )
    args = parser.parse_args()
    if args.scale <= 0:
        parser.error("--scale must be positive")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    chosen: list[str] = []
    for value in args.dialect or DEFAULT_DIALECTS:
        for dialect in ALL_DIALECTS if value == "all" else (value,):
            if dialect not in chosen:
                chosen.append(dialect)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    return Settings(
        dialects=tuple(chosen),
        scale=args.scale,
        repeat=args.repeat,
        only=tuple(args.only or ()),
        profile=args.profile,
    )


@contextmanager
def scratch_dir() -> Iterator[str]:
    """A temporary directory for SQLite files, in RAM (/dev/shm) when possible.

    :returns: a context manager yielding its path.
    """
    shm = Path("/dev/shm")
    parent = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="tracker-bench-", dir=parent) as path:
        yield path


def unavailable(dialect: str) -> str | None:
    """:returns: why ``dialect`` cannot be benchmarked here, or ``None``."""
    return databases.server_unavailable(dialect)


@contextmanager
def fresh_store(dialect: str, sqlite_dir: str) -> Iterator[Store]:
    """A store with the schema at head and no rows, on a database made for it.

    Server databases are dropped afterwards; backends registered on the store
    are removed from :attr:`tracker.Backend.backends`.

    :returns: a context manager yielding the open store.
    """
    with databases.throwaway_database(dialect, sqlite_dir) as database:
        store = Store(database.url, auto_upgrade="always")
        try:
            yield store
        finally:
            for name, backend in list(Backend.backends.items()):
                if backend.store is store:
                    del Backend.backends[name]
            store.dispose()


def interleaved(
    tracked: Callable[[], T],
    baseline: Callable[[], Any],
    repeat: int,
    between: Callable[[], None] | None = None,
) -> tuple[float, float, T]:
    """Time two alternatives in alternation, so drift hits both alike.

    Each one is run once untimed first. ``between`` (untimed) runs after every
    run of either, e.g. to empty the tables again.

    :returns: the median seconds of ``tracked``, of ``baseline``, and the last
        result of ``tracked``.
    """
    tracked_times: list[float] = []
    baseline_times: list[float] = []
    result: Any = None
    for index in range(repeat + 1):
        for run, times in ((tracked, tracked_times), (baseline, baseline_times)):
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                value = run()
                elapsed = time.perf_counter() - start
            finally:
                gc.enable()
            if run is tracked:
                result = value
            del value
            if index:  # the first round warms up
                times.append(elapsed)
            if between is not None:
                between()
    return statistics.median(tracked_times), statistics.median(baseline_times), result


@dataclass(frozen=True, slots=True)
class Alternated:
    """Wall times of two commands run as whole processes, turn by turn.

    :ivar tracked: seconds of each timed run of the tracked command.
    :ivar baseline: seconds of the baseline run right after each of those.
    """

    tracked: tuple[float, ...]
    baseline: tuple[float, ...]

    @property
    def ratio(self) -> float:
        """:returns: the median of the per-round ratios (each run against its own
        baseline run, so a slow moment of the machine hits both sides alike)."""
        return statistics.median(t / b for t, b in zip(self.tracked, self.baseline, strict=True))


def run_process(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Run one command to its end, its output discarded.

    :returns: its wall time in seconds.
    :raises subprocess.CalledProcessError: it failed.
    """
    start = time.perf_counter()
    subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=True, timeout=900
    )
    return time.perf_counter() - start


def alternated(
    tracked: Callable[[], float],
    baseline: Callable[[], float],
    repeat: int,
    before: Callable[[], None] | None = None,
) -> Alternated:
    """Time two commands in alternation, run by run, after one untimed round.

    :param tracked: runs the tracked command, returns its seconds (:func:`run_process`).
    :param baseline: the same for the baseline.
    :param before: untimed, before every run of ``tracked`` (emptying the store).
    :returns: the timings.
    """
    tracked_times: list[float] = []
    baseline_times: list[float] = []
    for index in range(repeat + 1):
        if before is not None:
            before()
        tracked_seconds = tracked()
        baseline_seconds = baseline()
        if index:  # the first round warms the page cache and the database up
            tracked_times.append(tracked_seconds)
            baseline_times.append(baseline_seconds)
    return Alternated(tuple(tracked_times), tuple(baseline_times))


def figure(
    label: str,
    dialect: str,
    detail: str,
    seconds: float,
    baseline_seconds: float,
    baseline: str,
    goal: str,
) -> str:
    """Format one result line, e.g.

    ``status-dump sqlite: 4 queries, 0.183 s, 1.42x raw Core select (goal <= 4 queries, <= 2x)``

    :returns: the line.
    """
    ratio = seconds / baseline_seconds if baseline_seconds > 0 else float("inf")
    prefix = f"{detail}, " if detail else ""
    return (
        f"{label} {dialect}: {prefix}{_seconds(seconds)}, {ratio:.2f}x {baseline} "
        f"({_seconds(baseline_seconds)}) ({goal})"
    )


def _seconds(value: float) -> str:
    if value >= 0.1:
        return f"{value:.3f} s"
    if value >= 0.001:
        return f"{value * 1000:.2f} ms"
    return f"{value * 1_000_000:.1f} us"


def emit(line: str) -> None:
    """Print one figure (or note) at once, even when output is piped."""
    print(line, flush=True)
