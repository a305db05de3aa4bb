"""Reconciling discovered host state into the store (on every database).

Hosts are umockdev-style testbeds read by the sysfs-tree source, so these tests
run the same path a live host takes: sysfs -> records -> HostState -> SQL.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker import exceptions
from tracker.db.store import Store
from tracker.discovery.discover import discover
from tracker.discovery.model import HostState
from tracker.reconcile import journal, observed, observed_hosts, reconcile
from tracker.resources import Backend
from tracker.serialization import dump
from tracker.testing import topologies
from tracker.testing.queries import count_queries
from tracker.testing.testbed import Hctl, Testbed


@pytest.fixture
def testbed() -> Iterator[Testbed]:
    bed = Testbed.create(prefix="reconcile-test-")
    yield bed
    shutil.rmtree(bed.root, ignore_errors=True)


def scan(testbed: Testbed, host_name: str = "compute-1") -> HostState:
    from tracker.host.sources import SysfsTreeSource

    return discover(SysfsTreeSource(testbed.root).scan(), host_name)


def _lun_sys_path(testbed: Testbed, hctl: Hctl) -> str:
    state = scan(testbed)
    device = state.scsi_device(str(hctl))
    assert device is not None
    return device.sys_path


def test_first_reconcile_makes_everything_appear(store: Store, testbed: Testbed) -> None:
    topologies.fc_multipath(testbed)
    state = scan(testbed)
    result = reconcile(store, state)

    appeared = result.of("appeared")
    assert len(appeared) == 2 + 4 + 8 + 2  # HBAs, remote ports, paths, maps
    assert not result.of("changed") and not result.of("vanished")
    rows = observed(store, "compute-1")
    assert [r["hctl"] for r in rows["scsi_device"]] == [str(d.hctl) for d in state.scsi_devices]
    assert {r["wwpn"] for r in rows["scsi_host"]} == {h.wwpn for h in state.scsi_hosts}
    assert {r["wwid"] for r in rows["multipath_map"]} == {m.wwid for m in state.multipath_maps}
    for device in rows["scsi_device"]:
        assert device["transport"] == "fc"
        assert device["initiator_wwpn"] in {h.wwpn for h in state.scsi_hosts}
    events = journal(store, "compute-1", limit=1000)
    assert sorted((e.kind, e.key) for e in events) == sorted((c.kind, c.key) for c in appeared)
    assert observed_hosts(store) == ["compute-1"]


def test_an_unchanged_host_writes_zero_rows(store: Store, testbed: Testbed) -> None:
    topologies.mixed_fc_iscsi(testbed)
    state = scan(testbed)
    reconcile(store, state)
    with count_queries(store.engine) as log:
        again = reconcile(store, scan(testbed))
    assert again.changes == ()
    assert again.rows_written == 0
    assert log.writes == []
    assert log.count <= 9  # host exists, lock, volume identities, 5 digests, warnings


def test_changes_and_disappearances_are_found_and_journaled(store: Store, testbed: Testbed) -> None:
    topology = topologies.fc_multipath(testbed)
    reconcile(store, scan(testbed))
    failing, removed = topology.luns[0].hctl, topology.luns[1].hctl
    testbed.set_attribute(_lun_sys_path(testbed, failing), "state", "offline")
    testbed.remove_lun(removed)

    result = reconcile(store, scan(testbed))
    assert [c.key for c in result.of("vanished")] == [str(removed)]
    changed = {c.key: c for c in result.of("changed")}
    device_change = changed[str(failing)]
    assert (device_change.fields, device_change.before, device_change.after) == (
        ("state",),
        ("running",),
        ("offline",),
    )
    # both maps of the topology lose a path or see one fail
    assert sum(1 for c in changed.values() if c.kind == "multipath_map") >= 1
    rows = {r["hctl"]: r for r in observed(store, "compute-1")["scsi_device"]}
    assert str(removed) not in rows
    assert rows[str(failing)]["state"] == "offline"

    latest = journal(store, "compute-1", limit=len(result.changes))
    assert {(e.event, e.key) for e in latest} == {(c.event, c.key) for c in result.changes}
    entry = next(e for e in latest if e.key == str(failing) and e.kind == "scsi_device")
    assert entry.detail == {"state": {"before": "running", "after": "offline"}}


def test_dry_run_reports_but_writes_nothing(store: Store, testbed: Testbed) -> None:
    topologies.iscsi_multipath(testbed)
    with count_queries(store.engine) as log:
        result = reconcile(store, scan(testbed), dry_run=True)
    assert result.dry_run and result.of("appeared")
    assert log.writes == []
    assert observed_hosts(store) == []


def test_hosts_share_a_store_without_touching_each_other(
    store: Store, testbed: Testbed, tmp_path: Path
) -> None:
    topologies.fc_multipath(testbed)
    other = Testbed.create(prefix="reconcile-other-")
    try:
        topologies.iscsi_multipath(other)
        lvm = Backend("lvm", store=store)
        lvm.create_volume(1, "intent", status="available")
        reconcile(store, scan(testbed, "compute-1"))
        reconcile(store, scan(other, "compute-2"))
        tracked = dump(store)
        before = observed(store, "compute-2")

        # compute-1 loses everything: only its own rows go.
        result = reconcile(store, HostState(host_name="compute-1"))
        assert len(result.of("vanished")) == 16
        assert observed(store, "compute-2") == before
        assert all(not rows for rows in observed(store, "compute-1").values())
        assert dump(store) == tracked  # tracked intent is never swept
        assert observed_hosts(store) == ["compute-1", "compute-2"]
    finally:
        shutil.rmtree(other.root, ignore_errors=True)


def test_devices_are_linked_to_tracked_volumes(store: Store, testbed: Testbed) -> None:
    topology = topologies.fc_multipath(testbed)
    state = scan(testbed)
    first, second = state.multipath_maps
    lun_a = state.devices_for_wwid(first.wwid)[0]
    lun_b = state.devices_for_wwid(second.wwid)[0]
    netapp = Backend("netapp", store=store)
    by_wwn = netapp.create_volume(1, "by-wwn", status="available", wwn=lun_a.identity.wwn)
    by_serial = netapp.create_volume(
        1, "by-serial", status="available", serial=lun_b.identity.serial
    )
    unrelated = netapp.create_volume(1, "unrelated", status="available", serial="NOPE")

    result = reconcile(store, state)
    assert result.ambiguous == ()
    assert {d.hctl for d in by_wwn.host_devices} == {
        str(d.hctl) for d in state.devices_for_wwid(first.wwid)
    }
    assert len(by_wwn.host_devices) == 4
    assert all(d.host_name == "compute-1" and d.transport == "fc" for d in by_wwn.host_devices)
    mpath = by_wwn.multipath_device
    assert mpath is not None
    assert (mpath.wwid, mpath.name, len(mpath.paths)) == (first.wwid, first.name, 4)
    assert by_serial.multipath_device is not None
    assert by_serial.multipath_device.wwid == second.wwid
    assert unrelated.host_devices == () and unrelated.multipath_device is None

    # The link follows the host: a path that vanishes is gone after refresh().
    gone = state.devices_for_wwid(first.wwid)[0].hctl
    testbed.remove_lun(Hctl(gone.host, gone.channel, gone.target, gone.lun))
    reconcile(store, scan(testbed))
    assert len(by_wwn.host_devices) == 4  # cached
    by_wwn.refresh()
    assert len(by_wwn.host_devices) == 3
    assert topology.name == "fc_multipath"


def test_a_volume_matching_unrelated_units_is_reported_not_guessed(
    store: Store, testbed: Testbed
) -> None:
    topologies.fc_multipath(testbed)
    state = scan(testbed)
    first, second = state.multipath_maps
    lun_a = state.devices_for_wwid(first.wwid)[0]
    lun_b = state.devices_for_wwid(second.wwid)[0]
    confused = Backend("netapp", store=store).create_volume(
        1, "confused", wwn=lun_a.identity.wwn, serial=lun_b.identity.serial
    )
    result = reconcile(store, state)
    assert [a.volume_id for a in result.ambiguous] == [confused.id]
    assert set(result.ambiguous[0].wwids) == {first.wwid, second.wwid}
    assert confused.host_devices == ()
    assert confused.multipath_device is None


def test_bad_host_name_is_refused(store: Store) -> None:
    with pytest.raises(exceptions.InvalidInput):
        reconcile(store, HostState(host_name=""))


CHILD = """
import os, sys, time
from tracker.db.store import Store
from tracker.discovery.discover import discover
from tracker.host.sources import SysfsTreeSource
from tracker.reconcile import reconcile
url, root, phase = sys.argv[1:4]
store = Store(url, auto_upgrade="never")
state = discover(SysfsTreeSource(__import__("pathlib").Path(root)).scan(), "compute-1")
def progress(name, done, total):
    if name == phase:
        print("PAUSED", flush=True)
        time.sleep(120)
reconcile(store, state, progress=progress)
"""


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["compare", "write"])
def test_kill_9_mid_reconcile_leaves_the_store_consistent(
    store: Store, testbed: Testbed, phase: str
) -> None:
    topologies.fc_multipath(testbed, luns=40)
    reconcile(store, scan(testbed))  # a previous, complete state
    testbed.remove_lun(Hctl(0, 0, 0, 0))
    testbed.set_attribute(_lun_sys_path(testbed, Hctl(1, 0, 0, 1)), "state", "offline")
    before = observed(store, "compute-1")
    url = store.url.render_as_string(hide_password=False)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(testbed.root), phase],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "PAUSED"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    store.dispose()
    assert observed(store, "compute-1") == before  # all or nothing: nothing
    result = reconcile(store, scan(testbed))  # the next reconcile converges
    assert [c.key for c in result.of("vanished")] == ["0:0:0:0"]
    assert reconcile(store, scan(testbed)).rows_written == 0


def test_the_journal_is_kept_within_its_retention(store: Store, testbed: Testbed) -> None:
    import datetime as dt

    topologies.fc_multipath(testbed)
    first = reconcile(store, scan(testbed))
    assert len(journal(store, "compute-1", limit=1000)) == len(first.changes)
    # Nothing changed: nothing is written, so nothing is pruned either.
    reconcile(store, scan(testbed), journal_retention=dt.timedelta(microseconds=1))
    assert len(journal(store, "compute-1", limit=1000)) == len(first.changes)

    testbed.remove_lun(Hctl(0, 0, 0, 0))
    second = reconcile(store, scan(testbed), journal_retention=dt.timedelta(microseconds=1))
    kept = journal(store, "compute-1", limit=1000)
    assert sorted((e.event, e.key) for e in kept) == sorted(
        (c.event, c.key) for c in second.changes
    )
    assert len({e.at for e in kept}) == 1


@pytest.mark.slow
def test_two_processes_reconciling_a_new_host_at_once(store: Store, testbed: Testbed) -> None:
    from tracker.testing import workers

    topologies.fc_multipath(testbed)
    url = store.url.render_as_string(hide_password=False)
    outcomes = workers.run_concurrently(
        workers.reconcile_tree, [(url, str(testbed.root), "compute-1")] * 2
    )
    changes = sorted(count for count, _ in outcomes)
    assert changes == [0, 16]  # one wrote the host, the other found it done
    assert reconcile(store, scan(testbed)).rows_written == 0


def test_a_lun_remapped_at_the_same_address_moves_the_volume_link(
    store: Store, testbed: Testbed
) -> None:
    """The classic hazard: another LU appears at an address a volume's path had."""
    from tracker.testing.testbed import DiskSpec, LunSpec, sd_devnum, sd_name
    from tracker.testing.topologies import synthetic_identity

    topology = topologies.fc_multipath(testbed)
    state = scan(testbed)
    address = topology.luns[0].hctl
    before = state.scsi_device(str(address))
    assert before is not None
    volume = Backend("netapp", store=store).create_volume(
        1, "was-here", status="available", wwn=before.identity.wwn
    )
    reconcile(store, state)
    assert str(address) in {d.hctl for d in volume.host_devices}

    testbed.remove_lun(address)
    other = synthetic_identity(77)
    major, minor = sd_devnum(60)
    testbed.add_lun(
        LunSpec(
            hctl=address,
            vendor=other.vendor,
            model=other.model,
            rev=other.rev,
            wwid=other.wwid,
            vpd_pg80=other.vpd_pg80,
            vpd_pg83=other.vpd_pg83,
            disk=DiskSpec(name=sd_name(60), major=major, minor=minor),
        )
    )
    result = reconcile(store, scan(testbed))
    change = next(c for c in result.of("changed") if c.key == str(address))
    assert "wwid" in change.fields and "volume_id" in change.fields
    volume.refresh()
    assert str(address) not in {d.hctl for d in volume.host_devices}
    assert len(volume.host_devices) == 3  # the LU's other paths are still there
