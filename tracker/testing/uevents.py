"""Uevents on a testbed: frozen event records, and a sender that reaches ``pyudev.Monitor``.

Under umockdev's preload, each netlink uevent monitor a process opens (what
``pyudev.Monitor.from_netlink`` does) becomes a unix datagram socket
``$UMOCKDEV_DIR/event<N>``. A datagram written there in the format udevd uses
to forward a processed event to libudev monitors is received as a device
event, and the monitor's ``filter_by(subsystem, devtype)`` works, since that
format carries hashes of both for the receiver's socket filter.

The format (``struct udev_monitor_netlink_header`` of libudev, 40 bytes):

==========  =====  ========================================================
field       bytes  value
==========  =====  ========================================================
prefix      8      ``b"libudev\\0"``
magic       4      ``0xfeedcafe``, network byte order
header      4      40 (the header's size), host byte order
prop. off.  4      40 (properties follow the header), host byte order
prop. len.  4      length of the properties block, host byte order
subsystem   4      MurmurHash2 (seed 0) of the subsystem, network order
devtype     4      MurmurHash2 of the devtype, or 0; network order
tag bloom   8      0 (no tags: a monitor filtering by tag gets nothing)
==========  =====  ========================================================

then the properties as ``KEY=VALUE`` strings, each ended by a NUL.

Every event is first a :class:`Uevent`, a plain frozen record, so that the
same events can be replayed by an in-memory event source without any socket
(see :mod:`tracker.testing.live`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tracker.exceptions import TestbedError, UeventNotDelivered
from tracker.host.records import FrozenMap

__all__ = [
    "ACTIONS",
    "Uevent",
    "UeventSender",
    "encode_uevent",
    "murmurhash2",
    "read_uevent_file",
]

#: The actions the kernel (and udevd) report.
ACTIONS = frozenset({"add", "remove", "change", "move", "online", "offline", "bind", "unbind"})

_MAGIC = 0xFEEDCAFE
_HEADER = struct.Struct("=8s4sIII4s4sII")  # byte-order mixed: see encode_uevent
_SEQNUM_FILE = ".tracker-uevent-seqnum"
#: Properties the sender always sets itself, first and in this order.
_LEADING = ("ACTION", "DEVPATH", "SUBSYSTEM", "DEVTYPE", "SEQNUM")


@dataclass(frozen=True, slots=True)
class Uevent:
    """One device event, as a monitor would receive it.

    :ivar action: ``"add"``, ``"remove"``, ``"change"`` ...
    :ivar sys_path: the device path relative to the sysfs root, starting with
        ``/devices/`` (as in :class:`tracker.host.records.DeviceRecord`).
    :ivar subsystem: ``"scsi"``, ``"block"`` ...
    :ivar devtype: ``"scsi_device"``, ``"disk"`` ..., or ``None``.
    :ivar properties: every property sent, ``ACTION``, ``DEVPATH``,
        ``SUBSYSTEM``, ``DEVTYPE`` and ``SEQNUM`` included.
    :ivar seqnum: the event's sequence number, increasing per testbed.
    """

    action: str
    sys_path: str
    subsystem: str
    devtype: str | None
    properties: FrozenMap
    seqnum: int


def murmurhash2(data: bytes, seed: int = 0) -> int:
    """Hash ``data`` with 32-bit MurmurHash2, as udev hashes subsystem and devtype.

    :returns: the unsigned 32-bit hash.
    :raises: nothing.
    """
    mult = 0x5BD1E995
    mask = 0xFFFFFFFF
    length = len(data)
    value = (seed ^ length) & mask
    whole = length - length % 4
    for offset in range(0, whole, 4):
        word = int.from_bytes(data[offset : offset + 4], sys.byteorder)
        word = (word * mult) & mask
        word ^= word >> 24
        word = (word * mult) & mask
        value = ((value * mult) & mask) ^ word
    tail = data[whole:]
    if tail:
        for position in range(len(tail) - 1, -1, -1):
            value ^= tail[position] << (8 * position)
        value = (value * mult) & mask
    value ^= value >> 13
    value = (value * mult) & mask
    value ^= value >> 15
    return value


def encode_uevent(event: Uevent) -> bytes:
    """Encode an event as the datagram libudev monitors receive from udevd.

    :returns: the header followed by the NUL-terminated properties, in the
        order of ``event.properties`` with the leading ones first.
    :raises tracker.exceptions.TestbedError: when a key or value holds a NUL
        or a key holds ``=``.
    """
    ordered = [key for key in _LEADING if key in event.properties]
    ordered += [key for key in event.properties if key not in _LEADING]
    parts = []
    for key in ordered:
        value = event.properties[key]
        if "\0" in key or "=" in key or "\0" in value or not key:
            raise TestbedError(what=f"uevent for {event.sys_path}", reason=f"bad property {key!r}")
        parts.append(f"{key}={value}".encode() + b"\0")
    body = b"".join(parts)
    devtype_hash = 0 if event.devtype is None else murmurhash2(event.devtype.encode())
    header = _HEADER.pack(
        b"libudev\0",
        _MAGIC.to_bytes(4, "big"),
        _HEADER.size,
        _HEADER.size,
        len(body),
        murmurhash2(event.subsystem.encode()).to_bytes(4, "big"),
        devtype_hash.to_bytes(4, "big"),
        0,
        0,
    )
    return header + body


def read_uevent_file(root: Path, sys_path: str) -> dict[str, str] | None:
    """Read a testbed device's ``uevent`` file.

    :param root: the testbed directory (holding ``sys/``).
    :param sys_path: the device path (``/devices/...``).
    :returns: its properties in file order, or ``None`` when the device does
        not exist.
    :raises tracker.exceptions.TestbedError: when the file cannot be read.
    """
    path = root / "sys" / sys_path.lstrip("/") / "uevent"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise TestbedError(what=f"uevent of {sys_path}", reason=type(error).__name__) from None
    properties: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            properties[key] = value
    return properties


def _devlinks(root: Path, devname: str) -> str | None:
    """The ``/dev`` symlinks to ``devname`` under the testbed's ``dev/``, as DEVLINKS."""
    dev = root / "dev"
    found = []
    for directory, _subdirs, files in os.walk(dev):
        for name in files:
            link = Path(directory) / name
            if link.is_symlink() and Path(os.readlink(link)).name == devname:
                found.append("/" + str(link.relative_to(root)))
    return " ".join(sorted(found)) or None


class UeventSender:
    """Builds :class:`Uevent` records for a testbed and sends them to its monitors.

    Sequence numbers are kept in a file in the testbed directory, under a
    lock, so that every sender of the same testbed (in any process) counts on
    from the same number.

    :param testbed_root: the testbed directory (the ``UMOCKDEV_DIR``).
    :param timeout: seconds to wait for room in a monitor's socket buffer.
    """

    def __init__(self, testbed_root: Path, *, timeout: float = 5.0) -> None:
        self.root = Path(testbed_root)
        self.timeout = timeout

    def _next_seqnum(self) -> int:
        path = self.root / _SEQNUM_FILE
        with path.open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            text = handle.read().strip()
            number = int(text) + 1 if text.isdigit() else 1
            handle.seek(0)
            handle.truncate()
            handle.write(f"{number}\n")
            handle.flush()
        return number

    def event(
        self,
        action: str,
        sys_path: str,
        properties: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    ) -> Uevent:
        """Make the record of an event of a device, without sending it.

        The device's ``uevent`` file gives ``SUBSYSTEM``, ``DEVTYPE``,
        ``DEVNAME``, ``MAJOR``/``MINOR`` and udev's properties; ``DEVLINKS``
        is added for a block device from the testbed's ``/dev`` symlinks when
        the file has none. ``properties`` are added last and win. For a
        ``remove``, make the record *before* removing the device's files.

        :param action: one of :data:`ACTIONS`.
        :param sys_path: the device path (``/devices/...``; ``/sys/devices/...``
            is accepted).
        :returns: the record, with the next sequence number.
        :raises tracker.exceptions.TestbedError: for an unknown action, a path
            outside ``/devices``, or a device with no ``uevent`` file and no
            ``SUBSYSTEM`` in ``properties``.
        """
        if action not in ACTIONS:
            raise TestbedError(what=f"uevent for {sys_path}", reason=f"unknown action {action!r}")
        devpath = sys_path.removeprefix("/sys")
        if not devpath.startswith("/devices/") or "/../" in devpath + "/":
            raise TestbedError(what=f"uevent for {sys_path}", reason="not a path below /devices")
        extra = dict(properties.items() if isinstance(properties, Mapping) else properties)
        from_file = read_uevent_file(self.root, devpath) or {}
        merged = {**from_file, **extra}
        subsystem = merged.get("SUBSYSTEM")
        if not subsystem:
            raise TestbedError(
                what=f"uevent for {sys_path}", reason="no such device and no SUBSYSTEM given"
            )
        if merged.get("DEVNAME") and "DEVLINKS" not in merged and subsystem == "block":
            devlinks = _devlinks(self.root, merged["DEVNAME"].removeprefix("/dev/"))
            if devlinks is not None:
                merged["DEVLINKS"] = devlinks
        seqnum = self._next_seqnum()
        final = {"ACTION": action, "DEVPATH": devpath, **merged, "SEQNUM": str(seqnum)}
        return Uevent(
            action=action,
            sys_path=devpath,
            subsystem=subsystem,
            devtype=merged.get("DEVTYPE") or None,
            properties=FrozenMap(final),
            seqnum=seqnum,
        )

    def sockets(self) -> tuple[Path, ...]:
        """The monitors' sockets present now.

        :returns: the ``event<N>`` sockets in the testbed directory, sorted.
        :raises: nothing.
        """
        try:
            names = os.listdir(self.root)
        except OSError:
            return ()
        return tuple(
            sorted(
                self.root / name
                for name in names
                if name.startswith("event") and name[5:].isdigit()
            )
        )

    def deliver(self, event: Uevent) -> int:
        """Send an event to every monitor of the testbed.

        A socket whose monitor is gone (connection refused) is removed, as
        umockdev does.

        :returns: how many monitors it was sent to.
        :raises tracker.exceptions.UeventNotDelivered: when a monitor's buffer
            stays full for ``timeout`` seconds or sending fails otherwise.
        """
        datagram = encode_uevent(event)
        sent = 0
        for path in self.sockets():
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(self.timeout)
                try:
                    sock.sendto(datagram, str(path))
                except ConnectionRefusedError:
                    path.unlink(missing_ok=True)
                    continue
                except FileNotFoundError:
                    continue
                except TimeoutError:
                    raise UeventNotDelivered(
                        action=event.action,
                        sys_path=event.sys_path,
                        socket=str(path),
                        reason=f"its buffer stayed full for {self.timeout:g} s",
                    ) from None
                except OSError as error:
                    code = errno.errorcode.get(error.errno or 0, "OSError")
                    raise UeventNotDelivered(
                        action=event.action,
                        sys_path=event.sys_path,
                        socket=str(path),
                        reason=f"{code} ({error.strerror})",
                    ) from None
            sent += 1
        return sent

    def send(
        self,
        action: str,
        sys_path: str,
        properties: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    ) -> Uevent:
        """Make an event (see :meth:`event`) and send it (see :meth:`deliver`).

        :returns: the record sent.
        :raises tracker.exceptions.TestbedError: as :meth:`event` does.
        :raises tracker.exceptions.UeventNotDelivered: as :meth:`deliver` does.
        """
        event = self.event(action, sys_path, properties)
        self.deliver(event)
        return event
