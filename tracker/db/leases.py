"""Per-host writer leases: which ``tracker watch`` process applies a host's events.

A lease is one ``host_leases`` row per host name: the holder (``owner``, a
``host/pid/uuid`` text) and until when it holds it (``expires_at``, UTC). It is
taken and renewed by one conditional ``UPDATE`` (the row is ours, or its
holder let it expire), and created by an ``INSERT`` that the primary key lets
only one process win. Both are single statements, atomic on SQLite (``BEGIN
IMMEDIATE``), PostgreSQL and MariaDB (the ``UPDATE`` re-checks its condition on
the row it locked), so two processes can never both hold a host's lease.

The lease keeps two *watchers* of one host apart; each batch is still written
under the host's row lock, like every reconcile (:mod:`tracker.reconcile.full`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, Table, case, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker.db import models
from tracker.db.store import Store

__all__ = ["Lease", "holder", "release", "take"]

LEASES: Table = models.HostLease.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Lease:
    """A host's lease as stored.

    :ivar host_name: the host.
    :ivar owner: who holds it (``host/pid/uuid``).
    :ivar acquired_at: when this owner took it.
    :ivar expires_at: when it lapses unless renewed.
    """

    host_name: str
    owner: str
    acquired_at: dt.datetime
    expires_at: dt.datetime


def holder(store: Store, host_name: str) -> Lease | None:
    """Read a host's lease.

    :returns: the lease, expired or not, or ``None`` when the host has none.
    :raises tracker.exceptions.StoreError: the store cannot be read.
    """
    stmt = select(LEASES).where(LEASES.c.host_name == host_name)
    with store.read(f"read the lease of host {host_name}") as session:
        row = session.execute(stmt).first()
    if row is None:
        return None
    return Lease(row.host_name, row.owner, row.acquired_at, row.expires_at)


def take(store: Store, host_name: str, owner: str, ttl: dt.timedelta, now: dt.datetime) -> Lease:
    """Take or renew a host's lease, unless another owner holds it unexpired.

    :param owner: who asks.
    :param ttl: how long the lease lasts from ``now``.
    :param now: the current UTC time (the lease's clock).
    :returns: the host's lease after the attempt: ``owner``'s when it was
        taken or renewed, else the other holder's (compare ``lease.owner``).
    :raises tracker.exceptions.StoreError: the store cannot be written.
    """
    expires = now + ttl
    operation = f"take the lease of host {host_name}"

    def renew(session: Session) -> int:
        # acquired_at first: MariaDB evaluates SET assignments left to right,
        # so it must compare the owner before the owner is replaced.
        stmt = (
            update(LEASES)
            .where(
                LEASES.c.host_name == host_name,
                or_(LEASES.c.owner == owner, LEASES.c.expires_at <= now),
            )
            .ordered_values(
                (
                    LEASES.c.acquired_at,
                    case((LEASES.c.owner == owner, LEASES.c.acquired_at), else_=now),
                ),
                (LEASES.c.owner, owner),
                (LEASES.c.expires_at, expires),
            )
        )
        result: CursorResult[Any] = session.execute(stmt)  # type: ignore[assignment]
        return int(result.rowcount or 0)

    def create(session: Session) -> None:
        session.execute(
            insert(LEASES).values(
                host_name=host_name, owner=owner, acquired_at=now, expires_at=expires
            )
        )

    for _ in range(3):  # a holder may release between our UPDATE and INSERT
        if store.run_write(renew, operation):
            break
        try:
            store.run_write(create, operation)
            break
        except IntegrityError:
            pass  # another process holds a row now
        current = holder(store, host_name)
        if current is not None:
            return current
    current = holder(store, host_name)
    # None only if rows kept vanishing under us: then nobody holds it for now.
    return current if current is not None else Lease(host_name, "", now, now)


def release(store: Store, host_name: str, owner: str) -> bool:
    """Give a host's lease up, if ``owner`` holds it.

    :returns: whether a lease was released.
    :raises tracker.exceptions.StoreError: the store cannot be written.
    """
    stmt = delete(LEASES).where(LEASES.c.host_name == host_name, LEASES.c.owner == owner)
    with store.write(f"release the lease of host {host_name}") as session:
        result: CursorResult[Any] = session.execute(stmt)  # type: ignore[assignment]
        return bool(result.rowcount)
