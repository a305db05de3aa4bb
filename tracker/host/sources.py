"""Device sources: where :class:`~tracker.host.records.DeviceRecord` objects come from.

Two sources implement the one :class:`DeviceSource` interface and yield
*equal* records for the same sysfs tree:

* :class:`PyudevSource` asks libudev (through pyudev) on the running host.
  Under umockdev's preload library (``LD_PRELOAD=libumockdev-preload.so.0
  UMOCKDEV_DIR=<testbed>``) libudev sees a testbed instead of ``/sys``.
* :class:`SysfsTreeSource` walks a sysfs tree below any root directory with
  ``os.scandir`` and plain reads, without libudev: a live host (root ``/``),
  a testbed directory, or an extracted capture.

What a record holds (the rules both sources follow):

* **Which devices.** Those of :data:`tracker.host.wanted.SUBSYSTEMS` that
  :func:`tracker.host.wanted.spec_for` accepts. A device is found the way
  libudev finds it: through ``sys/bus/<subsystem>/devices/*`` and
  ``sys/class/<subsystem>/*``, keeping entries whose directory has a
  ``uevent`` file and whose ``subsystem`` link names that subsystem.
* **Properties.** What libudev reports, without the keys libudev makes up
  itself (:data:`SYNTHESIZED_PROPERTIES`: ``DEVPATH`` is the record's
  ``sys_path``; ``DEVLINKS``, ``TAGS``, ``CURRENT_TAGS``,
  ``USEC_INITIALIZED`` come from udevd's bookkeeping). That is: every
  ``KEY=VALUE`` line of the device's ``uevent`` file, ``DEVNAME`` made
  absolute (``sda`` -> ``/dev/sda``), ``SUBSYSTEM`` from the ``subsystem``
  link, and then the ``E:`` lines of the udev database entry
  ``run/udev/data/<id>`` below the root, if there is one (on a live host that
  is where ``ID_SERIAL``, ``ID_WWN``, ``DM_NAME`` ... come from).
  umockdev keeps no udev database: it writes *all* of a device's properties,
  ``ID_*`` included, into the ``uevent`` file, and so does
  :class:`tracker.testing.testbed.Testbed`. Hence on a testbed both sources
  see the same properties. (Caveat: the preload does not redirect ``/run``;
  on a machine running udevd, libudev would add the *real* database entry of
  a device with the same number, e.g. ``b8:0``. Compare sources on machines
  without udevd, or on numbers the machine does not use.)
* **Text attributes.** The names :mod:`tracker.host.wanted` lists, decoded as
  libudev does: the bytes up to the first NUL, trailing ``\\n``/``\\r``
  removed, padding kept (``"NETAPP  "``). A missing or unreadable attribute is
  absent from the record. Both sources read them from the attribute file
  (libudev would open a FIFO and wait forever).
* **Binary attributes.** ``vpd_pg80``/``vpd_pg83`` read from the file as
  bytes (libudev would return ``b''``: the pages start with a NUL byte).
* **Hostile files.** Every file is opened with ``O_NONBLOCK | O_NOFOLLOW`` and
  read only when it is a regular file, and at most a bound of bytes is read
  (:data:`TEXT_LIMIT`, :data:`BINARY_LIMIT`, :data:`UDEV_DB_LIMIT`): a FIFO, a
  device node, a symbolic link or an oversize file is left out of the record,
  and the record's ``problems`` say why, so discovery warns about that device
  and goes on.
* **Text is always valid UTF-8.** Every text value (attributes, properties,
  link targets, paths) is decoded in one place, :func:`decode_host_text`:
  bytes that are not UTF-8 become backslash escapes (``b"\\xa9"`` ->
  ``"\\\\xa9"``, the way udev escapes unsafe bytes) and a NUL byte in a property
  becomes ``"\\\\x00"``; each such value is named in the record's ``problems``.
* **Parent.** The nearest ancestor directory below ``/devices/`` that has a
  ``uevent`` file (a device for libudev even without a subsystem, such as
  ``rport-0:0-0`` or ``session1``), else ``None``.
* **Links.** Each symlink in the listed link directories (``slaves/sda``)
  mapped to the normalized ``sys_path`` it points to; links that do not
  point below ``/devices/`` are left out.
* **udev links.** For a block device, its ``/dev/disk/by-id/*`` and
  ``/dev/disk/by-path/*`` links (:data:`UDEV_LINK_DIRS`), sorted: from udev's
  ``DEVLINKS`` property when there is one (for the sysfs source: a
  ``DEVLINKS`` line of the ``uevent`` file or the ``S:`` lines of the udev
  database entry), else the symlinks of ``<root>/dev/disk/by-id`` and
  ``<root>/dev/disk/by-path`` whose target resolves to the device's
  ``DEVNAME``. (The directories are listed once, and again only when one of
  them changed.) Other links (``by-uuid``, ``by-label``, ``/dev/mapper``) are
  left out.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tracker.exceptions import NotASysfsTree, SysfsRootMissing
from tracker.host.records import DeviceRecord, FrozenBytesMap, FrozenMap
from tracker.host.wanted import SUBSYSTEMS, WantedSpec, spec_for

if TYPE_CHECKING:
    import pyudev

__all__ = [
    "BINARY_LIMIT",
    "PRODUCTION_ROOT",
    "SYNTHESIZED_PROPERTIES",
    "TEXT_LIMIT",
    "UDEV_DB_LIMIT",
    "UDEV_LINK_DIRS",
    "DeviceSource",
    "PyudevSource",
    "SysfsTreeSource",
    "decode_host_text",
    "decode_text_attribute",
    "escape_host_text",
    "listing_dirs",
    "resolve_listed",
    "udev_link_entries",
]

#: The root of the live host's file system: its sysfs is ``/sys``.
PRODUCTION_ROOT = Path("/")

#: Properties libudev computes itself rather than reading them from the
#: kernel or udev's ``E:`` database lines; records leave them out.
SYNTHESIZED_PROPERTIES: frozenset[str] = frozenset(
    {"DEVPATH", "DEVLINKS", "TAGS", "CURRENT_TAGS", "USEC_INITIALIZED", "ACTION", "SEQNUM"}
)

_DEVICES_PREFIX = "/devices/"

#: The most bytes read from a text attribute, a ``uevent`` file or a link
#: target (sysfs text attributes hold at most one page).
TEXT_LIMIT = 64 * 1024
#: The most bytes read from a binary attribute: the largest VPD page
#: (4-byte header + a 16-bit page length).
BINARY_LIMIT = 4 + 0xFFFF
#: The most bytes read from one udev database entry.
UDEV_DB_LIMIT = 1024 * 1024
#: The ``/dev`` directories whose links to a block device a record carries.
UDEV_LINK_DIRS: tuple[str, ...] = ("disk/by-id", "disk/by-path")
_UDEV_LINK_PREFIXES = tuple(f"/dev/{directory}/" for directory in UDEV_LINK_DIRS)


@runtime_checkable
class DeviceSource(Protocol):
    """Something that lists the storage-relevant devices of a host."""

    def scan(self) -> tuple[DeviceRecord, ...]:
        """List every storage-relevant device.

        :returns: the records, sorted by ``sys_path``.
        :raises tracker.exceptions.HostError: when the host cannot be read.
        """
        ...

    def lookup(self, sys_path: str) -> DeviceRecord | None:
        """Read one device, whether or not it is storage-relevant.

        :param sys_path: the device path relative to the sysfs root
            (``/devices/...``).
        :returns: its record, or ``None`` when there is no device with a
            subsystem at that path (e.g. it was just unplugged).
        :raises tracker.exceptions.HostError: when the host cannot be read.
        """
        ...


def decode_host_text(raw: bytes) -> tuple[str, bool]:
    """Decode bytes read from the host: the one place host text becomes ``str``.

    :param raw: the bytes.
    :returns: ``(text, escaped)``: the UTF-8 text, where bytes that are not
        UTF-8 are replaced by backslash escapes (``b"\\xa9"`` ->
        ``"\\\\xa9"``), and whether any were.
    :raises: nothing.
    """
    if raw.isascii():
        return raw.decode("ascii"), False
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace"), True


def escape_host_text(text: str) -> tuple[str, bool]:
    """Make a ``str`` the OS handed back (a file name, a link target) valid UTF-8.

    Python gives undecodable bytes of names as lone surrogates
    (``"\\udca9"``), which no database can store; they become the escapes of
    :func:`decode_host_text`, as does a NUL character (``"\\\\x00"``).

    :returns: ``(text, escaped)``.
    :raises: nothing.
    """
    if text.isascii() and "\0" not in text:
        return text, False
    escaped = False
    if "\0" in text:
        text, escaped = text.replace("\0", "\\x00"), True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace").decode("ascii"), True
        return decode_host_text(raw)[0], True
    return text, escaped


def decode_text_attribute(raw: bytes) -> str:
    """Decode a text attribute as libudev presents it, as valid UTF-8.

    :param raw: the attribute file's bytes.
    :returns: the text up to the first NUL byte, trailing newlines and
        carriage returns removed, other padding kept; bytes that are not
        UTF-8 become backslash escapes (see :func:`decode_host_text`).
    :raises: nothing.
    """
    return _attribute_text(raw)[0]


def _attribute_text(raw: bytes) -> tuple[str, bool]:
    nul = raw.find(b"\0")
    if nul >= 0:
        raw = raw[:nul]
    return decode_host_text(raw.rstrip(b"\n\r"))


_ESCAPED = "bytes that are not UTF-8 were escaped"


class _Refused(str):
    """Why a present file was not read (returned instead of its bytes)."""

    __slots__ = ()


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def _read_bytes(
    path: str, dir_fd: int | None = None, limit: int = TEXT_LIMIT
) -> bytes | _Refused | None:
    """Read a regular file, at most ``limit`` bytes; ``None`` when absent or unreadable,
    a :class:`_Refused` reason when it is there but not read (not a regular file,
    a link, too big)."""
    # os.open/os.read rather than open(): no buffered file object per read,
    # which is most of the cost of a scan that reads ~10 small files a device;
    # with ``dir_fd`` the kernel resolves a one-component name, not a deep path.
    # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: an
    # attribute that is a link (to /dev/zero, to a huge file) is not followed.
    try:
        fd = os.open(
            path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW, dir_fd=dir_fd
        )
    except OSError as error:
        if error.errno == errno.ELOOP:
            return _Refused("a symbolic link, not a regular file")
        return None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
            return _Refused(f"{kind}, not a regular file")
        data = os.read(fd, limit + 1)
        if 0 < len(data) <= limit:
            chunks = [data]
            size = len(data)
            while size <= limit and (chunk := os.read(fd, limit + 1 - size)):
                chunks.append(chunk)
                size += len(chunk)
            data = b"".join(chunks) if len(chunks) > 1 else data
        if len(data) > limit:
            return _Refused(f"larger than {limit} bytes")
        return data
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_binary_attributes(
    device_dir: str, names: Iterable[str], problems: dict[str, str], dir_fd: int | None = None
) -> FrozenBytesMap:
    pairs = []
    for name in names:
        raw = _read_bytes(
            name if dir_fd is not None else f"{device_dir}/{name}", dir_fd, BINARY_LIMIT
        )
        if isinstance(raw, _Refused):
            problems[name] = str(raw)
        elif raw is not None:
            pairs.append((name, raw))
    return FrozenBytesMap(pairs)


def _read_text_attributes(
    device_dir: str, names: Iterable[str], problems: dict[str, str], dir_fd: int | None = None
) -> dict[str, str]:
    result: dict[str, str] = {}
    for name in names:
        raw = _read_bytes(name if dir_fd is not None else f"{device_dir}/{name}", dir_fd)
        if isinstance(raw, _Refused):
            problems[name] = str(raw)
        elif raw is not None:
            text, escaped = _attribute_text(raw)
            if escaped:
                problems[name] = _ESCAPED
            result[name] = text
    return result


def _read_links(device_dir: str, sys_path: str, link_dirs: Iterable[str]) -> FrozenMap:
    pairs = []
    for link_dir in link_dirs:
        try:
            entries = list(os.scandir(f"{device_dir}/{link_dir}"))
        except OSError:
            continue
        for entry in entries:
            if not entry.is_symlink():
                continue
            try:
                target = os.readlink(entry.path)
            except OSError:
                continue
            resolved = (
                os.path.normpath(target)
                if target.startswith("/")
                else os.path.normpath(f"{sys_path}/{link_dir}/{target}")
            )
            if resolved.startswith(_DEVICES_PREFIX):
                pairs.append((f"{link_dir}/{entry.name}", resolved))
    return FrozenMap(pairs)


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


#: A directory modified less than this before it was listed may have changed
#: again within the same tick of the file system's (coarse) timestamps.
_RACY_NS = 100_000_000


def udev_link_entries(dev_dir: str | Path) -> Iterator[tuple[str, str]]:
    """The ``disk/by-id`` and ``disk/by-path`` symlinks below a ``dev`` directory.

    :param dev_dir: the host's ``/dev`` (``<root>/dev`` for a tree).
    :returns: an iterator of (the link as the host names it,
        ``/dev/disk/by-id/NAME``; the device node it resolves to, ``/dev/sdb``).
        Entries that are not symlinks or cannot be read are passed over.
    """
    for directory in UDEV_LINK_DIRS:
        try:
            entries = list(os.scandir(f"{dev_dir}/{directory}"))
        except OSError:
            continue
        for entry in entries:
            try:
                if not entry.is_symlink():
                    continue
                target = os.readlink(entry.path)
            except OSError:
                continue
            yield (
                f"/dev/{directory}/{entry.name}",
                os.path.normpath(os.path.join(f"/dev/{directory}", target)),
            )


class _UdevLinkIndex:
    """The ``disk/by-id`` and ``disk/by-path`` links below a ``dev`` directory, by
    the device node they resolve to (``/dev/sdb``).

    The listing is kept while neither directory's mtime changed, unless a
    directory was modified so shortly before the listing that a later change
    could carry the same (coarse) timestamp: then it is listed every time.
    """

    def __init__(self, dev_dir: str) -> None:
        self._dev = dev_dir
        self._stamp: tuple[int | None, ...] | None = None
        self._listed_ns = 0
        self._by_node: dict[str, tuple[str, ...]] = {}

    def refresh(self) -> None:
        """List the directories again if one of them may have changed since."""
        stamp = tuple(_mtime(f"{self._dev}/{directory}") for directory in UDEV_LINK_DIRS)
        if stamp == self._stamp and all(
            mtime is None or mtime < self._listed_ns - _RACY_NS for mtime in stamp
        ):
            return
        self._listed_ns = time.time_ns()
        by_node: dict[str, list[str]] = defaultdict(list)
        for link, node in udev_link_entries(self._dev):
            by_node[node].append(link)
        self._by_node = {node: tuple(links) for node, links in by_node.items()}
        self._stamp = stamp

    def links(self, devname: str) -> tuple[str, ...]:
        return self._by_node.get(devname, ())


def _udev_links(
    properties: Mapping[str, str], index: _UdevLinkIndex | None, problems: dict[str, str]
) -> tuple[str, ...]:
    devlinks = properties.get("DEVLINKS")
    if devlinks is not None:
        found: Iterable[str] = devlinks.split()
    else:
        devname = properties.get("DEVNAME")
        if devname is None or index is None:
            return ()
        found = index.links(devname)
    links = set()
    for link in found:
        if link.startswith(_UDEV_LINK_PREFIXES):
            clean, escaped = escape_host_text(link)
            if escaped:
                problems.setdefault("udev link", _ESCAPED)
            links.add(clean)
    return tuple(sorted(links))


def _nearest_parent(sys_path: str, has_uevent: Callable[[str], bool]) -> str | None:
    path = sys_path
    while True:
        path = path.rsplit("/", 1)[0]
        if not path.startswith(_DEVICES_PREFIX):
            return None
        if has_uevent(path):
            return path


def _db_id(subsystem: str, sys_name: str, uevent: Mapping[str, str]) -> str:
    major, minor = uevent.get("MAJOR"), uevent.get("MINOR")
    if major is not None and minor is not None:
        kind = "b" if subsystem == "block" else "c"
        return f"{kind}{major}:{minor}"
    return f"+{subsystem}:{sys_name}"


def _parse_uevent(raw: bytes) -> dict[str, str]:
    result: dict[str, str] = {}
    for line in raw.decode("utf-8", "surrogateescape").splitlines():
        key, sep, value = line.partition("=")
        if sep and key:
            result[key] = value
    return result


def listing_dirs(subsystem: str) -> tuple[str, str]:
    """Name the directories listing a subsystem's devices.

    :returns: ``/bus/<s>/devices`` and ``/class/<s>``, relative to ``sys/``.
        Never raises.
    """
    return (f"/bus/{subsystem}/devices", f"/class/{subsystem}")


def resolve_listed(base: str, entry: os.DirEntry[str]) -> str | None:
    """The device path an entry of a listing directory stands for.

    :param base: the listing directory, relative to ``sys/`` (:func:`listing_dirs`).
    :param entry: one of its entries (a link to the device, or the device itself).
    :returns: ``/devices/...``, or ``None`` when the entry is unreadable or
        points outside ``/devices`` (what a scan skips). Never raises.
    """
    try:
        target = os.readlink(entry.path) if entry.is_symlink() else entry.name
    except OSError:
        return None
    resolved = os.path.normpath(os.path.join(base, target))
    return resolved if resolved.startswith(_DEVICES_PREFIX) else None


class SysfsTreeSource:
    """Reads a sysfs tree below a root directory with plain file reads.

    :param root: the directory that holds ``sys/`` (``Path("/")`` on a live
        host, which is :data:`PRODUCTION_ROOT`; a testbed or capture
        directory in tests). The udev database, if any, is read from
        ``<root>/run/udev/data``.
    :raises tracker.exceptions.SysfsRootMissing: when ``<root>/sys`` is not a
        directory.
    :raises tracker.exceptions.NotASysfsTree: when ``<root>/sys`` has neither
        ``bus/`` nor ``class/`` (a partial copy: it would scan as an empty host).
    """

    def __init__(self, root: Path = PRODUCTION_ROOT) -> None:
        self.root = Path(root)
        self._sys = os.fspath(self.root / "sys")
        self._udev_db = os.fspath(self.root / "run" / "udev" / "data")
        if not os.path.isdir(self._sys):
            raise SysfsRootMissing(root=os.fspath(self.root))
        # Devices are found only through bus/ and class/: without both, a scan
        # would report an empty host where it read nothing at all.
        if not (os.path.isdir(f"{self._sys}/bus") or os.path.isdir(f"{self._sys}/class")):
            raise NotASysfsTree(root=os.fspath(self.root))
        self._uevent_seen: dict[str, bool] = {}
        self._has_udev_db = True
        self._udev_links = _UdevLinkIndex(os.fspath(self.root / "dev"))

    def __repr__(self) -> str:
        return f"SysfsTreeSource({self.root!r})"

    def _has_uevent(self, sys_path: str) -> bool:
        # Memoised within one scan: every LUN asks about the same few ancestors.
        seen = self._uevent_seen.get(sys_path)
        if seen is None:
            seen = self._uevent_seen[sys_path] = os.path.isfile(f"{self._sys}{sys_path}/uevent")
        return seen

    def _subsystem(self, sys_path: str) -> str | None:
        try:
            return os.path.basename(os.readlink(f"{self._sys}{sys_path}/subsystem"))
        except OSError:
            return None

    def _candidates(self, subsystem: str) -> Iterable[str]:
        for base in listing_dirs(subsystem):
            try:
                entries = list(os.scandir(f"{self._sys}{base}"))
            except OSError:
                continue
            for entry in entries:
                resolved = resolve_listed(base, entry)
                if resolved is not None:
                    yield resolved

    def scan(self) -> tuple[DeviceRecord, ...]:
        """List every storage-relevant device of the tree.

        :returns: the records, sorted by ``sys_path``.
        :raises: nothing; unreadable devices are skipped (they may vanish
            while the tree is read).
        """
        records: dict[str, DeviceRecord] = {}
        self._has_udev_db = os.path.isdir(self._udev_db)
        self._udev_links.refresh()
        candidates = [
            (subsystem, sys_path)
            for subsystem in SUBSYSTEMS
            for sys_path in self._candidates(subsystem)
        ]
        # Every listed device is a device; a parent walk asks about them first.
        self._uevent_seen = {sys_path: True for _subsystem, sys_path in candidates}
        for subsystem, sys_path in candidates:
            if sys_path in records:
                continue
            record = self._read(sys_path, expected_subsystem=subsystem, wanted_only=True)
            if record is not None:
                records[sys_path] = record
        return tuple(records[key] for key in sorted(records))

    def lookup(self, sys_path: str) -> DeviceRecord | None:
        """Read one device of the tree.

        :param sys_path: path relative to the sysfs root (``/devices/...``).
        :returns: its record (with the attributes of its
            :mod:`~tracker.host.wanted` entry, none if it has no entry), or
            ``None`` when no device with a subsystem is there.
        :raises: nothing.
        """
        normalized = os.path.normpath(sys_path)
        if not normalized.startswith(_DEVICES_PREFIX):
            return None
        self._udev_links.refresh()
        return self._read(normalized, expected_subsystem=None, wanted_only=False)

    def _read(
        self, sys_path: str, *, expected_subsystem: str | None, wanted_only: bool
    ) -> DeviceRecord | None:
        device_dir = f"{self._sys}{sys_path}"
        try:
            dir_fd = os.open(device_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return self._read_device(
                sys_path,
                device_dir,
                dir_fd,
                expected_subsystem=expected_subsystem,
                wanted_only=wanted_only,
            )
        finally:
            os.close(dir_fd)

    def _read_device(
        self,
        sys_path: str,
        device_dir: str,
        dir_fd: int,
        *,
        expected_subsystem: str | None,
        wanted_only: bool,
    ) -> DeviceRecord | None:
        raw_uevent = _read_bytes("uevent", dir_fd)
        if raw_uevent is None:
            return None
        # A device listed under class/<X> or bus/<X>/devices is of subsystem X:
        # only a lookup by path needs the ``subsystem`` link read.
        subsystem = expected_subsystem or self._subsystem(sys_path)
        if subsystem is None:
            return None
        problems: dict[str, str] = {}
        if isinstance(raw_uevent, _Refused):
            # Not a device one can read; keep it, with the reason, so that
            # discovery warns about it rather than losing it without a word.
            problems["uevent"] = str(raw_uevent)
            return _make_record(
                sys_path=sys_path,
                subsystem=subsystem,
                devtype=None,
                properties={"SUBSYSTEM": subsystem},
                attributes={},
                device_dir=device_dir,
                spec=None,
                parent=_nearest_parent(sys_path, self._has_uevent),
                problems=problems,
            )
        uevent = _parse_uevent(raw_uevent)
        sys_name = sys_path.rsplit("/", 1)[1]
        devtype = uevent.get("DEVTYPE")
        spec = spec_for(subsystem, devtype, sys_name)
        if spec is None and wanted_only:
            return None
        properties = dict(uevent)
        properties["SUBSYSTEM"] = subsystem
        devname = properties.get("DEVNAME")
        if devname is not None and not devname.startswith("/"):
            properties["DEVNAME"] = f"/dev/{devname}"
        raw_db = (
            _read_bytes(
                f"{self._udev_db}/{_db_id(subsystem, sys_name, uevent)}", limit=UDEV_DB_LIMIT
            )
            if self._has_udev_db
            else None
        )
        if isinstance(raw_db, _Refused):
            problems["udev database entry"] = str(raw_db)
        elif raw_db is not None:
            db_links = []
            for line in raw_db.decode("utf-8", "surrogateescape").splitlines():
                if line.startswith("E:"):
                    key, sep, value = line[2:].partition("=")
                    if sep and key:
                        properties[key] = value
                elif line.startswith("S:") and len(line) > 2:
                    db_links.append(f"/dev/{line[2:]}")
            if db_links and "DEVLINKS" not in properties:
                properties["DEVLINKS"] = " ".join(db_links)
        return _make_record(
            sys_path=sys_path,
            subsystem=subsystem,
            devtype=devtype,
            properties=properties,
            attributes=_read_text_attributes(
                device_dir, spec.attributes if spec else (), problems, dir_fd
            ),
            device_dir=device_dir,
            spec=spec,
            parent=_nearest_parent(sys_path, self._has_uevent),
            problems=problems,
            dir_fd=dir_fd,
            udev_links=self._udev_links,
        )


def _escape_map(
    items: Iterable[tuple[str, str]], what: str, problems: dict[str, str]
) -> Iterator[tuple[str, str]]:
    for raw_key, raw_value in items:
        key, bad_key = escape_host_text(raw_key)
        value, bad_value = escape_host_text(raw_value)
        if bad_key or bad_value:
            problems.setdefault(f"{what} {key}", _ESCAPED)
        yield key, value


def _make_record(
    *,
    sys_path: str,
    subsystem: str,
    devtype: str | None,
    properties: Mapping[str, str],
    attributes: Mapping[str, str],
    device_dir: str,
    spec: WantedSpec | None,
    parent: str | None,
    problems: dict[str, str],
    dir_fd: int | None = None,
    udev_links: _UdevLinkIndex | None = None,
) -> DeviceRecord:
    # Both sources build records here: every str that came from the OS is made
    # valid UTF-8 (attribute values already are, see _read_text_attributes).
    binary = _read_binary_attributes(
        device_dir, spec.binary_attributes if spec else (), problems, dir_fd
    )
    links = FrozenMap(
        _escape_map(
            _read_links(device_dir, sys_path, spec.link_dirs if spec else ()).items(),
            "link",
            problems,
        )
    )
    links_of_node = _udev_links(properties, udev_links, problems) if subsystem == "block" else ()
    clean_path, bad_path = escape_host_text(sys_path)
    if bad_path:
        problems["sys_path"] = _ESCAPED
    clean_parent = None if parent is None else escape_host_text(parent)[0]
    clean_devtype = None if devtype is None else escape_host_text(devtype)[0]
    return DeviceRecord(
        sys_path=clean_path,
        subsystem=escape_host_text(subsystem)[0],
        devtype=clean_devtype,
        sys_name=clean_path.rsplit("/", 1)[1],
        properties=FrozenMap(
            _escape_map(
                (
                    (key, value)
                    for key, value in properties.items()
                    if key not in SYNTHESIZED_PROPERTIES
                ),
                "property",
                problems,
            )
        ),
        attributes=FrozenMap(attributes),
        binary_attributes=binary,
        parent=clean_parent,
        links=links,
        problems=FrozenMap(problems),
        udev_links=links_of_node,
    )


class PyudevSource:
    """Lists devices through libudev (pyudev).

    On a live host this reads ``/sys`` and the udev database. To read a
    testbed instead, the *process* must have been started with
    ``LD_PRELOAD=libumockdev-preload.so.0 UMOCKDEV_DIR=<testbed>`` (see
    :func:`tracker.testing.testbed.preload_environment`); setting the
    variables later has no effect.

    :param context: the pyudev context to use; a new one is created when
        ``None``. Nothing is shared between instances.
    :raises ImportError: when pyudev is not installed.
    """

    def __init__(self, context: pyudev.Context | None = None) -> None:
        import pyudev

        self._pyudev = pyudev
        self._context = context if context is not None else pyudev.Context()
        self._sys = str(self._context.sys_path)
        # libudev reads the real /dev (a testbed's under umockdev's preload).
        self._udev_links = _UdevLinkIndex(os.fspath(PRODUCTION_ROOT / "dev"))

    @property
    def context(self) -> pyudev.Context:
        """The pyudev context this source reads through.

        :returns: the context given to (or made by) the constructor.
        :raises: nothing.
        """
        return self._context

    def monitor(self, source: str = "udev") -> pyudev.Monitor:
        """Build a netlink monitor filtered on the storage-relevant subsystems.

        The monitor is not started; the caller starts and polls it.

        :param source: ``"udev"`` (events after udev processed them) or
            ``"kernel"``.
        :returns: a new :class:`pyudev.Monitor`.
        :raises OSError: when the netlink socket cannot be opened.
        """
        monitor = self._pyudev.Monitor.from_netlink(self._context, source=source)
        for subsystem in SUBSYSTEMS:
            monitor.filter_by(subsystem)
        return monitor

    def scan(self) -> tuple[DeviceRecord, ...]:
        """List every storage-relevant device libudev knows.

        :returns: the records, sorted by ``sys_path``.
        :raises: nothing; devices that vanish while being read are skipped.
        """
        records: dict[str, DeviceRecord] = {}
        self._udev_links.refresh()
        for subsystem in SUBSYSTEMS:
            for device in self._context.list_devices(subsystem=subsystem):
                sys_path = str(device.sys_path)[len(self._sys) :]
                if sys_path in records:
                    continue
                record = self._record(device, sys_path, wanted_only=True)
                if record is not None:
                    records[sys_path] = record
        return tuple(records[key] for key in sorted(records))

    def lookup(self, sys_path: str) -> DeviceRecord | None:
        """Read one device through libudev.

        :param sys_path: path relative to the sysfs root (``/devices/...``).
        :returns: its record, or ``None`` when libudev finds no device with a
            subsystem there.
        :raises: nothing.
        """
        normalized = os.path.normpath(sys_path)
        if not normalized.startswith(_DEVICES_PREFIX):
            return None
        try:
            device = self._pyudev.Devices.from_sys_path(self._context, self._sys + normalized)
        except self._pyudev.DeviceNotFoundError:
            return None
        self._udev_links.refresh()
        return self._record(device, normalized, wanted_only=False)

    def _record(
        self, device: pyudev.Device, sys_path: str, *, wanted_only: bool
    ) -> DeviceRecord | None:
        subsystem = device.subsystem
        if subsystem is None:
            return None
        subsystem = str(subsystem)
        devtype = device.device_type
        devtype = None if devtype is None else str(devtype)
        spec = spec_for(subsystem, devtype, str(device.sys_name))
        if spec is None and wanted_only:
            return None
        device_dir = self._sys + sys_path
        problems: dict[str, str] = {}
        # Text attributes are read from the file, as SysfsTreeSource does, not
        # through libudev: libudev would open a FIFO and block, and read any size.
        attributes = _read_text_attributes(device_dir, spec.attributes if spec else (), problems)
        parent = device.parent
        return _make_record(
            sys_path=sys_path,
            subsystem=subsystem,
            devtype=devtype,
            properties=_raw_properties(device),
            attributes=attributes,
            device_dir=device_dir,
            spec=spec,
            parent=None if parent is None else str(parent.sys_path)[len(self._sys) :],
            problems=problems,
            udev_links=self._udev_links,
        )


def _raw_properties(device: pyudev.Device) -> dict[str, str]:
    """A device's properties decoded like the sysfs source's (pyudev's own
    ``device.properties`` raises ``UnicodeDecodeError`` on bytes that are not UTF-8)."""
    try:
        from pyudev._util import udev_list_iterate

        libudev = device._libudev
        entry = libudev.udev_device_get_properties_list_entry(device)
        return {
            bytes(name).decode("utf-8", "surrogateescape"): bytes(value or b"").decode(
                "utf-8", "surrogateescape"
            )
            for name, value in udev_list_iterate(libudev, entry)
        }
    except (ImportError, AttributeError):  # pragma: no cover - another pyudev
        return {str(key): str(value) for key, value in device.properties.items()}


SOURCE_KINDS = ("sysfs", "pyudev")


def open_source(kind: str = "sysfs", root: Path = PRODUCTION_ROOT) -> DeviceSource:
    """Build the device source a full scan uses (``[discovery] source``).

    :param kind: ``"sysfs"`` (plain reads of ``<root>/sys``, the faster full
        scan) or ``"pyudev"`` (libudev; the root is then always the real one).
    :param root: the directory holding ``sys/``; only the sysfs source uses it.
    :returns: the source.
    :raises tracker.exceptions.InvalidInput: an unknown ``kind``, or ``pyudev``
        with a root other than ``/``.
    :raises tracker.exceptions.SysfsRootMissing: ``<root>/sys`` does not exist.
    """
    from tracker.exceptions import InvalidInput

    if kind == "sysfs":
        return SysfsTreeSource(root)
    if kind == "pyudev":
        if Path(root) != PRODUCTION_ROOT:
            raise InvalidInput("root", str(root), "libudev always reads the real /sys")
        return PyudevSource()
    raise InvalidInput("source", kind, f"one of {', '.join(SOURCE_KINDS)}")
