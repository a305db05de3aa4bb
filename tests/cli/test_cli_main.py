"""The ``tracker`` command itself: help, exit codes, error reporting."""

from __future__ import annotations

import json
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
        ("nosuchdriver://somewhere/db", "bad configuration for --database-url"),
        ("not a url", "bad configuration for --database-url: cannot parse the URL not a url"),
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
    assert run.err.startswith(
        f"error: bad configuration for [database] auto_upgrade in {conf}: 'maybe': "
    )
    assert "LocationInfo" not in run.err
    assert run.err.count("\n") == 1


def test_bad_value_in_the_environment(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS_DATABASE__CONNECT_TIMEOUT", "soon")
    run = cli("status")
    assert run.code == 1
    assert run.err.startswith("error: bad configuration for OS_DATABASE__CONNECT_TIMEOUT: 'soon'")
    assert "LocationInfo" not in run.err


def test_a_dollar_in_a_config_file_names_the_option_and_file(cli: Cli, tmp_path: Path) -> None:
    conf = tmp_path / "tracker.conf"
    conf.write_text("[database]\nconnection = sqlite:///$XDG_STATE_HOME/t.sqlite\n")
    run = cli("--config-file", str(conf), "status")
    assert run.code == 1
    assert run.err.startswith(
        f"error: bad configuration for [database] connection in {conf}: "
        "'sqlite:///$XDG_STATE_HOME/t.sqlite': "
    )
    assert "$$" in run.err
    assert run.err.count("\n") == 1


@pytest.mark.parametrize(
    ("where", "source"),
    [
        ("--database-url", "--database-url"),
        ("env", "OS_DATABASE__CONNECTION"),
        ("file", "[database] connection in {conf}"),
    ],
)
def test_a_bad_url_names_its_source_and_hides_its_password(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, source: str
) -> None:
    bad = "postgresql+psycopg://admin:s3cret@db.example:notaport/tracker"
    conf = tmp_path / "tracker.conf"
    conf.write_text(f"[database]\nconnection = {bad if where == 'file' else ''}\n")
    args = ["--config-file", str(conf), "status"]
    if where == "--database-url":
        args += ["--database-url", bad]
    elif where == "env":
        monkeypatch.setenv("OS_DATABASE__CONNECTION", bad)
    run = cli(*args)
    assert run.code == 1
    assert run.err == (
        f"error: bad configuration for {source.format(conf=conf)}: cannot parse the URL "
        "postgresql+psycopg://admin:***@db.example:notaport/tracker\n"
    )


def test_a_file_that_is_not_a_database_is_named(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"not a database, only text\n" * 40)
    for command in (["status"], ["db", "current"], ["db", "upgrade"]):
        run = cli(*command, "--database-url", f"sqlite:///{path}")
        assert run.code == 1
        assert f"the file {path} is not an SQLite database" in run.err
        assert "Background on this error" not in run.err
        assert run.err.count("\n") == 1


def test_an_untranslated_database_error_shows_no_sql_and_no_link(
    cli: Cli, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import ProgrammingError

    from tracker import report

    def broken(*_args: object, **_kwargs: object) -> None:
        raise ProgrammingError(
            "SELECT secret_column FROM volumes", {}, Exception("boom\nLINE 1: SELECT ...")
        )

    monkeypatch.setattr(report, "collect", broken)
    for args in (("status",), ("status", "--json")):
        run = cli(*args, "--database-url", url)
        assert run.code == 1
        assert "SELECT" not in run.err
        assert "Background on this error" not in run.err
        assert "sqlalche.me" not in run.err
        assert "boom" in run.err


def test_json_errors_are_one_object_on_stderr(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "absent" / "t.sqlite"
    for command in (["status", "--json"], ["db", "current", "--json"], ["journal", "--json"]):
        run = cli(*command, "--database-url", f"sqlite:///{path}")
        assert run.code == 1
        assert run.out == ""
        document = json.loads(run.err)
        assert document["error"]["type"] == "StoreNotFound"
        assert document["error"]["path"] == str(path)
        assert document["error"]["removed"] is False
        assert str(path) in document["error"]["message"]
    bad = cli("status", "--json", "--database-url", "not a url")
    assert bad.code == 1
    assert json.loads(bad.err)["error"]["type"] == "ConfigError"
    missing = cli("--config-file", str(tmp_path / "absent.conf"), "status", "--json")
    assert missing.code == 1
    assert "absent.conf" in json.loads(missing.err)["error"]["message"]


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`tracker db history --json | head -1`: the reader leaves before tracker writes."""
    for _attempt in range(3):
        process = subprocess.Popen(
            [sys.executable, "-m", "tracker", "db", "history", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
        )
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # before the interpreter has even started
        err = process.stderr.read().decode()
        code = process.wait(timeout=60)
        assert err == ""
        assert code == cli_main.EXIT_BROKEN_PIPE


def test_a_closed_pipe_through_a_shell(tmp_path: Path) -> None:
    script = f"{sys.executable} -m tracker db history --json | head -c 1 >/dev/null"
    result = subprocess.run(
        ["bash", "-c", f"{script}; exit ${{PIPESTATUS[0]}}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.stderr == ""
    assert result.returncode in (0, cli_main.EXIT_BROKEN_PIPE)


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
