"""Running host commands through an injectable executor.

Library code never calls :mod:`subprocess` directly: it takes a
:class:`CommandExecutor`, so tests can substitute a fake and production can
add logging or privilege handling in one place.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from tracker.exceptions import CommandFailed, CommandNotFound

__all__ = ["CommandExecutor", "CommandResult", "SubprocessExecutor"]


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a finished command produced.

    :ivar argv: the command line that ran.
    :ivar returncode: its exit status.
    :ivar stdout: its standard output, decoded as UTF-8 (bad bytes replaced).
    :ivar stderr: its standard error, decoded likewise.
    """

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> CommandResult:
        """Insist that the command succeeded.

        :returns: this result, when the exit status is 0.
        :raises tracker.exceptions.CommandFailed: otherwise.
        """
        if self.returncode != 0:
            raise CommandFailed(
                command=shlex.join(self.argv),
                returncode=self.returncode,
                stderr=self.stderr.strip()[-2000:],
            )
        return self


@runtime_checkable
class CommandExecutor(Protocol):
    """Runs one command to completion."""

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Run ``argv`` and wait for it.

        :param argv: program and arguments (no shell).
        :param env: the complete environment, or ``None`` to inherit.
        :param cwd: working directory, or ``None`` to inherit.
        :param timeout: seconds before the command is killed.
        :returns: its result, whatever the exit status.
        :raises tracker.exceptions.CommandNotFound: when the program is missing.
        :raises tracker.exceptions.CommandFailed: when it timed out.
        """
        ...


#: Debian packages that provide the commands the host layer runs.
_PACKAGES = {
    "lsscsi": "lsscsi",
    "umockdev-run": "umockdev",
    "multipath": "multipath-tools",
    "iscsiadm": "open-iscsi",
}


class SubprocessExecutor:
    """A :class:`CommandExecutor` backed by :func:`subprocess.run`."""

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Run ``argv`` without a shell and capture its output.

        :returns: the :class:`CommandResult`.
        :raises tracker.exceptions.CommandNotFound: when the program is missing.
        :raises tracker.exceptions.CommandFailed: when it ran past ``timeout``.
        """
        args = tuple(argv)
        try:
            completed = subprocess.run(
                args,
                env=None if env is None else dict(env),
                cwd=cwd,
                timeout=timeout,
                capture_output=True,
                check=False,
            )
        except FileNotFoundError as error:
            name = Path(args[0]).name
            raise CommandNotFound(command=name, package=_PACKAGES.get(name, name)) from error
        except subprocess.TimeoutExpired as error:
            raise CommandFailed(
                command=shlex.join(args),
                returncode=None,
                stderr=f"timed out after {timeout} s",
            ) from error
        return CommandResult(
            argv=args,
            returncode=completed.returncode,
            stdout=completed.stdout.decode("utf-8", "replace"),
            stderr=completed.stderr.decode("utf-8", "replace"),
        )
