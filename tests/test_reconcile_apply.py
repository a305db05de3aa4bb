"""Row-level application of a subset of keys (what an incremental reconcile does).

Applying only the keys that differ between two states must leave exactly the
rows (and digests, and volume links) a full reconcile of the final state
leaves, and report the same changes.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tracker.db import models
from tracker.db.store import Store
from tracker.discovery.discover import discover
from tracker.discovery.model import HostState
from tracker.reconcile import Applied, apply_rows, desired_rows, observed, reconcile
from tracker.reconcile.full import lock_host
from tracker.resources import Backend
from tracker.testing import topologies
from tracker.testing.testbed import Testbed

_BOOKKEEPING = {"host_name", "seen_at", "changed_at"}


@pytest.fixture
def final() -> Iterator[HostState]:
    """Two HBAs x two target ports x three LUNs, with maps."""
    bed = Testbed.create(prefix="apply-rows-")
    try:
        from tracker.host.sources import SysfsTreeSource

        topologies.fc_multipath(bed, luns=3)
        yield discover(SysfsTreeSource(bed.root).scan(), "final")
    finally:
        shutil.rmtree(bed.root, ignore_errors=True)


def _without_lun(state: HostState, wwid: str | None) -> HostState:
    """The state before the LU with ``wwid`` was mapped (and with one path offline)."""
    devices = tuple(d for d in state.scsi_devices if d.wwid != wwid)
    first = dataclasses.replace(devices[0], state="offline")
    return dataclasses.replace(
        state,
        scsi_devices=(first, *devices[1:]),
        multipath_maps=tuple(m for m in state.multipath_maps if m.wwid != wwid),
    )


def _named(state: HostState, host_name: str) -> HostState:
    return dataclasses.replace(state, host_name=host_name)


def _subset(before: HostState, after: HostState) -> dict[str, dict[tuple[Any, ...], Any]]:
    """Only the keys whose rows differ, ``None`` for those that vanished."""
    old, new = desired_rows(before), desired_rows(after)
    return {
        kind: {
            key: new[kind].get(key)
            for key in old[kind].keys() | new[kind].keys()
            if old[kind].get(key) != new[kind].get(key)
        }
        for kind in new
    }


def _apply(store: Store, host_name: str, desired: Any) -> Applied:
    now = models.utcnow()

    def work(session: Any) -> Applied:
        lock_host(session, store, host_name, lock=True)
        return apply_rows(session, host_name, desired, now=now)

    return store.run_write(work, "apply rows")


def _rows(store: Store, host_name: str) -> dict[str, list[dict[str, Any]]]:
    return {
        kind: [{k: v for k, v in row.items() if k not in _BOOKKEEPING} for row in rows]
        for kind, rows in observed(store, host_name).items()
    }


def _changes(changes: Any) -> list[tuple[Any, ...]]:
    return sorted((c.event, c.kind, c.key, c.fields, c.before, c.after) for c in changes)


@pytest.mark.parametrize("direction", ["lun_mapped", "lun_unmapped"])
@pytest.mark.parametrize("volume", ["none", "becomes_ambiguous", "becomes_ambiguous_upper_bare"])
def test_a_subset_applied_equals_a_full_reconcile_of_the_final_state(
    store: Store, final: HostState, direction: str, volume: str
) -> None:
    third = final.scsi_devices[-1].identity
    before, after = _without_lun(final, third.wwid), final
    if direction == "lun_unmapped":
        before, after = after, before
    if volume != "none":
        # Linked to the first LU by WWN; the third LU's serial also matches it,
        # so while the third LU is mapped the volume is ambiguous and unlinked.
        wwn = final.scsi_devices[0].identity.wwn or ""
        if volume == "becomes_ambiguous_upper_bare":  # another spelling of the same WWN
            wwn = wwn.split(".", 1)[-1].upper()
        Backend("netapp", store=store).create_volume(
            1, "v", status="available", wwn=wwn, serial=third.serial
        )

    reconcile(store, _named(after, "reference"))
    reconcile(store, _named(before, "full"))
    expected = reconcile(store, _named(after, "full"))
    reconcile(store, _named(before, "incremental"))
    applied = _apply(store, "incremental", _subset(before, after))

    assert _rows(store, "incremental") == _rows(store, "reference") == _rows(store, "full")
    assert _changes(applied.changes) == _changes(expected.changes)
    assert applied.ambiguous == expected.ambiguous
    linked = [r["volume_id"] for r in _rows(store, "incremental")["scsi_device"]]
    if volume != "none" and direction == "lun_unmapped":
        assert linked.count(None) == len(linked) - 4  # the first LU's four paths
    else:
        assert set(linked) == {None}


def test_applying_nothing_writes_nothing(store: Store, final: HostState) -> None:
    reconcile(store, final)
    before = observed(store, "final")
    applied = _apply(store, "final", {})
    assert applied.changes == () and applied.written == 0
    assert observed(store, "final") == before


def test_keys_outside_the_subset_are_left_alone(store: Store, final: HostState) -> None:
    """A subset naming one LUN's path does not sweep the host's other rows."""
    reconcile(store, final)
    hctl = str(final.scsi_devices[0].hctl)
    applied = _apply(store, "final", {"scsi_device": {(hctl,): None}})
    assert [(c.event, c.key) for c in applied.changes] == [("vanished", hctl)]
    rows = observed(store, "final")
    assert hctl not in {r["hctl"] for r in rows["scsi_device"]}
    assert len(rows["scsi_device"]) == len(final.scsi_devices) - 1
    assert len(rows["multipath_map"]) == len(final.multipath_maps)


def test_upgrading_past_0005_keeps_the_rows_and_journals_only_real_changes(
    fresh_database: Any, final: HostState
) -> None:
    """Migration 0005 clears the digests; the next reconcile refreshes them silently:
    no row whose columns are equal gets a journal entry."""
    from tracker.db import migrate
    from tracker.reconcile import journal

    store = Store(fresh_database.url, check_schema=False)
    try:
        migrate.upgrade(store)
        first = reconcile(store, final)
        before = _rows(store, "final")
        migrate.downgrade(store, "0004_hctl_width", allow_data_loss=True)
        migrate.upgrade(store)
        after_upgrade = _rows(store, "final")
        assert {r["digest"] for rows in after_upgrade.values() for r in rows} == {""}
        assert {tuple(r["links"]) for r in after_upgrade["scsi_device"]} == {()}  # dropped

        # Only what 0005 made recordable is journaled: the links, found again.
        again = reconcile(store, final)
        assert {(c.event, c.kind, c.fields) for c in again.changes} == {
            ("changed", "scsi_device", ("links",))
        }
        assert len(again.changes) == sum(1 for d in final.scsi_devices if d.links)
        assert _rows(store, "final") == before
        assert len(journal(store, "final", limit=1000)) == len(first.changes) + len(again.changes)
        assert reconcile(store, final).rows_written == 0
    finally:
        store.dispose()
