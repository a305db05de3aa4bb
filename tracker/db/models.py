"""SQLAlchemy 2.x ORM models of the tracked state (the rows).

These are the *rows*. The objects users hold (:class:`tracker.Backend`,
:class:`tracker.Volume`, ...) live in :mod:`tracker.resources` and read and
write these tables through a :class:`~tracker.db.store.Store`; see
``docs/architecture.rst`` for why the two are separate.

Every table has a ``version`` column used for optimistic concurrency: a write
names the version it was based on and fails when the row has moved on.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Stable constraint names on every database, so Alembic migrations written
#: once apply the same way on SQLite, PostgreSQL and MariaDB.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

VOLUME_STATUSES = (
    "creating",
    "available",
    "in-use",
    "error",
    "deleting",
    "deleted",
    "error_deleting",
)
SNAPSHOT_STATUSES = ("creating", "available", "error", "deleting", "deleted", "error_deleting")
CONNECTION_STATUSES = ("attaching", "attached", "detaching", "error")
#: States of a managed storage connection (see docs/connections.rst).
STORAGE_CONNECTION_STATES = ("pending", "connected", "reconnecting")
ATTACH_MODES = ("rw", "ro")


def new_id() -> str:
    """:returns: a new random UUID in its canonical text form."""
    return str(uuid.uuid4())


def utcnow() -> dt.datetime:
    """:returns: the current time, timezone-aware UTC, microsecond precision."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored as naive UTC with microseconds, returned aware.

    SQLite and MariaDB keep no time zone; PostgreSQL ``timestamp`` is used
    without one too, so all three store the same value. MariaDB needs
    ``DATETIME(6)`` to keep sub-second precision.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("tracker timestamps must be timezone-aware")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC)


class UnsignedBigInteger(TypeDecorator[int]):
    """A 64-bit unsigned integer (a SCSI LUN) kept in a signed ``BIGINT`` column.

    Every database has a signed 64-bit integer but not all an unsigned one, so
    ``2**63 .. 2**64 - 1`` are stored as their two's complement (negative
    numbers) and turned back on reading: the full range round-trips exactly on
    SQLite, PostgreSQL and MariaDB with no change to the schema. SQL that
    compares or sorts the column sees the stored (signed) numbers.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        if not 0 <= value < 2**64:
            raise ValueError(f"{value} is not a 64-bit unsigned integer")
        return value - 2**64 if value >= 2**63 else value

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        number = int(value)
        return number + 2**64 if number < 0 else number


def _status_check(column: str, allowed: tuple[str, ...]) -> CheckConstraint:
    values = ", ".join(f"'{value}'" for value in allowed)
    return CheckConstraint(f"{column} IN ({values})", name=f"{column}_valid")


class Base(DeclarativeBase):
    """Declarative base holding the metadata Alembic migrates."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class _Tracked:
    """Columns every tracked table has."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


class Backend(_Tracked, Base):
    """A storage backend, keyed by its ``volume_backend_name``."""

    __tablename__ = "backends"

    name: Mapped[str] = mapped_column(String(255), unique=True)
    driver: Mapped[str] = mapped_column(String(255), default="")
    config: Mapped[dict[str, Any]] = mapped_column(MutableDict.as_mutable(JSON()), default=dict)


class Volume(_Tracked, Base):
    """A volume (LUN) on a backend."""

    __tablename__ = "volumes"
    __table_args__ = (
        # Serves the foreign key and lists a backend's volumes in creation
        # order without a sort (status dumps, lazy loads).
        Index("ix_volumes_backend_order", "backend_id", "created_at", "id"),
        _status_check("status", VOLUME_STATUSES),
        CheckConstraint("size > 0", name="size_positive"),
    )

    backend_id: Mapped[str] = mapped_column(ForeignKey("backends.id", ondelete="RESTRICT"))
    name: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="creating")
    serial: Mapped[str | None] = mapped_column(String(255), index=True)
    wwn: Mapped[str | None] = mapped_column(String(64), index=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", MutableDict.as_mutable(JSON()), default=dict
    )
    #: cinderlib's volume description and bootable flag (revision 0003)
    description: Mapped[str | None] = mapped_column(String(255))
    bootable: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Snapshot(_Tracked, Base):
    """A snapshot of a volume."""

    __tablename__ = "snapshots"
    __table_args__ = (
        Index("ix_snapshots_volume_order", "volume_id", "created_at", "id"),
        _status_check("status", SNAPSHOT_STATUSES),
        CheckConstraint("size > 0", name="size_positive"),
    )

    volume_id: Mapped[str] = mapped_column(ForeignKey("volumes.id", ondelete="RESTRICT"))
    name: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="creating")


class Connection(_Tracked, Base):
    """An export of a volume to one host (a connector)."""

    __tablename__ = "connections"
    __table_args__ = (
        Index("ix_connections_volume_order", "volume_id", "created_at", "id"),
        _status_check("status", CONNECTION_STATUSES),
        _status_check("attach_mode", ATTACH_MODES),
    )

    volume_id: Mapped[str] = mapped_column(ForeignKey("volumes.id", ondelete="RESTRICT"))
    host: Mapped[str] = mapped_column(String(255), index=True)
    protocol: Mapped[str] = mapped_column(String(32), default="")
    attach_mode: Mapped[str] = mapped_column(String(2), default="rw")
    status: Mapped[str] = mapped_column(String(16), default="attached")
    connector_info: Mapped[dict[str, Any]] = mapped_column(
        MutableDict.as_mutable(JSON()), default=dict
    )
    connection_info: Mapped[dict[str, Any]] = mapped_column(
        MutableDict.as_mutable(JSON()), default=dict
    )


class KeyValue(Base):
    """Free key-value pairs for drivers and embedders (as cinderlib's)."""

    __tablename__ = "key_values"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# --- observed host state (written only by tracker.reconcile) -----------------
#
# One row per object discovery found on a host, keyed by the host's name and the
# object's natural key, so several hosts can share one store. These tables hold
# what *is*, never tracked intent: a reconcile sweeps only its own host's rows.

JOURNAL_EVENTS = ("appeared", "changed", "vanished")


class ObservedHost(Base):
    """A host that reconciles into this store, and its discovery warnings."""

    __tablename__ = "observed_hosts"

    host_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    warnings: Mapped[list[str]] = mapped_column(JSON(), default=list)


class _Observed:
    """Columns every observed object has."""

    host_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    sys_path: Mapped[str] = mapped_column(String(1024), default="")
    #: digest of the compared columns: an unchanged host is checked by reading
    #: (key, digest) pairs only
    digest: Mapped[str] = mapped_column(String(32), default="")
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ObservedScsiHost(_Observed, Base):
    """A SCSI host adapter (FC HBA port, iSCSI host, SAS HBA ...)."""

    __tablename__ = "observed_scsi_hosts"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    transport: Mapped[str] = mapped_column(String(16))
    driver: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str | None] = mapped_column(String(32))
    wwpn: Mapped[str | None] = mapped_column(String(16), index=True)
    wwnn: Mapped[str | None] = mapped_column(String(16))
    port_state: Mapped[str | None] = mapped_column(String(32))
    port_id: Mapped[int | None] = mapped_column(Integer)
    speed: Mapped[str | None] = mapped_column(String(32))
    fabric_name: Mapped[str | None] = mapped_column(String(16))
    iscsi_initiator_name: Mapped[str | None] = mapped_column(String(223))


class ObservedFcRemotePort(_Observed, Base):
    """An FC remote (target) port seen through one local HBA."""

    __tablename__ = "observed_fc_remote_ports"

    scsi_host: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: the remote WWPN, or the rport name while the WWPN is unknown
    port_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[int] = mapped_column(Integer)
    number: Mapped[int] = mapped_column(Integer)
    wwpn: Mapped[str | None] = mapped_column(String(16), index=True)
    wwnn: Mapped[str | None] = mapped_column(String(16))
    port_id: Mapped[int | None] = mapped_column(Integer)
    roles: Mapped[str] = mapped_column(String(128), default="")
    port_state: Mapped[str | None] = mapped_column(String(32))
    scsi_target_id: Mapped[int | None] = mapped_column(Integer)


class ObservedIscsiSession(_Observed, Base):
    """An iSCSI session, keyed by target, portal and iface (ids change on re-login)."""

    __tablename__ = "observed_iscsi_sessions"

    target_iqn: Mapped[str] = mapped_column(String(223), primary_key=True)
    portal: Mapped[str] = mapped_column(String(64), primary_key=True)
    iface: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[int] = mapped_column(Integer)
    scsi_host: Mapped[int | None] = mapped_column(Integer)
    tpgt: Mapped[int | None] = mapped_column(Integer)
    current_portal: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str | None] = mapped_column(String(32))
    #: state of connection 0 (``LOGGED_IN`` ...), and its configured address and port
    connection_state: Mapped[str | None] = mapped_column(String(32))
    persistent_address: Mapped[str | None] = mapped_column(String(64))
    persistent_port: Mapped[int | None] = mapped_column(Integer)


class ObservedScsiDevice(_Observed, Base):
    """One path to a logical unit (a SCSI device) and its block device."""

    __tablename__ = "observed_scsi_devices"
    __table_args__ = (
        Index(
            "ix_observed_scsi_devices_fc_path", "host_name", "initiator_wwpn", "target_wwpn", "lun"
        ),
        Index(None, "volume_id"),
    )

    hctl: Mapped[str] = mapped_column(String(64), primary_key=True)
    scsi_host: Mapped[int] = mapped_column(Integer)
    channel: Mapped[int] = mapped_column(Integer)
    target: Mapped[int] = mapped_column(Integer)
    lun: Mapped[int] = mapped_column(UnsignedBigInteger)  # 2**63.. stored negative
    peripheral_type: Mapped[int | None] = mapped_column(Integer)
    vendor: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(64))
    revision: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str | None] = mapped_column(String(32))
    block_name: Mapped[str | None] = mapped_column(String(64))
    block_devno: Mapped[str | None] = mapped_column(String(32))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    logical_block_size: Mapped[int | None] = mapped_column(Integer)
    read_only: Mapped[bool | None] = mapped_column(Boolean)
    wwn: Mapped[str | None] = mapped_column(String(255), index=True)
    wwid: Mapped[str | None] = mapped_column(String(255), index=True)
    serial: Mapped[str | None] = mapped_column(String(255), index=True)
    transport: Mapped[str | None] = mapped_column(String(16))
    initiator_wwpn: Mapped[str | None] = mapped_column(String(16))
    target_wwpn: Mapped[str | None] = mapped_column(String(16))
    target_iqn: Mapped[str | None] = mapped_column(String(223))
    target_portal: Mapped[str | None] = mapped_column(String(64))
    #: udev links of the block device (``/dev/disk/by-id/...``, ``/dev/disk/by-path/...``)
    links: Mapped[list[str] | None] = mapped_column(JSON(), default=list)
    volume_id: Mapped[str | None] = mapped_column(ForeignKey("volumes.id", ondelete="SET NULL"))


class ObservedMultipathMap(_Observed, Base):
    """A device-mapper multipath map, keyed by its WWID."""

    __tablename__ = "observed_multipath_maps"

    wwid: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    uuid: Mapped[str] = mapped_column(String(255))
    block_name: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    read_only: Mapped[bool | None] = mapped_column(Boolean)
    suspended: Mapped[bool | None] = mapped_column(Boolean)
    #: members as ``[{"block_name", "hctl", "state", "device_state"}]``
    paths: Mapped[list[dict[str, Any]]] = mapped_column(JSON(), default=list)
    volume_id: Mapped[str | None] = mapped_column(
        ForeignKey("volumes.id", ondelete="SET NULL"), index=True
    )


class JournalEntry(Base):
    """What appeared, changed or vanished on a host, and when."""

    __tablename__ = "host_journal"
    __table_args__ = (
        Index(None, "host_name", "at"),
        _status_check("event", JOURNAL_EVENTS),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host_name: Mapped[str] = mapped_column(String(255))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    event: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    object_key: Mapped[str] = mapped_column(String(512))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON(), default=dict)


class HostLease(Base):
    """Which ``tracker watch`` process writes a host's observed state, until when.

    At most one row per host; taken and renewed by conditional writes
    (:mod:`tracker.db.leases`), so two watchers of one host cannot both hold it.
    """

    __tablename__ = "host_leases"

    host_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: ``host/pid/uuid`` of the holder
    owner: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class StorageConnection(Base):
    """A storage connection (an iSCSI target, an NFS export) managed on one host.

    Keyed by host name and the caller's id. The target is stored parsed
    (``scheme``, ``connection_info``) and normalised (``uri``, ``target_key``:
    what reference counting compares). No secret is ever stored: CHAP
    credentials come from the file named in ``options`` (its path only is
    kept) or live in the memory of the process that was given them. The
    lease columns say which process may (re)connect it now, until when.
    """

    __tablename__ = "storage_connections"
    __table_args__ = (
        Index(None, "host_name", "target_key"),
        _status_check("state", STORAGE_CONNECTION_STATES),
    )

    host_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    scheme: Mapped[str] = mapped_column(String(16))
    uri: Mapped[str] = mapped_column(String(2048))
    target_key: Mapped[str] = mapped_column(String(512))
    connection_info: Mapped[dict[str, Any]] = mapped_column(JSON(), default=dict)
    #: options that are not the URI's (``secret_file``): never a secret itself
    options: Mapped[dict[str, Any]] = mapped_column(JSON(), default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    connected: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: whether tracker's own login or mount made the connection (only then does
    #: unmanaging disconnect it: a session os-brick logged in is left alone)
    established: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error_message: Mapped[str | None] = mapped_column(String(1024))
    last_error_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: consecutive failed attempts since the last success
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    connected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


__all__ = [
    "ATTACH_MODES",
    "CONNECTION_STATUSES",
    "JOURNAL_EVENTS",
    "SNAPSHOT_STATUSES",
    "STORAGE_CONNECTION_STATES",
    "VOLUME_STATUSES",
    "Backend",
    "Base",
    "Connection",
    "HostLease",
    "JournalEntry",
    "KeyValue",
    "ObservedFcRemotePort",
    "ObservedHost",
    "ObservedIscsiSession",
    "ObservedMultipathMap",
    "ObservedScsiDevice",
    "ObservedScsiHost",
    "Snapshot",
    "StorageConnection",
    "UTCDateTime",
    "Volume",
]
