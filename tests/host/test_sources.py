"""Both device sources yield identical records, for every topology."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from tracker.exceptions import NotASysfsTree, SysfsRootMissing
from tracker.host.records import DeviceRecord
from tracker.host.sources import DeviceSource, PyudevSource, SysfsTreeSource, decode_text_attribute
from tracker.host.wanted import SUBSYSTEMS, spec_for
from tracker.testing.testbed import DiskSpec, Hctl, HostSpec, LunSpec, Testbed
from tracker.testing.topologies import TOPOLOGIES, VpdVector, fc_multipath

from .conftest import pyudev_scan


def by_path(records: tuple[DeviceRecord, ...]) -> dict[str, DeviceRecord]:
    return {record.sys_path: record for record in records}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_pyudev_and_sysfs_sources_agree(
    name: str, testbed: Testbed, vpd_vectors: Mapping[str, VpdVector], preload_library: Path
) -> None:
    topology = TOPOLOGIES[name](testbed, vpd_vectors)
    sysfs = SysfsTreeSource(testbed.root).scan()
    pyudev = pyudev_scan(testbed.root, preload_library)
    assert [r.sys_path for r in pyudev] == [r.sys_path for r in sysfs]
    for left, right in zip(pyudev, sysfs, strict=True):
        assert left == right, left.sys_path
    # and the records hold what was built
    records = by_path(sysfs)
    disks = {r.sys_name: r for r in sysfs if r.subsystem == "block"}
    for lun in topology.luns:
        assert lun.disk is not None
        disk = disks[lun.disk.name]
        assert disk.properties["DEVNAME"] == f"/dev/{lun.disk.name}"
        assert disk.properties["MAJOR"] == str(lun.disk.major)
        device = records[str(disk.parent)]
        assert device.sys_name == str(lun.hctl)
        assert device.attributes["vendor"] == f"{lun.vendor:<8}"
        assert device.attributes["state"] == lun.state or name == "failed_path"
        assert device.attributes.get("wwid") == lun.wwid
        assert device.binary_attributes.get("vpd_pg83") == lun.vpd_pg83
    for mpath in topology.multipaths:
        dm = disks[f"dm-{mpath.index}"]
        assert dm.attributes["dm/uuid"] == mpath.uuid
        assert sorted(k for k in dm.links if k.startswith("slaves/")) == sorted(
            f"slaves/{p}" for p in mpath.paths
        )
        for path in mpath.paths:  # holders/ is not read (tests/host/test_scan_reads.py)
            assert dict(disks[path].links) == {}


def test_sources_implement_the_protocol(testbed: Testbed) -> None:
    assert isinstance(SysfsTreeSource(testbed.root), DeviceSource)
    assert isinstance(PyudevSource(), DeviceSource)


def test_hot_unplug_is_visible_on_next_scan(testbed: Testbed) -> None:
    topology = fc_multipath(testbed)
    source = SysfsTreeSource(testbed.root)
    before = by_path(source.scan())
    gone = topology.luns[0]
    assert gone.disk is not None
    disk_path = testbed.disks[gone.disk.name]
    testbed.remove_lun(gone.hctl)
    after = by_path(source.scan())
    assert disk_path in before
    assert disk_path not in after
    assert not any(r.sys_name == str(gone.hctl) for r in after.values())
    assert source.lookup(disk_path) is None
    dm = next(r for r in after.values() if r.sys_name == "dm-0")
    assert f"slaves/{gone.disk.name}" not in dm.links
    assert len(dm.links) == len(before[dm.sys_path].links) - 1
    # the target keeps its other LUN, so it stays
    assert any(
        r.devtype == "scsi_target" and r.sys_name == gone.hctl.target_name for r in after.values()
    )


@pytest.mark.slow
def test_hot_unplug_seen_by_pyudev(testbed: Testbed, preload_library: Path) -> None:
    fc_multipath(testbed, luns=1)
    before = pyudev_scan(testbed.root, preload_library)
    testbed.remove_lun(Hctl(0, 0, 0, 0))
    after = pyudev_scan(testbed.root, preload_library)
    # scsi_device, sda, and the emptied target with its fc_transport
    assert len(before) - len(after) == 4
    assert after == SysfsTreeSource(testbed.root).scan()


def test_missing_attributes_are_absent(testbed: Testbed) -> None:
    testbed.add_host(HostSpec(host=0))
    testbed.add_lun(LunSpec(Hctl(0, 0, 0, 0), "QEMU", "QEMU HARDDISK", disk=DiskSpec("sda", 8, 0)))
    records = by_path(SysfsTreeSource(testbed.root).scan())
    device = next(r for r in records.values() if r.devtype == "scsi_device")
    assert "wwid" not in device.attributes
    assert not device.binary_attributes
    assert device.attributes["vendor"] == "QEMU    "
    assert device.attributes["model"] == "QEMU HARDDISK   "


def test_lookup(testbed: Testbed) -> None:
    fc_multipath(testbed, luns=1)
    source = SysfsTreeSource(testbed.root)
    sda = testbed.disks["sda"]
    record = source.lookup(sda)
    assert record is not None and record.sys_name == "sda"
    assert record == next(r for r in source.scan() if r.sys_path == sda)
    assert source.lookup("/devices/nowhere") is None
    assert source.lookup("/../../etc") is None
    rport_dir = record.sys_path.split("/target")[0]
    assert source.lookup(rport_dir) is None  # a kobject without subsystem


def test_parent_is_the_nearest_directory_with_uevent(testbed: Testbed) -> None:
    fc_multipath(testbed, luns=1)
    records = by_path(SysfsTreeSource(testbed.root).scan())
    target = next(r for r in records.values() if r.devtype == "scsi_target")
    assert target.parent is not None and target.parent.endswith("/rport-0:0-0")
    rport = next(r for r in records.values() if r.subsystem == "fc_remote_ports")
    assert rport.parent == target.parent


def test_sysfs_source_rejects_a_root_without_sys(tmp_path: Path) -> None:
    with pytest.raises(SysfsRootMissing) as caught:
        SysfsTreeSource(tmp_path)
    assert caught.value.root == str(tmp_path)


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"NETAPP  \n", "NETAPP  "),
        (b"running\n\n", "running"),
        (b"a\r\n", "a"),
        (b"abc\0def\n", "abc"),
        (b"", ""),
        (b"\xff\n", "\\xff"),
        (b"caf\xc3\xa9\n", "caf\u00e9"),
        (b"M\xa9del  \n", "M\\xa9del  "),
    ],
)
def test_text_attributes_are_decoded_like_libudev(raw: bytes, text: str) -> None:
    assert decode_text_attribute(raw) == text


def test_wanted_table() -> None:
    assert spec_for("block", "disk", "sda") is not None
    assert spec_for("block", "partition", "sda1") is None
    assert spec_for("block", "disk", "loop0") is None
    dm = spec_for("block", "disk", "dm-3")
    assert dm is not None and "dm/uuid" in dm.attributes and "slaves" in dm.link_dirs
    device = spec_for("scsi", "scsi_device", "0:0:0:0")
    assert device is not None and device.binary_attributes == ("vpd_pg80", "vpd_pg83")
    assert spec_for("pci", None, "0000:00:05.0") is None
    assert spec_for(None, None, "rport-0:0-0") is None
    assert {"scsi", "block", "fc_host", "fc_remote_ports", "iscsi_session"} <= set(SUBSYSTEMS)


def test_a_tree_without_bus_and_class_is_not_a_sysfs_tree(tmp_path: Path) -> None:
    (tmp_path / "sys" / "devices" / "pci0000:00").mkdir(parents=True)
    with pytest.raises(NotASysfsTree) as caught:
        SysfsTreeSource(tmp_path)
    assert caught.value.root == str(tmp_path)
    assert "not a sysfs tree" in str(caught.value)
    assert isinstance(caught.value, SysfsRootMissing)  # callers that catch the old error


@pytest.mark.parametrize("kept", ["bus", "class"])
def test_a_tree_with_bus_or_class_scans(tmp_path: Path, kept: str) -> None:
    (tmp_path / "sys" / kept).mkdir(parents=True)
    assert SysfsTreeSource(tmp_path).scan() == ()
