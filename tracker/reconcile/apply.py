"""Row-level application of observed rows: diff, write, journal, volume links.

:func:`apply_rows` is the one place observed rows are written. A full
reconcile (:mod:`tracker.reconcile.full`) calls it with every row of the host
(``scope=None``: stored rows missing from ``desired`` vanish); an incremental
reconcile calls it with only the keys an event touched, ``None`` marking a key
that disappeared, and nothing else of the host is rewritten -- except the
volume link (``volume_id``) of other rows, when the change made a volume
ambiguous or resolved an ambiguity: links are always computed over the host's
whole set of logical units, so a subset applied this way leaves exactly the
rows a full reconcile of the final tree would.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, update
from sqlalchemy.orm import Session

from tracker import validation
from tracker.db import observed, repository
from tracker.reconcile.kinds import SPECS, Key, KindSpec, Row, VolumeLink, digest

Progress = Callable[[str, int, int], None]

JOURNAL = observed.JOURNAL

#: Bookkeeping columns that are not compared.
_META = frozenset({"host_name", "seen_at", "changed_at", "digest"})


@dataclass(frozen=True, slots=True)
class Change:
    """One difference a reconcile found.

    :ivar event: ``appeared``, ``changed`` or ``vanished``.
    :ivar kind: the kind's name (:data:`tracker.reconcile.kinds.KINDS`).
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
class Applied:
    """What :func:`apply_rows` found and did.

    :ivar changes: every difference, kinds parents first, then by event and key.
    :ivar written: observed and journal rows inserted, updated or deleted.
    :ivar ambiguous: volumes left unlinked because they matched several LUs.
    """

    changes: tuple[Change, ...]
    written: int
    ambiguous: tuple[AmbiguousVolume, ...]


# --- linking to tracked volumes -------------------------------------------------


@dataclass
class _Links:
    """The outcome of linking: which identity row and which unit goes to which volume."""

    rows: dict[tuple[str, Key], str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    ambiguous: list[AmbiguousVolume] = field(default_factory=list)


@dataclass
class _Volumes:
    """The tracked volumes that have a WWN or serial, by each spelling."""

    by_wwn: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_serial: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    @classmethod
    def read(cls, session: Session) -> _Volumes:
        volumes = cls()
        for volume_id, wwn, serial in observed.identified_volumes(session):
            for form in validation.wwn_forms(wwn):
                volumes.by_wwn[form].add(volume_id)
            if serial:
                volumes.by_serial[serial].add(volume_id)
        return volumes

    def match(self) -> observed.IdentityMatch | None:
        """What a stored row must match to possibly link to one of these volumes
        (``None``: too many spellings to list, read every row)."""
        wwns = {
            f"{prefix}{form}" for form in self.by_wwn for prefix in ("", *validation.WWN_PREFIXES)
        }
        if len(wwns) + len(self.by_serial) > _MATCH_LIMIT:
            return None
        return observed.IdentityMatch(frozenset(wwns), frozenset(self.by_serial))


#: Above this many spellings, read every stored identity of the host instead.
_MATCH_LIMIT = 1000


def _link(
    session: Session,
    identities: Mapping[tuple[str, Key], Mapping[str, Any]],
    volumes: _Volumes,
    *,
    lock: bool,
) -> _Links:
    """Decide the volume of each identity row (``wwn``, ``wwid``, ``serial``) of a host.

    A row matches a tracked volume when the volume's WWN equals the row's WWN
    or WWID (with or without a ``naa.``/``eui.``/``0x`` prefix), or the
    volume's serial equals the row's unit serial number. A volume that matches
    rows of more than one logical unit is linked to none of them. With
    ``lock``, the volumes about to be linked are held (in id order, before any
    observed row is written) so that none is deleted before the transaction
    commits; one deleted since it was read is not linked.
    """
    links = _Links()
    by_wwn, by_serial = volumes.by_wwn, volumes.by_serial
    if not identities or (not by_wwn and not by_serial):
        return links
    matched: dict[str, set[str]] = defaultdict(set)
    row_volumes: dict[tuple[str, Key], set[str]] = {}
    for ref, row in identities.items():
        hits: set[str] = set()
        for form in (*validation.wwn_forms(row["wwn"]), *validation.wwn_forms(row["wwid"])):
            hits |= by_wwn.get(form, set())
        if row["serial"]:
            hits |= by_serial.get(row["serial"], set())
        if hits:
            row_volumes[ref] = hits
            unit = row["wwid"] or row["wwn"] or f"serial:{row['serial']}"
            for volume_id in hits:
                matched[volume_id].add(unit)
    ambiguous = {v: units for v, units in matched.items() if len(units) > 1}
    candidates = {
        next(iter(hits - ambiguous.keys()))
        for hits in row_volumes.values()
        if len(hits - ambiguous.keys()) == 1
    }
    if not lock:  # a dry run reads one snapshot and writes nothing
        alive = candidates
    else:
        alive = repository.lock_existing_volumes(session, candidates) if candidates else set()
    for ref, hits in sorted(row_volumes.items(), key=lambda item: repr(item[0])):
        linked = hits - ambiguous.keys()
        if len(linked) == 1 and linked <= alive:
            volume_id = next(iter(linked))
            links.rows[ref] = volume_id
            wwid = identities[ref]["wwid"]
            if wwid:
                links.units[wwid] = volume_id
    links.ambiguous = [
        AmbiguousVolume(volume_id, tuple(sorted(units)))
        for volume_id, units in sorted(ambiguous.items())
    ]
    return links


# --- diff -----------------------------------------------------------------------


@dataclass
class _Plan:
    spec: KindSpec[Any]
    inserts: list[Row] = field(default_factory=list)
    updates: list[Row] = field(default_factory=list)
    deletes: list[Key] = field(default_factory=list)
    #: (key, volume_id) of rows outside the scope whose link alone changes
    relinks: list[tuple[Key, str | None]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.inserts) + len(self.updates) + len(self.deletes) + len(self.relinks)


def _diff(
    session: Session,
    spec: KindSpec[Any],
    host_name: str,
    desired: Mapping[Key, Row],
    scope: Iterable[Key] | None,
) -> _Plan:
    """Compare ``desired`` with the stored rows of ``scope`` (all the host's with ``None``).

    A stored row whose digest differs but whose compared columns are all equal
    (a digest written by an older release) is rewritten silently, without a
    journal entry.
    """
    plan = _Plan(spec)
    linked = spec.volume_link is not VolumeLink.NONE
    stored = observed.stored_digests(
        session, spec.table, spec.key_columns, host_name, scope, with_volume=linked
    )
    differing: list[Key] = []
    for key, values in desired.items():
        values["digest"] = row_digest = digest(values)
        old = stored.get(key)
        if old is None:
            plan.inserts.append(values)
            plan.changes.append(Change("appeared", spec.name, spec.key_text(key)))
        elif old[0] != row_digest or (linked and old[1] != values["volume_id"]):
            differing.append(key)
    if differing:
        current = observed.stored_rows(session, spec.table, spec.key_columns, host_name, differing)
        for key in differing:
            old_row, values = current[key], desired[key]
            names = tuple(
                name
                for name, value in values.items()
                if name not in _META and old_row[name] != value
            )
            plan.updates.append(values)
            if names:
                plan.changes.append(
                    Change(
                        "changed",
                        spec.name,
                        spec.key_text(key),
                        names,
                        tuple(old_row[name] for name in names),
                        tuple(values[name] for name in names),
                    )
                )
    for key in stored.keys() - desired.keys():
        plan.deletes.append(key)
        plan.changes.append(Change("vanished", spec.name, spec.key_text(key)))
    return plan


# --- the whole application -----------------------------------------------------


def apply_rows(
    session: Session,
    host_name: str,
    desired: Mapping[str, Mapping[Key, Row | None]],
    *,
    now: dt.datetime,
    scoped: bool = True,
    write: bool = True,
    progress: Progress | None = None,
) -> Applied:
    """Make the stored observed rows of ``host_name`` match ``desired``, within one transaction.

    The caller holds the host's lock (its ``observed_hosts`` row, see
    :func:`tracker.reconcile.full.reconcile`) and commits.

    :param desired: kind -> natural key -> row (as :attr:`KindSpec.build` makes it;
        ``volume_id`` is filled here), or ``None`` for a key that no longer exists.
    :param scoped: ``True``: only the given keys are compared and written (kinds
        absent from ``desired`` are untouched, except for volume links). ``False``:
        ``desired`` is the host's whole state: every stored row of the host missing
        from it vanishes.
    :param write: ``False`` computes the changes (a dry run) and writes nothing,
        not even a lock.
    :param progress: called as ``progress(phase, done, total)`` for the phases
        ``compare`` and ``write``.
    :returns: the changes found, rows written and ambiguous volumes.
    :raises sqlalchemy.exc.SQLAlchemyError: a database error; the caller's
        transaction runner classifies it.
    """
    present: dict[str, dict[Key, Row]] = {
        s.name: {k: v for k, v in desired.get(s.name, {}).items() if v is not None} for s in SPECS
    }
    # Volume links, over the host's whole set of logical units. Out of scope,
    # only stored rows that are linked or may match a volume can matter.
    identity_specs = [s for s in SPECS if s.volume_link is VolumeLink.IDENTITY]
    unit_specs = [s for s in SPECS if s.volume_link is VolumeLink.UNIT]
    volumes = _Volumes.read(session) if identity_specs else _Volumes()
    identities: dict[tuple[str, Key], Mapping[str, Any]] = {}
    stored_links: dict[str, dict[Key, tuple[str | None, str | None]]] = {}
    for s in identity_specs:
        if scoped:
            outside = observed.stored_identities(
                session, s.table, s.key_columns, host_name, volumes.match()
            )
            given = desired.get(s.name, {})
            for key, row in outside.items():
                if key not in given:
                    identities[(s.name, key)] = row
                    stored_links.setdefault(s.name, {})[key] = (row["wwid"], row["volume_id"])
        identities.update(((s.name, key), row) for key, row in present[s.name].items())
    links = _link(session, identities, volumes, lock=write)
    for s in identity_specs:
        for key, row in present[s.name].items():
            row["volume_id"] = links.rows.get((s.name, key))
    for s in unit_specs:
        for row in present[s.name].values():
            row["volume_id"] = links.units.get(row["wwid"])
        if scoped:
            given = desired.get(s.name, {})
            wwids = None if len(links.units) > _MATCH_LIMIT else frozenset(links.units)
            stored = observed.stored_unit_links(session, s.table, s.key_columns, host_name, wwids)
            stored_links[s.name] = {k: v for k, v in stored.items() if k not in given}

    plans: list[_Plan] = []
    for index, s in enumerate(SPECS):
        scope = desired.get(s.name, {}).keys() if scoped else None
        plan = _diff(session, s, host_name, present[s.name], scope)
        for key, (wwid, old_volume) in sorted(stored_links.get(s.name, {}).items()):
            if s.volume_link is VolumeLink.IDENTITY:
                new_volume = links.rows.get((s.name, key))
            else:
                new_volume = links.units.get(wwid) if wwid else None
            if new_volume != old_volume:
                plan.relinks.append((key, new_volume))
                plan.changes.append(
                    Change(
                        "changed",
                        s.name,
                        s.key_text(key),
                        ("volume_id",),
                        (old_volume,),
                        (new_volume,),
                    )
                )
        plan.changes.sort(key=lambda c: (c.event, c.key))
        plans.append(plan)
        if progress is not None:
            progress("compare", index + 1, len(SPECS))
    changes = tuple(c for plan in plans for c in plan.changes)
    written = 0
    if write and any(plan.size for plan in plans):
        written += _write(session, host_name, plans, now, progress)
        written += write_journal(session, host_name, changes, now)
    return Applied(changes, written, tuple(links.ambiguous))


def _where_key(spec: KindSpec[Any]) -> Any:
    table = spec.table
    return and_(
        table.c.host_name == bindparam("b_host"),
        *(table.c[k] == bindparam(f"b_{k}") for k in spec.key_columns),
    )


def _key_params(spec: KindSpec[Any], host_name: str, key: Key) -> dict[str, Any]:
    return {
        "b_host": host_name,
        **{f"b_{k}": v for k, v in zip(spec.key_columns, key, strict=True)},
    }


def _write(
    session: Session,
    host_name: str,
    plans: Sequence[_Plan],
    now: dt.datetime,
    progress: Progress | None,
) -> int:
    written = 0
    total = sum(plan.size for plan in plans)
    # Children go before parents when deleting, after them when inserting.
    for plan in reversed(plans):
        if plan.deletes:
            session.execute(
                delete(plan.spec.table).where(_where_key(plan.spec)),
                [_key_params(plan.spec, host_name, key) for key in plan.deletes],
            )
            written += len(plan.deletes)
    for plan in plans:
        spec, table, keys = plan.spec, plan.spec.table, plan.spec.key_columns
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
                .where(_where_key(spec))
                .values({c: bindparam(f"v_{c}") for c in columns} | {"changed_at": now}),
                [
                    {
                        **_key_params(spec, host_name, spec.key_of(row)),
                        **{f"v_{c}": row[c] for c in columns},
                    }
                    for row in plan.updates
                ],
            )
            written += len(plan.updates)
        if plan.relinks:
            session.execute(
                update(table)
                .where(_where_key(spec))
                .values(volume_id=bindparam("v_volume_id"), changed_at=now),
                [
                    {**_key_params(spec, host_name, key), "v_volume_id": volume_id}
                    for key, volume_id in plan.relinks
                ],
            )
            written += len(plan.relinks)
        if progress is not None:
            progress("write", written, total)
    return written


# --- the journal ------------------------------------------------------------------


def write_journal(
    session: Session, host_name: str, changes: Sequence[Change], now: dt.datetime
) -> int:
    """Journal each change of ``host_name`` at ``now``.

    :returns: how many entries were written.
    :raises sqlalchemy.exc.SQLAlchemyError: a database error.
    """
    if not changes:
        return 0
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
    return len(changes)


def prune_journal(
    session: Session, host_name: str, now: dt.datetime, retention: dt.timedelta
) -> int:
    """Delete the journal entries of ``host_name`` older than ``retention``.

    :returns: how many were deleted.
    :raises sqlalchemy.exc.SQLAlchemyError: a database error.
    """
    pruned = session.execute(
        delete(JOURNAL).where(JOURNAL.c.host_name == host_name, JOURNAL.c.at < now - retention)
    )
    return int(pruned.rowcount or 0)  # type: ignore[attr-defined]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


__all__ = [
    "AmbiguousVolume",
    "Applied",
    "Change",
    "apply_rows",
    "prune_journal",
    "write_journal",
]
