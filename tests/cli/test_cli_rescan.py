"""``tracker discover --rescan``: scan requests go to the root's hosts before the scan.

The root is a testbed below ``tmp_path``; ``iscsiadm`` is never run: the
executor factory of the command is replaced by one recording command lines.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tracker.cli import discovery as discovery_cli
from tracker.host.rescan import ISCSI_RESCAN
from tracker.testing import topologies
from tracker.testing.fakes import RecordingExecutor
from tracker.testing.testbed import Testbed

from .helpers import Cli

HOST = "compute-1"


@pytest.fixture
def testbed(tmp_path: Path) -> Testbed:
    return Testbed.create(parent=tmp_path, prefix="host-")


@pytest.fixture
def executor(monkeypatch: pytest.MonkeyPatch) -> RecordingExecutor:
    recording = RecordingExecutor()
    monkeypatch.setattr(discovery_cli, "rescan_executor", lambda: recording)
    return recording


def _scan_file(testbed: Testbed, host: int) -> Path:
    return testbed.sys_dir / "class" / "scsi_host" / f"host{host}" / "scan"


def test_discover_rescan_asks_every_host_then_discovers(
    cli: Cli, url: str, testbed: Testbed, executor: RecordingExecutor
) -> None:
    topologies.mixed_fc_iscsi(testbed)
    run = cli(
        "discover", "--host-name", HOST, "--database-url", url,
        "--root", str(testbed.root), "--rescan", "--json",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert [_scan_file(testbed, host).read_bytes() for host in range(4)] == [b"- - -"] * 4
    assert executor.calls == [ISCSI_RESCAN]
    assert run.json()["counts"]["scsi_device"] == 12


def test_without_rescan_nothing_is_written_to_the_host(
    cli: Cli, url: str, testbed: Testbed, executor: RecordingExecutor
) -> None:
    topologies.mixed_fc_iscsi(testbed)
    run = cli("discover", "--host-name", HOST, "--database-url", url, "--root", str(testbed.root))
    assert run.code == 0, run.err
    assert [_scan_file(testbed, host).read_bytes() for host in range(4)] == [b""] * 4
    assert executor.calls == []


def test_a_failed_rescan_stops_before_anything_is_stored(
    cli: Cli, url: str, testbed: Testbed, executor: RecordingExecutor
) -> None:
    topologies.fc_multipath(testbed)
    scan = _scan_file(testbed, 1)
    scan.unlink()
    os.mkfifo(scan)  # no reader: the write fails with ENXIO, it does not hang
    run = cli(
        "discover", "--host-name", HOST, "--database-url", url,
        "--root", str(testbed.root), "--rescan",
    )  # fmt: skip
    assert run.code == 1
    assert run.err.startswith("error: SCSI rescan failed: host1: ") and "ENXIO" in run.err
    assert run.err.count("\n") == 1
    assert _scan_file(testbed, 0).read_bytes() == b"- - -"
    shown = cli("host", "show", "--host-name", HOST, "--database-url", url)
    assert shown.code == 5  # never discovered into the store


def test_rescan_refuses_a_capture(cli: Cli, url: str, tmp_path: Path) -> None:
    run = cli(
        "discover", "--host-name", HOST, "--database-url", url,
        "--from", str(tmp_path / "x.tar.gz"), "--rescan",
    )  # fmt: skip
    assert run.code == 1
    assert run.err.startswith("error: --rescan cannot be used with --from")
