"""Udev links in device records: ``DEVLINKS`` first, else ``<root>/dev/disk/by-*``."""

from __future__ import annotations

import os
from pathlib import Path

from tracker.host.records import DeviceRecord, FrozenMap, record_from_json, record_to_json
from tracker.host.sources import SysfsTreeSource
from tracker.testing.testbed import DiskSpec, Hctl, HostSpec, LunSpec, Testbed

BY_ID = "/dev/disk/by-id/scsi-3600a0980"
BY_PATH = "/dev/disk/by-path/pci-0000:00:1f.0-scsi-0:0:0:0"


def _disk(testbed: Testbed, name: str = "sda", minor: int = 0, **disk: object) -> str:
    if not testbed.luns:
        testbed.add_host(HostSpec(host=0))
    lun = len(testbed.luns)
    testbed.add_lun(
        LunSpec(
            hctl=Hctl(0, 0, 0, lun),
            vendor="NETAPP",
            model="LUN C-Mode",
            disk=DiskSpec(name=name, major=8, minor=minor, **disk),  # type: ignore[arg-type]
        )
    )
    return testbed.disks[name]


def _record(testbed: Testbed, name: str = "sda") -> DeviceRecord:
    records = {r.sys_path: r for r in SysfsTreeSource(testbed.root).scan()}
    return records[testbed.disks[name]]


def _link(testbed: Testbed, link: str, target: str) -> None:
    path = testbed.root / link.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def test_links_come_from_the_dev_disk_directories(testbed: Testbed) -> None:
    _disk(testbed, udev_links=())
    _disk(testbed, "sdb", 16, udev_links=())
    _link(testbed, BY_ID, "../../sda")
    _link(testbed, BY_PATH, "/dev/sda")  # an absolute target
    _link(testbed, "/dev/disk/by-id/wwn-0x5", "../../sdb")
    _link(testbed, "/dev/disk/by-uuid/1234", "../../sda")  # not an identity or path link
    _link(testbed, "/dev/disk/by-id/dangling", "../../sdz")
    assert _record(testbed).udev_links == (BY_ID, BY_PATH)
    assert _record(testbed, "sdb").udev_links == ("/dev/disk/by-id/wwn-0x5",)


def test_udev_devlinks_win_over_the_directories(testbed: Testbed) -> None:
    devlinks = f"{BY_PATH} /dev/mapper/x {BY_ID} /dev/disk/by-uuid/1"
    _disk(testbed, udev_links=(), udev_properties=FrozenMap({"DEVLINKS": devlinks}))
    _link(testbed, "/dev/disk/by-id/stale-name", "../../sda")
    record = _record(testbed)
    assert record.udev_links == (BY_ID, BY_PATH)
    assert "DEVLINKS" not in record.properties


def test_the_udev_database_symlink_lines_are_udev_links(testbed: Testbed) -> None:
    _disk(testbed, udev_links=())
    database = testbed.root / "run" / "udev" / "data"
    database.mkdir(parents=True)
    (database / "b8:0").write_text(f"S:{BY_ID[5:]}\nS:{BY_PATH[5:]}\nE:ID_SERIAL=3600a0980\n")
    record = _record(testbed)
    assert record.udev_links == (BY_ID, BY_PATH)
    assert record.properties["ID_SERIAL"] == "3600a0980"


def test_a_lookup_sees_links_that_changed_since_the_scan(testbed: Testbed) -> None:
    sys_path = _disk(testbed, udev_links=())
    source = SysfsTreeSource(testbed.root)
    assert {r.sys_path: r for r in source.scan()}[sys_path].udev_links == ()
    _link(testbed, BY_PATH, "../../sda")
    record = source.lookup(sys_path)
    assert record is not None and record.udev_links == (BY_PATH,)
    (testbed.root / BY_PATH.lstrip("/")).unlink()
    record = source.lookup(sys_path)
    assert record is not None and record.udev_links == ()


def test_undecodable_link_names_are_escaped_and_named(testbed: Testbed) -> None:
    _disk(testbed, udev_links=())
    directory = os.fsencode(testbed.root / "dev" / "disk" / "by-id")
    os.makedirs(directory, exist_ok=True)
    os.symlink(b"../../sda", directory + b"/scsi-caf\xa9")
    record = _record(testbed)
    assert record.udev_links == ("/dev/disk/by-id/scsi-caf\\xa9",)
    assert record.problems["udev link"] == "bytes that are not UTF-8 were escaped"


def test_only_block_devices_have_udev_links_and_json_keeps_them(testbed: Testbed) -> None:
    _disk(testbed, udev_links=("by-id/scsi-3600a0980",))
    records = SysfsTreeSource(testbed.root).scan()
    with_links = [r for r in records if r.udev_links]
    assert [r.sys_name for r in with_links] == ["sda"]
    for record in records:
        assert record_from_json(record_to_json(record)) == record
    old = record_to_json(with_links[0])
    del old["udev_links"]  # a capture written before links were recorded
    assert record_from_json(old).udev_links == ()


def test_the_builder_links_name_the_disk_node(testbed: Testbed, tmp_path: Path) -> None:
    _disk(testbed, udev_links=("by-id/a", "by-path/b"))
    links = testbed.udev_links_of("sda")
    assert [os.fspath(p.relative_to(testbed.root)) for p in links] == [
        "dev/disk/by-id/a",
        "dev/disk/by-path/b",
    ]
    assert all(os.path.realpath(p) == os.path.realpath(testbed.root / "dev" / "sda") for p in links)
