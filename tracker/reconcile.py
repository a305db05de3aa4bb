"""The only bridge between a discovered :class:`HostState` and the SQL store.

``reconcile(store, state)`` makes the store's observed rows *of that host* equal
to ``state``, in one transaction:

* every object is turned into the column values of its table, keyed by the
  host name and its natural key (H:C:T:L, WWID, IQN + portal + iface, HBA + remote
  WWPN, host number);
* the host's current rows are read (one query per table), compared value by
  value, and only the differences are written: a reconcile of an unchanged host
  writes **zero rows**;
* a journal entry records each appearance, change and disappearance;
* devices and multipath maps are linked to tracked volumes by WWN/WWID or serial;
  a volume matching several unrelated logical units is reported, not guessed.

Tracked intent (backends, volumes, snapshots, connections) is only read, and
another host's rows are never touched, so several hosts can share one store.
Because everything happens in one transaction, killing the process at any
point leaves either the old or the new state, and the next reconcile converges.
Writers of the same host are serialised by locking its ``observed_hosts`` row.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker import exceptions, validation
from tracker.db import models, repository
from tracker.db.store import Store
from tracker.discovery.model import (
    FcPathIds,
    HostState,
    IscsiPathIds,
    MultipathMap,
    ScsiDevice,
)

LOG = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

#: Observed kinds, in the order they are written (parents first).
KINDS = ("scsi_host", "fc_remote_port", "iscsi_session", "scsi_device", "multipath_map")

_TABLES: Mapping[str, Table] = {
    "scsi_host": models.ObservedScsiHost.__table__,  # type: ignore[dict-item]
    "fc_remote_port": models.ObservedFcRemotePort.__table__,  # type: ignore[dict-item]
    "iscsi_session": models.ObservedIscsiSession.__table__,  # type: ignore[dict-item]
    "scsi_device": models.ObservedScsiDevice.__table__,  # type: ignore[dict-item]
    "multipath_map": models.ObservedMultipathMap.__table__,  # type: ignore[dict-item]
}
HOSTS: Table = models.ObservedHost.__table__  # type: ignore[assignment]
JOURNAL: Table = models.JournalEntry.__table__  # type: ignore[assignment]

#: Bookkeeping columns that are not compared.
_META = frozenset({"host_name", "seen_at", "changed_at", "digest"})

DEFAULT_JOURNAL_RETENTION = dt.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Change:
    """One difference a reconcile found.

    :ivar event: ``appeared``, ``changed`` or ``vanished``.
    :ivar kind: ``scsi_host``, ``fc_remote_port``, ``iscsi_session``,
        ``scsi_device`` or ``multipath_map``.
    :ivar key: the object's natural key, as text.
    :ivar fields: for ``changed``, the columns that differ.
    :ivar before: for ``changed``, their old values.
    :ivar after: for ``changed``, their new values.
    """

    event: str
    kind: str
    key: str
    fields: tuple[str, ...] = ()
    before: tuple[Any, ...] = ()
    after: tuple[Any, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """:returns: the change as JSON-ready data."""
        data: dict[str, Any] = {"event": self.event, "kind": self.kind, "key": self.key}
        if self.fields:
            data["changes"] = {
                name: {"before": old, "after": new}
                for name, old, new in zip(self.fields, self.before, self.after, strict=True)
            }
        return data

    def __str__(self) -> str:
        if not self.fields:
            return f"{self.event:9} {self.kind} {self.key}"
        detail = ", ".join(
            f"{name}: {old!r} -> {new!r}"
            for name, old, new in zip(self.fields, self.before, self.after, strict=True)
        )
        return f"{self.event:9} {self.kind} {self.key} ({detail})"


@dataclass(frozen=True, slots=True)
class AmbiguousVolume:
    """A tracked volume whose serial/WWN matches several unrelated logical units.

    :ivar volume_id: the volume.
    :ivar wwids: the distinct WWIDs it matched; none of them was linked.
    """

    volume_id: str
    wwids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    """What a reconcile found and did.

    :ivar host_name: the host reconciled.
    :ivar changes: every difference, parents first.
    :ivar rows_written: rows inserted, updated or deleted (journal included).
    :ivar dry_run: ``True`` when nothing was committed.
    :ivar ambiguous: volumes left unlinked because they matched several LUs.
    :ivar counts: objects per kind in the new state.
    """

    host_name: str
    changes: tuple[Change, ...]
    rows_written: int
    dry_run: bool
    ambiguous: tuple[AmbiguousVolume, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)

    def of(self, event: str) -> tuple[Change, ...]:
        """:returns: the changes of one event (``appeared``/``changed``/``vanished``)."""
        return tuple(c for c in self.changes if c.event == event)

    @property
    def summary(self) -> str:
        """:returns: a one-line summary for operators."""
        objects = ", ".join(f"{n} {kind.replace('_', ' ')}s" for kind, n in self.counts.items())
        return (
            f"{self.host_name}: {len(self.of('appeared'))} appeared, "
            f"{len(self.of('changed'))} changed, {len(self.of('vanished'))} vanished; "
            f"{self.rows_written} rows written{' (dry run)' if self.dry_run else ''}; "
            f"now {objects}"
        )

    def as_dict(self) -> dict[str, Any]:
        """:returns: the result as JSON-ready data."""
        return {
            "host_name": self.host_name,
            "dry_run": self.dry_run,
            "rows_written": self.rows_written,
            "counts": dict(self.counts),
            "changes": [change.as_dict() for change in self.changes],
            "ambiguous_volumes": [
                {"volume_id": a.volume_id, "wwids": list(a.wwids)} for a in self.ambiguous
            ],
        }


# --- HostState -> rows (pure) -------------------------------------------------


def _portal(value: object) -> str | None:
    return None if value is None else str(value)


def _device_row(device: ScsiDevice, initiators: Mapping[int, str | None]) -> dict[str, Any]:
    ids = device.transport_ids
    identity = device.identity
    return {
        "hctl": str(device.hctl),
        "scsi_host": device.hctl.host,
        "channel": device.hctl.channel,
        "target": device.hctl.target,
        "lun": device.hctl.lun,
        "sys_path": device.sys_path,
        "peripheral_type": device.peripheral_type,
        "vendor": device.vendor,
        "model": device.model,
        "revision": device.revision,
        "state": device.state,
        "block_name": device.block_name,
        "block_devno": device.block_devno,
        "size_bytes": device.size_bytes,
        "logical_block_size": device.logical_block_size,
        "read_only": device.read_only,
        "wwn": identity.wwn,
        "wwid": identity.wwid,
        "serial": identity.serial,
        "transport": "fc"
        if isinstance(ids, FcPathIds)
        else ("iscsi" if isinstance(ids, IscsiPathIds) else None),
        "initiator_wwpn": initiators.get(device.hctl.host) if isinstance(ids, FcPathIds) else None,
        "target_wwpn": ids.wwpn if isinstance(ids, FcPathIds) else None,
        "target_iqn": ids.target_iqn if isinstance(ids, IscsiPathIds) else None,
        "target_portal": _portal(ids.portal) if isinstance(ids, IscsiPathIds) else None,
        "volume_id": None,
    }


def _map_row(mpath: MultipathMap) -> dict[str, Any]:
    return {
        "wwid": mpath.wwid,
        "name": mpath.name,
        "uuid": mpath.uuid,
        "block_name": mpath.block_name,
        "sys_path": mpath.sys_path,
        "size_bytes": mpath.size_bytes,
        "read_only": mpath.read_only,
        "suspended": mpath.suspended,
        "paths": [
            {
                "block_name": p.block_name,
                "hctl": None if p.hctl is None else str(p.hctl),
                "state": p.state.value,
                "device_state": p.device_state,
            }
            for p in mpath.paths
        ],
        "volume_id": None,
    }


def desired_rows(state: HostState) -> dict[str, dict[tuple[Any, ...], dict[str, Any]]]:
    """Turn a HostState into the rows the store should hold for that host.

    :returns: kind -> natural key -> column values (``host_name`` excluded).
    """
    initiators = {host.number: host.wwpn for host in state.scsi_hosts}
    rows: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {kind: {} for kind in KINDS}
    for host in state.scsi_hosts:
        rows["scsi_host"][(host.number,)] = {
            "number": host.number,
            "sys_path": host.sys_path,
            "transport": host.transport.value,
            "driver": host.driver,
            "state": host.state,
            "wwpn": host.wwpn,
            "wwnn": host.wwnn,
            "port_state": host.port_state,
            "port_id": host.port_id,
            "speed": host.speed,
            "fabric_name": host.fabric_name,
            "iscsi_initiator_name": host.iscsi_initiator_name,
        }
    for rport in state.fc_remote_ports:
        port_key = rport.wwpn if rport.wwpn is not None else rport.name
        rows["fc_remote_port"][(rport.host, port_key)] = {
            "scsi_host": rport.host,
            "port_key": port_key,
            "sys_path": rport.sys_path,
            "channel": rport.channel,
            "number": rport.number,
            "wwpn": rport.wwpn,
            "wwnn": rport.wwnn,
            "port_id": rport.port_id,
            "roles": ",".join(rport.roles),
            "port_state": rport.port_state,
            "scsi_target_id": rport.scsi_target_id,
        }
    for session in state.iscsi_sessions:
        iqn, portal, iface = session.key
        rows["iscsi_session"][(iqn, portal, iface)] = {
            "target_iqn": iqn,
            "portal": portal,
            "iface": iface,
            "sys_path": session.sys_path,
            "session_id": session.session_id,
            "scsi_host": session.host,
            "tpgt": session.tpgt,
            "current_portal": _portal(session.current_portal),
            "state": session.state,
        }
    for device in state.scsi_devices:
        rows["scsi_device"][(str(device.hctl),)] = _device_row(device, initiators)
    for mpath in state.multipath_maps:
        rows["multipath_map"][(mpath.wwid,)] = _map_row(mpath)
    return rows


_KEY_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "scsi_host": ("number",),
    "fc_remote_port": ("scsi_host", "port_key"),
    "iscsi_session": ("target_iqn", "portal", "iface"),
    "scsi_device": ("hctl",),
    "multipath_map": ("wwid",),
}


def _key_text(kind: str, key: tuple[Any, ...]) -> str:
    if kind == "scsi_host":
        return f"host{key[0]}"
    if kind == "fc_remote_port":
        return f"host{key[0]} -> {key[1]}"
    if kind == "iscsi_session":
        iqn, portal, iface = key
        return f"{iqn} @ {portal}" + (f" ({iface})" if iface else "")
    return str(key[0])


# --- linking to tracked volumes -------------------------------------------------


def _wwn_forms(value: str | None) -> tuple[str, ...]:
    """The spellings a WWN or WWID may be matched by (``naa.`` / ``0x`` prefixes dropped)."""
    if not value:
        return ()
    text = value.strip().lower()
    for prefix in ("naa.", "eui.", "0x"):
        if text.startswith(prefix):
            return (text, text[len(prefix) :])
    return (text,)


def _link_volumes(
    session: Session, rows: Mapping[str, dict[tuple[Any, ...], dict[str, Any]]], *, lock: bool
) -> list[AmbiguousVolume]:
    """Fill ``volume_id`` of device and map rows; return ambiguous volumes.

    A device matches a tracked volume when the volume's WWN equals the device's
    WWN or WWID (with or without a ``naa.``/``eui.``/``0x`` prefix), or the
    volume's serial equals the device's unit serial number. A volume that
    matches devices of more than one logical unit is linked to none of them.
    """
    if not rows["scsi_device"]:
        return []
    volumes = repository.VOLUMES
    by_wwn: dict[str, set[str]] = defaultdict(set)
    by_serial: dict[str, set[str]] = defaultdict(set)
    identified = select(volumes.c.id, volumes.c.wwn, volumes.c.serial).where(
        or_(volumes.c.wwn.is_not(None), volumes.c.serial.is_not(None))
    )
    for volume_id, wwn, serial in session.execute(identified):
        for form in _wwn_forms(wwn):
            by_wwn[form].add(volume_id)
        if serial:
            by_serial[serial].add(volume_id)
    if not by_wwn and not by_serial:
        return []
    matched: dict[str, set[str]] = defaultdict(set)
    device_volumes: dict[tuple[Any, ...], set[str]] = {}
    for key, row in rows["scsi_device"].items():
        hits: set[str] = set()
        for form in (*_wwn_forms(row["wwn"]), *_wwn_forms(row["wwid"])):
            hits |= by_wwn.get(form, set())
        if row["serial"]:
            hits |= by_serial.get(row["serial"], set())
        if hits:
            device_volumes[key] = hits
            unit = row["wwid"] or row["wwn"] or f"serial:{row['serial']}"
            for volume_id in hits:
                matched[volume_id].add(unit)
    ambiguous = {v: units for v, units in matched.items() if len(units) > 1}
    # Hold the volumes about to be linked (in id order, before any observed row
    # is written) so none is deleted before this transaction commits; one
    # deleted since the read above is not linked.
    candidates = {
        next(iter(hits - ambiguous.keys()))
        for hits in device_volumes.values()
        if len(hits - ambiguous.keys()) == 1
    }
    if not lock:  # a dry run reads one snapshot and writes nothing
        alive = candidates
    else:
        alive = repository.lock_existing_volumes(session, candidates) if candidates else set()
    unit_volume: dict[str, str] = {}
    for key, hits in device_volumes.items():
        linked = hits - ambiguous.keys()
        if len(linked) == 1 and linked <= alive:
            row = rows["scsi_device"][key]
            row["volume_id"] = next(iter(linked))
            if row["wwid"]:
                unit_volume[row["wwid"]] = row["volume_id"]
    for row in rows["multipath_map"].values():
        row["volume_id"] = unit_volume.get(row["wwid"])
    return [
        AmbiguousVolume(volume_id, tuple(sorted(units)))
        for volume_id, units in sorted(ambiguous.items())
    ]


# --- the transaction -------------------------------------------------------------


def _digest(values: Mapping[str, Any]) -> str:
    """A digest of an object's compared columns.

    The rows of one kind are always built with the same columns in the same
    order (:func:`desired_rows`), so the values alone identify the content.
    """
    return hashlib.blake2b(repr(tuple(values.values())).encode(), digest_size=16).hexdigest()


def _current_digests(session: Session, kind: str, host_name: str) -> dict[tuple[Any, ...], str]:
    table = _TABLES[kind]
    keys = [table.c[k] for k in _KEY_COLUMNS[kind]]
    width = len(keys)
    stmt = select(*keys, table.c.digest).where(table.c.host_name == host_name)
    return {tuple(row[:width]): row[width] for row in session.execute(stmt)}


def _current_rows(
    session: Session, kind: str, host_name: str, wanted: Iterable[tuple[Any, ...]]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    table = _TABLES[kind]
    keys = _KEY_COLUMNS[kind]
    wanted_keys = set(wanted)
    current = {}
    for row in session.execute(select(table).where(table.c.host_name == host_name)):
        values = dict(row._mapping)
        key = tuple(values[k] for k in keys)
        if key in wanted_keys:
            current[key] = values
    return current


def _ensure_host(store: Store, host_name: str, now: dt.datetime) -> int:
    """Create the host's ``observed_hosts`` row on its first reconcile.

    In a transaction of its own, so that two processes reconciling a new host
    at once do not abort each other's main transaction: the loser of the race
    finds the row there.

    :returns: how many rows were written (0 or 1).
    """
    exists = select(HOSTS.c.host_name).where(HOSTS.c.host_name == host_name)
    with store.read() as session:
        if session.execute(exists).first() is not None:
            return 0
    try:
        with store.write() as session:
            session.execute(
                insert(HOSTS).values(host_name=host_name, generation=0, changed_at=now, warnings=[])
            )
    except IntegrityError:
        return 0
    return 1


def _read_host(session: Session, store: Store, host_name: str, *, lock: bool) -> list[str]:
    """Read the host's stored warnings; with ``lock``, hold its row until commit.

    Holding the row makes this transaction the host's one writer.

    :returns: the warnings stored by the previous reconcile (empty for a new host).
    """
    stmt = select(HOSTS.c.warnings).where(HOSTS.c.host_name == host_name)
    if lock and store.dialect != "sqlite":  # SQLite writers are serialised by BEGIN IMMEDIATE
        stmt = stmt.with_for_update()
    return list(session.execute(stmt).scalar() or [])


def reconcile(
    store: Store,
    state: HostState,
    *,
    dry_run: bool = False,
    journal_retention: dt.timedelta = DEFAULT_JOURNAL_RETENTION,
    progress: Progress | None = None,
) -> ReconcileResult:
    """Make the store's observed rows of ``state.host_name`` equal to ``state``.

    :param dry_run: compute and return the changes, commit nothing.
    :param journal_retention: journal entries of this host older than this are
        pruned whenever the reconcile writes.
    :param progress: called as ``progress(phase, done, total)``.
    :returns: the :class:`ReconcileResult`.
    :raises tracker.exceptions.InvalidInput: the host name is empty or too long.
    :raises tracker.exceptions.StoreUnavailable: the database cannot be reached.
    """
    host_name = validation.text("host_name", state.host_name)
    counts = {kind: len(rows) for kind, rows in desired_rows(state).items()}
    warnings = sorted(str(w) for w in state.warnings)
    now = models.utcnow()
    written = 0
    created = 0 if dry_run else _ensure_host(store, host_name, now)
    written += created

    def work(session: Session) -> tuple[list[Change], int, list[AmbiguousVolume]]:
        """The transaction; run again from the start (and fresh rows) if it deadlocks."""
        desired = desired_rows(state)
        changes: list[Change] = []
        written = 0
        stored_warnings = _read_host(session, store, host_name, lock=not dry_run)
        ambiguous = _link_volumes(session, desired, lock=not dry_run)
        plans = []
        for index, kind in enumerate(KINDS):
            plan = _diff(session, kind, host_name, desired[kind])
            plans.append((kind, plan))
            changes.extend(plan.changes)
            if progress is not None:
                progress("compare", index + 1, len(KINDS))
        warnings_changed = stored_warnings != warnings
        if not dry_run and (changes or warnings_changed or created):
            written += _apply(session, host_name, plans, now, progress)
            written += _journal(session, host_name, changes, now, journal_retention)
            session.execute(
                update(HOSTS)
                .where(HOSTS.c.host_name == host_name)
                .values(generation=HOSTS.c.generation + 1, changed_at=now, warnings=warnings)
            )
            written += 1
        return changes, written, ambiguous

    operation = f"reconcile host {host_name}"
    if dry_run:
        with store.read(operation) as session:
            changes, main_written, ambiguous = work(session)
    else:
        changes, main_written, ambiguous = store.run_write(work, operation)
    written += main_written
    for volume in ambiguous:
        LOG.warning(
            "volume %s matches several logical units on %s (%s): not linked",
            volume.volume_id,
            host_name,
            ", ".join(volume.wwids),
        )
    return ReconcileResult(
        host_name=host_name,
        changes=tuple(changes),
        rows_written=written,
        dry_run=dry_run,
        ambiguous=tuple(ambiguous),
        counts=counts,
    )


@dataclass
class _Plan:
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[tuple[Any, ...]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)


def _diff(
    session: Session,
    kind: str,
    host_name: str,
    desired: Mapping[tuple[Any, ...], dict[str, Any]],
) -> _Plan:
    plan = _Plan()
    stored = _current_digests(session, kind, host_name)
    differing: list[tuple[Any, ...]] = []
    for key, values in desired.items():
        values["digest"] = digest = _digest(values)
        old_digest = stored.get(key)
        if old_digest is None:
            plan.inserts.append(values)
            plan.changes.append(Change("appeared", kind, _key_text(kind, key)))
        elif old_digest != digest:
            differing.append(key)
    if differing:
        current = _current_rows(session, kind, host_name, differing)
        for key in differing:
            old, values = current[key], desired[key]
            names = tuple(
                name
                for name, value in values.items()
                if name not in _META and name != "digest" and old[name] != value
            )
            plan.updates.append(values)
            plan.changes.append(
                Change(
                    "changed",
                    kind,
                    _key_text(kind, key),
                    names,
                    tuple(old[name] for name in names),
                    tuple(values[name] for name in names),
                )
            )
    for key in stored.keys() - desired.keys():
        plan.deletes.append(key)
        plan.changes.append(Change("vanished", kind, _key_text(kind, key)))
    plan.changes.sort(key=lambda c: (c.event, c.key))
    return plan


def _apply(
    session: Session,
    host_name: str,
    plans: Sequence[tuple[str, _Plan]],
    now: dt.datetime,
    progress: Progress | None,
) -> int:
    written = 0
    total = sum(len(p.inserts) + len(p.updates) + len(p.deletes) for _, p in plans)
    # Children go before parents when deleting, after them when inserting.
    for kind, plan in reversed(plans):
        if plan.deletes:
            table = _TABLES[kind]
            keys = _KEY_COLUMNS[kind]
            session.execute(
                delete(table).where(
                    and_(
                        table.c.host_name == bindparam("b_host"),
                        *(table.c[k] == bindparam(f"b_{k}") for k in keys),
                    )
                ),
                [
                    {"b_host": host_name, **{f"b_{k}": v for k, v in zip(keys, key, strict=True)}}
                    for key in plan.deletes
                ],
            )
            written += len(plan.deletes)
    for kind, plan in plans:
        table = _TABLES[kind]
        keys = _KEY_COLUMNS[kind]
        if plan.inserts:
            session.execute(
                insert(table),
                [
                    {**row, "host_name": host_name, "seen_at": now, "changed_at": now}
                    for row in plan.inserts
                ],
            )
            written += len(plan.inserts)
        if plan.updates:
            columns = [c for c in plan.updates[0] if c not in keys]
            session.execute(
                update(table)
                .where(
                    and_(
                        table.c.host_name == bindparam("b_host"),
                        *(table.c[k] == bindparam(f"b_{k}") for k in keys),
                    )
                )
                .values({c: bindparam(f"v_{c}") for c in columns} | {"changed_at": now}),
                [
                    {
                        "b_host": host_name,
                        **{f"b_{k}": row[k] for k in keys},
                        **{f"v_{c}": row[c] for c in columns},
                    }
                    for row in plan.updates
                ],
            )
            written += len(plan.updates)
        if progress is not None:
            progress("write", written, total)
    return written


def _journal(
    session: Session,
    host_name: str,
    changes: Sequence[Change],
    now: dt.datetime,
    retention: dt.timedelta,
) -> int:
    written = 0
    if changes:
        session.execute(
            insert(JOURNAL),
            [
                {
                    "host_name": host_name,
                    "at": now,
                    "event": change.event,
                    "kind": change.kind,
                    "object_key": change.key[:512],
                    "detail": _jsonable(change.as_dict()["changes"]) if change.fields else {},
                }
                for change in changes
            ],
        )
        written += len(changes)
    pruned = session.execute(
        delete(JOURNAL).where(JOURNAL.c.host_name == host_name, JOURNAL.c.at < now - retention)
    )
    written += int(pruned.rowcount or 0)  # type: ignore[attr-defined]
    return written


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# --- reading back ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One journal entry, as read back."""

    id: int
    host_name: str
    at: dt.datetime
    event: str
    kind: str
    key: str
    detail: Mapping[str, Any]


def journal(store: Store, host_name: str | None = None, limit: int = 100) -> list[JournalRecord]:
    """Read the newest journal entries, newest last.

    :param host_name: only this host's; all hosts by default.
    :param limit: at most this many.
    :returns: the entries.
    :raises tracker.exceptions.InvalidInput: ``store`` is not a Store,
        ``host_name`` is not a host name, or ``limit`` is not a whole number
        from 1 to 2^31-1.
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


def observed_hosts(store: Store) -> list[str]:
    """:returns: the names of the hosts that reconciled into ``store``.

    :raises tracker.exceptions.InvalidInput: ``store`` is not a Store.
    """
    validation.store("store", store)
    with store.read() as session:
        return list(
            session.execute(select(HOSTS.c.host_name).order_by(HOSTS.c.host_name)).scalars()
        )


@dataclass(frozen=True, slots=True)
class ObservedHostRecord:
    """A host's own row: how often its state changed, when, and its warnings.

    :ivar volume_names: id -> name of every tracked volume the host's devices and
        maps link to, read in the same snapshot as the rows.
    """

    host_name: str
    generation: int
    changed_at: dt.datetime
    warnings: tuple[str, ...]
    volume_names: Mapping[str, str | None] = field(default_factory=dict)


def observed_host(
    store: Store, host_name: str
) -> tuple[ObservedHostRecord, dict[str, list[dict[str, Any]]]]:
    """Read the reconciled model of one host, as stored, in one transaction.

    :returns: the host's own row, and kind -> rows (column values) in key order.
    :raises tracker.exceptions.NotFound: the host never reconciled into ``store``.
    :raises tracker.exceptions.InvalidInput: ``store`` is not a Store, or
        ``host_name`` is not a host name.
    """
    validation.store("store", store)
    host_name = validation.text("host_name", host_name)
    with store.read() as session:
        host = session.execute(select(HOSTS).where(HOSTS.c.host_name == host_name)).first()
        if host is None:
            raise exceptions.NotFound("host", host_name)
        result = {}
        for kind in KINDS:
            table = _TABLES[kind]
            order = [table.c[k] for k in _KEY_COLUMNS[kind]]
            stmt = select(table).where(table.c.host_name == host_name).order_by(*order)
            result[kind] = [dict(row._mapping) for row in session.execute(stmt)]
        linked = {
            row["volume_id"]
            for rows in result.values()
            for row in rows
            if row.get("volume_id") is not None
        }
        names = repository.volume_names(session, linked)
    record = ObservedHostRecord(
        host.host_name, host.generation, host.changed_at, tuple(host.warnings or ()), names
    )
    return record, result


def observed(store: Store, host_name: str) -> dict[str, list[dict[str, Any]]]:
    """Read the reconciled model of one host, as stored.

    :returns: kind -> rows (column values), in key order.
    :raises tracker.exceptions.NotFound: the host never reconciled into ``store``.
    """
    return observed_host(store, host_name)[1]
