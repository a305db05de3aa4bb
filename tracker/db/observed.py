"""The typed read model of observed host state.

Observed rows (written only by :mod:`tracker.reconcile`) are read back here as
frozen, typed records -- never as ``dict[str, Any]`` -- by host, by volume, by
WWID or unit serial, by FC mapping (initiator WWPN, target WWPN, LUN) and by
iSCSI target (IQN, portal, LUN). Every read takes a constant number of queries
whatever the number of rows, inside one :meth:`Store.read` snapshot, so the
parts of one answer always agree with each other.

The lower half of the module holds the narrow reads the reconciler itself
needs (stored digests, identities and links of one host's rows).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from sqlalchemy import Row, Select, Table, func, or_, select, tuple_
from sqlalchemy.orm import Session

from tracker import exceptions, validation
from tracker.db import models, repository
from tracker.db.store import Store

HOSTS: Table = models.ObservedHost.__table__  # type: ignore[assignment]
JOURNAL: Table = models.JournalEntry.__table__  # type: ignore[assignment]
SCSI_HOSTS: Table = models.ObservedScsiHost.__table__  # type: ignore[assignment]
FC_REMOTE_PORTS: Table = models.ObservedFcRemotePort.__table__  # type: ignore[assignment]
ISCSI_SESSIONS: Table = models.ObservedIscsiSession.__table__  # type: ignore[assignment]
SCSI_DEVICES: Table = models.ObservedScsiDevice.__table__  # type: ignore[assignment]
MULTIPATH_MAPS: Table = models.ObservedMultipathMap.__table__  # type: ignore[assignment]

_CHUNK = 500

# --- records ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostRecord:
    """A host that reconciled into the store.

    :ivar generation: how many reconciles changed something.
    :ivar changed_at: when its state last changed.
    :ivar warnings: the discovery warnings of its last reconcile.
    """

    host_name: str
    generation: int
    changed_at: dt.datetime
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScsiHostRecord:
    """An observed SCSI host (HBA port, iSCSI host ...).

    See :class:`~tracker.discovery.model.ScsiHost` for the fields.
    """

    host_name: str
    number: int
    sys_path: str
    transport: str
    driver: str | None
    state: str | None
    wwpn: str | None
    wwnn: str | None
    port_state: str | None
    port_id: int | None
    speed: str | None
    fabric_name: str | None
    iscsi_initiator_name: str | None
    seen_at: dt.datetime
    changed_at: dt.datetime


@dataclass(frozen=True, slots=True)
class FcRemotePortRecord:
    """An observed FC remote port; see :class:`~tracker.discovery.model.FcRemotePort`.

    :ivar port_key: the remote WWPN, or the rport name while it is unknown.
    :ivar roles: comma-separated roles.
    """

    host_name: str
    scsi_host: int
    port_key: str
    sys_path: str
    channel: int
    number: int
    wwpn: str | None
    wwnn: str | None
    port_id: int | None
    roles: str
    port_state: str | None
    scsi_target_id: int | None
    seen_at: dt.datetime
    changed_at: dt.datetime


@dataclass(frozen=True, slots=True)
class IscsiSessionRecord:
    """An observed iSCSI session; see :class:`~tracker.discovery.model.IscsiSession`.

    :ivar connection_state: the state of its connection 0 (``LOGGED_IN`` ...;
        ``None`` when not recorded): a session logged in whose connection is
        down is not healthy.
    :ivar persistent_address: the configured address of connection 0.
    :ivar persistent_port: the configured TCP port of connection 0.
    """

    host_name: str
    target_iqn: str
    portal: str
    iface: str
    sys_path: str
    session_id: int
    scsi_host: int | None
    tpgt: int | None
    current_portal: str | None
    state: str | None
    seen_at: dt.datetime
    changed_at: dt.datetime
    connection_state: str | None = None
    persistent_address: str | None = None
    persistent_port: int | None = None


@dataclass(frozen=True, slots=True)
class ScsiDeviceRecord:
    """An observed SCSI device (a path to a logical unit) and its block device.

    :ivar links: its udev links (``/dev/disk/by-id/...``, ``/dev/disk/by-path/...``).
    :ivar volume_id: the tracked volume it is linked to, if any.
    """

    host_name: str
    hctl: str
    scsi_host: int
    channel: int
    target: int
    lun: int
    sys_path: str
    peripheral_type: int | None
    vendor: str | None
    model: str | None
    revision: str | None
    state: str | None
    block_name: str | None
    block_devno: str | None
    size_bytes: int | None
    logical_block_size: int | None
    read_only: bool | None
    wwn: str | None
    wwid: str | None
    serial: str | None
    transport: str | None
    initiator_wwpn: str | None
    target_wwpn: str | None
    target_iqn: str | None
    target_portal: str | None
    volume_id: str | None
    seen_at: dt.datetime
    changed_at: dt.datetime
    links: tuple[str, ...] = ()

    @property
    def path(self) -> str | None:
        """:returns: ``/dev/<block_name>``, or ``None`` without a block device."""
        return None if self.block_name is None else f"/dev/{self.block_name}"

    @property
    def usable(self) -> bool:
        """:returns: whether the path can carry I/O: its state is ``running``. Never raises."""
        return self.state == "running"

    @property
    def target_text(self) -> str | None:
        """:returns: the target WWPN (FC), ``IQN @ portal`` (iSCSI), or ``None``."""
        if self.transport == "fc":
            return self.target_wwpn
        if self.transport == "iscsi":
            return f"{self.target_iqn} @ {self.target_portal}"
        return None


@dataclass(frozen=True, slots=True)
class MultipathPathRecord:
    """One member of an observed multipath map.

    :ivar state: ``active``, ``failed`` or ``unknown``.
    :ivar device_state: the member's SCSI device state, as reported.
    """

    block_name: str
    hctl: str | None
    state: str
    device_state: str | None


@dataclass(frozen=True, slots=True)
class MultipathMapRecord:
    """An observed device-mapper multipath map.

    :ivar volume_id: the tracked volume its logical unit is linked to, if any.
    """

    host_name: str
    wwid: str
    name: str | None
    uuid: str
    block_name: str
    sys_path: str
    size_bytes: int | None
    read_only: bool | None
    suspended: bool | None
    paths: tuple[MultipathPathRecord, ...]
    volume_id: str | None
    seen_at: dt.datetime
    changed_at: dt.datetime

    @property
    def path(self) -> str:
        """:returns: ``/dev/mapper/<name>`` (``/dev/<dm-N>`` for an unnamed map)."""
        return f"/dev/mapper/{self.name}" if self.name else f"/dev/{self.block_name}"

    @property
    def active_paths(self) -> tuple[MultipathPathRecord, ...]:
        """:returns: the members whose state is ``active``. Never raises."""
        return tuple(p for p in self.paths if p.state == "active")


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One journal entry, as read back.

    :ivar key: the object's natural key, as text.
    :ivar detail: for ``changed``, column -> ``{"before", "after"}``.
    """

    id: int
    host_name: str
    at: dt.datetime
    event: str
    kind: str
    key: str
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class HostView:
    """Everything the store holds about one host, read in one snapshot, in key order.

    :ivar volume_names: id -> name of every tracked volume its devices and maps
        link to.
    """

    host: HostRecord
    scsi_hosts: tuple[ScsiHostRecord, ...] = ()
    fc_remote_ports: tuple[FcRemotePortRecord, ...] = ()
    iscsi_sessions: tuple[IscsiSessionRecord, ...] = ()
    scsi_devices: tuple[ScsiDeviceRecord, ...] = ()
    multipath_maps: tuple[MultipathMapRecord, ...] = ()
    volume_names: Mapping[str, str | None] = field(default_factory=dict)

    def kinds(self) -> dict[str, tuple[Any, ...]]:
        """The records by observed kind name, parents first.

        :returns: ``scsi_host``, ``fc_remote_port``, ``iscsi_session``,
            ``scsi_device`` and ``multipath_map`` -> their records.
        """
        return {
            "scsi_host": self.scsi_hosts,
            "fc_remote_port": self.fc_remote_ports,
            "iscsi_session": self.iscsi_sessions,
            "scsi_device": self.scsi_devices,
            "multipath_map": self.multipath_maps,
        }


@dataclass(frozen=True, slots=True)
class UnitView:
    """Paths (SCSI devices) and the multipath maps of their logical units.

    :ivar devices: by host and SCSI address.
    :ivar maps: the maps whose WWID is one of the devices' (or, read by volume,
        that link to the volume), by host and WWID.
    """

    devices: tuple[ScsiDeviceRecord, ...] = ()
    maps: tuple[MultipathMapRecord, ...] = ()


R = TypeVar("R")


def _record(cls: type[R], row: Row[Any]) -> R:
    values = row._mapping
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in values:
            continue
        value = values[f.name]
        if f.name == "paths":
            value = tuple(
                MultipathPathRecord(
                    p["block_name"], p.get("hctl"), p["state"], p.get("device_state")
                )
                for p in value or ()
            )
        elif f.name == "links":
            value = tuple(value or ())
        kwargs[f.name] = value
    return cls(**kwargs)


def _host(row: Row[Any]) -> HostRecord:
    return HostRecord(row.host_name, row.generation, row.changed_at, tuple(row.warnings or ()))


def _by_key(table: Table) -> list[Any]:
    return list(table.primary_key.columns)


# --- reads ------------------------------------------------------------------------


def read_host(session: Session, host_name: str) -> HostView:
    """Read one host's view in the caller's session (seven queries at most, plus one
    per 500 linked volumes).

    :returns: the view.
    :raises tracker.exceptions.NotFound: the host never reconciled into the store.
    """
    host = session.execute(select(HOSTS).where(HOSTS.c.host_name == host_name)).first()
    if host is None:
        raise exceptions.NotFound("host", host_name)

    def rows(table: Table) -> Sequence[Row[Any]]:
        stmt = select(table).where(table.c.host_name == host_name).order_by(*_by_key(table))
        return session.execute(stmt).all()

    devices = tuple(_record(ScsiDeviceRecord, r) for r in rows(SCSI_DEVICES))
    maps = tuple(_record(MultipathMapRecord, r) for r in rows(MULTIPATH_MAPS))
    linked = {d.volume_id for d in devices if d.volume_id is not None}
    linked |= {m.volume_id for m in maps if m.volume_id is not None}
    return HostView(
        host=_host(host),
        scsi_hosts=tuple(_record(ScsiHostRecord, r) for r in rows(SCSI_HOSTS)),
        fc_remote_ports=tuple(_record(FcRemotePortRecord, r) for r in rows(FC_REMOTE_PORTS)),
        iscsi_sessions=tuple(_record(IscsiSessionRecord, r) for r in rows(ISCSI_SESSIONS)),
        scsi_devices=devices,
        multipath_maps=maps,
        volume_names=repository.volume_names(session, linked),
    )


def host_view(store: Store, host_name: str) -> HostView:
    """Read everything the store holds about one host, in one snapshot.

    :returns: the view.
    :raises tracker.exceptions.NotFound: the host never reconciled into ``store``.
    :raises tracker.exceptions.InvalidInput: ``store`` is not a Store, or
        ``host_name`` is not a host name.
    :raises tracker.exceptions.StoreError: the store cannot be read.
    """
    validation.store("store", store)
    host_name = validation.text("host_name", host_name)
    with store.read(f"read host {host_name}") as session:
        return read_host(session, host_name)


def host_names(store: Store) -> list[str]:
    """:returns: the names of the hosts that reconciled into ``store``, sorted.

    :raises tracker.exceptions.InvalidInput: ``store`` is not a Store.
    :raises tracker.exceptions.StoreError: the store cannot be read.
    """
    validation.store("store", store)
    with store.read() as session:
        stmt = select(HOSTS.c.host_name).order_by(HOSTS.c.host_name)
        return list(session.execute(stmt).scalars())


def _unit(
    session: Session, device_filter: Any, host_name: str | None, map_filter: Any = None
) -> UnitView:
    """Two queries: the devices matching ``device_filter``, then the maps of their units
    (or matching ``map_filter``)."""
    stmt = select(SCSI_DEVICES).where(device_filter)
    if host_name is not None:
        stmt = stmt.where(SCSI_DEVICES.c.host_name == host_name)
    stmt = stmt.order_by(SCSI_DEVICES.c.host_name, SCSI_DEVICES.c.hctl)
    devices = tuple(_record(ScsiDeviceRecord, r) for r in session.execute(stmt))
    if map_filter is None:
        pairs = {(d.host_name, d.wwid) for d in devices if d.wwid is not None}
        if not pairs:
            return UnitView(devices)
        wwids = sorted({wwid for _, wwid in pairs})
        map_filter = MULTIPATH_MAPS.c.wwid.in_(wwids)
    else:
        pairs = None
    mstmt = select(MULTIPATH_MAPS).where(map_filter)
    if host_name is not None:
        mstmt = mstmt.where(MULTIPATH_MAPS.c.host_name == host_name)
    mstmt = mstmt.order_by(MULTIPATH_MAPS.c.host_name, MULTIPATH_MAPS.c.wwid)
    maps = tuple(
        m
        for m in (_record(MultipathMapRecord, r) for r in session.execute(mstmt))
        if pairs is None or (m.host_name, m.wwid) in pairs
    )
    return UnitView(devices, maps)


def read_volume(session: Session, volume_id: str) -> UnitView:
    """The devices and maps linked to a tracked volume, on every host (two queries).

    :returns: the view.
    """
    return _unit(
        session,
        SCSI_DEVICES.c.volume_id == volume_id,
        None,
        MULTIPATH_MAPS.c.volume_id == volume_id,
    )


def by_volume(store: Store, volume_id: str) -> UnitView:
    """:returns: the devices and maps linked to a tracked volume, on every host.

    :raises tracker.exceptions.InvalidInput: ``store`` is not a Store or
        ``volume_id`` is not an id.
    :raises tracker.exceptions.StoreError: the store cannot be read.
    """
    validation.store("store", store)
    volume_id = validation.identifier("volume_id", volume_id)
    with store.read(f"read paths of volume {volume_id}") as session:
        return read_volume(session, volume_id)


def read_volume_on_host(session: Session, volume_id: str, host_name: str) -> UnitView:
    """The devices and maps of one host linked to a tracked volume (two queries).

    :returns: the view.
    """
    return _unit(
        session,
        SCSI_DEVICES.c.volume_id == volume_id,
        host_name,
        MULTIPATH_MAPS.c.volume_id == volume_id,
    )


def read_wwid(session: Session, wwid: str, host_name: str | None = None) -> UnitView:
    """The paths and maps of the logical unit with that WWID (two indexed queries).

    The WWID matches as given or in lowercase (the kernel writes hexadecimal
    WWIDs in lowercase; users copy them in either case). A map whose paths are
    all gone is found by its own WWID.

    :returns: the view.
    """
    spellings = sorted({wwid.strip(), wwid.strip().lower()})
    return _unit(
        session,
        SCSI_DEVICES.c.wwid.in_(spellings),
        host_name,
        MULTIPATH_MAPS.c.wwid.in_(spellings),
    )


def read_serial(session: Session, serial: str, host_name: str | None = None) -> UnitView:
    """The paths (and their maps) of the logical units with that unit serial (two queries).

    :returns: the view.
    """
    return _unit(session, SCSI_DEVICES.c.serial == serial, host_name)


def read_fc_mapping(
    session: Session,
    initiator_wwpn: str,
    target_wwpn: str,
    luns: Collection[int] | None = None,
    host_name: str | None = None,
) -> UnitView:
    """The paths (and their maps) from an initiator port to a target port (two queries).

    :param initiator_wwpn: 16 lowercase hex digits (:func:`tracker.validation.wwn`).
    :param target_wwpn: likewise.
    :param luns: the kernel LUN numbers to keep; every LUN when ``None``.
    :returns: the view.
    """
    where = (SCSI_DEVICES.c.initiator_wwpn == initiator_wwpn) & (
        SCSI_DEVICES.c.target_wwpn == target_wwpn
    )
    if luns is not None:
        where = where & SCSI_DEVICES.c.lun.in_(sorted(luns))
    return _unit(session, where, host_name)


def read_iscsi_target(
    session: Session,
    target_iqn: str,
    portal: str | None = None,
    lun: int | None = None,
    host_name: str | None = None,
) -> UnitView:
    """The paths (and their maps) to an iSCSI target (two queries).

    :returns: the view.
    """
    where = SCSI_DEVICES.c.target_iqn == target_iqn
    if portal is not None:
        where = where & (SCSI_DEVICES.c.target_portal == portal)
    if lun is not None:
        where = where & (SCSI_DEVICES.c.lun == lun)
    return _unit(session, where, host_name)


def read_scsi_hosts(session: Session, host_name: str) -> tuple[ScsiHostRecord, ...]:
    """:returns: the host's SCSI hosts, by number (one query)."""
    stmt = (
        select(SCSI_HOSTS).where(SCSI_HOSTS.c.host_name == host_name).order_by(*_by_key(SCSI_HOSTS))
    )
    return tuple(_record(ScsiHostRecord, r) for r in session.execute(stmt))


def read_fc_remote_ports(
    session: Session, host_name: str, wwpn: str | None = None
) -> tuple[FcRemotePortRecord, ...]:
    """Read the host's FC remote ports (one query).

    :param wwpn: only those with that WWPN (16 lowercase hex digits).
    :returns: the ports, by SCSI host and key.
    """
    stmt = select(FC_REMOTE_PORTS).where(FC_REMOTE_PORTS.c.host_name == host_name)
    if wwpn is not None:
        stmt = stmt.where(FC_REMOTE_PORTS.c.wwpn == wwpn)
    stmt = stmt.order_by(*_by_key(FC_REMOTE_PORTS))
    return tuple(_record(FcRemotePortRecord, r) for r in session.execute(stmt))


def read_iscsi_sessions(
    session: Session, host_name: str, target_iqn: str | None = None
) -> tuple[IscsiSessionRecord, ...]:
    """Read the host's iSCSI sessions (one query).

    :param target_iqn: only those to this target (compared without case, as
        RFC 3722 prescribes).
    :returns: the sessions, by key.
    """
    stmt = select(ISCSI_SESSIONS).where(ISCSI_SESSIONS.c.host_name == host_name)
    if target_iqn is not None:
        stmt = stmt.where(func.lower(ISCSI_SESSIONS.c.target_iqn) == target_iqn.lower())
    stmt = stmt.order_by(*_by_key(ISCSI_SESSIONS))
    return tuple(_record(IscsiSessionRecord, r) for r in session.execute(stmt))


def by_wwid(store: Store, wwid: str, host_name: str | None = None) -> UnitView:
    """:returns: the paths and maps of the logical unit with that WWID (all hosts by default).

    :raises tracker.exceptions.InvalidInput: a bad store, WWID or host name.
    :raises tracker.exceptions.StoreError: the store cannot be read.
    """
    validation.store("store", store)
    wwid = validation.text("wwid", wwid)
    host = validation.optional_text("host_name", host_name)
    with store.read("read paths by wwid") as session:
        return _unit(session, SCSI_DEVICES.c.wwid == wwid, host)


def by_serial(store: Store, serial: str, host_name: str | None = None) -> UnitView:
    """:returns: the paths (and their maps) of the logical units with that unit serial.

    :raises tracker.exceptions.InvalidInput: a bad store, serial or host name.
    :raises tracker.exceptions.StoreError: the store cannot be read.
    """
    validation.store("store", store)
    serial = validation.text("serial", serial)
    host = validation.optional_text("host_name", host_name)
    with store.read("read paths by serial") as session:
        return read_serial(session, serial, host)


def by_fc_mapping(
    store: Store,
    initiator_wwpn: str,
    target_wwpn: str,
    lun: int | None = None,
    host_name: str | None = None,
) -> UnitView:
    """The paths (and their maps) from an initiator port to a target port, at one LUN or all.

    WWPNs are 16 hex digits in any spelling :func:`tracker.validation.wwn`
    accepts (case, ``0x``, ``:`` or ``-`` separators); the LUN is the kernel's.

    :returns: the view.
    :raises tracker.exceptions.InvalidInput: a bad store, WWPN, LUN or host name.
    :raises tracker.exceptions.StoreError: the store cannot be read.
    """
    validation.store("store", store)
    initiator = validation.wwn("initiator_wwpn", initiator_wwpn)
    target = validation.wwn("target_wwpn", target_wwpn)
    host = validation.optional_text("host_name", host_name)
    luns = None if lun is None else (validation.lun("lun", lun),)
    with store.read("read paths by FC mapping") as session:
        return read_fc_mapping(session, initiator, target, luns, host)


def by_iscsi_target(
    store: Store,
    target_iqn: str,
    portal: str | None = None,
    lun: int | None = None,
    host_name: str | None = None,
) -> UnitView:
    """The paths (and their maps) to an iSCSI target, optionally through one portal
    (``address:port``) and at one LUN.

    :returns: the view.
    :raises tracker.exceptions.InvalidInput: a bad store, IQN, portal, LUN or host name.
    :raises tracker.exceptions.StoreError: the store cannot be read.
    """
    validation.store("store", store)
    iqn = validation.text("target_iqn", target_iqn)
    wanted_portal = None if portal is None else validation.text("portal", portal)
    wanted_lun = None if lun is None else validation.lun("lun", lun)
    host = validation.optional_text("host_name", host_name)
    with store.read("read paths by iSCSI target") as session:
        return read_iscsi_target(session, iqn, wanted_portal, wanted_lun, host)


def journal(store: Store, host_name: str | None = None, limit: int = 100) -> list[JournalRecord]:
    """Read the newest journal entries, newest last (one query).

    :param host_name: only this host's; all hosts by default.
    :param limit: at most this many.
    :returns: the entries.
    :raises tracker.exceptions.InvalidInput: ``store`` is not a Store,
        ``host_name`` is not a host name, or ``limit`` is not a whole number
        from 1 to 2^31-1.
    :raises tracker.exceptions.StoreError: the store cannot be read.
    """
    validation.store("store", store)
    if host_name is not None:
        host_name = validation.text("host_name", host_name)
    limit = validation.integer("limit", limit, 1, validation.MAX_INT32)
    stmt = select(JOURNAL).order_by(JOURNAL.c.id.desc()).limit(limit)
    if host_name is not None:
        stmt = stmt.where(JOURNAL.c.host_name == host_name)
    with store.read() as session:
        rows = session.execute(stmt).all()
    return [
        JournalRecord(r.id, r.host_name, r.at, r.event, r.kind, r.object_key, r.detail)
        for r in reversed(rows)
    ]


# --- the reconciler's narrow reads ---------------------------------------------------


def identified_volumes(session: Session) -> list[tuple[str, str | None, str | None]]:
    """:returns: ``(id, wwn, serial)`` of every tracked volume with a WWN or serial."""
    volumes = repository.VOLUMES
    stmt = select(volumes.c.id, volumes.c.wwn, volumes.c.serial).where(
        or_(volumes.c.wwn.is_not(None), volumes.c.serial.is_not(None))
    )
    return [(row.id, row.wwn, row.serial) for row in session.execute(stmt)]


def _keyed(
    table: Table, key_columns: Sequence[str], host_name: str, keys: Collection[Any] | None
) -> Iterator[Select[Any]]:
    """The statement(s) selecting ``host_name``'s rows, restricted to ``keys`` when given."""
    columns = [table.c[k] for k in key_columns]
    base = select(table).where(table.c.host_name == host_name)
    if keys is None:
        yield base
        return
    wanted = list(keys)
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        if len(columns) == 1:
            yield base.where(columns[0].in_([key[0] for key in chunk]))
        else:
            yield base.where(tuple_(*columns).in_(chunk))


def stored_digests(
    session: Session,
    table: Table,
    key_columns: Sequence[str],
    host_name: str,
    keys: Iterable[tuple[Any, ...]] | None,
    *,
    with_volume: bool = False,
) -> dict[tuple[Any, ...], tuple[str, str | None]]:
    """The digests (and links) of ``host_name``'s rows, of ``keys`` only when given.

    :returns: key -> (digest, volume_id or ``None``); one query per 500 keys.
    """
    wanted = None if keys is None else list(keys)
    if wanted is not None and not wanted:
        return {}
    width = len(key_columns)
    extra = [table.c.digest] + ([table.c.volume_id] if with_volume else [])
    found: dict[tuple[Any, ...], tuple[str, str | None]] = {}
    for stmt in _keyed(table, key_columns, host_name, wanted):
        narrow = stmt.with_only_columns(*(table.c[k] for k in key_columns), *extra)
        for row in session.execute(narrow):
            found[tuple(row[:width])] = (row[width], row[width + 1] if with_volume else None)
    return found


def stored_rows(
    session: Session,
    table: Table,
    key_columns: Sequence[str],
    host_name: str,
    keys: Iterable[tuple[Any, ...]],
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """:returns: key -> every column of ``host_name``'s rows of ``keys``."""
    found = {}
    for stmt in _keyed(table, key_columns, host_name, list(keys)):
        for row in session.execute(stmt):
            values = dict(row._mapping)
            found[tuple(values[k] for k in key_columns)] = values
    return found


@dataclass(frozen=True, slots=True)
class IdentityMatch:
    """What a stored identity row must match to be read: a WWN/WWID spelling
    (lowercase, compared trimmed and without case) or a unit serial.

    :ivar wwns: the WWN/WWID spellings.
    :ivar serials: the unit serials.
    """

    wwns: frozenset[str]
    serials: frozenset[str]


def stored_identities(
    session: Session,
    table: Table,
    key_columns: Sequence[str],
    host_name: str,
    match: IdentityMatch | None = None,
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The identities of ``host_name``'s rows: all, or (with ``match``) those linked
    to a volume or matching one of its spellings.

    :returns: key -> ``wwn``, ``wwid``, ``serial``, ``volume_id``.
    """
    cols = [table.c[k] for k in key_columns]
    stmt = select(*cols, table.c.wwn, table.c.wwid, table.c.serial, table.c.volume_id).where(
        table.c.host_name == host_name
    )
    if match is not None:
        # Only the conditions that can hold: with no spelling to match (no tracked
        # volume has a WWN or serial) this is "already linked", which the volume_id
        # index answers without reading every row of the host.
        wanted = sorted(match.wwns)
        conditions = [table.c.volume_id.is_not(None)]
        if wanted:
            conditions.append(func.lower(func.trim(table.c.wwn)).in_(wanted))
            conditions.append(func.lower(func.trim(table.c.wwid)).in_(wanted))
        if match.serials:
            conditions.append(table.c.serial.in_(sorted(match.serials)))
        stmt = stmt.where(or_(*conditions))
    width = len(cols)
    return {
        tuple(row[:width]): {
            "wwn": row.wwn,
            "wwid": row.wwid,
            "serial": row.serial,
            "volume_id": row.volume_id,
        }
        for row in session.execute(stmt)
    }


def stored_unit_links(
    session: Session,
    table: Table,
    key_columns: Sequence[str],
    host_name: str,
    wwids: Collection[str] | None = None,
) -> dict[tuple[Any, ...], tuple[str | None, str | None]]:
    """The links of ``host_name``'s rows: all, or (with ``wwids``) those linked to a
    volume or of one of these units.

    :returns: key -> (``wwid``, ``volume_id``).
    """
    cols = [table.c[k] for k in key_columns]
    stmt = select(*cols, table.c.wwid, table.c.volume_id).where(table.c.host_name == host_name)
    if wwids is not None:
        stmt = stmt.where(or_(table.c.volume_id.is_not(None), table.c.wwid.in_(sorted(wwids))))
    width = len(cols)
    return {tuple(row[:width]): (row.wwid, row.volume_id) for row in session.execute(stmt)}


def host_rows(session: Session, table: Table, host_name: str) -> list[dict[str, Any]]:
    """Every row of ``host_name`` in ``table``, untyped (kept for
    :func:`tracker.reconcile.observed`; new code reads the typed records).

    :returns: the rows' columns, in key order.
    """
    stmt = select(table).where(table.c.host_name == host_name).order_by(*_by_key(table))
    return [dict(row._mapping) for row in session.execute(stmt)]


def host_record(session: Session, host_name: str) -> HostRecord | None:
    """:returns: the host's own row, or ``None`` if it never reconciled."""
    row = session.execute(select(HOSTS).where(HOSTS.c.host_name == host_name)).first()
    return None if row is None else _host(row)
