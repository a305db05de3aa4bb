"""The connection monitor: events start reconnects, the periodic check catches missed
ones, backoff on the fake clock, flaps, unmanage at any time, leases across processes.

Logins are the fake ``iscsiadm``'s (``FakeIscsiadm.logins`` counts sessions
made); their uevents reach the monitor's engine through the rig's in-memory
event source, so a session failure travels the same path as on a host.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import statistics
import threading
import time

import pytest
from testfixtures import LogCapture

from tracker import exceptions
from tracker.connections.monitor import ConnectionMonitor, MonitorSettings
from tracker.db import storage_connections as rows
from tracker.db.models import utcnow
from tracker.db.store import Store
from tracker.host.executor import CommandResult
from tracker.host.iscsiadm import ChapCredentials
from tracker.host.sources import SysfsTreeSource
from tracker.testing import workers
from tracker.testing.fakes import FakeClock
from tracker.waiting.model import StorageModel

from .conftest import EXPORT, HOST, IQN, ISCSI_URI, NFS_URI, PORTAL, QUICK, Rig


def manage_and_connect(rig: Rig, monitor: ConnectionMonitor, *ids: str) -> None:
    for connection in ids or ("vol-1",):
        rig.manager.manage_storage_connection(ISCSI_URI, connection)
    monitor.start()
    rig.until(lambda: all(rig.connected(i) for i in ids or ("vol-1",)))


def fake_clock_monitor(rig: Rig, settings: MonitorSettings) -> tuple[ConnectionMonitor, FakeClock]:
    """A monitor whose pauses run on a fake clock (the model's engine keeps the real one)."""
    clock = FakeClock(real_wait=0.005)
    model = StorageModel(
        rig.store, host_name=HOST, source=SysfsTreeSource(rig.live.root), events=rig.new_events()
    )
    monitor = rig.monitor(settings=settings, clock=clock, engine=model.engine)
    rig.models.append(model)
    return monitor, clock


def failing_logins(rig: Rig, until: float, clock: FakeClock, code: int = 8) -> threading.Event:
    """Logins time out (status ``code``) while the fake clock is before ``until``."""
    done = threading.Event()

    def before(argv: tuple[str, ...]) -> CommandResult | None:
        if "--login" in argv and clock.monotonic() < until:
            return CommandResult(argv=argv, returncode=code, stdout="", stderr="timed out")
        if "--login" in argv:
            done.set()
        return None

    rig.executor.before = before
    return done


# --- connecting and reconnecting -----------------------------------------------------------


def test_the_monitor_connects_what_is_managed(rig: Rig) -> None:
    rig.manager.manage_storage_connection(ISCSI_URI, "vol-1")
    rig.manager.manage_storage_connection(NFS_URI, "share")
    with rig.monitor() as monitor:
        rig.until(lambda: rig.connected("vol-1") and rig.connected("share"))
        assert monitor.running
    assert rig.iscsiadm.logins == 1 and rig.mount.mounts == 1
    listing = rig.manager.get_storage_connection_list()
    assert listing["vol-1"].last_error is None and listing["vol-1"].attempts == 0
    assert not monitor.running


def test_a_connection_managed_while_running_is_connected_at_once(rig: Rig) -> None:
    with rig.monitor():
        rig.until(lambda: rig.monitors[0].running)
        time.sleep(0.05)
        rig.manager.manage_storage_connection(ISCSI_URI, "vol-1")
        took = rig.until(lambda: rig.connected("vol-1"), timeout=5)
    assert took < QUICK.check_interval  # the manage woke it, not the periodic check


@pytest.mark.parametrize("run", range(5))
def test_a_reconnect_starts_within_100_ms_of_the_failure_event(rig: Rig, run: int) -> None:
    monitor = rig.monitor()
    manage_and_connect(rig, monitor)
    # the garbage of earlier tests is not the monitor's: a full collection of it
    # in the middle of the measurement takes about 100 ms on this machine
    gc.collect()
    failed_at = time.monotonic()
    rig.iscsiadm.fail_session(IQN, PORTAL)
    rig.until(lambda: len(rig.executor.logins()) == 2, timeout=5)
    started = [when - failed_at for when, _ in rig.executor.started if when > failed_at]
    # the reconnect starts by logging the unhealthy session out, then logs in again
    assert started[0] < 0.1, started
    assert rig.executor.started[-len(started)][1][-1] == "--logout"
    rig.until(lambda: rig.connected("vol-1"))
    assert rig.iscsiadm.logins == 2


def test_a_failure_without_an_event_is_caught_by_the_periodic_check(rig: Rig) -> None:
    monitor = rig.monitor()
    manage_and_connect(rig, monitor)
    rig.iscsiadm.fail_session(IQN, PORTAL, event=False)  # the kernel said nothing
    took = rig.until(lambda: rig.iscsiadm.logins == 2, timeout=5)
    assert took < QUICK.check_interval + 0.5
    rig.until(lambda: rig.connected("vol-1"))


def test_a_session_gone_without_a_remove_event_is_caught_too(rig: Rig) -> None:
    """nvme-stas's issue #261: the remove events were missed, nothing noticed."""
    monitor = rig.monitor()
    manage_and_connect(rig, monitor)
    missed = rig.iscsiadm.drop_session(IQN, PORTAL)
    assert missed  # there were events; nobody heard them
    took = rig.until(lambda: rig.iscsiadm.logins == 2, timeout=5)
    assert took < QUICK.check_interval + 0.5
    rig.until(lambda: rig.connected("vol-1"))
    assert len(rig.iscsiadm.sessions) == 1


def test_an_nfs_export_that_vanished_is_mounted_again(rig: Rig) -> None:
    rig.manager.manage_storage_connection(NFS_URI, "share")
    with rig.monitor():
        rig.until(lambda: rig.connected("share"))
        point = rig.mount.entries[-1].mount_point
        rig.mount.vanish(point)
        rig.until(lambda: rig.mount.mounts == 2, timeout=QUICK.check_interval + 1)
        rig.until(lambda: rig.connected("share"))
    assert rig.mount.entries[-1].source == EXPORT


def test_a_session_that_recovers_by_itself_is_not_logged_in_again(rig: Rig) -> None:
    slow = MonitorSettings(check_interval=0.5, backoff_initial=5, backoff_max=5, jitter=0)
    rig.iscsiadm.fail_logins(8, times=1)
    rig.manager.manage_storage_connection(ISCSI_URI, "vol-1")
    with rig.monitor(settings=slow):
        rig.until(lambda: rig.manager.get_storage_connection_list()["vol-1"].attempts == 1)
        rig.iscsiadm.run(("iscsiadm", "-m", "node", "-T", IQN, "-p", PORTAL, "-o", "new"))
        rig.iscsiadm.run(("iscsiadm", "-m", "node", "-T", IQN, "-p", PORTAL, "--login"))
        rig.until(lambda: rig.connected("vol-1"), timeout=3)  # well before the 5 s pause
        record = rig.manager.get_storage_connection_list()["vol-1"]
    assert (record.last_error, record.attempts) == (None, 0)
    assert rig.iscsiadm.logins == 1


# --- backoff, outages, flaps --------------------------------------------------------------


def test_failed_attempts_back_off_exponentially_to_the_cap(rig: Rig) -> None:
    settings = MonitorSettings(
        check_interval=3600, backoff_initial=1, backoff_max=60, jitter=0, confirm_timeout=1
    )
    monitor, clock = fake_clock_monitor(rig, settings)
    done = failing_logins(rig, until=clock.monotonic() + 400, clock=clock)
    rig.manager.manage_storage_connection(ISCSI_URI, "vol-1")
    with monitor:
        assert done.wait(20)
        rig.until(lambda: rig.connected("vol-1"))
    assert clock.waits[:8] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert set(clock.waits[6:]) == {60}
    assert sum(clock.waits) >= 400
    assert len(rig.executor.logins()) == len(clock.waits) + 1


def test_jitter_is_added_and_the_cap_holds_with_it(rig: Rig) -> None:
    settings = MonitorSettings(
        check_interval=3600, backoff_initial=1, backoff_max=10, jitter=3, confirm_timeout=1
    )
    monitor, clock = fake_clock_monitor(rig, settings)
    done = failing_logins(rig, until=clock.monotonic() + 200, clock=clock)
    rig.manager.manage_storage_connection(ISCSI_URI, "vol-1")
    with monitor:
        assert done.wait(20)
    pauses = clock.waits
    for attempt, pause in enumerate(pauses[:3]):
        assert 2**attempt <= pause <= 2**attempt + 3
    assert max(pauses) <= 10
    assert any(pause != 2**attempt for attempt, pause in enumerate(pauses[:3]))  # jittered
    assert statistics.mean(pauses[4:]) > 8  # at the cap, mostly


def test_a_fifteen_minute_outage_ends_reconnected_without_help(rig: Rig) -> None:
    settings = MonitorSettings()  # the defaults: 1 s doubling to 300 s, 1 s jitter
    monitor, clock = fake_clock_monitor(rig, settings)
    start = clock.monotonic()
    rig.manager.manage_storage_connection(ISCSI_URI, "vol-1")
    monitor.start()
    rig.until(lambda: rig.connected("vol-1"))
    done = failing_logins(rig, until=start + 15 * 60, clock=clock)
    real = time.monotonic()
    rig.iscsiadm.fail_session(IQN, PORTAL)
    rig.until(lambda: rig.manager.get_storage_connection_list()["vol-1"].last_error is not None)
    error = rig.manager.get_storage_connection_list()["vol-1"].last_error
    assert error is not None and error.code == "ISCSI_ERR_TRANS_TIMEOUT"
    assert done.wait(30)
    rig.until(lambda: rig.connected("vol-1"))
    monitor.stop()
    assert time.monotonic() - real < 15  # fake time: nothing slept for real
    assert clock.monotonic() - start >= 15 * 60
    assert max(clock.waits) <= 300
    # 1, 2, 4 ... 256, then 300: a dozen attempts over fifteen minutes, not a storm
    assert 10 <= len(rig.executor.logins()) - 1 <= 13
    record = rig.manager.get_storage_connection_list()["vol-1"]
    assert (record.last_error, record.attempts, record.state) == (None, 0, "connected")


def test_a_hundred_flaps_make_a_hundred_logins_and_leak_no_thread(rig: Rig) -> None:
    before = threading.active_count()
    monitor = rig.monitor()
    manage_and_connect(rig, monitor)
    for flap in range(100):
        rig.iscsiadm.fail_session(IQN, PORTAL)
        rig.until(lambda n=flap: rig.iscsiadm.logins == n + 2, timeout=5)
        rig.until(lambda: rig.connected("vol-1") and not monitor.workers(), timeout=5)
    time.sleep(0.2)  # a storm would show here
    assert rig.iscsiadm.logins == 101
    assert monitor.attempts == 101
    assert len(rig.iscsiadm.sessions) == 1
    monitor.stop()
    rig.until(lambda: threading.active_count() <= before, timeout=5)


# --- errors are kept, and cleared -----------------------------------------------------------


def test_the_last_error_keeps_code_and_message_until_a_success(rig: Rig) -> None:
    rig.iscsiadm.fail_logins(24, times=2)
    rig.manager.manage_storage_connection(ISCSI_URI, "vol-1")
    with LogCapture("tracker.connections.monitor", level=logging.WARNING) as logs, rig.monitor():
        rig.until(lambda: rig.manager.get_storage_connection_list()["vol-1"].attempts >= 1)
        record = rig.manager.get_storage_connection_list()["vol-1"]
        assert record.state in ("pending", "reconnecting")
        assert record.last_error is not None
        assert record.last_error.code == "ISCSI_ERR_LOGIN_AUTH_FAILED"
        assert "authorization failure" in record.last_error.message
        assert record.as_dict()["lastError"]["code"] == "ISCSI_ERR_LOGIN_AUTH_FAILED"
        rig.until(lambda: rig.connected("vol-1"))
    record = rig.manager.get_storage_connection_list()["vol-1"]
    assert (record.last_error, record.attempts) == (None, 0)
    assert "attempt 1 failed" in logs.records[0].getMessage()


# --- unmanage at any time -------------------------------------------------------------------


def test_unmanage_during_the_backoff_stops_the_worker_at_once(rig: Rig) -> None:
    slow = MonitorSettings(check_interval=0.5, backoff_initial=30, backoff_max=30, jitter=0)
    rig.iscsiadm.fail_logins(8)
    rig.manager.manage_storage_connection(ISCSI_URI, "vol-1")
    with rig.monitor(settings=slow) as monitor:
        rig.until(lambda: len(rig.executor.logins()) == 1)
        rig.until(lambda: monitor.workers() == ("vol-1",))
        rig.manager.unmanage_storage_connection("vol-1")
        took = rig.until(lambda: monitor.workers() == (), timeout=2)
        time.sleep(0.6)  # a periodic check passes
    assert took < 0.5  # not at the end of the 30 s pause
    assert len(rig.executor.logins()) == 1


def test_unmanage_while_a_login_runs_logs_it_out_when_it_lands(rig: Rig) -> None:
    entered, release = threading.Event(), threading.Event()

    def before(argv: tuple[str, ...]) -> CommandResult | None:
        if "--login" in argv:
            entered.set()
            release.wait(10)
        return None

    rig.executor.before = before
    rig.manager.manage_storage_connection(ISCSI_URI, "vol-1")
    with rig.monitor() as monitor:
        assert entered.wait(10)
        result = rig.manager.unmanage_storage_connection("vol-1")
        assert result.disconnected is False  # nothing to disconnect yet
        release.set()
        rig.until(lambda: not rig.iscsiadm.sessions and not monitor.workers())
    assert rig.iscsiadm.logins == 1
    assert rig.manager.get_storage_connection_list() == {}


def test_the_monitor_stops_cleanly_and_a_new_one_takes_over(rig: Rig) -> None:
    before = threading.active_count()
    monitor = rig.monitor()
    manage_and_connect(rig, monitor)
    monitor.stop()
    monitor.stop()  # idempotent
    assert not monitor.running
    with pytest.raises(exceptions.InvalidInput) as caught:
        monitor.start()  # its event source is closed
    assert "a new monitor" in str(caught.value)
    again = rig.monitor()
    with again:
        with pytest.raises(exceptions.InvalidInput):
            again.start()  # running already
        rig.iscsiadm.fail_session(IQN, PORTAL)
        rig.until(lambda: rig.iscsiadm.logins == 2)
    rig.until(lambda: threading.active_count() <= before, timeout=5)


# --- leases: several processes on one store ------------------------------------------------


def test_two_monitors_sharing_a_store_reconnect_once(rig: Rig) -> None:
    first = rig.monitor(owner="process-a")
    second = rig.monitor(rig.new_manager(), owner="process-b")
    manage_and_connect(rig, first)
    second.start()
    time.sleep(0.3)
    for flap in range(10):
        rig.iscsiadm.fail_session(IQN, PORTAL)
        rig.until(lambda n=flap: rig.iscsiadm.logins == n + 2, timeout=5)
        rig.until(
            lambda: rig.connected("vol-1") and not first.workers() and not second.workers(),
            timeout=10,
        )
    time.sleep(0.3)
    assert rig.iscsiadm.logins == 11
    assert len(rig.iscsiadm.sessions) == 1


def test_a_lapsed_lease_is_taken_over(rig: Rig) -> None:
    rig.manager.manage_storage_connection(ISCSI_URI, "vol-1")
    now = utcnow()
    ttl = dt.timedelta(seconds=300)
    assert rows.take_lease(rig.store, HOST, "vol-1", "dead-process", ttl, now)
    assert not rows.take_lease(rig.store, HOST, "vol-1", "me", ttl, now + dt.timedelta(seconds=299))
    assert rows.take_lease(rig.store, HOST, "vol-1", "me", ttl, now + dt.timedelta(seconds=301))
    assert rows.take_lease(rig.store, HOST, "vol-1", "me", ttl, now + dt.timedelta(seconds=302))
    rows.release_lease(rig.store, HOST, "vol-1", "dead-process")  # not its lease any more
    assert not rows.take_lease(rig.store, HOST, "vol-1", "third", ttl, now)


@pytest.mark.parametrize("dialect", ["postgresql", "mariadb", "sqlite"], indirect=True)
def test_processes_racing_for_a_lease_leave_one_holder(rig: Rig) -> None:
    rig.manager.manage_storage_connection(ISCSI_URI, "vol-1")
    outcome = workers.race_storage_connection_lease(
        workers.url_text(rig.store), HOST, "vol-1", racers=4
    )
    assert sorted(outcome.values()) == [False, False, False, True]
    holder = rows.get(rig.store, HOST, "vol-1")
    assert holder is not None and outcome[holder.lease_owner or ""] is True


@pytest.mark.parametrize("dialect", ["postgresql"], indirect=True)
def test_no_reconnect_while_another_process_holds_the_lease(rig: Rig) -> None:
    monitor = rig.monitor()
    manage_and_connect(rig, monitor)
    with workers.Background(
        workers.hold_storage_connection_lease,
        workers.url_text(rig.store),
        HOST,
        "vol-1",
    ):
        rig.iscsiadm.fail_session(IQN, PORTAL)
        time.sleep(1.0)
        assert rig.iscsiadm.logins == 1  # the other process holds it
    rig.until(lambda: rig.iscsiadm.logins == 2, timeout=5)
    rig.until(lambda: rig.connected("vol-1"))


# --- restarts and secrets -----------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"], indirect=True)
def test_a_restarted_monitor_resumes_managing(rig: Rig) -> None:
    first = rig.monitor()
    manage_and_connect(rig, first)
    first.stop()  # the process goes away...
    rig.iscsiadm.drop_session(IQN, PORTAL)  # ...and the session while nobody looked
    again = Store(rig.store.url, auto_upgrade="never")
    try:
        manager = rig.new_manager(again)  # a new process: nothing in memory
        with rig.monitor(manager):
            rig.until(lambda: rig.iscsiadm.logins == 2)
            rig.until(lambda: manager.get_storage_connection_list()["vol-1"].connected)
    finally:
        again.dispose()


def test_the_monitor_never_logs_a_secret(rig: Rig) -> None:
    rig.iscsiadm.add_target(IQN, PORTAL, chap=ChapCredentials("tenant-7731", "s3cr3t-Pa55"))
    path = rig.directory / "chap"
    path.write_text("username = tenant-7731\npassword = s3cr3t-Pa55\n")
    path.chmod(0o600)
    rig.iscsiadm.fail_logins(24, times=1)
    with LogCapture(level=logging.DEBUG) as logs:
        rig.manager.manage_storage_connection(
            ISCSI_URI, "vol-1", options={"secret_file": str(path)}
        )
        with rig.monitor():
            rig.until(lambda: rig.connected("vol-1"))
            rig.iscsiadm.fail_session(IQN, PORTAL)
            rig.until(lambda: rig.iscsiadm.logins == 2)
        listing = repr(rig.manager.get_storage_connection_list())
    assert rig.iscsiadm.records  # the CHAP settings reached iscsiadm
    text = listing + " ".join(f"{r.getMessage()} {r.args!r}" for r in logs.records)
    assert "***" in text  # the command lines were logged, redacted
    assert "s3cr3t-Pa55" not in text and "tenant-7731" not in text
