"""Operator context on the host commands (issue 6): ``tracker host show`` before any
discover says what to run, and ``tracker discover`` on a host without SCSI says so.

Hosts are testbeds below ``tmp_path``; nothing here reads the real ``/sys``.
"""

from __future__ import annotations

import json
from pathlib import Path

from tracker.testing import topologies
from tracker.testing.testbed import Testbed

from .helpers import Cli

HOST = "compute-5"


def test_host_show_before_any_discover_suggests_it(cli: Cli, url: str) -> None:
    run = cli("host", "show", "--host-name", HOST, "--database-url", url)
    assert run.code == 5, (run.out, run.err)
    assert run.out == ""
    assert run.err.count("\n") == 1, "one line, no traceback"
    assert run.err.startswith(f"error: host {HOST} has not been discovered into this store")
    assert "run `tracker discover` on that host" in run.err
    assert f"--host-name {HOST}" in run.err


def test_host_show_before_any_discover_with_json(cli: Cli, url: str) -> None:
    run = cli("host", "show", "--json", "--host-name", HOST, "--database-url", url)
    assert run.code == 5, (run.out, run.err)
    assert run.out == ""
    error = json.loads(run.err)["error"]
    assert error["type"] == "HostNotDiscovered"
    assert "tracker discover" in error["message"]


def test_discover_without_scsi_hosts_says_so(cli: Cli, url: str, tmp_path: Path) -> None:
    empty = Testbed.create(parent=tmp_path, prefix="no-scsi-")  # a sysfs tree, no SCSI
    args = ("discover", "--host-name", HOST, "--root", str(empty.root), "--database-url", url)
    run = cli(*args)
    assert run.code == 0, run.err
    [line] = [row for row in run.out.splitlines() if row.startswith("no SCSI hosts found")]
    assert str(empty.root) in line
    document = cli(*args, "--json").json()
    assert document["no_scsi_hosts"] is True
    assert document["counts"]["scsi_host"] == 0
    # the host is now known, with nothing on it: host show works
    shown = cli("host", "show", "--host-name", HOST, "--database-url", url)
    assert shown.code == 0, shown.err
    assert shown.out.startswith(f"Host {HOST}: 0 SCSI hosts")


def test_discover_with_scsi_hosts_does_not_say_so(cli: Cli, url: str, tmp_path: Path) -> None:
    bed = Testbed.create(parent=tmp_path, prefix="fc-")
    topologies.fc_multipath(bed, luns=1)
    args = ("discover", "--host-name", HOST, "--root", str(bed.root), "--database-url", url)
    run = cli(*args, "--dry-run")
    assert run.code == 0, run.err
    assert "no SCSI hosts" not in run.out
    assert cli(*args, "--json").json()["no_scsi_hosts"] is False
