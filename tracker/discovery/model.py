"""The frozen picture of a host's SCSI storage that discovery produces.

Everything here is an immutable, hashable value: two :class:`HostState` objects built
from the same records compare equal, and a reconciler can diff two of them by the
natural keys (``key`` properties) of their parts.

Conventions:

* WWNs / WWPNs of FC ports are 16 lowercase hex digits without ``0x``
  (``"2100001b32000000"``), the form os-brick and Cinder connectors use;
* FC port ids are integers (``0x010100``);
* text read from sysfs is stripped of its padding (``"NETAPP  "`` -> ``"NETAPP"``);
  attributes that are absent, empty or ``(null)`` become ``None``;
* sizes are in bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from tracker.discovery.vpd import DeviceIdentity, VpdWarning
from tracker.exceptions import InvalidInput

__all__ = [
    "HCT_MAX",
    "LUN_MAX",
    "DiscoveryWarning",
    "FcPathIds",
    "FcRemotePort",
    "Hctl",
    "HostState",
    "IscsiPathIds",
    "IscsiSession",
    "MultipathMap",
    "MultipathPath",
    "PathState",
    "Portal",
    "ScsiDevice",
    "ScsiHost",
    "Transport",
    "WarningCode",
]


class Transport(StrEnum):
    """Transport of a SCSI host (HBA or software initiator)."""

    FC = "fc"
    ISCSI = "iscsi"
    SAS = "sas"
    OTHER = "other"


@dataclass(frozen=True, slots=True, order=True)
class Hctl:
    """A SCSI address: host, channel, target, LUN.

    The LUN is the kernel's integer LUN (``scsilun_to_int``) as in the sysfs name, so
    it can be 256 or more (flat-space and extended LUNs), up to ``2**64 - 1``
    (:data:`LUN_MAX`); host, channel and target are at most ``2**31 - 1``
    (:data:`HCT_MAX`).
    """

    host: int
    channel: int
    target: int
    lun: int

    def __str__(self) -> str:
        return f"{self.host}:{self.channel}:{self.target}:{self.lun}"

    @classmethod
    def parse(cls, text: str) -> Hctl:
        """Parse ``"H:C:T:L"`` (decimal, as in sysfs names).

        :returns: the address.
        :raises InvalidInput: when ``text`` is not four non-negative decimal integers
            separated by colons.
        """
        hctl = cls.try_parse(text)
        if hctl is None:
            raise InvalidInput(
                "hctl",
                text,
                f"expected H:C:T:L, non-negative integers, H, C, T <= {HCT_MAX}, L <= {LUN_MAX}",
            )
        return hctl

    @classmethod
    def try_parse(cls, text: str) -> Hctl | None:
        """Parse ``"H:C:T:L"`` like :meth:`parse`.

        :returns: the address, or ``None`` when ``text`` is not one. Never raises.
        """
        match = _HCTL.fullmatch(text)
        if match is None:
            return None
        host, channel, target, lun = (int(part) for part in match.groups())
        if max(host, channel, target) > HCT_MAX or lun > LUN_MAX:
            return None
        return cls(host, channel, target, lun)


#: The largest host, channel and target number (the kernel's are C ``int``-sized).
HCT_MAX = 2**31 - 1
#: The largest LUN: LUNs are 64-bit unsigned.
LUN_MAX = 2**64 - 1

# At most 20 digits a part: int() of a longer string could be slow, and is out of range.
_HCTL = re.compile(r"([0-9]{1,20}):([0-9]{1,20}):([0-9]{1,20}):([0-9]{1,20})")


@dataclass(frozen=True, slots=True, order=True)
class Portal:
    """An iSCSI portal: address and TCP port."""

    address: str
    port: int

    def __str__(self) -> str:
        if ":" in self.address:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


@dataclass(frozen=True, slots=True)
class ScsiHost:
    """A SCSI host adapter (``hostN``): an FC HBA port, an iSCSI host, a SAS HBA ...

    :ivar number: the host number N.
    :ivar sys_path: sysfs path of the ``hostN`` device.
    :ivar transport: which transport class the host has.
    :ivar driver: the driver's ``proc_name`` (``qla2xxx``, ``iscsi_tcp``).
    :ivar state: the host state (``running``).
    :ivar wwpn: FC initiator port name.
    :ivar wwnn: FC initiator node name.
    :ivar port_state: FC port state (``Online``, ``Linkdown`` ...).
    :ivar port_id: FC port id (``0x010100``).
    :ivar speed: FC speed as reported (``16 Gbit``).
    :ivar fabric_name: FC fabric name, as a WWN.
    :ivar iscsi_initiator_name: iSCSI initiator IQN.
    """

    number: int
    sys_path: str
    transport: Transport
    driver: str | None = None
    state: str | None = None
    wwpn: str | None = None
    wwnn: str | None = None
    port_state: str | None = None
    port_id: int | None = None
    speed: str | None = None
    fabric_name: str | None = None
    iscsi_initiator_name: str | None = None

    @property
    def name(self) -> str:
        """Return ``hostN``. Never raises."""
        return f"host{self.number}"

    @property
    def key(self) -> int:
        """Return the natural key on this host: the host number. Never raises."""
        return self.number


@dataclass(frozen=True, slots=True)
class FcRemotePort:
    """An FC remote port seen by one local HBA (``rport-H:C-N``).

    :ivar host: local host number H.
    :ivar channel: channel C.
    :ivar number: rport number N.
    :ivar sys_path: sysfs path of the ``fc_remote_ports`` class device.
    :ivar wwpn: remote port name.
    :ivar wwnn: remote node name.
    :ivar port_id: remote FC port id.
    :ivar roles: roles (``("FCP Target",)``).
    :ivar port_state: ``Online``, ``Blocked``, ``Not Present`` ...
    :ivar scsi_target_id: SCSI target id bound to it, ``None`` when not bound.
    """

    host: int
    channel: int
    number: int
    sys_path: str
    wwpn: str | None = None
    wwnn: str | None = None
    port_id: int | None = None
    roles: tuple[str, ...] = ()
    port_state: str | None = None
    scsi_target_id: int | None = None

    @property
    def name(self) -> str:
        """Return ``rport-H:C-N``. Never raises."""
        return f"rport-{self.host}:{self.channel}-{self.number}"

    @property
    def key(self) -> tuple[int, str]:
        """Return the natural key: local host number and remote WWPN (the rport
        name when the WWPN is unknown). Never raises.
        """
        return (self.host, self.wwpn if self.wwpn is not None else self.name)


@dataclass(frozen=True, slots=True)
class IscsiSession:
    """An iSCSI session (``sessionN``).

    :ivar session_id: N.
    :ivar host: the SCSI host number the session's LUNs hang from.
    :ivar sys_path: sysfs path of the ``iscsi_session`` class device.
    :ivar target_iqn: target name.
    :ivar tpgt: target portal group tag.
    :ivar portal: the persistent (configured) portal of connection 0, falling back to
        the current one.
    :ivar current_portal: the portal connection 0 is connected to now (after redirects).
    :ivar state: session state (``LOGGED_IN``, ``FAILED`` ...).
    :ivar iface: the open-iscsi iface name.
    :ivar connection_state: the ``state`` of connection 0 (``up``, ``down``,
        ``failed`` ...); ``None`` when the kernel does not report it. A
        ``LOGGED_IN`` session whose connection is not ``up`` is not healthy
        (discovery warns, :attr:`WarningCode.UNHEALTHY`).
    :ivar persistent_address: connection 0's configured (persistent) address.
    :ivar persistent_port: connection 0's configured (persistent) TCP port.
    """

    session_id: int
    host: int | None
    sys_path: str
    target_iqn: str | None = None
    tpgt: int | None = None
    portal: Portal | None = None
    current_portal: Portal | None = None
    state: str | None = None
    iface: str | None = None
    connection_state: str | None = None
    persistent_address: str | None = None
    persistent_port: int | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """Return the natural key: target IQN, portal and iface (as text; empty when
        unknown). Session ids change on re-login, this does not. Never raises.
        """
        return (
            self.target_iqn or "",
            str(self.portal) if self.portal is not None else "",
            self.iface or "",
        )


@dataclass(frozen=True, slots=True)
class FcPathIds:
    """The FC remote port a SCSI device is reached through.

    :ivar wwpn: target port name.
    :ivar wwnn: target node name.
    :ivar port_id: target FC port id.
    :ivar rport: name of the remote port (``rport-0:0-0``), when known.
    """

    wwpn: str | None
    wwnn: str | None = None
    port_id: int | None = None
    rport: str | None = None


@dataclass(frozen=True, slots=True)
class IscsiPathIds:
    """The iSCSI session a SCSI device is reached through.

    :ivar session_id: the session number.
    :ivar target_iqn: target name.
    :ivar portal: the session's portal (see :attr:`IscsiSession.portal`).
    :ivar tpgt: target portal group tag.
    """

    session_id: int
    target_iqn: str | None = None
    portal: Portal | None = None
    tpgt: int | None = None


@dataclass(frozen=True, slots=True)
class ScsiDevice:
    """A SCSI device (one path to a logical unit) and its block device.

    :ivar hctl: its SCSI address.
    :ivar sys_path: sysfs path of the ``H:C:T:L`` device.
    :ivar peripheral_type: peripheral device type (0 disk, 5 CD-ROM, 0xC array
        controller ...).
    :ivar vendor: INQUIRY vendor, stripped.
    :ivar model: INQUIRY product, stripped.
    :ivar revision: INQUIRY revision, stripped.
    :ivar state: device state (``running``, ``offline``, ``transport-offline``,
        ``blocked`` ...).
    :ivar block_name: the block device name (``sda``), if it has one.
    :ivar block_devno: its ``major:minor``.
    :ivar size_bytes: block device size in bytes.
    :ivar logical_block_size: logical block size in bytes.
    :ivar read_only: whether the block device is read-only.
    :ivar identity: serial, WWN, WWID and designators.
    :ivar transport_ids: the FC or iSCSI target the path goes to.
    :ivar links: the ``/dev/disk/by-id/*`` and ``/dev/disk/by-path/*`` links of
        its block device, sorted; empty without a block device.
    """

    hctl: Hctl
    sys_path: str
    peripheral_type: int | None = None
    vendor: str | None = None
    model: str | None = None
    revision: str | None = None
    state: str | None = None
    block_name: str | None = None
    block_devno: str | None = None
    size_bytes: int | None = None
    logical_block_size: int | None = None
    read_only: bool | None = None
    identity: DeviceIdentity = field(default_factory=DeviceIdentity)
    transport_ids: FcPathIds | IscsiPathIds | None = None
    links: tuple[str, ...] = ()

    @property
    def key(self) -> Hctl:
        """Return the natural key on this host: the SCSI address. Never raises."""
        return self.hctl

    @property
    def wwid(self) -> str | None:
        """Return the multipath-style WWID of the logical unit. Never raises."""
        return self.identity.wwid

    @property
    def running(self) -> bool:
        """Return whether the device state is ``running``. Never raises."""
        return self.state == "running"


class PathState(StrEnum):
    """Health of a multipath member, judged from its SCSI device state."""

    ACTIVE = "active"
    """The SCSI device is running."""
    FAILED = "failed"
    """The SCSI device is offline, blocked, being deleted ..."""
    UNKNOWN = "unknown"
    """No SCSI device was found for the member, or its state is unknown."""


@dataclass(frozen=True, slots=True)
class MultipathPath:
    """One member (slave) of a multipath map.

    :ivar block_name: the member block device (``sda``).
    :ivar hctl: its SCSI address, if it is a SCSI device.
    :ivar state: health judged from :attr:`device_state`.
    :ivar device_state: the SCSI device state as reported.
    """

    block_name: str
    hctl: Hctl | None = None
    state: PathState = PathState.UNKNOWN
    device_state: str | None = None


@dataclass(frozen=True, slots=True)
class MultipathMap:
    """A device-mapper multipath map (dm uuid ``mpath-<wwid>``).

    :ivar name: dm name (``mpath0`` or the WWID with ``user_friendly_names no``).
    :ivar uuid: dm uuid.
    :ivar wwid: the WWID, the dm uuid without ``mpath-``.
    :ivar block_name: ``dm-N``.
    :ivar sys_path: sysfs path of the dm block device.
    :ivar size_bytes: size in bytes.
    :ivar read_only: whether the map is read-only.
    :ivar suspended: whether the map is suspended.
    :ivar paths: members, sorted by SCSI address then name.
    """

    name: str | None
    uuid: str
    wwid: str
    block_name: str
    sys_path: str
    size_bytes: int | None = None
    read_only: bool | None = None
    suspended: bool | None = None
    paths: tuple[MultipathPath, ...] = ()

    @property
    def key(self) -> str:
        """Return the natural key: the WWID. Never raises."""
        return self.wwid

    @property
    def active_paths(self) -> tuple[MultipathPath, ...]:
        """Return the members whose state is :attr:`PathState.ACTIVE`. Never raises."""
        return tuple(p for p in self.paths if p.state is PathState.ACTIVE)


class WarningCode(StrEnum):
    """Kinds of :class:`DiscoveryWarning`."""

    BAD_NAME = "bad-name"
    """A device name does not have the expected form (``hostN``, ``H:C:T:L`` ...)."""
    BAD_ATTRIBUTE = "bad-attribute"
    """An attribute is present but its value cannot be parsed."""
    MISSING_ATTRIBUTE = "missing-attribute"
    """An attribute needed to make sense of the device is absent."""
    VPD = "vpd"
    """A VPD page problem (see :attr:`DiscoveryWarning.vpd`)."""
    NO_IDENTITY = "no-identity"
    """A SCSI device has neither usable VPD identifiers nor a ``wwid`` attribute."""
    ORPHAN = "orphan"
    """A device whose parent or peer the records do not contain."""
    WWID_MISMATCH = "wwid-mismatch"
    """A multipath member whose WWID differs from the map's."""
    DUPLICATE = "duplicate"
    """Two records with the same sys_path or the same key; the first one is kept."""
    UNHEALTHY = "unhealthy"
    """Something that reports itself usable although a part it needs is down (an
    iSCSI session ``LOGGED_IN`` whose connection is not ``up``)."""


@dataclass(frozen=True, slots=True)
class DiscoveryWarning:
    """Something discovery could not make sense of; the rest was still discovered.

    :ivar sys_path: the record it is about.
    :ivar code: what kind of problem.
    :ivar detail: a human-readable explanation.
    :ivar vpd: the VPD page warning, for :attr:`WarningCode.VPD`.
    """

    sys_path: str
    code: WarningCode
    detail: str
    vpd: VpdWarning | None = None

    def __str__(self) -> str:
        return f"{self.sys_path}: {self.detail}"

    def sort_key(self) -> tuple[str, str, str, int]:
        """Return the key :class:`HostState` orders warnings by. Never raises."""
        return (
            self.sys_path,
            self.code.value,
            self.detail,
            self.vpd.offset if self.vpd is not None else -1,
        )


@dataclass(frozen=True, slots=True)
class HostState:
    """Everything discovery found on one host, in a deterministic order.

    :ivar host_name: the host's name, as given to discovery.
    :ivar scsi_hosts: sorted by host number.
    :ivar fc_remote_ports: sorted by (host, channel, rport number).
    :ivar iscsi_sessions: sorted by session id.
    :ivar scsi_devices: sorted by H:C:T:L.
    :ivar multipath_maps: sorted by dm name, then WWID.
    :ivar warnings: sorted by sys_path, code, detail.
    """

    host_name: str
    scsi_hosts: tuple[ScsiHost, ...] = ()
    fc_remote_ports: tuple[FcRemotePort, ...] = ()
    iscsi_sessions: tuple[IscsiSession, ...] = ()
    scsi_devices: tuple[ScsiDevice, ...] = ()
    multipath_maps: tuple[MultipathMap, ...] = ()
    warnings: tuple[DiscoveryWarning, ...] = ()

    def scsi_host(self, number: int) -> ScsiHost | None:
        """Return the SCSI host with that number, or ``None``. Never raises."""
        return next((h for h in self.scsi_hosts if h.number == number), None)

    def scsi_device(self, hctl: Hctl | str) -> ScsiDevice | None:
        """Return the SCSI device at that address (``Hctl`` or ``"H:C:T:L"``), or
        ``None``. Never raises.
        """
        wanted = Hctl.try_parse(hctl) if isinstance(hctl, str) else hctl
        return next((d for d in self.scsi_devices if d.hctl == wanted), None)

    def devices_for_wwid(self, wwid: str) -> tuple[ScsiDevice, ...]:
        """Return every SCSI device (path) of the logical unit with that WWID, in
        address order. Never raises.
        """
        return tuple(d for d in self.scsi_devices if d.identity.wwid == wwid)

    def multipath_map(self, wwid: str) -> MultipathMap | None:
        """Return the multipath map of that WWID, or ``None``. Never raises."""
        return next((m for m in self.multipath_maps if m.wwid == wwid), None)
