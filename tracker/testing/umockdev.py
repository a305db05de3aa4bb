"""Running programs against a testbed: umockdev's preload, lsscsi, and skip rules.

A process started with :func:`preload_environment` (see
:func:`run_under_preload`) sees a testbed's ``sys/`` through libudev instead
of the real ``/sys``; :func:`run_lsscsi` reads a testbed with ``lsscsi -y``.
:func:`unavailable` is the one rule for tests needing an optional tool.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from tracker.exceptions import HostError, PreloadLibraryMissing
from tracker.host.executor import CommandExecutor, CommandResult
from tracker.testing.specs import Hctl

__all__ = [
    "PRELOAD_LIBRARY",
    "LsscsiRow",
    "find_preload_library",
    "preload_environment",
    "require_lsscsi",
    "require_no_udevd",
    "require_preload_library",
    "run_lsscsi",
    "run_under_preload",
    "unavailable",
]

#: File name of umockdev's preload library.
PRELOAD_LIBRARY = "libumockdev-preload.so.0"

_MULTIARCH_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/powerpc64le-linux-gnu",
    "/usr/lib/s390x-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
)


def unavailable(reason: str) -> NoReturn:
    """Give up on the calling test because something optional is missing.

    The one rule for every test that needs a system tool (umockdev, lsscsi)
    or a quiet host: skip with ``reason`` on a developer's machine, fail
    under ``CI=true`` (see :func:`tracker.testing.databases.required`),
    where everything must run.

    :param reason: what is missing and which Debian package provides it.
    :raises pytest.skip.Exception: outside CI.
    :raises pytest.fail.Exception: under ``CI=true``.
    """
    import pytest

    from tracker.testing.databases import required

    if required():
        pytest.fail(f"CI=true requires this test to run, but: {reason}")
    pytest.skip(reason)


def require_lsscsi() -> str:
    """Find ``lsscsi`` for a test, or give up as :func:`unavailable` says.

    :returns: the program's path.
    :raises pytest.skip.Exception: when it is missing (``pytest.fail`` under CI).
    """
    path = shutil.which("lsscsi")
    if path is None:
        unavailable("lsscsi is not installed (Debian package 'lsscsi')")
    return path


def require_preload_library() -> Path:
    """Find umockdev's preload library for a test, or give up as
    :func:`unavailable` says.

    :returns: the library's path.
    :raises pytest.skip.Exception: when it is missing (``pytest.fail`` under CI).
    """
    from tracker.host.executor import SubprocessExecutor

    try:
        return find_preload_library(SubprocessExecutor())
    except PreloadLibraryMissing as error:
        unavailable(str(error))


def require_no_udevd(udev_data: Path = Path("/run/udev/data")) -> None:
    """Give up (as :func:`unavailable` says) when udevd keeps SCSI disk entries here.

    The preload does not redirect ``/run``: libudev would mix the real
    ``b8:*`` entries into a testbed's records.

    :param udev_data: the udev database directory to look at.
    :raises pytest.skip.Exception: when such an entry exists (``pytest.fail``
        under CI).
    """
    for marker in udev_data.glob("b8:*"):
        unavailable(f"udevd keeps {marker} here; libudev would mix it into testbed records")


def find_preload_library(executor: CommandExecutor | None = None) -> Path:
    """Locate umockdev's preload library.

    Asks ``ldconfig -p`` (through ``executor``, when given), then looks in the
    usual multiarch directories.

    :returns: the library's absolute path.
    :raises tracker.exceptions.PreloadLibraryMissing: when it is nowhere,
        naming the Debian package ``umockdev``.
    """
    searched: list[str] = []
    if executor is not None:
        searched.append("ldconfig -p")
        try:
            listing = executor.run(["ldconfig", "-p"], timeout=30).stdout
        except HostError:  # a missing ldconfig only narrows the search
            listing = ""
        for line in listing.splitlines():
            name, _, target = line.partition("=>")
            if name.strip().startswith(PRELOAD_LIBRARY) and Path(target.strip()).is_file():
                return Path(target.strip())
    for directory in _MULTIARCH_DIRS:
        searched.append(directory)
        candidate = Path(directory) / PRELOAD_LIBRARY
        if candidate.is_file():
            return candidate
    raise PreloadLibraryMissing(library=PRELOAD_LIBRARY, searched=searched)


def preload_environment(
    testbed_root: Path, library: Path, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Build the environment that makes libudev see a testbed.

    :param testbed_root: the testbed directory (becomes ``UMOCKDEV_DIR``).
    :param library: the preload library (from :func:`find_preload_library`).
    :param base: environment to start from (``os.environ`` when ``None``).
    :returns: a new environment with ``LD_PRELOAD`` (prepended to any
        existing value) and ``UMOCKDEV_DIR`` set.
    :raises: nothing.
    """
    env = dict(os.environ if base is None else base)
    previous = env.get("LD_PRELOAD")
    env["LD_PRELOAD"] = f"{library} {previous}" if previous else str(library)
    env["UMOCKDEV_DIR"] = str(testbed_root)
    return env


def run_under_preload(
    testbed_root: Path,
    argv: Sequence[str],
    executor: CommandExecutor,
    *,
    library: Path | None = None,
    timeout: float = 120.0,
) -> CommandResult:
    """Run a command in a process that sees the testbed instead of ``/sys``.

    :param argv: the command; ``argv[0] == "python"`` is replaced by this
        interpreter.
    :returns: the command's result (exit status not checked).
    :raises tracker.exceptions.PreloadLibraryMissing: when umockdev is not
        installed.
    :raises tracker.exceptions.CommandNotFound: when the program is missing.
    :raises tracker.exceptions.CommandFailed: when it times out.
    """
    lib = library if library is not None else find_preload_library(executor)
    args = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
    return executor.run(args, env=preload_environment(testbed_root, lib), timeout=timeout)


@dataclass(frozen=True, slots=True)
class LsscsiRow:
    """One line of ``lsscsi`` output.

    :ivar hctl: the ``[H:C:T:L]`` address.
    :ivar kind: the peripheral type column (``"disk"``).
    :ivar detail: the middle columns (vendor/model/rev, transport id, or
        LU name, depending on the options).
    :ivar device: the last column (``/dev/sda`` or ``"-"``).
    """

    hctl: Hctl
    kind: str
    detail: str
    device: str


def run_lsscsi(
    sys_dir: Path, options: Sequence[str], executor: CommandExecutor, *, timeout: float = 60.0
) -> tuple[LsscsiRow, ...]:
    """Run ``lsscsi -y <sys_dir> <options>`` and parse its device lines.

    :param sys_dir: the ``sys`` directory to read (a testbed's :attr:`Testbed.sys_dir`).
    :param options: e.g. ``["-t"]`` or ``["-u"]``.
    :returns: one row per LUN line, in output order.
    :raises tracker.exceptions.CommandNotFound: when lsscsi is not installed.
    :raises tracker.exceptions.CommandFailed: when it fails or times out.
    """
    result = executor.run(["lsscsi", "-y", str(sys_dir), *options], timeout=timeout).check()
    rows = []
    for line in result.stdout.splitlines():
        if not line.startswith("["):
            continue
        address, _, rest = line.partition("]")
        parts = rest.split()
        numbers = [int(part) for part in address[1:].split(":")]
        rows.append(
            LsscsiRow(
                hctl=Hctl(*numbers),
                kind=parts[0] if parts else "",
                detail=" ".join(parts[1:-1]),
                device=parts[-1] if len(parts) > 1 else "",
            )
        )
    return tuple(rows)
