"""A fake ``mount``/``umount`` for NFS, with a fake mount table.

:class:`FakeMount` is a :class:`~tracker.host.executor.CommandExecutor`
handling ``mount -t nfs|nfs4 [-o OPTIONS] SOURCE MOUNT_POINT`` and
``umount [-f] [-l] MOUNT_POINT`` against a mount table it writes at
``<root>/proc/self/mountinfo`` in the kernel's format (octal escapes
included), so that :func:`tracker.host.mounts.read_mountinfo` (and
:class:`tracker.host.mounts.Mounter` built with the same ``root``) reads it
like the real one. The table starts with one entry, the root file system.

Like the real commands, a mount needs an existing directory (else 32), an
export the fake server offers (:attr:`FakeMount.exports`; else 32, ``access
denied by server``), and refuses the same export mounted on the same point
twice (32); ``umount`` of something not mounted exits 32, ``not mounted``.
Nothing is mounted for real: the mount point stays an ordinary directory.

Failures a test can cause: :meth:`~FakeMount.fail_mounts` and
:meth:`~FakeMount.fail_umounts` (the next commands exit with a chosen status
and message, or time out), :meth:`~FakeMount.vanish` (a mount disappears
behind the caller's back: a lazy unmount by someone else, a reboot of the
namespace), :meth:`~FakeMount.add_mount` (something else mounted somewhere).
Another program goes to ``fallback`` or raises
:class:`~tracker.exceptions.CommandNotFound`; unknown arguments exit 1, as
mount's usage errors do.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tracker.exceptions import CommandNotFound, TestbedError
from tracker.host.executor import CommandExecutor, CommandResult
from tracker.host.mounts import MOUNTINFO, MountEntry
from tracker.testing.failures import ArmedFailures, failed_result

__all__ = ["FakeMount"]

_ESCAPED = {ord(" "): b"\\040", ord("\t"): b"\\011", ord("\n"): b"\\012", ord("\\"): b"\\134"}


def _escape(text: str) -> bytes:
    """A text field as the kernel writes it in mountinfo."""
    return b"".join(_ESCAPED.get(byte, bytes((byte,))) for byte in os.fsencode(text))


def _export_key(source: str) -> str:
    """What the server sees of ``server:/path``: the host name in lower case (names
    resolve without regard to case; an IPv6 address in its compressed form), the
    path without repeated or trailing slashes (``server:/`` stays)."""
    server, separator, path = source.partition(":/")
    if not separator:
        return source
    server = server.lower()
    if server.startswith("[") and server.endswith("]"):
        with contextlib.suppress(ValueError):
            server = f"[{ipaddress.IPv6Address(server[1:-1])}]"
    path = "/" + "/".join(part for part in path.split("/") if part)
    return f"{server}:{path}"


@dataclass(frozen=True, slots=True)
class _Line:
    entry: MountEntry
    devno: str
    optional: str


def _result(argv: tuple[str, ...], code: int, stdout: str = "", stderr: str = "") -> CommandResult:
    return CommandResult(argv=argv, returncode=code, stdout=stdout, stderr=stderr)


class FakeMount:
    """Plays ``mount``/``umount`` for NFS against a fake mount table.

    :param root: the directory whose ``proc/self/mountinfo`` is written
        (created when missing).
    :param exports: the exports the fake server offers (``server:/export``).
    :param fallback: runs any other program; ``None``: they are not installed.
    :ivar exports: the exports offered; change it at will.
    :ivar calls: every argv run, in order (failed ones too).
    :ivar mounts: how many mounts succeeded.
    :ivar umounts: how many unmounts succeeded.
    """

    def __init__(
        self,
        root: Path,
        *,
        exports: Iterable[str] = (),
        fallback: CommandExecutor | None = None,
    ) -> None:
        self.root = Path(root)
        self.exports: set[str] = set(exports)
        self.fallback = fallback
        self.calls: list[tuple[str, ...]] = []
        self.mounts = 0
        self.umounts = 0
        self._ids = itertools.count(100)
        self._devices = itertools.count(50)
        self._lines: list[_Line] = [
            _Line(
                MountEntry(1, 0, "/dev/vda1", "/", "ext4", "rw,relatime", "rw"), "254:1", "shared:1"
            )
        ]
        self._mount_failures = ArmedFailures()
        self._umount_failures = ArmedFailures()
        self._lock = threading.RLock()
        (self.root / MOUNTINFO).parent.mkdir(parents=True, exist_ok=True)
        self._write()

    def __repr__(self) -> str:
        return f"FakeMount({self.root!r}, mounted={len(self._lines) - 1})"

    @property
    def mountinfo(self) -> Path:
        """The fake mount table file. :raises: nothing."""
        return self.root / MOUNTINFO

    @property
    def entries(self) -> tuple[MountEntry, ...]:
        """What the table holds, in mount order. :raises: nothing."""
        with self._lock:
            return tuple(line.entry for line in self._lines)

    def mounted(self, mount_point: Path | str) -> bool:
        """:returns: whether anything is mounted on ``mount_point``. Never raises."""
        wanted = os.path.normpath(os.fspath(mount_point))
        return any(entry.mount_point == wanted for entry in self.entries)

    # -- the table --

    def _write(self) -> None:
        text = b"".join(
            b" ".join(
                (
                    str(line.entry.mount_id).encode(),
                    str(line.entry.parent_id).encode(),
                    line.devno.encode(),
                    b"/",
                    _escape(line.entry.mount_point),
                    _escape(line.entry.options),
                    *((line.optional.encode(),) if line.optional else ()),
                    b"-",
                    _escape(line.entry.fstype),
                    _escape(line.entry.source),
                    _escape(line.entry.super_options),
                )
            )
            + b"\n"
            for line in self._lines
        )
        directory = self.mountinfo.parent
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=".mountinfo-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(text)
            os.replace(temporary, self.mountinfo)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _parent(self, mount_point: str) -> int:
        best = self._lines[0].entry
        for line in self._lines:
            point = line.entry.mount_point
            inside = point == "/" or mount_point.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best.mount_point):
                best = line.entry
        return best.mount_id

    def add_mount(
        self,
        source: str,
        mount_point: Path | str,
        fstype: str = "nfs4",
        *,
        options: str = "rw,relatime",
        super_options: str = "rw",
    ) -> MountEntry:
        """Put an entry in the table without any command (someone else mounted it).

        :returns: the entry.
        :raises: nothing.
        """
        with self._lock:
            point = os.path.normpath(os.fspath(mount_point))
            entry = MountEntry(
                next(self._ids), self._parent(point), source, point, fstype, options, super_options
            )
            self._lines.append(_Line(entry, f"0:{next(self._devices)}", ""))
            self._write()
            return entry

    def vanish(self, mount_point: Path | str) -> None:
        """Take every mount on ``mount_point`` out of the table, with no command:
        unmounted behind the caller's back.

        :raises tracker.exceptions.TestbedError: when nothing is mounted there.
        """
        with self._lock:
            point = os.path.normpath(os.fspath(mount_point))
            kept = [line for line in self._lines if line.entry.mount_point != point]
            if len(kept) == len(self._lines):
                raise TestbedError(what=f"mount on {point}", reason="nothing is mounted there")
            self._lines = kept
            self._write()

    # -- failures --

    def fail_mounts(
        self, returncode: int | None = 32, times: int | None = None, *, stderr: str | None = None
    ) -> None:
        """Make the next mounts fail.

        :param returncode: their exit status, or ``None`` to time out
            (:class:`~tracker.exceptions.CommandFailed`, as the subprocess
            executor raises).
        :param times: how many; ``None``: every one until called with ``times=0``.
        :param stderr: the message (a ``mount.nfs`` time-out message when ``None``).
        :raises ValueError: a negative ``times``.
        """
        with self._lock:
            self._mount_failures.arm(returncode, times, stderr)

    def fail_umounts(
        self, returncode: int | None = 32, times: int | None = None, *, stderr: str | None = None
    ) -> None:
        """Make the next unmounts fail (as :meth:`fail_mounts`; the default message
        is ``target is busy``); the mount stays.

        :raises ValueError: a negative ``times``.
        """
        with self._lock:
            self._umount_failures.arm(returncode, times, stderr)

    # -- the executor --

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Play one ``mount`` or ``umount`` command.

        :returns: its result, with the real commands' exit statuses and messages.
        :raises tracker.exceptions.CommandNotFound: another program, without a
            ``fallback``.
        :raises tracker.exceptions.CommandFailed: a command made to time out.
        """
        args = tuple(argv)
        program = Path(args[0]).name if args else ""
        if program not in ("mount", "umount"):
            if self.fallback is not None:
                return self.fallback.run(args, env=env, cwd=cwd, timeout=timeout)
            raise CommandNotFound(command=program, package=program)
        with self._lock:
            self.calls.append(args)
            if program == "mount":
                return self._mount(args, timeout)
            return self._umount(args, timeout)

    def _mount(self, args: tuple[str, ...], timeout: float | None) -> CommandResult:
        fstype, options, positional = None, "", []
        words = iter(args[1:])
        for word in words:
            if word in ("-t", "-o"):
                value = next(words, None)
                if value is None:
                    return _result(
                        args, 1, stderr=f"mount: option requires an argument -- {word}\n"
                    )
                if word == "-t":
                    fstype = value
                else:
                    options = value
            elif word.startswith("-"):
                return _result(args, 1, stderr=f"mount: unsupported option {word} (fake mount)\n")
            else:
                positional.append(word)
        if len(positional) != 2:
            return _result(args, 1, stderr="mount: bad usage (fake mount: SOURCE MOUNT_POINT)\n")
        source, target = positional
        point = os.path.normpath(target)
        failure = self._mount_failures.take()
        if failure is not None:
            return failed_result(args, failure, "mount.nfs: Connection timed out\n", timeout)
        if fstype not in ("nfs", "nfs4"):
            return _result(
                args, 32, stderr=f"mount: {point}: unknown filesystem type '{fstype}'.\n"
            )
        if not os.path.isdir(point):
            return _result(args, 32, stderr=f"mount: {point}: mount point does not exist.\n")
        if any(
            e.mount_point == point and _export_key(e.source) == _export_key(source)
            for e in self.entries
        ):
            return _result(
                args, 32, stderr=f"mount: {point}: {source} already mounted on {point}.\n"
            )
        if _export_key(source) not in {_export_key(export) for export in self.exports}:
            return _result(
                args, 32, stderr=f"mount.nfs: access denied by server while mounting {source}\n"
            )
        settings = dict(
            (part.partition("=")[0], part.partition("=")[2]) for part in options.split(",") if part
        )
        version = settings.get("vers") or settings.get("nfsvers") or "4.2"
        kind = "nfs" if fstype == "nfs" and version.split(".")[0] in ("2", "3") else "nfs4"
        mode = "ro" if "ro" in settings else "rw"
        given = [
            part
            for part in options.split(",")
            if part and part.partition("=")[0] not in ("vers", "nfsvers", "ro", "rw")
        ]
        self.add_mount(
            source,
            point,
            kind,
            options=f"{mode},relatime",
            super_options=",".join([mode, f"vers={version}", *given]),
        )
        self.mounts += 1
        return _result(args, 0)

    def _umount(self, args: tuple[str, ...], timeout: float | None) -> CommandResult:
        targets = [word for word in args[1:] if word not in ("-f", "-l")]
        unknown = [word for word in targets if word.startswith("-")]
        if unknown or len(targets) != 1:
            return _result(args, 1, stderr="umount: bad usage (fake umount: [-f] [-l] TARGET)\n")
        point = os.path.normpath(targets[0])
        failure = self._umount_failures.take()
        if failure is not None:
            return failed_result(args, failure, f"umount: {point}: target is busy.\n", timeout)
        for index in range(len(self._lines) - 1, 0, -1):
            entry = self._lines[index].entry
            if entry.mount_point == point or entry.source == targets[0]:
                del self._lines[index]
                self._write()
                self.umounts += 1
                return _result(args, 0)
        return _result(args, 32, stderr=f"umount: {point}: not mounted.\n")
