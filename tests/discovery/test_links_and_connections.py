"""Udev links of SCSI devices and the state of iSCSI connections, in discovery.

From records (pure discovery) and from testbeds read by the sysfs source, the
way ``tracker discover`` reads a host.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker.discovery.discover import discover
from tracker.discovery.model import HostState, WarningCode
from tracker.discovery.parsers import LINK_WIDTH
from tracker.host.records import DeviceRecord
from tracker.host.sources import SysfsTreeSource
from tracker.testing.testbed import Hctl, IscsiHostSpec, IscsiSessionSpec, LunSpec, Testbed
from tracker.testing.topologies import fc_multipath, iscsi_multipath

from .records_fixtures import SDC, iscsi_host_records

CONNECTION = "/devices/platform/host2/session1/connection1:0/iscsi_connection/connection1:0"
SESSION = "/devices/platform/host2/session1/iscsi_session/session1"


def _with(records: list[DeviceRecord], sys_path: str, **changes: object) -> list[DeviceRecord]:
    return [
        dataclasses.replace(r, **changes) if r.sys_path == sys_path else r  # type: ignore[arg-type]
        for r in records
    ]


def _connection_state(records: list[DeviceRecord], state: str | None) -> list[DeviceRecord]:
    connection = next(r for r in records if r.sys_path == CONNECTION)
    attributes = dict(connection.attributes)
    if state is not None:
        attributes["state"] = state
    return _with(records, CONNECTION, attributes=type(connection.attributes)(attributes))


def _session_state(records: list[DeviceRecord], state: str) -> list[DeviceRecord]:
    session = next(r for r in records if r.sys_path == SESSION)
    attributes = {**session.attributes, "state": state}
    return _with(records, SESSION, attributes=type(session.attributes)(attributes))


# --- from records ---------------------------------------------------------------------


def test_links_of_the_block_device_become_the_scsi_device_links() -> None:
    links = ("/dev/disk/by-path/ip-192.0.2.10:3260-iscsi-iqn.x-lun-0", "/dev/disk/by-id/wwn-0x6")
    state = discover(_with(iscsi_host_records(), SDC, udev_links=links), "h")
    (device,) = state.scsi_devices
    assert device.links == tuple(sorted(links))
    assert state.warnings == ()


def test_a_link_too_long_to_store_is_left_out_with_a_warning() -> None:
    good = "/dev/disk/by-id/wwn-0x6"
    huge = "/dev/disk/by-path/" + "x" * LINK_WIDTH
    state = discover(_with(iscsi_host_records(), SDC, udev_links=(good, huge)), "h")
    assert state.scsi_devices[0].links == (good,)
    assert [(w.sys_path, w.code) for w in state.warnings] == [(SDC, WarningCode.BAD_ATTRIBUTE)]


def test_connection_state_and_persistent_portal_are_recorded_with_the_session() -> None:
    state = discover(_connection_state(iscsi_host_records(), "up"), "h")
    (session,) = state.iscsi_sessions
    assert (session.connection_state, session.persistent_address, session.persistent_port) == (
        "up",
        "192.0.2.10",
        3260,
    )
    assert state.warnings == ()


@pytest.mark.parametrize("connection", ["down", "failed", "cleanup_wait"])
def test_a_logged_in_session_whose_connection_is_down_is_not_healthy(connection: str) -> None:
    state = discover(_connection_state(iscsi_host_records(), connection), "h")
    assert state.iscsi_sessions[0].connection_state == connection
    (warning,) = state.warnings
    assert warning.code is WarningCode.UNHEALTHY
    assert warning.sys_path == SESSION
    assert "LOGGED_IN" in warning.detail and repr(connection) in warning.detail


@pytest.mark.parametrize(
    ("session", "connection"), [("FAILED", "down"), ("LOGGED_IN", None), ("FREE", "failed")]
)
def test_no_health_warning_when_the_session_says_so_or_the_kernel_reports_no_state(
    session: str, connection: str | None
) -> None:
    records = _session_state(_connection_state(iscsi_host_records(), connection), session)
    state = discover(records, "h")
    assert state.iscsi_sessions[0].connection_state == connection
    assert state.warnings == ()


def test_persistent_address_without_port_is_still_recorded() -> None:
    records = iscsi_host_records()
    connection = next(r for r in records if r.sys_path == CONNECTION)
    attributes = {k: v for k, v in connection.attributes.items() if k != "persistent_port"}
    records = _with(records, CONNECTION, attributes=type(connection.attributes)(attributes))
    session = discover(records, "h").iscsi_sessions[0]
    assert (session.persistent_address, session.persistent_port) == ("192.0.2.10", None)


# --- from testbeds --------------------------------------------------------------------


@pytest.fixture
def testbed() -> Iterator[Testbed]:
    shm = Path("/dev/shm")
    parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    directory = Path(tempfile.mkdtemp(prefix="links-test-", dir=parent))
    yield Testbed(directory)
    shutil.rmtree(directory, ignore_errors=True)


def _scan(testbed: Testbed) -> HostState:
    return discover(SysfsTreeSource(testbed.root).scan(), "h")


def test_iscsi_paths_carry_their_by_path_and_by_id_links(testbed: Testbed) -> None:
    topology = iscsi_multipath(testbed)
    state = _scan(testbed)
    for lun in topology.luns:
        device = state.scsi_device(str(lun.hctl))
        assert device is not None and lun.disk is not None
        host = lun.hctl.host
        iqn = "iqn.2010-10.org.openstack:volume-5f1e0c2a"
        by_path = f"/dev/disk/by-path/ip-192.0.2.{10 + host}:3260-iscsi-{iqn}-lun-{lun.hctl.lun}"
        assert by_path in device.links
        serial = lun.disk.udev_properties["ID_SERIAL"]
        # udev points a by-id name at one device: the first path of the LUN here
        assert (f"/dev/disk/by-id/scsi-{serial}" in device.links) == (host == 0)
    assert all(s.connection_state == "up" for s in state.iscsi_sessions)
    assert {(s.persistent_address, s.persistent_port) for s in state.iscsi_sessions} == {
        ("192.0.2.10", 3260),
        ("192.0.2.11", 3260),
    }


def test_fc_paths_carry_by_path_links_naming_the_target_port(testbed: Testbed) -> None:
    fc_multipath(testbed, luns=1)
    state = _scan(testbed)
    by_path = {
        str(d.hctl): [link for link in d.links if "/by-path/" in link] for d in state.scsi_devices
    }
    assert by_path["0:0:1:0"] == ["/dev/disk/by-path/pci-0000:00:00.0-fc-0x500a098000000001-lun-0"]
    assert by_path["1:0:0:0"] == ["/dev/disk/by-path/pci-0000:00:01.0-fc-0x500a098000000010-lun-0"]


def test_a_removed_lun_takes_its_links_along(testbed: Testbed) -> None:
    topology = iscsi_multipath(testbed, luns=1)
    gone = topology.luns[1].hctl
    before = {str(d.hctl): d.links for d in _scan(testbed).scsi_devices}
    testbed.remove_lun(gone)
    after = {str(d.hctl): d.links for d in _scan(testbed).scsi_devices}
    assert str(gone) not in after
    assert after == {k: v for k, v in before.items() if k != str(gone)}
    remaining = {link for links in after.values() for link in links}
    on_disk = {
        "/" + os.fspath(path.relative_to(testbed.root))
        for path in (testbed.root / "dev" / "disk").rglob("*")
        if path.is_symlink()
    }
    assert on_disk == remaining


def test_a_connection_going_down_under_a_logged_in_session_is_warned_about(
    testbed: Testbed,
) -> None:
    testbed.add_iscsi_host(IscsiHostSpec(host=7))
    session_path = testbed.add_iscsi_session(
        IscsiSessionSpec(
            host=7,
            session=3,
            target_iqn="iqn.2010-10.org:t",
            portal_address="192.0.2.20",
            connection_state="down",
        )
    )
    testbed.add_lun(LunSpec(hctl=Hctl(7, 0, 0, 0), vendor="LIO-ORG", model="IBLOCK"))
    state = _scan(testbed)
    unhealthy = [w for w in state.warnings if w.code is WarningCode.UNHEALTHY]
    assert [w.sys_path for w in unhealthy] == [session_path]
    assert state.iscsi_sessions[0].connection_state == "down"
