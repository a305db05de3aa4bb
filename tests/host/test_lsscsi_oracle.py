"""lsscsi, reading the same testbed, agrees with the records (an independent oracle)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from tracker.host.executor import SubprocessExecutor
from tracker.host.records import DeviceRecord
from tracker.host.sources import SysfsTreeSource
from tracker.testing.testbed import Testbed, run_lsscsi
from tracker.testing.topologies import TOPOLOGIES, VpdVector


def transport_of(device: DeviceRecord, records: tuple[DeviceRecord, ...]) -> str:
    """The transport id lsscsi -t should print, computed from records only."""
    target = device.parent
    assert target is not None
    holder = target.rsplit("/", 1)[0]
    for record in records:
        if record.subsystem == "fc_transport" and record.parent == target:
            return f"fc:{record.attributes['port_name']},{record.attributes['port_id']}"
        if record.subsystem == "iscsi_session" and record.parent == holder:
            tpgt = int(record.attributes["tpgt"])
            return f"{record.attributes['targetname']},t,0x{tpgt:x}"
        if record.subsystem == "sas_device" and record.parent == holder:
            return f"sas:{record.attributes['sas_address']}"
    return ""


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_lsscsi_agrees_with_records(
    name: str,
    testbed: Testbed,
    vpd_vectors: Mapping[str, VpdVector],
    executor: SubprocessExecutor,
    lsscsi: str,
) -> None:
    TOPOLOGIES[name](testbed, vpd_vectors)
    records = SysfsTreeSource(testbed.root).scan()
    devices = {r.sys_name: r for r in records if r.devtype == "scsi_device"}
    transports = run_lsscsi(testbed.sys_dir, ["-t"], executor)
    names = run_lsscsi(testbed.sys_dir, ["-u"], executor)
    assert sorted(str(row.hctl) for row in transports) == sorted(devices)
    assert sorted(str(row.hctl) for row in names) == sorted(devices)
    for row in transports:
        assert row.kind == "disk"
        assert row.detail == transport_of(devices[str(row.hctl)], records), row
    for row in names:
        device = devices[str(row.hctl)]
        page = device.binary_attributes.get("vpd_pg83")
        if row.detail == "none":
            wwid = device.attributes.get("wwid", "")
            # lsscsi finds no identifier: no page, or one it cannot walk
            assert (
                page is None
                or not wwid.startswith(("naa.", "eui."))
                or len(page) < 4 + int.from_bytes(page[2:4], "big")
            )
            continue
        assert page is not None
        if all(c in "0123456789abcdef" for c in row.detail):
            assert bytes.fromhex(row.detail) in page, row
            wwid = device.attributes.get("wwid", "")
            if wwid.startswith(("naa.", "eui.")) and name != "vpd_variants":
                assert wwid[4:] == row.detail
        else:
            assert row.detail.split()[0].encode() in page, row
