"""A builder for umockdev-compatible sysfs trees (simulated storage hosts).

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
:func:`tracker.testing.umockdev.preload_environment` (see
:func:`tracker.testing.umockdev.run_under_preload`).

Only typed, frozen specs go in; the builder keeps a registry so that LUNs find
their target's place (rport, iSCSI session, SAS end device or bare host).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tracker.exceptions import TestbedError
from tracker.testing.specs import (
    DiskSpec,
    FcHbaSpec,
    FcRemotePortSpec,
    Hctl,
    HostSpec,
    IscsiHostSpec,
    IscsiSessionSpec,
    LunSpec,
    MultipathSpec,
    SasEndDeviceSpec,
    SasHostSpec,
)

__all__ = ["Testbed"]


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
        self._session_specs: dict[int, IscsiSessionSpec] = {}

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
                ("state", spec.connection_state),
            ),
            class_device=True,
        )
        self._sessions[spec.host] = session
        self._session_specs[spec.host] = spec
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
            self._add_udev_links(hctl, disk)
        self._luns[hctl] = _Lun(sys_path=device, disk=spec.disk)
        return device

    def _by_path(self, hctl: Hctl) -> str | None:
        """The ``by-path`` link name udev's rules give the LUN's disk, if any."""
        kind = self._host_kinds.get(hctl.host)
        session = self._session_specs.get(hctl.host)
        if kind == "iscsi" and session is not None:
            portal = f"{session.portal_address}:{session.portal_port}"
            return f"by-path/ip-{portal}-iscsi-{session.target_iqn}-lun-{hctl.lun}"
        parent = self._hosts[hctl.host].rsplit("/", 2)[-2]
        if ":" not in parent:  # not below a PCI device
            return None
        rport = self._fc_rports.get((hctl.host, hctl.channel, hctl.target))
        if kind == "fc" and rport is not None:
            return f"by-path/pci-{parent}-fc-0x{rport.wwpn:016x}-lun-{hctl.lun}"
        if kind == "plain":
            return f"by-path/pci-{parent}-scsi-0:{hctl.channel}:{hctl.target}:{hctl.lun}"
        return None

    def _add_udev_links(self, hctl: Hctl, disk: DiskSpec) -> None:
        names = disk.udev_links
        if names is None:
            derived = []
            serial = disk.udev_properties.get("ID_SERIAL")
            wwn = disk.udev_properties.get("ID_WWN_WITH_EXTENSION")
            derived += [f"by-id/scsi-{serial}"] if serial else []
            derived += [f"by-id/wwn-{wwn}"] if wwn else []
            # one link, one device: later paths of a LUN do not take it over
            derived = [n for n in derived if not (self.root / "dev" / "disk" / n).is_symlink()]
            by_path = self._by_path(hctl)
            names = (*derived, *([by_path] if by_path else []))
        for name in names:
            link = self.root / "dev" / "disk" / name
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink():
                link.unlink()
            link.symlink_to(os.path.relpath(self.root / "dev" / disk.name, link.parent))

    def udev_links_of(self, disk: str) -> tuple[Path, ...]:
        """The links below ``<root>/dev/disk`` that point to a disk's node.

        :returns: their paths, sorted.
        :raises: nothing.
        """
        found = []
        for directory, _subdirs, names in os.walk(self.root / "dev" / "disk"):
            for name in names:
                link = Path(directory) / name
                if link.is_symlink() and Path(os.readlink(link)).name == disk:
                    found.append(link)
        return tuple(sorted(found))

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
                *self.udev_links_of(disk.name),
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

    # -- queries and removals for live changes (tracker.testing.live) --

    @property
    def multipaths(self) -> Mapping[int, str]:
        """The multipath maps present.

        :returns: dm index -> the map's sys_path.
        :raises: nothing.
        """
        return dict(self._multipaths)

    def lun_path(self, hctl: Hctl) -> str:
        """Give the sys_path of a LUN's ``scsi_device``.

        :raises tracker.exceptions.TestbedError: when there is no such LUN.
        """
        lun = self._luns.get(hctl)
        if lun is None:
            raise TestbedError(what=f"LUN {hctl}", reason="no such LUN")
        return lun.sys_path

    def lun_disk(self, hctl: Hctl) -> DiskSpec | None:
        """Give a LUN's disk.

        :returns: its spec, or ``None`` when the LUN has no disk.
        :raises tracker.exceptions.TestbedError: when there is no such LUN.
        """
        self.lun_path(hctl)
        return self._luns[hctl].disk

    def luns_below(self, sys_path: str) -> tuple[Hctl, ...]:
        """The LUNs whose devices are below ``sys_path`` (a host, rport, session, target).

        :returns: their addresses, sorted.
        :raises: nothing.
        """
        prefix = sys_path.rstrip("/") + "/"
        return tuple(sorted(h for h, lun in self._luns.items() if lun.sys_path.startswith(prefix)))

    def holders_of(self, disk: str) -> tuple[int, ...]:
        """The multipath maps built on a disk.

        :returns: their dm indexes, sorted.
        :raises: nothing.
        """
        return tuple(
            sorted(
                index
                for index, path in self._multipaths.items()
                if (self._dir(path) / "slaves" / disk).is_symlink()
            )
        )

    def add_multipath_path(self, index: int, disk: str) -> None:
        """Add a disk to an existing multipath map (``slaves/``/``holders/`` links).

        :raises tracker.exceptions.TestbedError: when the map or the disk does
            not exist.
        """
        sys_path = self._multipaths.get(index)
        if sys_path is None:
            raise TestbedError(what=f"dm-{index}", reason="no such multipath map")
        disk_path = self._disks.get(disk)
        if disk_path is None:
            raise TestbedError(what=f"dm-{index}", reason=f"no disk {disk}")
        self._link(self._dir(sys_path) / "slaves" / disk, self._dir(disk_path))
        self._link(self._dir(disk_path) / "holders" / f"dm-{index}", self._dir(sys_path))

    def _unlink_subtree(self, sys_path: str) -> None:
        """Remove the class/bus links of every device below ``sys_path``, then the tree."""
        top = self._dir(sys_path)
        for directory, subdirs, _files in os.walk(top):
            # never follow the device/subsystem/holders links os.walk lists as dirs
            subdirs[:] = [d for d in subdirs if not (Path(directory) / d).is_symlink()]
            subsystem = Path(directory) / "subsystem"
            if not subsystem.is_symlink():
                continue
            home = Path(os.path.normpath(Path(directory) / os.readlink(subsystem)))
            name = Path(directory).name
            for link in (home / "devices" / name, home / name):
                if link.is_symlink() and os.path.realpath(link) == os.path.realpath(directory):
                    link.unlink()
        shutil.rmtree(top)

    def remove_multipath(self, index: int) -> None:
        """Remove a multipath map, its ``holders/`` links in its disks, and its node.

        :raises tracker.exceptions.TestbedError: when there is no such map.
        """
        sys_path = self._multipaths.pop(index, None)
        if sys_path is None:
            raise TestbedError(what=f"dm-{index}", reason="no such multipath map to remove")
        name = f"dm-{index}"
        dev = (self._dir(sys_path) / "dev").read_text().strip()
        for disk_path in self._disks.values():
            holder = self._dir(disk_path) / "holders" / name
            if holder.is_symlink():
                holder.unlink()
        for link in (
            self._sys / "block" / name,
            self._sys / "dev" / "block" / dev,
            self.root / "dev" / name,
            self.root / "dev" / ".node" / name,
        ):
            if link.is_symlink() or link.exists():
                link.unlink()
        self._unlink_subtree(sys_path)

    def fc_remote_port_path(self, host: int, channel: int, number: int) -> str:
        """Give the sys_path of a remote port's kernel object (``.../rport-H:C-N``).

        :raises tracker.exceptions.TestbedError: when there is no such port.
        """
        name = f"rport-{host}:{channel}-{number}"
        host_path = self._hosts.get(host)
        if host_path is None or not (self._dir(host_path) / name).is_dir():
            raise TestbedError(what=name, reason="no such remote port")
        return f"{host_path}/{name}"

    def remove_fc_remote_port(self, host: int, channel: int, number: int) -> None:
        """Remove a remote port that has no LUNs left (remove them first).

        :raises tracker.exceptions.TestbedError: when there is no such port or
            it still has LUNs.
        """
        rport = self.fc_remote_port_path(host, channel, number)
        if self.luns_below(rport):
            raise TestbedError(what=rport.rsplit("/", 1)[1], reason="remove its LUNs first")
        for key, parent in list(self._target_parents.items()):
            if parent == rport:
                del self._target_parents[key]
                self._fc_rports.pop(key, None)
        self._unlink_subtree(rport)

    def iscsi_session_path(self, host: int) -> str:
        """Give the sys_path of an iSCSI host's session kernel object (``.../sessionN``).

        :raises tracker.exceptions.TestbedError: when the host has no session.
        """
        session = self._sessions.get(host)
        if session is None:
            raise TestbedError(what=f"session of host{host}", reason="no such session")
        return session

    def remove_iscsi_session(self, host: int) -> None:
        """Remove an iSCSI host's session (and connection) that has no LUNs left.

        :raises tracker.exceptions.TestbedError: when the host has no session
            or it still has LUNs.
        """
        session = self.iscsi_session_path(host)
        if self.luns_below(session):
            raise TestbedError(what=session.rsplit("/", 1)[1], reason="remove its LUNs first")
        del self._sessions[host]
        self._unlink_subtree(session)
