"""Simulated storage hosts: a builder for umockdev-compatible sysfs trees.

:class:`Testbed` writes, below one directory, the layout umockdev's own
testbed writes below ``$UMOCKDEV_DIR`` (measured with ``umockdev-run -d``):

* ``sys/devices/...`` device directories, each with a ``uevent`` file holding
  *all* its properties (``SUBSYSTEM=`` first, ``DEVNAME`` without ``/dev/``,
  udev's ``ID_*``/``DM_*`` too: umockdev has no udev database), text
  attributes ending in ``\\n``, binary attributes as raw bytes;
* a ``subsystem`` link in each device (``../bus/scsi`` for bus devices,
  ``../class/<name>`` otherwise), ``sys/bus/<name>/devices/<dev>`` or
  ``sys/class/<name>/<dev>`` links, ``sys/block/<disk>`` and
  ``sys/dev/block/M:m`` for block devices, a ``device`` link in each class
  device, ``holders/``/``slaves/`` links between disks and dm maps;
* kernel objects without a subsystem (``rport-H:C-N``, ``sessionN``,
  ``connectionN:M``, ``port-H:N``, ``end_device-H:N``) as directories with an
  empty ``uevent``;
* ``dev/<name>`` device nodes as umockdev fakes them: an empty file with the
  sticky bit (block device) and ``dev/.node/<name>`` -> ``"M:m"``.

The tree is read by :class:`tracker.host.sources.SysfsTreeSource`, by
``lsscsi -y <root>/sys``, and by libudev/pyudev in a process started with
:func:`preload_environment` (see :func:`run_under_preload`).

Only typed, frozen specs go in; the builder keeps a registry so that LUNs find
their target's place (rport, iSCSI session, SAS end device or bare host).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from tracker.exceptions import HostError, PreloadLibraryMissing, TestbedError
from tracker.host.executor import CommandExecutor, CommandResult
from tracker.host.records import FrozenMap

__all__ = [
    "PRELOAD_LIBRARY",
    "DiskSpec",
    "FcHbaSpec",
    "FcRemotePortSpec",
    "Hctl",
    "HostSpec",
    "IscsiHostSpec",
    "IscsiSessionSpec",
    "LsscsiRow",
    "LunSpec",
    "MultipathSpec",
    "SasEndDeviceSpec",
    "SasHostSpec",
    "Testbed",
    "find_preload_library",
    "preload_environment",
    "require_lsscsi",
    "require_no_udevd",
    "require_preload_library",
    "run_lsscsi",
    "run_under_preload",
    "sd_devnum",
    "sd_name",
    "unavailable",
]

#: File name of umockdev's preload library.
PRELOAD_LIBRARY = "libumockdev-preload.so.0"

_MULTIARCH_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/powerpc64le-linux-gnu",
    "/usr/lib/s390x-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
)

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
    """An iSCSI session with its one connection (``sessionN``, ``connectionN:C``)."""

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
    """

    name: str
    major: int
    minor: int
    size: int = 2097152
    ro: bool = False
    removable: bool = False
    logical_block_size: int = 512
    udev_properties: FrozenMap = field(default_factory=FrozenMap)


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


# --- the builder ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Lun:
    sys_path: str
    disk: DiskSpec | None


_BUS_SUBSYSTEMS = frozenset({"scsi", "pci", "platform"})


class Testbed:
    """Builds a simulated storage host below ``root``.

    :param root: an existing, preferably empty directory (the future
        ``$UMOCKDEV_DIR``); use tmpfs for large testbeds.
    :raises tracker.exceptions.TestbedError: when ``root`` is not a directory.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise TestbedError(what=f"testbed at {self.root}", reason="not a directory")
        self._sys = self.root / "sys"
        for sub in ("devices", "bus", "class", "block", "dev/block"):
            (self._sys / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "dev" / ".node").mkdir(parents=True, exist_ok=True)
        self._hosts: dict[int, str] = {}
        self._host_kinds: dict[int, str] = {}
        self._target_parents: dict[tuple[int, int, int], str] = {}
        self._sessions: dict[int, str] = {}
        self._luns: dict[Hctl, _Lun] = {}
        self._disks: dict[str, str] = {}
        self._multipaths: dict[int, str] = {}
        self._fc_rports: dict[tuple[int, int, int], FcRemotePortSpec] = {}

    @classmethod
    def create(cls, parent: Path | None = None, prefix: str = "testbed-") -> Testbed:
        """Make a testbed in a new temporary directory.

        :param parent: where to create it; ``/dev/shm`` when writable (tmpfs
            is much faster), else the system temporary directory.
        :returns: the new, empty :class:`Testbed`. The caller removes it.
        :raises OSError: when no directory can be created.
        """
        if parent is None:
            shm = Path("/dev/shm")  # noqa: S108 - mkdtemp makes a private directory
            parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
        return cls(Path(tempfile.mkdtemp(prefix=prefix, dir=parent)))

    @property
    def sys_dir(self) -> Path:
        """The ``sys`` directory of the testbed (what ``lsscsi -y`` takes).

        :returns: ``root / "sys"``.
        :raises: nothing.
        """
        return self._sys

    @property
    def disks(self) -> Mapping[str, str]:
        """The sd disks present.

        :returns: disk name -> its sys_path.
        :raises: nothing.
        """
        return dict(self._disks)

    @property
    def luns(self) -> tuple[Hctl, ...]:
        """The LUNs present.

        :returns: their addresses, sorted.
        :raises: nothing.
        """
        return tuple(sorted(self._luns))

    # -- low-level writers --

    def _dir(self, sys_path: str) -> Path:
        return self._sys / sys_path.lstrip("/")

    def _kobject(self, sys_path: str) -> None:
        """A directory with an empty ``uevent``: a device without subsystem."""
        directory = self._dir(sys_path)
        directory.mkdir(parents=True, exist_ok=True)
        uevent = directory / "uevent"
        if not uevent.exists():
            uevent.write_bytes(b"")

    def _link(self, at: Path, target: Path) -> None:
        at.parent.mkdir(parents=True, exist_ok=True)
        if at.is_symlink():
            at.unlink()
        at.symlink_to(os.path.relpath(target, at.parent))

    def _device(
        self,
        sys_path: str,
        subsystem: str,
        *,
        devtype: str | None = None,
        properties: Iterable[tuple[str, str]] = (),
        attributes: Iterable[tuple[str, str]] = (),
        binary: Iterable[tuple[str, bytes]] = (),
        class_device: bool = False,
    ) -> None:
        directory = self._dir(sys_path)
        directory.mkdir(parents=True, exist_ok=True)
        lines = [f"SUBSYSTEM={subsystem}"]
        if devtype is not None:
            lines.append(f"DEVTYPE={devtype}")
        lines.extend(f"{key}={value}" for key, value in properties)
        (directory / "uevent").write_text("\n".join(lines) + "\n")
        for name, text in attributes:
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{text}\n")
        for name, data in binary:
            (directory / name).write_bytes(data)
        sys_name = directory.name
        if subsystem in _BUS_SUBSYSTEMS:
            home = self._sys / "bus" / subsystem
            self._link(home / "devices" / sys_name, directory)
        else:
            home = self._sys / "class" / subsystem
            self._link(home / sys_name, directory)
        self._link(directory / "subsystem", home)
        if class_device:
            self._link(directory / "device", directory.parent.parent)

    def _block(self, sys_path: str, name: str, major: int, minor: int) -> None:
        directory = self._dir(sys_path)
        self._link(self._sys / "block" / name, directory)
        self._link(self._sys / "dev" / "block" / f"{major}:{minor}", directory)
        (directory / "dev").write_text(f"{major}:{minor}\n")
        node = self.root / "dev" / name
        node.write_bytes(b"")
        node.chmod(0o1644)
        devnum = self.root / "dev" / ".node" / name
        if devnum.is_symlink():
            devnum.unlink()
        devnum.symlink_to(f"{major}:{minor}")

    def set_attribute(self, sys_path: str, name: str, value: str) -> None:
        """Change (or add) a text attribute of an existing device.

        :param sys_path: the device path (``/devices/...``).
        :param name: attribute path relative to the device.
        :param value: the text, written with a trailing newline.
        :raises tracker.exceptions.TestbedError: when there is no such device.
        """
        directory = self._dir(sys_path)
        if not (directory / "uevent").is_file():
            raise TestbedError(what=f"attribute {name} of {sys_path}", reason="no such device")
        (directory / name).write_text(f"{value}\n")

    # -- hosts --

    def _scsi_host(self, host: int, parent: str, kind: str, proc_name: str, state: str) -> str:
        if host in self._hosts:
            raise TestbedError(what=f"host{host}", reason="host number already used")
        if not parent.startswith("/devices/"):
            raise TestbedError(what=f"host{host}", reason=f"parent {parent!r} not below /devices")
        self._dir(parent).mkdir(parents=True, exist_ok=True)
        host_path = f"{parent}/host{host}"
        self._device(host_path, "scsi", devtype="scsi_host")
        self._device(
            f"{host_path}/scsi_host/host{host}",
            "scsi_host",
            attributes=(("proc_name", proc_name), ("unique_id", str(host)), ("state", state)),
            class_device=True,
        )
        (self._dir(f"{host_path}/scsi_host/host{host}") / "scan").write_bytes(b"")
        self._hosts[host] = host_path
        self._host_kinds[host] = kind
        return host_path

    def _pci(self, address: str) -> str:
        path = f"/devices/pci0000:00/{address}"
        if not (self._dir(path) / "uevent").exists():
            self._device(path, "pci", properties=(("PCI_CLASS", "C0400"),))
        return path

    def add_host(self, spec: HostSpec) -> str:
        """Add a SCSI host with no transport class; its targets hang from it directly.

        :returns: the host's sys_path.
        :raises tracker.exceptions.TestbedError: when the host number is taken.
        """
        return self._scsi_host(spec.host, spec.parent, "plain", spec.proc_name, spec.state)

    def add_fc_hba(self, spec: FcHbaSpec) -> str:
        """Add an FC HBA port: ``hostN`` with ``scsi_host`` and ``fc_host``.

        :returns: the host's sys_path.
        :raises tracker.exceptions.TestbedError: when the host number is taken.
        """
        parent = self._pci(spec.pci_address or f"0000:00:{(spec.host % 32):02x}.{spec.host // 32}")
        host_path = self._scsi_host(spec.host, parent, "fc", spec.proc_name, spec.state)
        self._device(
            f"{host_path}/fc_host/host{spec.host}",
            "fc_host",
            attributes=(
                ("port_name", f"0x{spec.wwpn:016x}"),
                ("node_name", f"0x{spec.wwnn:016x}"),
                ("port_state", spec.port_state),
                ("port_id", f"0x{spec.port_id:06x}"),
                ("port_type", spec.port_type),
                ("speed", spec.speed),
                ("fabric_name", f"0x{spec.fabric_name:016x}"),
                ("symbolic_name", spec.symbolic_name),
                ("tgtid_bind_type", "wwpn (World Wide Port Name)"),
            ),
            class_device=True,
        )
        return host_path

    def add_fc_remote_port(self, spec: FcRemotePortSpec) -> str:
        """Add a remote port to an FC HBA; LUNs of its target id go below it.

        :returns: the ``fc_remote_ports`` class device's sys_path.
        :raises tracker.exceptions.TestbedError: when the host is not an FC
            HBA or the target id is already bound.
        """
        host_path = self._require_host(
            spec.host, "fc", f"rport-{spec.host}:{spec.channel}-{spec.number}"
        )
        name = f"rport-{spec.host}:{spec.channel}-{spec.number}"
        rport = f"{host_path}/{name}"
        self._kobject(rport)
        target_id = spec.target_id if "FCP Target" in spec.roles else -1
        self._device(
            f"{rport}/fc_remote_ports/{name}",
            "fc_remote_ports",
            attributes=(
                ("port_name", f"0x{spec.wwpn:016x}"),
                ("node_name", f"0x{spec.wwnn:016x}"),
                ("port_id", f"0x{spec.port_id:06x}"),
                ("port_state", spec.port_state),
                ("roles", spec.roles),
                ("scsi_target_id", str(target_id)),
                ("dev_loss_tmo", str(spec.dev_loss_tmo)),
                ("fast_io_fail_tmo", spec.fast_io_fail_tmo),
                ("supported_classes", "Class 3"),
            ),
            class_device=True,
        )
        if target_id >= 0:
            key = (spec.host, spec.channel, target_id)
            if key in self._target_parents:
                raise TestbedError(what=name, reason=f"target id {target_id} already bound")
            self._target_parents[key] = rport
            self._fc_rports[key] = spec
        return f"{rport}/fc_remote_ports/{name}"

    def add_iscsi_host(self, spec: IscsiHostSpec) -> str:
        """Add an iSCSI host (below ``/devices/platform``).

        :returns: the host's sys_path.
        :raises tracker.exceptions.TestbedError: when the host number is taken.
        """
        host_path = self._scsi_host(
            spec.host, "/devices/platform", "iscsi", spec.proc_name, spec.state
        )
        self._device(
            f"{host_path}/iscsi_host/host{spec.host}",
            "iscsi_host",
            attributes=(
                ("ipaddress", spec.ipaddress),
                ("initiatorname", spec.initiator_iqn),
                ("netdev", "<NULL>"),
                ("hwaddress", "<NULL>"),
            ),
            class_device=True,
        )
        return host_path

    def add_iscsi_session(self, spec: IscsiSessionSpec) -> str:
        """Add a session (and its connection) to an iSCSI host; its LUNs go below it.

        :returns: the ``iscsi_session`` class device's sys_path.
        :raises tracker.exceptions.TestbedError: when the host is not an
            iSCSI host or already has a session.
        """
        host_path = self._require_host(spec.host, "iscsi", f"session{spec.session}")
        if spec.host in self._sessions:
            raise TestbedError(what=f"session{spec.session}", reason="host already has a session")
        session = f"{host_path}/session{spec.session}"
        connection = f"{session}/connection{spec.session}:{spec.connection}"
        self._kobject(session)
        self._kobject(connection)
        self._device(
            f"{session}/iscsi_session/session{spec.session}",
            "iscsi_session",
            attributes=(
                ("targetname", spec.target_iqn),
                ("tpgt", str(spec.tpgt)),
                ("state", spec.state),
                ("target_state", spec.target_state),
                ("recovery_tmo", str(spec.recovery_tmo)),
                ("ifacename", spec.iface),
                ("initiatorname", spec.initiator_iqn),
            ),
            class_device=True,
        )
        self._device(
            f"{connection}/iscsi_connection/connection{spec.session}:{spec.connection}",
            "iscsi_connection",
            attributes=(
                ("persistent_address", spec.portal_address),
                ("persistent_port", str(spec.portal_port)),
                ("address", spec.portal_address),
                ("port", str(spec.portal_port)),
            ),
            class_device=True,
        )
        self._sessions[spec.host] = session
        return f"{session}/iscsi_session/session{spec.session}"

    def add_sas_host(self, spec: SasHostSpec) -> str:
        """Add a SAS HBA: ``hostN`` with ``scsi_host`` and ``sas_host``.

        :returns: the host's sys_path.
        :raises tracker.exceptions.TestbedError: when the host number is taken.
        """
        parent = self._pci(spec.pci_address or f"0000:00:{(spec.host % 32):02x}.{spec.host // 32}")
        host_path = self._scsi_host(spec.host, parent, "sas", spec.proc_name, spec.state)
        self._device(f"{host_path}/sas_host/host{spec.host}", "sas_host", class_device=True)
        return host_path

    def add_sas_end_device(self, spec: SasEndDeviceSpec) -> str:
        """Add a SAS end device; LUNs of its target id go below it.

        :returns: the ``sas_device`` class device's sys_path.
        :raises tracker.exceptions.TestbedError: when the host is not a SAS
            host or the target id is taken.
        """
        name = f"end_device-{spec.host}:{spec.port}"
        host_path = self._require_host(spec.host, "sas", name)
        port = f"{host_path}/port-{spec.host}:{spec.port}"
        end_device = f"{port}/{name}"
        self._kobject(port)
        self._kobject(end_device)
        self._device(
            f"{end_device}/sas_device/{name}",
            "sas_device",
            attributes=(
                ("sas_address", f"0x{spec.sas_address:016x}"),
                ("device_type", "end device"),
                ("phy_identifier", str(spec.phy_identifier)),
                ("enclosure_identifier", "0x0000000000000000"),
            ),
            class_device=True,
        )
        self._device(
            f"{end_device}/sas_end_device/{name}",
            "sas_end_device",
            attributes=(("bay_identifier", str(spec.bay)), ("enclosure_identifier", "0")),
            class_device=True,
        )
        key = (spec.host, spec.channel, spec.target)
        if key in self._target_parents:
            raise TestbedError(what=name, reason=f"target id {spec.target} already bound")
        self._target_parents[key] = end_device
        return f"{end_device}/sas_device/{name}"

    def _require_host(self, host: int, kind: str, what: str) -> str:
        if self._host_kinds.get(host) != kind:
            raise TestbedError(what=what, reason=f"host{host} is not a {kind} host")
        return self._hosts[host]

    # -- targets and LUNs --

    def _target(self, hctl: Hctl) -> str:
        kind = self._host_kinds.get(hctl.host)
        if kind is None:
            raise TestbedError(what=f"LUN {hctl}", reason=f"no host{hctl.host}")
        key = (hctl.host, hctl.channel, hctl.target)
        if kind == "iscsi":
            parent = self._sessions.get(hctl.host)
            if parent is None:
                raise TestbedError(what=f"LUN {hctl}", reason=f"host{hctl.host} has no session")
        elif kind == "plain":
            parent = self._hosts[hctl.host]
        else:
            found = self._target_parents.get(key)
            if found is None:
                raise TestbedError(
                    what=f"LUN {hctl}",
                    reason=f"no remote port or end device with target id {hctl.target}",
                )
            parent = found
        target = f"{parent}/{hctl.target_name}"
        if not (self._dir(target) / "uevent").exists():
            self._device(target, "scsi", devtype="scsi_target")
            rport = self._fc_rports.get(key)
            if rport is not None:
                self._device(
                    f"{target}/fc_transport/{hctl.target_name}",
                    "fc_transport",
                    attributes=(
                        ("port_name", f"0x{rport.wwpn:016x}"),
                        ("node_name", f"0x{rport.wwnn:016x}"),
                        ("port_id", f"0x{rport.port_id:06x}"),
                    ),
                    class_device=True,
                )
        return target

    def add_lun(self, spec: LunSpec) -> str:
        """Add a LUN (``scsi_device``, ``scsi_device``/``scsi_disk`` class devices) and its disk.

        The target (and, behind an FC remote port, its ``fc_transport``) is
        created on first use.

        :returns: the sys_path of the ``scsi_device``.
        :raises tracker.exceptions.TestbedError: when the address is taken,
            its host/port/session is missing, or the disk name is taken.
        """
        hctl = spec.hctl
        if hctl in self._luns:
            raise TestbedError(what=f"LUN {hctl}", reason="address already used")
        if spec.disk is not None and spec.disk.name in self._disks:
            raise TestbedError(what=f"LUN {hctl}", reason=f"disk {spec.disk.name} already exists")
        device = f"{self._target(hctl)}/{hctl}"
        attributes = [
            ("vendor", f"{spec.vendor:<8}"),
            ("model", f"{spec.model:<16}"),
            ("rev", f"{spec.rev:<4}"),
            ("type", str(spec.scsi_type)),
            ("scsi_level", str(spec.scsi_level)),
            ("state", spec.state),
            ("queue_depth", str(spec.queue_depth)),
            ("timeout", str(spec.timeout)),
            ("device_blocked", "0"),
        ]
        if spec.wwid is not None:
            attributes.append(("wwid", spec.wwid))
        binary = [
            (name, data)
            for name, data in (("vpd_pg80", spec.vpd_pg80), ("vpd_pg83", spec.vpd_pg83))
            if data is not None
        ]
        self._device(
            device,
            "scsi",
            devtype="scsi_device",
            properties=(("MODALIAS", f"scsi:t-0x{spec.scsi_type:02x}"),),
            attributes=attributes,
            binary=binary,
        )
        self._device(f"{device}/scsi_device/{hctl}", "scsi_device", class_device=True)
        if spec.disk is not None:
            disk = spec.disk
            self._device(f"{device}/scsi_disk/{hctl}", "scsi_disk", class_device=True)
            block = f"{device}/block/{disk.name}"
            self._device(
                block,
                "block",
                devtype="disk",
                properties=(
                    ("DEVNAME", disk.name),
                    ("MAJOR", str(disk.major)),
                    ("MINOR", str(disk.minor)),
                    *disk.udev_properties.items(),
                ),
                attributes=(
                    ("size", str(disk.size)),
                    ("ro", str(int(disk.ro))),
                    ("removable", str(int(disk.removable))),
                    ("range", "16"),
                    ("queue/logical_block_size", str(disk.logical_block_size)),
                ),
                class_device=True,
            )
            (self._dir(block) / "holders").mkdir(exist_ok=True)
            self._block(block, disk.name, disk.major, disk.minor)
            self._disks[disk.name] = block
        self._luns[hctl] = _Lun(sys_path=device, disk=spec.disk)
        return device

    def add_multipath(self, spec: MultipathSpec) -> str:
        """Add a multipath map ``dm-<index>`` with ``slaves/``/``holders/`` links.

        :returns: the map's sys_path (``/devices/virtual/block/dm-N``).
        :raises tracker.exceptions.TestbedError: when the index is taken or a
            path disk does not exist.
        """
        name = f"dm-{spec.index}"
        if spec.index in self._multipaths:
            raise TestbedError(what=name, reason="dm index already used")
        missing = [path for path in spec.paths if path not in self._disks]
        if missing:
            raise TestbedError(what=name, reason=f"no disk {', '.join(missing)}")
        sys_path = f"/devices/virtual/block/{name}"
        self._device(
            sys_path,
            "block",
            devtype="disk",
            properties=(
                ("DEVNAME", name),
                ("MAJOR", str(spec.major)),
                ("MINOR", str(spec.index)),
                ("DM_NAME", spec.name),
                ("DM_UUID", spec.uuid),
                ("DM_SUSPENDED", str(int(spec.suspended))),
                ("DM_UDEV_RULES_VSN", "2"),
                *spec.udev_properties.items(),
            ),
            attributes=(
                ("size", str(spec.size)),
                ("ro", "0"),
                ("removable", "0"),
                ("dm/name", spec.name),
                ("dm/uuid", spec.uuid),
                ("dm/suspended", str(int(spec.suspended))),
            ),
        )
        directory = self._dir(sys_path)
        (directory / "slaves").mkdir(exist_ok=True)
        (directory / "holders").mkdir(exist_ok=True)
        self._block(sys_path, name, spec.major, spec.index)
        for path in spec.paths:
            disk_dir = self._dir(self._disks[path])
            self._link(directory / "slaves" / path, disk_dir)
            self._link(disk_dir / "holders" / name, directory)
        self._multipaths[spec.index] = sys_path
        return sys_path

    def remove_lun(self, hctl: Hctl) -> None:
        """Hot-unplug a LUN: remove its devices, links and node, as the kernel would.

        Its target goes too when it was the target's last LUN; ``slaves/``
        links of multipath maps to its disk are removed (the map stays).

        :raises tracker.exceptions.TestbedError: when there is no such LUN.
        """
        lun = self._luns.pop(hctl, None)
        if lun is None:
            raise TestbedError(what=f"LUN {hctl}", reason="no such LUN to remove")
        links = [
            self._sys / "bus" / "scsi" / "devices" / str(hctl),
            self._sys / "class" / "scsi_device" / str(hctl),
            self._sys / "class" / "scsi_disk" / str(hctl),
        ]
        if lun.disk is not None:
            disk = lun.disk
            links += [
                self._sys / "class" / "block" / disk.name,
                self._sys / "block" / disk.name,
                self._sys / "dev" / "block" / f"{disk.major}:{disk.minor}",
                self.root / "dev" / disk.name,
                self.root / "dev" / ".node" / disk.name,
            ]
            links += [self._dir(dm) / "slaves" / disk.name for dm in self._multipaths.values()]
            del self._disks[disk.name]
        for link in links:
            if link.is_symlink() or link.exists():
                link.unlink()
        shutil.rmtree(self._dir(lun.sys_path))
        target = lun.sys_path.rsplit("/", 1)[0]
        if not any(other.sys_path.startswith(f"{target}/") for other in self._luns.values()):
            name = target.rsplit("/", 1)[1]
            for link in (
                self._sys / "bus" / "scsi" / "devices" / name,
                self._sys / "class" / "fc_transport" / name,
            ):
                if link.is_symlink():
                    link.unlink()
            shutil.rmtree(self._dir(target))


# --- running things against a testbed ---------------------------------------------


def unavailable(reason: str) -> NoReturn:
    """Give up on the calling test because something optional is missing.

    The one rule for every test that needs a system tool (umockdev, lsscsi)
    or a quiet host: skip with ``reason`` on a developer's machine, fail
    under ``CI=true`` (see :func:`tracker.testing.databases.required`),
    where everything must run.

    :param reason: what is missing and which Debian package provides it.
    :raises pytest.skip.Exception: outside CI.
    :raises pytest.fail.Exception: under ``CI=true``.
    """
    import pytest

    from tracker.testing.databases import required

    if required():
        pytest.fail(f"CI=true requires this test to run, but: {reason}")
    pytest.skip(reason)


def require_lsscsi() -> str:
    """Find ``lsscsi`` for a test, or give up as :func:`unavailable` says.

    :returns: the program's path.
    :raises pytest.skip.Exception: when it is missing (``pytest.fail`` under CI).
    """
    path = shutil.which("lsscsi")
    if path is None:
        unavailable("lsscsi is not installed (Debian package 'lsscsi')")
    return path


def require_preload_library() -> Path:
    """Find umockdev's preload library for a test, or give up as
    :func:`unavailable` says.

    :returns: the library's path.
    :raises pytest.skip.Exception: when it is missing (``pytest.fail`` under CI).
    """
    from tracker.host.executor import SubprocessExecutor

    try:
        return find_preload_library(SubprocessExecutor())
    except PreloadLibraryMissing as error:
        unavailable(str(error))


def require_no_udevd(udev_data: Path = Path("/run/udev/data")) -> None:
    """Give up (as :func:`unavailable` says) when udevd keeps SCSI disk entries here.

    The preload does not redirect ``/run``: libudev would mix the real
    ``b8:*`` entries into a testbed's records.

    :param udev_data: the udev database directory to look at.
    :raises pytest.skip.Exception: when such an entry exists (``pytest.fail``
        under CI).
    """
    for marker in udev_data.glob("b8:*"):
        unavailable(f"udevd keeps {marker} here; libudev would mix it into testbed records")


def find_preload_library(executor: CommandExecutor | None = None) -> Path:
    """Locate umockdev's preload library.

    Asks ``ldconfig -p`` (through ``executor``, when given), then looks in the
    usual multiarch directories.

    :returns: the library's absolute path.
    :raises tracker.exceptions.PreloadLibraryMissing: when it is nowhere,
        naming the Debian package ``umockdev``.
    """
    searched: list[str] = []
    if executor is not None:
        searched.append("ldconfig -p")
        try:
            listing = executor.run(["ldconfig", "-p"], timeout=30).stdout
        except HostError:  # a missing ldconfig only narrows the search
            listing = ""
        for line in listing.splitlines():
            name, _, target = line.partition("=>")
            if name.strip().startswith(PRELOAD_LIBRARY) and Path(target.strip()).is_file():
                return Path(target.strip())
    for directory in _MULTIARCH_DIRS:
        searched.append(directory)
        candidate = Path(directory) / PRELOAD_LIBRARY
        if candidate.is_file():
            return candidate
    raise PreloadLibraryMissing(library=PRELOAD_LIBRARY, searched=searched)


def preload_environment(
    testbed_root: Path, library: Path, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Build the environment that makes libudev see a testbed.

    :param testbed_root: the testbed directory (becomes ``UMOCKDEV_DIR``).
    :param library: the preload library (from :func:`find_preload_library`).
    :param base: environment to start from (``os.environ`` when ``None``).
    :returns: a new environment with ``LD_PRELOAD`` (prepended to any
        existing value) and ``UMOCKDEV_DIR`` set.
    :raises: nothing.
    """
    env = dict(os.environ if base is None else base)
    previous = env.get("LD_PRELOAD")
    env["LD_PRELOAD"] = f"{library} {previous}" if previous else str(library)
    env["UMOCKDEV_DIR"] = str(testbed_root)
    return env


def run_under_preload(
    testbed_root: Path,
    argv: Sequence[str],
    executor: CommandExecutor,
    *,
    library: Path | None = None,
    timeout: float = 120.0,
) -> CommandResult:
    """Run a command in a process that sees the testbed instead of ``/sys``.

    :param argv: the command; ``argv[0] == "python"`` is replaced by this
        interpreter.
    :returns: the command's result (exit status not checked).
    :raises tracker.exceptions.PreloadLibraryMissing: when umockdev is not
        installed.
    :raises tracker.exceptions.CommandNotFound: when the program is missing.
    :raises tracker.exceptions.CommandFailed: when it times out.
    """
    lib = library if library is not None else find_preload_library(executor)
    args = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
    return executor.run(args, env=preload_environment(testbed_root, lib), timeout=timeout)


@dataclass(frozen=True, slots=True)
class LsscsiRow:
    """One line of ``lsscsi`` output.

    :ivar hctl: the ``[H:C:T:L]`` address.
    :ivar kind: the peripheral type column (``"disk"``).
    :ivar detail: the middle columns (vendor/model/rev, transport id, or
        LU name, depending on the options).
    :ivar device: the last column (``/dev/sda`` or ``"-"``).
    """

    hctl: Hctl
    kind: str
    detail: str
    device: str


def run_lsscsi(
    sys_dir: Path, options: Sequence[str], executor: CommandExecutor, *, timeout: float = 60.0
) -> tuple[LsscsiRow, ...]:
    """Run ``lsscsi -y <sys_dir> <options>`` and parse its device lines.

    :param sys_dir: the ``sys`` directory to read (a testbed's :attr:`Testbed.sys_dir`).
    :param options: e.g. ``["-t"]`` or ``["-u"]``.
    :returns: one row per LUN line, in output order.
    :raises tracker.exceptions.CommandNotFound: when lsscsi is not installed.
    :raises tracker.exceptions.CommandFailed: when it fails or times out.
    """
    result = executor.run(["lsscsi", "-y", str(sys_dir), *options], timeout=timeout).check()
    rows = []
    for line in result.stdout.splitlines():
        if not line.startswith("["):
            continue
        address, _, rest = line.partition("]")
        parts = rest.split()
        numbers = [int(part) for part in address[1:].split(":")]
        rows.append(
            LsscsiRow(
                hctl=Hctl(*numbers),
                kind=parts[0] if parts else "",
                detail=" ".join(parts[1:-1]),
                device=parts[-1] if len(parts) > 1 else "",
            )
        )
    return tuple(rows)
