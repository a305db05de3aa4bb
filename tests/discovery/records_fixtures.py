"""Hand-built DeviceRecords for discovery tests.

:func:`example_host` transcribes ``tests/data/example-fc-host.umockdev``: two
QLogic FC HBA ports (host0, host1) each seeing one NetApp LUN through one remote
port, an iSCSI session (host2, session1) with one LIO LUN, and a multipath map
``mpath0`` over sda and sdb. ``parent`` follows the pyudev convention: the nearest
ancestor that is a device (``rport-*``, ``session*``, ``connection*`` are not).
"""

from __future__ import annotations

from collections.abc import Mapping

from tracker.host.records import DeviceRecord, FrozenBytesMap, FrozenMap

NETAPP_WWID = "3600a0b800026b52e0000000000000000"
LIO_WWID = "360014050000000000000000000000000"

NETAPP_PG80 = bytes.fromhex("0080000C383041424344303030303030")
NETAPP_PG83 = bytes.fromhex(
    "0083002C01030010600A0B800026B52E0000000000000000020100144E45544150502020383041424344303030303030"
)
LIO_PG80 = bytes.fromhex("0080000F697363736930303030303030303030")
LIO_PG83 = bytes.fromhex(
    "008300630103001060014050000000000000000000000000020100174C494F2D4F52472069736373693030303030"
    "30303030305398003069716E2E323031302D31302E6F72672E6F70656E737461636B3A766F6C756D652D3030303"
    "02C742C3078303030310000"
)


def rec(
    sys_path: str,
    subsystem: str,
    devtype: str | None = None,
    *,
    parent: str | None = None,
    attributes: Mapping[str, str] | None = None,
    properties: Mapping[str, str] | None = None,
    binary: Mapping[str, bytes] | None = None,
    links: Mapping[str, str] | None = None,
) -> DeviceRecord:
    """Build a record; sys_name is the last path component."""
    return DeviceRecord(
        sys_path=sys_path,
        subsystem=subsystem,
        devtype=devtype,
        sys_name=sys_path.rsplit("/", 1)[1],
        properties=FrozenMap(properties or {}),
        attributes=FrozenMap(attributes or {}),
        binary_attributes=FrozenBytesMap(binary or {}),
        parent=parent,
        links=FrozenMap(links or {}),
    )


def _pci(path: str) -> DeviceRecord:
    return rec(
        path,
        "pci",
        properties={"PCI_CLASS": "C0400", "DRIVER": "qla2xxx"},
        attributes={"vendor": "0x1077", "device": "0x2261", "class": "0x0c0400"},
    )


def fc_hba(pci: str, host: int, port_name: str, node_name: str, port_id: str) -> list[DeviceRecord]:
    """The host device and its scsi_host and fc_host class devices."""
    host_path = f"{pci}/host{host}"
    return [
        rec(host_path, "scsi", "scsi_host", parent=pci, attributes={}),
        rec(
            f"{host_path}/scsi_host/host{host}",
            "scsi_host",
            parent=host_path,
            attributes={
                "proc_name": "qla2xxx",
                "unique_id": str(host),
                "state": "running",
                "host_busy": "0",
                "can_queue": "3000",
                "scan": "",
                "model_name": "QLE2742",
            },
        ),
        rec(
            f"{host_path}/fc_host/host{host}",
            "fc_host",
            parent=host_path,
            attributes={
                "port_name": port_name,
                "node_name": node_name,
                "port_state": "Online",
                "port_id": port_id,
                "port_type": "NPort (fabric port)",
                "speed": "16 Gbit",
                "fabric_name": "0x100000051e000001",
                "symbolic_name": "QLE2742 FW:v9.06.02 DVR:v10.02.08.200-k",
                "issue_lip": "",
                "tgtid_bind_type": "wwpn (World Wide Port Name)",
            },
        ),
    ]


def fc_target(
    host_path: str,
    host: int,
    rport: int,
    target: int,
    port_name: str,
    port_id: str,
    *,
    port_state: str = "Online",
) -> list[DeviceRecord]:
    """An rport's class device, its SCSI target and the target's fc_transport."""
    rport_name = f"rport-{host}:0-{rport}"
    target_path = f"{host_path}/{rport_name}/target{host}:0:{target}"
    return [
        rec(
            f"{host_path}/{rport_name}/fc_remote_ports/{rport_name}",
            "fc_remote_ports",
            parent=host_path,
            attributes={
                "port_name": port_name,
                "node_name": "0x500a098000000100",
                "port_id": port_id,
                "port_state": port_state,
                "roles": "FCP Target",
                "scsi_target_id": str(target),
                "dev_loss_tmo": "30",
                "fast_io_fail_tmo": "5",
                "supported_classes": "Class 3",
            },
        ),
        rec(target_path, "scsi", "scsi_target", parent=host_path),
        rec(
            f"{target_path}/fc_transport/target{host}:0:{target}",
            "fc_transport",
            parent=target_path,
            attributes={
                "port_name": port_name,
                "node_name": "0x500a098000000100",
                "port_id": port_id,
            },
        ),
    ]


def scsi_lun(
    target_path: str,
    hctl: str,
    block: str,
    minor: int,
    *,
    vendor: str = "NETAPP  ",
    model: str = "LUN C-Mode      ",
    rev: str = "9800",
    state: str = "running",
    wwid: str | None = "naa.600a0b800026b52e0000000000000000",
    pg80: bytes | None = NETAPP_PG80,
    pg83: bytes | None = NETAPP_PG83,
    id_serial: str = NETAPP_WWID,
    holder: str | None = "dm-0",
    size: str = "2097152",
) -> list[DeviceRecord]:
    """A SCSI device with its scsi_device/scsi_disk class devices and block disk."""
    path = f"{target_path}/{hctl}"
    attributes = {
        "vendor": vendor,
        "model": model,
        "rev": rev,
        "type": "0",
        "scsi_level": "7",
        "state": state,
        "queue_depth": "64",
        "timeout": "30",
        "device_blocked": "0",
    }
    if wwid is not None:
        attributes["wwid"] = wwid
    binary = {}
    if pg80 is not None:
        binary["vpd_pg80"] = pg80
    if pg83 is not None:
        binary["vpd_pg83"] = pg83
    block_path = f"{path}/block/{block}"
    return [
        rec(
            path,
            "scsi",
            "scsi_device",
            parent=target_path,
            properties={"MODALIAS": "scsi:t-0x00"},
            attributes=attributes,
            binary=binary,
        ),
        rec(f"{path}/scsi_device/{hctl}", "scsi_device", parent=path),
        rec(
            f"{path}/scsi_disk/{hctl}",
            "scsi_disk",
            parent=path,
            attributes={"FUA": "0", "cache_type": "write through"},
        ),
        rec(
            block_path,
            "block",
            "disk",
            parent=path,
            properties={
                "DEVNAME": f"/dev/{block}",
                "MAJOR": "8",
                "MINOR": str(minor),
                "ID_BUS": "scsi",
                "ID_SERIAL": id_serial,
            },
            attributes={
                "dev": f"8:{minor}",
                "size": size,
                "ro": "0",
                "removable": "0",
                "range": "16",
                "queue/logical_block_size": "512",
            },
            links={f"holders/{holder}": f"/devices/virtual/block/{holder}"} if holder else {},
        ),
    ]


PCI0 = "/devices/pci0000:00/0000:00:05.0"
PCI1 = "/devices/pci0000:00/0000:00:05.1"
HOST0 = f"{PCI0}/host0"
HOST1 = f"{PCI1}/host1"
TARGET0 = f"{HOST0}/rport-0:0-0/target0:0:0"
TARGET1 = f"{HOST1}/rport-1:0-0/target1:0:0"
ISCSI_HOST = "/devices/platform/host2"
ISCSI_TARGET = f"{ISCSI_HOST}/session1/target2:0:0"
SDA = f"{TARGET0}/0:0:0:0/block/sda"
SDB = f"{TARGET1}/1:0:0:0/block/sdb"
SDC = f"{ISCSI_TARGET}/2:0:0:0/block/sdc"
DM0 = "/devices/virtual/block/dm-0"


def iscsi_host_records() -> list[DeviceRecord]:
    """host2 (iscsi_tcp), session1, connection1:0, target2:0:0 and 2:0:0:0/sdc."""
    return [
        rec(ISCSI_HOST, "scsi", "scsi_host"),
        rec(
            f"{ISCSI_HOST}/scsi_host/host2",
            "scsi_host",
            parent=ISCSI_HOST,
            attributes={"proc_name": "iscsi_tcp", "unique_id": "0", "state": "running", "scan": ""},
        ),
        rec(
            f"{ISCSI_HOST}/iscsi_host/host2",
            "iscsi_host",
            parent=ISCSI_HOST,
            attributes={
                "ipaddress": "192.0.2.1",
                "initiatorname": "iqn.1993-08.org.debian:01:abcdef",
                "netdev": "<NULL>",
                "hwaddress": "<NULL>",
            },
        ),
        rec(
            f"{ISCSI_HOST}/session1/iscsi_session/session1",
            "iscsi_session",
            parent=ISCSI_HOST,
            attributes={
                "targetname": "iqn.2010-10.org.openstack:volume-0000",
                "tpgt": "1",
                "state": "LOGGED_IN",
                "recovery_tmo": "120",
                "ifacename": "default",
                "target_state": "SCANNED",
                "initiatorname": "(null)",
            },
        ),
        rec(
            f"{ISCSI_HOST}/session1/connection1:0/iscsi_connection/connection1:0",
            "iscsi_connection",
            parent=ISCSI_HOST,
            attributes={
                "persistent_address": "192.0.2.10",
                "persistent_port": "3260",
                "address": "192.0.2.10",
                "port": "3260",
            },
        ),
        rec(ISCSI_TARGET, "scsi", "scsi_target", parent=ISCSI_HOST),
        *scsi_lun(
            ISCSI_TARGET,
            "2:0:0:0",
            "sdc",
            32,
            vendor="LIO-ORG ",
            model="IBLOCK          ",
            rev="4.0 ",
            wwid="naa.60014050000000000000000000000000",
            pg80=LIO_PG80,
            pg83=LIO_PG83,
            id_serial=LIO_WWID,
            holder=None,
        ),
    ]


def dm_record(
    name: str = "mpath0",
    wwid: str = NETAPP_WWID,
    slaves: Mapping[str, str] | None = None,
    *,
    block: str = "dm-0",
    suspended: str = "0",
) -> DeviceRecord:
    """A multipath dm device."""
    return rec(
        f"/devices/virtual/block/{block}",
        "block",
        "disk",
        properties={
            "DEVNAME": f"/dev/{block}",
            "MAJOR": "253",
            "MINOR": block.removeprefix("dm-"),
            "DM_NAME": name,
            "DM_UUID": f"mpath-{wwid}",
            "DM_SUSPENDED": suspended,
            "DM_UDEV_RULES_VSN": "2",
        },
        attributes={
            "dev": f"253:{block.removeprefix('dm-')}",
            "size": "2097152",
            "ro": "0",
            "removable": "0",
            "dm/name": name,
            "dm/uuid": f"mpath-{wwid}",
            "dm/suspended": suspended,
        },
        links={f"slaves/{k}": v for k, v in (slaves or {"sda": SDA, "sdb": SDB}).items()},
    )


def example_host(*, rport1_state: str = "Online", sdb_state: str = "running") -> list[DeviceRecord]:
    """Every record of example-fc-host.umockdev, in file order.

    ``rport1_state`` / ``sdb_state`` let a test fail the path through host1.
    """
    return [
        _pci(PCI0),
        *fc_hba(PCI0, 0, "0x2100001b32000000", "0x2000001b32000000", "0x010100"),
        *fc_target(HOST0, 0, 0, 0, "0x500a098000000000", "0x020000"),
        *scsi_lun(TARGET0, "0:0:0:0", "sda", 0),
        _pci(PCI1),
        *fc_hba(PCI1, 1, "0x2100001b32000001", "0x2000001b32000001", "0x010101"),
        *fc_target(HOST1, 1, 0, 0, "0x500a098000000001", "0x020001", port_state=rport1_state),
        *scsi_lun(TARGET1, "1:0:0:0", "sdb", 16, state=sdb_state),
        *iscsi_host_records(),
        dm_record(),
    ]


def synthetic_host(hosts: int = 4, luns: int = 1024) -> list[DeviceRecord]:
    """A large FC host: ``hosts`` HBA ports, one target each, ``luns`` LUNs seen on
    every port, one multipath map per LUN (like the 17,440-record testbed of the
    host-simulation notes for 4 x 1024).
    """
    records: list[DeviceRecord] = []
    slaves: dict[int, dict[str, str]] = {lun: {} for lun in range(luns)}
    minor = 0
    for h in range(hosts):
        pci = f"/devices/pci0000:00/0000:00:{h + 5:02x}.0"
        host_path = f"{pci}/host{h}"
        records += fc_hba(pci, h, f"0x21000024ff{h:06x}", f"0x20000024ff{h:06x}", f"0x01{h:04x}")
        records += fc_target(host_path, h, 0, 0, f"0x500a0980{h:08x}", f"0x02{h:04x}")
        target_path = f"{host_path}/rport-{h}:0-0/target{h}:0:0"
        for lun in range(luns):
            naa = f"600a0980{lun:024x}"
            pg83 = bytes.fromhex(
                "00830018" + "01030010" + naa  # NAA-6 LU designator
            ) + bytes.fromhex("0114000400000001")
            pg83 = pg83[:2] + (len(pg83) - 4).to_bytes(2, "big") + pg83[4:]
            block = _sd_name(minor)
            records += scsi_lun(
                target_path,
                f"{h}:0:0:{lun}",
                block,
                minor,
                wwid=f"naa.{naa}",
                pg80=b"\x00\x80\x00\x0c" + f"{lun:012d}".encode(),
                pg83=pg83,
                id_serial=f"3{naa}",
                holder=f"dm-{lun}",
            )
            slaves[lun][block] = f"{target_path}/{h}:0:0:{lun}/block/{block}"
            minor += 16
    for lun in range(luns):
        records.append(
            dm_record(f"mpath{lun}", f"3600a0980{lun:024x}", slaves[lun], block=f"dm-{lun}")
        )
    return records


def _sd_name(index: int) -> str:
    """sda, sdb, ... sdz, sdaa ... (the kernel's sd naming)."""
    index //= 16
    name = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        name = chr(ord("a") + rem) + name
    return "sd" + name
