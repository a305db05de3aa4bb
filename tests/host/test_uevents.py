"""The testbed's uevent sender: a real ``pyudev.Monitor`` under umockdev's preload receives it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tracker.exceptions import TestbedError
from tracker.host.records import FrozenMap
from tracker.testing.testbed import (
    DiskSpec,
    Hctl,
    HostSpec,
    LunSpec,
    Testbed,
    preload_environment,
    require_no_udevd,
)
from tracker.testing.uevents import Uevent, UeventSender, encode_uevent, murmurhash2

# A monitor in a child process: prints "ready" once listening, then one JSON
# line per device received, until it has ``count`` or waited ``wait`` seconds.
_MONITOR = """
import json, sys
import pyudev
filters, count, wait = json.loads(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
monitor = pyudev.Monitor.from_netlink(pyudev.Context())
for subsystem, devtype in filters:
    monitor.filter_by(subsystem, devtype)
monitor.start()
print("ready", flush=True)
for _ in range(count):
    device = monitor.poll(timeout=wait)
    if device is None:
        break
    print(json.dumps({
        "action": device.action,
        "sys_path": device.sys_path,
        "subsystem": device.subsystem,
        "devtype": device.device_type,
        "seqnum": device.sequence_number,
        "node": device.device_node,
        "links": sorted(device.device_links),
        "properties": dict(device.properties),
    }), flush=True)
"""


@contextmanager
def monitor(
    root: Path, library: Path, filters: Sequence[tuple[str, str | None]], count: int
) -> Iterator[subprocess.Popen[str]]:
    """A child process under the preload, listening once the context is entered."""
    require_no_udevd()
    child = subprocess.Popen(
        [sys.executable, "-c", _MONITOR, json.dumps(filters), str(count), "10"],
        env=preload_environment(root, library),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first == "ready\n", child.stderr.read() if child.stderr else first
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=30)


def received(child: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()]


def _lun_bed(testbed: Testbed) -> str:
    testbed.add_host(HostSpec(host=0))
    return testbed.add_lun(
        LunSpec(
            hctl=Hctl(0, 0, 0, 1),
            vendor="NETAPP",
            model="LUN C-Mode",
            disk=DiskSpec(
                name="sda",
                major=8,
                minor=0,
                udev_properties=FrozenMap({"ID_SERIAL": "3600a0980383030"}),
            ),
        )
    )


def test_murmurhash2_matches_known_values() -> None:
    # Reference values of MurmurHash2 (32 bit, seed 0) covering 0-3 tail bytes.
    assert murmurhash2(b"") == 0
    assert murmurhash2(b"a") == 0x92685F5E
    assert murmurhash2(b"block") != murmurhash2(b"scsi")
    assert murmurhash2(b"disk") == murmurhash2(b"disk")


def test_encoded_header_carries_magic_offsets_and_filter_hashes() -> None:
    event = Uevent(
        action="add",
        sys_path="/devices/x",
        subsystem="block",
        devtype="disk",
        properties=FrozenMap({"ACTION": "add", "DEVPATH": "/devices/x", "SUBSYSTEM": "block"}),
        seqnum=1,
    )
    data = encode_uevent(event)
    assert data[:8] == b"libudev\0"
    assert int.from_bytes(data[8:12], "big") == 0xFEEDCAFE
    assert int.from_bytes(data[12:16], sys.byteorder) == 40
    assert int.from_bytes(data[16:20], sys.byteorder) == 40
    assert int.from_bytes(data[20:24], sys.byteorder) == len(data) - 40
    assert int.from_bytes(data[24:28], "big") == murmurhash2(b"block")
    assert int.from_bytes(data[28:32], "big") == murmurhash2(b"disk")
    assert data[40:].split(b"\0")[:3] == [b"ACTION=add", b"DEVPATH=/devices/x", b"SUBSYSTEM=block"]


def test_event_reads_the_device_and_numbers_events_per_testbed(testbed: Testbed) -> None:
    device = _lun_bed(testbed)
    block = f"{device}/block/sda"
    first = UeventSender(testbed.root).event("add", device)
    second = UeventSender(testbed.root).event("add", f"/sys{block}")
    assert (first.subsystem, first.devtype) == ("scsi", "scsi_device")
    assert second.sys_path == block
    assert second.seqnum == first.seqnum + 1
    assert second.properties["SEQNUM"] == str(second.seqnum)
    assert second.properties["DEVNAME"] == "sda"
    assert (second.properties["MAJOR"], second.properties["MINOR"]) == ("8", "0")
    assert second.properties["ID_SERIAL"] == "3600a0980383030"


def test_event_adds_devlinks_from_the_testbeds_dev_links(testbed: Testbed) -> None:
    device = _lun_bed(testbed)
    by_id = testbed.root / "dev" / "disk" / "by-id"
    by_id.mkdir(parents=True, exist_ok=True)
    (by_id / "wwn-0x600a0980383030").symlink_to("../../sda")
    (by_id / "wwn-0x600a0980383031").symlink_to("../../sdb")
    event = UeventSender(testbed.root).event("add", f"{device}/block/sda")
    links = event.properties["DEVLINKS"].split()
    assert "/dev/disk/by-id/wwn-0x600a0980383030" in links
    assert "/dev/disk/by-id/wwn-0x600a0980383031" not in links
    assert all(link.startswith("/dev/disk/") for link in links)


def test_event_refuses_unknown_devices_actions_and_paths(testbed: Testbed) -> None:
    sender = UeventSender(testbed.root)
    with pytest.raises(TestbedError, match="no SUBSYSTEM"):
        sender.event("add", "/devices/nowhere")
    with pytest.raises(TestbedError, match="unknown action"):
        sender.event("explode", "/devices/nowhere", {"SUBSYSTEM": "scsi"})
    with pytest.raises(TestbedError, match="below /devices"):
        sender.event("add", "/devices/../etc", {"SUBSYSTEM": "scsi"})
    # a removed device's event can still be made from given properties
    gone = sender.event("remove", "/devices/gone", {"SUBSYSTEM": "scsi", "DEVTYPE": "scsi_device"})
    assert (gone.subsystem, gone.devtype) == ("scsi", "scsi_device")


def test_send_without_monitors_reaches_nobody(testbed: Testbed) -> None:
    device = _lun_bed(testbed)
    sender = UeventSender(testbed.root)
    assert sender.sockets() == ()
    assert sender.deliver(sender.event("change", device)) == 0


def test_pyudev_monitor_under_preload_receives_sent_events(
    testbed: Testbed, preload_library: Path
) -> None:
    device = _lun_bed(testbed)
    block = f"{device}/block/sda"
    sender = UeventSender(testbed.root)
    with monitor(testbed.root, preload_library, [("block", None)], 1) as child:
        assert len(sender.sockets()) == 1
        sent = sender.send("add", block)
        events = received(child)
    assert len(events) == 1
    got = events[0]
    assert got["action"] == "add"
    assert got["sys_path"] == f"/sys{block}"
    assert (got["subsystem"], got["devtype"]) == ("block", "disk")
    assert got["seqnum"] == sent.seqnum
    assert got["node"] == "/dev/sda"
    assert got["properties"]["ID_SERIAL"] == "3600a0980383030"
    assert got["properties"]["MAJOR"] == "8"


def test_monitor_filter_by_subsystem_and_devtype_drops_other_events(
    testbed: Testbed, preload_library: Path
) -> None:
    device = _lun_bed(testbed)
    sender = UeventSender(testbed.root)
    target = device.rsplit("/", 1)[0]
    with monitor(testbed.root, preload_library, [("scsi", "scsi_device")], 1) as child:
        # Sent first; a monitor that let them through would print them first.
        sender.send("add", f"{device}/block/sda")  # other subsystem
        sender.send("add", target)  # same subsystem, other devtype
        wanted = sender.send("add", device)
        events = received(child)
    assert [(e["sys_path"], e["seqnum"]) for e in events] == [(f"/sys{device}", wanted.seqnum)]


def test_live_changes_reach_a_monitor_in_order(bed_dir: Path, preload_library: Path) -> None:
    from tracker.testing.live import LiveTestbed

    live = LiveTestbed(bed_dir)
    live.add_host(HostSpec(host=0))
    spec = LunSpec(hctl=Hctl(0, 0, 0, 1), vendor="NETAPP", model="LUN", disk=DiskSpec("sda", 8, 0))
    with monitor(live.root, preload_library, [("scsi", None), ("block", None)], 6) as child:
        added = live.plug_lun(spec)
        removed = live.unplug_lun(spec.hctl)
        events = received(child)
    # scsi_device/scsi_disk class events are filtered out by the monitor
    expected = [e for e in (*added, *removed) if e.subsystem in ("scsi", "block")]
    assert [(e["action"], e["sys_path"], e["seqnum"]) for e in events] == [
        (e.action, f"/sys{e.sys_path}", e.seqnum) for e in expected
    ]
    assert events[-1]["action"] == "remove"
    assert events[-3]["node"] == "/dev/sda"  # the disk's remove still names its node
