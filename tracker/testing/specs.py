"""Typed, frozen descriptions of a simulated storage host's parts.

The specs a :class:`tracker.testing.builder.Testbed` takes, and the kernel's
sd naming and numbering (:func:`sd_name`, :func:`sd_devnum`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tracker.exceptions import TestbedError
from tracker.host.records import FrozenMap

__all__ = [
    "DiskSpec",
    "FcHbaSpec",
    "FcRemotePortSpec",
    "Hctl",
    "HostSpec",
    "IscsiHostSpec",
    "IscsiSessionSpec",
    "LunSpec",
    "MultipathSpec",
    "SasEndDeviceSpec",
    "SasHostSpec",
    "sd_devnum",
    "sd_name",
]

#: Major numbers of sd disks, by ``index >> 4`` (kernel ``sd_major``).
_SD_MAJORS = (8, 65, 66, 67, 68, 69, 70, 71, 128, 129, 130, 131, 132, 133, 134, 135)


def sd_name(index: int) -> str:
    """Name the ``index``-th sd disk as the kernel does.

    :returns: ``"sda"`` for 0, ``"sdz"`` for 25, ``"sdaa"`` for 26 ...
    :raises tracker.exceptions.TestbedError: for a negative index.
    """
    if index < 0:
        raise TestbedError(what=f"sd disk #{index}", reason="negative index")
    letters = ""
    number = index + 1
    while number > 0:
        number, remainder = divmod(number - 1, 26)
        letters = chr(ord("a") + remainder) + letters
    return "sd" + letters


def sd_devnum(index: int) -> tuple[int, int]:
    """Give the ``(major, minor)`` the kernel assigns to the ``index``-th sd disk.

    :returns: e.g. ``(8, 0)`` for 0, ``(65, 0)`` for 16, ``(8, 65536)`` for 256.
    :raises tracker.exceptions.TestbedError: for an index out of the kernel's range.
    """
    if not 0 <= index < (1 << 20):
        raise TestbedError(what=f"sd disk #{index}", reason="index out of range")
    major = _SD_MAJORS[(index & 0xF0) >> 4]
    minor = ((index & 0xF) << 4) | ((index & 0xFFF00) << 8)
    return major, minor


# --- specs -------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Hctl:
    """A SCSI address ``host:channel:target:lun``."""

    host: int
    channel: int
    target: int
    lun: int

    def __str__(self) -> str:
        return f"{self.host}:{self.channel}:{self.target}:{self.lun}"

    @property
    def target_name(self) -> str:
        """The target's sysname.

        :returns: ``"targetH:C:T"``.
        :raises: nothing.
        """
        return f"target{self.host}:{self.channel}:{self.target}"


@dataclass(frozen=True, slots=True)
class HostSpec:
    """A SCSI host without a transport class (virtio, ahci ...).

    :ivar parent: device path below ``/devices`` it hangs from.
    """

    host: int
    proc_name: str = "virtio_scsi"
    parent: str = "/devices/pci0000:00/0000:00:1f.0"
    state: str = "running"


@dataclass(frozen=True, slots=True)
class FcHbaSpec:
    """A Fibre Channel HBA port (``scsi_host`` + ``fc_host``)."""

    host: int
    wwpn: int
    wwnn: int
    port_state: str = "Online"
    port_id: int = 0x010100
    port_type: str = "NPort (fabric port)"
    speed: str = "16 Gbit"
    fabric_name: int = 0x100000051E000001
    symbolic_name: str = "QLE2742 FW:v9.06.02 DVR:v10.02.08.200-k"
    proc_name: str = "qla2xxx"
    pci_address: str | None = None
    state: str = "running"


@dataclass(frozen=True, slots=True)
class FcRemotePortSpec:
    """A remote FC port seen by an HBA (``rport-H:C-N``).

    :ivar scsi_target_id: the SCSI target id it is bound to, ``None`` for
        ``number``; ``-1`` when it is not a target.
    """

    host: int
    number: int
    wwpn: int
    wwnn: int
    port_id: int
    roles: str = "FCP Target"
    port_state: str = "Online"
    channel: int = 0
    scsi_target_id: int | None = None
    dev_loss_tmo: int = 30
    fast_io_fail_tmo: str = "5"

    @property
    def target_id(self) -> int:
        """The SCSI target id in use.

        :returns: ``scsi_target_id``, or ``number`` when that is ``None``.
        :raises: nothing.
        """
        return self.number if self.scsi_target_id is None else self.scsi_target_id


@dataclass(frozen=True, slots=True)
class IscsiHostSpec:
    """An iSCSI software host (``scsi_host`` + ``iscsi_host``)."""

    host: int
    initiator_iqn: str = "iqn.1993-08.org.debian:01:abcdef"
    ipaddress: str = "192.0.2.1"
    proc_name: str = "iscsi_tcp"
    state: str = "running"


@dataclass(frozen=True, slots=True)
class IscsiSessionSpec:
    """An iSCSI session with its one connection (``sessionN``, ``connectionN:C``).

    :ivar connection_state: the connection's ``state`` attribute (``up``,
        ``down``, ``failed`` ...).
    """

    host: int
    session: int
    target_iqn: str
    portal_address: str
    portal_port: int = 3260
    tpgt: int = 1
    state: str = "LOGGED_IN"
    target_state: str = "SCANNED"
    iface: str = "default"
    initiator_iqn: str = "(null)"
    recovery_tmo: int = 120
    connection: int = 0
    connection_state: str = "up"


@dataclass(frozen=True, slots=True)
class SasHostSpec:
    """A SAS HBA (``scsi_host`` + ``sas_host``)."""

    host: int
    proc_name: str = "mpt3sas"
    pci_address: str | None = None
    state: str = "running"


@dataclass(frozen=True, slots=True)
class SasEndDeviceSpec:
    """A SAS end device behind a SAS host (``port-H:N/end_device-H:N``)."""

    host: int
    port: int
    sas_address: int
    target: int
    channel: int = 0
    bay: int = 0
    phy_identifier: int = 0


@dataclass(frozen=True, slots=True)
class DiskSpec:
    """The sd block device of a LUN.

    :ivar size: size in 512-byte sectors.
    :ivar udev_properties: extra properties (udev's ``ID_*``) for its uevent.
    :ivar udev_links: its links below ``<root>/dev/disk`` (``"by-id/scsi-3600..."``),
        or ``None`` for the ones udev's rules would make: ``by-id/scsi-<ID_SERIAL>``
        and ``by-id/wwn-<ID_WWN_WITH_EXTENSION>`` (for the first disk of that
        name only: udev points one link at one device), and ``by-path/...`` from
        where the LUN is (FC remote port, iSCSI portal and target, PCI host).
    """

    name: str
    major: int
    minor: int
    size: int = 2097152
    ro: bool = False
    removable: bool = False
    logical_block_size: int = 512
    udev_properties: FrozenMap = field(default_factory=FrozenMap)
    udev_links: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class LunSpec:
    """A SCSI logical unit (``scsi_device``) and, optionally, its disk.

    ``vendor``/``model``/``rev`` are padded as the kernel pads them (8/16/4
    characters). ``wwid``, ``vpd_pg80`` and ``vpd_pg83`` are written only when
    not ``None``.
    """

    hctl: Hctl
    vendor: str
    model: str
    rev: str = "0001"
    state: str = "running"
    wwid: str | None = None
    vpd_pg80: bytes | None = None
    vpd_pg83: bytes | None = None
    scsi_type: int = 0
    scsi_level: int = 7
    queue_depth: int = 64
    timeout: int = 30
    disk: DiskSpec | None = None


@dataclass(frozen=True, slots=True)
class MultipathSpec:
    """A device-mapper multipath map ``dm-<index>`` over sd disks.

    :ivar uuid: the dm uuid (``mpath-<wwid>``).
    :ivar paths: names of the sd disks it is built on.
    """

    index: int
    name: str
    uuid: str
    paths: tuple[str, ...]
    size: int = 2097152
    major: int = 253
    suspended: bool = False
    udev_properties: FrozenMap = field(default_factory=FrozenMap)
