"""The managed storage connections of each host, as stored (``storage_connections``).

Reads return frozen :class:`StoredConnection` records. Writes are single
statements or short transactions through :meth:`Store.run_write
<tracker.db.store.Store.run_write>` (deadlocks retried), keyed by host name
and id. A connection's *lease* (``lease_owner`` until ``lease_expires_at``)
says which process may connect or reconnect it now: taken by one conditional
``UPDATE`` (the row is free, expired, or already ours), so two processes
sharing the store never reconnect one connection at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, Row, Table, case, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker import exceptions
from tracker.db import models
from tracker.db.store import Store

__all__ = [
    "CONNECTIONS",
    "StoredConnection",
    "delete_connection",
    "get",
    "insert_connection",
    "list_for_host",
    "record_attempt",
    "record_check",
    "release_lease",
    "sharing",
    "take_lease",
]

CONNECTIONS: Table = models.StorageConnection.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class StoredConnection:
    """One managed connection's row.

    :ivar options: the options that are not the URI's (``secret_file``).
    :ivar attempts: consecutive failed attempts since the last success.
    """

    host_name: str
    id: str
    scheme: str
    uri: str
    target_key: str
    connection_info: Mapping[str, Any]
    options: Mapping[str, Any]
    state: str
    connected: bool
    established: bool
    last_error_code: str | None
    last_error_message: str | None
    last_error_at: dt.datetime | None
    attempts: int
    last_attempt_at: dt.datetime | None
    connected_at: dt.datetime | None
    checked_at: dt.datetime | None
    lease_owner: str | None
    lease_expires_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


def _record(row: Row[Any]) -> StoredConnection:
    return StoredConnection(**{name: row._mapping[name] for name in StoredConnection.__slots__})


def _length(column: str) -> int:
    column_type: Any = CONNECTIONS.c[column].type
    return int(column_type.length)


def _where(host_name: str, connection_id: str) -> Any:
    return (CONNECTIONS.c.host_name == host_name) & (CONNECTIONS.c.id == connection_id)


def _rowcount(result: Any) -> int:
    cursor: CursorResult[Any] = result
    return int(cursor.rowcount or 0)


def list_for_host(store: Store, host_name: str) -> tuple[StoredConnection, ...]:
    """List a host's managed connections.

    :returns: the host's managed connections, by id (one query).

    :raises tracker.exceptions.StoreError: the store cannot be read.
    """
    stmt = select(CONNECTIONS).where(CONNECTIONS.c.host_name == host_name)
    with store.read(f"list the storage connections of {host_name}") as session:
        rows = session.execute(stmt.order_by(CONNECTIONS.c.id)).all()
    return tuple(_record(row) for row in rows)


def get(store: Store, host_name: str, connection_id: str) -> StoredConnection | None:
    """Read one managed connection.

    :returns: one managed connection, or ``None`` when it is not managed.

    :raises tracker.exceptions.StoreError: the store cannot be read.
    """
    stmt = select(CONNECTIONS).where(_where(host_name, connection_id))
    with store.read(f"read storage connection {connection_id}") as session:
        row = session.execute(stmt).first()
    return None if row is None else _record(row)


def insert_connection(
    store: Store,
    host_name: str,
    connection_id: str,
    *,
    scheme: str,
    uri: str,
    target_key: str,
    connection_info: Mapping[str, Any],
    options: Mapping[str, Any],
    now: dt.datetime,
) -> StoredConnection:
    """Store a newly managed connection (``pending``, never connected).

    :returns: its row.
    :raises tracker.exceptions.StorageConnectionInUse: the id is managed on
        this host already (nothing was changed).
    :raises tracker.exceptions.StoreError: the store cannot be written.
    """
    values = {
        "host_name": host_name,
        "id": connection_id,
        "scheme": scheme,
        "uri": uri,
        "target_key": target_key,
        "connection_info": dict(connection_info),
        "options": dict(options),
        "state": "pending",
        "connected": False,
        "established": False,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }

    def work(session: Session) -> None:
        session.execute(insert(CONNECTIONS).values(**values))

    try:
        store.run_write(work, f"manage storage connection {connection_id}")
    except IntegrityError:
        raise exceptions.StorageConnectionInUse(host_name, connection_id) from None
    found = get(store, host_name, connection_id)
    if found is None:  # unmanaged by another process in between
        raise exceptions.StorageConnectionNotFound(host_name, connection_id)
    return found


def delete_connection(
    store: Store, host_name: str, connection_id: str
) -> tuple[StoredConnection, tuple[str, ...]]:
    """Stop managing a connection: delete its row and say who else needs its target.

    One transaction: the rows of the host naming the same target are locked
    (``SELECT ... FOR UPDATE``), so of two processes unmanaging the last two
    ids of a target at once, exactly one finds no other id left (and
    disconnects). When tracker made the connection (``established``), the
    ids left inherit that: the last of them disconnects it.

    :returns: the row as it was, and the other ids naming its target, sorted.
    :raises tracker.exceptions.StorageConnectionNotFound: it is not managed.
    :raises tracker.exceptions.StoreError: the store cannot be written.
    """

    def work(session: Session) -> tuple[StoredConnection, tuple[str, ...]] | None:
        row = session.execute(select(CONNECTIONS).where(_where(host_name, connection_id))).first()
        if row is None:
            return None
        gone = _record(row)
        same_target = (CONNECTIONS.c.host_name == host_name) & (
            CONNECTIONS.c.target_key == gone.target_key
        )
        ids = session.execute(
            select(CONNECTIONS.c.id).where(same_target).order_by(CONNECTIONS.c.id).with_for_update()
        ).scalars()
        others = tuple(i for i in ids if i != connection_id)
        session.execute(delete(CONNECTIONS).where(_where(host_name, connection_id)))
        if others and gone.established:
            session.execute(update(CONNECTIONS).where(same_target).values(established=True))
        return gone, others

    deleted = store.run_write(work, f"unmanage storage connection {connection_id}")
    if deleted is None:
        raise exceptions.StorageConnectionNotFound(host_name, connection_id)
    return deleted


def sharing(store: Store, host_name: str, target_key: str) -> tuple[str, ...]:
    """List the ids of the host's managed connections to one target.

    :returns: the ids of the host's managed connections to one target, sorted
        (one query, through the ``(host_name, target_key)`` index).

    :raises tracker.exceptions.StoreError: the store cannot be read.
    """
    stmt = (
        select(CONNECTIONS.c.id)
        .where(CONNECTIONS.c.host_name == host_name, CONNECTIONS.c.target_key == target_key)
        .order_by(CONNECTIONS.c.id)
    )
    with store.read(f"read the connections to {target_key}") as session:
        return tuple(session.execute(stmt).scalars())


def take_lease(
    store: Store,
    host_name: str,
    connection_id: str,
    owner: str,
    ttl: dt.timedelta,
    now: dt.datetime,
) -> bool:
    """Take (or renew) a connection's lease: nobody else may (re)connect it until it
    lapses.

    :returns: whether ``owner`` holds it now; ``False`` when another holder's
        lease runs, or the connection is not managed any more.
    :raises tracker.exceptions.StoreError: the store cannot be written.
    """
    stmt = (
        update(CONNECTIONS)
        .where(
            _where(host_name, connection_id),
            or_(
                CONNECTIONS.c.lease_owner.is_(None),
                CONNECTIONS.c.lease_owner == owner,
                CONNECTIONS.c.lease_expires_at <= now,
            ),
        )
        .values(lease_owner=owner, lease_expires_at=now + ttl)
    )

    def work(session: Session) -> int:
        return _rowcount(session.execute(stmt))

    return store.run_write(work, f"take the lease of storage connection {connection_id}") > 0


def release_lease(store: Store, host_name: str, connection_id: str, owner: str) -> None:
    """Give a connection's lease up, if ``owner`` holds it.

    :raises tracker.exceptions.StoreError: the store cannot be written.
    """
    stmt = (
        update(CONNECTIONS)
        .where(_where(host_name, connection_id), CONNECTIONS.c.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None)
    )

    def work(session: Session) -> None:
        session.execute(stmt)

    store.run_write(work, f"release the lease of storage connection {connection_id}")


def record_attempt(
    store: Store,
    host_name: str,
    connection_id: str,
    *,
    now: dt.datetime,
    error: tuple[str, str] | None,
    established: bool = False,
) -> bool:
    """Record the outcome of a connect attempt.

    Success: ``connected``, the error cleared, the attempt count reset, and
    ``established`` set when this attempt made the connection. Failure:
    ``reconnecting``, the error ``(code, message)`` kept, the count incremented.

    :returns: whether the connection is still managed (``False``: it was
        unmanaged meanwhile, nothing was written).
    :raises tracker.exceptions.StoreError: the store cannot be written.
    """
    if error is None:
        values: dict[str, Any] = {
            "state": "connected",
            "connected": True,
            "last_error_code": None,
            "last_error_message": None,
            "last_error_at": None,
            "attempts": 0,
            "connected_at": now,
            "checked_at": now,
        }
        if established:
            values["established"] = True
    else:
        code, message = error
        values = {
            "state": "reconnecting",
            "connected": False,
            "last_error_code": code[: _length("last_error_code")],
            "last_error_message": message[: _length("last_error_message")],
            "last_error_at": now,
            "attempts": CONNECTIONS.c.attempts + 1,
        }
    stmt = (
        update(CONNECTIONS)
        .where(_where(host_name, connection_id))
        .values(last_attempt_at=now, updated_at=now, **values)
    )

    def work(session: Session) -> int:
        return _rowcount(session.execute(stmt))

    return store.run_write(work, f"record an attempt of storage connection {connection_id}") > 0


def record_check(
    store: Store, host_name: str, connection_id: str, *, connected: bool, now: dt.datetime
) -> None:
    """Record what a check found: connected (a success: the error and the count of
    failed attempts are cleared), or lost (``reconnecting``).

    :raises tracker.exceptions.StoreError: the store cannot be written.
    """
    values: dict[str, Any] = {"connected": connected, "checked_at": now}
    if connected:
        values.update(
            state="connected",
            last_error_code=None,
            last_error_message=None,
            last_error_at=None,
            attempts=0,
        )
    else:  # a connection that was up is lost; a pending one stays pending
        values["state"] = case(
            (CONNECTIONS.c.state == "connected", "reconnecting"), else_=CONNECTIONS.c.state
        )
    stmt = update(CONNECTIONS).where(_where(host_name, connection_id)).values(**values)

    def work(session: Session) -> None:
        session.execute(stmt)

    store.run_write(work, f"record a check of storage connection {connection_id}")
