"""Applying a host's events equals a full reconcile of its final tree.

Every topology is built from an empty host through live changes
(:class:`~tracker.testing.live.LiveTestbed`); the kernel's events of each change
are fed to a :class:`~tracker.reconcile.LiveModel` through an in-memory source
right after the change. The rows it leaves (every observed table of the host,
digests and volume links included, and the host's warnings) must equal those of
a full scan + reconcile of the final tree into another host of the same store.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.db.store import Store
from tracker.discovery import discover
from tracker.exceptions import TestbedError
from tracker.host.events import InMemoryEventSource
from tracker.host.sources import SysfsTreeSource
from tracker.reconcile import LiveModel, observed_host, reconcile
from tracker.resources import Backend
from tracker.testing.live import LiveTestbed, to_device_events
from tracker.testing.specs import FcRemotePortSpec, Hctl, IscsiSessionSpec
from tracker.testing.topologies import (
    TOPOLOGIES,
    fc_multipath,
    load_vpd_vectors,
    mixed_fc_iscsi,
    synthetic_identity,
)
from tracker.testing.uevents import Uevent

VPD_DIR = Path(__file__).resolve().parent / "data" / "vpd"
_BOOKKEEPING = {"host_name", "seen_at", "changed_at"}


class Driven(LiveTestbed):
    """A live testbed that hands each change's events to a model, then steps it."""

    __test__ = False

    def __init__(self, root: Path) -> None:
        super().__init__(root, deliver=False)
        self.model: LiveModel | None = None
        self.source = InMemoryEventSource()

    def set_attribute(self, sys_path: str, name: str, value: str) -> None:
        """Announce an attribute change as a ``change`` of its device.

        On a real host some such changes (a SCSI device's ``state``, an rport's
        ``port_state``) come with no uevent of their own: the periodic resync is
        the safety net for those (see docs/discovery.rst).
        """
        with self._change() as batch:
            super().set_attribute(sys_path, name, value)
            batch.append(self.sender.event("change", sys_path))

    def _finish(self, batch: Sequence[Uevent]) -> None:
        super()._finish(batch)
        if self.model is not None and batch:
            self.source.push(*to_device_events(batch))
            drain(self.model)


def drain(model: LiveModel) -> None:
    while model.step(0) is not None:
        pass


def state_of(store: Store, host_name: str) -> tuple[tuple[str, ...], dict[str, list[Any]]]:
    """The host's warnings and every observed row, without bookkeeping."""
    host, rows = observed_host(store, host_name)
    return host.warnings, {
        kind: [{k: v for k, v in row.items() if k not in _BOOKKEEPING} for row in kind_rows]
        for kind, kind_rows in rows.items()
    }


def full_state(store: Store, root: Path, host_name: str = "full") -> Any:
    reconcile(store, discover(SysfsTreeSource(root).scan(), host_name))
    return state_of(store, host_name)


@pytest.fixture
def root() -> Iterator[Path]:
    bed = LiveTestbed.create(prefix="incremental-eq-")
    try:
        yield bed.root
    finally:
        shutil.rmtree(bed.root, ignore_errors=True)


def started(store: Store, root: Path, **kwargs: Any) -> Driven:
    bed = Driven(root)
    bed.model = LiveModel(store, "events", SysfsTreeSource(root), bed.source, window=0.0, **kwargs)
    result = bed.model.start()
    assert result.resynced and result.changes == ()
    return bed


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_each_topology_built_as_events_equals_a_full_reconcile(
    store: Store, root: Path, name: str
) -> None:
    bed = started(store, root)
    TOPOLOGIES[name](bed, load_vpd_vectors(VPD_DIR))
    assert bed.events, "the build announced nothing"
    assert state_of(store, "events") == full_state(store, root)


@pytest.mark.parametrize("dialect", ["postgresql", "mariadb"], indirect=True)
def test_equivalence_on_the_server_databases(store: Store, root: Path) -> None:
    bed = started(store, root)
    fc_multipath(bed, luns=3)
    assert state_of(store, "events") == full_state(store, root)


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
def test_a_whole_build_applied_as_one_burst_equals_a_full_reconcile(
    store: Store, root: Path
) -> None:
    """All events at once, read against the final tree (an array mapped at once)."""
    bed = Driven(root)
    source = InMemoryEventSource()
    model = LiveModel(store, "events", SysfsTreeSource(root), source, window=0.0, max_batch=7)
    model.start()
    fc_multipath(bed, luns=3)
    source.push(*to_device_events(bed.events))
    results = []
    while (result := model.step(0)) is not None:
        results.append(result)
    assert len(results) > 1 and not any(r.resynced for r in results)
    assert all(r.events <= 7 for r in results)
    assert state_of(store, "events") == full_state(store, root)


# --- random live changes over a shipped topology ------------------------------------

_ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "plug_lun",
                "unplug_lun",
                "unplug_rport",
                "plug_rport",
                "unplug_session",
                "plug_session",
                "volume",
            ]
        ),
        st.integers(0, 1000),
    ),
    min_size=1,
    max_size=6,
)
_FC_HOSTS = (0, 1)
_ISCSI_HOSTS = (2, 3)  # mixed_fc_iscsi: FC on hosts 0-1, iSCSI on hosts 2-3


def _targets(bed: Driven) -> list[tuple[int, int]]:
    """(host, target id) of every FC port and iSCSI session a LUN can be plugged behind."""
    ports = [
        (h, n) for h in _FC_HOSTS for n in (0, 1, 7) if _exists(bed.fc_remote_port_path, h, 0, n)
    ]
    return ports + [(h, 0) for h in _ISCSI_HOSTS if _exists(bed.iscsi_session_path, h)]


def _random_change(bed: Driven, store: Store, action: str, pick: int) -> None:
    """One live change chosen by ``pick``; a change the testbed refuses is skipped."""
    from tracker.testing.topologies import _Allocator, _lun

    luns = bed.luns_below("/devices")
    targets = _targets(bed)
    try:
        if action == "unplug_lun" and luns:
            bed.unplug_lun(luns[pick % len(luns)])
        elif action == "plug_lun" and targets:
            host, number = targets[pick % len(targets)]
            taken = {h.lun for h in luns if h.host == host and h.target == number}
            lun = next(n for n in range(64) if n not in taken)
            identity = synthetic_identity(900 + pick)
            spec = _lun(Hctl(host, 0, number, lun), identity, _Allocator(bed).disk(identity))
            bed.plug_lun(spec)
        elif action == "unplug_rport":
            ports = [t for t in targets if t[0] in _FC_HOSTS]
            if ports:
                bed.unplug_rport(ports[pick % len(ports)][0], 0, ports[pick % len(ports)][1])
        elif action == "plug_rport" and not _exists(bed.fc_remote_port_path, pick % 2, 0, 7):
            bed.plug_rport(
                FcRemotePortSpec(
                    host=pick % 2,
                    number=7,
                    wwpn=0x500A0980001000F0 + pick,
                    wwnn=0x500A098000100100,
                    port_id=0x0A0000 + pick,
                )
            )
        elif action == "unplug_session":
            bed.unplug_iscsi_session(_ISCSI_HOSTS[pick % 2])
        elif action == "plug_session" and not _exists(
            bed.iscsi_session_path, _ISCSI_HOSTS[pick % 2]
        ):
            host = _ISCSI_HOSTS[pick % 2]
            identity = synthetic_identity(950 + pick)
            bed.plug_iscsi_session(
                IscsiSessionSpec(
                    host=host,
                    session=20 + pick % 50,
                    target_iqn="iqn.2010-10.org.openstack:volume-random",
                    portal_address=f"198.51.100.{pick % 200}",
                    connection_state="up" if pick % 3 else "down",
                ),
                luns=[_lun(Hctl(host, 0, 0, 0), identity, _Allocator(bed).disk(identity))],
            )
        elif action == "volume":
            # A tracked volume whose WWN matches a LUN: links must follow the events too.
            wwids = [r["wwid"] for r in observed_host(store, "events")[1]["scsi_device"]]
            if wwids:
                Backend.backends.clear()
                backend = Backend("b", store=store)
                wwn = wwids[pick % len(wwids)]
                backend.create_volume(1, f"v{pick}", status="available", wwn=wwn)
    except TestbedError:
        return


def _exists(find: Any, *args: int) -> bool:
    try:
        find(*args)
    except TestbedError:
        return False
    return True


@pytest.mark.parametrize("dialect", ["sqlite"], indirect=True)
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(actions=_ACTIONS)
def test_random_live_changes_equal_a_full_reconcile_after_each_step(
    store: Store, actions: list[tuple[str, int]]
) -> None:
    bed_root = LiveTestbed.create(prefix="incremental-prop-").root
    try:
        with store.write() as session:
            from tracker.db.models import Base

            for table in reversed(Base.metadata.sorted_tables):
                session.execute(table.delete())
        bed = started(store, bed_root)
        mixed_fc_iscsi(bed)
        model = bed.model
        assert model is not None
        for action, pick in actions:
            _random_change(bed, store, action, pick)
            if action == "volume":
                # Creating a volume is no device event: the next batch relinks.
                continue
            assert state_of(store, "events") == full_state(store, bed_root), action
        model.resync("the end")
        assert state_of(store, "events") == full_state(store, bed_root)
    finally:
        shutil.rmtree(bed_root, ignore_errors=True)
