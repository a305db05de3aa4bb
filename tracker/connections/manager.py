"""Managed storage connections: manage, unmanage, list -- persisted per host.

The API VDSM proposed in 2012 (``manageStorageServer`` /
``unmanageStorageServer`` / ``getStorageServerList``), named as its reviewers
asked (*StorageConnection*), and done properly:

* :meth:`StorageConnectionManager.manage_storage_connection` validates the URI,
  the id and the options and stores the connection for this host; it returns
  as soon as that is done (the monitor connects it, and keeps it connected);
* :meth:`~StorageConnectionManager.unmanage_storage_connection` stops managing
  it and disconnects the target only when no other managed id of this host
  names the same normalised target -- reference counting by *target*, not by
  id -- and only when tracker's own login or mount made the connection (a
  session os-brick logged in stays). A disconnect that fails is logged and
  returned in the result, not raised;
* :meth:`~StorageConnectionManager.get_storage_connection_list` lists the
  managed connections **and** those present on the host that nobody manages
  (iSCSI sessions of the reconciled model, NFS mounts of the mount table),
  under temporary ids (``iscsi:<iqn>@<portal>``, ``nfs:<server>:<export>``):
  deterministic where the target allows, but not stable across calls (a
  second session to the same target through another iface gets ``#2``).

Connections are rows of ``storage_connections`` (:mod:`tracker.db.storage_connections`),
so a restarted process resumes managing them. Secrets are never stored: see
:mod:`tracker.connections.secrets`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracker import exceptions, validation
from tracker.clock import Clock, SystemClock
from tracker.connections.connectors import (
    Connector,
    HostConnections,
    IscsiConnector,
    NfsConnector,
    connectors_by_scheme,
    session_healthy,
)
from tracker.connections.secrets import SECRET_FILE_OPTION, read_secret_file
from tracker.connections.uri import (
    NON_URI_OPTIONS,
    IscsiTarget,
    StorageTarget,
    parse_uri,
    target_from_dict,
)
from tracker.db import observed
from tracker.db import storage_connections as rows
from tracker.db.models import utcnow
from tracker.db.store import Store
from tracker.host.executor import CommandExecutor, SubprocessExecutor
from tracker.host.iscsiadm import ChapCredentials, Iscsiadm
from tracker.host.mounts import Mounter, nfs_mounts, read_mountinfo
from tracker.host.sources import PRODUCTION_ROOT

__all__ = [
    "DEFAULT_MOUNT_BASE",
    "ErrorInfo",
    "StorageConnectionManager",
    "StorageConnectionRecord",
    "UnmanageResult",
    "connection_id",
]

LOG = logging.getLogger(__name__)

#: Where NFS exports are mounted by default (``[connections] mount_base``).
DEFAULT_MOUNT_BASE = Path("/run/tracker/mnt")
#: The longest connection id.
MAX_ID = 255


def connection_id(value: object) -> str:
    """Check a storage connection id: 1 to 255 characters, no ``/``, no control character.

    :returns: the id.
    :raises tracker.exceptions.InvalidInput: anything else.
    """
    reason = "an id is 1 to 255 characters, without '/' or control characters"
    if not isinstance(value, str) or not value:
        raise exceptions.InvalidInput("connection_id", value, reason)
    if len(value) > MAX_ID:
        raise exceptions.InvalidInput("connection_id", value, f"longer than {MAX_ID} characters")
    if "/" in value or not value.isprintable():
        raise exceptions.InvalidInput("connection_id", value, reason)
    return validation.text("connection_id", value, MAX_ID)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A connection's last error.

    :ivar code: stable (``ISCSI_ERR_LOGIN_AUTH_FAILED``, ``MOUNT_FAILED`` ...;
        see the table in ``docs/connections.rst``).
    :ivar message: what it means.
    """

    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """:returns: ``{"code", "message"}``. Never raises."""
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class StorageConnectionRecord:
    """One entry of :meth:`StorageConnectionManager.get_storage_connection_list`.

    :ivar id: the managed id, or a temporary one for an unmanaged connection.
    :ivar managed: whether tracker manages it.
    :ivar connected: whether it is connected now.
    :ivar last_error: the last failure (managed connections only), ``None``
        after a success.
    :ivar connection_info: the target, as JSON-ready data, without secrets.
    :ivar state: ``pending``, ``connected`` or ``reconnecting`` (managed only).
    :ivar attempts: failed attempts since the last success (managed only).
    """

    id: str
    managed: bool
    connected: bool
    last_error: ErrorInfo | None
    connection_info: Mapping[str, Any]
    state: str | None = None
    attempts: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Give the entry as JSON-ready data.

        :returns: the entry with the RFC's keys: ``connected``, ``managed``,
            ``lastError``, ``connectionInfo`` (and ``state``, ``attempts``).
            Never raises.
        """
        return {
            "connected": self.connected,
            "managed": self.managed,
            "lastError": None if self.last_error is None else self.last_error.as_dict(),
            "connectionInfo": dict(self.connection_info),
            "state": self.state,
            "attempts": self.attempts,
        }


@dataclass(frozen=True, slots=True)
class UnmanageResult:
    """What unmanaging did.

    :ivar connection_id: the id.
    :ivar disconnected: whether the target was disconnected.
    :ivar kept_for: the other managed ids that name the same target (it stays
        connected for them).
    :ivar error: why the disconnect failed, if it did.
    :ivar reason: why the target was left connected, if it was.
    """

    connection_id: str
    disconnected: bool
    kept_for: tuple[str, ...] = ()
    error: ErrorInfo | None = None
    reason: str | None = None


@dataclass
class _Listeners:
    lock: threading.Lock = field(default_factory=threading.Lock)
    callbacks: list[Callable[[str, str], None]] = field(default_factory=list)


class StorageConnectionManager:
    """Manage, unmanage and list this host's storage connections.

    :param store: the store the connections are kept in.
    :param host_name: this host's name in the store (the kernel's by default).
    :param executor: runs ``iscsiadm``, ``mount`` and ``umount``.
    :param root: the directory holding ``proc/`` for the mount table (``/``).
    :param mount_base: where NFS exports are mounted.
    :param clock: for the monitor's timing.
    :param command_timeout: seconds before a command is killed.
    :param connectors: replace the default connectors (tests).
    :raises tracker.exceptions.InvalidInput: a bad store or host name.
    """

    def __init__(
        self,
        store: Store,
        *,
        host_name: str | None = None,
        executor: CommandExecutor | None = None,
        root: Path = PRODUCTION_ROOT,
        mount_base: Path = DEFAULT_MOUNT_BASE,
        clock: Clock | None = None,
        command_timeout: float = 120.0,
        connectors: list[Connector] | None = None,
    ) -> None:
        from tracker import opts

        self.store = validation.store("store", store)
        self.host_name = validation.text(
            "host_name", host_name if host_name is not None else opts.default_host_name()
        )
        self.root = Path(root)
        self.clock = clock if clock is not None else SystemClock()
        run = executor if executor is not None else SubprocessExecutor()
        self.connectors = connectors_by_scheme(
            connectors
            or [
                IscsiConnector(Iscsiadm(run, timeout=command_timeout)),
                NfsConnector(Mounter(run, timeout=command_timeout, root=self.root), mount_base),
            ]
        )
        #: CHAP credentials given at manage time: in this process's memory only
        self._secrets: dict[str, ChapCredentials] = {}
        self._listeners = _Listeners()

    def __repr__(self) -> str:
        return f"StorageConnectionManager(host_name={self.host_name!r})"

    # -- listeners (the monitor) --

    def subscribe(self, callback: Callable[[str, str], None]) -> Callable[[], None]:
        """Be told of each ``("managed"|"unmanaged", id)`` made through this manager.

        :returns: a function that unsubscribes.
        :raises: nothing.
        """
        with self._listeners.lock:
            self._listeners.callbacks.append(callback)

        def unsubscribe() -> None:
            with self._listeners.lock:
                if callback in self._listeners.callbacks:
                    self._listeners.callbacks.remove(callback)

        return unsubscribe

    def _tell(self, what: str, connection: str) -> None:
        with self._listeners.lock:
            callbacks = list(self._listeners.callbacks)
        for callback in callbacks:
            callback(what, connection)

    # -- the API --

    def manage_storage_connection(
        self,
        uri: str,
        connection_id_: str,
        *,
        options: Mapping[str, str] | None = None,
        secret: ChapCredentials | None = None,
    ) -> StorageConnectionRecord:
        """Register a storage connection for this host; tracker keeps it connected from now on.

        Returns as soon as the arguments are sane and the id is free: it does
        not wait for the connection (the monitor makes it).

        :param uri: ``iscsi://...`` or ``nfs://...`` (see
            :mod:`tracker.connections.uri`).
        :param connection_id_: the caller's id for it (1 to 255 characters,
            no ``/``, no control character).
        :param options: URI options given apart (``vers``, ``lun`` ...) and
            ``secret_file``: a CHAP secret file readable by its owner only.
        :param secret: CHAP credentials held in this process's memory only
            (not across a restart: prefer ``secret_file``).
        :returns: the new connection's entry (``pending``).
        :raises tracker.exceptions.InvalidStorageUri: a malformed URI or an
            unsupported scheme (the message shows the accepted forms).
        :raises tracker.exceptions.InvalidInput: a bad id or options.
        :raises tracker.exceptions.SecretFileRefused: the secret file is not
            usable (readable by others, missing, malformed).
        :raises tracker.exceptions.StorageConnectionInUse: the id is managed already.
        :raises tracker.exceptions.StoreError: the store cannot be written.
        """
        wanted = connection_id(connection_id_)
        given = dict(options or {})
        for key, value in given.items():
            validation.text("option name", key, 64)
            validation.text(f"option {key}", value, 1024)
        target = parse_uri(uri, given)
        kept = {k: v for k, v in given.items() if k in NON_URI_OPTIONS}
        secret_file = kept.get(SECRET_FILE_OPTION)
        if secret_file is not None:
            if secret is not None:
                raise exceptions.InvalidInput(
                    "secret", "<hidden>", "give a secret file or credentials, not both"
                )
            read_secret_file(secret_file)  # refused now, not at the first connect
        if (secret is not None or secret_file is not None) and not isinstance(target, IscsiTarget):
            raise exceptions.InvalidInput("secret", "<hidden>", "CHAP is for iSCSI targets")
        if secret is not None and not isinstance(secret, ChapCredentials):
            raise exceptions.InvalidInput(
                "secret", "<hidden>", "ChapCredentials(username, password)"
            )
        stored = rows.insert_connection(
            self.store,
            self.host_name,
            wanted,
            scheme=_scheme(target),
            uri=target.uri,
            target_key=target.key,
            connection_info=target.as_dict(),
            options=kept,
            now=utcnow(),
        )
        if secret is not None:
            self._secrets[wanted] = secret
        LOG.info("%s: managing storage connection %s: %s", self.host_name, wanted, target.uri)
        self._tell("managed", wanted)
        return self._record(stored, self.host_connections())

    def unmanage_storage_connection(self, connection_id_: str) -> UnmanageResult:
        """Stop managing a connection; disconnect its target if nothing else needs it.

        :returns: what was done. A failed disconnect is in ``error`` (and
            logged), not raised: the connection is unmanaged either way.
        :raises tracker.exceptions.InvalidInput: a bad id.
        :raises tracker.exceptions.StorageConnectionNotFound: it is not managed.
        :raises tracker.exceptions.StoreError: the store cannot be written.
        """
        wanted = connection_id(connection_id_)
        gone, others = rows.delete_connection(self.store, self.host_name, wanted)
        self._secrets.pop(wanted, None)
        self._tell("unmanaged", wanted)
        LOG.info("%s: storage connection %s is no longer managed", self.host_name, wanted)
        return self.release_target(gone, others)

    def release_target(
        self, gone: rows.StoredConnection, others: tuple[str, ...] | None = None
    ) -> UnmanageResult:
        """Disconnect the target of an unmanaged connection, unless another managed id
        names it or tracker did not make the connection.

        :param others: the managed ids naming the same target (read when ``None``).
        :returns: what was done; never raises a connector's failure.
        :raises tracker.exceptions.StoreError: the store cannot be read.
        """
        if others is None:
            others = rows.sharing(self.store, self.host_name, gone.target_key)
        if others:
            return UnmanageResult(gone.id, False, others, reason="managed under other ids")
        if not gone.established:
            return UnmanageResult(
                gone.id, False, reason="tracker did not make this connection: left as it is"
            )
        target = self.target_of(gone)
        try:
            self.connector(target).disconnect(target)
        except exceptions.ConnectorFailed as error:
            LOG.warning(
                "%s: could not disconnect %s after unmanaging %s: %s",
                self.host_name,
                target.uri,
                gone.id,
                error,
            )
            return UnmanageResult(gone.id, False, error=ErrorInfo(error.code, error.message))
        LOG.info("%s: disconnected %s", self.host_name, target.uri)
        return UnmanageResult(gone.id, True)

    def get_storage_connection_list(self) -> dict[str, StorageConnectionRecord]:
        """List the managed connections and those present on the host that nobody manages.

        Unmanaged ones are under temporary ids (``iscsi:<iqn>@<portal>``,
        ``nfs:<server>:<export>``), not stable across calls.

        :returns: id -> entry, managed first, each group by id.
        :raises tracker.exceptions.StoreError: the store cannot be read.
        """
        host = self.host_connections()
        listing: dict[str, StorageConnectionRecord] = {}
        managed_keys: set[str] = set()
        for stored in rows.list_for_host(self.store, self.host_name):
            listing[stored.id] = self._record(stored, host)
            managed_keys.add(stored.target_key)
        unmanaged: dict[str, StorageConnectionRecord] = {}
        for key, record in self._unmanaged(host, managed_keys):
            name, number = key, 2
            while name in listing or name in unmanaged:
                name, number = f"{key}#{number}", number + 1
            unmanaged[name] = record
        for name in sorted(unmanaged):
            listing[name] = _renamed(unmanaged[name], name)
        return listing

    # -- for the monitor --

    @staticmethod
    def target_of(stored: rows.StoredConnection) -> StorageTarget:
        """Read a stored connection's target back.

        :returns: the parsed, normalised target.
        :raises tracker.exceptions.InvalidInput: a row that does not hold one.
        """
        return target_from_dict(stored.connection_info)

    def connector(self, target: StorageTarget) -> Connector:
        """:returns: the connector of the target's scheme. Never raises."""
        return self.connectors[_scheme(target)]

    def secret_of(self, stored: rows.StoredConnection) -> ChapCredentials | None:
        """The CHAP credentials of a connection: from its secret file, or the memory.

        :returns: the credentials, or ``None`` when it has none.
        :raises tracker.exceptions.SecretFileRefused: the file is not usable now.
        """
        path = stored.options.get(SECRET_FILE_OPTION)
        if path is not None:
            return read_secret_file(str(path))
        return self._secrets.get(stored.id)

    def host_connections(self) -> HostConnections:
        """Read what the host has: iSCSI sessions and NFS mounts.

        :returns: the host's iSCSI sessions (reconciled model) and NFS mounts now.

        :raises tracker.exceptions.StoreError: the store cannot be read.
        """
        with self.store.read(f"read the iSCSI sessions of {self.host_name}") as session:
            sessions = observed.read_iscsi_sessions(session, self.host_name)
        return HostConnections(sessions, nfs_mounts(read_mountinfo(self.root)))

    def is_connected(self, stored: rows.StoredConnection, host: HostConnections) -> bool:
        """:returns: whether a managed connection's target is connected on the host."""
        target = self.target_of(stored)
        return self.connector(target).connected(target, host)

    def _record(
        self, stored: rows.StoredConnection, host: HostConnections
    ) -> StorageConnectionRecord:
        error = (
            None
            if stored.last_error_code is None
            else ErrorInfo(stored.last_error_code, stored.last_error_message or "")
        )
        return StorageConnectionRecord(
            id=stored.id,
            managed=True,
            connected=self.is_connected(stored, host),
            last_error=error,
            connection_info=dict(stored.connection_info),
            state=stored.state,
            attempts=stored.attempts,
        )

    def _unmanaged(
        self, host: HostConnections, managed_keys: set[str]
    ) -> list[tuple[str, StorageConnectionRecord]]:
        found: list[tuple[str, StorageConnectionRecord]] = []
        for session in host.sessions:
            try:
                target = parse_uri(f"iscsi://{session.portal}/{session.target_iqn}")
            except exceptions.InvalidInput:
                continue
            if target.key in managed_keys:
                continue
            info = target.as_dict()
            info.update(iface=session.iface, session_id=session.session_id)
            found.append(
                (
                    target.key,
                    StorageConnectionRecord(
                        target.key, False, session_healthy(session), None, info
                    ),
                )
            )
        for mount in host.mounts:
            server, sep, export = mount.source.rpartition(":")
            if not sep or not server:
                continue
            try:
                nfs = parse_uri(f"nfs://{server}{export}")
            except exceptions.InvalidInput:
                continue
            if nfs.key in managed_keys:
                continue
            info = nfs.as_dict()
            info.update(mount_point=mount.mount_point, fstype=mount.fstype)
            found.append((nfs.key, StorageConnectionRecord(nfs.key, False, True, None, info)))
        return sorted(found, key=lambda item: item[0])


def _renamed(record: StorageConnectionRecord, name: str) -> StorageConnectionRecord:
    if record.id == name:
        return record
    return StorageConnectionRecord(
        name, record.managed, record.connected, record.last_error, record.connection_info
    )


def _scheme(target: StorageTarget) -> str:
    return target.scheme
