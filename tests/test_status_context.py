"""The status tree shows where each volume is on the hosts (issue 6, operator context).

The observed rows come from the real path: a testbed sysfs tree, scanned,
discovered and reconciled into the store, on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker.db.store import Store
from tracker.discovery.discover import discover
from tracker.discovery.model import HostState, MultipathMap
from tracker.host.sources import SysfsTreeSource
from tracker.reconcile import reconcile
from tracker.report import (
    HostPresence,
    MultipathStatus,
    PathStatus,
    StatusReport,
    VolumeStatus,
    collect,
    status,
)
from tracker.resources import Backend, Volume
from tracker.testing import topologies
from tracker.testing.queries import count_queries
from tracker.testing.testbed import Hctl, Testbed


@pytest.fixture
def testbeds(tmp_path: Path) -> Iterator[list[Testbed]]:
    made: list[Testbed] = []
    yield made
    for bed in made:
        shutil.rmtree(bed.root, ignore_errors=True)


def _bed(testbeds: list[Testbed], tmp_path: Path) -> Testbed:
    bed = Testbed.create(tmp_path, prefix=f"status-{len(testbeds)}-")
    testbeds.append(bed)
    return bed


def scan(testbed: Testbed, host_name: str) -> HostState:
    return discover(SysfsTreeSource(testbed.root).scan(), host_name)


def expected_presence(state: HostState, mpath: MultipathMap) -> HostPresence:
    """What the report must say about the unit of ``mpath`` on ``state``'s host."""
    paths = tuple(
        PathStatus(str(d.hctl), f"/dev/{d.block_name}", d.state, "fc")
        for d in state.devices_for_wwid(mpath.wwid)
    )
    device = f"/dev/mapper/{mpath.name}"
    return HostPresence(state.host_name, MultipathStatus(mpath.name, device, mpath.wwid), paths)


class TwoHosts:
    """compute-1 sees two LUNs on four paths each; compute-2 sees the first on a
    failed topology (the paths through one HBA are offline)."""

    def __init__(self, store: Store, testbeds: list[Testbed], tmp_path: Path) -> None:
        first_bed, second_bed = _bed(testbeds, tmp_path), _bed(testbeds, tmp_path)
        topologies.fc_multipath(first_bed, luns=2)
        topologies.failed_path(second_bed)
        self.compute1 = scan(first_bed, "compute-1")
        self.compute2 = scan(second_bed, "compute-2")
        self.map_a, self.map_b = self.compute1.multipath_maps
        [self.map_a2] = self.compute2.multipath_maps
        assert self.map_a2.wwid == self.map_a.wwid  # the same LUN on both hosts
        unit_a = self.compute1.devices_for_wwid(self.map_a.wwid)[0].identity
        unit_b = self.compute1.devices_for_wwid(self.map_b.wwid)[0].identity
        self.lvm = Backend("lvm", store=store, driver="LVM")
        self.other = Backend("other", store=store, driver="NFS")
        self.by_wwn = self.lvm.create_volume(1, "by-wwn", status="available", wwn=unit_a.wwn)
        self.nowhere = self.lvm.create_volume(2, "nowhere", status="available", serial="NOPE")
        self.by_serial = self.other.create_volume(
            3, "by-serial", status="available", serial=unit_b.serial
        )
        for state in (self.compute1, self.compute2):
            assert reconcile(store, state).ambiguous == ()


@pytest.fixture
def hosts(store: Store, testbeds: list[Testbed], tmp_path: Path) -> TwoHosts:
    return TwoHosts(store, testbeds, tmp_path)


def _volume(report_: StatusReport, volume: Volume) -> VolumeStatus:
    for backend in report_.backends:
        for shown in backend.volumes:
            if shown.id == volume.id:
                return shown
    raise AssertionError(f"volume {volume.id} not in the report")


def test_each_volume_says_where_it_is_present(store: Store, hosts: TwoHosts) -> None:
    report = collect(store)
    by_wwn = _volume(report, hosts.by_wwn)
    assert by_wwn.hosts == (
        expected_presence(hosts.compute1, hosts.map_a),
        expected_presence(hosts.compute2, hosts.map_a2),
    )
    # the failed HBA's paths are shown with their SCSI state
    states = {p.state for p in by_wwn.hosts[1].paths}
    assert {"running", "offline", "transport-offline"} <= states
    assert _volume(report, hosts.by_serial).hosts == (
        expected_presence(hosts.compute1, hosts.map_b),
    )
    assert _volume(report, hosts.nowhere).hosts == ()
    # the identity an operator matches against the array
    assert (by_wwn.wwn, by_wwn.serial) == (hosts.by_wwn.wwn, None)


def test_text_has_one_line_per_host_and_volume(store: Store, hosts: TwoHosts) -> None:
    text = str(hosts.lvm)  # print(backend)
    for state, mpath in ((hosts.compute1, hosts.map_a), (hosts.compute2, hosts.map_a2)):
        via = ", ".join(f"{d.block_name} {d.state}" for d in state.devices_for_wwid(mpath.wwid))
        line = f"on {state.host_name}: {mpath.name} (/dev/mapper/{mpath.name}) via {via}"
        assert sum(1 for row in text.splitlines() if row.endswith(line)) == 1, (line, text)
    assert f"wwn={hosts.by_wwn.wwn}" in text
    assert f"serial={hosts.nowhere.serial}" in text
    # another backend's volume (on the map named after the second LUN) is not in print(lvm)
    assert f"/dev/mapper/{hosts.map_b.name}" not in text
    lines = text.splitlines()
    nowhere = next(i for i, row in enumerate(lines) if hosts.nowhere.id in row)
    assert all(" on compute-" not in row for row in lines[nowhere:])


def test_json_carries_the_presence(store: Store, hosts: TwoHosts) -> None:
    document = json.loads(status(store).to_json())
    volumes = {v["id"]: v for b in document["backends"] for v in b["volumes"]}
    shown = volumes[hosts.by_wwn.id]
    assert [h["host"] for h in shown["hosts"]] == ["compute-1", "compute-2"]
    first = shown["hosts"][0]
    assert first["multipath"] == {
        "name": hosts.map_a.name,
        "device": f"/dev/mapper/{hosts.map_a.name}",
        "wwid": hosts.map_a.wwid,
    }
    assert first["paths"] == [
        {"hctl": str(d.hctl), "device": f"/dev/{d.block_name}", "state": d.state, "transport": "fc"}
        for d in hosts.compute1.devices_for_wwid(hosts.map_a.wwid)
    ]
    assert volumes[hosts.nowhere.id]["hosts"] == []


def test_a_backend_filter_keeps_other_backends_presence_out(store: Store, hosts: TwoHosts) -> None:
    only = collect(store, ["other"])
    [backend] = only.backends
    [volume] = backend.volumes
    assert volume.id == hosts.by_serial.id
    assert [h.host for h in volume.hosts] == ["compute-1"]


def test_presence_follows_the_host(store: Store, hosts: TwoHosts, testbeds: list[Testbed]) -> None:
    """A path that vanished from compute-1 is gone from the next status."""
    gone = hosts.compute1.devices_for_wwid(hosts.map_a.wwid)[0]
    h = gone.hctl
    testbeds[0].remove_lun(Hctl(h.host, h.channel, h.target, h.lun))
    after = scan(testbeds[0], "compute-1")
    reconcile(store, after)
    [first, _second] = _volume(collect(store), hosts.by_wwn).hosts
    assert str(gone.hctl) not in {p.hctl for p in first.paths}
    assert len(first.paths) == len(hosts.compute1.devices_for_wwid(hosts.map_a.wwid)) - 1


def test_status_is_six_queries_whatever_the_hosts_and_volumes(
    store: Store, testbeds: list[Testbed], tmp_path: Path
) -> None:
    backend = Backend("lvm", store=store)

    def track_host(host_name: str, luns: int) -> None:
        bed = _bed(testbeds, tmp_path)
        topologies.fc_multipath(bed, luns=luns)
        state = scan(bed, host_name)
        for mpath in state.multipath_maps:
            unit = state.devices_for_wwid(mpath.wwid)[0].identity
            if not any(v.wwn == unit.wwn for v in backend.volumes):
                backend.create_volume(1, mpath.name, status="available", wwn=unit.wwn)
        reconcile(store, state)

    track_host("compute-1", 1)
    with count_queries(store.engine) as log:
        small = collect(store)
    assert log.count == 6
    for number in range(2, 5):
        track_host(f"compute-{number}", 6)
    with count_queries(store.engine) as log:
        large = collect(store)
    assert log.count == 6
    [small_volume] = small.backends[0].volumes
    assert len(small_volume.hosts) == 1
    presences = [h for v in large.backends[0].volumes for h in v.hosts]
    assert len(large.backends[0].volumes) == 6
    assert len(presences) == 6 * 3 + 1  # every LUN on compute-2..4, the first on compute-1
    assert sum(len(h.paths) for h in presences) == 4 * len(presences)


def test_presence_lines_of_unusual_hosts() -> None:
    """No map, no block device, unknown state, a map with no path left."""
    bare = HostPresence(
        "compute-9",
        None,
        (
            PathStatus("2:0:0:1", "/dev/sdc", "running", "iscsi"),
            PathStatus("10:0:0:1", None, None, None),
        ),
    )
    assert bare.describe() == ("on compute-9: /dev/sdc running, 10:0:0:1 (no block device) state ?")
    orphan = HostPresence("compute-9", MultipathStatus(None, "/dev/dm-3", "3600a"), ())
    assert orphan.describe() == "on compute-9: dm-3 (/dev/dm-3) with no path present"
