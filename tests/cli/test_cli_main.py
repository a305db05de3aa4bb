"""The ``tracker`` command itself: help, exit codes, error reporting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tracker import __version__
from tracker.cli import main as cli_main

from .helpers import Cli

COMMANDS = ("status", "db", "dump", "load", "demo")


def test_help_lists_every_command(cli: Cli) -> None:
    run = cli("--help")
    assert run.code == 0
    for command in COMMANDS:
        assert f"    {command} " in run.out
    for option in ("--config-file", "--config-dir", "--database-url"):
        assert option in run.out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["db", "--help"], ["upgrade", "downgrade", "current", "history", "check"]),
        (["status", "--help"], ["--backend", "--json", "--database-url"]),
        (["dump", "--help"], ["--backend", "--output", "--database-url"]),
        (["load", "--help"], ["FILE", "--json"]),
        (["demo", "--help"], ["--keep", "--workdir"]),
        (["db", "current", "--help"], ["--json"]),
        (["db", "check", "--help"], ["--json"]),
    ],
)
def test_command_help(cli: Cli, argv: list[str], expected: list[str]) -> None:
    run = cli(*argv)
    assert run.code == 0
    for word in expected:
        assert word in run.out


def test_version(cli: Cli) -> None:
    run = cli("--version")
    assert run.code == 0
    assert __version__ in run.out + run.err


@pytest.mark.parametrize(
    "argv",
    [[], ["nope"], ["db"], ["db", "sideways"], ["status", "--bogus"], ["load"]],
)
def test_argument_errors_exit_2(cli: Cli, argv: list[str]) -> None:
    run = cli(*argv)
    assert run.code == 2
    assert "usage: tracker" in run.err
    assert "Traceback" not in run.err


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://root@127.0.0.1:1/nothing", "cannot open store postgresql"),
        ("mysql+pymysql://root@127.0.0.1:1/nothing", "cannot open store mysql"),
        ("nosuchdriver://somewhere/db", "bad configuration for [database] connection"),
        ("not a url", "bad configuration for [database] connection"),
    ],
)
@pytest.mark.parametrize("command", [["status"], ["db", "current"], ["dump"]])
def test_unusable_database_url(cli: Cli, command: list[str], url: str, expected: str) -> None:
    run = cli(*command, "--database-url", url)
    assert run.code == 1
    assert run.out == ""
    assert run.err.startswith(f"error: {expected}")
    assert run.err.count("\n") == 1, "one line, no traceback"


def test_password_is_hidden_in_errors(cli: Cli) -> None:
    run = cli("status", "--database-url", "postgresql+psycopg://root:s3cret@127.0.0.1:1/db")
    assert run.code == 1
    assert "s3cret" not in run.err
    assert "***" in run.err


def test_missing_config_file(cli: Cli, tmp_path: Path) -> None:
    run = cli("--config-file", str(tmp_path / "absent.conf"), "status")
    assert run.code == 1
    assert run.err.startswith("error: configuration: ")
    assert "absent.conf" in run.err


def test_bad_value_in_config_file(cli: Cli, tmp_path: Path) -> None:
    conf = tmp_path / "tracker.conf"
    conf.write_text(
        f"[database]\nconnection = sqlite:///{tmp_path}/s.sqlite\nauto_upgrade = maybe\n"
    )
    run = cli("--config-file", str(conf), "status")
    assert run.code == 1
    assert run.err.startswith("error: configuration: ")
    assert "maybe" in run.err
    assert run.err.count("\n") == 1


def test_no_global_config_object() -> None:
    """Each run builds its own ConfigOpts: parsing twice does not clash."""
    first = cli_main.build_config()
    second = cli_main.build_config()
    assert first is not second
    first(["db", "history"], project="tracker", default_config_files=[])
    second(["status", "--json"], project="tracker", default_config_files=[])
    assert first.command.name == "db"
    assert second.command.name == "status"
    assert not any(type(value).__name__ == "ConfigOpts" for value in vars(cli_main).values())


def test_python_dash_m_tracker(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tracker", "db", "history", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"revision"' in result.stdout
