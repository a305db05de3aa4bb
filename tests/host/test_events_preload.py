"""PyudevEventSource on a real ``pyudev.Monitor``, under umockdev's preload.

A child process started with the preload listens through
:class:`~tracker.host.events.PyudevEventSource` and prints each
:class:`~tracker.host.events.DeviceEvent` it gets; the test sends the
testbed's uevents with :class:`~tracker.testing.uevents.UeventSender`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

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
from tracker.testing.uevents import UeventSender

_LISTENER = """
import json, sys
from tracker.host.events import PyudevEventSource
count = int(sys.argv[1])
with PyudevEventSource(receive_buffer_size=1 << 20) as source:
    print("ready", flush=True)
    for _ in range(count):
        event = source.poll(10)
        if event is None:
            break
        print(json.dumps({
            "action": event.action.value, "sys_path": event.sys_path,
            "subsystem": event.subsystem, "devtype": event.devtype,
            "seqnum": event.seqnum, "properties": dict(event.properties),
        }), flush=True)
"""


def _listen(root: Path, library: Path, count: int) -> subprocess.Popen[str]:
    require_no_udevd()
    child = subprocess.Popen(
        [sys.executable, "-c", _LISTENER, str(count)],
        env=preload_environment(root, library),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    first = child.stdout.readline()
    if first != "ready\n":
        child.kill()
        _out, err = child.communicate(timeout=30)
        raise AssertionError(f"listener did not start: {first!r} {err}")
    return child


def _received(child: subprocess.Popen[str]) -> list[dict[str, Any]]:
    try:
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_a_real_monitor_delivers_storage_events_as_device_events(
    testbed: Testbed, preload_library: Path
) -> None:
    testbed.add_host(HostSpec(host=0))
    device = testbed.add_lun(
        LunSpec(
            hctl=Hctl(0, 0, 0, 1),
            vendor="NETAPP",
            model="LUN C-Mode",
            disk=DiskSpec(
                name="sda",
                major=8,
                minor=0,
                udev_properties=FrozenMap({"ID_SERIAL": "3600a0980383030"}),
                udev_links=("by-id/scsi-3600a0980383030",),
            ),
        )
    )
    block = f"{device}/block/sda"
    sender = UeventSender(testbed.root)
    child = _listen(testbed.root, preload_library, 3)
    try:
        assert len(sender.sockets()) == 1
        sent = [
            sender.send("add", device),
            # not a storage subsystem: the monitor's filter drops it
            sender.send("add", "/devices/virtual/net/eth9", {"SUBSYSTEM": "net"}),
            sender.send("add", f"{device}/scsi_disk/0:0:0:1"),  # neither
            sender.send("add", block),
            sender.send("remove", block),
        ]
    finally:
        events = _received(child)
    assert [(e["action"], e["sys_path"], e["seqnum"]) for e in events] == [
        ("add", device, sent[0].seqnum),
        ("add", block, sent[3].seqnum),
        ("remove", block, sent[4].seqnum),
    ]
    assert (events[0]["subsystem"], events[0]["devtype"]) == ("scsi", "scsi_device")
    assert (events[1]["subsystem"], events[1]["devtype"]) == ("block", "disk")
    properties = events[1]["properties"]
    assert properties["DEVNAME"] == "/dev/sda"
    assert properties["ID_SERIAL"] == "3600a0980383030"
    assert properties["DEVLINKS"] == "/dev/disk/by-id/scsi-3600a0980383030"
    assert not {"ACTION", "DEVPATH", "SEQNUM", "SUBSYSTEM", "DEVTYPE"} & set(properties)
