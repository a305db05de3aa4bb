"""The reads of a status dump: six statements, whatever the number of records.

:func:`status_rows` reads, in the caller's transaction, the backends, volumes,
snapshots and connections of a status tree (one statement each) and where the
volumes are present on hosts: the SCSI devices (paths) and multipath maps that
reconciles linked to them (one statement each). :mod:`tracker.report` turns
the rows into typed records; no SQL is built outside this package.

Rows come out grouped by parent and in a stable order, straight off the
``(parent, created_at, id)`` and ``volume_id`` indexes, so the report groups
them in one pass without joining or sorting in Python. A backend filter is a
sub-select, not a join, so each statement returns each row once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import Row, Select, Table, select
from sqlalchemy.orm import Session

from tracker.db import repository

B: Table = repository.BACKENDS
V: Table = repository.VOLUMES
S: Table = repository.SNAPSHOTS
C: Table = repository.CONNECTIONS
D: Table = repository.OBSERVED_DEVICES
M: Table = repository.OBSERVED_MAPS

#: How many statements :func:`status_rows` sends, whatever the store holds.
STATEMENTS = 6


class StatusRows(NamedTuple):
    """The rows of a status dump, each sequence ordered by its first column.

    :ivar backends: ``(id, name, driver)`` by name.
    :ivar volumes: ``(backend_id, id, name, size, status, serial, wwn)`` by
        backend, then creation.
    :ivar snapshots: ``(volume_id, id, name, size, status)`` by volume, then creation.
    :ivar connections: ``(volume_id, id, host, protocol, attach_mode, status)``
        by volume, then creation.
    :ivar devices: ``(volume_id, host_name, hctl, block_name, state, transport)``
        of the SCSI devices linked to a volume, by volume, host and SCSI address
        (numerically: ``2:0:0:1`` before ``10:0:0:0``).
    :ivar maps: ``(volume_id, host_name, name, block_name, wwid)`` of the
        multipath maps linked to a volume, by volume, host and WWID.
    """

    backends: Sequence[Row[Any]]
    volumes: Sequence[Row[Any]]
    snapshots: Sequence[Row[Any]]
    connections: Sequence[Row[Any]]
    devices: Sequence[Row[Any]]
    maps: Sequence[Row[Any]]


def _statements(names: Sequence[str] | None) -> tuple[Select[Any], ...]:
    backends: Select[Any] = select(B.c.id, B.c.name, B.c.driver).order_by(B.c.name)
    volumes: Select[Any] = select(
        V.c.backend_id, V.c.id, V.c.name, V.c.size, V.c.status, V.c.serial, V.c.wwn
    ).order_by(V.c.backend_id, V.c.created_at, V.c.id)
    snapshots: Select[Any] = select(S.c.volume_id, S.c.id, S.c.name, S.c.size, S.c.status).order_by(
        S.c.volume_id, S.c.created_at, S.c.id
    )
    connections: Select[Any] = select(
        C.c.volume_id, C.c.id, C.c.host, C.c.protocol, C.c.attach_mode, C.c.status
    ).order_by(C.c.volume_id, C.c.created_at, C.c.id)
    devices: Select[Any] = (
        select(D.c.volume_id, D.c.host_name, D.c.hctl, D.c.block_name, D.c.state, D.c.transport)
        .where(D.c.volume_id.is_not(None))
        .order_by(D.c.volume_id, D.c.host_name, D.c.scsi_host, D.c.channel, D.c.target, D.c.lun)
    )
    maps: Select[Any] = (
        select(M.c.volume_id, M.c.host_name, M.c.name, M.c.block_name, M.c.wwid)
        .where(M.c.volume_id.is_not(None))
        .order_by(M.c.volume_id, M.c.host_name, M.c.wwid)
    )
    if names is not None:
        backend_ids = select(B.c.id).where(B.c.name.in_(list(names))).scalar_subquery()
        volume_ids = select(V.c.id).where(V.c.backend_id.in_(backend_ids)).scalar_subquery()
        backends = backends.where(B.c.name.in_(list(names)))
        volumes = volumes.where(V.c.backend_id.in_(backend_ids))
        snapshots = snapshots.where(S.c.volume_id.in_(volume_ids))
        connections = connections.where(C.c.volume_id.in_(volume_ids))
        devices = devices.where(D.c.volume_id.in_(volume_ids))
        maps = maps.where(M.c.volume_id.in_(volume_ids))
    return backends, volumes, snapshots, connections, devices, maps


def status_rows(session: Session, names: Sequence[str] | None = None) -> StatusRows:
    """Read the rows of a status dump in :data:`STATEMENTS` statements.

    Run it in one read transaction: the six statements then describe one state
    of the store only as far as the transaction's isolation provides.

    :param session: the session of a read transaction the caller opened.
    :param names: only the backends with these names (and their volumes'
        records); every backend when ``None``.
    :returns: the rows, each sequence grouped by its first column.
    :raises sqlalchemy.exc.SQLAlchemyError: the database failed (the caller's
        ``store.read()`` turns it into a :class:`~tracker.exceptions.StoreError`).
    """
    return StatusRows._make(session.execute(stmt).all() for stmt in _statements(names))
