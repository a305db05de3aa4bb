"""Asking the kernel to look for new LUNs: the SCSI host rescanner.

:class:`Rescanner` writes a scan request to ``<root>/sys/class/scsi_host/hostN/scan``
(``"- - -"`` for everything the host can reach, ``"C T L"`` for one address,
``-`` a wildcard) and, when iSCSI sessions exist
(``<root>/sys/class/iscsi_session`` has entries), runs
``iscsiadm -m session --rescan`` through the injected
:class:`~tracker.host.executor.CommandExecutor`.

What it never does: write ``issue_lip`` (a loop initialisation resets every
FC path of the HBA at once), or delete a device (``delete``): a rescan only
adds what appeared; removing what is gone is the kernel's job (or an
operator's).

Every scan file is opened with ``O_WRONLY | O_NONBLOCK``: on a real host the
write blocks until the kernel finished scanning (sysfs ignores
``O_NONBLOCK``), but a FIFO standing in for the file in a test never hangs the
writer: with no reader the open fails (``ENXIO``), and a full FIFO
(``EAGAIN``) is retried a few times, waiting through the injected clock.
"""

from __future__ import annotations

import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_fixed

from tracker.clock import Clock, SystemClock
from tracker.exceptions import InvalidInput, RescanFailed, ScanFileMissing
from tracker.host.executor import CommandExecutor, SubprocessExecutor
from tracker.host.sources import PRODUCTION_ROOT

__all__ = [
    "ISCSIADM_NO_SESSIONS",
    "ISCSI_RESCAN",
    "RescanResult",
    "Rescanner",
]

logger = logging.getLogger(__name__)

#: The command that makes open-iscsi rescan every logged-in session.
ISCSI_RESCAN: tuple[str, ...] = ("iscsiadm", "-m", "session", "--rescan")
#: iscsiadm's exit status when it found no session (ISCSI_ERR_NO_OBJS_FOUND):
#: nothing to rescan, not a failure (the sessions went between the look and the run).
ISCSIADM_NO_SESSIONS = 21

#: How often a write to a full scan FIFO is tried, and the wait between tries.
WRITE_ATTEMPTS = 5
WRITE_RETRY_WAIT = 0.01

_SCAN_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class RescanResult:
    """What a rescan asked for.

    :ivar hosts: the host numbers whose scan file was written, in order.
    :ivar iscsi: whether ``iscsiadm -m session --rescan`` ran.
    """

    hosts: tuple[int, ...]
    iscsi: bool


def _field(name: str, value: int | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _SCAN_MAX:
        raise InvalidInput(name, value, f"an integer in 0..{_SCAN_MAX}, or None for any")
    return str(value)


class _Again(Exception):
    """A full FIFO: try the write again."""


class Rescanner:
    """Writes SCSI scan requests below a sysfs root and rescans iSCSI sessions.

    :param root: the directory holding ``sys/`` (``/`` on a live host).
    :param executor: runs ``iscsiadm`` (a :class:`SubprocessExecutor` when ``None``).
    :param clock: waits between tries of a write to a full FIFO.
    :param iscsiadm_timeout: seconds before ``iscsiadm`` is killed.
    """

    def __init__(
        self,
        root: Path = PRODUCTION_ROOT,
        executor: CommandExecutor | None = None,
        clock: Clock | None = None,
        *,
        iscsiadm_timeout: float = 120.0,
    ) -> None:
        self.root = Path(root)
        self._executor = executor if executor is not None else SubprocessExecutor()
        self._clock = clock if clock is not None else SystemClock()
        self._timeout = iscsiadm_timeout
        self._class = self.root / "sys" / "class"

    def __repr__(self) -> str:
        return f"Rescanner({self.root!r})"

    def hosts(self) -> tuple[int, ...]:
        """List the SCSI hosts (``hostN`` of ``sys/class/scsi_host``).

        :returns: their numbers, sorted; empty when there is no SCSI host.
        :raises: nothing.
        """
        try:
            names = os.listdir(self._class / "scsi_host")
        except OSError:
            return ()
        numbers = (name[4:] for name in names if name.startswith("host"))
        return tuple(sorted(int(n) for n in numbers if n.isascii() and n.isdigit()))

    def has_iscsi_sessions(self) -> bool:
        """:returns: whether ``sys/class/iscsi_session`` has an entry. Never raises."""
        try:
            with os.scandir(self._class / "iscsi_session") as entries:
                return any(True for _ in entries)
        except OSError:
            return False

    def scan_all(self) -> RescanResult:
        """Ask every SCSI host to scan everything it can reach, then rescan iSCSI.

        Every host is tried even when one fails.

        :returns: what was asked for.
        :raises tracker.exceptions.RescanFailed: a scan file could not be
            written (each failed host is named).
        :raises tracker.exceptions.CommandFailed: ``iscsiadm`` failed.
        :raises tracker.exceptions.CommandNotFound: iSCSI sessions exist but
            ``iscsiadm`` is not installed.
        """
        failures: list[str] = []
        written: list[int] = []
        for host in self.hosts():
            try:
                self._write(host, "- - -")
            except RescanFailed as error:
                failures.extend(error.failures)
            except ScanFileMissing as error:
                failures.append(f"host{host}: {error}")
            else:
                written.append(host)
        iscsi = self._rescan_iscsi()
        if failures:
            raise RescanFailed(failures)
        return RescanResult(tuple(written), iscsi)

    def scan(
        self,
        host: int,
        channel: int | None = None,
        target: int | None = None,
        lun: int | None = None,
    ) -> RescanResult:
        """Ask one SCSI host to scan one address (``None``: any).

        :returns: what was asked for (no iSCSI rescan).
        :raises tracker.exceptions.InvalidInput: a number that is negative or
            too large.
        :raises tracker.exceptions.ScanFileMissing: there is no such host.
        :raises tracker.exceptions.RescanFailed: the scan file could not be written.
        """
        if isinstance(host, bool) or not isinstance(host, int) or not 0 <= host <= _SCAN_MAX:
            raise InvalidInput("host", host, f"an integer in 0..{_SCAN_MAX}")
        request = " ".join(
            (_field("channel", channel), _field("target", target), _field("lun", lun))
        )
        self._write(host, request)
        return RescanResult((host,), False)

    def _write(self, host: int, request: str) -> None:
        path = self._class / "scsi_host" / f"host{host}" / "scan"
        data = request.encode("ascii")
        retrying = Retrying(
            retry=retry_if_exception(lambda error: isinstance(error, _Again)),
            stop=stop_after_attempt(WRITE_ATTEMPTS),
            wait=wait_fixed(WRITE_RETRY_WAIT),
            sleep=self._clock.sleep,
            reraise=True,
        )
        try:
            retrying(self._write_once, host, path, data)
        except _Again:
            raise RescanFailed(
                [f"host{host}: {path} stayed full (EAGAIN) after {WRITE_ATTEMPTS} tries"]
            ) from None
        logger.debug("wrote %r to %s", request, path)

    @staticmethod
    def _write_once(host: int, path: Path, data: bytes) -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as error:
            if error.errno == errno.ENOENT:
                raise ScanFileMissing(host, os.fspath(path)) from error
            raise RescanFailed([f"host{host}: {_describe(error, path)}"]) from error
        try:
            os.write(fd, data)
        except BlockingIOError:
            raise _Again() from None
        except OSError as error:
            raise RescanFailed([f"host{host}: {_describe(error, path)}"]) from error
        finally:
            os.close(fd)

    def _rescan_iscsi(self) -> bool:
        if not self.has_iscsi_sessions():
            return False
        result = self._executor.run(ISCSI_RESCAN, timeout=self._timeout)
        if result.returncode == ISCSIADM_NO_SESSIONS:
            logger.info("iscsiadm found no session to rescan")
            return False
        result.check()
        return True


def _describe(error: OSError, path: Path) -> str:
    name = errno.errorcode.get(error.errno or 0, "error")
    if error.errno == errno.ENXIO:
        return f"cannot write {path}: ENXIO (nothing reads it: a FIFO without a reader)"
    return f"cannot write {path}: {name} ({error.strerror or 'no detail'})"
