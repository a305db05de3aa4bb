"""Discovery's HostState against independent readers of the same simulated host.

``lsscsi -y <testbed>/sys`` (from the Debian package, not our code) must agree
with what discovery reports for every topology: the H:C:T:L addresses, the
transport ids (``-t``) and the logical unit names (``-u``). The pyudev source
(under umockdev's preload) and a capture replay must give the *same HostState*
as the sysfs-tree source.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tracker.discovery.discover import discover
from tracker.discovery.model import FcPathIds, HostState, IscsiPathIds, Transport, WarningCode
from tracker.discovery.vpd import VpdProblem
from tracker.host.capture import capture, open_capture
from tracker.host.executor import SubprocessExecutor
from tracker.host.sources import SysfsTreeSource
from tracker.testing.testbed import (
    Testbed,
    require_lsscsi,
    require_no_udevd,
    require_preload_library,
    run_lsscsi,
)
from tracker.testing.topologies import TOPOLOGIES, VpdVector, load_vpd_vectors

#: The repository's test data (tests/data; see its README).
VPD_DIR = Path(__file__).resolve().parent / "data" / "vpd"
HEX = re.compile(r"[0-9a-f]+")


@pytest.fixture(scope="module")
def vectors() -> Mapping[str, VpdVector]:
    return load_vpd_vectors(VPD_DIR)


@pytest.fixture
def testbed() -> Iterator[Testbed]:
    bed = Testbed.create(prefix="oracle-")
    yield bed
    shutil.rmtree(bed.root, ignore_errors=True)


def _state(root: Path) -> HostState:
    return discover(SysfsTreeSource(root).scan(), "oracle-host")


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_lsscsi_agrees_with_discovery(
    name: str, testbed: Testbed, vectors: Mapping[str, VpdVector]
) -> None:
    require_lsscsi()
    TOPOLOGIES[name](testbed, vectors)
    state = _state(testbed.root)
    executor = SubprocessExecutor()
    devices = {str(d.hctl): d for d in state.scsi_devices}

    transports = run_lsscsi(testbed.sys_dir, ["-t"], executor)
    assert sorted(str(row.hctl) for row in transports) == sorted(devices)
    for row in transports:
        device = devices[str(row.hctl)]
        ids = device.transport_ids
        if isinstance(ids, FcPathIds):
            assert ids.port_id is not None
            assert row.detail == f"fc:0x{ids.wwpn},0x{ids.port_id:06x}", row
        elif isinstance(ids, IscsiPathIds):
            assert row.detail == f"{ids.target_iqn},t,0x{ids.tpgt:x}", row
        elif row.detail.startswith("sas:"):
            host = state.scsi_host(device.hctl.host)
            assert host is not None and host.transport is Transport.SAS
        else:
            assert row.detail == "" and ids is None, row

    names = run_lsscsi(testbed.sys_dir, ["-u"], executor)
    truncated = {
        w.sys_path
        for w in state.warnings
        if w.code is WarningCode.VPD and w.vpd is not None and w.vpd.code is VpdProblem.TRUNCATED
    }
    for row in names:
        device = devices[str(row.hctl)]
        wwn = device.identity.wwn
        if HEX.fullmatch(row.detail):
            assert wwn in (f"naa.{row.detail}", f"eui.{row.detail}"), row
        elif row.detail == "none":
            # lsscsi gives up on a truncated page; discovery keeps the
            # complete designators before the cut (as the kernel's wwid does)
            # and records a warning.
            assert wwn is None or device.sys_path in truncated, (row, wwn)
        else:
            assert wwn is not None and wwn.startswith("t10."), row
            assert row.detail.split()[0] in wwn, row


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_pyudev_and_capture_give_the_same_host_state(
    name: str, testbed: Testbed, vectors: Mapping[str, VpdVector], tmp_path: Path
) -> None:
    import json

    from tracker.host.records import record_from_json
    from tracker.testing.testbed import run_under_preload

    TOPOLOGIES[name](testbed, vectors)
    expected = _state(testbed.root)
    assert expected.scsi_devices  # every topology has LUNs

    archive = tmp_path / "host.tar.gz"
    capture(testbed.root, archive)
    assert discover(open_capture(archive, tmp_path / "replay").scan(), "oracle-host") == expected

    library = require_preload_library()
    require_no_udevd()
    result = run_under_preload(
        testbed.root,
        ["python", "-m", "tracker.host.dump_records", "--source", "pyudev"],
        SubprocessExecutor(),
        library=library,
    ).check()
    records = [record_from_json(item) for item in json.loads(result.stdout)["records"]]
    assert discover(records, "oracle-host") == expected
