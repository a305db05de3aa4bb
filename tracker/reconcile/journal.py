"""Reading back what reconciles wrote: the journal, the hosts, a host's rows.

Thin wrappers over the typed read model (:mod:`tracker.db.observed`), kept so
that ``from tracker.reconcile import journal, observed, observed_host`` works as
it always did. New code reads :func:`tracker.db.observed.host_view` and friends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tracker import exceptions, validation
from tracker.db import observed as read_model
from tracker.db import repository
from tracker.db.observed import JournalRecord
from tracker.db.store import Store
from tracker.reconcile.kinds import SPECS

__all__ = [
    "JournalRecord",
    "ObservedHostRecord",
    "journal",
    "observed",
    "observed_host",
    "observed_hosts",
]


def journal(store: Store, host_name: str | None = None, limit: int = 100) -> list[JournalRecord]:
    """Read the newest journal entries, newest last.

    :param host_name: only this host's; all hosts by default.
    :param limit: at most this many.
    :returns: the entries.
    :raises tracker.exceptions.InvalidInput: ``store`` is not a Store,
        ``host_name`` is not a host name, or ``limit`` is not a whole number
        from 1 to 2^31-1.
    """
    return read_model.journal(store, host_name, limit)


def observed_hosts(store: Store) -> list[str]:
    """:returns: the names of the hosts that reconciled into ``store``.

    :raises tracker.exceptions.InvalidInput: ``store`` is not a Store.
    """
    return read_model.host_names(store)


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
        host = read_model.host_record(session, host_name)
        if host is None:
            raise exceptions.NotFound("host", host_name)
        result = {s.name: read_model.host_rows(session, s.table, host_name) for s in SPECS}
        linked = {
            row["volume_id"]
            for rows in result.values()
            for row in rows
            if row.get("volume_id") is not None
        }
        names = repository.volume_names(session, linked)
    record = ObservedHostRecord(
        host.host_name, host.generation, host.changed_at, host.warnings, names
    )
    return record, result


def observed(store: Store, host_name: str) -> dict[str, list[dict[str, Any]]]:
    """Read the reconciled model of one host, as stored.

    :returns: kind -> rows (column values), in key order.
    :raises tracker.exceptions.NotFound: the host never reconciled into ``store``.
    """
    return observed_host(store, host_name)[1]
