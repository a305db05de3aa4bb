"""Named storage topologies built on a :class:`~tracker.testing.testbed.Testbed`.

Each builder writes one host layout into a testbed and returns a
:class:`Topology` describing what it put there. Builders share one signature,
``builder(testbed, vectors) -> Topology`` (see :data:`TOPOLOGIES`), where
``vectors`` are the real VPD pages of ``tests/data/vpd`` (in the repository) loaded with
:func:`load_vpd_vectors`; builders that need none accept ``None``.

LUN identities are consistent the way a real host's are: the kernel's
``wwid`` attribute is derived from page 0x83 by the kernel's own choice rules
(:func:`kernel_wwid`), and the disk's udev ``ID_SERIAL``/``ID_WWN`` and the
multipath map's ``mpath-<ID_SERIAL>`` uuid come from the same designator.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tracker.exceptions import TestbedError
from tracker.host.records import FrozenMap
from tracker.testing.testbed import (
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
    Testbed,
    sd_devnum,
    sd_name,
)

__all__ = [
    "TOPOLOGIES",
    "Designator",
    "LunIdentity",
    "Topology",
    "TopologyBuilder",
    "VpdVector",
    "build_pg80",
    "build_pg83",
    "failed_path",
    "fc_multipath",
    "high_lun_numbers",
    "identity_from_pages",
    "iscsi_multipath",
    "kernel_wwid",
    "load_vpd_vectors",
    "mixed_fc_iscsi",
    "offline_devices",
    "scale",
    "single_path_sas",
    "synthetic_identity",
    "target_without_lun0",
    "vpd_variants",
]


# --- VPD pages -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Designator:
    """One designation descriptor of VPD page 0x83.

    :ivar code_set: 1 binary, 2 ASCII, 3 UTF-8.
    :ivar association: 0 logical unit, 1 target port, 2 target device.
    :ivar designator_type: 1 T10 vendor id, 2 EUI-64, 3 NAA, 8 SCSI name ...
    """

    code_set: int
    association: int
    designator_type: int
    value: bytes
    piv: bool = False
    protocol: int = 0

    def encode(self) -> bytes:
        """Serialize the descriptor (4-byte header + value).

        :returns: the descriptor bytes.
        :raises ValueError: when the value is longer than 255 bytes.
        """
        byte0 = (self.protocol << 4) | self.code_set
        byte1 = (0x80 if self.piv else 0) | (self.association << 4) | self.designator_type
        return bytes((byte0, byte1, 0, len(self.value))) + self.value


def build_pg83(designators: Iterable[Designator], peripheral: int = 0) -> bytes:
    """Build a complete page 0x83.

    :returns: header (peripheral byte, 0x83, big-endian length) + descriptors.
    :raises ValueError: when the page would exceed 65535 bytes.
    """
    body = b"".join(designator.encode() for designator in designators)
    return bytes((peripheral, 0x83)) + len(body).to_bytes(2, "big") + body


def build_pg80(serial: bytes, peripheral: int = 0) -> bytes:
    """Build a page 0x80 (unit serial number).

    :returns: header + serial bytes.
    :raises ValueError: when the serial exceeds 65535 bytes.
    """
    return bytes((peripheral, 0x80)) + len(serial).to_bytes(2, "big") + serial


def _escape(data: bytes) -> str:
    # the kernel's "%pE": printable ASCII kept, anything else as \ooo
    return "".join(chr(b) if 0x20 <= b < 0x7F else f"\\{b:03o}" for b in data)


def _lu_designators(pg83: bytes) -> list[tuple[int, bytes]]:
    """Complete LU-associated designators as ``(type, value)``; stops at truncation."""
    end = min(len(pg83), 4 + int.from_bytes(pg83[2:4], "big")) if len(pg83) >= 4 else 0
    found = []
    offset = 4
    while offset + 4 <= end:
        length = pg83[offset + 3]
        if offset + 4 + length > end:
            break
        if pg83[offset + 1] & 0x30 == 0:
            found.append((pg83[offset + 1] & 0x0F, pg83[offset + 4 : offset + 4 + length]))
        offset += 4 + length
    return found


def _priority(kind: int, value: bytes) -> int:
    # the kernel's designator_prio(): longer identifiers clash less
    if not value:
        return 0
    if kind == 8:
        return 9
    if kind == 3:
        return {6: 8, 5: 5, 4: 4, 3: 1}.get(value[0] >> 4, 0)
    if kind == 2:
        return {16: 7, 12: 6, 8: 3}.get(len(value), 0)
    return 1 if kind == 1 else 0


def _best_designator(pg83: bytes) -> tuple[int, bytes] | None:
    """The designator the kernel's ``scsi_vpd_lun_id`` would pick."""
    best: tuple[int, bytes] | None = None
    best_priority = 0
    best_size = 0
    for kind, value in _lu_designators(pg83):
        priority = _priority(kind, value)
        if priority == 0 or best_priority > priority:
            continue
        if kind in (1, 8) and best_size > len(value):
            continue
        if kind == 3 and len(value) not in (8, 16):
            continue
        best, best_priority, best_size = (kind, value), priority, len(value)
    return best


def kernel_wwid(pg83: bytes | None) -> str | None:
    """Derive the ``wwid`` sysfs attribute the kernel shows for a page 0x83.

    :returns: ``"naa.<hex>"``, ``"eui.<hex>"``, ``"t10.<text>"``, a SCSI name
        string, or ``None`` when the page yields no identifier (the kernel's
        attribute then fails to read).
    :raises: nothing.
    """
    if not pg83:
        return None
    best = _best_designator(pg83)
    if best is None:
        return None
    kind, value = best
    if kind == 1:
        return f"t10.{_escape(value)}"
    if kind == 2:
        return f"eui.{value.hex()}"
    if kind == 3:
        return f"naa.{value.hex()}"
    return value.split(b"\0")[0].decode("utf-8", "replace")


@dataclass(frozen=True, slots=True)
class LunIdentity:
    """Everything that identifies a LUN, mutually consistent.

    :ivar serial: page 0x80's serial, as text.
    :ivar wwid: the kernel's ``wwid`` attribute, ``None`` when it has none.
    :ivar udev_properties: the disk's ``ID_*`` properties.
    :ivar id_serial: udev's ``ID_SERIAL`` (what multipath names the map
        after), ``None`` without identifier.
    """

    vendor: str
    model: str
    rev: str
    serial: str | None
    vpd_pg80: bytes | None
    vpd_pg83: bytes | None
    wwid: str | None
    id_serial: str | None
    udev_properties: FrozenMap = field(default_factory=FrozenMap)


def _udev_text(text: str) -> str:
    return "_".join(text.split())


def identity_from_pages(
    vendor: str, model: str, rev: str, pg80: bytes | None, pg83: bytes | None
) -> LunIdentity:
    """Derive a consistent identity from (real or synthetic) VPD pages.

    :returns: the :class:`LunIdentity`, ``ID_*`` properties computed the way
        udev's ``scsi_id`` reports them for the designator the kernel picks.
    :raises: nothing.
    """
    serial = None
    if pg80 is not None and len(pg80) >= 4:
        serial = pg80[4 : 4 + int.from_bytes(pg80[2:4], "big")].decode("ascii", "replace")
    properties = {
        "ID_BUS": "scsi",
        "ID_TYPE": "disk",
        "ID_VENDOR": _udev_text(vendor),
        "ID_MODEL": _udev_text(model),
        "ID_REVISION": _udev_text(rev),
    }
    if serial is not None and serial.strip(" \0"):
        properties["ID_SCSI_SERIAL"] = serial.strip(" \0")
    best = _best_designator(pg83) if pg83 else None
    id_serial = None
    if best is not None:
        kind, value = best
        if kind in (2, 3):
            short = value.hex()
            properties["ID_WWN"] = f"0x{short[:16]}"
            properties["ID_WWN_WITH_EXTENSION"] = f"0x{short}"
        else:
            short = _udev_text(value.decode("ascii", "replace").rstrip("\0"))
        id_serial = f"{kind}{short}"
        properties["ID_SERIAL"] = id_serial
        properties["ID_SERIAL_SHORT"] = short
    return LunIdentity(
        vendor=vendor,
        model=model,
        rev=rev,
        serial=serial,
        vpd_pg80=pg80,
        vpd_pg83=pg83,
        wwid=kernel_wwid(pg83),
        id_serial=id_serial,
        udev_properties=FrozenMap(properties),
    )


def synthetic_identity(
    index: int,
    *,
    vendor: str = "NETAPP",
    model: str = "LUN C-Mode",
    rev: str = "9800",
    oui: str = "00a098",
    eui64: bool = False,
) -> LunIdentity:
    """Make the identity of the ``index``-th synthetic LUN of an array.

    NetApp-style: a 12-character serial, NAA 6 = ``6`` + OUI + hex of the
    serial (16 bytes), plus a T10 vendor id designator; or an EUI-64
    designator only when ``eui64``.

    :returns: a consistent :class:`LunIdentity`.
    :raises ValueError: for an OUI that is not 6 hex digits.
    """
    serial = f"80AB{index:08X}".encode()
    if eui64:
        designators = [Designator(1, 0, 2, bytes.fromhex(oui) + index.to_bytes(5, "big"))]
    else:
        naa = bytes.fromhex(f"6{oui}0{serial.hex()}")[:16]
        designators = [
            Designator(1, 0, 3, naa),
            Designator(2, 0, 1, f"{vendor:<8}".encode() + serial),
        ]
    return identity_from_pages(vendor, model, rev, build_pg80(serial), build_pg83(designators))


@dataclass(frozen=True, slots=True)
class VpdVector:
    """One real VPD page from ``pages.json``."""

    id: str
    page_code: int
    data: bytes
    vendor: str
    model: str


def load_vpd_vectors(directory: Path) -> Mapping[str, VpdVector]:
    """Load the real VPD pages of ``<directory>/pages.json``.

    :returns: the vectors by id.
    :raises tracker.exceptions.TestbedError: when the file is missing or
        malformed (the message names the expected path).
    """
    path = Path(directory) / "pages.json"
    try:
        entries = json.loads(path.read_text())
        return {
            entry["id"]: VpdVector(
                id=entry["id"],
                page_code=int(entry["page_code"], 16),
                data=bytes.fromhex(entry["hex"]),
                vendor=entry["vendor"],
                model=entry["model"],
            )
            for entry in entries
        }
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise TestbedError(
            what="VPD test vectors", reason=f"cannot load {path}: {error}"
        ) from error


# --- topologies -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Topology:
    """What a builder put into a testbed."""

    name: str
    luns: tuple[LunSpec, ...]
    multipaths: tuple[MultipathSpec, ...] = ()


class TopologyBuilder(Protocol):
    """The common signature of topology builders."""

    def __call__(
        self, testbed: Testbed, vectors: Mapping[str, VpdVector] | None = None
    ) -> Topology:
        """Build the topology into ``testbed``.

        :returns: the :class:`Topology` description.
        :raises tracker.exceptions.TestbedError: when it cannot be built.
        """
        ...


class _Allocator:
    """Hands out sd names/numbers and dm indexes not used yet in a testbed."""

    def __init__(self, testbed: Testbed) -> None:
        self._used = set(testbed.disks)
        self._next = len(self._used)
        self.next_dm = 0
        while (Path(testbed.sys_dir) / "block" / f"dm-{self.next_dm}").is_symlink():
            self.next_dm += 1

    def disk(self, identity: LunIdentity | None, size: int = 2097152) -> DiskSpec:
        while sd_name(self._next) in self._used:
            self._next += 1
        name = sd_name(self._next)
        major, minor = sd_devnum(self._next)
        self._used.add(name)
        self._next += 1
        return DiskSpec(
            name=name,
            major=major,
            minor=minor,
            size=size,
            udev_properties=identity.udev_properties if identity else FrozenMap(),
        )

    def dm(self) -> int:
        index = self.next_dm
        self.next_dm += 1
        return index


def _lun(
    hctl: Hctl, identity: LunIdentity, disk: DiskSpec | None, state: str = "running"
) -> LunSpec:
    return LunSpec(
        hctl=hctl,
        vendor=identity.vendor,
        model=identity.model,
        rev=identity.rev,
        state=state,
        wwid=identity.wwid,
        vpd_pg80=identity.vpd_pg80,
        vpd_pg83=identity.vpd_pg83,
        disk=disk,
    )


def _multipath(allocator: _Allocator, identity: LunIdentity, paths: Sequence[str]) -> MultipathSpec:
    if identity.id_serial is None:
        raise TestbedError(what="multipath map", reason="LUN has no identifier")
    index = allocator.dm()
    return MultipathSpec(
        index=index,
        name=f"mpath{sd_name(index)[2:]}",
        uuid=f"mpath-{identity.id_serial}",
        paths=tuple(paths),
    )


def _build(
    testbed: Testbed, name: str, luns: Sequence[LunSpec], maps: Sequence[MultipathSpec]
) -> Topology:
    for lun in luns:
        testbed.add_lun(lun)
    for spec in maps:
        testbed.add_multipath(spec)
    return Topology(name=name, luns=tuple(luns), multipaths=tuple(maps))


def single_path_sas(testbed: Testbed, vectors: Mapping[str, VpdVector] | None = None) -> Topology:
    """One SAS disk on one path, no multipath.

    Uses the real dual-ported Seagate SAS page 0x83 when ``vectors`` are given.

    :returns: the topology (host 0, LUN 0:0:0:0).
    :raises tracker.exceptions.TestbedError: when the testbed already has host 0.
    """
    allocator = _Allocator(testbed)
    testbed.add_sas_host(SasHostSpec(host=0))
    testbed.add_sas_end_device(
        SasEndDeviceSpec(host=0, port=0, sas_address=0x5000C5003011CB29, target=0)
    )
    if vectors is not None and "sg3utils-seagate-sas-pg83" in vectors:
        identity = identity_from_pages(
            "SEAGATE",
            "ST2000NM0045",
            "N004",
            build_pg80(b"ZC20ABCD0000"),
            vectors["sg3utils-seagate-sas-pg83"].data,
        )
    else:
        identity = synthetic_identity(0, vendor="SEAGATE", model="ST2000NM0045", oui="000c50")
    lun = _lun(Hctl(0, 0, 0, 0), identity, allocator.disk(identity))
    return _build(testbed, "single_path_sas", [lun], [])


def fc_multipath(
    testbed: Testbed,
    vectors: Mapping[str, VpdVector] | None = None,
    *,
    first_host: int = 0,
    luns: int = 2,
    first_lun_index: int = 0,
    name: str = "fc_multipath",
) -> Topology:
    """Two FC HBAs, each logged in to two target ports of one array; every LUN on 4 paths.

    :returns: the topology, one multipath map per LUN.
    :raises tracker.exceptions.TestbedError: when the host numbers are taken.
    """
    allocator = _Allocator(testbed)
    specs: list[LunSpec] = []
    paths: dict[int, list[str]] = {lun: [] for lun in range(luns)}
    identities = [synthetic_identity(first_lun_index + lun) for lun in range(luns)]
    for hba in range(2):
        host = first_host + hba
        testbed.add_fc_hba(
            FcHbaSpec(
                host=host,
                wwpn=0x2100001B32000000 + host,
                wwnn=0x2000001B32000000 + host,
                port_id=0x010100 + host,
            )
        )
        for port in range(2):
            testbed.add_fc_remote_port(
                FcRemotePortSpec(
                    host=host,
                    number=port,
                    wwpn=0x500A098000000000 + (hba << 4) + port,
                    wwnn=0x500A098000000100,
                    port_id=0x020000 + (hba << 8) + port,
                )
            )
            for lun in range(luns):
                disk = allocator.disk(identities[lun])
                specs.append(_lun(Hctl(host, 0, port, lun), identities[lun], disk))
                paths[lun].append(disk.name)
    maps = [_multipath(allocator, identities[lun], paths[lun]) for lun in range(luns)]
    return _build(testbed, name, specs, maps)


def iscsi_multipath(
    testbed: Testbed,
    vectors: Mapping[str, VpdVector] | None = None,
    *,
    first_host: int = 0,
    luns: int = 2,
    first_lun_index: int = 100,
    name: str = "iscsi_multipath",
) -> Topology:
    """One iSCSI target reached through two portals (two sessions); each LUN on 2 paths.

    :returns: the topology, one multipath map per LUN.
    :raises tracker.exceptions.TestbedError: when the host numbers are taken.
    """
    allocator = _Allocator(testbed)
    target_iqn = "iqn.2010-10.org.openstack:volume-5f1e0c2a"
    specs: list[LunSpec] = []
    paths: dict[int, list[str]] = {lun: [] for lun in range(luns)}
    identities = [
        synthetic_identity(
            first_lun_index + lun, vendor="LIO-ORG", model="IBLOCK", rev="4.0", oui="001405"
        )
        for lun in range(luns)
    ]
    for portal in range(2):
        host = first_host + portal
        testbed.add_iscsi_host(IscsiHostSpec(host=host))
        testbed.add_iscsi_session(
            IscsiSessionSpec(
                host=host,
                session=portal + 1,
                target_iqn=target_iqn,
                portal_address=f"192.0.2.{10 + portal}",
                tpgt=1,
            )
        )
        for lun in range(luns):
            disk = allocator.disk(identities[lun])
            specs.append(_lun(Hctl(host, 0, 0, lun), identities[lun], disk))
            paths[lun].append(disk.name)
    maps = [_multipath(allocator, identities[lun], paths[lun]) for lun in range(luns)]
    return _build(testbed, name, specs, maps)


def mixed_fc_iscsi(testbed: Testbed, vectors: Mapping[str, VpdVector] | None = None) -> Topology:
    """FC multipath (hosts 0-1) and iSCSI multipath (hosts 2-3) side by side.

    :returns: the combined topology.
    :raises tracker.exceptions.TestbedError: when the host numbers are taken.
    """
    fc = fc_multipath(testbed, first_host=0)
    iscsi = iscsi_multipath(testbed, first_host=2)
    return Topology(
        name="mixed_fc_iscsi",
        luns=fc.luns + iscsi.luns,
        multipaths=fc.multipaths + iscsi.multipaths,
    )


def failed_path(testbed: Testbed, vectors: Mapping[str, VpdVector] | None = None) -> Topology:
    """An FC multipath map whose paths through one HBA failed.

    Host 1's first remote port is ``Blocked`` and its path device is
    ``transport-offline``; its second path device is ``offline``.

    :returns: the topology as built (before the failure was applied).
    :raises tracker.exceptions.TestbedError: when the host numbers are taken.
    """
    topology = fc_multipath(testbed, luns=1, name="failed_path")
    for lun in topology.luns:
        if lun.hctl.host == 1:
            state = "transport-offline" if lun.hctl.target == 0 else "offline"
            device = _lun_path(testbed, lun)
            testbed.set_attribute(device, "state", state)
    rport = _find(testbed, "/class/fc_remote_ports/rport-1:0-0")
    testbed.set_attribute(rport, "port_state", "Blocked")
    return topology


def _find(testbed: Testbed, class_link: str) -> str:
    link = testbed.sys_dir / class_link.lstrip("/")
    return "/" + str(link.resolve().relative_to(testbed.sys_dir.resolve()))


def _lun_path(testbed: Testbed, lun: LunSpec) -> str:
    return _find(testbed, f"/bus/scsi/devices/{lun.hctl}")


def target_without_lun0(
    testbed: Testbed, vectors: Mapping[str, VpdVector] | None = None
) -> Topology:
    """An FC target that exposes LUNs 1 and 2 but no LUN 0.

    :returns: the topology (single path, no multipath).
    :raises tracker.exceptions.TestbedError: when host 0 is taken.
    """
    allocator = _Allocator(testbed)
    testbed.add_fc_hba(FcHbaSpec(host=0, wwpn=0x2100001B32000010, wwnn=0x2000001B32000010))
    testbed.add_fc_remote_port(
        FcRemotePortSpec(
            host=0, number=0, wwpn=0x500A098000000020, wwnn=0x500A098000000120, port_id=0x020100
        )
    )
    specs: list[LunSpec] = []
    for lun in (1, 2):
        identity = synthetic_identity(200 + lun)
        specs.append(_lun(Hctl(0, 0, 0, lun), identity, allocator.disk(identity)))
    return _build(testbed, "target_without_lun0", specs, [])


def high_lun_numbers(testbed: Testbed, vectors: Mapping[str, VpdVector] | None = None) -> Topology:
    """LUN numbers that need the SAM flat/extended addressing: 255, 256, 4095, 16383.

    :returns: the topology (FC, single path).
    :raises tracker.exceptions.TestbedError: when host 0 is taken.
    """
    allocator = _Allocator(testbed)
    testbed.add_fc_hba(FcHbaSpec(host=0, wwpn=0x2100001B32000020, wwnn=0x2000001B32000020))
    testbed.add_fc_remote_port(
        FcRemotePortSpec(
            host=0, number=0, wwpn=0x500A098000000030, wwnn=0x500A098000000130, port_id=0x020200
        )
    )
    specs: list[LunSpec] = []
    for lun in (255, 256, 4095, 16383):
        identity = synthetic_identity(300 + lun)
        specs.append(_lun(Hctl(0, 0, 0, lun), identity, allocator.disk(identity)))
    return _build(testbed, "high_lun_numbers", specs, [])


def vpd_variants(testbed: Testbed, vectors: Mapping[str, VpdVector] | None = None) -> Topology:
    """LUNs whose page 0x83 varies: real vectors, EUI-64, T10-only, malformed, truncated, absent.

    :param vectors: the real pages (required).
    :returns: the topology (one plain host, target 0, one LUN per variant).
    :raises tracker.exceptions.TestbedError: when ``vectors`` is ``None`` or
        lacks a page, or host 0 is taken.
    """
    if vectors is None:
        raise TestbedError(what="vpd_variants", reason="needs the real VPD vectors")
    allocator = _Allocator(testbed)

    def page(vector_id: str) -> bytes:
        if vector_id not in vectors:
            raise TestbedError(what="vpd_variants", reason=f"no VPD vector {vector_id!r}")
        return vectors[vector_id].data

    netapp_pg80 = page("trident-netapp-ontap-pg80")
    netapp_naa = bytes.fromhex("600a0980") + netapp_pg80[4:]
    identities = [
        # NAA 6 with vendor-specific extension (3PAR, Nexsan, Dot Hill)
        identity_from_pages("3PARdata", "VV", "3315", None, page("os-win-3par-pg83")),
        identity_from_pages("NEXSAN", "NXS-B60E", "0001", None, page("infi-asi-nexsan-pg83-rtp2")),
        identity_from_pages(
            "DotHill", "DH4554", "G280", None, page("linstor-seagate-exos-dothill-pg83")
        ),
        identity_from_pages("EMC", "SYMMETRIX", "5773", None, page("sg3utils-emc-dmx-pg83")),
        # NAA 5 among odd-length descriptors, with a real page 0x80
        identity_from_pages(
            "NFINIDAT",
            "InfiniBox",
            "3.0",
            page("infi-asi-infinibox-pg80-pdt0c"),
            page("infi-asi-infinibox-pg83"),
        ),
        # EUI-64 only (synthetic: no real vector)
        synthetic_identity(400, vendor="PURE", model="FlashArray", oui="24a937", eui64=True),
        # T10 vendor id only (SATA disk behind libata)
        identity_from_pages(
            "ATA",
            "WDC WD800JD-00MS",
            "1E01",
            page("util-linux-wd800jd-pg80"),
            page("util-linux-wd800jd-pg83"),
        ),
        # T10 + NAA 3 (scsi_debug)
        identity_from_pages(
            "Linux",
            "scsi_debug",
            "0191",
            page("sg3utils-scsi_debug-pg80"),
            page("sg3utils-scsi_debug-pg83"),
        ),
        # legacy EMC page without descriptor header
        identity_from_pages(
            "EMC", "SYMMETRIX", "5267", None, page("sg3utils-emc-symmetrix-legacy-pg83")
        ),
        # truncated: header + part of the first descriptor
        identity_from_pages("3PARdata", "VV", "3315", None, page("os-win-3par-pg83")[:12]),
        # truncated after the first (complete) descriptor
        identity_from_pages(
            "SEAGATE", "ST2000NM0045", "N004", None, page("sg3utils-seagate-sas-pg83")[:16]
        ),
        # NetApp ONTAP: real page 0x80, NAA built the way ONTAP builds it
        identity_from_pages(
            "NETAPP",
            "LUN C-Mode",
            "9800",
            netapp_pg80,
            build_pg83([Designator(1, 0, 3, netapp_naa)]),
        ),
        # no VPD pages at all
        identity_from_pages("QEMU", "QEMU HARDDISK", "2.5+", None, None),
    ]
    testbed.add_host(HostSpec(host=0, proc_name="virtio_scsi"))
    specs = [
        _lun(Hctl(0, 0, 0, number), identity, allocator.disk(identity))
        for number, identity in enumerate(identities)
    ]
    return _build(testbed, "vpd_variants", specs, [])


def offline_devices(testbed: Testbed, vectors: Mapping[str, VpdVector] | None = None) -> Topology:
    """Devices in ``offline`` state and an FC HBA whose link is down.

    Host 0 (plain) has LUN 0 running and LUN 1 ``offline``; host 1 (FC,
    ``Linkdown``) has a LUN in ``offline`` state behind a ``Blocked`` port.

    :returns: the topology.
    :raises tracker.exceptions.TestbedError: when hosts 0-1 are taken.
    """
    allocator = _Allocator(testbed)
    testbed.add_host(HostSpec(host=0))
    testbed.add_fc_hba(
        FcHbaSpec(host=1, wwpn=0x2100001B32000030, wwnn=0x2000001B32000030, port_state="Linkdown")
    )
    testbed.add_fc_remote_port(
        FcRemotePortSpec(
            host=1,
            number=0,
            wwpn=0x500A098000000040,
            wwnn=0x500A098000000140,
            port_id=0x020300,
            port_state="Blocked",
        )
    )
    specs: list[LunSpec] = []
    for hctl, state in (
        (Hctl(0, 0, 0, 0), "running"),
        (Hctl(0, 0, 0, 1), "offline"),
        (Hctl(1, 0, 0, 0), "offline"),
    ):
        identity = synthetic_identity(500 + len(specs))
        specs.append(_lun(hctl, identity, allocator.disk(identity), state=state))
    return _build(testbed, "offline_devices", specs, [])


def scale(
    testbed: Testbed,
    vectors: Mapping[str, VpdVector] | None = None,
    *,
    hbas: int = 4,
    luns: int = 1024,
) -> Topology:
    """A large FC host: ``hbas`` HBAs, one target each, ``luns`` LUNs on every path.

    ``scale(tb, hbas=4, luns=1024)`` gives 4096 sd disks and 1024 dm maps.
    Build it on tmpfs.

    :returns: the topology.
    :raises tracker.exceptions.TestbedError: when the hosts are taken or
        ``luns`` exceeds 16384.
    """
    if luns > 16384:
        raise TestbedError(what="scale topology", reason="at most 16384 LUNs per target")
    allocator = _Allocator(testbed)
    identities = [synthetic_identity(lun) for lun in range(luns)]
    paths: list[list[str]] = [[] for _ in range(luns)]
    specs: list[LunSpec] = []
    for host in range(hbas):
        testbed.add_fc_hba(
            FcHbaSpec(host=host, wwpn=0x2100001B32100000 + host, wwnn=0x2000001B32100000 + host)
        )
        testbed.add_fc_remote_port(
            FcRemotePortSpec(
                host=host,
                number=0,
                wwpn=0x500A098000100000 + host,
                wwnn=0x500A098000100100,
                port_id=0x020000 + host,
            )
        )
        for lun in range(luns):
            disk = allocator.disk(identities[lun])
            specs.append(_lun(Hctl(host, 0, 0, lun), identities[lun], disk))
            paths[lun].append(disk.name)
    maps = [_multipath(allocator, identities[lun], paths[lun]) for lun in range(luns)]
    return _build(testbed, f"scale_{hbas}x{luns}", specs, maps)


#: Every named topology except :func:`scale`, for parametrized tests.
TOPOLOGIES: Mapping[str, TopologyBuilder] = {
    "single_path_sas": single_path_sas,
    "fc_multipath": fc_multipath,
    "iscsi_multipath": iscsi_multipath,
    "mixed_fc_iscsi": mixed_fc_iscsi,
    "failed_path": failed_path,
    "target_without_lun0": target_without_lun0,
    "high_lun_numbers": high_lun_numbers,
    "vpd_variants": vpd_variants,
    "offline_devices": offline_devices,
}
