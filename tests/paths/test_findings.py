"""Detach and attach verification, orphans and reused-LUN hazards, on live testbeds.

Each host is a :class:`~tracker.testing.live.LiveTestbed` (``iscsi_multipath``:
two LUs on two portals, one multipath map each), reconciled into the store as
``tracker discover`` writes it; the tracked volumes carry the LUs' WWNs and
their connections the os-brick properties of the paths.
"""

from __future__ import annotations

import pytest

from tracker import exceptions
from tracker.host.sources import SysfsTreeSource
from tracker.paths import service
from tracker.paths.connectors import PathConnector
from tracker.testing.specs import Hctl

from .fleet import IQN, WWN0, WWN1, Fleet, iscsi_info

ALL_DATABASES = pytest.mark.parametrize(
    "dialect", ["sqlite", "postgresql", "mariadb"], indirect=True
)


def same_as_full_read(fleet: Fleet, volume_id: str) -> None:
    """verify_detach reads only what may be the volume's: the answer is the full read's."""
    from tracker.db.paths import read_paths
    from tracker.paths import findings

    with fleet.store.read() as session:
        full = findings.verify_detach(read_paths(session), volume_id, {})
    scoped = service.verify_detach(fleet.store, volume_id)
    assert [(f.kind, f.host_name, f.hctl, f.wwid, f.reason) for f in scoped.findings] == [
        (f.kind, f.host_name, f.hctl, f.wwid, f.reason) for f in full.findings
    ]
    assert (scoped.hosts, scoped.attached_on) == (full.hosts, full.attached_on)


def kinds(report: object) -> list[tuple[str, str | None]]:
    return [(f.kind, f.path) for f in report.findings]  # type: ignore[attr-defined]


# --- attached: nothing to say --------------------------------------------------------------


@ALL_DATABASES
def test_attached_volumes_verify_and_leave_no_orphans(fleet: Fleet) -> None:
    fleet.host("h1")
    a, b = fleet.volume(WWN0, "a"), fleet.volume(WWN1, "b")
    fleet.attach(a, "h1", 0)
    fleet.attach(b, "h1", 1)
    assert service.find_orphans(fleet.store).clean
    report = service.verify_attach(fleet.store, a.id, "h1")
    assert report.clean, report.findings
    assert report.expected_paths == 2
    assert report.paths == ("/dev/mapper/mpatha", "/dev/sda", "/dev/sdc")
    detach = service.verify_detach(fleet.store, a.id)
    assert (detach.attached_on, detach.hosts, detach.clean) == (("h1",), (), True)


def test_the_connector_finds_every_path_of_a_volume(fleet: Fleet) -> None:
    fleet.host("h1")
    connector = PathConnector(fleet.store, "ISCSI", "h1")
    assert connector.get_search_path() == "/dev/disk/by-path"
    paths = connector.get_volume_paths(iscsi_info(0))
    assert paths == [
        "/dev/disk/by-id/scsi-360014050383041423030303030303634",
        "/dev/disk/by-id/wwn-0x60014050383041423030303030303634",
        f"/dev/disk/by-path/ip-192.0.2.10:3260-iscsi-{IQN}-lun-0",
        f"/dev/disk/by-path/ip-192.0.2.11:3260-iscsi-{IQN}-lun-0",
        "/dev/sda",
        "/dev/sdc",
        "/dev/mapper/mpatha",
    ]
    # one portal only: its path, and the map behind it
    single = connector.get_volume_paths(
        {"target_portal": "192.0.2.11", "target_iqn": IQN, "target_lun": 0}
    )
    assert single == [
        f"/dev/disk/by-path/ip-192.0.2.11:3260-iscsi-{IQN}-lun-0",
        "/dev/sdc",
        "/dev/mapper/mpatha",
    ]
    everything = connector.get_all_available_volumes()
    assert {"/dev/sda", "/dev/sdb", "/dev/sdc", "/dev/sdd"} <= set(everything)
    assert PathConnector(fleet.store, "fc", "h1").get_all_available_volumes() == []
    assert PathConnector(fleet.store, "local", "h1").get_search_path() is None


# --- after a detach -----------------------------------------------------------------------


@ALL_DATABASES
def test_a_clean_detach_has_no_findings(fleet: Fleet) -> None:
    bed = fleet.host("h1")
    a = fleet.volume(WWN0, "a")
    fleet.attach(a, "h1", 0)
    fleet.detach(a, "h1")
    bed.remove_multipath(0)
    bed.remove_lun(Hctl(0, 0, 0, 0))
    bed.remove_lun(Hctl(1, 0, 0, 0))
    fleet.sync("h1")
    report = service.verify_detach(fleet.store, a.id)
    assert report.clean, report.findings
    assert report.hosts == ("h1",)


@ALL_DATABASES
def test_leftover_devices_and_map_after_a_detach_are_reported_with_why_and_since(
    fleet: Fleet,
) -> None:
    fleet.host("h1")
    a = fleet.volume(WWN0, "a")
    fleet.attach(a, "h1", 0)
    fleet.detach(a, "h1")  # the connection is gone; the paths stayed
    report = service.verify_detach(fleet.store, a.id)
    assert not report.clean
    assert kinds(report) == [
        ("leftover-device", "/dev/sda"),
        ("leftover-device", "/dev/sdc"),
        ("leftover-map", "/dev/mapper/mpatha"),
    ]
    first = report.findings[0]
    assert first.reason == f"same WWID as volume {a.id}, which has no attached connection on h1"
    assert first.since is not None  # from the journal: when sda appeared
    assert first.hctl == "0:0:0:0" and first.severity == "leftover"
    assert "/dev/disk/by-id/wwn-0x60014050383041423030303030303634" in first.links
    same_as_full_read(fleet, a.id)
    orphans = service.find_orphans(fleet.store, host="h1")
    assert [f.kind for f in orphans.findings] == ["leftover-device"] * 2 + [
        "leftover-map",
        "unmatched-device",
        "unmatched-device",
    ]


def test_a_map_left_with_no_paths_is_reported(fleet: Fleet) -> None:
    bed = fleet.host("h1")
    a = fleet.volume(WWN0, "a")
    fleet.attach(a, "h1", 0)
    fleet.detach(a, "h1")
    bed.remove_lun(Hctl(0, 0, 0, 0))
    bed.remove_lun(Hctl(1, 0, 0, 0))
    fleet.sync("h1")
    report = service.verify_detach(fleet.store, a.id)
    assert kinds(report) == [
        ("empty-map", "/dev/mapper/mpatha"),
        ("leftover-map", "/dev/mapper/mpatha"),
    ]


# --- hazards: the OSSA-2023-003 condition --------------------------------------------------


def test_a_new_volume_at_a_detached_volume_s_lun_is_a_hazard(fleet: Fleet) -> None:
    """The spec's corruption scenario: volume a is detached but its device stays at
    LUN 0; the array maps volume c at LUN 0 again; the host still sees a's WWID there."""
    fleet.host("h1")
    a = fleet.volume(WWN0, "a")
    fleet.attach(a, "h1", 0)
    fleet.detach(a, "h1")
    c = fleet.volume("naa.600140500000000000000000000000cc", "c")
    fleet.attach(c, "h1", 0)
    orphans = service.find_orphans(fleet.store)
    hazards = [f for f in orphans.findings if f.severity == "hazard"]
    assert [(f.kind, f.path, f.volume_id) for f in hazards] == [
        ("reused-lun", "/dev/sda", c.id),
        ("reused-lun", "/dev/sdc", c.id),
    ]
    assert f"volume {a.id} (same WWID)" in hazards[0].reason
    same_as_full_read(fleet, a.id)
    same_as_full_read(fleet, c.id)
    assert orphans.findings[0].severity == "hazard"  # hazards come first
    attach = service.verify_attach(fleet.store, c.id, "h1")
    assert {f.kind for f in attach.findings} == {"wrong-wwid"}


def test_a_map_with_a_path_to_another_lu_is_a_hazard(fleet: Fleet) -> None:
    bed = fleet.host("h1")
    bed.add_multipath_path(0, "sdb")  # mpatha (LUN 0) gets a path of LUN 1
    fleet.sync("h1")
    orphans = service.find_orphans(fleet.store)
    mixed = [f for f in orphans.findings if f.kind == "mixed-map"]
    assert [(f.path, f.severity) for f in mixed] == [("/dev/mapper/mpatha", "hazard")]
    assert "sdb (0:0:0:1) reports WWID 360014050383041423030303030303635" in mixed[0].reason


def test_a_link_naming_another_lu_is_a_hazard(fleet: Fleet) -> None:
    bed = fleet.host("h1")
    stale = bed.root / "dev/disk/by-path" / f"ip-192.0.2.10:3260-iscsi-{IQN}-lun-7"
    stale.symlink_to("../../sdb")  # left by an old LUN 7, now pointing at LUN 1's disk
    fleet.sync("h1")
    orphans = service.find_orphans(fleet.store)
    links = [f for f in orphans.findings if f.kind == "link-mismatch"]
    assert [(f.path, f.hctl) for f in links] == [("/dev/sdb", "0:0:0:1")]
    assert "lun-7 names another LU" in links[0].reason


# --- a fleet sharing a store --------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_a_volume_migrated_between_hosts_is_checked_on_the_host_it_left(fleet: Fleet) -> None:
    fleet.host("h1")
    fleet.host("h2")
    a = fleet.volume(WWN0, "a")
    fleet.attach(a, "h1", 0)
    fleet.attach(a, "h2", 0)  # live migration: attached on both for a while
    fleet.detach(a, "h1")  # ... then detached from the source, which kept its paths
    report = service.verify_detach(fleet.store, a.id)
    assert report.attached_on == ("h2",) and report.hosts == ("h1",)
    assert {f.host_name for f in report.findings} == {"h1"}
    assert len(report.findings) == 3
    same_as_full_read(fleet, a.id)
    assert service.verify_detach(fleet.store, a.id, host="h2").clean
    assert service.verify_attach(fleet.store, a.id, "h2").clean


# --- bad input ----------------------------------------------------------------------------


def test_bad_input_is_a_typed_error(fleet: Fleet) -> None:
    fleet.host("h1")
    with pytest.raises(exceptions.UnknownProtocol) as protocol:
        PathConnector(fleet.store, "nvme", "h1")
    assert "known: iscsi, fc, local" in str(protocol.value)
    connector = PathConnector(fleet.store, "iscsi", "h1")
    with pytest.raises(exceptions.MissingConnectionProperty) as missing:
        connector.get_volume_paths({"target_portal": "192.0.2.10"})
    assert "target_iqn" in str(missing.value)
    with pytest.raises(exceptions.NotFound):
        service.verify_detach(fleet.store, "no-such-volume")
    with pytest.raises(exceptions.HostNotDiscovered):
        service.find_orphans(fleet.store, host="nowhere")
    with pytest.raises(exceptions.HostNotDiscovered):
        PathConnector(fleet.store, "iscsi", "nowhere").get_all_available_volumes()


# --- replayed as events -------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"], indirect=True)
def test_a_detach_replayed_as_uevents_leaves_what_the_kernel_left(fleet: Fleet) -> None:
    """The live model applies the detach's uevents: one path's removal was seen, the
    other path (and the map) stayed, as after a detach that failed half-way."""
    from tracker.host.events import InMemoryEventSource
    from tracker.reconcile.incremental import LiveModel
    from tracker.testing.live import to_device_events

    bed = fleet.host("h1")
    a = fleet.volume(WWN0, "a")
    fleet.attach(a, "h1", 0)
    events = InMemoryEventSource()
    model = LiveModel(fleet.store, "h1", SysfsTreeSource(bed.root), events, window=0.01)
    model.start()
    try:
        fleet.detach(a, "h1")
        events.push(*to_device_events(bed.unplug_path(Hctl(0, 0, 0, 0))))
        while model.step(0.2) is not None:
            pass
        report = service.verify_detach(fleet.store, a.id)
        assert kinds(report) == [
            ("leftover-device", "/dev/sdc"),
            ("leftover-map", "/dev/mapper/mpatha"),
        ]
        events.push(*to_device_events(bed.unplug_path(Hctl(1, 0, 0, 0))))
        events.push(*to_device_events(bed.unplug_multipath(0)))
        while model.step(0.2) is not None:
            pass
        assert service.verify_detach(fleet.store, a.id).clean
    finally:
        events.stop()
