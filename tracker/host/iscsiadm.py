"""Logging in to and out of iSCSI targets with open-iscsi's ``iscsiadm``.

:class:`Iscsiadm` runs ``iscsiadm`` through the injected
:class:`~tracker.host.executor.CommandExecutor`, as argument lists (never a
shell), each with a timeout, and turns every failure into a
:class:`~tracker.exceptions.ConnectorFailed` whose ``code`` is the name of
open-iscsi's exit status (what a storage connection's ``last_error.code``
holds).

The commands
------------

``IQN``, ``PORTAL`` (``address:port``, ``[v6]:port``; normalised by
:func:`tracker.validation.portal`), ``TPGT`` and ``IFACE`` are the arguments of
the call; ``[-I IFACE]`` is there only when an iface is given (without it
iscsiadm acts on the records and sessions of every iface).

==============================  ================================================================
step                            argv
==============================  ================================================================
create the node record          ``iscsiadm -m node -T IQN -p PORTAL[,TPGT] [-I IFACE] -o new``
CHAP (only with credentials)    ``iscsiadm -m node -T IQN -p PORTAL [-I IFACE] -o update
                                -n node.session.auth.authmethod -v CHAP``, then the same with
                                ``-n node.session.auth.username -v USER`` and
                                ``-n node.session.auth.password -v PASSWORD``
log in                          ``iscsiadm -m node -T IQN -p PORTAL [-I IFACE] --login``
log out                         ``iscsiadm -m node -T IQN -p PORTAL [-I IFACE] --logout``
forget the node record          ``iscsiadm -m node -T IQN -p PORTAL [-I IFACE] -o delete``
list the sessions               ``iscsiadm -m session``
==============================  ================================================================

``-o new`` replaces a record that already exists, so a login always starts
from the settings given (an old record's CHAP settings do not linger). The
TPGT goes into the record only; later steps find the record by target, portal
and iface. A logout matches *sessions* (not records) and then deletes the
record unless ``forget=False``: a logged-out managed target should not be
logged in again by ``iscsid`` at boot, and the record is where the CHAP
password is kept on disk.

Secrets
-------

The CHAP user name and password are never in a log line, in an error's
message, ``command`` or ``stderr``, nor in ``repr(ChapCredentials(...))``:
commands are shown with both replaced by ``***`` (the user name is half of the
credential and often names a tenant, so it is treated as secret too), any
occurrence of either in the command's output is replaced the same way, and the
executor's own errors (whose text holds the full command line) are replaced by
:class:`~tracker.exceptions.ConnectorFailed`, raised outside the ``except``
block so that not even ``__context__`` refers to them. (The password *is* in
iscsiadm's argv while it runs, which root and the process's user can read in
``/proc/PID/cmdline``: iscsiadm offers no other way to set it.)

Exit statuses
-------------

:data:`ISCSI_ERRORS` maps iscsiadm's exit status to ``(code, message)``; the
codes are the names of open-iscsi's ``include/iscsi_err.h`` (the ``EXIT
STATUS`` section of ``iscsiadm(8)`` lists the same numbers). Per operation,
some are success: 15 (``ISCSI_ERR_SESS_EXISTS``) for a login, 21
(``ISCSI_ERR_NO_OBJS_FOUND``) for a logout, a record deletion and the session
list. Besides the table:

=====================  ==========================================================
code                   when
=====================  ==========================================================
``TIMEOUT``            iscsiadm ran past the timeout and was killed
``NOT_INSTALLED``      there is no ``iscsiadm`` (Debian package ``open-iscsi``)
``EXEC_FAILED``        it could not be started (permissions, a broken binary)
``KILLED``             it was killed by a signal (negative exit status)
``ISCSI_ERR_UNKNOWN``  an exit status the table does not know
=====================  ==========================================================

Output is host input: at most :data:`OUTPUT_LIMIT` characters of it are
parsed, and every text taken from it is made valid, printable UTF-8
(:func:`tracker.host.sources.escape_host_text`, control characters escaped).
"""

from __future__ import annotations

import logging
import re
import shlex
import signal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from tracker import validation
from tracker.exceptions import CommandFailed, CommandNotFound, ConnectorFailed, InvalidInput
from tracker.host.executor import CommandExecutor, CommandResult
from tracker.host.sources import escape_host_text

__all__ = [
    "ISCSIADM",
    "ISCSI_ERRORS",
    "ISCSI_ERR_NO_OBJS_FOUND",
    "ISCSI_ERR_SESS_EXISTS",
    "OUTPUT_LIMIT",
    "ChapCredentials",
    "Iscsiadm",
    "IscsiadmSession",
    "parse_sessions",
]

logger = logging.getLogger(__name__)

#: The program run.
ISCSIADM = "iscsiadm"
#: A login found the session already logged in: success for :meth:`Iscsiadm.login`.
ISCSI_ERR_SESS_EXISTS = 15
#: Nothing matched: success for a logout, a record deletion and the session list.
ISCSI_ERR_NO_OBJS_FOUND = 21

#: The most characters of a command's output that are parsed or kept.
OUTPUT_LIMIT = 1024 * 1024
#: The most characters of standard error an error carries (the end of it).
STDERR_SHOWN = 2000
#: What a secret is replaced by.
REDACTED = "***"
#: The Debian package that provides iscsiadm.
PACKAGE = "open-iscsi"

#: iscsiadm's exit statuses (open-iscsi ``include/iscsi_err.h``): status ->
#: (stable code, what it means for an operator). 0 is success.
ISCSI_ERRORS: Mapping[int, tuple[str, str]] = MappingProxyType(
    {
        1: ("ISCSI_ERR", "iscsiadm failed (generic error)"),
        2: ("ISCSI_ERR_SESS_NOT_FOUND", "the session was not found"),
        3: ("ISCSI_ERR_NOMEM", "out of memory or resources"),
        4: ("ISCSI_ERR_TRANS", "the connection to the portal failed (transport error)"),
        5: ("ISCSI_ERR_LOGIN", "the login failed"),
        6: ("ISCSI_ERR_IDBM", "cannot read or write the iSCSI node database"),
        7: ("ISCSI_ERR_INVAL", "iscsiadm refused an argument as invalid"),
        8: ("ISCSI_ERR_TRANS_TIMEOUT", "timed out connecting to the portal"),
        9: ("ISCSI_ERR_INTERNAL", "internal iscsid or kernel failure"),
        10: ("ISCSI_ERR_LOGOUT", "the logout failed"),
        11: ("ISCSI_ERR_PDU_TIMEOUT", "an iSCSI request (PDU) timed out"),
        12: (
            "ISCSI_ERR_TRANS_NOT_FOUND",
            "the iSCSI transport is not loaded in the kernel or iscsid (modprobe iscsi_tcp)",
        ),
        13: ("ISCSI_ERR_ACCESS", "permission denied: iscsiadm must run as root to reach iscsid"),
        14: ("ISCSI_ERR_TRANS_CAPS", "the iSCSI transport does not support the operation"),
        15: ("ISCSI_ERR_SESS_EXISTS", "a session is already logged in"),
        16: ("ISCSI_ERR_INVALID_MGMT_REQ", "iscsid refused the request as invalid"),
        17: ("ISCSI_ERR_ISNS_UNAVAILABLE", "the iSNS service is not supported"),
        18: ("ISCSI_ERR_ISCSID_COMM_ERR", "communication with iscsid failed"),
        19: ("ISCSI_ERR_FATAL_LOGIN", "the target rejected the login (not retryable)"),
        20: ("ISCSI_ERR_ISCSID_NOTCONN", "cannot connect to iscsid: is it running?"),
        21: ("ISCSI_ERR_NO_OBJS_FOUND", "no matching node record or session"),
        22: ("ISCSI_ERR_SYSFS_LOOKUP", "an object could not be found in sysfs"),
        23: ("ISCSI_ERR_HOST_NOT_FOUND", "the SCSI host was not found"),
        24: (
            "ISCSI_ERR_LOGIN_AUTH_FAILED",
            "authorization failure: the target refused the CHAP credentials (or requires them)",
        ),
        25: ("ISCSI_ERR_ISNS_QUERY", "the iSNS query failed"),
        26: ("ISCSI_ERR_ISNS_REG_FAILED", "iSNS registration or deregistration failed"),
        27: ("ISCSI_ERR_OP_NOT_SUPP", "the operation is not supported"),
        28: ("ISCSI_ERR_BUSY", "a device or resource is busy"),
        29: ("ISCSI_ERR_AGAIN", "a temporary failure: retrying may succeed"),
        30: ("ISCSI_ERR_UNKNOWN_DISCOVERY_TYPE", "unknown discovery type"),
        31: ("ISCSI_ERR_CHILD_TERMINATED", "a child process of iscsiadm terminated"),
    }
)

#: The node settings whose value is a secret (shown as ``***``).
_SECRET_SETTINGS = frozenset({"node.session.auth.username", "node.session.auth.password"})
#: open-iscsi keeps CHAP names and secrets in 256-byte buffers (with the NUL).
_AUTH_MAX_BYTES = 255
#: iSCSI names are at most 223 bytes (RFC 7143).
_ISCSI_NAME_MAX = 223
#: open-iscsi iface names (ISCSI_MAX_IFACE_LEN, with the NUL).
_IFACE_MAX = 64
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


# --- what is sent -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChapCredentials:
    """The CHAP user name and secret an initiator logs in with.

    Neither is shown by ``repr`` (nor ``str``): ``ChapCredentials(username='***',
    password='***')``.

    :raises tracker.exceptions.InvalidInput: an empty value, one longer than
        255 UTF-8 bytes (open-iscsi would cut it), or one holding a control
        character (it would break iscsid's record file); the error shows
        ``***``, never the value.
    """

    username: str
    password: str

    def __post_init__(self) -> None:
        for field, value in (("chap username", self.username), ("chap password", self.password)):
            _check_secret(field, value)

    def __repr__(self) -> str:
        return f"ChapCredentials(username={REDACTED!r}, password={REDACTED!r})"

    __str__ = __repr__


def _check_secret(field: str, value: object) -> None:
    if not isinstance(value, str):
        raise InvalidInput(field, REDACTED, "a string")
    if not value:
        raise InvalidInput(field, REDACTED, "must not be empty")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput(field, REDACTED, "not Unicode text (a lone surrogate)") from None
    if size > _AUTH_MAX_BYTES:
        raise InvalidInput(field, REDACTED, f"at most {_AUTH_MAX_BYTES} UTF-8 bytes")
    if _CONTROL.search(value) or "\n" in value or "\t" in value:
        raise InvalidInput(field, REDACTED, "must not contain control characters")


def _iscsi_name(field: str, value: object, max_length: int) -> str:
    reason = f"1 to {max_length} printable characters without spaces, not starting with '-'"
    text = validation.text(field, value, max_length)
    if not text.isprintable() or any(c.isspace() for c in text) or text.startswith("-"):
        raise InvalidInput(field, value, reason)
    return text


def _iface(value: object) -> str | None:
    if value is None:
        return None
    name = _iscsi_name("iface", value, _IFACE_MAX)
    if "/" in name:
        raise InvalidInput("iface", value, "an iface name has no '/'")
    return name


def _tpgt(value: object) -> int | None:
    return None if value is None else validation.integer("tpgt", value, 0, 65535)


class _Step(NamedTuple):
    """One command: what runs, what is shown, and what it is for."""

    argv: tuple[str, ...]
    shown: tuple[str, ...]
    purpose: str


def _node(iqn: str, portal: str, iface: str | None) -> tuple[str, ...]:
    argv: tuple[str, ...] = (ISCSIADM, "-m", "node", "-T", iqn, "-p", portal)
    return (*argv, "-I", iface) if iface is not None else argv


def _plain(argv: tuple[str, ...], purpose: str) -> _Step:
    return _Step(argv, argv, purpose)


def _new_node_step(iqn: str, portal: str, tpgt: int | None, iface: str | None) -> _Step:
    """``-m node ... -o new``: create (or replace) the node record."""
    record = portal if tpgt is None else f"{portal},{tpgt}"
    return _plain((*_node(iqn, record, iface), "-o", "new"), "creating the node record")


def _update_node_step(iqn: str, portal: str, iface: str | None, name: str, value: str) -> _Step:
    """``-m node ... -o update -n NAME -v VALUE`` (a secret VALUE shown as ``***``)."""
    head = (*_node(iqn, portal, iface), "-o", "update", "-n", name, "-v")
    shown = REDACTED if name in _SECRET_SETTINGS else value
    return _Step((*head, value), (*head, shown), f"setting {name}")


def _login_step(iqn: str, portal: str, iface: str | None) -> _Step:
    """``-m node ... --login``."""
    return _plain((*_node(iqn, portal, iface), "--login"), "logging in")


def _logout_step(iqn: str, portal: str, iface: str | None) -> _Step:
    """``-m node ... --logout``."""
    return _plain((*_node(iqn, portal, iface), "--logout"), "logging out")


def _delete_node_step(iqn: str, portal: str, iface: str | None) -> _Step:
    """``-m node ... -o delete``."""
    return _plain((*_node(iqn, portal, iface), "-o", "delete"), "deleting the node record")


#: ``iscsiadm -m session``: one line per session.
_SESSIONS_STEP = _plain((ISCSIADM, "-m", "session"), "listing the sessions")


# --- output ----------------------------------------------------------------------


def clean_output(text: str, secrets: Iterable[str] = (), limit: int = OUTPUT_LIMIT) -> str:
    """Make command output safe to keep: secrets replaced by ``***`` (before any
    cut, so that no part of one survives), at most ``limit`` characters (the
    end), valid UTF-8, control characters other than newline and tab escaped.

    :raises: nothing.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    if len(text) > limit:
        text = text[-limit:]
    text = escape_host_text(text)[0]
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def describe_status(returncode: int) -> tuple[str, str]:
    """Name an iscsiadm exit status.

    :returns: ``(code, message)`` from :data:`ISCSI_ERRORS`, ``KILLED`` for a
        negative status (a signal), ``ISCSI_ERR_UNKNOWN`` otherwise.
    :raises: nothing.
    """
    if returncode < 0:
        return "KILLED", f"iscsiadm was killed by signal {_signal_name(-returncode)}"
    known = ISCSI_ERRORS.get(returncode)
    if known is not None:
        return known
    return "ISCSI_ERR_UNKNOWN", f"iscsiadm exited with status {returncode}, unknown to tracker"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


@dataclass(frozen=True, slots=True)
class IscsiadmSession:
    """One line of ``iscsiadm -m session``.

    :ivar session_id: the session number (``sessionN`` in sysfs).
    :ivar transport: ``tcp``, ``iser`` ...
    :ivar portal: the persistent portal, ``address:port`` (``[v6]:port``),
        normalised as :func:`tracker.validation.portal` does.
    :ivar tpgt: the target portal group tag, ``None`` when not shown.
    :ivar target_iqn: the target's name.
    """

    session_id: int
    transport: str
    portal: str
    tpgt: int | None
    target_iqn: str


_SESSION_LINE = re.compile(
    r"(?P<transport>[A-Za-z0-9_.-]{1,32}): \[(?P<sid>[0-9]{1,10})\] "
    r"(?P<portal>\S+) (?P<target>\S+)(?: \((?:non-)?flash\))?"
)


def _session_portal(text: str) -> tuple[str, int | None]:
    portal_text, comma, tpgt_text = text.rpartition(",")
    tpgt: int | None = None
    if comma and re.fullmatch(r"-?[0-9]{1,5}", tpgt_text):
        tpgt = int(tpgt_text)
    else:
        portal_text = text
    if not portal_text.startswith("[") and portal_text.count(":") > 1:
        # iscsiadm brackets only addresses without a '.': an IPv4-mapped
        # IPv6 address (::ffff:192.0.2.1) comes bare.
        address, _, port = portal_text.rpartition(":")
        portal_text = f"[{address}]:{port}"
    return validation.portal("portal", portal_text), tpgt


def parse_sessions(output: str) -> tuple[IscsiadmSession, ...]:
    """Parse the output of ``iscsiadm -m session``.

    Both forms are read: ``tcp: [3] 192.0.2.10:3260,1 iqn.x`` and, from
    open-iscsi 2.1, the same followed by `` (non-flash)``; IPv6 portals come as
    ``[2001:db8::1]:3260,1``. A line that is not a session line is skipped with
    a warning.

    :param output: the command's standard output.
    :returns: the sessions, by session id.
    :raises: nothing.
    """
    text = clean_output(output)
    if len(output) > OUTPUT_LIMIT:
        logger.warning(
            "iscsiadm -m session printed more than %d characters; parsed the end", OUTPUT_LIMIT
        )
        text = text.partition("\n")[2]  # the first line was cut
    sessions: dict[int, IscsiadmSession] = {}
    skipped = 0
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line:
            continue
        match = _SESSION_LINE.fullmatch(line)
        session = None
        if match is not None:
            try:
                portal, tpgt = _session_portal(match["portal"])
            except InvalidInput:
                portal, tpgt = "", None
            if portal:
                session = IscsiadmSession(
                    session_id=int(match["sid"]),
                    transport=match["transport"],
                    portal=portal,
                    tpgt=tpgt,
                    target_iqn=match["target"],
                )
        if session is None:
            skipped += 1
            if skipped <= 5:
                logger.warning(
                    "iscsiadm -m session: skipped a line it cannot parse: %r", line[:200]
                )
            continue
        sessions[session.session_id] = session
    if skipped > 5:
        logger.warning("iscsiadm -m session: skipped %d more lines", skipped - 5)
    return tuple(sessions[key] for key in sorted(sessions))


# --- the wrapper ---------------------------------------------------------------------


class Iscsiadm:
    """Runs open-iscsi's ``iscsiadm`` for logins, logouts and the session list.

    :param executor: runs the commands.
    :param timeout: seconds before one command is killed (``TIMEOUT``).
    """

    def __init__(self, executor: CommandExecutor, *, timeout: float = 120.0) -> None:
        self._executor = executor
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"Iscsiadm(timeout={self._timeout:g})"

    def login(
        self,
        target_iqn: str,
        portal: str,
        *,
        iface: str | None = None,
        tpgt: int | None = None,
        chap: ChapCredentials | None = None,
    ) -> None:
        """Log in to a target through a portal: create the node record, set CHAP
        when credentials are given, then log in. Already logged in is success.

        :param target_iqn: the target's name.
        :param portal: ``address[:port]`` (``[v6]:port``).
        :param iface: the open-iscsi iface to log in through, ``None`` for
            iscsiadm's default.
        :param tpgt: the target portal group tag to record, if known.
        :param chap: CHAP credentials, ``None`` for no authentication.
        :raises tracker.exceptions.InvalidInput: a malformed argument.
        :raises tracker.exceptions.ConnectorFailed: a step failed; ``code`` is
            the exit status's name (``ISCSI_ERR_LOGIN_AUTH_FAILED`` ...),
            ``TIMEOUT`` or ``NOT_INSTALLED``.
        """
        iqn = _iscsi_name("target_iqn", target_iqn, _ISCSI_NAME_MAX)
        where = validation.portal("portal", portal)
        iface_name = _iface(iface)
        tag = _tpgt(tpgt)
        if chap is not None and not isinstance(chap, ChapCredentials):
            raise InvalidInput("chap", type(chap).__name__, "ChapCredentials or None")
        secrets = (chap.username, chap.password) if chap is not None else ()
        what = _describe_target("iSCSI login to", iqn, where, iface_name)
        self._run(_new_node_step(iqn, where, tag, iface_name), what, secrets)
        if chap is not None:
            for name, value in (
                ("node.session.auth.authmethod", "CHAP"),
                ("node.session.auth.username", chap.username),
                ("node.session.auth.password", chap.password),
            ):
                self._run(_update_node_step(iqn, where, iface_name, name, value), what, secrets)
        result = self._run(
            _login_step(iqn, where, iface_name), what, secrets, ok=(0, ISCSI_ERR_SESS_EXISTS)
        )
        if result.returncode == ISCSI_ERR_SESS_EXISTS:
            logger.info("%s: already logged in", what)
        else:
            logger.info("%s: logged in", what)

    def logout(
        self, target_iqn: str, portal: str, *, iface: str | None = None, forget: bool = True
    ) -> None:
        """Log out of a target's sessions through a portal, then (unless
        ``forget=False``) delete its node record. Not logged in is success.

        :param iface: only the session of this iface; ``None`` for every iface.
        :param forget: delete the node record too (it holds the CHAP password,
            and ``iscsid`` may log in at boot from it).
        :raises tracker.exceptions.InvalidInput: a malformed argument.
        :raises tracker.exceptions.ConnectorFailed: as :meth:`login`.
        """
        iqn = _iscsi_name("target_iqn", target_iqn, _ISCSI_NAME_MAX)
        where = validation.portal("portal", portal)
        iface_name = _iface(iface)
        what = _describe_target("iSCSI logout from", iqn, where, iface_name)
        result = self._run(
            _logout_step(iqn, where, iface_name), what, ok=(0, ISCSI_ERR_NO_OBJS_FOUND)
        )
        if result.returncode == ISCSI_ERR_NO_OBJS_FOUND:
            logger.info("%s: not logged in", what)
        else:
            logger.info("%s: logged out", what)
        if forget:
            self._run(
                _delete_node_step(iqn, where, iface_name), what, ok=(0, ISCSI_ERR_NO_OBJS_FOUND)
            )

    def sessions(self) -> tuple[IscsiadmSession, ...]:
        """List the iSCSI sessions of the host (``iscsiadm -m session``).

        :returns: the sessions, by id; empty when there is none.
        :raises tracker.exceptions.ConnectorFailed: as :meth:`login`.
        """
        result = self._run(
            _SESSIONS_STEP, "listing iSCSI sessions", ok=(0, ISCSI_ERR_NO_OBJS_FOUND)
        )
        if result.returncode == ISCSI_ERR_NO_OBJS_FOUND:
            return ()
        return parse_sessions(result.stdout)

    def _run(
        self, step: _Step, what: str, secrets: Sequence[str] = (), ok: Sequence[int] = (0,)
    ) -> CommandResult:
        shown = shlex.join(step.shown)
        logger.debug("running %s", shown)
        failure: tuple[str, str] | None = None
        try:
            result = self._executor.run(step.argv, timeout=self._timeout)
        except CommandNotFound:
            failure = (
                "NOT_INSTALLED",
                f"{what}: {ISCSIADM} is not installed (install the Debian package {PACKAGE})",
            )
        except CommandFailed:
            failure = ("TIMEOUT", f"{what}: {ISCSIADM} did not finish within {self._timeout:g} s")
        except OSError as error:
            failure = (
                "EXEC_FAILED",
                f"{what}: cannot run {ISCSIADM}: {type(error).__name__} ({error.strerror})",
            )
        if failure is not None:
            # Raised here, outside the except blocks: the executor's error holds
            # the whole command line, password included, and must not be chained.
            raise ConnectorFailed(failure[0], failure[1], None, shown)
        if result.returncode in ok:
            return result
        code, meaning = describe_status(result.returncode)
        raise ConnectorFailed(
            code,
            f"{what}: {step.purpose} failed: {meaning}",
            result.returncode,
            shown,
            clean_output(result.stderr, secrets, STDERR_SHOWN).strip(),
        )


def _describe_target(action: str, iqn: str, portal: str, iface: str | None) -> str:
    through = f" through iface {iface}" if iface is not None else ""
    return f"{action} {iqn} at {portal}{through}"
