"""Recording the storage-relevant part of a sysfs tree, and replaying it.

:func:`capture` writes a ``.tar.gz`` holding, with the same layout, exactly
what :class:`~tracker.host.sources.SysfsTreeSource` reads: for every
storage-relevant device its ``uevent``, ``subsystem`` link, wanted text and
binary attributes, link directories, the ``uevent`` files of its ancestors,
its ``sys/class``/``sys/bus``/``sys/block``/``sys/dev/block`` links, its
udev database entry (``run/udev/data/<id>``) when there is one, and, for a
block device, its links in ``dev/disk/by-id`` and ``dev/disk/by-path`` (the
record's ``udev_links``; an absolute target is stored relative). Extracted,
the archive replays to records equal to those of the original tree.

The capture is bounded (``max_bytes`` of payload, ``max_seconds`` of wall
time; exceeding either raises
:class:`~tracker.exceptions.CaptureLimitExceeded` and leaves no file), and
never reads through a link that leaves ``<root>/sys``.

:func:`extract_capture` / :func:`open_capture` unpack an archive defensively:
absolute names, ``..`` components, names too long, members under a file member,
links pointing out of the extraction root, hard links, device nodes and
archives over their bounds are refused with
:class:`~tracker.exceptions.UnsafeCapture`. The bounds (one extended header's
size, the number of members including directories, the total contents) are
checked on the raw tar header blocks *before* anything is unpacked or parsed
into memory: Python's :mod:`tarfile` would read a pax header whole, whatever
its size.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from tracker.exceptions import CaptureLimitExceeded, UnsafeCapture
from tracker.host.sources import SysfsTreeSource, udev_link_entries
from tracker.host.wanted import SUBSYSTEMS, spec_for

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_MEMBERS",
    "DEFAULT_MAX_SECONDS",
    "CaptureSummary",
    "capture",
    "extract_capture",
    "open_capture",
]

#: Default bound on the captured payload (file contents), in bytes.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: Default bound on the capture's wall time, in seconds.
DEFAULT_MAX_SECONDS = 60.0
#: Payload charged per archive member on top of its contents.
_MEMBER_COST = 512


@dataclass(frozen=True, slots=True)
class CaptureSummary:
    """What :func:`capture` wrote.

    :ivar path: the archive.
    :ivar members: number of archive members.
    :ivar payload_bytes: contents plus per-member overhead counted against
        ``max_bytes``.
    :ivar devices: number of storage-relevant devices captured.
    :ivar seconds: time taken.
    """

    path: Path
    members: int
    payload_bytes: int
    devices: int
    seconds: float


class _Recorder:
    def __init__(self, root: Path, max_bytes: int, max_seconds: float) -> None:
        self.root = root
        self.sys = os.path.realpath(root / "sys")
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.deadline = time.monotonic() + max_seconds
        self.payload = 0
        self.files: dict[str, bytes] = {}
        self.links: dict[str, str] = {}
        self.devnames: set[str] = set()

    def _charge(self, size: int) -> None:
        self.payload += size + _MEMBER_COST
        if self.payload > self.max_bytes:
            raise CaptureLimitExceeded(limit="bytes", maximum=self.max_bytes)
        if time.monotonic() > self.deadline:
            raise CaptureLimitExceeded(limit="seconds", maximum=self.max_seconds)

    def _inside(self, absolute: str) -> bool:
        real = os.path.realpath(absolute)
        return real == self.sys or real.startswith(self.sys + "/")

    def file(self, rel: str) -> None:
        """Record ``sys/<rel>`` when it is a regular file inside the tree."""
        name = f"sys{rel}"
        if name in self.files:
            return
        absolute = f"{self.sys}{rel}"
        if not self._inside(absolute):
            return
        try:
            fd = os.open(absolute, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return
            with os.fdopen(os.dup(fd), "rb") as handle:
                data = handle.read(self.max_bytes + 1)
        except OSError:
            return
        finally:
            os.close(fd)
        self._charge(len(data))
        self.files[name] = data

    def link(self, rel: str) -> str | None:
        """Record the symlink ``sys/<rel>`` when it resolves inside the tree."""
        name = f"sys{rel}"
        absolute = f"{self.sys}{rel}"
        try:
            target = os.readlink(absolute)
        except OSError:
            return None
        resolved = os.path.normpath(os.path.join(os.path.dirname(rel), target))
        if os.path.isabs(target) or not self._inside(f"{self.sys}{resolved}"):
            return None
        if name not in self.links:
            self._charge(len(target))
            self.links[name] = target
        return resolved

    def udev_db(self, entry: str) -> None:
        absolute = self.root / "run" / "udev" / "data" / entry
        try:
            fd = os.open(absolute, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return
            with os.fdopen(os.dup(fd), "rb") as handle:
                data = handle.read(self.max_bytes + 1)
        except OSError:
            return
        finally:
            os.close(fd)
        name = f"run/udev/data/{entry}"
        if name not in self.files:
            self._charge(len(data))
            self.files[name] = data

    def udev_links(self) -> None:
        """Record the ``dev/disk/by-id|by-path`` links to the recorded block devices."""
        for link, node in udev_link_entries(self.root / "dev"):
            if node not in self.devnames:
                continue
            relative = os.path.relpath(node, os.path.dirname(link))
            self._charge(len(relative))
            self.links[link.lstrip("/")] = relative


def _record_device(recorder: _Recorder, sys_path: str, subsystem: str) -> bool:
    uevent = f"{sys_path}/uevent"
    recorder.file(uevent)
    if f"sys{uevent}" not in recorder.files:
        return False
    resolved = recorder.link(f"{sys_path}/subsystem")
    if resolved is None or os.path.basename(resolved) != subsystem:
        return False
    properties = dict(
        line.partition("=")[::2]
        for line in recorder.files[f"sys{uevent}"].decode("utf-8", "replace").splitlines()
    )
    sys_name = sys_path.rsplit("/", 1)[1]
    spec = spec_for(subsystem, properties.get("DEVTYPE"), sys_name)
    if spec is None:
        return False
    for name in (*spec.attributes, *spec.binary_attributes):
        recorder.file(f"{sys_path}/{name}")
    recorder.link(f"{sys_path}/device")
    for link_dir in spec.link_dirs:
        try:
            entries = list(os.scandir(f"{recorder.sys}{sys_path}/{link_dir}"))
        except OSError:
            continue
        for entry in entries:
            if entry.is_symlink():
                recorder.link(f"{sys_path}/{link_dir}/{entry.name}")
    ancestor = sys_path
    while True:
        ancestor = ancestor.rsplit("/", 1)[0]
        if not ancestor.startswith("/devices/"):
            break
        recorder.file(f"{ancestor}/uevent")
    major, minor = properties.get("MAJOR"), properties.get("MINOR")
    if major is not None and minor is not None:
        kind = "block" if subsystem == "block" else "char"
        recorder.link(f"/dev/{kind}/{major}:{minor}")
        if subsystem == "block":
            recorder.link(f"/block/{sys_name}")
            devname = properties.get("DEVNAME")
            if devname:
                recorder.devnames.add(devname if devname.startswith("/") else f"/dev/{devname}")
        recorder.udev_db(f"{kind[0]}{major}:{minor}")
    else:
        recorder.udev_db(f"+{subsystem}:{sys_name}")
    return True


def capture(
    source_root: Path,
    out: Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> CaptureSummary:
    """Record the storage-relevant part of the sysfs tree below ``source_root``.

    :param source_root: the directory holding ``sys/``
        (:data:`tracker.host.sources.PRODUCTION_ROOT`, ``Path("/")``, on a
        live host; a testbed directory in tests).
    :param out: the ``.tar.gz`` to write (replaced atomically).
    :param max_bytes: bound on the payload read.
    :param max_seconds: bound on the time spent.
    :returns: a :class:`CaptureSummary`.
    :raises tracker.exceptions.SysfsRootMissing: when there is no ``sys/``.
    :raises tracker.exceptions.CaptureLimitExceeded: when a bound is hit (no
        archive is left behind).
    :raises OSError: when the archive cannot be written.
    """
    started = time.monotonic()
    SysfsTreeSource(source_root)  # validates the root
    recorder = _Recorder(Path(source_root), max_bytes, max_seconds)
    devices = 0
    for subsystem in SUBSYSTEMS:
        for base in (f"/bus/{subsystem}/devices", f"/class/{subsystem}"):
            try:
                entries = list(os.scandir(f"{recorder.sys}{base}"))
            except OSError:
                continue
            for entry in entries:
                if not entry.is_symlink():
                    continue
                resolved = recorder.link(f"{base}/{entry.name}")
                if resolved is not None and resolved.startswith("/devices/"):
                    devices += _record_device(recorder, resolved, subsystem)
    recorder.udev_links()
    out = Path(out)
    fd, temporary = tempfile.mkstemp(prefix=".capture-", suffix=".tar.gz", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
            mtime = int(time.time())
            for name in sorted(recorder.links):
                info = tarfile.TarInfo(name)
                info.type = tarfile.SYMTYPE
                info.linkname = recorder.links[name]
                info.mtime = mtime
                archive.addfile(info)
            for name in sorted(recorder.files):
                data = recorder.files[name]
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mode = 0o444
                info.mtime = mtime
                archive.addfile(info, io.BytesIO(data))
        if time.monotonic() > recorder.deadline:
            raise CaptureLimitExceeded(limit="seconds", maximum=max_seconds)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return CaptureSummary(
        path=out,
        members=len(recorder.files) + len(recorder.links),
        payload_bytes=recorder.payload,
        devices=devices,
        seconds=time.monotonic() - started,
    )


def _check_name(name: str) -> str:
    if not name or name.startswith("/") or "\\" in name or "\0" in name:
        raise UnsafeCapture(member=name, reason="absolute or malformed name")
    if len(name.encode("utf-8", "surrogateescape")) > _MAX_NAME or any(
        len(part.encode("utf-8", "surrogateescape")) > _MAX_COMPONENT for part in name.split("/")
    ):
        raise UnsafeCapture(
            member=name[:200],
            reason=f"member name too long (over {_MAX_NAME} bytes, or a component "
            f"over {_MAX_COMPONENT})",
        )
    if ".." in name.split("/"):
        raise UnsafeCapture(member=name, reason="'..' in name")
    normalized = os.path.normpath(name)
    if normalized.startswith("..") or normalized == ".":
        raise UnsafeCapture(member=name, reason="name leaves the extraction root")
    return normalized


#: Default bound on one extended header (pax ``x``/``g``, GNU ``L``/``K``), in bytes.
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
#: Default bound on the number of members (directories and links included).
DEFAULT_MAX_MEMBERS = 500_000
#: The longest member name, and the longest component of one (Linux's limits).
_MAX_NAME = 4095
_MAX_COMPONENT = 255
_BLOCK = 512
_EXTENDED = frozenset((b"x", b"g", b"L", b"K", b"X"))


def _header_number(field: bytes) -> int:
    """The number in a tar header field: octal text, or GNU base-256."""
    if field and field[0] & 0x80:
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise UnsafeCapture(member="(header)", reason="malformed size field") from None


def _skip(stream: io.BufferedIOBase | gzip.GzipFile, size: int) -> None:
    while size > 0:
        chunk = stream.read(min(size, 1024 * 1024))
        if not chunk:
            return
        size -= len(chunk)


def _check_headers(
    stream: io.BufferedIOBase | gzip.GzipFile,
    *,
    max_bytes: int,
    max_members: int,
    max_header_bytes: int,
) -> None:
    """Walk the raw 512-byte header blocks and refuse an archive over its bounds
    before anything is parsed into memory or written to disk."""
    members = 0
    total = 0
    while True:
        block = stream.read(_BLOCK)
        if len(block) < _BLOCK or block == bytes(_BLOCK):
            return  # the end (tarfile reports a truncated archive itself)
        raw_name = block[345:500].split(b"\0", 1)[0] + b"/" + block[:100].split(b"\0", 1)[0]
        name = raw_name.lstrip(b"/").decode("utf-8", "backslashreplace") or "(no name)"
        size = _header_number(block[124:136])
        typeflag = block[156:157]
        padded = -(-size // _BLOCK) * _BLOCK
        if typeflag in _EXTENDED:
            if size > max_header_bytes:
                raise UnsafeCapture(
                    member=name,
                    reason=f"extended header of {size} bytes, over the bound of {max_header_bytes}",
                )
            _skip(stream, padded)
            continue
        members += 1
        if members > max_members:
            raise UnsafeCapture(member=name, reason=f"more than {max_members} members")
        total += size
        if total > max_bytes:
            raise UnsafeCapture(member=name, reason=f"over {max_bytes} bytes")
        _skip(stream, padded)


def extract_capture(
    archive: Path,
    dest: Path,
    *,
    max_bytes: int = 4 * DEFAULT_MAX_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
) -> Path:
    """Unpack a capture into ``dest``, refusing anything that could escape it.

    The archive is read twice from one open file: first its raw header blocks
    only, to refuse an archive over its bounds (an extended header over
    ``max_header_bytes``, more than ``max_members`` members, more than
    ``max_bytes`` of contents) before anything is held in memory or written;
    then member by member, refusing unsafe members.

    :param archive: the ``.tar.gz`` written by :func:`capture`.
    :param dest: an existing, empty directory.
    :param max_bytes: bound on the unpacked size.
    :param max_members: bound on the number of members, directories included.
    :param max_header_bytes: bound on one extended (pax or GNU long name) header.
    :returns: ``dest``.
    :raises tracker.exceptions.UnsafeCapture: for an archive over its bounds, an
        absolute name, ``..``, a name too long, a duplicate member, a member under
        a file member, a link leaving ``dest``, a member that is not a file,
        directory or symlink, or a path through a link.
    :raises tarfile.TarError: when the archive is not a readable tarball.
    """
    root = os.path.realpath(dest)
    total = 0
    count = 0
    links: list[tuple[str, str]] = []
    with open(archive, "rb") as raw:
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                _check_headers(
                    stream,
                    max_bytes=max_bytes,
                    max_members=max_members,
                    max_header_bytes=max_header_bytes,
                )
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:
            raise tarfile.ReadError(f"not a gzip-compressed tar archive: {error}") from error
        raw.seek(0)
        with tarfile.open(fileobj=raw, mode="r:gz") as tar:
            for member in tar:
                # The checks again: the file may have changed since the first pass.
                count += 1
                if count > max_members:
                    raise UnsafeCapture(
                        member=member.name, reason=f"more than {max_members} members"
                    )
                name = _check_name(member.name)
                target = os.path.join(root, name)
                _refuse_links_on_the_way(root, name, member.name)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                if os.path.lexists(target) and not (member.isdir() and os.path.isdir(target)):
                    raise UnsafeCapture(member=member.name, reason="duplicate member")
                if member.isdir():
                    os.makedirs(target, exist_ok=True)
                elif member.issym():
                    link = member.linkname
                    resolved = os.path.normpath(os.path.join(os.path.dirname(name), link))
                    if os.path.isabs(link) or resolved == ".." or resolved.startswith("../"):
                        raise UnsafeCapture(
                            member=member.name, reason=f"link to {link!r} leaves root"
                        )
                    os.symlink(link, target)
                    links.append((member.name, target))
                elif member.isreg():
                    total += member.size
                    if total > max_bytes:
                        raise UnsafeCapture(member=member.name, reason=f"over {max_bytes} bytes")
                    source = tar.extractfile(member)
                    if source is None:
                        raise UnsafeCapture(member=member.name, reason="unreadable member")
                    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                    with source, os.fdopen(os.open(target, flags, 0o644), "wb") as sink:
                        shutil.copyfileobj(source, sink)
                else:
                    raise UnsafeCapture(
                        member=member.name, reason="not a file, directory or symlink"
                    )
    for member_name, path in links:
        real = os.path.realpath(path)
        if real != root and not real.startswith(root + "/"):
            os.unlink(path)
            raise UnsafeCapture(member=member_name, reason="link resolves outside the root")
    return Path(dest)


def _refuse_links_on_the_way(root: str, name: str, member: str) -> None:
    current = root
    parts = name.split("/")[:-1]
    for index, part in enumerate(parts):
        current = os.path.join(current, part)
        if os.path.islink(current):
            raise UnsafeCapture(member=member, reason="path goes through a link")
        if os.path.lexists(current) and not os.path.isdir(current):
            above = "/".join(parts[: index + 1])
            raise UnsafeCapture(member=member, reason=f"it is under the file member {above!r}")


def open_capture(archive: Path, dest: Path | None = None) -> SysfsTreeSource:
    """Unpack a capture and read it with a :class:`SysfsTreeSource`.

    :param archive: the ``.tar.gz`` written by :func:`capture`.
    :param dest: where to unpack; a new temporary directory when ``None``
        (the caller removes ``source.root`` when done).
    :returns: a source over the unpacked tree.
    :raises tracker.exceptions.UnsafeCapture: see :func:`extract_capture`.
    :raises tracker.exceptions.SysfsRootMissing: when the archive holds no ``sys/``.
    :raises tarfile.TarError: when the archive is not a readable tarball.
    """
    directory = Path(tempfile.mkdtemp(prefix="capture-")) if dest is None else Path(dest)
    extract_capture(archive, directory)
    return SysfsTreeSource(directory)
