"""Start-up cost of the ``tracker`` command: what a run imports.

``tracker --help``, a bad argument or a command's own ``--help`` must not load
SQLAlchemy, Alembic, pyudev or tenacity; a command opening a store at head
checks its revision without Alembic. Each case runs in a fresh interpreter,
since this test process has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tracker.db.store import Store

#: Modules a run that does not need them must leave unimported.
HEAVY = ("alembic", "sqlalchemy", "pyudev", "tenacity")

_PROBE = """
import json, sys
from tracker.cli.main import main
code = main(json.loads(sys.argv[1]))
sys.stdout.flush()
print(json.dumps({"code": code, "loaded": sorted(
    name for name in json.loads(sys.argv[2]) if name in sys.modules)}), file=sys.stderr)
"""


def _probe(argv: list[str], watched: tuple[str, ...], tmp_path: Path) -> tuple[int, str, list[str]]:
    """Run ``main(argv)`` in a fresh interpreter.

    :returns: the exit code, the standard output and which of ``watched`` were imported.
    """
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(argv), json.dumps(list(watched))],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path)},
        check=False,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], done.stdout, report["loaded"]


@pytest.mark.parametrize(
    ("argv", "code", "shown"),
    [
        (["--help"], 0, "discover"),
        (["discover", "--help"], 0, "--root"),
        (["host", "capture", "--help"], 0, "--max-bytes"),
        (["db", "upgrade", "--help"], 0, "REVISION"),
        (["status", "--help"], 0, "--backend"),
        (["no-such-command"], 2, ""),
    ],
)
def test_help_and_bad_arguments_import_no_heavy_library(
    tmp_path: Path, argv: list[str], code: int, shown: str
) -> None:
    exit_code, out, loaded = _probe(argv, (*HEAVY, "tracker.db.store"), tmp_path)
    assert exit_code == code
    assert shown in out
    assert loaded == []


@pytest.fixture
def current_store_url(tmp_path: Path) -> str:
    """An SQLite store at the code's head."""
    url = f"sqlite:///{tmp_path / 'current.sqlite'}"
    Store(url).dispose()
    return url


def test_a_store_at_head_is_checked_without_alembic(tmp_path: Path, current_store_url: str) -> None:
    exit_code, out, loaded = _probe(
        ["status", "--json", "--database-url", current_store_url], HEAVY, tmp_path
    )
    assert exit_code == 0
    assert json.loads(out)["backends"] == []
    assert "sqlalchemy" in loaded  # the store was opened
    assert "alembic" not in loaded


def test_db_commands_still_use_alembic(tmp_path: Path, current_store_url: str) -> None:
    exit_code, out, loaded = _probe(["db", "history", "--json"], HEAVY, tmp_path)
    assert exit_code == 0
    assert json.loads(out)[-1]["head"] is True
    assert "alembic" in loaded
