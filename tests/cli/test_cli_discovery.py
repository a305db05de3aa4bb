"""``tracker discover``, ``tracker host show|capture``, ``tracker journal`` and the
demo's discovery step, on every database.

Hosts are umockdev-style testbeds built below ``tmp_path``; nothing here reads
the real ``/sys`` or writes below ``/dev``.
"""

from __future__ import annotations

import io
import re
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tracker import demo
from tracker.db.store import Store
from tracker.discovery.discover import discover
from tracker.discovery.model import HostState
from tracker.host.sources import SysfsTreeSource
from tracker.reconcile import observed
from tracker.resources import Backend
from tracker.testing import topologies
from tracker.testing.databases import ThrowawayDatabase
from tracker.testing.testbed import Testbed

from .helpers import Cli, Run, url_of

HOST = "compute-1"
FC_COUNTS = {
    "scsi_host": 2,
    "fc_remote_port": 4,
    "iscsi_session": 0,
    "scsi_device": 8,
    "multipath_map": 2,
}
MIXED_COUNTS = {
    "scsi_host": 4,
    "fc_remote_port": 4,
    "iscsi_session": 2,
    "scsi_device": 12,
    "multipath_map": 4,
}


@pytest.fixture
def testbed(tmp_path: Path) -> Testbed:
    """An empty testbed below ``tmp_path`` (not in /dev/shm)."""
    return Testbed.create(parent=tmp_path, prefix="host-")


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory the commands' temporary files go to, to check they are removed."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    yield directory


def scan(testbed: Testbed, host_name: str = HOST) -> HostState:
    return discover(SysfsTreeSource(testbed.root).scan(), host_name)


def run_discover(cli: Cli, url: str, *args: str) -> Run:
    return cli("discover", "--host-name", HOST, "--database-url", url, *args)


def without_timestamps(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {
        kind: [{k: v for k, v in row.items() if k not in ("seen_at", "changed_at")} for row in rs]
        for kind, rs in rows.items()
    }


def one_line_error(run: Run, starts: str) -> None:
    assert run.code == 1, (run.out, run.err)
    assert run.out == ""
    assert run.err.startswith(f"error: {starts}"), run.err
    assert run.err.count("\n") == 1, "one line, no traceback"


# --- tracker discover -----------------------------------------------------------------


def test_discover_json_matches_the_topology(cli: Cli, url: str, testbed: Testbed) -> None:
    topologies.fc_multipath(testbed)
    run = run_discover(cli, url, "--root", str(testbed.root), "--json")
    assert run.code == 0, run.err
    assert run.err == ""  # no progress line off a terminal
    document = run.json()
    assert document["host_name"] == HOST
    assert document["dry_run"] is False
    assert document["counts"] == FC_COUNTS
    assert document["warning_count"] == 0 and document["warnings"] == []
    assert document["source"] == f"sysfs {testbed.root}"
    assert document["ambiguous_volumes"] == []
    changes = document["changes"]
    assert len(changes) == sum(FC_COUNTS.values())
    assert {c["event"] for c in changes} == {"appeared"}
    kinds = [c["kind"] for c in changes]
    assert {kind: kinds.count(kind) for kind in FC_COUNTS} == FC_COUNTS
    assert {c["key"] for c in changes if c["kind"] == "scsi_device"} == {
        str(hctl) for hctl in testbed.luns
    }
    assert document["rows_written"] > len(changes)  # rows + journal + host row

    again = run_discover(cli, url, "--root", str(testbed.root), "--json")
    assert again.code == 0, again.err
    assert again.json()["changes"] == []
    assert again.json()["rows_written"] == 0
    assert again.json()["counts"] == FC_COUNTS

    text = run_discover(cli, url, "--root", str(testbed.root))
    assert text.code == 0, text.err
    assert text.out == (
        f"{HOST}: 0 appeared, 0 changed, 0 vanished; 0 rows written; now 2 scsi hosts, "
        "4 fc remote ports, 0 iscsi sessions, 8 scsi devices, 2 multipath maps\n"
    )


def test_dry_run_writes_nothing(cli: Cli, url: str, testbed: Testbed) -> None:
    topologies.iscsi_multipath(testbed)
    run = run_discover(cli, url, "--root", str(testbed.root), "--dry-run", "--json")
    assert run.code == 0, run.err
    document = run.json()
    assert document["dry_run"] is True
    assert document["rows_written"] == 0
    assert len(document["changes"]) == 2 + 2 + 4 + 2  # hosts, sessions, paths, maps
    text = run_discover(cli, url, "--root", str(testbed.root), "--dry-run")
    assert text.code == 0, text.err
    assert text.out.splitlines()[-1].endswith(
        "(dry run); now 2 scsi hosts, 0 fc remote ports, "
        "2 iscsi sessions, 4 scsi devices, 2 multipath maps"
    )
    shown = cli("host", "show", "--host-name", HOST, "--database-url", url)
    assert shown.code == 5  # HostNotDiscovered: the dry run stored no host
    assert shown.err.startswith(f"error: host {HOST} has not been discovered"), shown.err
    assert cli("journal", "--json", "--database-url", url).json()["entries"] == []


def test_changes_are_printed(cli: Cli, url: str, testbed: Testbed) -> None:
    topology = topologies.fc_multipath(testbed)
    assert run_discover(cli, url, "--root", str(testbed.root)).code == 0
    rows = cli("host", "show", "--json", "--host-name", HOST, "--database-url", url).json()
    by_hctl = {r["hctl"]: r for r in rows["observed"]["scsi_device"]}
    failing, removed = topology.luns[0].hctl, topology.luns[1].hctl
    testbed.set_attribute(by_hctl[str(failing)]["sys_path"], "state", "offline")
    testbed.remove_lun(removed)

    run = run_discover(cli, url, "--root", str(testbed.root))
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert f"changed   scsi_device {failing} (state: 'running' -> 'offline')" in lines
    assert f"vanished  scsi_device {removed}" in lines
    assert any(line.startswith("changed   multipath_map ") for line in lines)
    assert not any(line.startswith("appeared") for line in lines)
    assert re.match(rf"{HOST}: 0 appeared, \d+ changed, 1 vanished; \d+ rows written;", lines[-1])


def test_progress_goes_to_a_terminal_only(
    cli: Cli, url: str, testbed: Testbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    topologies.fc_multipath(testbed)
    monkeypatch.setattr("tracker.progress.is_tty", lambda stream: True)
    run = run_discover(cli, url, "--root", str(testbed.root), "--json")
    assert run.code == 0, run.err
    records = len(SysfsTreeSource(testbed.root).scan())
    for text in (
        "\rscanning ...",
        f"\rscanning: {records} records",
        f"\rdiscovering: {records} records",
        "\rreconciling compare: 5/5 (100%)",
        "\rwriting: ",
    ):
        assert text in run.err
    assert run.err.endswith("\n")
    assert run.json()["counts"] == FC_COUNTS  # standard output stays clean JSON


def test_host_name_comes_from_the_configuration(
    cli: Cli, url: str, testbed: Testbed, tmp_path: Path
) -> None:
    topologies.fc_multipath(testbed)
    config = tmp_path / "tracker.conf"
    config.write_text(f"[discovery]\nhost_name = from-config\nroot = {testbed.root}\n")
    run = cli("--config-file", str(config), "discover", "--json", "--database-url", url)
    assert run.code == 0, run.err
    assert run.json()["host_name"] == "from-config"
    assert run.json()["counts"] == FC_COUNTS
    shown = cli("--config-file", str(config), "host", "show", "--database-url", url)
    assert shown.code == 0, shown.err
    assert shown.out.startswith("Host from-config: 2 SCSI hosts, 4 FC remote ports")


def test_discovery_warnings_are_reported_and_kept(cli: Cli, url: str, testbed: Testbed) -> None:
    topologies.single_path_sas(testbed)
    [device] = scan(testbed).scsi_devices
    testbed.set_attribute(device.sys_path, "vpd_pg83", "xx")  # a truncated page
    run = run_discover(cli, url, "--root", str(testbed.root), "--json")
    assert run.code == 0, run.err
    document = run.json()
    assert document["warning_count"] == 1
    [warning] = document["warnings"]
    assert (warning["sys_path"], warning["code"]) == (device.sys_path, "vpd")
    assert "VPD page 0x83" in warning["detail"]
    text = run_discover(cli, url, "--root", str(testbed.root), "--dry-run")
    assert text.out.splitlines()[-2:] == [
        "1 discovery warning:",
        f"  vpd: {device.sys_path}: {warning['detail']}",
    ]
    shown = cli("host", "show", "--host-name", HOST, "--database-url", url)
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert lines[2].startswith("host0 sas")
    assert lines[3].startswith("  LUN 0:0:0:0 SEAGATE ST2000NM0045, running, sda, 1.0 GiB")
    assert lines[-2:] == ["1 discovery warning:", f"  {device.sys_path}: {warning['detail']}"]


# --- capture and replay -------------------------------------------------------------------


def test_capture_replays_to_the_same_rows_on_a_fresh_database(
    cli: Cli,
    store: Store,
    url: str,
    testbed: Testbed,
    fresh_database: ThrowawayDatabase,
    tmp_path: Path,
    private_tmp: Path,
) -> None:
    topologies.mixed_fc_iscsi(testbed)
    assert run_discover(cli, url, "--root", str(testbed.root)).code == 0
    archive = tmp_path / "host.tar.gz"
    captured = cli("host", "capture", str(archive), "--root", str(testbed.root), "--json")
    assert captured.code == 0, captured.err
    summary = captured.json()
    assert summary["path"] == str(archive) and archive.is_file()
    assert summary["devices"] > 0 and summary["files"] > 0 and summary["bytes"] > 0
    assert summary["seconds"] >= 0
    text = cli("host", "capture", str(tmp_path / "again.tar.gz"), "--root", str(testbed.root))
    assert text.code == 0, text.err
    assert re.fullmatch(
        rf"captured {summary['devices']} devices from {testbed.root}/sys into \S+: "
        r"\d+ files, \d+ bytes, \d+\.\d\d s\n",
        text.out,
    )

    fresh = url_of(fresh_database)
    assert cli("db", "upgrade", "--database-url", fresh).code == 0
    replay = run_discover(cli, fresh, "--from", str(archive), "--json")
    assert replay.code == 0, replay.err
    assert replay.json()["counts"] == MIXED_COUNTS
    assert replay.json()["source"] == f"capture {archive}"
    assert list(private_tmp.iterdir()) == [], "the unpacked capture is removed"

    replayed = Store(fresh, auto_upgrade="never")
    try:
        assert without_timestamps(observed(replayed, HOST)) == without_timestamps(
            observed(store, HOST)
        )
    finally:
        replayed.dispose()


def test_capture_errors(cli: Cli, tmp_path: Path, testbed: Testbed) -> None:
    topologies.fc_multipath(testbed)
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_error(
        cli("host", "capture", str(tmp_path / "x.tar.gz"), "--root", str(empty)),
        "no sysfs tree under",
    )
    out = tmp_path / "small.tar.gz"
    run = cli("host", "capture", str(out), "--root", str(testbed.root), "--max-bytes", "100")
    one_line_error(run, "capture stopped: it exceeded its bound of 100 bytes")
    assert not out.exists()
    assert list(tmp_path.glob(".capture-*")) == []
    run = cli("host", "capture", str(tmp_path / "no" / "dir.tar.gz"), "--root", str(testbed.root))
    one_line_error(run, "cannot write")
    assert cli("host", "capture", str(out), "--max-bytes", "0").code == 2


def _tarball(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("garbage", "{path} is not a readable capture"),
        ("truncated", "{path} is not a readable capture"),
        ("dotdot", "refusing capture member '../evil': '..' in name"),
        ("absolute", "refusing capture member '/etc/evil': absolute or malformed name"),
        ("link", "refusing capture member 'sys/escape': link to '../../etc' leaves root"),
        ("no-sys", "{path} is not a sysfs capture"),
        ("missing", "cannot read {path}"),
    ],
)
def test_a_corrupt_or_unsafe_capture_is_refused(
    cli: Cli, tmp_path: Path, private_tmp: Path, kind: str, expected: str
) -> None:
    path = tmp_path / f"{kind}.tar.gz"
    if kind == "garbage":
        path.write_bytes(b"this is not a tarball\n" * 10)
    elif kind == "truncated":
        _tarball(path, {"sys/devices/uevent": b"x" * 4096})
        path.write_bytes(path.read_bytes()[:40])
    elif kind == "dotdot":
        _tarball(path, {"sys/ok": b"", "../evil": b"x"})
    elif kind == "absolute":
        _tarball(path, {"/etc/evil": b"x"})
    elif kind == "link":
        _tarball(path, {}, links={"sys/escape": "../../etc"})
    elif kind == "no-sys":
        _tarball(path, {"etc/hostname": b"x"})
    # the store is never opened: an unreadable capture fails first
    url = f"sqlite:///{tmp_path / 'unused.sqlite'}"
    run = cli("discover", "--from", str(path), "--database-url", url)
    one_line_error(run, expected.format(path=path))
    assert list(private_tmp.iterdir()) == [], "nothing unpacked is left behind"
    assert not (tmp_path / "evil").exists()


def test_pyudev_source_with_another_root_is_refused(
    cli: Cli, tmp_path: Path, testbed: Testbed
) -> None:
    config = tmp_path / "tracker.conf"
    config.write_text("[discovery]\nsource = pyudev\n")
    url = f"sqlite:///{tmp_path / 'unused.sqlite'}"
    run = cli(
        "--config-file", str(config), "discover", "--root", str(testbed.root), "--database-url", url
    )
    one_line_error(run, f"invalid root: '{testbed.root}' (libudev always reads the real /sys)")
    config.write_text(f"[discovery]\nsource = pyudev\nroot = {testbed.root}\n")
    run = cli("--config-file", str(config), "discover", "--database-url", url)
    one_line_error(run, "invalid root:")
    assert not (tmp_path / "unused.sqlite").exists()


def test_from_and_root_exclude_each_other(cli: Cli, tmp_path: Path) -> None:
    run = cli("discover", "--from", "a.tar.gz", "--root", str(tmp_path))
    assert run.code == 2
    assert "not allowed with argument" in run.err


# --- tracker host show --------------------------------------------------------------------


def test_host_show_links_volume_names(
    cli: Cli, url: str, testbed: Testbed, backend: Backend
) -> None:
    topologies.mixed_fc_iscsi(testbed)
    state = scan(testbed)
    fc_map, iscsi_map = state.multipath_maps[0], state.multipath_maps[-1]
    fc_lun = state.devices_for_wwid(fc_map.wwid)[0]
    iscsi_lun = state.devices_for_wwid(iscsi_map.wwid)[0]
    assert fc_lun.transport_ids is not None and iscsi_lun.transport_ids is not None
    by_wwn = backend.create_volume(1, "san-fc", status="available", wwn=fc_lun.identity.wwn)
    by_serial = backend.create_volume(1, None, status="available", serial=iscsi_lun.identity.serial)
    assert run_discover(cli, url, "--root", str(testbed.root)).code == 0

    run = cli("host", "show", "--json", "--host-name", HOST, "--database-url", url)
    assert run.code == 0, run.err
    document = run.json()
    assert document["host_name"] == HOST
    assert document["generation"] == 1
    assert document["warnings"] == []
    rows = document["observed"]
    assert {kind: len(rs) for kind, rs in rows.items()} == MIXED_COUNTS
    assert all("digest" not in row for rs in rows.values() for row in rs)
    fc_paths = [r for r in rows["scsi_device"] if r["wwid"] == fc_map.wwid]
    assert len(fc_paths) == 4
    assert {(r["volume_id"], r["volume_name"]) for r in fc_paths} == {(by_wwn.id, "san-fc")}
    maps = {r["wwid"]: r for r in rows["multipath_map"]}
    assert (maps[fc_map.wwid]["volume_id"], maps[fc_map.wwid]["volume_name"]) == (
        by_wwn.id,
        "san-fc",
    )
    assert maps[iscsi_map.wwid]["volume_id"] == by_serial.id
    assert maps[iscsi_map.wwid]["volume_name"] is None  # linked, but unnamed
    unlinked = [r for r in rows["scsi_device"] if r["wwid"] not in (fc_map.wwid, iscsi_map.wwid)]
    assert unlinked and all(r["volume_id"] is None and r["volume_name"] is None for r in unlinked)

    text = cli("host", "show", "--host-name", HOST, "--database-url", url)
    assert text.code == 0, text.err
    lines = text.out.splitlines()
    assert lines[0] == (
        f"Host {HOST}: 4 SCSI hosts, 4 FC remote ports, 2 iSCSI sessions, 12 LUN paths, "
        "4 multipath maps"
    )
    assert lines[2].startswith("host0 fc (qla2xxx), WWPN 2100001b32000000, running")
    assert lines[3].startswith("  FC remote port 500a098000000000 (rport-0:0-0), Online")
    assert re.match(r"    LUN 0:0:0:0 \S.*, running, sda, 1\.0 GiB, WWID \w+$", lines[4])
    assert lines[5] == (
        f"      multipath {fc_map.name} ({fc_map.block_name}), 4 paths (4 active) "
        f"-> volume 'san-fc' ({by_wwn.id})"
    )
    assert any(
        line.startswith(
            "  iSCSI session 1: iqn.2010-10.org.openstack:volume-5f1e0c2a @ 192.0.2.10:3260"
        )
        for line in lines
    )
    assert any(line.startswith("host2 iscsi (iscsi_tcp), initiator iqn.") for line in lines)
    assert text.out.count(f"-> volume (unnamed) ({by_serial.id})") == 2  # 2 iSCSI paths


def test_host_show_of_an_unknown_host(cli: Cli, url: str) -> None:
    # exit status 5 and the `tracker discover` hint: tests/cli/test_cli_host_context.py
    run = cli("host", "show", "--host-name", "nowhere", "--database-url", url)
    assert (run.code, run.out) == (5, "")
    assert run.err.startswith("error: host nowhere has not been discovered"), run.err


def test_host_needs_an_action(cli: Cli) -> None:
    run = cli("host")
    assert run.code == 2
    assert "usage: tracker host" in run.err


# --- tracker journal ------------------------------------------------------------------------


def test_journal_lists_the_changes(cli: Cli, url: str, testbed: Testbed) -> None:
    topology = topologies.fc_multipath(testbed)
    first = run_discover(cli, url, "--root", str(testbed.root), "--json").json()
    removed = topology.luns[0].hctl
    testbed.remove_lun(removed)
    second = run_discover(cli, url, "--root", str(testbed.root), "--json").json()

    run = cli("journal", "--json", "--host-name", HOST, "--database-url", url)
    assert run.code == 0, run.err
    entries = run.json()["entries"]
    assert len(entries) == len(first["changes"]) + len(second["changes"])
    assert [(e["event"], e["kind"], e["key"]) for e in entries[-len(second["changes"]) :]] == [
        (c["event"], c["kind"], c["key"]) for c in second["changes"]
    ]
    assert all(e["host_name"] == HOST for e in entries)
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids), "newest last"
    changed_map = next(e for e in entries if e["event"] == "changed")
    assert changed_map["kind"] == "multipath_map" and "paths" in changed_map["detail"]

    limited = cli("journal", "--limit", "1", "--json", "--database-url", url).json()["entries"]
    assert limited == entries[-1:]
    text = cli("journal", "--host-name", HOST, "--database-url", url)
    assert text.code == 0, text.err
    lines = text.out.splitlines()
    assert len(lines) == len(entries)
    assert any(
        re.fullmatch(
            rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ {HOST} vanished  scsi_device {removed}", line
        )
        for line in lines
    ), lines
    assert any(" changed   multipath_map " in line and "(paths: [" in line for line in lines)
    none = cli("journal", "--host-name", "elsewhere", "--database-url", url)
    assert none.out == "no journal entries for elsewhere\n"
    assert cli("journal", "--limit", "0", "--database-url", url).code == 2


# --- help -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--help"], ["discover", "host", "journal"]),
        (["discover", "--help"], ["--from", "--root", "--host-name", "--dry-run", "--json"]),
        (["host", "--help"], ["show", "capture"]),
        (["host", "show", "--help"], ["--host-name", "--json", "--database-url"]),
        (["host", "capture", "--help"], ["FILE", "--root", "--max-bytes", "--max-seconds"]),
        (["journal", "--help"], ["--host-name", "--limit", "--json"]),
    ],
)
def test_help(cli: Cli, argv: list[str], expected: list[str]) -> None:
    run = cli(*argv)
    assert run.code == 0
    for word in expected:
        assert word in run.out


# --- the demo ---------------------------------------------------------------------------------


def test_demo_discovery_step(tmp_path: Path) -> None:
    out = io.StringIO()
    steps = [step for step in demo.STEPS if step.name in ("track", "discovery", "status")]
    result = demo.run(out, workdir=tmp_path, steps=steps)
    text = out.getvalue()
    facts = result.facts
    assert "\n2. Discovery\n" in text
    assert "(not the real /sys)" in text
    paths = int(re.search(r"volume\.host_devices: (\d+) paths", text).group(1))  # type: ignore[union-attr]
    assert paths == len(facts["discovery_paths"]) == 4
    for path in facts["discovery_paths"]:
        assert re.search(rf"^  {path} \(\d+:\d+:\d+:\d+, fc target \w+, running\)$", text, re.M)
    mapped = re.search(r"volume\.multipath_device: (\S+) at (\S+) \((dm-\d+), 4 paths\)", text)
    assert mapped, text
    assert (
        (mapped.group(1), mapped.group(2))
        == (
            facts["discovery_map_name"],
            facts["discovery_map_path"],
        )
        == ("mpatha", "/dev/mapper/mpatha")
    )
    assert re.search(
        r"A second reconcile of the unchanged host found 0 changes and wrote 0 rows", text
    )
    assert facts["discovery_second_rows_written"] == 0
    assert facts["discovery_second_changes"] == 0
    assert facts["discovery_changes"] == sum(FC_COUNTS.values())
    assert "Backend demo-san (FibreChannelDemoDriver): 1 volume" in text
    assert list(tmp_path.iterdir()) == [], "the testbed goes with the store's directory"


def test_full_demo_has_discovery_before_the_status_tree(cli: Cli, tmp_path: Path) -> None:
    run = cli("demo", "--workdir", str(tmp_path))
    assert run.code == 0, run.err
    headings = re.findall(r"^\d+\. (.+)$", run.out, re.M)
    assert headings[-2:] == ["Discovery", "The status tree"]
    assert "A second reconcile of the unchanged host found 0 changes and wrote 0 rows." in run.out
    assert "volume.host_devices: 4 paths:" in run.out
    assert "volume.multipath_device: mpatha at /dev/mapper/mpatha (dm-0, 4 paths)" in run.out
