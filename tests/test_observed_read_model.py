"""The typed read model of observed host state (tracker.db.observed), on every database.

Each read returns frozen, typed records in a constant number of queries, whatever
the number of rows, and agrees with what the reconcile wrote.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Iterator

import pytest

from tracker import exceptions
from tracker.db import observed
from tracker.db.store import Store
from tracker.discovery.discover import discover
from tracker.discovery.model import FcPathIds, HostState, IscsiPathIds
from tracker.reconcile import reconcile
from tracker.resources import Backend
from tracker.testing import topologies
from tracker.testing.queries import count_queries
from tracker.testing.testbed import Testbed


def _state(build: str, luns: int, host_name: str = "compute-1") -> Iterator[HostState]:
    bed = Testbed.create(prefix="read-model-")
    try:
        from tracker.host.sources import SysfsTreeSource

        if build == "fc":
            topologies.fc_multipath(bed, luns=luns)
        else:
            topologies.iscsi_multipath(bed, luns=luns)
        yield discover(SysfsTreeSource(bed.root).scan(), host_name)
    finally:
        shutil.rmtree(bed.root, ignore_errors=True)


@pytest.fixture
def fc() -> Iterator[HostState]:
    yield from _state("fc", 3)


@pytest.fixture
def iscsi() -> Iterator[HostState]:
    yield from _state("iscsi", 2)


def test_host_view_holds_every_object_typed_and_in_key_order(store: Store, fc: HostState) -> None:
    reconcile(store, fc)
    view = observed.host_view(store, "compute-1")
    assert view.host.host_name == "compute-1" and view.host.generation == 1
    assert [d.hctl for d in view.scsi_devices] == sorted(
        (str(d.hctl) for d in fc.scsi_devices), key=lambda h: h
    )
    assert {h.number for h in view.scsi_hosts} == {h.number for h in fc.scsi_hosts}
    assert {(p.scsi_host, p.wwpn) for p in view.fc_remote_ports} == {
        (p.host, p.wwpn) for p in fc.fc_remote_ports
    }
    by_wwid = {m.wwid: m for m in view.multipath_maps}
    for mpath in fc.multipath_maps:
        record = by_wwid[mpath.wwid]
        assert [(p.block_name, p.hctl, p.state) for p in record.paths] == [
            (p.block_name, str(p.hctl), p.state.value) for p in mpath.paths
        ]
        assert record.path == f"/dev/mapper/{mpath.name}"
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.scsi_devices[0].state = "offline"  # type: ignore[misc]


def test_host_view_of_an_unknown_host_is_not_found(store: Store) -> None:
    with pytest.raises(exceptions.NotFound):
        observed.host_view(store, "nowhere")


def test_reads_by_volume_wwid_serial_and_fc_mapping(store: Store, fc: HostState) -> None:
    device = fc.scsi_devices[0]
    assert isinstance(device.transport_ids, FcPathIds)
    volume = Backend("netapp", store=store).create_volume(
        1, "v", status="available", wwn=device.identity.wwn
    )
    reconcile(store, fc)
    unit = fc.devices_for_wwid(device.identity.wwid or "")
    expected = sorted(str(d.hctl) for d in unit)

    by_volume = observed.by_volume(store, volume.id)
    assert sorted(d.hctl for d in by_volume.devices) == expected
    assert {d.volume_id for d in by_volume.devices} == {volume.id}
    assert [m.wwid for m in by_volume.maps] == [device.identity.wwid]

    assert sorted(d.hctl for d in observed.by_wwid(store, unit[0].identity.wwid or "").devices) == (
        expected
    )
    serial = observed.by_serial(store, device.identity.serial or "")
    assert sorted(d.hctl for d in serial.devices) == expected
    assert [m.wwid for m in serial.maps] == [device.identity.wwid]

    initiator = fc.scsi_host(device.hctl.host)
    assert initiator is not None and initiator.wwpn is not None
    mapping = observed.by_fc_mapping(
        store, "0x" + initiator.wwpn.upper(), device.transport_ids.wwpn or "", device.hctl.lun
    )
    assert [d.hctl for d in mapping.devices] == [str(device.hctl)]
    assert [m.wwid for m in mapping.maps] == [device.identity.wwid]
    every_lun = observed.by_fc_mapping(store, initiator.wwpn, device.transport_ids.wwpn or "")
    assert len(every_lun.devices) == 3 and len(every_lun.maps) == 3
    assert observed.by_wwid(store, device.identity.wwid or "", host_name="other").devices == ()


def test_reads_by_iscsi_target(store: Store, iscsi: HostState) -> None:
    reconcile(store, iscsi)
    device = iscsi.scsi_devices[0]
    ids = device.transport_ids
    assert isinstance(ids, IscsiPathIds) and ids.target_iqn is not None
    everything = observed.by_iscsi_target(store, ids.target_iqn)
    assert len(everything.devices) == len(iscsi.scsi_devices)
    one = observed.by_iscsi_target(store, ids.target_iqn, str(ids.portal), device.hctl.lun)
    assert [d.hctl for d in one.devices] == [str(device.hctl)]
    assert one.devices[0].target_text == f"{ids.target_iqn} @ {ids.portal}"
    assert [s.target_iqn for s in observed.host_view(store, "compute-1").iscsi_sessions] == [
        ids.target_iqn
    ] * len(iscsi.iscsi_sessions)


def test_bad_lookups_are_refused(store: Store) -> None:
    with pytest.raises(exceptions.InvalidInput):
        observed.by_fc_mapping(store, "not-a-wwpn", "500a098000000000")
    with pytest.raises(exceptions.InvalidInput):
        observed.by_fc_mapping(store, "2100001b32000000", "500a098000000000", -1)
    with pytest.raises(exceptions.InvalidInput):
        observed.by_wwid(store, "")


@pytest.mark.parametrize("luns", [2, 12])
def test_each_read_takes_a_constant_number_of_queries(store: Store, luns: int) -> None:
    state = next(_state("fc", luns))
    device = state.scsi_devices[0]
    volume = Backend("netapp", store=store).create_volume(
        1, "v", status="available", wwn=device.identity.wwn
    )
    reconcile(store, state)
    ids = device.transport_ids
    initiator = state.scsi_host(device.hctl.host)
    assert isinstance(ids, FcPathIds) and initiator is not None and initiator.wwpn is not None
    wwid, initiator_wwpn, target_wwpn = device.identity.wwid or "", initiator.wwpn, ids.wwpn or ""
    reads: dict[str, tuple[Callable[[], object], int]] = {
        "host": (lambda: observed.host_view(store, "compute-1"), 7),
        "volume": (lambda: observed.by_volume(store, volume.id), 2),
        "wwid": (lambda: observed.by_wwid(store, wwid), 2),
        "fc": (lambda: observed.by_fc_mapping(store, initiator_wwpn, target_wwpn), 2),
        "journal": (lambda: observed.journal(store, "compute-1", 1000), 1),
    }
    for name, (read, queries) in reads.items():
        with count_queries(store.engine) as log:
            read()
        assert log.count == queries, name


def test_volume_paths_read_through_the_model(store: Store, fc: HostState) -> None:
    device = fc.scsi_devices[0]
    volume = Backend("netapp", store=store).create_volume(
        1, "v", status="available", serial=device.identity.serial
    )
    reconcile(store, fc)
    view = observed.by_volume(store, volume.id)
    assert [(d.host_name, d.hctl, d.path, d.target) for d in volume.host_devices] == [
        (d.host_name, d.hctl, d.path, d.target_text) for d in view.devices
    ]
    mpath = volume.multipath_device
    assert mpath is not None and mpath.path == view.maps[0].path
    assert mpath.paths == tuple((p.block_name, p.state) for p in view.maps[0].paths)


def test_udev_links_and_connection_state_are_recorded_and_read_back(
    store: Store, fc: HostState, iscsi: HostState
) -> None:
    reconcile(store, fc)
    view = observed.host_view(store, "compute-1")
    assert any(d.links for d in fc.scsi_devices)
    assert {d.hctl: d.links for d in view.scsi_devices} == {
        str(d.hctl): d.links for d in fc.scsi_devices
    }

    session = iscsi.iscsi_sessions[0]
    down = dataclasses.replace(
        session, connection_state="down", persistent_address="192.0.2.99", persistent_port=3261
    )
    reconcile(store, dataclasses.replace(iscsi, host_name="iscsi-1"))
    result = reconcile(
        store,
        dataclasses.replace(
            iscsi, host_name="iscsi-1", iscsi_sessions=(down, *iscsi.iscsi_sessions[1:])
        ),
    )
    [change] = result.changes
    assert change.kind == "iscsi_session"
    assert set(change.fields) == {"connection_state", "persistent_address", "persistent_port"}
    record = next(
        s
        for s in observed.host_view(store, "iscsi-1").iscsi_sessions
        if s.session_id == session.session_id
    )
    assert (record.connection_state, record.persistent_address, record.persistent_port) == (
        "down",
        "192.0.2.99",
        3261,
    )
