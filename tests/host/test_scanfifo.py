"""The scan-file responder: a write to a host's ``scan`` file makes scheduled LUNs appear."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from tracker.exceptions import TestbedError
from tracker.host.executor import SubprocessExecutor
from tracker.host.sources import SysfsTreeSource
from tracker.testing.live import LiveTestbed
from tracker.testing.scanfifo import ScanRequest, ScanResponder
from tracker.testing.testbed import (
    DiskSpec,
    Hctl,
    HostSpec,
    LunSpec,
    MultipathSpec,
    run_under_preload,
    sd_devnum,
    sd_name,
)


def lun(hctl: Hctl, index: int) -> LunSpec:
    major, minor = sd_devnum(index)
    return LunSpec(
        hctl=hctl,
        vendor="NETAPP",
        model="LUN C-Mode",
        disk=DiskSpec(name=sd_name(index), major=major, minor=minor),
    )


@pytest.fixture
def live(bed_dir: Path) -> LiveTestbed:
    bed = LiveTestbed(bed_dir)
    bed.add_host(HostSpec(host=0))
    bed.add_host(HostSpec(host=1, parent="/devices/pci0000:00/0000:00:1f.1"))
    return bed


def scan_file(live: LiveTestbed, host: int) -> Path:
    return (live.sys_dir / "class" / "scsi_host" / f"host{host}").resolve() / "scan"


def write_from_thread(path: Path, text: str) -> None:
    """Write as rescanning code would, from another thread, never blocking."""
    failures: list[OSError] = []

    def write() -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            try:
                os.write(fd, text.encode())
            finally:
                os.close(fd)
        except OSError as error:
            failures.append(error)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert not failures


def scanned_luns(live: LiveTestbed) -> set[str]:
    return {r.sys_name for r in SysfsTreeSource(live.root).scan() if r.devtype == "scsi_device"}


def test_wildcard_rescan_adds_the_scheduled_luns_with_their_events(live: LiveTestbed) -> None:
    with ScanResponder(live) as responder:
        responder.schedule(0, lun(Hctl(0, 0, 0, 1), 0), lun(Hctl(0, 0, 1, 1), 1))
        responder.schedule(1, lun(Hctl(1, 0, 0, 1), 2))
        assert scanned_luns(live) == set()
        write_from_thread(scan_file(live, 0), "- - -")
        assert responder.wait_for_requests(1)
        assert scanned_luns(live) == {"0:0:0:1", "0:0:1:1"}
        assert responder.requests == [ScanRequest(0, None, None, None)]
        assert [
            e.properties.get("DEVNAME") for e in responder.events if e.subsystem == "block"
        ] == [
            "sda",
            "sdb",
        ]
        assert tuple(responder.events) == live.events[-len(responder.events) :]
        assert [s.hctl for s in responder.pending] == [Hctl(1, 0, 0, 1)]
    # stopped: regular scan files again, the scheduled LUN of host1 never came
    assert stat.S_ISREG(scan_file(live, 0).lstat().st_mode)
    assert "1:0:0:1" not in scanned_luns(live)


def test_targeted_rescan_adds_only_the_matching_lun(live: LiveTestbed) -> None:
    with ScanResponder(live, hosts=[0]) as responder:
        responder.schedule(0, lun(Hctl(0, 0, 0, 1), 0), lun(Hctl(0, 0, 0, 2), 1))
        write_from_thread(scan_file(live, 0), "0 0 2\n")
        assert responder.wait_for_requests(1)
        assert scanned_luns(live) == {"0:0:0:2"}
        write_from_thread(scan_file(live, 0), "0 - 1\nbogus\n")
        assert responder.wait_for_requests(3)
        assert scanned_luns(live) == {"0:0:0:1", "0:0:0:2"}
        assert responder.rejected == ["bogus"]
        assert responder.pending == ()


def test_rescanned_path_joins_its_multipath_map(live: LiveTestbed) -> None:
    live.plug_lun(lun(Hctl(0, 0, 0, 1), 0), MultipathSpec(0, "mpatha", "mpath-3600a", ("sda",)))
    with ScanResponder(live) as responder:
        responder.schedule(1, lun(Hctl(1, 0, 0, 1), 1), multipath=0)
        write_from_thread(scan_file(live, 1), "- - -")
        assert responder.wait_for_requests(1)
        last = responder.events[-1]
    assert (last.action, last.sys_path) == ("change", "/devices/virtual/block/dm-0")
    slaves = live.sys_dir / "devices/virtual/block/dm-0/slaves"
    assert sorted(p.name for p in slaves.iterdir()) == ["sda", "sdb"]


def test_a_refused_lun_is_reported_by_stop(live: LiveTestbed) -> None:
    live.plug_lun(lun(Hctl(0, 0, 0, 1), 0))
    responder = ScanResponder(live)
    responder.start()
    responder.schedule(0, lun(Hctl(0, 0, 0, 1), 1))  # address already used
    write_from_thread(scan_file(live, 0), "- - -")
    assert responder.wait_for_requests(1)
    with pytest.raises(TestbedError, match="address already used"):
        responder.stop()
    responder.stop()  # idempotent, error reported once


def test_responder_refuses_misuse(live: LiveTestbed) -> None:
    with pytest.raises(TestbedError, match="no host7"):
        ScanResponder(live, hosts=[7]).start()
    responder = ScanResponder(live)
    with pytest.raises(TestbedError, match="not on host1"):
        responder.schedule(1, lun(Hctl(0, 0, 0, 1), 0))
    with responder, pytest.raises(TestbedError, match="already started"):
        responder.start()
    assert stat.S_ISREG(scan_file(live, 1).lstat().st_mode)


def test_stop_without_requests_joins_promptly(live: LiveTestbed) -> None:
    responder = ScanResponder(live, poll_timeout=5.0)
    responder.start()
    thread = responder._thread
    responder.stop(timeout=2.0)  # woken by its pipe, not by the poll timeout
    assert thread is not None and not thread.is_alive()


def test_a_preloaded_process_writing_through_sys_gets_its_lun(
    live: LiveTestbed, preload_library: Path
) -> None:
    code = "open('/sys/class/scsi_host/host0/scan', 'w').write('- - -')"
    with ScanResponder(live) as responder:
        responder.schedule(0, lun(Hctl(0, 0, 3, 0), 0))
        result = run_under_preload(
            live.root,
            ["python", "-c", code],
            SubprocessExecutor(),
            library=preload_library,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        assert responder.wait_for_requests(1)
    assert scanned_luns(live) == {"0:0:3:0"}
