"""Hostile host input: bad bytes, out-of-range numbers, files that are not files.

Every bad device gets a warning and the scan goes on; nothing blocks or reads
without bound. The testbeds are built below a temporary directory: the FIFO,
the links and the huge (sparse) files are created there, never in ``/dev``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tracker.db.store import Store
from tracker.discovery.discover import discover
from tracker.discovery.model import HostState
from tracker.host.records import DeviceRecord
from tracker.host.sources import BINARY_LIMIT, TEXT_LIMIT, SysfsTreeSource
from tracker.reconcile import observed, reconcile
from tracker.testing.testbed import DiskSpec, Hctl, HostSpec, LunSpec, Testbed

from .conftest import pyudev_scan

#: Seconds a scan of a two-LUN testbed may take before it counts as blocked.
NO_BLOCK = 20.0


def _two_luns(testbed: Testbed, lun: int = 1) -> tuple[Path, Path]:
    """Host 0 with LUN 0 (sane) and LUN ``lun`` (to be spoiled); their directories."""
    testbed.add_host(HostSpec(host=0))
    for number, disk in ((0, DiskSpec("sda", 8, 0)), (lun, DiskSpec("sdb", 8, 16))):
        testbed.add_lun(
            LunSpec(
                Hctl(0, 0, 0, number),
                "ACME",
                "DISK",
                wwid=f"naa.600a0980000000000000000000000{number % 10:03d}",
                disk=disk,
            )
        )
    records = SysfsTreeSource(testbed.root).scan()
    dirs = {
        r.sys_name: testbed.sys_dir / r.sys_path.lstrip("/")
        for r in records
        if r.devtype == "scsi_device" or r.subsystem == "block"
    }
    return dirs[f"0:0:0:{lun}"], dirs["sdb"]


def _scan(root: Path) -> tuple[DeviceRecord, ...]:
    """Scan in a thread; fail (rather than hang the run) when it blocks."""
    result: list[tuple[DeviceRecord, ...]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(SysfsTreeSource(root).scan())
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(NO_BLOCK)
    assert not thread.is_alive(), f"the scan blocked for more than {NO_BLOCK} s"
    if errors:
        raise errors[0]
    return result[0]


def _state(root: Path) -> HostState:
    return discover(_scan(root), "hostile")


def _warnings_about(state: HostState, sys_name: str) -> list[str]:
    return [w.detail for w in state.warnings if w.sys_path.rsplit("/", 1)[1] == sys_name]


def _replace(path: Path, make: Callable[[Path], None]) -> None:
    path.unlink()
    make(path)


# --- bytes that are not UTF-8 --------------------------------------------------


def test_a_model_that_is_not_utf8_is_escaped_and_warned_about(testbed: Testbed) -> None:
    device_dir, _ = _two_luns(testbed)
    (device_dir / "model").write_bytes(b"DISK \xa9 2000\n")
    state = _state(testbed.root)
    spoiled = state.scsi_device("0:0:0:1")
    assert spoiled is not None and spoiled.model == "DISK \\xa9 2000"
    spoiled.model.encode("utf-8")  # what a database needs
    assert any("model" in w and "UTF-8" in w for w in _warnings_about(state, "0:0:0:1"))
    assert state.scsi_device("0:0:0:0") is not None  # the scan went on


def test_a_property_that_is_not_utf8_is_escaped(testbed: Testbed) -> None:
    _, disk_dir = _two_luns(testbed)
    uevent = disk_dir / "uevent"
    uevent.write_bytes(uevent.read_bytes() + b"ID_MODEL=\xff\xfe\n")
    record = next(r for r in _scan(testbed.root) if r.sys_name == "sdb")
    assert record.properties["ID_MODEL"] == "\\xff\\xfe"
    assert "property ID_MODEL" in record.problems


# --- numbers out of range ------------------------------------------------------


def test_a_size_past_64_bits_is_a_warning_not_a_crash(testbed: Testbed) -> None:
    _, disk_dir = _two_luns(testbed)
    (disk_dir / "size").write_text("99999999999999999999999\n")
    state = _state(testbed.root)
    device = state.scsi_device("0:0:0:1")
    assert device is not None and device.block_name == "sdb" and device.size_bytes is None
    assert any("size=" in w and "out of range" in w for w in _warnings_about(state, "sdb"))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("-1", "out of range"),
        ("x" * 100_000, "larger than 65536 bytes"),
        ("1" * 5000, "not a number"),
    ],
)
def test_other_bad_sizes(testbed: Testbed, text: str, problem: str) -> None:
    _, disk_dir = _two_luns(testbed)
    (disk_dir / "size").write_text(text)
    state = _state(testbed.root)
    assert any(problem in w for w in _warnings_about(state, "sdb"))


def test_the_largest_lun_is_kept_exactly(testbed: Testbed) -> None:
    _two_luns(testbed, lun=2**64 - 1)
    state = _state(testbed.root)
    assert [d.hctl.lun for d in state.scsi_devices] == [0, 2**64 - 1]


def test_a_lun_past_64_bits_is_a_warning(bed_dir: Path) -> None:
    testbed = Testbed(bed_dir)
    _, _ = _two_luns(testbed)
    # rename LUN 1's directory to a LUN of 2**64 (the kernel never makes one)
    records = SysfsTreeSource(testbed.root).scan()
    lun = next(r for r in records if r.sys_name == "0:0:0:1")
    old = testbed.sys_dir / lun.sys_path.lstrip("/")
    new = old.with_name(f"0:0:0:{2**64}")
    old.rename(new)
    link = testbed.sys_dir / "bus" / "scsi" / "devices" / "0:0:0:1"
    target = os.readlink(link)
    link.unlink()
    (link.with_name(new.name)).symlink_to(target.replace("0:0:0:1", new.name))
    state = _state(testbed.root)
    assert [str(d.hctl) for d in state.scsi_devices] == ["0:0:0:0"]
    assert any("out of range" in w for w in _warnings_about(state, new.name))


# --- files that are not regular files ------------------------------------------


def test_an_attribute_that_is_a_fifo_does_not_block(testbed: Testbed) -> None:
    device_dir, _ = _two_luns(testbed)
    _replace(device_dir / "model", os.mkfifo)
    state = _state(testbed.root)
    device = state.scsi_device("0:0:0:1")
    assert device is not None and device.model is None
    assert any("model" in w and "FIFO" in w for w in _warnings_about(state, "0:0:0:1"))


def test_a_vpd_page_that_is_a_fifo_does_not_block(testbed: Testbed) -> None:
    device_dir, _ = _two_luns(testbed)
    os.mkfifo(device_dir / "vpd_pg83")
    state = _state(testbed.root)
    assert any("vpd_pg83" in w and "FIFO" in w for w in _warnings_about(state, "0:0:0:1"))


def test_a_uevent_that_is_a_fifo_does_not_block(testbed: Testbed) -> None:
    device_dir, _ = _two_luns(testbed)
    _replace(device_dir / "uevent", os.mkfifo)
    state = _state(testbed.root)
    assert state.scsi_device("0:0:0:1") is None
    assert any("uevent" in w and "FIFO" in w for w in _warnings_about(state, "0:0:0:1"))
    assert state.scsi_device("0:0:0:0") is not None


def _huge(path: Path) -> None:
    """A sparse file of 8 GiB: reading it whole would take all the memory."""
    with path.open("wb") as handle:
        handle.truncate(8 * 1024**3)


def test_an_attribute_linked_to_an_endless_file_is_not_followed(testbed: Testbed) -> None:
    device_dir, _ = _two_luns(testbed)
    endless = testbed.root / "zero"  # stands in for /dev/zero: never the real one
    _huge(endless)
    _replace(device_dir / "vendor", lambda path: path.symlink_to(endless))
    state = _state(testbed.root)
    device = state.scsi_device("0:0:0:1")
    assert device is not None and device.vendor is None
    assert any("vendor" in w and "link" in w for w in _warnings_about(state, "0:0:0:1"))


@pytest.mark.parametrize(("name", "limit"), [("model", TEXT_LIMIT), ("vpd_pg80", BINARY_LIMIT)])
def test_an_oversize_attribute_is_read_only_up_to_its_bound(
    testbed: Testbed, name: str, limit: int
) -> None:
    device_dir, _ = _two_luns(testbed)
    path = device_dir / name
    path.unlink(missing_ok=True)
    _huge(path)
    state = _state(testbed.root)
    assert any(
        name in w and f"larger than {limit} bytes" in w for w in _warnings_about(state, "0:0:0:1")
    )


def test_an_attribute_at_its_bound_is_read(testbed: Testbed) -> None:
    device_dir, _ = _two_luns(testbed)
    (device_dir / "vpd_pg80").write_bytes(b"\x00\x80\xff\xff" + b"A" * 0xFFFF)
    record = next(r for r in _scan(testbed.root) if r.sys_name == "0:0:0:1")
    assert len(record.binary_attributes["vpd_pg80"]) == BINARY_LIMIT
    assert "vpd_pg80" not in record.problems


@pytest.mark.slow
def test_pyudev_source_reads_hostile_attributes_the_same_way(
    testbed: Testbed, preload_library: Path
) -> None:
    device_dir, disk_dir = _two_luns(testbed)
    _replace(device_dir / "model", os.mkfifo)
    (device_dir / "vendor").write_bytes(b"AC\xa9ME\n")
    _huge(testbed.root / "zero")
    _replace(device_dir / "rev", lambda path: path.symlink_to(testbed.root / "zero"))
    (disk_dir / "size").unlink()
    _huge(disk_dir / "size")
    sysfs = _scan(testbed.root)
    assert pyudev_scan(testbed.root, preload_library) == sysfs
    spoiled = next(r for r in sysfs if r.sys_name == "0:0:0:1")
    assert set(spoiled.problems) == {"model", "vendor", "rev"}


# --- into the store, on every database -----------------------------------------


def test_hostile_values_reconcile_and_read_back_exactly(store: Store, testbed: Testbed) -> None:
    device_dir, disk_dir = _two_luns(testbed, lun=2**64 - 1)
    (device_dir / "model").write_bytes(b"DISK \xa9\xff\n")
    (disk_dir / "size").write_text("99999999999999999999999\n")
    state = _state(testbed.root)
    assert [d.hctl.lun for d in state.scsi_devices] == [0, 2**64 - 1]

    result = reconcile(store, state)
    assert len(result.of("appeared")) == 3  # host0 and both LUNs
    rows = {row["hctl"]: row for row in observed(store, "hostile")["scsi_device"]}
    top = rows[f"0:0:0:{2**64 - 1}"]
    assert top["lun"] == 2**64 - 1
    assert top["model"] == "DISK \\xa9\\xff"
    assert top["size_bytes"] is None
    assert rows["0:0:0:0"]["lun"] == 0
    # what was stored is what was discovered: a second reconcile changes nothing
    assert reconcile(store, state).rows_written == 0


def test_the_widest_scsi_address_is_stored(store: Store, testbed: Testbed) -> None:
    """H:C:T:L at its limits is 53 characters: the store takes it on every database."""
    big = Hctl(2**31 - 1, 2**31 - 1, 2**31 - 1, 2**64 - 1)
    testbed.add_host(HostSpec(host=big.host))
    testbed.add_lun(
        LunSpec(big, "ACME", "DISK", wwid="naa.600a0980000000000000000000000999", disk=None)
    )
    state = _state(testbed.root)
    address = (big.host, big.channel, big.target, big.lun)
    assert [str(d.hctl) for d in state.scsi_devices] == [":".join(map(str, address))]

    reconcile(store, state)
    [row] = observed(store, "hostile")["scsi_device"]
    assert len(row["hctl"]) == 53
    assert (row["scsi_host"], row["channel"], row["target"], row["lun"]) == address
