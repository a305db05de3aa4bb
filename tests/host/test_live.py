"""Live changes on a testbed: the tree changes as the kernel's would, with its events in order."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from tracker.exceptions import TestbedError
from tracker.host.events import DeviceAction
from tracker.host.sources import SysfsTreeSource
from tracker.testing.live import LiveTestbed, replay_build, to_device_events
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
    Testbed,
    sd_devnum,
    sd_name,
)
from tracker.testing.topologies import TOPOLOGIES, VpdVector, fc_multipath, iscsi_multipath
from tracker.testing.uevents import Uevent


def tree(root: Path) -> dict[str, str]:
    """Every file and link of a testbed: path -> content or link target.

    Empty directories are left out: the kernel keeps a class directory
    (``/sys/class/scsi_disk``) once the class exists, and udev its
    ``/dev/disk/by-path``.
    """
    found: dict[str, str] = {}
    for directory, subdirs, files in os.walk(root):
        for name in [*files, *subdirs]:
            path = Path(directory) / name
            key = str(path.relative_to(root))
            if key.startswith(".tracker-"):
                continue
            if path.is_symlink():
                found[key] = "-> " + os.readlink(path)
            elif path.is_file():
                found[key] = path.read_bytes().hex()
    return found


def lun(hctl: Hctl, index: int, *, wwid: str = "naa.600a0980383030") -> LunSpec:
    major, minor = sd_devnum(index)
    return LunSpec(
        hctl=hctl,
        vendor="NETAPP",
        model="LUN C-Mode",
        wwid=wwid,
        disk=DiskSpec(name=sd_name(index), major=major, minor=minor),
    )


def kinds(events: tuple[Uevent, ...]) -> list[tuple[str, str, str | None]]:
    return [(e.action, e.subsystem, e.devtype) for e in events]


@pytest.fixture
def live(bed_dir: Path) -> LiveTestbed:
    return LiveTestbed(bed_dir, deliver=False)


LUN_ADD = [
    ("add", "scsi", "scsi_target"),
    ("add", "scsi", "scsi_device"),
    ("add", "scsi_device", None),
    ("add", "scsi_disk", None),
    ("add", "block", "disk"),
]


def test_plug_lun_adds_devices_in_kernel_order_and_the_scan_sees_it(live: LiveTestbed) -> None:
    live.add_host(HostSpec(host=0))
    events = live.plug_lun(lun(Hctl(0, 0, 0, 1), 0))
    assert kinds(events) == LUN_ADD
    assert [e.seqnum for e in events] == sorted({e.seqnum for e in events})
    assert events[-1].properties["DEVNAME"] == "sda"
    assert live.events[-5:] == events
    records = {r.sys_path: r for r in SysfsTreeSource(live.root).scan()}
    assert {events[i].sys_path for i in (0, 1, 4)} <= set(records)
    assert records[events[1].sys_path].attributes["wwid"] == "naa.600a0980383030"


def test_second_lun_of_a_target_does_not_add_the_target_again(live: LiveTestbed) -> None:
    live.add_host(HostSpec(host=0))
    live.plug_lun(lun(Hctl(0, 0, 0, 1), 0))
    events = live.plug_lun(lun(Hctl(0, 0, 0, 2), 1))
    assert kinds(events) == LUN_ADD[1:]
    removed = live.unplug_lun(Hctl(0, 0, 0, 2))
    assert [e.subsystem for e in removed] == ["block", "scsi_disk", "scsi_device", "scsi"]


def test_unplug_lun_is_the_exact_reverse_and_leaves_no_trace(live: LiveTestbed) -> None:
    live.add_host(HostSpec(host=0))
    before = tree(live.root)
    added = live.plug_lun(lun(Hctl(0, 0, 0, 1), 0))
    removed = live.unplug_lun(Hctl(0, 0, 0, 1))
    assert [(e.action, e.sys_path) for e in removed] == [
        ("remove", e.sys_path) for e in reversed(added)
    ]
    for add, rem in zip(reversed(added), removed, strict=True):
        assert rem.properties.get("DEVNAME") == add.properties.get("DEVNAME")
        assert rem.devtype == add.devtype
    assert removed[0].seqnum > added[-1].seqnum
    assert tree(live.root) == before


def test_paths_of_a_multipath_map_come_and_go_with_map_changes(live: LiveTestbed) -> None:
    live.add_host(HostSpec(host=0))
    live.add_host(HostSpec(host=1, parent="/devices/pci0000:00/0000:00:1f.1"))
    mpath = MultipathSpec(index=0, name="mpatha", uuid="mpath-3600a", paths=("sda",))
    first = live.plug_path(lun(Hctl(0, 0, 0, 1), 0), mpath)
    assert kinds(first)[-2:] == [("add", "block", "disk"), ("change", "block", "disk")]
    assert first[-1].properties["DM_NAME"] == "mpatha"
    before = tree(live.root)
    second = live.plug_path(lun(Hctl(1, 0, 0, 1), 1), 0)
    assert kinds(second) == [*LUN_ADD, ("change", "block", "disk")]
    assert second[-1].sys_path == "/devices/virtual/block/dm-0"
    dm = live.sys_dir / "devices/virtual/block/dm-0"
    assert sorted(p.name for p in (dm / "slaves").iterdir()) == ["sda", "sdb"]
    gone = live.unplug_path(Hctl(1, 0, 0, 1))
    assert kinds(gone)[0] == ("change", "block", "disk")
    assert [e.sys_path for e in gone[1:]] == [e.sys_path for e in reversed(second[:-1])]
    assert tree(live.root) == before
    with pytest.raises(TestbedError, match="not a path"):
        live.plug_lun(lun(Hctl(1, 0, 0, 2), 2))
        live.unplug_path(Hctl(1, 0, 0, 2))
    live.unplug_lun(Hctl(0, 0, 0, 1))
    assert kinds(live.events[-6:-5]) == [("change", "block", "disk")]
    assert not list((dm / "slaves").iterdir())


def test_rport_plug_and_unplug_take_its_target_and_luns(live: LiveTestbed) -> None:
    live.add_fc_hba(FcHbaSpec(host=2, wwpn=0x2100001B32000001, wwnn=0x2000001B32000001))
    before = tree(live.root)
    rport = FcRemotePortSpec(
        host=2, number=0, wwpn=0x500A098000000001, wwnn=0x500A098000000000, port_id=0x010200
    )
    luns = [lun(Hctl(2, 0, 0, n), n) for n in range(3)]
    added = live.plug_rport(rport, luns)
    assert kinds(added)[:3] == [
        ("add", "fc_remote_ports", None),
        ("add", "scsi", "scsi_target"),
        ("add", "fc_transport", None),
    ]
    assert sum(e.subsystem == "block" for e in added) == 3
    assert set(live.luns) == {spec.hctl for spec in luns}
    removed = live.unplug_rport(2, 0, 0)
    assert [e.sys_path for e in removed] == [e.sys_path for e in reversed(added)]
    assert {e.action for e in removed} == {"remove"}
    assert live.luns == ()
    assert tree(live.root) == before
    with pytest.raises(TestbedError, match="no such remote port"):
        live.unplug_rport(2, 0, 0)


def test_iscsi_session_login_and_logout(live: LiveTestbed) -> None:
    live.add_iscsi_host(IscsiHostSpec(host=5))
    before = tree(live.root)
    session = IscsiSessionSpec(
        host=5, session=1, target_iqn="iqn.1992-08.com.netapp:sn.1", portal_address="192.0.2.10"
    )
    added = live.plug_iscsi_session(session, [lun(Hctl(5, 0, 0, 0), 0)])
    assert kinds(added)[:2] == [("add", "iscsi_session", None), ("add", "iscsi_connection", None)]
    assert kinds(added)[2:] == LUN_ADD
    removed = live.unplug_iscsi_session(5)
    assert kinds(removed)[-2:] == [
        ("remove", "iscsi_connection", None),
        ("remove", "iscsi_session", None),
    ]
    assert tree(live.root) == before


def test_a_refused_change_announces_nothing(live: LiveTestbed) -> None:
    live.add_host(HostSpec(host=0))
    count = len(live.events)
    with pytest.raises(TestbedError, match="no host7"):
        live.plug_lun(lun(Hctl(7, 0, 0, 0), 0))
    with pytest.raises(TestbedError, match="no such LUN"):
        live.unplug_lun(Hctl(0, 0, 0, 0))
    assert len(live.events) == count


def test_events_convert_to_device_events_for_an_in_memory_source(live: LiveTestbed) -> None:
    live.add_host(HostSpec(host=0))
    events = live.plug_lun(lun(Hctl(0, 0, 0, 1), 0))
    converted = to_device_events(events)
    assert [(d.action, d.sys_path, d.subsystem, d.devtype, d.seqnum) for d in converted] == [
        (DeviceAction(e.action), e.sys_path, e.subsystem, e.devtype, e.seqnum) for e in events
    ]
    assert converted[-1].properties["DEVNAME"] == "sda"


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_replayed_build_equals_the_plain_build_and_announces_every_device(
    name: str, tmp_path: Path, vpd_vectors: Mapping[str, VpdVector]
) -> None:
    builder = TOPOLOGIES[name]
    plain_dir, live_dir = tmp_path / "plain", tmp_path / "live"
    plain_dir.mkdir()
    live_dir.mkdir()
    builder(Testbed(plain_dir), vpd_vectors)
    _topology, events = replay_build(builder, live_dir, vpd_vectors)
    assert tree(live_dir) == tree(plain_dir)
    records = SysfsTreeSource(live_dir).scan()
    adds = [e for e in events if e.action == "add"]
    assert len({e.sys_path for e in adds}) == len(adds)
    assert {r.sys_path for r in records} <= {e.sys_path for e in adds}
    for event in adds:  # the others are devices the source does not read
        assert (live_dir / "sys" / event.sys_path.lstrip("/") / "uevent").is_file()
    position = {e.sys_path: i for i, e in enumerate(adds)}
    for record in records:
        if record.parent is not None and record.parent in position:
            assert position[record.parent] < position[record.sys_path], record.sys_path
    assert [e.seqnum for e in events] == list(range(1, len(events) + 1))
    changes = [e for e in events if e.action == "change"]
    maps = [r for r in records if r.sys_name.startswith("dm-")]
    assert sorted(e.sys_path for e in changes) == sorted(r.sys_path for r in maps)


def test_replay_of_multipath_topologies_announces_maps_after_their_paths(tmp_path: Path) -> None:
    for builder in (fc_multipath, iscsi_multipath):
        root = tmp_path / builder.__name__
        root.mkdir()
        _topology, events = replay_build(builder, root)
        seen_disks: set[str] = set()
        for event in events:
            name = event.properties.get("DEVNAME") or ""
            if name.startswith("sd"):
                seen_disks.add(name)
            if name.startswith("dm-"):
                slaves = root / "sys" / event.sys_path.lstrip("/") / "slaves"
                assert {p.name for p in slaves.iterdir()} <= seen_disks
