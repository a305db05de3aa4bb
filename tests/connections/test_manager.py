"""manage / unmanage / list: validation, persistence, reference counting, secrets.

Commands go to the fake ``iscsiadm`` and ``mount`` of a live testbed (see
``conftest.py``); the host's sessions reach the store by a full reconcile, as
``tracker discover`` (or the monitor) writes them.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from sqlalchemy import text
from testfixtures import LogCapture

from tracker import exceptions
from tracker.connections.manager import StorageConnectionManager, connection_id
from tracker.db.models import Base
from tracker.db.store import Store
from tracker.discovery.discover import discover
from tracker.host.iscsiadm import ChapCredentials
from tracker.host.mounts import mount_point_for
from tracker.host.sources import SysfsTreeSource
from tracker.reconcile import reconcile

from .conftest import EXPORT, HOST, IQN, IQN2, ISCSI_URI, NFS_URI, PORTAL, Rig

ALL_DATABASES = pytest.mark.parametrize(
    "dialect", ["sqlite", "postgresql", "mariadb"], indirect=True
)
NODE = ("iscsiadm", "-m", "node", "-T", IQN, "-p", PORTAL)


def sync(rig: Rig) -> None:
    """Reconcile the testbed into the store (what ``tracker discover`` does)."""
    reconcile(rig.store, discover(SysfsTreeSource(rig.live.root).scan(), HOST))


def login(rig: Rig, iqn: str = IQN, iface: str | None = None) -> None:
    """Log in as someone else would (os-brick, an operator), not through tracker."""
    argv = ["iscsiadm", "-m", "node", "-T", iqn, "-p", PORTAL]
    if iface:
        argv += ["-I", iface]
    assert rig.iscsiadm.run([*argv, "-o", "new"]).returncode == 0
    assert rig.iscsiadm.run([*argv, "--login"]).returncode == 0


# --- manage -------------------------------------------------------------------------------


@ALL_DATABASES
def test_manage_registers_and_returns_at_once(rig: Rig) -> None:
    record = rig.manager.manage_storage_connection(ISCSI_URI + "?lun=1", "vol-1")
    assert record.id == "vol-1"
    assert (record.managed, record.connected, record.state) == (True, False, "pending")
    assert record.last_error is None
    assert record.connection_info == {
        "type": "iscsi",
        "portal": PORTAL,
        "target": IQN,
        "lun": 1,
        "iface": None,
        "tpgt": None,
    }
    # it did not connect: that is the monitor's job
    assert rig.executor.started == []
    listing = rig.manager.get_storage_connection_list()
    assert list(listing) == ["vol-1"]
    assert listing["vol-1"].as_dict() == {
        "connected": False,
        "managed": True,
        "lastError": None,
        "connectionInfo": dict(record.connection_info),
        "state": "pending",
        "attempts": 0,
    }


@ALL_DATABASES
def test_a_restarted_process_finds_what_is_managed(rig: Rig, reopen: object) -> None:
    rig.manager.manage_storage_connection(NFS_URI + "?vers=4.1", "share")
    again = Store(rig.store.url, auto_upgrade="never")
    try:
        listing = rig.new_manager(again).get_storage_connection_list()
    finally:
        again.dispose()
    assert listing["share"].connection_info == {
        "type": "nfs",
        "server": "nas.example",
        "export": "/srv/volumes",
        "options": {"vers": "4.1"},
    }


@ALL_DATABASES
def test_an_id_in_use_is_refused_and_nothing_changes(rig: Rig) -> None:
    rig.manager.manage_storage_connection(ISCSI_URI, "vol-1")
    with pytest.raises(exceptions.StorageConnectionInUse) as caught:
        rig.manager.manage_storage_connection(NFS_URI, "vol-1")
    assert caught.value.connection_id == "vol-1"
    assert str(caught.value) == (
        f"storage connection 'vol-1' is already managed on host {HOST}: "
        "unmanage it first, or choose another id"
    )
    listing = rig.manager.get_storage_connection_list()
    assert listing["vol-1"].connection_info["type"] == "iscsi"


def test_the_same_id_on_another_host_is_another_connection(rig: Rig) -> None:
    rig.manager.manage_storage_connection(ISCSI_URI, "vol-1")
    other = StorageConnectionManager(rig.store, host_name="node-2", root=rig.live.root)
    other.manage_storage_connection(NFS_URI, "vol-1")
    assert rig.manager.get_storage_connection_list()["vol-1"].connection_info["type"] == "iscsi"
    assert other.get_storage_connection_list()["vol-1"].connection_info["type"] == "nfs"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "1 to 255 characters"),
        ("a/b", "without '/'"),
        ("/", "without '/'"),
        ("tab\there", "control characters"),
        ("nl\n", "control characters"),
        ("nul\x00", "control characters"),
        ("x" * 256, "longer than 255"),
        (7, "1 to 255 characters"),
        (None, "1 to 255 characters"),
    ],
    ids=["empty", "slash", "only-slash", "tab", "newline", "nul", "too-long", "int", "none"],
)
def test_bad_ids_are_refused_before_anything_is_stored(
    rig: Rig, value: object, reason: str
) -> None:
    with pytest.raises(exceptions.InvalidInput) as caught:
        rig.manager.manage_storage_connection(ISCSI_URI, value)  # type: ignore[arg-type]
    assert caught.value.field == "connection_id"
    assert reason in caught.value.reason
    assert rig.manager.get_storage_connection_list() == {}


def test_ids_of_255_characters_and_unicode_are_fine(rig: Rig) -> None:
    for name in ("x" * 255, "volume été", "vol:1#a b"):
        assert connection_id(name) == name
        rig.manager.manage_storage_connection(f"{ISCSI_URI}?lun={len(name) % 7}", name)
    assert set(rig.manager.get_storage_connection_list()) == {"x" * 255, "volume été", "vol:1#a b"}


def test_a_malformed_uri_is_a_typed_error_showing_the_accepted_forms(rig: Rig) -> None:
    with pytest.raises(exceptions.InvalidStorageUri) as caught:
        rig.manager.manage_storage_connection("iscsi://192.0.2.10/", "vol-1")
    message = str(caught.value)
    assert "iscsi://PORTAL[:PORT]/IQN" in message and "nfs://SERVER/EXPORT" in message
    with pytest.raises(exceptions.UnsupportedScheme):
        rig.manager.manage_storage_connection("nvme://192.0.2.10/nqn.x", "vol-1")
    assert rig.manager.get_storage_connection_list() == {}


def test_options_merge_with_the_query_and_are_stored_parsed(rig: Rig) -> None:
    record = rig.manager.manage_storage_connection(
        "nfs://NAS.example:/srv//volumes/", "share", options={"vers": "4.2", "proto": "tcp"}
    )
    assert record.connection_info["options"] == {"proto": "tcp", "vers": "4.2"}
    stored = rig.manager.get_storage_connection_list()["share"]
    assert stored.connection_info["export"] == "/srv/volumes"
    with pytest.raises(exceptions.InvalidStorageUri):
        rig.manager.manage_storage_connection(NFS_URI + "?vers=3", "other", options={"vers": "4"})


# --- unmanage -----------------------------------------------------------------------------


def test_unmanaging_an_unknown_id_is_a_typed_error(rig: Rig) -> None:
    with pytest.raises(exceptions.StorageConnectionNotFound) as caught:
        rig.manager.unmanage_storage_connection("nope")
    assert caught.value.connection_id == "nope"
    assert "nope" in str(caught.value)
    with pytest.raises(exceptions.InvalidInput):
        rig.manager.unmanage_storage_connection("a/b")


def _establish(rig: Rig, connection: str) -> None:
    """Connect a managed connection as the monitor would, and record it."""
    from tracker.db import storage_connections as rows
    from tracker.db.models import utcnow

    stored = rows.get(rig.store, HOST, connection)
    assert stored is not None
    manager = rig.manager
    target = manager.target_of(stored)
    created = manager.connector(target).connect(target, manager.secret_of(stored))
    rows.record_attempt(rig.store, HOST, connection, now=utcnow(), error=None, established=created)


@ALL_DATABASES
def test_a_shared_target_is_disconnected_with_its_last_id(rig: Rig) -> None:
    # two ids, one target (the LUN does not make another target)
    rig.manager.manage_storage_connection(ISCSI_URI + "?lun=1", "vol-1")
    rig.manager.manage_storage_connection(f"iscsi://192.0.2.10:3260/{IQN.upper()}?lun=2", "vol-2")
    _establish(rig, "vol-1")
    _establish(rig, "vol-2")
    assert rig.iscsiadm.logins == 1
    rig.executor.started.clear()
    first = rig.manager.unmanage_storage_connection("vol-1")
    assert (first.disconnected, first.kept_for) == (False, ("vol-2",))
    assert rig.executor.started == []
    assert len(rig.iscsiadm.sessions) == 1
    last = rig.manager.unmanage_storage_connection("vol-2")
    assert last.disconnected is True
    assert [argv for _, argv in rig.executor.started] == [
        (*NODE, "--logout"),
        (*NODE, "-o", "delete"),
    ]
    assert rig.iscsiadm.sessions == ()
    assert rig.manager.get_storage_connection_list() == {}


def test_a_session_tracker_did_not_make_is_left_logged_in(rig: Rig) -> None:
    login(rig)  # os-brick logged in first
    rig.manager.manage_storage_connection(ISCSI_URI, "vol-1")
    _establish(rig, "vol-1")
    rig.executor.started.clear()
    result = rig.manager.unmanage_storage_connection("vol-1")
    assert result.disconnected is False
    assert result.reason is not None and "did not make" in result.reason
    assert rig.executor.started == []
    assert len(rig.iscsiadm.sessions) == 1


def test_a_failed_disconnect_is_logged_and_returned_not_raised(rig: Rig) -> None:
    rig.manager.manage_storage_connection(ISCSI_URI, "vol-1")
    _establish(rig, "vol-1")
    rig.iscsiadm.fail_logouts(10)
    with LogCapture("tracker.connections.manager", level=logging.WARNING) as logs:
        result = rig.manager.unmanage_storage_connection("vol-1")
    assert result.disconnected is False
    assert result.error is not None and result.error.code == "ISCSI_ERR_LOGOUT"
    assert "could not disconnect" in logs.records[0].getMessage()
    # unmanaged all the same
    assert rig.manager.get_storage_connection_list().get("vol-1") is None


def test_nfs_exports_are_mounted_per_target_and_unmounted_with_the_last_id(rig: Rig) -> None:
    rig.manager.manage_storage_connection(NFS_URI, "a")
    rig.manager.manage_storage_connection("nfs://nas.example:/srv/volumes?vers=4.1", "b")
    _establish(rig, "a")
    _establish(rig, "b")
    point = mount_point_for(rig.mount_base, f"nfs:{EXPORT}")
    assert rig.mount.calls == [("mount", "-t", "nfs", EXPORT, str(point))]
    listing = rig.manager.get_storage_connection_list()
    assert listing["a"].connected and listing["b"].connected
    assert rig.manager.unmanage_storage_connection("a").kept_for == ("b",)
    assert rig.mount.mounted(point)
    assert rig.manager.unmanage_storage_connection("b").disconnected
    assert not rig.mount.mounted(point)
    assert rig.mount.calls[-1] == ("umount", str(point))


# --- list ---------------------------------------------------------------------------------


@ALL_DATABASES
def test_the_list_shows_what_nobody_manages_under_temporary_ids(rig: Rig) -> None:
    login(rig, IQN)
    login(rig, IQN2)
    login(rig, IQN2, iface="iface1")  # a second session to the same target
    rig.mount.add_mount("filer.example:/exports/x", "/mnt/x")
    sync(rig)
    rig.manager.manage_storage_connection(ISCSI_URI, "vol-1")
    listing = rig.manager.get_storage_connection_list()
    key = f"iscsi:{IQN2}@{PORTAL}"
    assert list(listing) == ["vol-1", key, f"{key}#2", "nfs:filer.example:/exports/x"]
    assert listing["vol-1"].managed and listing["vol-1"].connected
    unmanaged = listing[key]
    assert (unmanaged.managed, unmanaged.connected, unmanaged.last_error) == (False, True, None)
    assert unmanaged.connection_info["target"] == IQN2
    assert {
        listing[key].connection_info["iface"],
        listing[f"{key}#2"].connection_info["iface"],
    } == {
        "default",
        "iface1",
    }
    nfs = listing["nfs:filer.example:/exports/x"]
    assert nfs.connection_info["mount_point"] == "/mnt/x"
    assert nfs.as_dict()["managed"] is False
    # deterministic: the same host gives the same ids
    assert list(rig.manager.get_storage_connection_list()) == list(listing)


def test_the_list_says_a_failed_session_is_not_connected(rig: Rig) -> None:
    login(rig, IQN)
    rig.iscsiadm.fail_session(IQN, PORTAL)
    sync(rig)
    listing = rig.manager.get_storage_connection_list()
    assert listing[f"iscsi:{IQN}@{PORTAL}"].connected is False


# --- secrets ------------------------------------------------------------------------------


def grep_store(store: Store) -> str:
    """Every column of every table, as text."""
    with store.read("grep") as session:
        return " ".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in session.execute(text(f"SELECT * FROM {table.name}"))
        )


def secret_file(directory: Path, mode: int = 0o600) -> Path:
    path = directory / "chap"
    path.write_text("# array 1\nusername = tenant-7731\npassword = s3cr3t-Pa55\n")
    os.chmod(path, mode)
    return path


def test_a_secret_file_readable_by_others_is_refused(rig: Rig) -> None:
    path = secret_file(rig.directory, 0o644)
    with pytest.raises(exceptions.SecretFileRefused) as caught:
        rig.manager.manage_storage_connection(
            ISCSI_URI, "vol-1", options={"secret_file": str(path)}
        )
    assert "0644" in str(caught.value) and "0600" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)
    assert rig.manager.get_storage_connection_list() == {}


def test_secrets_are_used_but_never_stored_listed_or_logged(rig: Rig) -> None:
    rig.iscsiadm.add_target(IQN, PORTAL, chap=ChapCredentials("tenant-7731", "s3cr3t-Pa55"))
    path = secret_file(rig.directory)
    with LogCapture(level=logging.DEBUG) as logs:
        rig.manager.manage_storage_connection(
            ISCSI_URI, "vol-1", options={"secret_file": str(path)}
        )
        rig.manager.manage_storage_connection(
            f"iscsi://192.0.2.10/{IQN2}",
            "vol-2",
            secret=ChapCredentials("tenant-7731", "m3m0ry-0nly"),
        )
        _establish(rig, "vol-1")
        with pytest.raises(exceptions.ConnectorFailed) as caught:  # IQN2 wants no CHAP
            rig.iscsiadm.fail_logins(24)
            _establish(rig, "vol-2")
        listing = {k: v.as_dict() for k, v in rig.manager.get_storage_connection_list().items()}
        dump = grep_store(rig.store)
        rig.manager.unmanage_storage_connection("vol-1")
    assert rig.iscsiadm.logins == 1
    shown = " ".join(
        [str(caught.value), repr(caught.value), repr(listing)]
        + [f"{r.getMessage()} {r.args!r}" for r in logs.records]
    )
    for secret in ("s3cr3t-Pa55", "m3m0ry-0nly", "tenant-7731"):
        assert secret not in shown
    assert str(path) in dump  # the path is kept...
    for secret in ("s3cr3t-Pa55", "m3m0ry-0nly", "tenant-7731"):
        assert secret not in dump  # ...never what is in it
