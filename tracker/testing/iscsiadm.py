"""A fake ``iscsiadm`` that logs in and out on a :class:`~tracker.testing.live.LiveTestbed`.

:class:`FakeIscsiadm` is a :class:`~tracker.host.executor.CommandExecutor`:
give it to :class:`tracker.host.iscsiadm.Iscsiadm` (or to anything that runs
``iscsiadm``) instead of a :class:`~tracker.host.executor.SubprocessExecutor`.
It plays open-iscsi against the testbed, so what a login does reaches the code
under test through the real event path:

* ``-m node -T IQN -p PORTAL[,TPGT] [-I IFACE] -o new|update|delete`` keeps
  node records (:attr:`FakeIscsiadm.records`, with their settings: a test can
  check the CHAP ones);
* ``--login`` needs a record (else 21, as iscsiadm), finds the target declared
  with :meth:`FakeIscsiadm.add_target` (an unknown portal times out, 8; an
  unknown target at a known portal is refused, 19; wrong CHAP credentials, 24),
  then adds an iSCSI host with the smallest free host number, its session and
  connection, and the target's LUNs (``H:0:0:L``) -- with the kernel's events
  in the kernel's order, handed to ``on_events`` -- or answers 15 when that
  session exists;
* ``--logout`` removes the LUNs, connection, session and host (events to
  ``on_events``), 21 when there is no such session;
* ``-m session`` prints the sessions as iscsiadm does
  (``tcp: [1] 192.0.2.10:3260,1 iqn... (non-flash)``), 21 when there is none;
  ``-m session --rescan`` adds the LUNs declared since the login
  (:meth:`FakeIscsiadm.add_lun`).

Failures a test can cause: :meth:`~FakeIscsiadm.fail_logins` (the next logins
exit with a chosen status and iscsiadm's message, or time out),
:meth:`~FakeIscsiadm.fail_logouts`, :meth:`~FakeIscsiadm.fail_session` (the
session goes ``FAILED``, its connection down, with ``change`` events -- or
silently), :meth:`~FakeIscsiadm.recover_session`, and
:meth:`~FakeIscsiadm.drop_session` (the session disappears and no listener
hears of it: a missed event; the events are still made, so their sequence
numbers leave a gap, as lost kernel events do).

Events are always returned through ``on_events``; a testbed built with
``deliver=True`` also sends them to its monitors itself. Another program than
``iscsiadm`` goes to ``fallback`` (say a :class:`~tracker.testing.mounts.FakeMount`)
or raises :class:`~tracker.exceptions.CommandNotFound`; arguments this fake
does not know exit 7 (``ISCSI_ERR_INVAL``) with a message saying so.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tracker import validation
from tracker.exceptions import CommandNotFound, InvalidInput, TestbedError
from tracker.host.executor import CommandExecutor, CommandResult
from tracker.host.iscsiadm import ChapCredentials
from tracker.testing.failures import ArmedFailures, failed_result
from tracker.testing.live import LiveTestbed
from tracker.testing.specs import (
    DiskSpec,
    Hctl,
    IscsiHostSpec,
    IscsiSessionSpec,
    LunSpec,
    sd_devnum,
    sd_name,
)
from tracker.testing.topologies import LunIdentity
from tracker.testing.uevents import Uevent

__all__ = ["FakeIscsiadm", "FakeSession", "FakeTarget", "LunSource", "NodeRecord"]

#: What a target's LUN is made from: an identity (the fake picks the disk) or a
#: function of the LUN's address returning the whole spec.
LunSource = LunIdentity | Callable[[Hctl], LunSpec]

_OPTIONS = {
    "-m": "mode",
    "--mode": "mode",
    "-T": "targetname",
    "--targetname": "targetname",
    "-p": "portal",
    "--portal": "portal",
    "-I": "interface",
    "--interface": "interface",
    "-o": "op",
    "--op": "op",
    "-n": "name",
    "--name": "name",
    "-v": "value",
    "--value": "value",
}
_FLAGS = {
    "-l": "login",
    "--login": "login",
    "-u": "logout",
    "--logout": "logout",
    "-R": "rescan",
    "--rescan": "rescan",
}
_DEFAULT_IFACE = "default"

# The messages iscsiadm prints for the statuses the fake answers with.
_LOGIN_ERRORS = {
    5: "encountered iSCSI login failure",
    8: "connection timed out",
    19: "encountered non-retryable iSCSI login failure",
    24: "iSCSI login failed due to authorization failure",
}


@dataclass(frozen=True, slots=True)
class FakeTarget:
    """A target the fake's network offers at one portal.

    :ivar portal: normalised (``address:port``, ``[v6]:port``).
    :ivar luns: ``(lun number, source)`` pairs, what a login finds.
    :ivar chap: the credentials it insists on, ``None`` for none.
    """

    iqn: str
    portal: str
    tpgt: int
    luns: tuple[tuple[int, LunSource], ...]
    chap: ChapCredentials | None = None


@dataclass(slots=True)
class NodeRecord:
    """A node record (``/etc/iscsi/nodes``) the fake keeps.

    :ivar settings: every ``-o update`` made, ``name -> value`` (the CHAP
        password in clear, as iscsid keeps it).
    """

    iqn: str
    portal: str
    iface: str
    tpgt: int | None
    settings: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class FakeSession:
    """A logged-in session.

    :ivar host: the SCSI host number its LUNs hang from.
    :ivar state: ``LOGGED_IN`` or ``FAILED``.
    :ivar luns: the LUN numbers plugged.
    """

    session_id: int
    host: int
    iqn: str
    portal: str
    iface: str
    tpgt: int
    state: str = "LOGGED_IN"
    luns: list[int] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        """:returns: ``(iqn, portal, iface)``. Never raises."""
        return (self.iqn, self.portal, self.iface)


class _Usage(Exception):
    """Arguments the fake does not understand: exit 7."""


def _result(argv: tuple[str, ...], code: int, stdout: str = "", stderr: str = "") -> CommandResult:
    return CommandResult(argv=argv, returncode=code, stdout=stdout, stderr=stderr)


def _split_portal(text: str) -> tuple[str, int | None]:
    portal, comma, tag = text.rpartition(",")
    if not comma or not tag.isdigit():
        portal, tag = text, ""
    try:
        normal = validation.portal("portal", portal)
    except InvalidInput:
        raise _Usage(f"cannot parse portal {text!r}") from None
    return normal, int(tag) if tag else None


def _address_port(portal: str) -> tuple[str, int]:
    address, _, port = portal.rpartition(":")
    return address.strip("[]"), int(port)


def _comma(portal: str) -> str:
    """``192.0.2.10,3260`` as iscsiadm writes a portal in its messages."""
    address, port = _address_port(portal)
    return f"{address},{port}"


class FakeIscsiadm:
    """Plays ``iscsiadm`` against a live testbed (see the module's description).

    :param live: the testbed the sessions and LUNs appear in.
    :param on_events: called with the events of each change, in order.
    :param initiator_iqn: the initiator name of the iSCSI hosts it adds.
    :param fallback: runs any other program; ``None``: they are not installed.
    :ivar calls: every argv run, in order (failed ones too).
    :ivar logins: how many logins made a session.
    :ivar records: the node records, by ``(iqn, portal, iface)``.
    """

    def __init__(
        self,
        live: LiveTestbed,
        *,
        on_events: Callable[[Sequence[Uevent]], None] | None = None,
        initiator_iqn: str = "iqn.1993-08.org.debian:01:tracker-test",
        fallback: CommandExecutor | None = None,
    ) -> None:
        self.live = live
        self.on_events = on_events
        self.initiator_iqn = initiator_iqn
        self.fallback = fallback
        self.calls: list[tuple[str, ...]] = []
        self.logins = 0
        self.records: dict[tuple[str, str, str], NodeRecord] = {}
        self._targets: dict[tuple[str, str], FakeTarget] = {}
        self._sessions: dict[tuple[str, str, str], FakeSession] = {}
        self._last_session_id = 0
        self._login_failures = ArmedFailures()
        self._logout_failures = ArmedFailures()
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"FakeIscsiadm(targets={len(self._targets)}, sessions={len(self._sessions)})"

    # -- what the network offers --

    def add_target(
        self,
        iqn: str,
        portal: str,
        luns: Sequence[tuple[int, LunSource]] = (),
        tpgt: int = 1,
        *,
        chap: ChapCredentials | None = None,
    ) -> FakeTarget:
        """Declare a target reachable at a portal, and what a login to it finds.

        :param portal: ``address[:port]`` (normalised).
        :param luns: ``(lun number, LunIdentity or (Hctl -> LunSpec))`` pairs.
        :param chap: credentials the target insists on (wrong ones: exit 24).
        :returns: the target.
        :raises tracker.exceptions.InvalidInput: a malformed portal.
        """
        target = FakeTarget(iqn, validation.portal("portal", portal), tpgt, tuple(luns), chap)
        with self._lock:
            self._targets[(iqn, target.portal)] = target
        return target

    def add_lun(self, iqn: str, portal: str, lun: int, source: LunSource) -> None:
        """Give a declared target one more LUN; ``-m session --rescan`` finds it.

        :raises tracker.exceptions.TestbedError: when no such target was declared.
        """
        with self._lock:
            key = (iqn, validation.portal("portal", portal))
            target = self._targets.get(key)
            if target is None:
                raise TestbedError(what=f"LUN {lun} of {iqn}", reason="no such target declared")
            self._targets[key] = FakeTarget(
                target.iqn, target.portal, target.tpgt, (*target.luns, (lun, source)), target.chap
            )

    @property
    def sessions(self) -> tuple[FakeSession, ...]:
        """The sessions, by session id. :raises: nothing."""
        with self._lock:
            return tuple(sorted(self._sessions.values(), key=lambda s: s.session_id))

    # -- failures --

    def fail_logins(
        self, returncode: int | None = 24, times: int | None = None, *, stderr: str | None = None
    ) -> None:
        """Make the next logins fail.

        :param returncode: their exit status (24: authorization failure, 8:
            timed out, 19: refused ...), or ``None`` for a login that runs past
            its timeout (:class:`~tracker.exceptions.CommandFailed` raised, as
            :class:`~tracker.host.executor.SubprocessExecutor` does).
        :param times: how many; ``None`` for every one until called with
            ``times=0``.
        :param stderr: the message, iscsiadm's own for the status when ``None``.
        :raises ValueError: a negative ``times``.
        """
        with self._lock:
            self._login_failures.arm(returncode, times, stderr)

    def fail_logouts(
        self, returncode: int | None = 10, times: int | None = None, *, stderr: str | None = None
    ) -> None:
        """Make the next logouts fail (as :meth:`fail_logins`; 10 is ``ISCSI_ERR_LOGOUT``).

        :raises ValueError: a negative ``times``.
        """
        with self._lock:
            self._logout_failures.arm(returncode, times, stderr)

    def _matching(self, iqn: str, portal: str, iface: str | None) -> list[FakeSession]:
        normal = validation.portal("portal", portal)
        found = [
            s
            for s in self._sessions.values()
            if s.iqn == iqn and s.portal == normal and (iface is None or s.iface == iface)
        ]
        if not found:
            raise TestbedError(what=f"session {iqn} at {normal}", reason="not logged in")
        return sorted(found, key=lambda s: s.session_id)

    def _paths(self, session: FakeSession) -> tuple[str, str]:
        kobject = self.live.iscsi_session_path(session.host)
        sid = session.session_id
        return (
            f"{kobject}/iscsi_session/session{sid}",
            f"{kobject}/connection{sid}:0/iscsi_connection/connection{sid}:0",
        )

    def _set_state(
        self, sessions: Sequence[FakeSession], state: str, connection_state: str, event: bool
    ) -> tuple[Uevent, ...]:
        events: list[Uevent] = []
        for session in sessions:
            session_path, connection_path = self._paths(session)
            session.state = state
            if event:
                events += self.live.change(connection_path, {"state": connection_state})
                events += self.live.change(session_path, {"state": state})
            else:
                self.live.set_attribute(connection_path, "state", connection_state)
                self.live.set_attribute(session_path, "state", state)
        self._emit(events)
        return tuple(events)

    def fail_session(
        self,
        iqn: str,
        portal: str,
        *,
        iface: str | None = None,
        connection_state: str = "down",
        event: bool = True,
    ) -> tuple[Uevent, ...]:
        """Make a session fail: its connection goes ``connection_state``, then the
        session ``FAILED``, each with a ``change`` event (or silently, as the
        kernel does, with ``event=False``). It stays listed by ``-m session``;
        a login to it answers 15.

        :param iface: only the session of that iface; ``None``: every one.
        :returns: the events.
        :raises tracker.exceptions.TestbedError: when not logged in.
        """
        with self._lock:
            return self._set_state(
                self._matching(iqn, portal, iface), "FAILED", connection_state, event
            )

    def recover_session(
        self, iqn: str, portal: str, *, iface: str | None = None, event: bool = True
    ) -> tuple[Uevent, ...]:
        """Bring a failed session back: connection ``up``, session ``LOGGED_IN``.

        :returns: the events.
        :raises tracker.exceptions.TestbedError: when not logged in.
        """
        with self._lock:
            return self._set_state(self._matching(iqn, portal, iface), "LOGGED_IN", "up", event)

    def drop_session(
        self, iqn: str, portal: str, *, iface: str | None = None
    ) -> tuple[Uevent, ...]:
        """Remove a session, its LUNs and host with no event reaching anyone:
        ``on_events`` is not called and the testbed sends nothing.

        The events are still made (journalled, and their sequence numbers
        spent): they are returned, for a test to say what was missed.

        :raises tracker.exceptions.TestbedError: when not logged in.
        """
        with self._lock:
            dropped: list[Uevent] = []
            deliver, self.live.deliver = self.live.deliver, False
            try:
                for session in self._matching(iqn, portal, iface):
                    dropped += self._remove(session)
            finally:
                self.live.deliver = deliver
            return tuple(dropped)

    # -- the executor --

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Play one ``iscsiadm`` command.

        :returns: its result, with iscsiadm's exit status and messages.
        :raises tracker.exceptions.CommandNotFound: another program, without
            a ``fallback``.
        :raises tracker.exceptions.CommandFailed: a login or logout made to
            time out.
        """
        args = tuple(argv)
        if not args or Path(args[0]).name != "iscsiadm":
            if self.fallback is not None:
                return self.fallback.run(args, env=env, cwd=cwd, timeout=timeout)
            name = Path(args[0]).name if args else ""
            raise CommandNotFound(command=name, package=name)
        with self._lock:
            self.calls.append(args)
            try:
                return self._dispatch(args, timeout)
            except _Usage as error:
                return _result(args, 7, stderr=f"iscsiadm: {error} (fake iscsiadm)\n")

    def _parse(self, args: tuple[str, ...]) -> tuple[dict[str, str], set[str]]:
        values: dict[str, str] = {}
        flags: set[str] = set()
        words: Iterator[str] = iter(args[1:])
        for word in words:
            option, equals, inline = word.partition("=")
            if option.startswith("--") and equals and option in _OPTIONS:
                values[_OPTIONS[option]] = inline
            elif word in _OPTIONS:
                value = next(words, None)
                if value is None:
                    raise _Usage(f"option {word} needs a value")
                values[_OPTIONS[word]] = value
            elif word in _FLAGS:
                flags.add(_FLAGS[word])
            else:
                raise _Usage(f"unsupported argument {word!r}")
        return values, flags

    def _dispatch(self, args: tuple[str, ...], timeout: float | None) -> CommandResult:
        values, flags = self._parse(args)
        mode = values.get("mode")
        if mode == "session":
            if set(values) - {"mode"} or flags - {"rescan"}:
                raise _Usage("only -m session and -m session --rescan are supported")
            return self._rescan(args) if flags else self._list(args)
        if mode != "node":
            raise _Usage(f"unsupported mode {mode!r}")
        iqn = values.get("targetname")
        if iqn is None or "portal" not in values:
            raise _Usage("-m node needs -T and -p")
        portal, tpgt = _split_portal(values["portal"])
        iface = values.get("interface")
        op = values.get("op")
        actions = [name for name in (op, *sorted(flags)) if name is not None]
        if len(actions) != 1:
            raise _Usage("exactly one of -o OP, --login, --logout")
        action = actions[0]
        if action == "new":
            return self._new(args, iqn, portal, tpgt, iface)
        if action == "update":
            return self._update(args, iqn, portal, iface, values)
        if action == "delete":
            return self._delete(args, iqn, portal, iface)
        if action == "login":
            return self._login(args, iqn, portal, iface, timeout)
        if action == "logout":
            return self._logout(args, iqn, portal, iface, timeout)
        raise _Usage(f"unsupported operation {action!r}")

    # -- node records --

    def _records(self, iqn: str, portal: str, iface: str | None) -> list[NodeRecord]:
        return [
            record
            for (r_iqn, r_portal, r_iface), record in sorted(self.records.items())
            if r_iqn == iqn and r_portal == portal and (iface is None or r_iface == iface)
        ]

    def _new(
        self, args: tuple[str, ...], iqn: str, portal: str, tpgt: int | None, iface: str | None
    ) -> CommandResult:
        name = iface or _DEFAULT_IFACE
        self.records[(iqn, portal, name)] = NodeRecord(iqn, portal, name, tpgt)
        tag = -1 if tpgt is None else tpgt
        return _result(
            args,
            0,
            stdout=f"New iSCSI node [tcp:[hw=,ip=,net_if=,iscsi_if={name}] "
            f"{_comma(portal)},{tag} {iqn}] added\n",
        )

    def _update(
        self,
        args: tuple[str, ...],
        iqn: str,
        portal: str,
        iface: str | None,
        values: Mapping[str, str],
    ) -> CommandResult:
        if "name" not in values or "value" not in values:
            raise _Usage("-o update needs -n NAME and -v VALUE")
        records = self._records(iqn, portal, iface)
        if not records:
            return _result(args, 21, stderr="iscsiadm: No records found\n")
        for record in records:
            record.settings[values["name"]] = values["value"]
        return _result(args, 0)

    def _delete(
        self, args: tuple[str, ...], iqn: str, portal: str, iface: str | None
    ) -> CommandResult:
        records = self._records(iqn, portal, iface)
        if not records:
            return _result(args, 21, stderr="iscsiadm: No records found\n")
        for record in records:
            del self.records[(record.iqn, record.portal, record.iface)]
        return _result(args, 0)

    # -- login and logout --

    def _emit(self, events: Sequence[Uevent]) -> None:
        if events and self.on_events is not None:
            self.on_events(tuple(events))

    def _free_host(self) -> int:
        used = set()
        with_hosts = self.live.sys_dir / "class" / "scsi_host"
        if with_hosts.is_dir():
            for entry in with_hosts.iterdir():
                number = entry.name.removeprefix("host")
                if number.isdigit():
                    used.add(int(number))
        return next(n for n in itertools.count() if n not in used)

    def _next_session_id(self) -> int:
        """A session id above every one made so far, here or in the testbed: the
        kernel counts session ids up and never reuses one."""
        sessions = self.live.sys_dir / "class" / "iscsi_session"
        if sessions.is_dir():
            for entry in sessions.iterdir():
                number = entry.name.removeprefix("session")
                if number.isdigit():
                    self._last_session_id = max(self._last_session_id, int(number))
        self._last_session_id += 1
        return self._last_session_id

    def _lun_specs(self, host: int, luns: Sequence[tuple[int, LunSource]]) -> list[LunSpec]:
        taken = set(self.live.disks)
        specs = []
        index = 0
        for number, source in luns:
            hctl = Hctl(host, 0, 0, number)
            if not isinstance(source, LunIdentity):
                spec = source(hctl)
                if spec.disk is not None:
                    taken.add(spec.disk.name)
                specs.append(spec)
                continue
            while sd_name(index) in taken:
                index += 1
            major, minor = sd_devnum(index)
            taken.add(sd_name(index))
            disk = DiskSpec(
                name=sd_name(index),
                major=major,
                minor=minor,
                udev_properties=source.udev_properties,
            )
            specs.append(
                LunSpec(
                    hctl=hctl,
                    vendor=source.vendor,
                    model=source.model,
                    rev=source.rev,
                    wwid=source.wwid,
                    vpd_pg80=source.vpd_pg80,
                    vpd_pg83=source.vpd_pg83,
                    disk=disk,
                )
            )
        return specs

    def _login(
        self,
        args: tuple[str, ...],
        iqn: str,
        portal: str,
        iface: str | None,
        timeout: float | None,
    ) -> CommandResult:
        records = self._records(iqn, portal, iface)
        if not records:
            return _result(args, 21, stderr="iscsiadm: No records found\n")
        out: list[str] = []
        for record in records:
            where = f"[iface: {record.iface}, target: {iqn}, portal: {_comma(portal)}]"
            if (iqn, portal, record.iface) in self._sessions:
                return _result(
                    args,
                    15,
                    stderr=f"iscsiadm: {record.iface}: 1 session requested, but 1 already "
                    "present.\niscsiadm: Could not log into all portals\n",
                )
            out.append(f"Logging in to {where}\n")
            failure = self._login_failures.take()
            status = self._refusal(record) if failure is None else failure.returncode
            if failure is not None or status is not None:
                code = 8 if status is None else status
                message = (
                    f"iscsiadm: Could not login to {where}.\n"
                    f"iscsiadm: initiator reported error ({code} - "
                    f"{_LOGIN_ERRORS.get(code, 'unknown error')})\n"
                    "iscsiadm: Could not log into all portals\n"
                )
                if failure is not None:
                    return failed_result(args, failure, message, timeout)
                return _result(args, code, stdout="".join(out), stderr=message)
            self._plug(record)
            out.append(f"Login to {where} successful.\n")
        return _result(args, 0, stdout="".join(out))

    def _refusal(self, record: NodeRecord) -> int | None:
        """The status a real target would answer this login with, ``None`` to accept."""
        target = self._targets.get((record.iqn, record.portal))
        if target is None:
            known_portal = any(portal == record.portal for _iqn, portal in self._targets)
            return 19 if known_portal else 8
        if target.chap is not None:
            settings = record.settings
            if (
                settings.get("node.session.auth.authmethod") != "CHAP"
                or settings.get("node.session.auth.username") != target.chap.username
                or settings.get("node.session.auth.password") != target.chap.password
            ):
                return 24
        return None

    def _plug(self, record: NodeRecord) -> None:
        target = self._targets[(record.iqn, record.portal)]
        host = self._free_host()
        session_id = self._next_session_id()
        address, port = _address_port(record.portal)
        start = len(self.live.events)
        self.live.add_iscsi_host(IscsiHostSpec(host=host, initiator_iqn=self.initiator_iqn))
        events = list(self.live.events[start:])
        specs = self._lun_specs(host, target.luns)
        events += self.live.plug_iscsi_session(
            IscsiSessionSpec(
                host=host,
                session=session_id,
                target_iqn=record.iqn,
                portal_address=address,
                portal_port=port,
                tpgt=target.tpgt,
                iface=record.iface,
            ),
            specs,
        )
        self._sessions[(record.iqn, record.portal, record.iface)] = FakeSession(
            session_id=session_id,
            host=host,
            iqn=record.iqn,
            portal=record.portal,
            iface=record.iface,
            tpgt=target.tpgt,
            luns=[spec.hctl.lun for spec in specs],
        )
        self.logins += 1
        self._emit(events)

    def _remove(self, session: FakeSession) -> list[Uevent]:
        events = list(self.live.unplug_iscsi_session(session.host))
        events += self.live.unplug_iscsi_host(session.host)
        del self._sessions[session.key]
        return events

    def _logout(
        self,
        args: tuple[str, ...],
        iqn: str,
        portal: str,
        iface: str | None,
        timeout: float | None,
    ) -> CommandResult:
        try:
            sessions = self._matching(iqn, portal, iface)
        except TestbedError:
            return _result(args, 21, stderr="iscsiadm: No matching sessions found\n")
        failure = self._logout_failures.take()
        if failure is not None:
            return failed_result(
                args,
                failure,
                "iscsiadm: Could not logout of all requested sessions\n",
                timeout,
            )
        out = []
        for session in sessions:
            where = f"[sid: {session.session_id}, target: {iqn}, portal: {_comma(portal)}]"
            out.append(f"Logging out of session {where}\n")
            self._emit(self._remove(session))
            out.append(f"Logout of {where} successful.\n")
        return _result(args, 0, stdout="".join(out))

    # -- sessions --

    def _list(self, args: tuple[str, ...]) -> CommandResult:
        sessions = self.sessions
        if not sessions:
            return _result(args, 21, stderr="iscsiadm: No active sessions.\n")
        lines = [
            f"tcp: [{s.session_id}] {s.portal},{s.tpgt} {s.iqn} (non-flash)\n" for s in sessions
        ]
        return _result(args, 0, stdout="".join(lines))

    def _rescan(self, args: tuple[str, ...]) -> CommandResult:
        sessions = self.sessions
        if not sessions:
            return _result(args, 21, stderr="iscsiadm: No session found.\n")
        out = []
        for session in sessions:
            out.append(
                f"Rescanning session [sid: {session.session_id}, target: {session.iqn}, "
                f"portal: {_comma(session.portal)}]\n"
            )
            target = self._targets.get((session.iqn, session.portal))
            if target is None:
                continue
            new = [(n, source) for n, source in target.luns if n not in session.luns]
            events: list[Uevent] = []
            for spec in self._lun_specs(session.host, new):
                events += self.live.plug_lun(spec)
                session.luns.append(spec.hctl.lun)
            self._emit(events)
        return _result(args, 0, stdout="".join(out))
