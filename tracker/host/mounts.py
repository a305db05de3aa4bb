"""The mount table, and mounting NFS exports with ``mount``/``umount``.

Reading the mount table
-----------------------

:func:`read_mountinfo` reads ``<root>/proc/self/mountinfo`` (the root is a
parameter: ``/`` on a live host, a test directory otherwise) in the kernel's
format (``proc(5)``)::

    36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue

mount id, parent id, ``major:minor``, root, mount point, mount options, zero or
more optional fields, ``-``, file system type, source, super options. The
kernel escapes space, tab, newline and backslash in the text fields as octal
(``\\040``, ``\\011``, ``\\012``, ``\\134``); every ``\\NNN`` escape is
decoded. The file is host input, read under the rules of
:mod:`tracker.host.sources`: opened with ``O_NONBLOCK | O_NOFOLLOW`` and read
only when it is a regular file (a FIFO, a device, a symbolic link give no
entries and a warning, and never block), at most :data:`MOUNTINFO_LIMIT` bytes
(the complete lines before the bound are used, with a warning), bytes that are
not UTF-8 escaped (:func:`~tracker.host.sources.decode_host_text`), and a line
that is not a mount table line skipped with a warning. A missing file is an
empty table.

Mounting
--------

:class:`Mounter` runs, through the injected
:class:`~tracker.host.executor.CommandExecutor`, with a timeout:

=========  ==========================================================================
step       argv
=========  ==========================================================================
mount      ``mount -t nfs [-o OPT[=VALUE],...] SOURCE MOUNT_POINT``
           (``-o`` only when options are given)
umount     ``umount [-f] [-l] MOUNT_POINT`` (``-f`` with ``force``, ``-l`` with ``lazy``)
=========  ==========================================================================

Whether something is mounted is decided from the mount table, never from
``umount``'s exit status and message (32 and ``not mounted`` -- translated,
and the same status as a busy target): :meth:`Mounter.umount` reads the table
first and runs nothing when the mount point is not in it, and after a failed
``umount`` reads it again, so a mount that went away meanwhile is success. It
runs ``umount`` once per mount stacked on the point. :meth:`Mounter.mount_nfs`
reads the table first too: the same export already mounted there is
success, anything else mounted there is ``MOUNT_POINT_BUSY``. The table is read
before the mount point is touched, since a ``stat`` of a dead NFS mount
blocks; mount points are compared as normalised absolute paths (no symbolic
links are resolved, for the same reason: use a base directory without any).

:meth:`Mounter.mount_nfs` creates the mount point (and the base directory)
when missing, mode 0755, and refuses one that is a symbolic link or not a
directory (``MOUNT_POINT_INVALID``); :meth:`Mounter.umount` removes it when it
is empty afterwards.

Exit statuses
-------------

:data:`MOUNT_ERRORS` and :data:`UMOUNT_ERRORS` map the statuses of
util-linux ``mount(8)`` and ``umount(8)`` (libmount's ``MNT_EX_*``; NFS's
``mount.nfs`` helper uses the same values) to ``(code, message)``. The
statuses are bits and may be ORed: a status not in the table is named after
its highest known bit. Besides: ``TIMEOUT`` (killed after the timeout),
``NOT_INSTALLED`` (no ``mount``/``umount``: Debian packages ``mount`` and, for
NFS, ``nfs-common``), ``EXEC_FAILED``, ``KILLED`` (a signal), and the
``MOUNT_POINT_*`` codes above.

Per-connection mount points
---------------------------

:func:`mount_point_for` names a connection's mount point below a base
directory: the id, percent-escaped as UTF-8 bytes except ASCII letters,
digits and ``-_.~``, a leading ``.`` escaped too (``%2E``). So ``.``, ``..``,
``/``, spaces, ``%`` and control characters can neither escape the base nor
make two ids share a directory (the mapping is one to one), and the name is
plain ASCII, which the mount table shows unescaped.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import re
import shlex
import signal
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from tracker import validation
from tracker.exceptions import CommandFailed, CommandNotFound, ConnectorFailed, InvalidInput
from tracker.host.executor import CommandExecutor, CommandResult
from tracker.host.sources import PRODUCTION_ROOT, decode_host_text, escape_host_text

__all__ = [
    "MOUNTINFO",
    "MOUNTINFO_LIMIT",
    "MOUNT_ERRORS",
    "NFS_TYPES",
    "UMOUNT_ERRORS",
    "MountEntry",
    "Mounter",
    "mount_point_for",
    "mounts_at",
    "nfs_mounts",
    "parse_mountinfo",
    "read_mountinfo",
]

logger = logging.getLogger(__name__)

#: Where the mount table is, relative to the root.
MOUNTINFO = Path("proc/self/mountinfo")
#: The most bytes of the mount table that are read.
MOUNTINFO_LIMIT = 4 * 1024 * 1024
#: The file system types of NFS mounts.
NFS_TYPES = frozenset({"nfs", "nfs4"})
#: The most characters of standard error an error carries (the end of it).
STDERR_SHOWN = 2000
#: The longest file name (NAME_MAX).
NAME_MAX = 255

#: ``mount(8)``'s exit statuses (util-linux, libmount ``MNT_EX_*``): status ->
#: (stable code, what it means). 0 is success.
MOUNT_ERRORS: Mapping[int, tuple[str, str]] = MappingProxyType(
    {
        1: ("MOUNT_USAGE", "incorrect invocation or permissions (mount must run as root)"),
        2: ("MOUNT_SYSTEM_ERROR", "system error (out of memory, cannot fork ...)"),
        4: ("MOUNT_INTERNAL_ERROR", "internal mount bug or wrong version"),
        8: ("MOUNT_INTERRUPTED", "interrupted by the user"),
        16: ("MOUNT_MTAB_ERROR", "cannot write or lock the mount table (mtab/utab)"),
        32: ("MOUNT_FAILED", "the mount failed"),
        64: ("MOUNT_PARTIAL", "some mounts succeeded, others failed"),
    }
)
#: ``umount(8)``'s exit statuses, the same bits.
UMOUNT_ERRORS: Mapping[int, tuple[str, str]] = MappingProxyType(
    {
        1: ("UMOUNT_USAGE", "incorrect invocation or permissions (umount must run as root)"),
        2: ("UMOUNT_SYSTEM_ERROR", "system error (out of memory, cannot fork ...)"),
        4: ("UMOUNT_INTERNAL_ERROR", "internal umount bug or wrong version"),
        8: ("UMOUNT_INTERRUPTED", "interrupted by the user"),
        16: ("UMOUNT_MTAB_ERROR", "cannot write or lock the mount table (mtab/utab)"),
        32: ("UMOUNT_FAILED", "the unmount failed (the file system is busy?)"),
        64: ("UMOUNT_PARTIAL", "some unmounts succeeded, others failed"),
    }
)

_PACKAGES = "the Debian packages mount and nfs-common"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_OCTAL = re.compile(rb"\\([0-3][0-7]{2})")
_WARNINGS_SHOWN = 5


# --- the mount table --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MountEntry:
    """One line of the mount table (escapes decoded).

    :ivar mount_id: the mount's id.
    :ivar parent_id: its parent mount's id.
    :ivar source: what is mounted (``server:/export`` for NFS).
    :ivar mount_point: where, an absolute path.
    :ivar fstype: ``nfs``, ``nfs4``, ``ext4`` ...
    :ivar options: the per-mount options (``rw,relatime``).
    :ivar super_options: the file system's options (``rw,vers=4.1,...``).
    """

    mount_id: int
    parent_id: int
    source: str
    mount_point: str
    fstype: str
    options: str
    super_options: str


def _unescape(field: bytes) -> tuple[str, bool]:
    if b"\\" in field:
        field = _OCTAL.sub(lambda match: bytes((int(match.group(1), 8),)), field)
    return decode_host_text(field)


def _parse_line(line: bytes) -> MountEntry | None:
    fields = line.split(b" ")
    if len(fields) < 10:
        return None
    try:
        separator = fields.index(b"-", 6)
    except ValueError:
        return None
    if len(fields) != separator + 4:
        return None
    ids = fields[0], fields[1]
    if not all(field.isdigit() and len(field) <= 20 for field in ids):
        return None
    if re.fullmatch(rb"[0-9]+:[0-9]+", fields[2]) is None:
        return None
    texts = [_unescape(fields[i]) for i in (4, 5, separator + 1, separator + 2, separator + 3)]
    if any(escaped for _text, escaped in texts):
        logger.debug("mount table: bytes that are not UTF-8 were escaped in %r", texts[0][0])
    mount_point, options, fstype, source, super_options = (text for text, _ in texts)
    if not mount_point.startswith("/"):
        return None
    return MountEntry(
        mount_id=int(ids[0]),
        parent_id=int(ids[1]),
        source=source,
        mount_point=mount_point,
        fstype=fstype,
        options=options,
        super_options=super_options,
    )


def parse_mountinfo(data: bytes) -> tuple[MountEntry, ...]:
    """Parse mount table text (the bytes of a ``mountinfo`` file).

    :returns: the entries in file order; lines that are not mount table lines
        are skipped with a warning.
    :raises: nothing.
    """
    entries = []
    skipped = 0
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        entry = _parse_line(line)
        if entry is None:
            skipped += 1
            if skipped <= _WARNINGS_SHOWN:
                shown = escape_host_text(line[:200].decode("utf-8", "backslashreplace"))[0]
                logger.warning(
                    "mount table line %d skipped, not a mountinfo line: %r", number, shown
                )
            continue
        entries.append(entry)
    if skipped > _WARNINGS_SHOWN:
        logger.warning("mount table: %d more lines skipped", skipped - _WARNINGS_SHOWN)
    return tuple(entries)


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def _read_bounded(path: Path, limit: int) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            logger.warning("mount table %s is a symbolic link; not read", path)
        else:
            logger.warning("mount table %s cannot be opened: %s", path, _errno_text(error))
        return None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            logger.warning("mount table %s is %s, not a regular file; not read", path, kind)
            return None
        chunks = []
        size = 0
        while size <= limit and (chunk := os.read(fd, min(65536, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as error:
        logger.warning("mount table %s cannot be read: %s", path, _errno_text(error))
        return None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        logger.warning(
            "mount table %s is larger than %d bytes: only the lines before that were read",
            path,
            limit,
        )
        data = data[:limit]
        data = data[: data.rfind(b"\n") + 1]
    return data


def _errno_text(error: OSError) -> str:
    return f"{errno.errorcode.get(error.errno or 0, 'error')} ({error.strerror or 'no detail'})"


def read_mountinfo(root: Path, *, limit: int = MOUNTINFO_LIMIT) -> tuple[MountEntry, ...]:
    """Read the mount table of ``<root>/proc/self/mountinfo``.

    :param root: ``/`` on a live host, a directory holding ``proc/self/mountinfo``
        in tests.
    :param limit: the most bytes read.
    :returns: the entries in file order (mount order); empty when the file is
        missing or is not a regular file (with a warning).
    :raises: nothing.
    """
    data = _read_bounded(Path(root) / MOUNTINFO, limit)
    if data is None:
        return ()
    return parse_mountinfo(data)


def nfs_mounts(entries: Iterable[MountEntry]) -> tuple[MountEntry, ...]:
    """:returns: the NFS entries (file system type ``nfs`` or ``nfs4``), in order. Never raises."""
    return tuple(entry for entry in entries if entry.fstype in NFS_TYPES)


def mounts_at(entries: Iterable[MountEntry], mount_point: Path | str) -> tuple[MountEntry, ...]:
    """Find what is mounted on a mount point.

    :returns: the entries mounted on ``mount_point`` (a normalised absolute
        path; compared as text, no link is resolved), bottom first. Never raises.
    """
    wanted = os.path.normpath(os.fspath(mount_point))
    return tuple(entry for entry in entries if entry.mount_point == wanted)


# --- mount points -------------------------------------------------------------------

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def mount_point_for(base: Path, connection_id: str) -> Path:
    """Name the mount point of a storage connection below ``base``.

    The id's UTF-8 bytes are kept when they are ASCII letters, digits or
    ``-_.~`` and percent-escaped otherwise (``%2F``, ``%20``, ``%25``); a
    leading ``.`` is escaped too, so the name is never ``.``, ``..`` or hidden.
    Different ids give different names. Nothing is created.

    :param base: the base directory, an absolute path.
    :returns: ``base / name``, directly below ``base``.
    :raises tracker.exceptions.InvalidInput: a relative ``base``, an empty id
        or one that is not text, or a name longer than 255 bytes.
    """
    if not Path(base).is_absolute():
        raise InvalidInput("base", str(base), "an absolute directory")
    raw = validation.text("connection_id", connection_id, 4096).encode("utf-8")
    name = "".join(
        chr(byte)
        if byte in _UNRESERVED and not (index == 0 and byte == ord("."))
        else f"%{byte:02X}"
        for index, byte in enumerate(raw)
    )
    if len(name) > NAME_MAX:
        raise InvalidInput(
            "connection_id", connection_id, f"its escaped name is longer than {NAME_MAX} bytes"
        )
    return Path(base) / name


# --- mount and umount ---------------------------------------------------------------


def describe_status(
    table: Mapping[int, tuple[str, str]], program: str, returncode: int
) -> tuple[str, str]:
    """Name a ``mount``/``umount`` exit status.

    :returns: ``(code, message)`` from ``table``; for a status that is several
        bits ORed, the entry of its highest known bit; ``KILLED`` for a signal;
        ``<PROGRAM>_ERROR`` otherwise.
    :raises: nothing.
    """
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return "KILLED", f"{program} was killed by signal {name}"
    known = table.get(returncode)
    if known is not None:
        return known
    for bit in sorted(table, reverse=True):
        if returncode & bit:
            code, meaning = table[bit]
            return code, f"{meaning} (exit status {returncode} has several bits)"
    return (
        f"{program.upper()}_ERROR",
        f"{program} exited with status {returncode}, unknown to tracker",
    )


def _clean(text: str) -> str:
    text = escape_host_text(text[-STDERR_SHOWN:])[0]
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text).strip()


def _nfs_source(value: object) -> str:
    reason = "an NFS export is SERVER:/PATH or [IPV6]:/PATH"
    source = validation.text("source", value, 4096)
    if (
        not source.isprintable()
        or any(c.isspace() for c in source)
        or source.startswith("-")
        or re.fullmatch(r"(?:\[[^\]]+\]|[^:\[\]/]+):/.*", source) is None
    ):
        raise InvalidInput("source", value, reason)
    return source


def _mount_point(value: object) -> str:
    if not isinstance(value, str | os.PathLike):
        raise InvalidInput("mount_point", value, "a path")
    text = validation.text("mount_point", os.fspath(value), 4096)
    normal = os.path.normpath(text)
    if not normal.startswith("/") or normal == "/" or not normal.isprintable():
        raise InvalidInput("mount_point", value, "an absolute path below /, printable")
    return normal


def _options(options: Sequence[tuple[str, str]]) -> str:
    parts = []
    for item in options:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise InvalidInput("options", item, "(name, value) pairs")
        name, value = item
        name = validation.text("option name", name, 255)
        value = validation.text("option value", value, 4096, allow_empty=True)
        if re.fullmatch(r"[A-Za-z0-9_.-]+", name) is None:
            raise InvalidInput("option name", name, "letters, digits, '_', '.' and '-'")
        if any(c in ",=" or c.isspace() or not c.isprintable() for c in value):
            raise InvalidInput("option value", value, "no ',', '=', spaces or control characters")
        parts.append(f"{name}={value}" if value else name)
    return ",".join(parts)


def _normal_source(source: str) -> str:
    server, sep, path = source.rpartition(":/")
    if not sep:
        return source
    path = "/" + path
    while "//" in path:
        path = path.replace("//", "/")
    if len(path) > 1:
        path = path.rstrip("/")
    if server.startswith("[") and server.endswith("]"):
        with contextlib.suppress(ValueError):
            server = f"[{ipaddress.IPv6Address(server[1:-1])}]"
    return f"{server.lower()}:{path}"


class Mounter:
    """Mounts NFS exports and unmounts them with ``mount``/``umount``.

    :param executor: runs the commands.
    :param timeout: seconds before one command is killed (``TIMEOUT``).
    :param root: where the mount table is read (``<root>/proc/self/mountinfo``).
    """

    def __init__(
        self, executor: CommandExecutor, *, timeout: float = 120.0, root: Path = PRODUCTION_ROOT
    ) -> None:
        self._executor = executor
        self._timeout = timeout
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Mounter(root={self.root!r}, timeout={self._timeout:g})"

    def mounted(self, mount_point: Path) -> tuple[MountEntry, ...]:
        """:returns: what the mount table has on ``mount_point``, bottom first. Never raises."""
        return mounts_at(read_mountinfo(self.root), mount_point)

    def mount_nfs(
        self, source: str, mount_point: Path, options: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Mount an NFS export (``mount -t nfs [-o ...] SOURCE MOUNT_POINT``).

        Already mounted there is success.

        :param source: ``server:/export`` (``[v6]:/export``).
        :param mount_point: an absolute path; created (mode 0755) when missing.
        :param options: ``(name, value)`` pairs, ``-o name=value,...``; an empty
            value gives the bare name (``("hard", "")`` -> ``hard``).
        :raises tracker.exceptions.InvalidInput: a malformed argument (an option
            value with ``,`` or ``=`` could smuggle in other options).
        :raises tracker.exceptions.ConnectorFailed: ``MOUNT_*`` from the exit
            status, ``MOUNT_POINT_BUSY`` (something else is mounted there),
            ``MOUNT_POINT_INVALID``, ``TIMEOUT``, ``NOT_INSTALLED``.
        """
        export = _nfs_source(source)
        point = _mount_point(mount_point)
        joined = _options(options)
        argv = ("mount", "-t", "nfs", *(("-o", joined) if joined else ()), export, point)
        shown = shlex.join(argv)
        what = f"NFS mount of {export} on {point}"
        present = self.mounted(Path(point))
        if present:
            top = present[-1]
            if top.fstype in NFS_TYPES and _normal_source(top.source) == _normal_source(export):
                logger.info("%s: already mounted", what)
                return
            raise ConnectorFailed(
                "MOUNT_POINT_BUSY",
                f"{what}: {top.fstype} {top.source} is mounted there",
                None,
                shown,
            )
        self._ensure_directory(point, what, shown)
        result = self._run(argv, what, "mount")
        if result.returncode != 0:
            code, meaning = describe_status(MOUNT_ERRORS, "mount", result.returncode)
            raise ConnectorFailed(
                code, f"{what} failed: {meaning}", result.returncode, shown, _clean(result.stderr)
            )
        logger.info("%s: mounted", what)

    def umount(self, mount_point: Path, *, lazy: bool = False, force: bool = False) -> None:
        """Unmount what is mounted on ``mount_point`` (``umount [-f] [-l] MOUNT_POINT``),
        every stacked mount, then remove the directory when it is empty.

        Not mounted (by the mount table) is success, and nothing is run.

        :param lazy: ``-l``: detach now, clean up when no longer busy.
        :param force: ``-f``: force (an unreachable NFS server).
        :raises tracker.exceptions.InvalidInput: a malformed mount point.
        :raises tracker.exceptions.ConnectorFailed: ``UMOUNT_*`` from the exit
            status (while the table still shows the mount), ``TIMEOUT``,
            ``NOT_INSTALLED``.
        """
        point = _mount_point(mount_point)
        argv = ("umount", *(("-f",) if force else ()), *(("-l",) if lazy else ()), point)
        shown = shlex.join(argv)
        what = f"unmount of {point}"
        remaining = len(self.mounted(Path(point)))
        if not remaining:
            logger.info("%s: not mounted, nothing to do", what)
            self._remove_directory(point)
            return
        while remaining:
            result = self._run(argv, what, "umount")
            now = len(self.mounted(Path(point)))
            if now and result.returncode != 0:
                code, meaning = describe_status(UMOUNT_ERRORS, "umount", result.returncode)
                raise ConnectorFailed(
                    code,
                    f"{what} failed: {meaning}",
                    result.returncode,
                    shown,
                    _clean(result.stderr),
                )
            if now >= remaining:
                raise ConnectorFailed(
                    "UMOUNT_FAILED",
                    f"{what} failed: umount succeeded but the mount table still shows the mount",
                    result.returncode,
                    shown,
                )
            if result.returncode != 0:
                logger.info(
                    "%s: umount failed (exit status %d) but the mount is gone",
                    what,
                    result.returncode,
                )
            remaining = now
        logger.info("%s: unmounted", what)
        self._remove_directory(point)

    def _run(self, argv: tuple[str, ...], what: str, program: str) -> CommandResult:
        shown = shlex.join(argv)
        logger.debug("running %s", shown)
        failure: tuple[str, str] | None = None
        try:
            result = self._executor.run(argv, timeout=self._timeout)
        except CommandNotFound:
            failure = ("NOT_INSTALLED", f"{what}: {program} is not installed (install {_PACKAGES})")
        except CommandFailed:
            failure = ("TIMEOUT", f"{what}: {program} did not finish within {self._timeout:g} s")
        except OSError as error:
            failure = (
                "EXEC_FAILED",
                f"{what}: cannot run {program}: {type(error).__name__} ({error.strerror})",
            )
        if failure is not None:
            raise ConnectorFailed(failure[0], failure[1], None, shown)
        return result

    @staticmethod
    def _ensure_directory(point: str, what: str, shown: str) -> None:
        try:
            os.makedirs(os.path.dirname(point), mode=0o755, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(point, 0o755)
            mode = os.lstat(point).st_mode
        except OSError as error:
            raise ConnectorFailed(
                "MOUNT_POINT_INVALID",
                f"{what}: cannot create the mount point: {_errno_text(error)}",
                None,
                shown,
            ) from None
        if not stat.S_ISDIR(mode):
            kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a directory"
            raise ConnectorFailed(
                "MOUNT_POINT_INVALID", f"{what}: the mount point is {kind}", None, shown
            )

    @staticmethod
    def _remove_directory(point: str) -> None:
        try:
            os.rmdir(point)
        except OSError as error:
            if error.errno != errno.ENOENT:
                logger.debug("mount point %s left in place: %s", point, _errno_text(error))
