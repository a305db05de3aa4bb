"""``tracker paths|orphans|verify-detach|verify-attach``: output, JSON, exit statuses for gates."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tracker.cli.main import main
from tracker.cli.paths import EXIT_FINDINGS, EXIT_HAZARD

from .fleet import WWN0, WWN1, Fleet

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(params=["sqlite"])
def dialect(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def tracker(fleet: Fleet, capsys: pytest.CaptureFixture[str]) -> Run:
    url = fleet.store.url.render_as_string(hide_password=False)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--database-url", url, *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_gates_pass_on_a_clean_fleet_and_fail_on_leftovers(fleet: Fleet, tracker: Run) -> None:
    fleet.host("h1")
    a, b = fleet.volume(WWN0, "a"), fleet.volume(WWN1, "b")
    fleet.attach(a, "h1", 0)
    fleet.attach(b, "h1", 1)
    code, out, _ = tracker("orphans")
    assert (code, out) == (0, "0 findings on 1 hosts\n")
    code, out, _ = tracker("verify-attach", a.id, "--host", "h1")
    assert code == 0
    assert out == f"volume {a.id} on h1: ok (3 paths, 2 expected)\n"
    code, out, _ = tracker("paths", a.id, "--json")
    assert code == 0
    document = json.loads(out)
    assert [p["path"] for p in document["hosts"][0]["paths"]][-3:] == [
        "/dev/sda",
        "/dev/sdc",
        "/dev/mapper/mpatha",
    ]
    fleet.detach(a, "h1")
    code, out, _ = tracker("verify-detach", a.id)
    assert code == EXIT_FINDINGS
    lines = out.splitlines()
    assert lines[0].startswith("LEFTOVER leftover-device h1 /dev/sda: same WWID as volume ")
    assert lines[-1] == f"volume {a.id}: 3 findings on 1 hosts"
    code, out, _ = tracker("verify-detach", a.id, "--json")
    assert code == EXIT_FINDINGS
    assert [f["kind"] for f in json.loads(out)["findings"]] == [
        "leftover-device",
        "leftover-device",
        "leftover-map",
    ]
    code, out, _ = tracker("verify-attach", a.id, "--host", "h1", "--json")
    assert code == EXIT_FINDINGS
    assert json.loads(out)["findings"][0]["kind"] == "not-attached"


def test_a_hazard_exits_4(fleet: Fleet, tracker: Run) -> None:
    bed = fleet.host("h1")
    bed.add_multipath_path(0, "sdb")
    fleet.sync("h1")
    code, out, _ = tracker("orphans", "--host", "h1", "--json")
    assert code == EXIT_HAZARD
    assert json.loads(out)["findings"][0]["severity"] == "hazard"


def test_errors_are_one_line_and_create_nothing(
    fleet: Fleet, tracker: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet.host("h1")
    code, _, err = tracker("verify-detach", "no-such-volume")
    assert code == 1 and err == "error: volume no-such-volume not found\n"
    code, _, err = tracker("orphans", "--host", "nowhere")
    assert code == 5 and err.startswith("error: host nowhere has not been discovered")
    code, _, _ = tracker("verify-attach", "x")  # --host is required
    assert code == 2
    missing = tmp_path / "none.db"
    assert main(["--database-url", f"sqlite:///{missing}", "orphans"]) == 1
    assert not missing.exists()
