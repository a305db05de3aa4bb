"""The iscsiadm wrapper: exact command lines, exit statuses, secrets that never leak.

Commands run through the real :class:`SubprocessExecutor` with testfixtures'
``MockPopen`` in place of :class:`subprocess.Popen` (what ``subprocess.run``
uses), or through the recording executor; no real iscsiadm ever runs.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from unittest.mock import call

import pytest
from testfixtures import LogCapture
from testfixtures.popen import MockPopen, PopenBehaviour

from tracker import validation
from tracker.exceptions import ConnectorFailed, InvalidInput
from tracker.host.executor import CommandResult, SubprocessExecutor
from tracker.host.iscsiadm import (
    ISCSI_ERRORS,
    ChapCredentials,
    Iscsiadm,
    IscsiadmSession,
    parse_sessions,
)
from tracker.testing.fakes import RecordingExecutor

IQN = "iqn.2010-10.org.openstack:volume-5f1e0c2a"
NODE = ("iscsiadm", "-m", "node", "-T", IQN, "-p", "192.0.2.10:3260")
USER = "tenant-42-user"
PASSWORD = "s3cr3t-Pa55w0rd!"
CHAP = ChapCredentials(USER, PASSWORD)


@pytest.fixture
def popen(monkeypatch: pytest.MonkeyPatch) -> Iterator[MockPopen]:
    mock = MockPopen()
    monkeypatch.setattr(subprocess, "Popen", mock)
    yield mock


def commands(popen: MockPopen) -> list[tuple[str, ...]]:
    """The command lines started, in order."""
    return [tuple(c.args[0]) for c in popen.all_calls if c[0] == "Popen"]


def result(argv: tuple[str, ...], code: int, stdout: str = "", stderr: str = "") -> CommandResult:
    return CommandResult(argv=argv, returncode=code, stdout=stdout, stderr=stderr)


# --- login ----------------------------------------------------------------------------


def test_login_without_chap_creates_the_record_then_logs_in(popen: MockPopen) -> None:
    popen.set_command((*NODE, "-o", "new"), stdout=b"New iSCSI node [...] added\n")
    popen.set_command((*NODE, "--login"), stdout=b"Login to [...] successful.\n")
    Iscsiadm(SubprocessExecutor()).login(IQN, "192.0.2.10")
    assert commands(popen) == [(*NODE, "-o", "new"), (*NODE, "--login")]
    # exactly how the executor starts it: an argument list, no shell, the timeout given
    started = call.Popen(
        (*NODE, "-o", "new"), env=None, cwd=None, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert popen.all_calls[:2] == [started, started.communicate(None, timeout=120.0)]


def test_login_with_chap_iface_and_tpgt(popen: MockPopen) -> None:
    node = (*NODE, "-I", "iface0")
    update = (*node, "-o", "update", "-n")
    popen.set_default()
    Iscsiadm(SubprocessExecutor(), timeout=30).login(
        IQN, "192.0.2.10:3260", iface="iface0", tpgt=2, chap=CHAP
    )
    assert commands(popen) == [
        (
            "iscsiadm",
            "-m",
            "node",
            "-T",
            IQN,
            "-p",
            "192.0.2.10:3260,2",
            "-I",
            "iface0",
            "-o",
            "new",
        ),
        (*update, "node.session.auth.authmethod", "-v", "CHAP"),
        (*update, "node.session.auth.username", "-v", USER),
        (*update, "node.session.auth.password", "-v", PASSWORD),
        (*node, "--login"),
    ]
    timeouts = [c.kwargs["timeout"] for c in popen.all_calls if c[0] == "Popen().communicate"]
    assert timeouts == [30] * 5


@pytest.mark.parametrize(
    ("portal", "expected"),
    [
        ("[2001:DB8::1]", "[2001:db8::1]:3260"),
        ("[2001:db8::1]:3261", "[2001:db8::1]:3261"),
        ("2001:db8::1", "[2001:db8::1]:3260"),
    ],
)
def test_login_to_an_ipv6_portal(popen: MockPopen, portal: str, expected: str) -> None:
    popen.set_default()
    Iscsiadm(SubprocessExecutor()).login(IQN, portal, tpgt=1)
    node = ("iscsiadm", "-m", "node", "-T", IQN, "-p")
    assert commands(popen) == [
        (*node, f"{expected},1", "-o", "new"),
        (*node, expected, "--login"),
    ]


def test_a_session_that_exists_is_a_successful_login(popen: MockPopen) -> None:
    popen.set_command((*NODE, "-o", "new"))
    popen.set_command(
        (*NODE, "--login"),
        stderr=b"iscsiadm: default: 1 session requested, but 1 already present.\n",
        returncode=15,
    )
    with LogCapture("tracker.host.iscsiadm") as log:
        Iscsiadm(SubprocessExecutor()).login(IQN, "192.0.2.10")
    assert any("already logged in" in r.getMessage() for r in log.records)


def test_15_when_creating_the_record_is_a_failure() -> None:
    executor = RecordingExecutor({(*NODE, "-o", "new"): result((*NODE, "-o", "new"), 15)})
    with pytest.raises(ConnectorFailed) as caught:
        Iscsiadm(executor).login(IQN, "192.0.2.10")
    assert caught.value.code == "ISCSI_ERR_SESS_EXISTS"
    assert executor.calls == [(*NODE, "-o", "new")]  # never tried to log in


@pytest.mark.parametrize("status", sorted(set(ISCSI_ERRORS) - {15}))
def test_every_login_exit_status_is_mapped(status: int) -> None:
    login = (*NODE, "--login")
    executor = RecordingExecutor({login: result(login, status, stderr="iscsiadm: it failed\n")})
    with pytest.raises(ConnectorFailed) as caught:
        Iscsiadm(executor).login(IQN, "192.0.2.10")
    code, meaning = ISCSI_ERRORS[status]
    error = caught.value
    assert (error.code, error.returncode) == (code, status)
    assert error.message == f"iSCSI login to {IQN} at 192.0.2.10:3260: logging in failed: {meaning}"
    assert error.command == f"iscsiadm -m node -T {IQN} -p 192.0.2.10:3260 --login"
    assert error.stderr == "iscsiadm: it failed"
    assert code in str(error) and f"exit status {status}" in str(error)


def test_the_table_names_open_iscsi_codes() -> None:
    assert ISCSI_ERRORS[24][0] == "ISCSI_ERR_LOGIN_AUTH_FAILED"
    assert ISCSI_ERRORS[8][0] == "ISCSI_ERR_TRANS_TIMEOUT"
    assert ISCSI_ERRORS[15][0] == "ISCSI_ERR_SESS_EXISTS"
    assert ISCSI_ERRORS[21][0] == "ISCSI_ERR_NO_OBJS_FOUND"
    assert sorted(ISCSI_ERRORS) == list(range(1, 32))
    assert len({code for code, _ in ISCSI_ERRORS.values()}) == 31


@pytest.mark.parametrize(
    ("status", "code", "text"),
    [(99, "ISCSI_ERR_UNKNOWN", "status 99"), (-9, "KILLED", "SIGKILL"), (-200, "KILLED", "200")],
)
def test_statuses_outside_the_table(status: int, code: str, text: str) -> None:
    login = (*NODE, "--login")
    executor = RecordingExecutor({login: result(login, status)})
    with pytest.raises(ConnectorFailed) as caught:
        Iscsiadm(executor).login(IQN, "192.0.2.10")
    assert caught.value.code == code and text in caught.value.message


def test_a_failed_chap_step_stops_the_login() -> None:
    node = (*NODE, "-o", "update", "-n")
    failing = (*node, "node.session.auth.username", "-v", USER)
    executor = RecordingExecutor({failing: result(failing, 6)})
    with pytest.raises(ConnectorFailed) as caught:
        Iscsiadm(executor).login(IQN, "192.0.2.10", chap=CHAP)
    assert caught.value.code == "ISCSI_ERR_IDBM"
    assert "setting node.session.auth.username failed" in caught.value.message
    assert caught.value.command.endswith("-n node.session.auth.username -v '***'")
    assert len(executor.calls) == 3


# --- logout ------------------------------------------------------------------------------


def test_logout_logs_out_then_forgets_the_record(popen: MockPopen) -> None:
    popen.set_default()
    Iscsiadm(SubprocessExecutor()).logout(IQN, "192.0.2.10:3260")
    assert commands(popen) == [(*NODE, "--logout"), (*NODE, "-o", "delete")]


def test_logout_of_one_iface_keeping_the_record(popen: MockPopen) -> None:
    popen.set_default()
    Iscsiadm(SubprocessExecutor()).logout(IQN, "[2001:db8::1]", iface="iface0", forget=False)
    assert commands(popen) == [
        (
            "iscsiadm",
            "-m",
            "node",
            "-T",
            IQN,
            "-p",
            "[2001:db8::1]:3260",
            "-I",
            "iface0",
            "--logout",
        )
    ]


def test_logout_when_not_logged_in_is_success(popen: MockPopen) -> None:
    popen.set_default(stderr=b"iscsiadm: No matching sessions found\n", returncode=21)
    with LogCapture("tracker.host.iscsiadm") as log:
        Iscsiadm(SubprocessExecutor()).logout(IQN, "192.0.2.10")
    assert commands(popen) == [(*NODE, "--logout"), (*NODE, "-o", "delete")]
    assert any("not logged in" in r.getMessage() for r in log.records)


@pytest.mark.parametrize("status", sorted(set(ISCSI_ERRORS) - {21}))
def test_every_logout_exit_status_is_mapped(status: int) -> None:
    logout = (*NODE, "--logout")
    executor = RecordingExecutor({logout: result(logout, status)})
    with pytest.raises(ConnectorFailed) as caught:
        Iscsiadm(executor).logout(IQN, "192.0.2.10")
    assert (caught.value.code, caught.value.returncode) == (ISCSI_ERRORS[status][0], status)
    assert caught.value.message.startswith(f"iSCSI logout from {IQN} at 192.0.2.10:3260")
    assert executor.calls == [logout]  # the record stays when the logout failed


# --- sessions -------------------------------------------------------------------------------

SESSIONS = (
    f"tcp: [3] 192.0.2.10:3260,1 {IQN} (non-flash)\n"
    "tcp: [1] [2001:db8::1]:3260,2 iqn.2001-05.com.example:t2 (non-flash)\n"
    "iser: [12] 198.51.100.7:3261,1 iqn.2001-05.com.example:t3\n"
    "tcp: [4] ::ffff:192.0.2.11:3260,1 iqn.2001-05.com.example:t4\n"
)


#: how this Python spells an IPv4-mapped IPv6 portal
MAPPED = validation.portal("portal", "[::ffff:192.0.2.11]:3260")


def test_session_listing(popen: MockPopen) -> None:
    popen.set_command("iscsiadm -m session", stdout=SESSIONS.encode())
    sessions = Iscsiadm(SubprocessExecutor()).sessions()
    assert commands(popen) == [("iscsiadm", "-m", "session")]
    assert sessions == (
        IscsiadmSession(1, "tcp", "[2001:db8::1]:3260", 2, "iqn.2001-05.com.example:t2"),
        IscsiadmSession(3, "tcp", "192.0.2.10:3260", 1, IQN),
        IscsiadmSession(4, "tcp", MAPPED, 1, "iqn.2001-05.com.example:t4"),
        IscsiadmSession(12, "iser", "198.51.100.7:3261", 1, "iqn.2001-05.com.example:t3"),
    )


def test_no_sessions(popen: MockPopen) -> None:
    popen.set_command(
        "iscsiadm -m session", stderr=b"iscsiadm: No active sessions.\n", returncode=21
    )
    assert Iscsiadm(SubprocessExecutor()).sessions() == ()


@pytest.mark.parametrize("status", [1, 13, 20])
def test_a_failed_session_listing(status: int) -> None:
    argv = ("iscsiadm", "-m", "session")
    executor = RecordingExecutor({argv: result(argv, status)})
    with pytest.raises(ConnectorFailed) as caught:
        Iscsiadm(executor).sessions()
    assert caught.value.code == ISCSI_ERRORS[status][0]


def test_session_lines_that_do_not_parse_are_skipped_with_a_warning() -> None:
    output = (
        "garbage\n"
        "tcp: [x] 192.0.2.10:3260,1 iqn.a\n"
        "tcp: [2] [not-an-address]:3260,1 iqn.b\n"
        "tcp: [5] 192.0.2.10:3260,1 iqn.c\n"
        "\n"
        "tcp: [6] 192.0.2.10:3260,1 iqn.d\x1b[31m\n"
    )
    with LogCapture("tracker.host.iscsiadm", level=logging.WARNING) as log:
        sessions = parse_sessions(output)
    assert [s.session_id for s in sessions] == [5, 6]
    assert sessions[1].target_iqn == "iqn.d\\x1b[31m"  # no terminal escape kept
    assert len(log.records) == 3


def test_session_output_is_bounded() -> None:
    line = "tcp: [7] 192.0.2.10:3260,1 iqn.x\n"
    huge = "x" * (2 * 1024 * 1024) + "\n" + line
    with LogCapture("tracker.host.iscsiadm", level=logging.WARNING) as log:
        sessions = parse_sessions(huge)
    assert [s.session_id for s in sessions] == [7]
    assert any("more than" in r.getMessage() for r in log.records)


# --- timeouts, missing programs ----------------------------------------------------------


def _raise(error: BaseException) -> PopenBehaviour:
    raise error


def test_a_timeout_is_mapped_and_never_shows_the_password(popen: MockPopen) -> None:
    popen.set_default()
    password_step = (*NODE, "-o", "update", "-n", "node.session.auth.password", "-v", PASSWORD)
    popen.set_command(
        password_step,
        behaviour=lambda command, stdin: _raise(subprocess.TimeoutExpired(command, 5)),
    )
    with LogCapture() as log, pytest.raises(ConnectorFailed) as caught:
        Iscsiadm(SubprocessExecutor(), timeout=5).login(IQN, "192.0.2.10", chap=CHAP)
    error = caught.value
    assert error.code == "TIMEOUT" and error.returncode is None
    assert error.message == (
        f"iSCSI login to {IQN} at 192.0.2.10:3260: iscsiadm did not finish within 5 s"
    )
    assert error.command.endswith("-n node.session.auth.password -v '***'")
    # not even chained: the executor's CommandFailed holds the whole command line
    assert error.__cause__ is None and error.__context__ is None
    _assert_no_secret(error, log)


def test_a_missing_iscsiadm_names_the_package(popen: MockPopen) -> None:
    popen.set_default(
        behaviour=lambda command, stdin: _raise(FileNotFoundError(2, "No such file", "iscsiadm"))
    )
    with pytest.raises(ConnectorFailed) as caught:
        Iscsiadm(SubprocessExecutor()).login(IQN, "192.0.2.10", chap=CHAP)
    error = caught.value
    assert error.code == "NOT_INSTALLED" and error.returncode is None
    assert "open-iscsi" in error.message
    assert error.__context__ is None


def test_a_program_that_cannot_be_started(popen: MockPopen) -> None:
    popen.set_default(
        behaviour=lambda command, stdin: _raise(PermissionError(13, "Permission denied"))
    )
    with pytest.raises(ConnectorFailed) as caught:
        Iscsiadm(SubprocessExecutor()).sessions()
    assert caught.value.code == "EXEC_FAILED" and "Permission denied" in caught.value.message


def test_missing_with_the_recording_executor() -> None:
    with pytest.raises(ConnectorFailed) as caught:
        Iscsiadm(RecordingExecutor(missing=["iscsiadm"])).logout(IQN, "192.0.2.10")
    assert caught.value.code == "NOT_INSTALLED"


# --- secrets --------------------------------------------------------------------------------


def _assert_no_secret(error: ConnectorFailed, log: LogCapture) -> None:
    texts = [str(error), repr(error), error.command, error.stderr, error.message]
    texts += [str(value) for value in error.fields.values()]
    texts += [str(error.args)]
    for record in log.records:
        texts += [record.getMessage(), str(record.args), str(record.msg)]
    for text in texts:
        assert PASSWORD not in text
        assert USER not in text


def test_secrets_are_in_no_error_and_no_log_line() -> None:
    """iscsiadm echoing the credentials (in any message) does not leak them either."""
    password_step = (*NODE, "-o", "update", "-n", "node.session.auth.password", "-v", PASSWORD)
    login = (*NODE, "--login")
    echo = f"iscsiadm: cannot log in as {USER} with {PASSWORD} ({PASSWORD[:-1]}...)\n"
    executor = RecordingExecutor(
        {password_step: result(password_step, 0), login: result(login, 24, stderr=echo)}
    )
    with LogCapture(level=1) as log, pytest.raises(ConnectorFailed) as caught:
        Iscsiadm(executor).login(IQN, "192.0.2.10", chap=CHAP)
    error = caught.value
    assert error.code == "ISCSI_ERR_LOGIN_AUTH_FAILED"
    assert error.stderr == "iscsiadm: cannot log in as *** with *** (s3cr3t-Pa55w0rd...)"
    assert any("running" in r.getMessage() for r in log.records)  # commands are logged ...
    _assert_no_secret(error, log)  # ... redacted
    assert executor.calls[3] == password_step  # the real value did reach iscsiadm


def test_a_successful_chap_login_logs_no_secret() -> None:
    with LogCapture(level=1) as log:
        Iscsiadm(RecordingExecutor()).login(IQN, "192.0.2.10", chap=CHAP)
    assert log.records
    for record in log.records:
        assert PASSWORD not in record.getMessage() and USER not in record.getMessage()


def test_credentials_do_not_show_themselves() -> None:
    assert repr(CHAP) == "ChapCredentials(username='***', password='***')"
    assert str(CHAP) == repr(CHAP)
    assert PASSWORD not in f"{CHAP} {CHAP!r} {[CHAP]} { ({'c': CHAP}) }"
    assert ChapCredentials(USER, PASSWORD) == CHAP


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        ("", PASSWORD, "empty"),
        (USER, "", "empty"),
        (USER, "x" * 256, "255"),
        (USER, "é" * 128, "255"),
        (USER, "line\nbreak", "control"),
        ("tab\tuser", PASSWORD, "control"),
        (USER, "nul\x00", "control"),
        (USER, "\udcff", "surrogate"),
    ],
)
def test_bad_credentials_are_refused_without_showing_them(
    username: str, password: str, reason: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        ChapCredentials(username, password)
    assert reason in str(caught.value)
    assert caught.value.value == "***"
    if password:
        assert password not in str(caught.value)


# --- arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"target_iqn": "iqn with space"}, "target_iqn"),
        ({"target_iqn": "--logout"}, "target_iqn"),
        ({"target_iqn": ""}, "target_iqn"),
        ({"target_iqn": "iqn.x" + "y" * 300}, "target_iqn"),
        ({"portal": "192.0.2.10:99999"}, "portal"),
        ({"portal": "[2001:db8::1"}, "portal"),
        ({"iface": "a/b"}, "iface"),
        ({"iface": "-I"}, "iface"),
        ({"tpgt": 65536}, "tpgt"),
        ({"tpgt": True}, "tpgt"),
        ({"chap": ("user", "password")}, "chap"),
    ],
)
def test_malformed_arguments_run_nothing(kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"target_iqn": IQN, "portal": "192.0.2.10", **kwargs}
    executor = RecordingExecutor()
    with pytest.raises(InvalidInput) as caught:
        Iscsiadm(executor).login(**arguments)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert executor.calls == []


def test_hostile_stderr_is_escaped_and_cut() -> None:
    login = (*NODE, "--login")
    stderr = "e" * 5000 + "\x00\x1b[2J\udcff end\n"
    executor = RecordingExecutor({login: result(login, 5, stderr=stderr)})
    with pytest.raises(ConnectorFailed) as caught:
        Iscsiadm(executor).login(IQN, "192.0.2.10")
    shown = caught.value.stderr
    assert len(shown) < 2020 and shown.endswith("\\x00\\x1b[2J\\xff end")
    shown.encode("utf-8")
    assert "\x1b" not in shown and "\x00" not in shown
