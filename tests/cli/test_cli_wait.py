"""``tracker wait``: conditions from the command line, exit statuses, JSON, progress.

The command runs in-process on a live testbed (``--root``); device events
reach it through ``--events-file`` (netlink is never opened here), appended
by the scan responder that answers its rescans.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tracker.cli.wait import CONDITIONS, _WaitLine
from tracker.db.store import Store
from tracker.predicates import DiskExists
from tracker.resources import Backend
from tracker.testing.eventfile import append_events
from tracker.testing.live import LiveTestbed
from tracker.testing.scanfifo import ScanRequest, ScanResponder
from tracker.testing.specs import Hctl
from tracker.testing.topologies import (
    _Allocator,
    _lun,
    fc_multipath,
    iscsi_multipath,
    synthetic_identity,
)
from tracker.testing.uevents import Uevent
from tracker.waiting import WaitProgress

from .helpers import Cli

INITIATOR0 = "21:00:00:1b:32:00:00:00"
TARGET01 = "0x500A098000000001"


@pytest.fixture(params=["sqlite"])
def dialect(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


class Bed:
    def __init__(self, root: Path) -> None:
        self.live = LiveTestbed(root, deliver=False)
        fc_multipath(self.live, luns=1)
        self.allocator = _Allocator(self.live)
        self.events_file = root / "events.jsonl"
        self.events_file.touch()
        self.responder = ScanResponder(self.live, delay=0.02, listener=self.append)

    def append(self, events: Sequence[Uevent]) -> None:
        append_events(self.events_file, events)

    def lun(self, hctl: Hctl, index: int) -> object:
        identity = synthetic_identity(index)
        return _lun(hctl, identity, self.allocator.disk(identity))


@pytest.fixture
def bed(bed_dir: Path) -> Iterator[Bed]:
    made = Bed(bed_dir)
    with made.responder:
        yield made


@pytest.fixture
def bed_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "bed"
    directory.mkdir()
    return directory


@pytest.fixture
def wait(cli: Cli, url: str, bed: Bed) -> Cli:
    def run(*args: str) -> object:
        source = () if "--poll" in args else ("--events-file", str(bed.events_file))
        return cli(
            "--database-url", url, "wait", *args,
            "--root", str(bed.live.root), "--host-name", "h", *source,
        )  # fmt: skip

    return run  # type: ignore[return-value]


def test_disk_exists_holds_once_the_rescan_made_it_appear(wait: Cli, bed: Bed) -> None:
    bed.responder.schedule(0, bed.lun(Hctl(0, 0, 1, 5), 77))  # type: ignore[arg-type]
    run = wait("disk-exists", "80AB0000004D", "--timeout", "10")
    assert run.code == 0, run.err
    assert run.out.startswith("DiskExists('80AB0000004D') holds after ")
    assert run.out.rstrip().endswith("(0:0:1:5)")
    assert "1 rescan" in run.out
    assert bed.responder.requests == [
        ScanRequest(0, None, None, None),
        ScanRequest(1, None, None, None),
    ]


def test_json_gives_the_result_document(wait: Cli, bed: Bed) -> None:
    bed.responder.schedule(0, bed.lun(Hctl(0, 0, 1, 6), 78))  # type: ignore[arg-type]
    run = wait("fc-mapping-exists", INITIATOR0, TARGET01, "6", "--json")
    assert run.code == 0, run.err
    document = run.json()
    assert document["holds"] is True
    assert document["predicate"] == (
        "FiberChannelMappingExists('0x2100001b32000000', '0x500a098000000001', 6)"
    )
    assert document["state"].startswith("mapped: ")
    assert document["mode"] == "events"
    assert document["rescans"] == 1 and document["events"] > 0
    # targeted at the target behind the remote port
    assert bed.responder.requests == [ScanRequest(0, 0, 1, None)]


def test_a_timeout_exits_124_with_the_last_state(wait: Cli) -> None:
    run = wait("disk-exists", "NOSUCH", "--timeout", "0.3")
    assert run.code == 124
    assert run.out == ""
    assert run.err.startswith("error: timed out after 0.3 s (timeout 0.3 s) waiting for ")
    assert run.err.rstrip().endswith("no disk with serial 'NOSUCH' on h")
    run = wait("paths-at-least", "80AB00000000", "5", "--timeout", "0.2", "--json")
    assert run.code == 124
    error = json.loads(run.err)["error"]
    assert error["type"] == "WaitTimeout"
    assert error["last_state"] == "mpatha: 4 of 4 paths active (needs 5)"
    assert error["predicate"] == "MultipathPathsAtLeast('80AB00000000', 5)"
    assert error["timeout"] == 0.2


def test_no_rescan_writes_no_scan_request(wait: Cli, bed: Bed) -> None:
    bed.responder.schedule(0, bed.lun(Hctl(0, 0, 1, 7), 79))  # type: ignore[arg-type]
    run = wait("disk-exists", "80AB0000004F", "--timeout", "0.3", "--no-rescan")
    assert run.code == 124
    assert bed.responder.requests == []


def test_poll_mode_finds_a_disk_without_events(wait: Cli, bed: Bed) -> None:
    bed.responder.listener = None
    bed.responder.schedule(0, bed.lun(Hctl(0, 0, 1, 8), 80))  # type: ignore[arg-type]
    run = wait("disk-exists", "80AB00000050", "--poll", "--json", "--timeout", "10")
    assert run.code == 0, run.err
    assert run.json()["mode"] == "polling"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("fc-mapping-exists", "0a:0b:0c:0d:0e:0f:0g:0h", TARGET01, "0"), "initiator_wwn"),
        (("fc-mapping-not-exists", INITIATOR0, "01020304060708", "0"), "target_wwn"),
        (("iscsi-session", "iqn.x", "--portal", "[::1"), "portal"),
    ],
)
def test_an_invalid_argument_is_an_error_before_anything_runs(
    wait: Cli, bed: Bed, args: tuple[str, ...], field: str
) -> None:
    run = wait(*args)
    assert run.code == 1
    assert run.err.startswith(f"error: invalid {field}: ")
    assert bed.responder.requests == []


@pytest.mark.parametrize(
    "args",
    [
        ("fc-mapping-exists", INITIATOR0, TARGET01, "x"),
        ("fc-mapping-exists", INITIATOR0, TARGET01, "-1"),
        ("paths-at-least", "ID", "0"),
        ("disk-exists",),
        ("no-such-condition", "x"),
        ("disk-exists", "x", "--timeout", "soon"),
        ("disk-exists", "x", "--poll", "--events-file", "/nonexistent"),
    ],
)
def test_bad_arguments_exit_2(wait: Cli, args: tuple[str, ...]) -> None:
    assert wait(*args).code == 2


def test_volume_conditions_take_a_tracked_volume_id(wait: Cli, store: Store, bed: Bed) -> None:
    backend = Backend("lvm", store=store, driver="X")
    volume = backend.create_volume(1, "data", wwn=synthetic_identity(0).id_serial)
    run = wait("volume-attached", volume.id, "--json")
    assert run.code == 0, run.err
    assert run.json()["state"].startswith("volume data attached: /dev/mapper/mpatha")
    assert wait("volume-detached", volume.id, "--timeout", "0.2").code == 124
    missing = wait("volume-attached", "no-such-volume", "--timeout", "1")
    assert missing.code == 1
    assert missing.err == "error: volume no-such-volume not found\n"


def test_iscsi_session_with_a_portal(cli: Cli, url: str, tmp_path: Path) -> None:
    (tmp_path / "iscsi").mkdir()
    live = LiveTestbed(tmp_path / "iscsi", deliver=False)
    iscsi_multipath(live, luns=1)
    events = tmp_path / "events.jsonl"
    events.touch()
    common = ["--root", str(live.root), "--host-name", "h", "--events-file", str(events)]
    iqn = "iqn.2010-10.org.openstack:volume-5f1e0c2a"
    run = cli(
        "--database-url", url, "wait", "iscsi-session", iqn, "--portal", "192.0.2.11", *common
    )
    assert run.code == 0, run.err
    assert run.out.rstrip().endswith("logged in: session 2 to 192.0.2.11:3260")
    other = cli(
        "--database-url",
        url,
        "wait",
        "iscsi-session",
        iqn,
        "--portal",
        "192.0.2.99",
        "--timeout",
        "0.2",
        *common,
    )
    assert other.code == 124


def test_every_condition_has_help(cli: Cli) -> None:
    for name in CONDITIONS:
        assert cli("wait", name, "--help").code == 0
    run = cli("wait", "--help")
    assert run.code == 0
    assert all(name in run.out for name in CONDITIONS)


def test_the_progress_line_shows_time_events_rescans_and_state() -> None:
    stream = io.StringIO()
    line = _WaitLine()
    line._stream, line._enabled = stream, True
    line.show(WaitProgress(DiskExists("X"), 1.25, 3, 1, "present but offline", False))
    assert stream.getvalue() == (
        "\rwaiting 1.2 s for DiskExists('X'): 3 events, 1 rescan; present but offline\x1b[K"
    )
    line.finish()
    assert stream.getvalue().endswith("\n")
    quiet = io.StringIO()
    off = _WaitLine()
    off._stream = quiet  # not a terminal: nothing is written
    off.show(WaitProgress(DiskExists("X"), 1.0, 0, 0, "x", True))
    assert quiet.getvalue() == ""
