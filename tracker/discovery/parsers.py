"""One small parser per kind of sysfs device record.

:func:`classify` says what kind a :class:`~tracker.host.records.DeviceRecord` is;
each ``parse_*`` function turns one record of its kind into a small frozen value.
Joining those values into a :class:`~tracker.discovery.model.HostState` is
:mod:`tracker.discovery.discover`'s job.

No parser raises on bad or missing attributes: the value becomes ``None`` and a
:class:`~tracker.discovery.model.DiscoveryWarning` is appended to the ``warnings``
list the caller passes. Attributes that are simply absent are not warned about
unless the record makes no sense without them.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from tracker.discovery.model import (
    HCT_MAX,
    DiscoveryWarning,
    FcRemotePort,
    Hctl,
    Portal,
    WarningCode,
)
from tracker.discovery.vpd import DeviceIdentity, device_identity
from tracker.host.records import DeviceRecord

__all__ = [
    "BlockDiskInfo",
    "DmInfo",
    "FcHostInfo",
    "FcTransportInfo",
    "IdentityFunction",
    "IscsiConnectionInfo",
    "IscsiHostInfo",
    "IscsiSessionInfo",
    "PathContext",
    "RecordKind",
    "ScsiDeviceInfo",
    "ScsiHostInfo",
    "classify",
    "identity_of",
    "parse_block_disk",
    "parse_dm",
    "parse_fc_host",
    "parse_fc_remote_port",
    "parse_fc_transport",
    "parse_iscsi_connection",
    "parse_iscsi_host",
    "parse_iscsi_session",
    "parse_scsi_device",
    "parse_scsi_host",
    "path_context",
]

logger = logging.getLogger(__name__)

SECTOR_SIZE = 512
"""The unit of the block ``size`` attribute, whatever the logical block size."""

INT_MAX = 2**31 - 1
"""The largest value of a number the store keeps in an ``INTEGER`` column."""
SIZE_MAX = 2**63 - 1
"""The largest size in bytes (a signed 64-bit ``BIGINT`` column)."""
IDENTITY_WIDTH = 255
"""The longest WWN, WWID or serial number the store keeps."""
LINK_WIDTH = 1024
"""The longest udev link (``/dev/disk/by-path/...``) kept; a longer one is dropped."""

# The longest text each value may have: the width of its column in the store. A
# longer value is not a real one; it is dropped with a warning.
_WIDTH = {
    "proc_name": 64,
    "state": 32,
    "port_state": 32,
    "speed": 32,
    "initiatorname": 223,
    "targetname": 223,
    "ifacename": 64,
    "vendor": 64,
    "model": 64,
    "rev": 32,
    "dm/name": 255,
    "dm/uuid": 255,
    "roles": 128,
    "persistent_address": 48,
    "address": 48,
    "dev": 32,
}


class RecordKind(Enum):
    """The kinds of records discovery uses."""

    SCSI_HOST_DEVICE = "scsi/scsi_host"
    SCSI_HOST = "scsi_host"
    FC_HOST = "fc_host"
    FC_REMOTE_PORT = "fc_remote_ports"
    FC_TRANSPORT = "fc_transport"
    ISCSI_HOST = "iscsi_host"
    ISCSI_SESSION = "iscsi_session"
    ISCSI_CONNECTION = "iscsi_connection"
    SAS_HOST = "sas_host"
    SCSI_DEVICE = "scsi/scsi_device"
    BLOCK_DISK = "block/disk"
    DM_DISK = "block/disk dm-*"


_BY_SUBSYSTEM = {
    "scsi_host": RecordKind.SCSI_HOST,
    "fc_host": RecordKind.FC_HOST,
    "fc_remote_ports": RecordKind.FC_REMOTE_PORT,
    "fc_transport": RecordKind.FC_TRANSPORT,
    "iscsi_host": RecordKind.ISCSI_HOST,
    "iscsi_session": RecordKind.ISCSI_SESSION,
    "iscsi_connection": RecordKind.ISCSI_CONNECTION,
    "sas_host": RecordKind.SAS_HOST,
}


def classify(record: DeviceRecord) -> RecordKind | None:
    """Say which kind of record this is.

    :returns: the kind, or ``None`` for records discovery does not use (SCSI targets,
        ``scsi_disk``/``scsi_device``/``scsi_generic`` class devices, partitions,
        PCI devices ...); those are logged at debug level. Never raises.
    """
    subsystem = record.subsystem
    kind = _BY_SUBSYSTEM.get(subsystem)
    if kind is not None:
        return kind
    if subsystem == "scsi":
        if record.devtype == "scsi_device":
            return RecordKind.SCSI_DEVICE
        if record.devtype == "scsi_host":
            return RecordKind.SCSI_HOST_DEVICE
    elif subsystem == "block" and record.devtype == "disk":
        return RecordKind.DM_DISK if record.sys_name.startswith("dm-") else RecordKind.BLOCK_DISK
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "skipping %s (subsystem %s, devtype %s)",
            record.sys_path,
            subsystem,
            record.devtype,
        )
    return None


# --- attribute helpers ---------------------------------------------------------

_NULLS = frozenset(("", "(null)", "<NULL>", "<null>"))


def _warn(
    warnings: list[DiscoveryWarning], record: DeviceRecord, code: WarningCode, detail: str
) -> None:
    warnings.append(DiscoveryWarning(record.sys_path, code, detail))


def _clean(value: str | None) -> str | None:
    """A value stripped of padding; None when absent, empty or a null marker."""
    if value is None:
        return None
    value = value.strip()
    return None if value in _NULLS else value


def _text(
    record: DeviceRecord,
    name: str,
    warnings: list[DiscoveryWarning] | None = None,
    value: str | None = None,
) -> str | None:
    """An attribute stripped of padding; None when absent, empty or a null marker,
    or (with a warning) longer than the store keeps."""
    cleaned = _clean(record.attributes.get(name) if value is None else value)
    width = _WIDTH.get(name)
    if cleaned is not None and width is not None and len(cleaned) > width:
        if warnings is not None:
            _warn(
                warnings,
                record,
                WarningCode.BAD_ATTRIBUTE,
                f"{name} is {len(cleaned)} characters long, more than {width}",
            )
        return None
    return cleaned


def _int(
    record: DeviceRecord,
    name: str,
    warnings: list[DiscoveryWarning],
    base: int = 10,
    value: str | None = None,
    minimum: int = 0,
    maximum: int = INT_MAX,
) -> int | None:
    """An integer attribute (``value`` when the caller already read it), in
    ``minimum..maximum`` (else ``None`` with a warning)."""
    if value is None:
        value = record.attributes.get(name)
        if value is None:
            return None
    try:
        number = int(value, base) if len(value) <= 64 else None
    except ValueError:
        number = None
    if number is not None:
        if minimum <= number <= maximum:
            return number
        _warn(
            warnings,
            record,
            WarningCode.BAD_ATTRIBUTE,
            f"{name}={value.strip()[:64]!r} is out of range ({minimum}..{maximum})",
        )
        return None
    cleaned = _clean(value)
    if cleaned is not None:
        _warn(
            warnings,
            record,
            WarningCode.BAD_ATTRIBUTE,
            f"{name}={cleaned[:64]!r} is not a number",
        )
    return None


def _flag(record: DeviceRecord, name: str, warnings: list[DiscoveryWarning]) -> bool | None:
    value = _text(record, name)
    if value is None:
        return None
    if value in ("0", "1"):
        return value == "1"
    _warn(warnings, record, WarningCode.BAD_ATTRIBUTE, f"{name}={value!r} is not 0 or 1")
    return None


_HEX = frozenset("0123456789abcdef")


def _wwn(record: DeviceRecord, name: str, warnings: list[DiscoveryWarning]) -> str | None:
    """A ``0x``-prefixed 64-bit name as 16 lowercase hex digits."""
    value = _text(record, name)
    if value is None:
        return None
    digits = value.lower()
    if digits.startswith("0x"):
        digits = digits[2:]
    if not digits or len(digits) > 16 or not _HEX.issuperset(digits):
        _warn(warnings, record, WarningCode.BAD_ATTRIBUTE, f"{name}={value!r} is not a WWN")
        return None
    return digits.rjust(16, "0")


def _numbered(name: str, prefix: str) -> int | None:
    """``host12`` -> 12 for prefix ``host``; None when it is not of that form."""
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix) :]
    return _small(rest)


def _small(digits: str) -> int | None:
    """Decimal ASCII digits of a number in 0..INT_MAX; None otherwise."""
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 10):
        return None
    number = int(digits)
    return number if number <= INT_MAX else None


@dataclass(frozen=True, slots=True)
class PathContext:
    """What a sysfs path says about where a device hangs.

    :ivar host: number of the ``hostN`` component.
    :ivar rport: the ``rport-H:C-N`` component.
    :ivar session: number of the ``sessionN`` component.
    :ivar target: the ``targetH:C:T`` component.
    """

    host: int | None = None
    rport: str | None = None
    session: int | None = None
    target: str | None = None


_PATH_PARTS = re.compile(r"/(host[0-9]+|rport-[^/]+|session[0-9]+|target[^/]+)(?=/|$)")


def path_context(sys_path: str) -> PathContext:
    """Read the SCSI host, FC remote port, iSCSI session and SCSI target a device
    hangs from out of its sysfs path, whatever its ``parent`` says.

    :returns: the components found (the innermost of each kind). Never raises.
    """
    host = session = None
    rport = target = None
    for part in _PATH_PARTS.findall(sys_path):
        first = part[0]
        if first == "h":
            host = _small(part[4:])
        elif first == "r":
            rport = part
        elif first == "s":
            session = _small(part[7:])
        else:
            target = part
    return PathContext(host, rport, session, target)


# Every LUN behind a target shares its parent directory's context; the context of a
# path is a pure function of it, so memoizing is safe.
_parent_context = functools.lru_cache(maxsize=8192)(path_context)


def _host_number(record: DeviceRecord, warnings: list[DiscoveryWarning]) -> int | None:
    number = _numbered(record.sys_name, "host")
    if number is None:
        _warn(warnings, record, WarningCode.BAD_NAME, f"{record.sys_name!r} is not hostN")
    return number


# --- hosts ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScsiHostInfo:
    """A ``hostN`` device or its ``scsi_host`` class device.

    :ivar number: N.
    :ivar sys_path: path of the ``hostN`` device.
    :ivar driver: ``proc_name`` (class device only).
    :ivar state: host state (class device only).
    """

    number: int
    sys_path: str
    driver: str | None = None
    state: str | None = None


def parse_scsi_host(record: DeviceRecord, warnings: list[DiscoveryWarning]) -> ScsiHostInfo | None:
    """Parse a ``hostN`` device (``scsi``/``scsi_host``) or its ``scsi_host`` class device.

    :returns: the host, or ``None`` (with a warning) when the name is not ``hostN``.
        Never raises.
    """
    number = _host_number(record, warnings)
    if number is None:
        return None
    if record.subsystem == "scsi":
        return ScsiHostInfo(number, record.sys_path)
    host_path = record.parent or record.sys_path.rsplit("/scsi_host/", 1)[0]
    return ScsiHostInfo(
        number, host_path, _text(record, "proc_name", warnings), _text(record, "state", warnings)
    )


@dataclass(frozen=True, slots=True)
class FcHostInfo:
    """An ``fc_host`` class device: the FC initiator side of host N."""

    number: int
    wwpn: str | None
    wwnn: str | None
    port_state: str | None
    port_id: int | None
    speed: str | None
    fabric_name: str | None


def parse_fc_host(record: DeviceRecord, warnings: list[DiscoveryWarning]) -> FcHostInfo | None:
    """Parse an ``fc_host`` class device.

    :returns: the initiator port, or ``None`` (with a warning) when the name is not
        ``hostN``. A missing ``port_name`` is warned about. Never raises.
    """
    number = _host_number(record, warnings)
    if number is None:
        return None
    wwpn = _wwn(record, "port_name", warnings)
    if wwpn is None and "port_name" not in record.attributes:
        _warn(warnings, record, WarningCode.MISSING_ATTRIBUTE, "no port_name")
    return FcHostInfo(
        number=number,
        wwpn=wwpn,
        wwnn=_wwn(record, "node_name", warnings),
        port_state=_text(record, "port_state", warnings),
        port_id=_int(record, "port_id", warnings, 16, maximum=0xFFFFFF),
        speed=_text(record, "speed", warnings),
        fabric_name=_wwn(record, "fabric_name", warnings),
    )


@dataclass(frozen=True, slots=True)
class IscsiHostInfo:
    """An ``iscsi_host`` class device."""

    number: int
    initiator_name: str | None


def parse_iscsi_host(
    record: DeviceRecord, warnings: list[DiscoveryWarning]
) -> IscsiHostInfo | None:
    """Parse an ``iscsi_host`` class device.

    :returns: the host's initiator name (``None`` when unset), or ``None`` (with a
        warning) when the name is not ``hostN``. Never raises.
    """
    number = _host_number(record, warnings)
    if number is None:
        return None
    return IscsiHostInfo(number, _text(record, "initiatorname", warnings))


# --- FC remote side -------------------------------------------------------------


def _rport_numbers(name: str) -> tuple[int, int, int] | None:
    """``rport-0:1-2`` -> (0, 1, 2)."""
    if not name.startswith("rport-"):
        return None
    host_channel, _, number = name[6:].partition("-")
    host, _, channel = host_channel.partition(":")
    numbers = (_small(host), _small(channel), _small(number))
    if numbers[0] is None or numbers[1] is None or numbers[2] is None:
        return None
    return numbers[0], numbers[1], numbers[2]


def parse_fc_remote_port(
    record: DeviceRecord, warnings: list[DiscoveryWarning]
) -> FcRemotePort | None:
    """Parse an ``fc_remote_ports`` class device (``rport-H:C-N``).

    :returns: the remote port, or ``None`` (with a warning) when the name is not
        ``rport-H:C-N``. ``scsi_target_id`` ``-1`` (not bound) becomes ``None``.
        Never raises.
    """
    numbers = _rport_numbers(record.sys_name)
    if numbers is None:
        _warn(warnings, record, WarningCode.BAD_NAME, f"{record.sys_name!r} is not rport-H:C-N")
        return None
    roles_text = _text(record, "roles", warnings)
    roles = tuple(r.strip() for r in roles_text.split(",") if r.strip()) if roles_text else ()
    target_id = _int(record, "scsi_target_id", warnings, minimum=-1)
    return FcRemotePort(
        host=numbers[0],
        channel=numbers[1],
        number=numbers[2],
        sys_path=record.sys_path,
        wwpn=_wwn(record, "port_name", warnings),
        wwnn=_wwn(record, "node_name", warnings),
        port_id=_int(record, "port_id", warnings, 16, maximum=0xFFFFFF),
        roles=roles,
        port_state=_text(record, "port_state", warnings),
        scsi_target_id=target_id if target_id is not None and target_id >= 0 else None,
    )


@dataclass(frozen=True, slots=True)
class FcTransportInfo:
    """An ``fc_transport`` class device: the FC port a SCSI target is reached by.

    :ivar target: the target name (``target0:0:0``).
    """

    target: str
    wwpn: str | None
    wwnn: str | None
    port_id: int | None


def parse_fc_transport(
    record: DeviceRecord, warnings: list[DiscoveryWarning]
) -> FcTransportInfo | None:
    """Parse an ``fc_transport`` class device (``targetH:C:T``).

    :returns: the target's FC port, or ``None`` (with a warning) when the name is not
        ``targetH:C:T``. Never raises.
    """
    name = record.sys_name
    if not name.startswith("target") or len(name[6:].split(":")) != 3:
        _warn(warnings, record, WarningCode.BAD_NAME, f"{name!r} is not targetH:C:T")
        return None
    return FcTransportInfo(
        target=name,
        wwpn=_wwn(record, "port_name", warnings),
        wwnn=_wwn(record, "node_name", warnings),
        port_id=_int(record, "port_id", warnings, 16, maximum=0xFFFFFF),
    )


# --- iSCSI ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IscsiSessionInfo:
    """An ``iscsi_session`` class device (``sessionN``)."""

    session_id: int
    host: int | None
    sys_path: str
    target_iqn: str | None
    tpgt: int | None
    state: str | None
    iface: str | None
    initiator_name: str | None


def parse_iscsi_session(
    record: DeviceRecord, warnings: list[DiscoveryWarning]
) -> IscsiSessionInfo | None:
    """Parse an ``iscsi_session`` class device.

    The host is the ``hostN`` component of its path. ``targetname`` missing is warned
    about.

    :returns: the session, or ``None`` (with a warning) when the name is not
        ``sessionN``. Never raises.
    """
    session_id = _numbered(record.sys_name, "session")
    if session_id is None:
        _warn(warnings, record, WarningCode.BAD_NAME, f"{record.sys_name!r} is not sessionN")
        return None
    target = _text(record, "targetname", warnings)
    if target is None:
        _warn(warnings, record, WarningCode.MISSING_ATTRIBUTE, "no targetname")
    return IscsiSessionInfo(
        session_id=session_id,
        host=path_context(record.sys_path).host,
        sys_path=record.sys_path,
        target_iqn=target,
        tpgt=_int(record, "tpgt", warnings, maximum=0xFFFF),
        state=_text(record, "state", warnings),
        iface=_text(record, "ifacename", warnings),
        initiator_name=_text(record, "initiatorname", warnings),
    )


@dataclass(frozen=True, slots=True)
class IscsiConnectionInfo:
    """An ``iscsi_connection`` class device (``connectionS:C``).

    :ivar state: the connection's ``state`` (``up``, ``down`` ...), when reported.
    :ivar persistent_address: ``persistent_address``, even without a port.
    :ivar persistent_port: ``persistent_port``, even without an address.
    """

    session_id: int
    connection_id: int
    persistent_portal: Portal | None
    current_portal: Portal | None
    state: str | None = None
    persistent_address: str | None = None
    persistent_port: int | None = None


def _portal(
    record: DeviceRecord, address: str, port: str, warnings: list[DiscoveryWarning]
) -> Portal | None:
    host = _text(record, address, warnings)
    number = _int(record, port, warnings, maximum=0xFFFF)
    if host is None or number is None:
        return None
    return Portal(host, number)


def parse_iscsi_connection(
    record: DeviceRecord, warnings: list[DiscoveryWarning]
) -> IscsiConnectionInfo | None:
    """Parse an ``iscsi_connection`` class device.

    :returns: the connection's portals, or ``None`` (with a warning) when the name is
        not ``connectionS:C``. Never raises.
    """
    session, _, connection = record.sys_name.removeprefix("connection").partition(":")
    if not (
        record.sys_name.startswith("connection")
        and _small(session) is not None
        and _small(connection) is not None
    ):
        _warn(warnings, record, WarningCode.BAD_NAME, f"{record.sys_name!r} is not connectionS:C")
        return None
    persistent = _portal(record, "persistent_address", "persistent_port", warnings)
    return IscsiConnectionInfo(
        session_id=int(session),
        connection_id=int(connection),
        persistent_portal=persistent,
        current_portal=_portal(record, "address", "port", warnings),
        state=_text(record, "state", warnings),
        # Each half on its own when the portal is incomplete (already warned about).
        persistent_address=(
            persistent.address if persistent else _text(record, "persistent_address")
        ),
        persistent_port=(
            persistent.port if persistent else _int(record, "persistent_port", [], maximum=0xFFFF)
        ),
    )


# --- SCSI devices and block devices ---------------------------------------------------

IdentityFunction = Callable[
    [bytes | None, bytes | None, str | None, str | None, str | None], DeviceIdentity
]
"""``(pg80, pg83, wwid, vendor, model) -> DeviceIdentity``; see :func:`identity_of`."""


def identity_of(
    pg80: bytes | None,
    pg83: bytes | None,
    wwid: str | None,
    vendor: str | None,
    model: str | None,
) -> DeviceIdentity:
    """Call :func:`~tracker.discovery.vpd.device_identity` positionally (an
    :data:`IdentityFunction` that discovery memoizes).

    :returns: the identity. Never raises.
    """
    return device_identity(pg80, pg83, wwid, vendor=vendor, model=model)


@dataclass(frozen=True, slots=True)
class ScsiDeviceInfo:
    """A ``scsi``/``scsi_device`` record (one ``H:C:T:L``)."""

    hctl: Hctl
    sys_path: str
    context: PathContext
    peripheral_type: int | None
    vendor: str | None
    model: str | None
    revision: str | None
    state: str | None
    identity: DeviceIdentity


_HCTL_FORM = re.compile(r"[0-9]+:[0-9]+:[0-9]+:[0-9]+")

# Peripheral types whose units ought to identify themselves: disk, RBC, array
# controller, optical memory, zoned block (or unknown type).
_IDENTIFIED_TYPES = frozenset((None, 0x00, 0x07, 0x0C, 0x0E, 0x14))


def parse_scsi_device(
    record: DeviceRecord,
    warnings: list[DiscoveryWarning],
    identity: IdentityFunction = identity_of,
) -> ScsiDeviceInfo | None:
    """Parse a SCSI device (``H:C:T:L``), including its VPD pages.

    VPD problems become :attr:`~WarningCode.VPD` warnings; a disk-like device that
    ends up with no WWN and no WWID gets a :attr:`~WarningCode.NO_IDENTITY` warning.

    :param identity: how to compute the identity (discovery passes a memoized one,
        since every path of a logical unit carries the same pages).
    :returns: the device, or ``None`` (with a warning) when the name is not
        ``H:C:T:L``. Never raises.
    """
    hctl = Hctl.try_parse(record.sys_name)
    if hctl is None:
        name = record.sys_name
        detail = (
            f"{name[:64]!r} is out of range (H, C, T <= {HCT_MAX}, L <= 2**64-1)"
            if _HCTL_FORM.fullmatch(name)
            else f"{name[:64]!r} is not H:C:T:L"
        )
        _warn(warnings, record, WarningCode.BAD_NAME, detail)
        return None
    attributes = record.attributes
    binary = record.binary_attributes
    raw_vendor = attributes.get("vendor")
    raw_model = attributes.get("model")
    peripheral = _int(record, "type", warnings, value=attributes.get("type"), maximum=0x1F)
    ident = identity(
        binary.get("vpd_pg80"),
        binary.get("vpd_pg83"),
        attributes.get("wwid"),
        raw_vendor,
        raw_model,
    )
    for w in ident.warnings:
        warnings.append(DiscoveryWarning(record.sys_path, WarningCode.VPD, str(w), w))
    too_long = {
        name: None
        for name in ("wwn", "wwid", "serial")
        if len(getattr(ident, name) or "") > IDENTITY_WIDTH
    }
    if too_long:
        _warn(
            warnings,
            record,
            WarningCode.BAD_ATTRIBUTE,
            f"{', '.join(too_long)} longer than {IDENTITY_WIDTH} characters: left out",
        )
        ident = dataclasses.replace(ident, **too_long)  # type: ignore[arg-type]
    if not ident.known and peripheral in _IDENTIFIED_TYPES:
        _warn(
            warnings,
            record,
            WarningCode.NO_IDENTITY,
            "no usable page 0x83 designator and no wwid attribute",
        )
    return ScsiDeviceInfo(
        hctl,
        record.sys_path,
        _parent_context(record.sys_path.rpartition("/")[0]),
        peripheral,
        _text(record, "vendor", warnings, raw_vendor),
        _text(record, "model", warnings, raw_model),
        _text(record, "rev", warnings),
        _text(record, "state", warnings),
        ident,
    )


@dataclass(frozen=True, slots=True)
class BlockDiskInfo:
    """A whole-disk block device (``sda``) hanging from a SCSI device.

    :ivar scsi_path: sys_path of the SCSI device it belongs to (its parent).
    """

    name: str
    sys_path: str
    scsi_path: str
    devno: str | None
    size_bytes: int | None
    logical_block_size: int | None
    read_only: bool | None
    links: tuple[str, ...] = ()


def _devno(record: DeviceRecord, dev: str | None) -> str | None:
    dev = _text(record, "dev", None, dev)
    if dev is not None:
        return dev
    major = record.properties.get("MAJOR")
    minor = record.properties.get("MINOR")
    return f"{major}:{minor}" if major is not None and minor is not None else None


def _size(record: DeviceRecord, warnings: list[DiscoveryWarning], value: str | None) -> int | None:
    sectors = _int(record, "size", warnings, value=value, maximum=SIZE_MAX // SECTOR_SIZE)
    return sectors * SECTOR_SIZE if sectors is not None else None


def parse_block_disk(record: DeviceRecord, warnings: list[DiscoveryWarning]) -> BlockDiskInfo:
    """Parse a whole-disk block device that is not device-mapper.

    Its SCSI device is its ``parent``, or else the path above ``/block/<name>``.
    ``size`` is in 512-byte sectors whatever the logical block size.

    :returns: the block device. Never raises.
    """
    scsi_path = record.parent
    if scsi_path is None:
        scsi_path = record.sys_path.rsplit("/block/", 1)[0]
    get = record.attributes.get
    links = record.udev_links
    if any(len(link) > LINK_WIDTH for link in links):
        _warn(
            warnings,
            record,
            WarningCode.BAD_ATTRIBUTE,
            f"udev links longer than {LINK_WIDTH} characters: left out",
        )
        links = tuple(link for link in links if len(link) <= LINK_WIDTH)
    return BlockDiskInfo(
        record.sys_name,
        record.sys_path,
        scsi_path,
        _devno(record, get("dev")),
        _size(record, warnings, get("size")),
        _int(record, "queue/logical_block_size", warnings, value=get("queue/logical_block_size")),
        _flag(record, "ro", warnings),
        tuple(sorted(links)),
    )


@dataclass(frozen=True, slots=True)
class DmInfo:
    """A device-mapper block device (``dm-N``).

    :ivar slaves: ``(name, sys_path)`` of each slave, sorted by name; the sys_path is
        ``None`` when the link target is unknown.
    """

    block_name: str
    sys_path: str
    name: str | None
    uuid: str | None
    devno: str | None
    size_bytes: int | None
    read_only: bool | None
    suspended: bool | None
    slaves: tuple[tuple[str, str | None], ...]


def parse_dm(record: DeviceRecord, warnings: list[DiscoveryWarning]) -> DmInfo:
    """Parse a device-mapper block device.

    Name, uuid and suspended state come from the ``dm/*`` attributes, or else the
    ``DM_NAME``/``DM_UUID``/``DM_SUSPENDED`` properties. Slaves come from the
    ``slaves/<name>`` links.

    :returns: the dm device. Never raises.
    """
    properties = record.properties
    name = _text(record, "dm/name", warnings) or _text(
        record, "dm/name", warnings, properties.get("DM_NAME")
    )
    uuid = _text(record, "dm/uuid", warnings) or _text(
        record, "dm/uuid", warnings, properties.get("DM_UUID")
    )
    suspended = _flag(record, "dm/suspended", warnings)
    if suspended is None:
        prop = properties.get("DM_SUSPENDED")
        suspended = prop == "1" if prop in ("0", "1") else None
    slaves = sorted(
        (key[7:], target or None) for key, target in record.links.items() if key[:7] == "slaves/"
    )
    return DmInfo(
        block_name=record.sys_name,
        sys_path=record.sys_path,
        name=name,
        uuid=uuid,
        devno=_devno(record, record.attributes.get("dev")),
        size_bytes=_size(record, warnings, record.attributes.get("size")),
        read_only=_flag(record, "ro", warnings),
        suspended=suspended,
        slaves=tuple(slaves),
    )
