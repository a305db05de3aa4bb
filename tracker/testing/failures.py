"""Failures a fake command can be armed with: an exit status (or a time-out), N times.

:class:`ArmedFailures` is what :class:`~tracker.testing.iscsiadm.FakeIscsiadm`
and :class:`~tracker.testing.mounts.FakeMount` keep per operation (login,
logout, mount, umount); :func:`failed_result` is what the command then
"returns".
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from tracker.exceptions import CommandFailed
from tracker.host.executor import CommandResult

__all__ = ["ArmedFailures", "Failure", "failed_result"]


@dataclass(slots=True)
class Failure:
    """One armed failure.

    :ivar returncode: the exit status, ``None`` for a command that times out.
    :ivar times: how many more commands fail, ``None`` until disarmed.
    :ivar stderr: the message, or ``None`` for the command's own.
    """

    returncode: int | None
    times: int | None
    stderr: str | None


class ArmedFailures:
    """The failure armed for one operation of a fake command (not thread-safe: the
    fakes call it under their own lock)."""

    def __init__(self) -> None:
        self._armed: Failure | None = None

    def arm(self, returncode: int | None, times: int | None, stderr: str | None) -> None:
        """Make the next ``times`` commands fail (``None``: all, ``0``: disarm).

        :raises ValueError: a negative ``times``.
        """
        if times is not None and times < 0:
            raise ValueError("times must be None or >= 0")
        self._armed = None if times == 0 else Failure(returncode, times, stderr)

    def take(self) -> Failure | None:
        """Use one failure up.

        :returns: the failure to apply to this command, or ``None``. Never raises.
        """
        armed = self._armed
        if armed is None:
            return None
        if armed.times is not None:
            armed.times -= 1
            if armed.times <= 0:
                self._armed = None
        return armed


def failed_result(
    args: tuple[str, ...], failure: Failure, message: str, timeout: float | None
) -> CommandResult:
    """What a command armed with ``failure`` gives back.

    :param message: the command's own message (used when the failure has none).
    :returns: the result with the failure's exit status.
    :raises tracker.exceptions.CommandFailed: for a time-out, as
        :class:`~tracker.host.executor.SubprocessExecutor` raises it.
    """
    if failure.returncode is None:
        raise CommandFailed(
            command=shlex.join(args), returncode=None, stderr=f"timed out after {timeout} s"
        )
    return CommandResult(
        argv=args, returncode=failure.returncode, stdout="", stderr=failure.stderr or message
    )
