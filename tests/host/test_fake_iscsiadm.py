"""The fake iscsiadm behaves like open-iscsi's in every way tracker relies on.

:class:`~tracker.testing.iscsiadm.FakeIscsiadm` is driven through the real
wrapper, :class:`~tracker.host.iscsiadm.Iscsiadm`, wherever the wrapper has the
operation; what a login does is checked three ways: ``iscsiadm -m session`` as
the wrapper parses it, the testbed's sysfs as tracker's discovery reads it,
and the uevents handed to ``on_events`` (and, with ``deliver=True``, sent to a
monitor's socket) in the kernel's order.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from testfixtures import LogCapture

from tracker.discovery.discover import discover
from tracker.discovery.model import HostState, IscsiPathIds, Portal, Transport
from tracker.exceptions import ConnectorFailed, TestbedError
from tracker.host.executor import CommandResult
from tracker.host.iscsiadm import ChapCredentials, Iscsiadm, IscsiadmSession
from tracker.host.mounts import Mounter
from tracker.host.sources import SysfsTreeSource
from tracker.testing.iscsiadm import FakeIscsiadm
from tracker.testing.live import LiveTestbed, to_device_events
from tracker.testing.mounts import FakeMount
from tracker.testing.specs import DiskSpec, Hctl, HostSpec, LunSpec, sd_devnum
from tracker.testing.topologies import iscsi_multipath, synthetic_identity
from tracker.testing.uevents import Uevent

IQN = "iqn.2010-10.org.openstack:volume-5f1e0c2a"
PORTAL = "192.0.2.10:3260"
SECURE_IQN = "iqn.2010-10.org.openstack:volume-chap"
SECURE_PORTAL = "192.0.2.20:3260"
USER = "tenant-42-user"
PASSWORD = "s3cr3t-Pa55w0rd!"
CHAP = ChapCredentials(USER, PASSWORD)
LOGIN = ("iscsiadm", "-m", "node", "-T", IQN, "-p", PORTAL, "--login")
LOGOUT = ("iscsiadm", "-m", "node", "-T", IQN, "-p", PORTAL, "--logout")
RESCAN = ("iscsiadm", "-m", "session", "--rescan")

Kind = tuple[str, str, str | None]

HOST_ADD: list[Kind] = [
    ("add", "scsi", "scsi_host"),
    ("add", "scsi_host", None),
    ("add", "iscsi_host", None),
]
SESSION_ADD: list[Kind] = [("add", "iscsi_session", None), ("add", "iscsi_connection", None)]
TARGET_ADD: list[Kind] = [("add", "scsi", "scsi_target")]
LUN_ADD: list[Kind] = [
    ("add", "scsi", "scsi_device"),
    ("add", "scsi_device", None),
    ("add", "scsi_disk", None),
    ("add", "block", "disk"),
]


def kinds(events: Sequence[Uevent]) -> list[Kind]:
    return [(e.action, e.subsystem, e.devtype) for e in events]


def reverse_removal(added: Sequence[Kind]) -> list[Kind]:
    return [("remove", subsystem, devtype) for _action, subsystem, devtype in reversed(added)]


def scan(live: LiveTestbed) -> HostState:
    """What tracker's discovery makes of the testbed's sysfs now."""
    return discover(SysfsTreeSource(live.root).scan(), "fake-host")


def tree(root: Path) -> dict[str, str]:
    """Every file and link below ``root`` (empty directories left out, as the
    kernel keeps class directories once they exist)."""
    found: dict[str, str] = {}
    for directory, subdirs, files in os.walk(root):
        for name in [*files, *subdirs]:
            path = Path(directory) / name
            key = str(path.relative_to(root))
            if key.startswith(".tracker-"):
                continue
            if path.is_symlink():
                found[key] = "-> " + os.readlink(path)
            elif path.is_file():
                found[key] = path.read_bytes().hex()
    return found


def flat(batches: Sequence[Sequence[Uevent]]) -> list[Uevent]:
    return [event for batch in batches for event in batch]


@pytest.fixture
def live(bed_dir: Path) -> LiveTestbed:
    return LiveTestbed(bed_dir, deliver=False)


@pytest.fixture
def batches() -> list[tuple[Uevent, ...]]:
    return []


@pytest.fixture
def fake(live: LiveTestbed, batches: list[tuple[Uevent, ...]]) -> FakeIscsiadm:
    fake = FakeIscsiadm(live, on_events=lambda events: batches.append(tuple(events)))
    fake.add_target(IQN, "192.0.2.10", [(0, synthetic_identity(0)), (1, synthetic_identity(1))])
    fake.add_target(SECURE_IQN, SECURE_PORTAL, [(0, synthetic_identity(2))], chap=CHAP)
    return fake


@pytest.fixture
def adm(fake: FakeIscsiadm) -> Iscsiadm:
    return Iscsiadm(fake, timeout=5)


# --- login, seen three ways ---------------------------------------------------------


def test_login_makes_a_session_iscsiadm_sysfs_and_the_events_agree_on(
    live: LiveTestbed, fake: FakeIscsiadm, adm: Iscsiadm, batches: list[tuple[Uevent, ...]]
) -> None:
    assert adm.sessions() == ()
    adm.login(IQN, "192.0.2.10")

    # 1. iscsiadm -m session, as the wrapper parses it
    assert adm.sessions() == (IscsiadmSession(1, "tcp", PORTAL, 1, IQN),)
    listed = fake.run(("iscsiadm", "-m", "session")).stdout
    assert listed == f"tcp: [1] {PORTAL},1 {IQN} (non-flash)\n"

    # 2. sysfs, as discovery reads it
    state = scan(live)
    assert state.warnings == ()
    (session,) = state.iscsi_sessions
    assert (session.session_id, session.host, session.target_iqn, session.tpgt) == (1, 0, IQN, 1)
    assert (session.state, session.connection_state) == ("LOGGED_IN", "up")
    assert session.iface == "default"
    assert session.portal == Portal("192.0.2.10", 3260)
    (host,) = state.scsi_hosts
    assert (host.number, host.transport, host.driver) == (0, Transport.ISCSI, "iscsi_tcp")
    assert host.iscsi_initiator_name == fake.initiator_iqn
    assert [(str(d.hctl), d.block_name) for d in state.scsi_devices] == [
        ("0:0:0:0", "sda"),
        ("0:0:0:1", "sdb"),
    ]
    for device, index in zip(state.scsi_devices, (0, 1), strict=True):
        assert device.identity.wwid == synthetic_identity(index).id_serial
        assert device.transport_ids == IscsiPathIds(1, IQN, Portal("192.0.2.10", 3260), 1)

    # 3. the events: one batch, in the kernel's order, numbered without a gap
    (events,) = batches
    assert kinds(events) == HOST_ADD + SESSION_ADD + TARGET_ADD + LUN_ADD + LUN_ADD
    assert events == live.events
    assert [e.seqnum for e in events] == list(range(1, 15))
    assert events[3].sys_path == "/devices/platform/host0/session1/iscsi_session/session1"
    assert events[4].sys_path.endswith("/connection1:0/iscsi_connection/connection1:0")
    assert [e.properties.get("DEVNAME") for e in events if e.subsystem == "block"] == [
        "sda",
        "sdb",
    ]
    # every add names a device the source can read, and tracker's decoder reads every event
    source = SysfsTreeSource(live.root)
    for event in events:
        record = source.lookup(event.sys_path)
        assert record is not None and record.subsystem == event.subsystem
    assert [e.action.value for e in to_device_events(events)] == ["add"] * 14
    assert fake.logins == 1


def test_a_login_takes_the_next_free_host_and_never_reuses_a_session_id(
    live: LiveTestbed, fake: FakeIscsiadm, adm: Iscsiadm
) -> None:
    # a local disk on host0 (sda) is already there
    live.add_host(HostSpec(host=0))
    major, minor = sd_devnum(0)
    disk = DiskSpec(name="sda", major=major, minor=minor)
    live.plug_lun(LunSpec(hctl=Hctl(0, 0, 0, 0), vendor="ATA", model="LOCAL", disk=disk))
    adm.login(IQN, PORTAL)
    adm.login(SECURE_IQN, SECURE_PORTAL, chap=CHAP)
    assert [(s.session_id, s.host, s.luns) for s in fake.sessions] == [(1, 1, [0, 1]), (2, 2, [0])]
    assert sorted(live.disks) == ["sda", "sdb", "sdc", "sdd"]
    adm.logout(IQN, PORTAL)
    adm.login(IQN, PORTAL)  # host1 is free again; session ids only count up
    assert [(s.session_id, s.host) for s in fake.sessions] == [(2, 2), (3, 1)]
    assert [s.session_id for s in adm.sessions()] == [2, 3]
    state = scan(live)
    assert [(s.session_id, s.host) for s in state.iscsi_sessions] == [(2, 2), (3, 1)]
    assert [str(d.hctl) for d in state.scsi_devices] == ["0:0:0:0", "1:0:0:0", "1:0:0:1", "2:0:0:0"]


def test_a_login_next_to_sessions_built_into_the_testbed_does_not_shadow_them(
    live: LiveTestbed, fake: FakeIscsiadm, adm: Iscsiadm
) -> None:
    iscsi_multipath(live)  # session1 on host0, session2 on host1
    adm.login(IQN, "192.0.2.10")
    assert [(s.session_id, s.host) for s in fake.sessions] == [(3, 2)]
    state = scan(live)
    assert [(s.session_id, s.host) for s in state.iscsi_sessions] == [(1, 0), (2, 1), (3, 2)]
    assert state.warnings == ()


def test_an_ipv6_portal_through_an_iface_with_a_tpgt(
    live: LiveTestbed, fake: FakeIscsiadm, adm: Iscsiadm, batches: list[tuple[Uevent, ...]]
) -> None:
    fake.add_target(IQN, "[2001:db8::1]", [(4, synthetic_identity(3))], tpgt=2)
    adm.login(IQN, "2001:DB8::1", iface="iface0", tpgt=2)
    assert fake.calls[0] == (
        *("iscsiadm", "-m", "node", "-T", IQN, "-p", "[2001:db8::1]:3260,2"),
        *("-I", "iface0", "-o", "new"),
    )
    assert adm.sessions() == (IscsiadmSession(1, "tcp", "[2001:db8::1]:3260", 2, IQN),)
    (session,) = scan(live).iscsi_sessions
    assert session.portal == Portal("2001:db8::1", 3260)
    assert (session.tpgt, session.iface) == (2, "iface0")
    assert [str(d.hctl) for d in scan(live).scsi_devices] == ["0:0:0:4"]
    adm.logout(IQN, "[2001:db8::1]:3260")  # every iface
    assert adm.sessions() == () and fake.records == {}
    assert kinds(batches[-1])[-3:] == reverse_removal(HOST_ADD)


# --- again, and out ---------------------------------------------------------------------


def test_logging_in_again_is_15_which_the_wrapper_takes_as_success(
    live: LiveTestbed, fake: FakeIscsiadm, adm: Iscsiadm, batches: list[tuple[Uevent, ...]]
) -> None:
    adm.login(IQN, PORTAL)
    before = tree(live.root)
    with LogCapture("tracker.host.iscsiadm") as log:
        adm.login(IQN, PORTAL)
    assert any("already logged in" in record.getMessage() for record in log.records)
    again = fake.run(LOGIN)
    assert again.returncode == 15
    assert "1 session requested, but 1 already present" in again.stderr
    assert len(fake.sessions) == 1 and fake.logins == 1
    assert len(adm.sessions()) == 1 and len(scan(live).iscsi_sessions) == 1
    assert len(batches) == 1 and tree(live.root) == before


def test_logout_removes_everything_with_remove_events_in_reverse(
    live: LiveTestbed, fake: FakeIscsiadm, adm: Iscsiadm, batches: list[tuple[Uevent, ...]]
) -> None:
    before = tree(live.root)
    adm.login(IQN, PORTAL)
    assert (IQN, PORTAL, "default") in fake.records
    adm.logout(IQN, PORTAL)
    assert fake.calls[-2:] == [LOGOUT, (*LOGOUT[:-1], "-o", "delete")]
    added, removed = batches
    assert [(e.action, e.sys_path) for e in removed] == [
        ("remove", e.sys_path) for e in reversed(added)
    ]
    for add, remove in zip(reversed(added), removed, strict=True):
        assert remove.properties.get("DEVNAME") == add.properties.get("DEVNAME")
    assert removed[0].seqnum == added[-1].seqnum + 1
    assert [e.action.value for e in to_device_events(removed)] == ["remove"] * len(added)
    assert adm.sessions() == () and fake.sessions == () and fake.records == {}
    state = scan(live)
    assert (state.scsi_hosts, state.iscsi_sessions, state.scsi_devices) == ((), (), ())
    assert tree(live.root) == before


def test_logout_keeps_the_record_when_asked(fake: FakeIscsiadm, adm: Iscsiadm) -> None:
    adm.login(SECURE_IQN, SECURE_PORTAL, chap=CHAP)
    adm.logout(SECURE_IQN, SECURE_PORTAL, forget=False)
    record = fake.records[(SECURE_IQN, SECURE_PORTAL, "default")]
    assert record.settings["node.session.auth.authmethod"] == "CHAP"
    assert fake.sessions == ()


def test_logout_when_not_logged_in_is_21_which_the_wrapper_takes_as_success(
    fake: FakeIscsiadm, adm: Iscsiadm, batches: list[tuple[Uevent, ...]]
) -> None:
    with LogCapture("tracker.host.iscsiadm") as log:
        adm.logout(IQN, PORTAL)
    assert any("not logged in" in record.getMessage() for record in log.records)
    assert fake.calls == [LOGOUT, (*LOGOUT[:-1], "-o", "delete")]
    result = fake.run(LOGOUT)
    assert (result.returncode, result.stderr) == (21, "iscsiadm: No matching sessions found\n")
    assert fake.run(("iscsiadm", "-m", "session")).returncode == 21
    assert fake.run(RESCAN).returncode == 21
    assert batches == []


# --- refused logins ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("iqn", "portal", "code", "status"),
    [
        (IQN, "198.51.100.7", "ISCSI_ERR_TRANS_TIMEOUT", 8),  # nothing answers there
        ("iqn.2010-10.org.openstack:gone", PORTAL, "ISCSI_ERR_FATAL_LOGIN", 19),  # no such target
    ],
)
def test_a_login_nobody_can_answer_is_refused_with_iscsiadms_status(
    live: LiveTestbed,
    fake: FakeIscsiadm,
    adm: Iscsiadm,
    batches: list[tuple[Uevent, ...]],
    iqn: str,
    portal: str,
    code: str,
    status: int,
) -> None:
    with pytest.raises(ConnectorFailed) as caught:
        adm.login(iqn, portal)
    error = caught.value
    assert (error.code, error.returncode) == (code, status)
    assert error.command.endswith(" --login")
    assert f"initiator reported error ({status} - " in error.stderr
    assert fake.sessions == () and adm.sessions() == () and batches == []
    assert scan(live).scsi_hosts == ()


@pytest.mark.parametrize(
    "chap",
    [None, ChapCredentials(USER, "wrong-Pa55w0rd"), ChapCredentials("someone-else", PASSWORD)],
    ids=["missing", "wrong-password", "wrong-user"],
)
def test_chap_target_refuses_missing_or_wrong_credentials_with_24(
    live: LiveTestbed,
    fake: FakeIscsiadm,
    adm: Iscsiadm,
    batches: list[tuple[Uevent, ...]],
    chap: ChapCredentials | None,
) -> None:
    with pytest.raises(ConnectorFailed) as caught:
        adm.login(SECURE_IQN, SECURE_PORTAL, chap=chap)
    error = caught.value
    assert (error.code, error.returncode) == ("ISCSI_ERR_LOGIN_AUTH_FAILED", 24)
    assert "authorization failure" in error.stderr
    for shown in (str(error), error.message, error.command, error.stderr, repr(error)):
        assert PASSWORD not in shown and USER not in shown
        assert "wrong-Pa55w0rd" not in shown
    assert fake.sessions == () and batches == [] and scan(live).iscsi_sessions == ()
    # a login with the right credentials then works (the record is made anew)
    adm.login(SECURE_IQN, SECURE_PORTAL, chap=CHAP)
    assert [s.target_iqn for s in adm.sessions()] == [SECURE_IQN]


def test_right_chap_credentials_log_in_and_are_shown_only_as_stars(
    fake: FakeIscsiadm, adm: Iscsiadm
) -> None:
    with LogCapture("tracker.host.iscsiadm") as log:
        adm.login(SECURE_IQN, SECURE_PORTAL, chap=CHAP)
    assert [s.iqn for s in fake.sessions] == [SECURE_IQN]
    record = fake.records[(SECURE_IQN, SECURE_PORTAL, "default")]
    assert record.settings == {
        "node.session.auth.authmethod": "CHAP",
        "node.session.auth.username": USER,
        "node.session.auth.password": PASSWORD,
    }
    # the fake keeps the real argv (iscsiadm does get the password) ...
    assert sum(PASSWORD in call for call in fake.calls) == 1
    # ... while everything tracker shows of those commands has *** instead
    shown = [record.getMessage() for record in log.records]
    assert sum("node.session.auth.password -v '***'" in line for line in shown) == 1
    assert sum("node.session.auth.username -v '***'" in line for line in shown) == 1
    assert not any(PASSWORD in line or USER in line for line in shown)


class _RefusingPasswordStep:
    """Runs everything on the fake but refuses to store the CHAP password, as a
    node database on a read-only file system would (exit 6)."""

    def __init__(self, fake: FakeIscsiadm) -> None:
        self.fake = fake
        self.calls: list[tuple[str, ...]] = []

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        self.calls.append(tuple(argv))
        if "node.session.auth.password" in argv:
            return CommandResult(
                tuple(argv), 6, "", f"iscsiadm: could not write {argv[-1]} to the record\n"
            )
        return self.fake.run(argv, timeout=timeout)


def test_a_failed_chap_step_shows_the_command_with_stars(fake: FakeIscsiadm) -> None:
    executor = _RefusingPasswordStep(fake)
    with pytest.raises(ConnectorFailed) as caught:
        Iscsiadm(executor).login(SECURE_IQN, SECURE_PORTAL, chap=CHAP)
    error = caught.value
    assert error.code == "ISCSI_ERR_IDBM"
    assert error.command.endswith("-n node.session.auth.password -v '***'")
    assert error.stderr == "iscsiadm: could not write *** to the record"
    assert PASSWORD not in str(error) and USER not in str(error)
    assert PASSWORD in executor.calls[-1]  # what ran had it
    assert len(fake.calls) == 3 and fake.sessions == ()  # new, authmethod, username


# --- failures a test causes -----------------------------------------------------------


def test_fail_logins_fails_exactly_n_logins_then_they_succeed(
    live: LiveTestbed, fake: FakeIscsiadm, adm: Iscsiadm, batches: list[tuple[Uevent, ...]]
) -> None:
    fake.fail_logins(5, times=2)
    for _ in range(2):
        with pytest.raises(ConnectorFailed) as caught:
            adm.login(IQN, PORTAL)
        assert (caught.value.code, caught.value.returncode) == ("ISCSI_ERR_LOGIN", 5)
        assert "initiator reported error (5 - encountered iSCSI login failure)" in (
            caught.value.stderr
        )
        assert fake.sessions == () and batches == [] and scan(live).scsi_hosts == ()
    adm.login(IQN, PORTAL)
    assert fake.logins == 1 and len(batches) == 1
    assert [s.session_id for s in adm.sessions()] == [1]
    assert sum(call == LOGIN for call in fake.calls) == 3


def test_fail_logins_without_times_lasts_until_cleared_and_can_time_out(
    fake: FakeIscsiadm, adm: Iscsiadm
) -> None:
    fake.fail_logins(24, stderr="iscsiadm: custom refusal\n")
    for _ in range(3):
        with pytest.raises(ConnectorFailed) as caught:
            adm.login(IQN, PORTAL)
        assert (caught.value.code, caught.value.stderr) == (
            "ISCSI_ERR_LOGIN_AUTH_FAILED",
            "iscsiadm: custom refusal",
        )
    fake.fail_logins(None, times=1)  # replaces the armed failure
    with pytest.raises(ConnectorFailed) as caught:
        adm.login(IQN, PORTAL)
    assert (caught.value.code, caught.value.returncode) == ("TIMEOUT", None)
    assert "did not finish within 5 s" in caught.value.message
    adm.login(IQN, PORTAL)
    fake.fail_logins(24)
    fake.fail_logins(times=0)
    adm.login(SECURE_IQN, SECURE_PORTAL, chap=CHAP)
    assert len(fake.sessions) == 2
    with pytest.raises(ValueError, match="times"):
        fake.fail_logins(times=-1)


def test_fail_logouts_keeps_the_session(
    live: LiveTestbed, fake: FakeIscsiadm, adm: Iscsiadm, batches: list[tuple[Uevent, ...]]
) -> None:
    adm.login(IQN, PORTAL)
    fake.fail_logouts(times=1)
    with pytest.raises(ConnectorFailed) as caught:
        adm.logout(IQN, PORTAL)
    assert (caught.value.code, caught.value.returncode) == ("ISCSI_ERR_LOGOUT", 10)
    assert len(adm.sessions()) == 1 and len(scan(live).scsi_devices) == 2
    assert len(batches) == 1
    adm.logout(IQN, PORTAL)
    assert adm.sessions() == () and len(batches) == 2


def test_fail_session_and_recover_session_show_in_sysfs_with_change_events(
    live: LiveTestbed, fake: FakeIscsiadm, adm: Iscsiadm, batches: list[tuple[Uevent, ...]]
) -> None:
    adm.login(IQN, PORTAL)
    (session,) = scan(live).iscsi_sessions
    connection_path = f"{live.iscsi_session_path(0)}/connection1:0/iscsi_connection/connection1:0"

    failed = fake.fail_session(IQN, PORTAL)
    assert batches[-1] == failed
    assert [(e.action, e.sys_path) for e in failed] == [
        ("change", connection_path),
        ("change", session.sys_path),
    ]
    assert [e.action.value for e in to_device_events(failed)] == ["change", "change"]
    (now,) = scan(live).iscsi_sessions
    assert (now.state, now.connection_state) == ("FAILED", "down")
    assert [s.state for s in fake.sessions] == ["FAILED"]
    # iscsiadm still lists it and a login finds it there
    assert [s.session_id for s in adm.sessions()] == [1]
    adm.login(IQN, PORTAL)
    assert fake.run(LOGIN).returncode == 15 and fake.logins == 1

    recovered = fake.recover_session(IQN, PORTAL)
    assert batches[-1] == recovered
    assert [(e.action, e.subsystem) for e in recovered] == [
        ("change", "iscsi_connection"),
        ("change", "iscsi_session"),
    ]
    (now,) = scan(live).iscsi_sessions
    assert (now.state, now.connection_state) == ("LOGGED_IN", "up")
    assert scan(live).warnings == ()


def test_a_silent_session_failure_changes_sysfs_only(
    live: LiveTestbed, fake: FakeIscsiadm, adm: Iscsiadm, batches: list[tuple[Uevent, ...]]
) -> None:
    adm.login(IQN, PORTAL)
    seen = len(live.events)
    assert fake.fail_session(IQN, PORTAL, connection_state="failed", event=False) == ()
    assert len(batches) == 1 and len(live.events) == seen
    (now,) = scan(live).iscsi_sessions
    assert (now.state, now.connection_state) == ("FAILED", "failed")
    with pytest.raises(TestbedError, match="not logged in"):
        fake.fail_session(SECURE_IQN, SECURE_PORTAL)


def test_drop_session_removes_it_and_no_listener_hears_of_it(
    live: LiveTestbed, fake: FakeIscsiadm, adm: Iscsiadm, batches: list[tuple[Uevent, ...]]
) -> None:
    before = tree(live.root)
    adm.login(IQN, PORTAL)
    last_heard = batches[-1][-1].seqnum
    dropped = fake.drop_session(IQN, PORTAL)
    assert len(batches) == 1  # on_events was not called
    assert kinds(dropped) == reverse_removal(HOST_ADD + SESSION_ADD + TARGET_ADD + LUN_ADD * 2)
    assert adm.sessions() == () and fake.sessions == ()
    assert scan(live).scsi_hosts == () and tree(live.root) == before
    # the lost events spent their numbers: the next ones leave a gap
    adm.login(IQN, PORTAL)
    assert batches[-1][0].seqnum == last_heard + len(dropped) + 1
    with pytest.raises(TestbedError, match="not logged in"):
        fake.drop_session(SECURE_IQN, SECURE_PORTAL)


class _Monitor:
    """A monitor's socket in the testbed directory, drained by a thread."""

    def __init__(self, root: Path) -> None:
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(root / "event1"))
        self.socket.settimeout(0.05)
        self.received: list[dict[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                datagram = self.socket.recv(65536)
            except TimeoutError:
                continue
            _magic, _size, offset, length = struct.unpack_from("=4sIII", datagram, 8)
            body = datagram[offset : offset + length].decode()
            self.received.append(dict(p.split("=", 1) for p in body.split("\0") if p))

    def wait_for(self, count: int) -> list[dict[str, str]]:
        deadline = time.monotonic() + 5
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        return list(self.received)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()


@pytest.fixture
def monitor(bed_dir: Path) -> Iterator[_Monitor]:
    receiver = _Monitor(bed_dir)
    yield receiver
    receiver.close()


def test_with_deliver_monitors_get_the_events_but_not_a_dropped_sessions(
    bed_dir: Path, monitor: _Monitor
) -> None:
    live = LiveTestbed(bed_dir, deliver=True)
    batches: list[tuple[Uevent, ...]] = []
    fake = FakeIscsiadm(live, on_events=lambda events: batches.append(tuple(events)))
    fake.add_target(IQN, PORTAL, [(0, synthetic_identity(0))])
    adm = Iscsiadm(fake)
    adm.login(IQN, PORTAL)
    fake.drop_session(IQN, PORTAL)
    assert live.deliver  # put back
    adm.login(IQN, PORTAL)
    adm.logout(IQN, PORTAL)
    heard = flat(batches)
    received = monitor.wait_for(len(heard))
    assert [(p["ACTION"], p["DEVPATH"], int(p["SEQNUM"])) for p in received] == [
        (e.action, e.sys_path, e.seqnum) for e in heard
    ]
    assert len(heard) == len(live.events) - 10  # the dropped session's ten were never sent


# --- rescan ----------------------------------------------------------------------------------


def test_rescan_adds_the_luns_declared_since_the_login(
    live: LiveTestbed, fake: FakeIscsiadm, adm: Iscsiadm, batches: list[tuple[Uevent, ...]]
) -> None:
    adm.login(IQN, PORTAL)
    fake.add_lun(IQN, PORTAL, 7, synthetic_identity(9))
    result = fake.run(RESCAN)
    assert result.returncode == 0
    assert result.stdout == f"Rescanning session [sid: 1, target: {IQN}, portal: 192.0.2.10,3260]\n"
    assert kinds(batches[-1]) == LUN_ADD  # the target is there already
    devices = scan(live).scsi_devices
    assert [(str(d.hctl), d.block_name) for d in devices][-1] == ("0:0:0:7", "sdc")
    assert devices[-1].identity.wwid == synthetic_identity(9).id_serial
    assert [s.luns for s in fake.sessions] == [[0, 1, 7]]
    assert fake.run(RESCAN).returncode == 0 and len(batches) == 2  # nothing new, no events
    with pytest.raises(TestbedError, match="no such target"):
        fake.add_lun("iqn.2010-10.org.openstack:gone", PORTAL, 1, synthetic_identity(8))


# --- other commands ----------------------------------------------------------------------


def test_arguments_the_fake_does_not_know_exit_7(fake: FakeIscsiadm) -> None:
    for argv in (
        ("iscsiadm", "-m", "discovery", "-t", "st", "-p", PORTAL),
        ("iscsiadm", "-m", "session", "-P", "3"),
        ("iscsiadm", "-m", "node", "-T", IQN, "--login"),
    ):
        result = fake.run(argv)
        assert result.returncode == 7 and "fake iscsiadm" in result.stderr


def test_other_programs_go_to_the_fallback_or_are_not_installed(
    live: LiveTestbed, tmp_path: Path
) -> None:
    mount = FakeMount(tmp_path, exports={"nfs.example:/export"})
    both = FakeIscsiadm(live, fallback=mount)
    both.add_target(IQN, PORTAL, [(0, synthetic_identity(0))])
    Iscsiadm(both).login(IQN, PORTAL)
    Mounter(both, root=tmp_path).mount_nfs("nfs.example:/export", tmp_path / "c1")
    assert [c[0] for c in both.calls] == ["iscsiadm", "iscsiadm"]
    assert [c[0] for c in mount.calls] == ["mount"]
    with pytest.raises(ConnectorFailed) as caught:
        Mounter(FakeIscsiadm(live), root=tmp_path).umount(tmp_path / "c1")
    assert caught.value.code == "NOT_INSTALLED"
    with pytest.raises(ConnectorFailed) as caught:
        Iscsiadm(mount).sessions()
    assert caught.value.code == "NOT_INSTALLED"
