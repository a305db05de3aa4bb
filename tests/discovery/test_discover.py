"""discover(): from the example host's records to a full HostState, and what goes wrong."""

from __future__ import annotations

import logging
import random
from dataclasses import replace

import pytest
from testfixtures import LogCapture

from tracker.discovery import (
    DiscoveryWarning,
    FcPathIds,
    FcRemotePort,
    Hctl,
    HostState,
    IscsiPathIds,
    IscsiSession,
    MultipathMap,
    MultipathPath,
    PathState,
    Portal,
    ScsiHost,
    Transport,
    WarningCode,
    discover,
)
from tracker.discovery.discover import path_state
from tracker.discovery.vpd import IdentitySource, VpdProblem
from tracker.exceptions import InvalidInput
from tracker.host.records import DeviceRecord, FrozenBytesMap, FrozenMap

from .conftest import EXAMPLE_UMOCKDEV, require_file
from .records_fixtures import (
    DM0,
    HOST0,
    LIO_WWID,
    NETAPP_PG83,
    NETAPP_WWID,
    SDA,
    SDB,
    SDC,
    TARGET0,
    dm_record,
    example_host,
    rec,
    scsi_lun,
    synthetic_host,
)
from .umockdev_reader import read_umockdev

NETAPP_NAA = "naa.600a0b800026b52e0000000000000000"


def test_example_host_hosts(example_records: list[DeviceRecord]) -> None:
    state = discover(example_records, "compute-1")
    assert state.host_name == "compute-1"
    assert state.scsi_hosts == (
        ScsiHost(
            number=0,
            sys_path=HOST0,
            transport=Transport.FC,
            driver="qla2xxx",
            state="running",
            wwpn="2100001b32000000",
            wwnn="2000001b32000000",
            port_state="Online",
            port_id=0x010100,
            speed="16 Gbit",
            fabric_name="100000051e000001",
        ),
        ScsiHost(
            number=1,
            sys_path="/devices/pci0000:00/0000:00:05.1/host1",
            transport=Transport.FC,
            driver="qla2xxx",
            state="running",
            wwpn="2100001b32000001",
            wwnn="2000001b32000001",
            port_state="Online",
            port_id=0x010101,
            speed="16 Gbit",
            fabric_name="100000051e000001",
        ),
        ScsiHost(
            number=2,
            sys_path="/devices/platform/host2",
            transport=Transport.ISCSI,
            driver="iscsi_tcp",
            state="running",
            iscsi_initiator_name="iqn.1993-08.org.debian:01:abcdef",
        ),
    )
    assert state.warnings == ()


def test_example_host_remote_side(example_records: list[DeviceRecord]) -> None:
    state = discover(example_records, "compute-1")
    assert state.fc_remote_ports == (
        FcRemotePort(
            host=0,
            channel=0,
            number=0,
            sys_path=f"{HOST0}/rport-0:0-0/fc_remote_ports/rport-0:0-0",
            wwpn="500a098000000000",
            wwnn="500a098000000100",
            port_id=0x020000,
            roles=("FCP Target",),
            port_state="Online",
            scsi_target_id=0,
        ),
        FcRemotePort(
            host=1,
            channel=0,
            number=0,
            sys_path="/devices/pci0000:00/0000:00:05.1/host1/rport-1:0-0/fc_remote_ports/rport-1:0-0",
            wwpn="500a098000000001",
            wwnn="500a098000000100",
            port_id=0x020001,
            roles=("FCP Target",),
            port_state="Online",
            scsi_target_id=0,
        ),
    )
    portal = Portal("192.0.2.10", 3260)
    assert state.iscsi_sessions == (
        IscsiSession(
            session_id=1,
            host=2,
            sys_path="/devices/platform/host2/session1/iscsi_session/session1",
            target_iqn="iqn.2010-10.org.openstack:volume-0000",
            tpgt=1,
            portal=portal,
            current_portal=portal,
            state="LOGGED_IN",
            iface="default",
            persistent_address="192.0.2.10",
            persistent_port=3260,
        ),
    )
    assert state.fc_remote_ports[0].name == "rport-0:0-0"
    assert state.iscsi_sessions[0].key == (
        "iqn.2010-10.org.openstack:volume-0000",
        "192.0.2.10:3260",
        "default",
    )


def test_example_host_devices(example_records: list[DeviceRecord]) -> None:
    state = discover(example_records, "compute-1")
    summary = [
        (
            str(d.hctl),
            d.block_name,
            d.block_devno,
            d.vendor,
            d.model,
            d.revision,
            d.state,
            d.peripheral_type,
            d.size_bytes,
            d.logical_block_size,
            d.read_only,
            d.identity.wwn,
            d.identity.wwid,
            d.identity.serial,
        )
        for d in state.scsi_devices
    ]
    gib = 1024**3
    assert summary == [
        ("0:0:0:0", "sda", "8:0", "NETAPP", "LUN C-Mode", "9800", "running", 0, gib, 512, False,
         NETAPP_NAA, NETAPP_WWID, "80ABCD000000"),
        ("1:0:0:0", "sdb", "8:16", "NETAPP", "LUN C-Mode", "9800", "running", 0, gib, 512, False,
         NETAPP_NAA, NETAPP_WWID, "80ABCD000000"),
        ("2:0:0:0", "sdc", "8:32", "LIO-ORG", "IBLOCK", "4.0", "running", 0, gib, 512, False,
         "naa.60014050000000000000000000000000", LIO_WWID, "iscsi0000000000"),
    ]  # fmt: skip
    assert [d.transport_ids for d in state.scsi_devices] == [
        FcPathIds("500a098000000000", "500a098000000100", 0x020000, "rport-0:0-0"),
        FcPathIds("500a098000000001", "500a098000000100", 0x020001, "rport-1:0-0"),
        IscsiPathIds(
            session_id=1,
            target_iqn="iqn.2010-10.org.openstack:volume-0000",
            portal=Portal("192.0.2.10", 3260),
            tpgt=1,
        ),
    ]
    # The iSCSI LUN's page 0x83 also names the target port by SCSI name string.
    sdc = state.scsi_device("2:0:0:0")
    assert sdc is not None
    assert [d.text for d in sdc.identity.designators] == [
        "naa.60014050000000000000000000000000",
        "t10.LIO-ORG iscsi0000000000",  # 23 bytes: vendor + 15-char serial
        "iqn.2010-10.org.openstack:volume-0000,t,0x0001",
    ]
    assert sdc.identity.source is IdentitySource.VPD_PAGE_83
    assert state.devices_for_wwid(NETAPP_WWID) == state.scsi_devices[:2]


def test_example_host_multipath(example_records: list[DeviceRecord]) -> None:
    state = discover(example_records, "compute-1")
    assert state.multipath_maps == (
        MultipathMap(
            name="mpath0",
            uuid=f"mpath-{NETAPP_WWID}",
            wwid=NETAPP_WWID,
            block_name="dm-0",
            sys_path=DM0,
            size_bytes=1024**3,
            read_only=False,
            suspended=False,
            paths=(
                MultipathPath("sda", Hctl(0, 0, 0, 0), PathState.ACTIVE, "running"),
                MultipathPath("sdb", Hctl(1, 0, 0, 0), PathState.ACTIVE, "running"),
            ),
        ),
    )
    assert state.multipath_map(NETAPP_WWID) is state.multipath_maps[0]


def test_identities_match_what_udev_recorded(example_records: list[DeviceRecord]) -> None:
    """Our WWID/serial equal udev's ID_SERIAL / ID_SCSI_SERIAL of the example host."""
    state = discover(example_records, "h")
    udev_serials = {
        r.sys_name: r.properties["ID_SERIAL"]
        for r in read_umockdev(require_file(EXAMPLE_UMOCKDEV))
        if r.subsystem == "block" and "ID_SERIAL" in r.properties
    }
    ours = {d.block_name: d.identity.wwid for d in state.scsi_devices}
    assert ours == udev_serials == {"sda": NETAPP_WWID, "sdb": NETAPP_WWID, "sdc": LIO_WWID}


def test_umockdev_file_gives_the_same_state(example_records: list[DeviceRecord]) -> None:
    from_file = read_umockdev(require_file(EXAMPLE_UMOCKDEV))
    assert discover(from_file, "h") == discover(example_records, "h")


def test_state_is_hashable_and_order_independent(example_records: list[DeviceRecord]) -> None:
    state = discover(example_records, "h")
    shuffled = list(example_records)
    random.Random(4).shuffle(shuffled)
    again = discover(shuffled, "h")
    assert again == state
    assert hash(again) == hash(state)
    assert discover(example_records, "other") != state


@pytest.mark.parametrize("convention", ["none", "kernel-objects"])
def test_either_parent_convention(example_records: list[DeviceRecord], convention: str) -> None:
    """Parents missing, or pointing at rport-*/session*/connection* kernel objects."""

    def kernel_parent(r: DeviceRecord) -> str | None:
        head = r.sys_path.rsplit("/", 1)[0]
        if r.subsystem in ("fc_remote_ports", "iscsi_session", "iscsi_connection", "fc_transport"):
            return head.rsplit("/", 1)[0]  # .../rport-0:0-0 for .../rport-0:0-0/fc_remote_ports/x
        if r.devtype == "scsi_target":
            return head  # the rport-*/session* object
        return r.parent

    changed = [
        replace(r, parent=None if convention == "none" else kernel_parent(r))
        for r in example_records
    ]
    assert discover(changed, "h") == discover(example_records, "h")


def test_failed_path(example_records: list[DeviceRecord]) -> None:
    records = example_host(rport1_state="Blocked", sdb_state="transport-offline")
    state = discover(records, "h")
    (mpath,) = state.multipath_maps
    assert [(p.block_name, p.state, p.device_state) for p in mpath.paths] == [
        ("sda", PathState.ACTIVE, "running"),
        ("sdb", PathState.FAILED, "transport-offline"),
    ]
    assert [p.block_name for p in mpath.active_paths] == ["sda"]
    assert state.fc_remote_ports[1].port_state == "Blocked"
    sdb = state.scsi_device(Hctl(1, 0, 0, 0))
    assert sdb is not None
    assert not sdb.running
    # a failed path is a state, not a discovery problem
    assert state.warnings == ()
    assert state != discover(example_records, "h")


def _with_device(records: list[DeviceRecord], hctl: str, **changes: object) -> list[DeviceRecord]:
    return [
        replace(r, **changes)  # type: ignore[arg-type]
        if r.devtype == "scsi_device" and r.sys_name == hctl
        else r
        for r in records
    ]


def test_truncated_vpd_gives_device_without_identity(
    example_records: list[DeviceRecord],
) -> None:
    records = _with_device(
        example_records,
        "0:0:0:0",
        binary_attributes=FrozenBytesMap({"vpd_pg83": NETAPP_PG83[:12]}),
        attributes=FrozenMap(
            {k: v for k, v in example_records[7].attributes.items() if k != "wwid"}
        ),
    )
    assert example_records[7].sys_name == "0:0:0:0"
    state = discover(records, "h")
    sda = state.scsi_device("0:0:0:0")
    assert sda is not None
    assert sda.block_name == "sda"
    assert sda.identity.wwn is None
    assert sda.identity.wwid is None
    assert sda.identity.serial is None
    assert not sda.identity.known
    sda_path = f"{TARGET0}/0:0:0:0"
    warnings = [w for w in state.warnings if w.sys_path == sda_path]
    assert [w.code for w in warnings] == [
        WarningCode.NO_IDENTITY,
        WarningCode.VPD,
        WarningCode.VPD,
    ]
    vpd_codes = {w.vpd.code for w in warnings if w.vpd is not None}
    assert vpd_codes == {VpdProblem.TRUNCATED, VpdProblem.DESIGNATOR_OVERRUN}
    # the map still lists the path, and says its WWID is unknown rather than different
    assert [p.block_name for p in state.multipath_maps[0].paths] == ["sda", "sdb"]
    assert all(w.code is not WarningCode.WWID_MISMATCH for w in state.warnings)


def test_truncated_vpd_with_wwid_attribute_falls_back(
    example_records: list[DeviceRecord],
) -> None:
    records = _with_device(
        example_records,
        "0:0:0:0",
        binary_attributes=FrozenBytesMap({"vpd_pg83": NETAPP_PG83[:12]}),
    )
    state = discover(records, "h")
    sda = state.scsi_device("0:0:0:0")
    assert sda is not None
    assert sda.identity.wwn == NETAPP_NAA
    assert sda.identity.wwid == NETAPP_WWID
    assert sda.identity.source is IdentitySource.WWID_ATTRIBUTE
    assert {w.code for w in state.warnings} == {WarningCode.VPD}


def test_lun_of_256_and_more() -> None:
    records = [
        *scsi_lun(TARGET0, "0:0:0:256", "sdd", 48, holder=None),
        *scsi_lun(TARGET0, "0:0:0:16384", "sde", 64, holder=None),
        *scsi_lun(TARGET0, "0:0:0:3", "sdf", 80, holder=None),
    ]
    state = discover(records, "h")
    assert [d.hctl.lun for d in state.scsi_devices] == [3, 256, 16384]
    assert [d.block_name for d in state.scsi_devices] == ["sdf", "sdd", "sde"]
    assert str(state.scsi_devices[2].hctl) == "0:0:0:16384"


def test_unknown_subsystem_is_skipped_with_debug_log(
    example_records: list[DeviceRecord],
) -> None:
    extra = [
        rec("/devices/pci0000:00/0000:00:14.0/usb1", "usb", "usb_device"),
        rec("/devices/virtual/block/loop0", "block", "disk", attributes={"size": "8"}),
        rec("/devices/pci0000:00/0000:00:06.0/nvme/nvme0/nvme0n1", "block", "disk"),
    ]
    with LogCapture("tracker.discovery", level=logging.DEBUG) as log:
        state = discover([*example_records, *extra], "h")
    assert state == discover(example_records, "h")
    messages = [r.getMessage() for r in log.records]
    assert any("/devices/pci0000:00/0000:00:14.0/usb1" in m and "usb" in m for m in messages)
    assert any("loop0" in m for m in messages)


def test_bad_attributes_become_warnings(example_records: list[DeviceRecord]) -> None:
    bad = {
        "sda": {"size": "lots", "ro": "2"},
        "host1": {"port_name": "0xnotawwn"},
    }
    records = [
        replace(r, attributes=FrozenMap({**r.attributes, **bad[r.sys_name]}))
        if r.sys_name in bad and r.subsystem in ("block", "fc_host")
        else r
        for r in example_records
    ]
    state = discover(records, "h")
    sda = state.scsi_device("0:0:0:0")
    assert sda is not None
    assert sda.size_bytes is None
    assert sda.read_only is None
    assert state.scsi_hosts[1].wwpn is None
    # sorted by sys_path: host0's sda comes before host1's fc_host
    assert [(w.code, w.detail) for w in state.warnings] == [
        (WarningCode.BAD_ATTRIBUTE, "ro='2' is not 0 or 1"),
        (WarningCode.BAD_ATTRIBUTE, "size='lots' is not a number"),
        (WarningCode.BAD_ATTRIBUTE, "port_name='0xnotawwn' is not a WWN"),
    ]


def test_bad_names_and_duplicates(example_records: list[DeviceRecord]) -> None:
    broken = [
        rec(f"{TARGET0}/0:0:x:0", "scsi", "scsi_device"),
        rec(f"{HOST0}/fc_host/hostX", "fc_host"),
        example_records[0],
    ]
    state = discover([*example_records, *broken], "h")
    assert [(w.code, w.sys_path) for w in state.warnings] == [
        (WarningCode.DUPLICATE, example_records[0].sys_path),
        (WarningCode.BAD_NAME, f"{HOST0}/fc_host/hostX"),
        (WarningCode.BAD_NAME, f"{TARGET0}/0:0:x:0"),
    ]
    assert len(state.scsi_devices) == 3


def test_orphans_and_mismatches(example_records: list[DeviceRecord]) -> None:
    other_wwid = "3600a0b800026b52e00000000000000ff"
    sdq = "/devices/pci0000:00/0000:00:09.0/host9/target9:0:0/9:0:0:0/block/sdq"
    records = [
        *[r for r in example_records if r.sys_path != DM0],
        dm_record(slaves={"sda": SDA, "sdb": SDB, "sdz": "/devices/nowhere/sdz"}),
        dm_record("mpath1", other_wwid, {"sdc": SDC}, block="dm-1"),
        rec(sdq, "block", "disk"),  # an sd disk whose SCSI device record is missing
        rec("/devices/virtual/block/dm-2", "block", "disk", properties={"DM_UUID": "LVM-abc"}),
    ]
    state = discover(records, "h")
    assert [m.name for m in state.multipath_maps] == ["mpath0", "mpath1"]
    assert state.multipath_maps[0].paths[-1] == MultipathPath("sdz")
    assert [(w.code, w.sys_path) for w in state.warnings] == [
        (WarningCode.ORPHAN, sdq),
        (WarningCode.ORPHAN, DM0),
        (WarningCode.WWID_MISMATCH, "/devices/virtual/block/dm-1"),
    ]


def test_suspended_map_from_properties_only() -> None:
    dm = dm_record(suspended="1")
    dm = replace(dm, attributes=FrozenMap({"size": "8"}))
    state = discover([dm], "h")
    (mpath,) = state.multipath_maps
    assert mpath.suspended is True
    assert mpath.name == "mpath0"
    assert mpath.size_bytes == 4096
    assert [p.state for p in mpath.paths] == [PathState.UNKNOWN, PathState.UNKNOWN]


def test_synthetic_host_joins() -> None:
    records = synthetic_host(hosts=2, luns=40)
    state = discover(records, "big")
    assert len(state.scsi_hosts) == 2
    assert len(state.scsi_devices) == 80
    assert len(state.multipath_maps) == 40
    assert state.warnings == ()
    for mpath in state.multipath_maps:
        assert [p.hctl.host for p in mpath.paths if p.hctl] == [0, 1]
        assert all(p.state is PathState.ACTIVE for p in mpath.paths)
        assert {d.identity.wwid for d in state.devices_for_wwid(mpath.wwid)} == {mpath.wwid}


def test_hctl_parse() -> None:
    assert Hctl.parse("1:2:3:70000") == Hctl(1, 2, 3, 70000)
    assert Hctl(0, 0, 0, 256) > Hctl(0, 0, 0, 3)
    with pytest.raises(InvalidInput) as raised:
        Hctl.parse("1:2:3")
    assert raised.value.field == "hctl"
    assert Hctl.try_parse("a:b:c:d") is None
    assert Hctl.try_parse("1:2:3:-4") is None


def test_portal_text() -> None:
    assert str(Portal("192.0.2.10", 3260)) == "192.0.2.10:3260"
    assert str(Portal("2001:db8::1", 3260)) == "[2001:db8::1]:3260"


def test_empty_state() -> None:
    assert discover([], "h") == HostState("h")
    assert str(DiscoveryWarning("/devices/x", WarningCode.ORPHAN, "lost")) == "/devices/x: lost"


def test_sas_and_other_hosts() -> None:
    sas = "/devices/pci0000:00/0000:00:07.0/host5"
    ata = "/devices/pci0000:00/0000:00:1f.2/ata1/host6"
    records = [
        rec(sas, "scsi", "scsi_host"),
        rec(f"{sas}/scsi_host/host5", "scsi_host", parent=sas, attributes={"proc_name": "mpt3sas"}),
        rec(f"{sas}/sas_host/host5", "sas_host", parent=sas),
        rec(ata, "scsi", "scsi_host"),
        rec(f"{ata}/scsi_host/host6", "scsi_host", parent=ata, attributes={"proc_name": "ahci"}),
    ]
    state = discover(records, "h")
    assert [(h.number, h.transport, h.driver) for h in state.scsi_hosts] == [
        (5, Transport.SAS, "mpt3sas"),
        (6, Transport.OTHER, "ahci"),
    ]
    assert state.scsi_host(6) is state.scsi_hosts[1]


@pytest.mark.parametrize(
    ("device_state", "expected"),
    [
        ("running", PathState.ACTIVE),
        ("offline", PathState.FAILED),
        ("transport-offline", PathState.FAILED),
        ("blocked", PathState.FAILED),
        ("deleted", PathState.FAILED),
        ("quiesce", PathState.UNKNOWN),
        (None, PathState.UNKNOWN),
    ],
)
def test_path_state(device_state: str | None, expected: PathState) -> None:
    assert path_state(device_state) is expected
