"""Plain frozen records: what the host layer hands to discovery.

A :class:`DeviceRecord` is a snapshot of one sysfs device, taken at the host
boundary. Nothing past this module sees a :class:`pyudev.Device`, a path under
``/sys`` or an open file: discovery is a pure function of records.

Both device sources (the pyudev one and the sysfs-tree one) must produce
*equal* records for the same tree; that is what lets a captured host be replayed
offline and lets tests compare the two.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NotRequired, TypedDict


class FrozenMap(Mapping[str, str]):
    """An immutable, hashable ``str -> str`` mapping with a stable order.

    Equality ignores order; iteration follows sorted keys so that reprs and
    dumps are deterministic.
    """

    __slots__ = ("_hash", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items: dict[str, str] = dict(sorted(pairs))
        self._hash: int | None = None

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """:returns: the value of ``key``, or ``default`` (a fast path for discovery)."""
        return self._items.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(self._items.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._items == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


class FrozenBytesMap(Mapping[str, bytes]):
    """An immutable, hashable ``str -> bytes`` mapping (binary attributes)."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, bytes]] | Mapping[str, bytes] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items: dict[str, bytes] = dict(sorted(pairs))

    def __getitem__(self, key: str) -> bytes:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(self._items.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenBytesMap):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._items == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenBytesMap({self._items!r})"


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """One sysfs device as seen at the host boundary.

    :ivar sys_path: the device path relative to the sysfs root, starting with
        ``/devices/`` (``/sys`` is never part of it).
    :ivar subsystem: e.g. ``"scsi"``, ``"block"``, ``"fc_host"``.
    :ivar devtype: e.g. ``"scsi_device"``, ``"disk"``; ``None`` when the
        device has none.
    :ivar sys_name: last component of the path (``"sda"``, ``"0:0:0:0"``).
    :ivar properties: uevent properties (``DEVNAME``, ``MAJOR``, ``DM_NAME``,
        ``ID_SERIAL`` ...), as udev reports them.
    :ivar attributes: text sysfs attributes, trailing newline stripped,
        padding kept (``"NETAPP  "``). Only the attributes discovery needs
        are read (see :mod:`tracker.host.wanted`).
    :ivar binary_attributes: attributes read as bytes from the attribute file
        (``vpd_pg80``, ``vpd_pg83``), exactly as the kernel returned them.
    :ivar parent: ``sys_path`` of the nearest ancestor that is a device, or
        ``None``.
    :ivar links: symlinks under the device that discovery follows
        (``holders/dm-0``, ``slaves/sda``), mapped to the ``sys_path`` they
        resolve to.
    :ivar udev_links: for a block device, its ``/dev/disk/by-id/*`` and
        ``/dev/disk/by-path/*`` links (absolute, as on the host), sorted: from
        udev's ``DEVLINKS`` when udev provides it, else found in the root's
        ``dev/disk/by-id`` and ``dev/disk/by-path`` directories. Empty for
        other devices.
    :ivar problems: what the source could not read as it was: the attribute
        (``"model"``), ``"uevent"``, ``"property ID_MODEL"`` ... mapped to why
        (``"a FIFO, not a regular file"``, ``"larger than 65536 bytes"``,
        ``"bytes that are not UTF-8 were escaped"``). Discovery turns each into
        a warning about the device.
    """

    sys_path: str
    subsystem: str
    devtype: str | None
    sys_name: str
    properties: FrozenMap = field(default_factory=FrozenMap)
    attributes: FrozenMap = field(default_factory=FrozenMap)
    binary_attributes: FrozenBytesMap = field(default_factory=FrozenBytesMap)
    parent: str | None = None
    links: FrozenMap = field(default_factory=FrozenMap)
    problems: FrozenMap = field(default_factory=FrozenMap)
    udev_links: tuple[str, ...] = ()


class RecordJSON(TypedDict):
    """The JSON form of a :class:`DeviceRecord` (binary attributes in hex)."""

    sys_path: str
    subsystem: str
    devtype: str | None
    sys_name: str
    properties: dict[str, str]
    attributes: dict[str, str]
    binary_attributes: dict[str, str]
    parent: str | None
    links: dict[str, str]
    problems: NotRequired[dict[str, str]]
    udev_links: NotRequired[list[str]]


def record_to_json(record: DeviceRecord) -> RecordJSON:
    """Turn a record into plain JSON-ready data.

    :returns: a :class:`RecordJSON` whose binary attributes are lowercase hex.
    :raises: nothing.
    """
    return RecordJSON(
        sys_path=record.sys_path,
        subsystem=record.subsystem,
        devtype=record.devtype,
        sys_name=record.sys_name,
        properties=dict(record.properties),
        attributes=dict(record.attributes),
        binary_attributes={key: value.hex() for key, value in record.binary_attributes.items()},
        parent=record.parent,
        links=dict(record.links),
        problems=dict(record.problems),
        udev_links=list(record.udev_links),
    )


def record_from_json(data: RecordJSON) -> DeviceRecord:
    """Rebuild a record from :func:`record_to_json` output.

    :returns: the equal :class:`DeviceRecord`.
    :raises KeyError: when a field is missing.
    :raises ValueError: when a binary attribute is not valid hex.
    """
    return DeviceRecord(
        sys_path=data["sys_path"],
        subsystem=data["subsystem"],
        devtype=data["devtype"],
        sys_name=data["sys_name"],
        properties=FrozenMap(data["properties"]),
        attributes=FrozenMap(data["attributes"]),
        binary_attributes=FrozenBytesMap(
            {key: bytes.fromhex(value) for key, value in data["binary_attributes"].items()}
        ),
        parent=data["parent"],
        links=FrozenMap(data["links"]),
        problems=FrozenMap(data.get("problems", {})),
        udev_links=tuple(data.get("udev_links", ())),
    )
