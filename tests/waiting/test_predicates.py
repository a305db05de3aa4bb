"""The predicates: arguments, normal forms, and what each one says of a reconciled host.

Each host is a testbed reconciled into the store in full (no waiting here);
the predicates are evaluated through :meth:`StorageModel.evaluate`, on every
database.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker import predicates
from tracker.db.store import Store
from tracker.discovery import discover
from tracker.exceptions import InvalidInput, NotFound
from tracker.host.events import InMemoryEventSource
from tracker.host.sources import SysfsTreeSource
from tracker.predicates import (
    AnyOf,
    DiskExists,
    DiskNotExists,
    FiberChannelMappingExists,
    FiberChannelMappingNotExists,
    IscsiSessionExists,
    MultipathPathsAtLeast,
    Not,
    PredicateList,
    VolumeAttached,
    VolumeDetached,
)
from tracker.reconcile import reconcile
from tracker.resources import Backend
from tracker.testing.specs import Hctl
from tracker.testing.testbed import Testbed
from tracker.testing.topologies import (
    _Allocator,
    _lun,
    failed_path,
    fc_multipath,
    high_lun_numbers,
    iscsi_multipath,
    offline_devices,
    synthetic_identity,
)
from tracker.waiting import StorageModel
from tracker.waiting.predicates import kernel_luns

HOST = "h"

# fc_multipath: HBAs 0x2100001b32000000/01, array ports 0x500a0980000000{00,01,10,11}
INITIATOR0 = "21:00:00:1B:32:00:00:00"
TARGET01 = "0x500A098000000001"


def serial(index: int) -> str:
    """The unit serial of the ``index``-th synthetic LUN."""
    return f"80AB{index:08X}"


def model_of(store: Store, bed: Testbed) -> StorageModel:
    reconcile(store, discover(SysfsTreeSource(bed.root).scan(), HOST))
    return StorageModel(
        store, host_name=HOST, source=SysfsTreeSource(bed.root), events=InMemoryEventSource()
    )


@pytest.fixture
def bed(bed_dir: Path) -> Testbed:
    return Testbed(bed_dir)


# --- arguments and normal forms (no store) ---------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "0x2100001B32000000",
        "2100001b32000000",
        "21:00:00:1b:32:00:00:00",
        "21-00-00-1B-32-00-00-00",
        " 0X21:00:00:1B:32:00:00:00 ",
    ],
)
def test_one_mapping_in_any_wwn_spelling_is_one_predicate(spelling: str) -> None:
    reference = FiberChannelMappingExists("0x2100001b32000000", "0x500a098000000001", 3)
    other = FiberChannelMappingExists(spelling, "50:0a:09:80:00:00:00:01", 3)
    assert other == reference
    assert hash(other) == hash(reference)
    assert (
        repr(other)
        == repr(reference)
        == ("FiberChannelMappingExists('0x2100001b32000000', '0x500a098000000001', 3)")
    )
    assert eval(repr(other), vars(predicates)) == reference


@pytest.mark.parametrize(
    ("initiator", "target"),
    [
        ("01020304060708", "0a0b0c0d0e0f1011"),  # 14 digits (infi's guide)
        ("0a:0b:0c:0d:0e:0f:0g:0h", "0a0b0c0d0e0f1011"),  # not hex (infi's guide)
        ("0x2100001b3200000011", "0a0b0c0d0e0f1011"),  # 18 digits
        ("2100001b32000000", ""),
        ("2100001b32000000", None),
    ],
)
def test_an_invalid_wwn_is_refused_when_the_predicate_is_built(
    initiator: str, target: object
) -> None:
    for factory in (FiberChannelMappingExists, FiberChannelMappingNotExists):
        with pytest.raises(InvalidInput) as caught:
            factory(initiator, target, 0)  # type: ignore[arg-type]
        assert caught.value.field in ("initiator_wwn", "target_wwn")
        assert "16 hex digits" in str(caught.value)
        assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("lun", [-1, 2**64, True, "3", 1.0])
def test_a_bad_lun_number_is_refused(lun: object) -> None:
    with pytest.raises(InvalidInput):
        FiberChannelMappingExists("2100001b32000000", "500a098000000001", lun)  # type: ignore[arg-type]


def test_lun_numbers_match_peripheral_and_flat_space_addressing() -> None:
    assert kernel_luns(0) == {0, 0x4000}
    assert kernel_luns(255) == {255, 0x40FF}
    assert kernel_luns(256) == {256, 0x4100}
    assert kernel_luns(300) == {300, 16684}
    assert kernel_luns(16383) == {16383, 0x7FFF}
    # 16384 and more cannot be flat-space LUNs: they are kernel numbers already
    assert kernel_luns(16384) == {16384}
    assert kernel_luns(16684) == {16684}
    assert kernel_luns(2**64 - 1) == {2**64 - 1}


def test_serials_are_compared_without_their_padding() -> None:
    assert DiskExists("  ABC123 ") == DiskExists("ABC123")
    assert repr(DiskNotExists("ABC123")) == "DiskNotExists('ABC123')"
    assert DiskExists("ABC123") != DiskNotExists("ABC123")
    for bad in ("", "   ", None, 12, "a\x00b"):
        with pytest.raises(InvalidInput):
            DiskExists(bad)  # type: ignore[arg-type]


def test_iscsi_names_and_portals_are_normalised() -> None:
    a = IscsiSessionExists("IQN.2010-10.org.OpenStack:vol", portal="192.0.2.10")
    b = IscsiSessionExists("iqn.2010-10.org.openstack:vol", portal="192.0.2.10:3260")
    assert a == b
    assert (
        repr(a) == "IscsiSessionExists('iqn.2010-10.org.openstack:vol', portal='192.0.2.10:3260')"
    )
    v6 = IscsiSessionExists("iqn.x", portal="2001:DB8::1")
    assert v6.portal == "[2001:db8::1]:3260"
    for bad in ("192.0.2.10:0", "[::1", "a b"):
        with pytest.raises(InvalidInput):
            IscsiSessionExists("iqn.x", portal=bad)
    with pytest.raises(InvalidInput):
        IscsiSessionExists("iqn." + "x" * 300)
    with pytest.raises(InvalidInput):
        IscsiSessionExists("iqn.with blank")


def test_operators_build_flat_lists_with_readable_reprs() -> None:
    a, b, c = DiskExists("A"), DiskExists("B"), DiskNotExists("C")
    both = a & b & c
    assert isinstance(both, PredicateList)
    assert both.predicates == (a, b, c)
    assert repr(both) == "PredicateList([DiskExists('A'), DiskExists('B'), DiskNotExists('C')])"
    either = a | b | c
    assert isinstance(either, AnyOf)
    assert either.predicates == (a, b, c)
    assert repr(~a) == "~DiskExists('A')"
    assert ~~a == a
    assert isinstance(~a, Not)
    assert PredicateList([a, b]) == PredicateList((a, b))
    with pytest.raises(InvalidInput):
        PredicateList(a)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        PredicateList(["not callable"])


def test_multipath_and_volume_predicates_check_their_arguments() -> None:
    assert MultipathPathsAtLeast(" 3600a0 ", 2) == MultipathPathsAtLeast("3600a0", 2)
    for n in (0, -1, True, 2.0):
        with pytest.raises(InvalidInput):
            MultipathPathsAtLeast("3600a0", n)  # type: ignore[arg-type]
    for bad in ("", "x" * 37, None):
        with pytest.raises(InvalidInput):
            VolumeAttached(bad)
    assert VolumeAttached("v1") == VolumeAttached("v1")
    assert repr(VolumeDetached("v1")) == "VolumeDetached('v1')"


# --- evaluated on reconciled hosts ------------------------------------------------


def test_a_multipath_disk_counts_once_and_holds(store: Store, bed: Testbed) -> None:
    fc_multipath(bed, luns=2)
    model = model_of(store, bed)
    verdict = model.evaluate(DiskExists(serial(0)))
    assert verdict.holds
    assert verdict.state == "present: /dev/mapper/mpatha (4 of 4 paths active)"
    # the four SCSI paths and the map are what a re-read would refresh
    assert len(verdict.paths) == 5
    assert not model.evaluate(DiskNotExists(serial(0))).holds
    gone = model.evaluate(DiskNotExists(serial(77)))
    assert gone.holds
    assert gone.state == "gone: no device with serial '80AB0000004D'"
    absent = model.evaluate(DiskExists(serial(77)))
    assert not absent.holds
    assert absent.state == f"no disk with serial '80AB0000004D' on {HOST}"


def test_a_disk_present_but_offline_neither_exists_nor_is_gone(store: Store, bed: Testbed) -> None:
    offline_devices(bed)
    model = model_of(store, bed)
    running, offline, behind_blocked = (serial(500), serial(501), serial(502))
    assert model.evaluate(DiskExists(running)).holds
    verdict = model.evaluate(DiskExists(offline))
    assert not verdict.holds
    assert verdict.state.endswith("(0:0:0:1) present but offline")
    still = model.evaluate(DiskNotExists(offline))
    assert not still.holds
    assert still.state.startswith("still present: ")
    assert not model.evaluate(DiskExists(behind_blocked)).holds
    # ~DiskExists holds for an offline disk: it is not usable
    assert model.evaluate(~DiskExists(offline)).holds


def test_a_multipath_map_without_active_paths_does_not_exist(store: Store, bed: Testbed) -> None:
    failed_path(bed)
    model = model_of(store, bed)
    # one LUN on 4 paths, host 1's two paths failed: 2 of 4 active
    verdict = model.evaluate(MultipathPathsAtLeast(serial(0), 2))
    assert verdict.holds
    assert verdict.state == "mpatha: 2 of 4 paths active"
    more = model.evaluate(MultipathPathsAtLeast(serial(0), 3))
    assert not more.holds
    assert more.state == "mpatha: 2 of 4 paths active (needs 3)"
    assert model.evaluate(DiskExists(serial(0))).holds


def test_paths_at_least_finds_the_map_by_wwid_without_case(store: Store, bed: Testbed) -> None:
    fc_multipath(bed, luns=1)
    model = model_of(store, bed)
    wwid = synthetic_identity(0).id_serial
    assert wwid is not None
    assert model.evaluate(MultipathPathsAtLeast(wwid.upper(), 4)).holds
    none = model.evaluate(MultipathPathsAtLeast("3600a0980000000000000000000000000", 1))
    assert not none.holds
    assert none.state == "no multipath map for '3600a0980000000000000000000000000'"


def test_fc_mapping_holds_for_a_running_lun_behind_the_nexus(store: Store, bed: Testbed) -> None:
    fc_multipath(bed, luns=2)
    model = model_of(store, bed)
    mapped = model.evaluate(FiberChannelMappingExists(INITIATOR0, TARGET01, 1))
    assert mapped.holds
    assert mapped.state == "mapped: /dev/sdd (0:0:1:1)"
    assert not model.evaluate(FiberChannelMappingNotExists(INITIATOR0, TARGET01, 1)).holds
    missing = model.evaluate(FiberChannelMappingExists(INITIATOR0, TARGET01, 7))
    assert not missing.holds
    assert missing.state == (
        "no such FC mapping; remote port 0x500a098000000001 Online (kernel LUNs 0, 1 behind it)"
    )
    assert model.evaluate(FiberChannelMappingNotExists(INITIATOR0, TARGET01, 7)).holds
    # the array port is reached through HBA 0 only
    other_hba = model.evaluate(FiberChannelMappingExists("2100001b32000001", TARGET01, 1))
    assert other_hba.state == (
        "no such FC mapping; port 0x2100001b32000001 (host1 Online) sees no remote port "
        "0x500a098000000001"
    )
    unknown = model.evaluate(FiberChannelMappingExists("2100001b320000ff", TARGET01, 1))
    assert unknown.state == f"no such FC mapping; no FC port 0x2100001b320000ff on {HOST}"


def test_fc_mapping_says_the_remote_port_is_blocked(store: Store, bed: Testbed) -> None:
    offline_devices(bed)
    model = model_of(store, bed)
    verdict = model.evaluate(FiberChannelMappingExists("2100001b32000030", "500a098000000040", 5))
    assert not verdict.holds
    assert (
        verdict.state
        == "no such FC mapping; remote port 0x500a098000000040 Blocked (kernel LUNs 0 behind it)"
    )
    offline = model.evaluate(FiberChannelMappingExists("2100001b32000030", "500a098000000040", 0))
    assert not offline.holds
    assert offline.state.endswith("(1:0:0:0) present but offline")


def test_fc_lun_numbers_follow_the_kernels_flat_space_numbering(store: Store, bed: Testbed) -> None:
    high_lun_numbers(bed)  # kernel LUNs 255, 256, 4095, 16383
    allocator = _Allocator(bed)
    for index, kernel_lun in ((900, 16384 + 300), (901, 16384 + 5)):
        identity = synthetic_identity(index)
        bed.add_lun(_lun(Hctl(0, 0, 0, kernel_lun), identity, allocator.disk(identity)))
    model = model_of(store, bed)
    initiator, target = "2100001b32000020", "500a098000000030"

    def holds(lun: int) -> bool:
        return model.evaluate(FiberChannelMappingExists(initiator, target, lun)).holds

    assert holds(255) and holds(256) and holds(4095) and holds(16383)
    assert holds(300)  # the array's LUN 300, flat-space: the kernel's 16684
    assert holds(16684)  # the kernel's own number, as lsscsi prints it
    assert holds(5)  # LUN 5 reported with flat-space addressing: the kernel's 16389
    assert not holds(301)
    assert not holds(16385)  # a kernel number only matches itself
    assert model.evaluate(FiberChannelMappingNotExists(initiator, target, 301)).holds


def test_iscsi_session_logged_in_with_its_connection_up(store: Store, bed: Testbed) -> None:
    iscsi_multipath(bed, luns=1)
    iqn = "iqn.2010-10.org.openstack:volume-5f1e0c2a"
    model = model_of(store, bed)
    verdict = model.evaluate(IscsiSessionExists(iqn.upper()))
    assert verdict.holds
    assert verdict.state == "logged in: session 1 to 192.0.2.10:3260"
    through = model.evaluate(IscsiSessionExists(iqn, portal="192.0.2.11"))
    assert through.state == "logged in: session 2 to 192.0.2.11:3260"
    other = model.evaluate(IscsiSessionExists(iqn, portal="192.0.2.99"))
    assert not other.holds
    assert other.state == f"no iSCSI session to {iqn} through 192.0.2.99:3260"
    assert not model.evaluate(IscsiSessionExists("iqn.2010-10.org.openstack:other")).holds


def test_a_logged_in_session_whose_connection_is_down_does_not_hold(
    store: Store, bed: Testbed
) -> None:
    iscsi_multipath(bed, luns=1)
    for link in (bed.sys_dir / "class" / "iscsi_connection").iterdir():
        state = link.resolve() / "state"
        state.write_text("down\n")
    model = model_of(store, bed)
    verdict = model.evaluate(IscsiSessionExists("iqn.2010-10.org.openstack:volume-5f1e0c2a"))
    assert not verdict.holds
    assert "logged in but its connection is down" in verdict.state


def test_a_list_holds_when_all_hold_and_says_which_do_not(store: Store, bed: Testbed) -> None:
    fc_multipath(bed, luns=2)
    model = model_of(store, bed)
    assert model.evaluate([DiskExists(serial(0)), DiskExists(serial(1))]).holds
    verdict = model.evaluate(
        (DiskExists(serial(0)), DiskExists(serial(9)), DiskNotExists(serial(1)))
    )
    assert not verdict.holds
    assert verdict.state == (
        "DiskExists('80AB00000009'): no disk with serial '80AB00000009' on h; "
        "DiskNotExists('80AB00000001'): still present: /dev/mapper/mpathb (4 of 4 paths active)"
    )
    assert model.evaluate(DiskExists(serial(9)) | DiskExists(serial(1))).holds
    assert not model.evaluate(AnyOf([DiskExists(serial(8)), DiskExists(serial(9))])).holds


def test_volume_predicates_follow_the_links_of_the_tracked_volume(
    store: Store, bed: Testbed
) -> None:
    fc_multipath(bed, luns=2)
    backend = Backend("lvm", store=store, driver="X")
    wwid = synthetic_identity(1).id_serial
    mapped = backend.create_volume(1, "mapped", wwn=wwid)
    elsewhere = backend.create_volume(1, "elsewhere", serial="NOSUCHSERIAL")
    blank = backend.create_volume(1, "blank")
    model = model_of(store, bed)
    attached = model.evaluate(VolumeAttached(mapped))
    assert attached.holds
    assert attached.state == "volume mapped attached: /dev/mapper/mpathb (4 of 4 paths active)"
    assert not model.evaluate(VolumeDetached(mapped.id)).holds
    verdict = model.evaluate(VolumeAttached(elsewhere.id))
    assert not verdict.holds
    assert verdict.state == f"no device of volume elsewhere on {HOST}"
    assert model.evaluate(VolumeDetached(elsewhere)).holds
    with pytest.raises(InvalidInput):
        VolumeAttached(blank)  # it could never be recognised
    with pytest.raises(InvalidInput):
        model.evaluate(VolumeAttached(blank.id))
    with pytest.raises(NotFound):
        model.evaluate(VolumeAttached("no-such-volume"))


def test_a_callable_is_called_as_infi_calls_its_predicates(store: Store, bed: Testbed) -> None:
    fc_multipath(bed, luns=1)
    model = model_of(store, bed)
    calls: list[int] = []

    def ready() -> bool:
        calls.append(1)
        return len(calls) > 1

    assert not model.evaluate(ready).holds
    assert model.evaluate([ready, DiskExists(serial(0))]).holds
    assert len(calls) == 2


# --- rescan plans ------------------------------------------------------------------


def test_an_fc_mapping_rescans_the_target_behind_the_remote_port(
    store: Store, bed: Testbed
) -> None:
    fc_multipath(bed, luns=1)
    model = model_of(store, bed)
    # the array port 0x...01 is target 1 of channel 0 on host 0
    assert model.rescan_plan(FiberChannelMappingExists(INITIATOR0, TARGET01, 9)) == (
        (0, 0, 1, None),
    )
    # a remote port the initiator does not see: that host port, whole
    assert model.rescan_plan(FiberChannelMappingExists(INITIATOR0, "500a0980000000ff", 9)) == (
        (0, None, None, None),
    )
    # an unknown initiator, or no target named: every FC/iSCSI/SAS host
    every = ((0, None, None, None), (1, None, None, None))
    assert model.rescan_plan(FiberChannelMappingExists("2100001b320000ff", TARGET01, 9)) == every
    assert model.rescan_plan(DiskExists("X")) == every
    assert (
        model.rescan_plan([DiskExists("X"), FiberChannelMappingExists(INITIATOR0, TARGET01, 9)])
        == every
    )
    # a rescan never removes anything
    assert model.rescan_plan(DiskNotExists("X")) == ()
    assert model.rescan_plan(FiberChannelMappingNotExists(INITIATOR0, TARGET01, 9)) == ()
    assert model.rescan_plan(~DiskExists("X")) == ()


def test_rescans_skip_hosts_without_a_storage_transport(store: Store, bed: Testbed) -> None:
    offline_devices(bed)  # host 0: a plain (virtio) SCSI host; host 1: FC
    model = model_of(store, bed)
    assert model.rescan_plan(DiskExists("X")) == ((1, None, None, None),)


def test_an_iscsi_target_rescans_the_hosts_of_its_sessions(store: Store, bed: Testbed) -> None:
    iscsi_multipath(bed, luns=1)
    model = model_of(store, bed)
    iqn = "iqn.2010-10.org.openstack:volume-5f1e0c2a"
    assert model.rescan_plan(IscsiSessionExists(iqn)) == (
        (0, None, None, None),
        (1, None, None, None),
    )
    assert model.rescan_plan(IscsiSessionExists(iqn, portal="192.0.2.11")) == (
        (1, None, None, None),
    )
    # no session yet: only a login makes one, a scan cannot
    assert model.rescan_plan(IscsiSessionExists("iqn.other")) == ()
