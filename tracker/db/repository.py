"""Queries and writes of the tracked state.

Every function takes the :class:`~sqlalchemy.orm.Session` of a transaction the
caller opened (``store.read()`` / ``store.write()``); none keeps one. Reads
return SQLAlchemy ``Row`` objects of whole table rows, which
:mod:`tracker.resources` turns into the objects users hold.

Writes of existing rows are *conditional on the version the caller read*: an
``UPDATE``/``DELETE`` that matches no row is turned into
:class:`~tracker.exceptions.ConflictError` (the row moved on) or
:class:`~tracker.exceptions.NotFound` (the row is gone), and the transaction is
rolled back by the caller's context manager, so nothing is half-written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Row, Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from tracker import exceptions
from tracker.db import models

BACKENDS: Table = models.Backend.__table__  # type: ignore[assignment]
VOLUMES: Table = models.Volume.__table__  # type: ignore[assignment]
SNAPSHOTS: Table = models.Snapshot.__table__  # type: ignore[assignment]
CONNECTIONS: Table = models.Connection.__table__  # type: ignore[assignment]

RESOURCE_TABLES: Mapping[str, Table] = {
    "backend": BACKENDS,
    "volume": VOLUMES,
    "snapshot": SNAPSHOTS,
    "connection": CONNECTIONS,
}

#: Connection statuses that keep a volume ``in-use``.
ATTACHED_STATUSES = ("attached", "detaching")


# --- reads -------------------------------------------------------------------


def get_row(session: Session, resource: str, row_id: str) -> Row[Any]:
    """Read one row by id.

    :param resource: ``"backend"``, ``"volume"``, ``"snapshot"`` or ``"connection"``.
    :returns: the row.
    :raises tracker.exceptions.NotFound: no such row.
    """
    table = RESOURCE_TABLES[resource]
    row = session.execute(select(table).where(table.c.id == row_id)).first()
    if row is None:
        raise exceptions.NotFound(resource, row_id)
    return row


def backend_by_name(session: Session, name: str) -> Row[Any] | None:
    """:returns: the backend row named ``name``, or ``None``."""
    return session.execute(select(BACKENDS).where(BACKENDS.c.name == name)).first()


def all_backends(session: Session) -> Sequence[Row[Any]]:
    """:returns: every backend row, by name."""
    return session.execute(select(BACKENDS).order_by(BACKENDS.c.name)).all()


def _in_creation_order(
    session: Session, table: Table, parent: str, parent_id: str
) -> Sequence[Row[Any]]:
    return session.execute(
        select(table).where(table.c[parent] == parent_id).order_by(table.c.created_at, table.c.id)
    ).all()


def volumes_of(session: Session, backend_id: str) -> Sequence[Row[Any]]:
    """:returns: the volume rows of a backend, oldest first."""
    return _in_creation_order(session, VOLUMES, "backend_id", backend_id)


def snapshots_of(session: Session, volume_id: str) -> Sequence[Row[Any]]:
    """:returns: the snapshot rows of a volume, oldest first."""
    return _in_creation_order(session, SNAPSHOTS, "volume_id", volume_id)


def connections_of(session: Session, volume_id: str) -> Sequence[Row[Any]]:
    """:returns: the connection rows of a volume, oldest first."""
    return _in_creation_order(session, CONNECTIONS, "volume_id", volume_id)


def _children_of_backend(session: Session, table: Table, backend_id: str) -> Sequence[Row[Any]]:
    return session.execute(
        select(table)
        .join(VOLUMES, VOLUMES.c.id == table.c.volume_id)
        .where(VOLUMES.c.backend_id == backend_id)
        .order_by(table.c.created_at, table.c.id)
    ).all()


def snapshots_of_backend(session: Session, backend_id: str) -> Sequence[Row[Any]]:
    """:returns: every snapshot row of every volume of a backend, in one query."""
    return _children_of_backend(session, SNAPSHOTS, backend_id)


def connections_of_backend(session: Session, backend_id: str) -> Sequence[Row[Any]]:
    """:returns: every connection row of every volume of a backend, in one query."""
    return _children_of_backend(session, CONNECTIONS, backend_id)


def dependents_of_volume(session: Session, volume_id: str) -> list[str]:
    """Describe what keeps a volume from being deleted.

    :returns: e.g. ``["2 snapshots", "1 connection (attached)"]``; empty when none.
    """
    found = []
    snapshots = session.execute(
        select(func.count()).select_from(SNAPSHOTS).where(SNAPSHOTS.c.volume_id == volume_id)
    ).scalar_one()
    if snapshots:
        found.append(f"{snapshots} snapshot{'s' if snapshots > 1 else ''}")
    statuses = session.execute(
        select(CONNECTIONS.c.status).where(CONNECTIONS.c.volume_id == volume_id)
    ).scalars()
    connection_statuses = sorted(statuses)
    if connection_statuses:
        count = len(connection_statuses)
        found.append(
            f"{count} connection{'s' if count > 1 else ''} ({', '.join(connection_statuses)})"
        )
    return found


def count_attached(session: Session, volume_id: str) -> int:
    """:returns: how many connections keep the volume ``in-use``."""
    return int(
        session.execute(
            select(func.count())
            .select_from(CONNECTIONS)
            .where(
                CONNECTIONS.c.volume_id == volume_id,
                CONNECTIONS.c.status.in_(ATTACHED_STATUSES),
            )
        ).scalar_one()
    )


# --- writes ------------------------------------------------------------------


def insert_rows(session: Session, resource: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert new rows (one statement, executemany for several).

    :returns: nothing.
    :raises sqlalchemy.exc.IntegrityError: a key already exists (callers
        translate it, knowing which key they wrote).
    """
    if rows:
        session.execute(insert(RESOURCE_TABLES[resource]), list(rows))


def update_versioned(
    session: Session, resource: str, row_id: str, version: int, values: Mapping[str, Any]
) -> int:
    """Update a row if it still has ``version``; bump the version.

    :returns: the row's new version.
    :raises tracker.exceptions.ConflictError: the row has another version.
    :raises tracker.exceptions.NotFound: the row is gone.
    """
    table = RESOURCE_TABLES[resource]
    result = session.execute(
        update(table)
        .where(table.c.id == row_id, table.c.version == version)
        .values({**values, "version": version + 1})
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        _raise_stale(session, resource, row_id, version)
    return version + 1


def delete_versioned(session: Session, resource: str, row_id: str, version: int) -> None:
    """Delete a row if it still has ``version``.

    :returns: nothing.
    :raises tracker.exceptions.ConflictError: the row has another version.
    :raises tracker.exceptions.NotFound: the row is gone.
    """
    table = RESOURCE_TABLES[resource]
    result = session.execute(delete(table).where(table.c.id == row_id, table.c.version == version))
    if result.rowcount != 1:  # type: ignore[attr-defined]
        _raise_stale(session, resource, row_id, version)


def lock_versioned(
    session: Session, resource: str, row_id: str, version: int, *, for_delete: bool = False
) -> None:
    """Lock a row until the transaction ends, if it still has ``version``.

    Writers lock a volume *before* its snapshots or connections (the one lock
    order, see ``docs/architecture.rst``), so two transactions never hold a
    child each while waiting for the parent. PostgreSQL takes ``FOR NO KEY
    UPDATE`` (``FOR UPDATE`` with ``for_delete``), which still lets others
    insert children and link observed rows; MariaDB takes ``FOR UPDATE``;
    SQLite needs nothing, its writers being serialised by ``BEGIN IMMEDIATE``.

    :returns: nothing.
    :raises tracker.exceptions.ConflictError: the row has another version.
    :raises tracker.exceptions.NotFound: the row is gone.
    """
    table = RESOURCE_TABLES[resource]
    actual = session.execute(
        select(table.c.version)
        .where(table.c.id == row_id)
        .with_for_update(key_share=not for_delete)
    ).scalar()
    if actual is None:
        raise exceptions.NotFound(resource, row_id)
    if actual != version:
        raise exceptions.ConflictError(resource, row_id, version, int(actual))


def lock_existing_volumes(session: Session, volume_ids: Iterable[str]) -> set[str]:
    """Hold the volumes that observed rows are about to reference, in id order.

    ``FOR KEY SHARE`` on PostgreSQL, ``LOCK IN SHARE MODE`` on MariaDB: the
    volumes cannot be deleted before this transaction ends, yet their rows
    can still be updated. A volume deleted meanwhile is not returned.

    :returns: which of ``volume_ids`` still exist.
    """
    wanted = sorted(set(volume_ids))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(
            session.execute(
                select(VOLUMES.c.id)
                .where(VOLUMES.c.id.in_(chunk))
                .order_by(VOLUMES.c.id)
                .with_for_update(read=True, key_share=True)
            ).scalars()
        )
    return found


def _raise_stale(session: Session, resource: str, row_id: str, version: int) -> None:
    table = RESOURCE_TABLES[resource]
    actual = session.execute(select(table.c.version).where(table.c.id == row_id)).scalar()
    if actual is None:
        raise exceptions.NotFound(resource, row_id)
    raise exceptions.ConflictError(resource, row_id, version, int(actual))


def existing_ids(session: Session, resource: str, ids: Iterable[str]) -> set[str]:
    """:returns: which of ``ids`` are already stored for ``resource``."""
    table = RESOURCE_TABLES[resource]
    found: set[str] = set()
    for chunk in _chunks(ids):
        found.update(session.execute(select(table.c.id).where(table.c.id.in_(chunk))).scalars())
    return found


def _chunks(ids: Iterable[str], size: int = 500) -> Iterator[list[str]]:
    """Split ``ids`` (sorted) into lists short enough for one ``IN (...)``."""
    wanted = sorted(ids)
    for start in range(0, len(wanted), size):
        yield wanted[start : start + size]


# --- observed host state, as seen from tracked volumes ---------------------------

OBSERVED_DEVICES: Table = models.ObservedScsiDevice.__table__  # type: ignore[assignment]
OBSERVED_MAPS: Table = models.ObservedMultipathMap.__table__  # type: ignore[assignment]


def volume_names(session: Session, ids: Iterable[str]) -> dict[str, str | None]:
    """:returns: id -> name of the volumes among ``ids`` that exist (500 ids a query)."""
    names: dict[str, str | None] = {}
    for chunk in _chunks(ids):
        stmt = select(VOLUMES.c.id, VOLUMES.c.name).where(VOLUMES.c.id.in_(chunk))
        names.update((volume_id, name) for volume_id, name in session.execute(stmt))
    return names


def volume_identity(
    session: Session, volume_id: str
) -> tuple[str | None, str | None, str | None] | None:
    """:returns: ``(name, wwn, serial)`` of a tracked volume, or ``None`` when there is none."""
    stmt = select(VOLUMES.c.name, VOLUMES.c.wwn, VOLUMES.c.serial).where(VOLUMES.c.id == volume_id)
    row = session.execute(stmt).first()
    return None if row is None else (row.name, row.wwn, row.serial)
