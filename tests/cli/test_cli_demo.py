"""``tracker demo``: the narrated tour, in-process and as the installed command."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracker import demo
from tracker.db.store import Store
from tracker.resources import Backend

from .helpers import Cli


def _number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the narrative:\n{text}"
    return int(match.group(1))


def _check_narrative(out: str) -> None:
    """What the demo must show, read from its text only."""
    # (a) lazy loading
    assert _number(r"First access to backend\.volumes: \d+ volumes, cost (\d+) SQL quer", out) >= 1
    assert _number(r"Second access to backend\.volumes: \d+ volumes, cost (\d+) SQL quer", out) == 0
    # (b) refresh after a change made by another process
    written = re.search(r"A second process .* renamed it to '([^']+)'\.", out)
    cached = re.search(
        r"Before refresh\(\), this process still sees the cached name: '([^']+)'", out
    )
    refreshed = re.search(r"After refresh\(\), the name is '([^']+)'\.", out)
    assert written and cached and refreshed, out
    assert refreshed.group(1) == written.group(1)
    assert cached.group(1) != written.group(1)
    assert re.search(r"same Python object as before .*: True\.", out)
    # (c) local_attach
    assert "After volume.refresh(), local_attach is still that connection: True." in out
    assert "After the restart: local_attach is None." in out
    assert "The connection itself is still tracked in the store: True" in out
    # (d) the status tree, in six queries (four tracked tables, two observed), listing
    # every volume
    assert _number(r"read the whole tree in (\d+) SQL quer", out) == 6
    tree = out[out.index("Backend demo-lvm (LVMVolumeDriver): 3 volumes") :]
    volume_ids = re.findall(r"volume '[^']+', \d+ GiB, id ([0-9a-f-]{36})", out)
    assert len(volume_ids) == 3
    for volume_id in volume_ids:
        assert f"Volume {volume_id} " in tree
    assert f" {written.group(1)} 1GiB" in tree
    for heading in (
        "1. Tracking",
        "2. Lazy loading",
        "3. refresh()",
        "4. local_attach",
        "5. Discovery",
        "6. The status tree",
    ):
        assert f"\n{heading}" in out


def test_demo_in_process(cli: Cli, tmp_path: Path) -> None:
    run = cli("demo", "--workdir", str(tmp_path))
    assert run.code == 0, run.err
    _check_narrative(run.out)
    assert run.out.rstrip().endswith("Done. The throw-away store was removed.")
    assert list(tmp_path.iterdir()) == [], "the store's directory is removed"


def test_demo_keep(cli: Cli, tmp_path: Path) -> None:
    run = cli("demo", "--keep", "--workdir", str(tmp_path / "new"))
    assert run.code == 0, run.err
    [kept] = (tmp_path / "new").iterdir()
    assert f"The store is kept in {kept}" in run.out
    store = Store(f"sqlite:///{kept / 'tracker.sqlite'}", auto_upgrade="never")
    try:
        backend = Backend.load(store, demo.BACKEND_NAME)
        assert sorted(str(v.name) for v in backend.volumes) == [
            "db-data",
            "logs",
            demo.RENAMED_TO,
        ]
    finally:
        store.dispose()


def test_demo_facts_and_registry(tmp_path: Path) -> None:
    mine = Backend("mine", store=Store(f"sqlite:///{tmp_path / 'mine.sqlite'}"))
    out = io.StringIO()
    result = demo.run(out, workdir=tmp_path / "demo")
    facts = result.facts
    assert facts["first_access_queries"] >= 1
    assert facts["second_access_queries"] == 0
    assert facts["name_before_refresh"] == "scratch"
    assert facts["name_after_refresh"] == facts["renamed_to"] == demo.RENAMED_TO
    assert facts["same_object"] is True
    assert facts["local_attach_after_refresh"] is True
    assert facts["local_attach_after_restart"] is None
    assert facts["connection_tracked_after_restart"] is True
    assert facts["status_queries"] == 6
    assert not result.workdir.exists()
    # the demo gave the registry back as it found it
    assert Backend.backends == {"mine": mine}
    mine.store.dispose()


def test_demo_steps_are_pluggable(tmp_path: Path) -> None:
    seen: list[int] = []

    def count_volumes(ctx: demo.DemoContext) -> None:
        seen.append(len(ctx.require_backend().volumes))
        ctx.say("discovery would go here")
        ctx.facts["custom"] = True

    steps = [demo.STEPS[0], demo.Step("custom", "A later step", count_volumes), demo.STEPS[-1]]
    out = io.StringIO()
    result = demo.run(out, workdir=tmp_path, steps=steps)
    text = out.getvalue()
    assert "\n2. A later step\n" in text
    assert "\n3. The status tree\n" in text
    assert "discovery would go here" in text
    assert seen == [3]
    assert result.facts["custom"] is True
    assert "renamed_to" not in result.facts


def test_failing_step_still_cleans_up(tmp_path: Path) -> None:
    def explode(ctx: demo.DemoContext) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        demo.run(io.StringIO(), workdir=tmp_path, steps=[demo.Step("x", "X", explode)])
    assert list(tmp_path.iterdir()) == []
    assert Backend.backends == {}


@pytest.mark.slow
def test_installed_tracker_demo(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "tracker"
    command = [str(script)] if script.exists() else [shutil.which("tracker") or "tracker"]
    started = time.monotonic()
    result = subprocess.run(
        [*command, "demo", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    _check_narrative(result.stdout)
    assert list(tmp_path.iterdir()) == []
    assert elapsed < 30, f"the demo took {elapsed:.1f}s"
