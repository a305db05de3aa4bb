"""The full reconcile: make the store's observed rows of one host equal a HostState.

``reconcile(store, state)`` makes the store's observed rows *of that host* equal
to ``state``, in one transaction:

* every object is turned into the column values of its table, keyed by the
  host name and its natural key (:mod:`tracker.reconcile.kinds`);
* the host's current rows are read (one narrow ``(key, digest)`` query per
  kind), compared, and only the differences are written: a reconcile of an
  unchanged host writes **zero rows** (:func:`tracker.reconcile.apply.apply_rows`);
* a journal entry records each appearance, change and disappearance;
* devices and multipath maps are linked to tracked volumes by WWN/WWID or serial;
  a volume matching several unrelated logical units is reported, not guessed.

Tracked intent (backends, volumes, snapshots, connections) is only read, and
another host's rows are never touched, so several hosts can share one store.
Because everything happens in one transaction, killing the process at any
point leaves either the old or the new state, and the next reconcile converges.
Writers of the same host are serialised by locking its ``observed_hosts`` row,
which is taken before anything else, then the volumes to link (in id order),
then the observed rows are written.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker import validation
from tracker.db import models, observed
from tracker.db.store import Store
from tracker.discovery.model import HostState
from tracker.reconcile.apply import (
    AmbiguousVolume,
    Applied,
    Change,
    apply_rows,
    prune_journal,
)
from tracker.reconcile.kinds import desired_rows

LOG = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

HOSTS = observed.HOSTS

DEFAULT_JOURNAL_RETENTION = dt.timedelta(days=30)


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


def ensure_host(store: Store, host_name: str, now: dt.datetime) -> int:
    """Create the host's ``observed_hosts`` row on its first reconcile.

    In a transaction of its own, so that two processes reconciling a new host
    at once do not abort each other's main transaction: the loser of the race
    finds the row there.

    :returns: how many rows were written (0 or 1).
    :raises tracker.exceptions.StoreError: the store cannot be written.
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


def lock_host(session: Session, store: Store, host_name: str, *, lock: bool) -> list[str]:
    """Read the host's stored warnings; with ``lock``, hold its row until commit.

    Holding the row makes this transaction the host's one writer.

    :returns: the warnings stored by the previous reconcile (empty for a new host).
    :raises sqlalchemy.exc.SQLAlchemyError: a database error.
    """
    stmt = select(HOSTS.c.warnings).where(HOSTS.c.host_name == host_name)
    if lock and store.dialect != "sqlite":  # SQLite writers are serialised by BEGIN IMMEDIATE
        stmt = stmt.with_for_update()
    return list(session.execute(stmt).scalar() or [])


def bump_host(
    session: Session, host_name: str, now: dt.datetime, warnings: list[str] | None = None
) -> int:
    """Count one more change of the host (and store its warnings, when given).

    :returns: 1, the row written.
    :raises sqlalchemy.exc.SQLAlchemyError: a database error.
    """
    values: dict[str, Any] = {"generation": HOSTS.c.generation + 1, "changed_at": now}
    if warnings is not None:
        values["warnings"] = warnings
    session.execute(update(HOSTS).where(HOSTS.c.host_name == host_name).values(values))
    return 1


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
    created = 0 if dry_run else ensure_host(store, host_name, now)
    written += created

    def work(session: Session) -> tuple[Applied, int]:
        """The transaction; run again from the start (and fresh rows) if it deadlocks."""
        stored_warnings = lock_host(session, store, host_name, lock=not dry_run)
        applied = apply_rows(
            session,
            host_name,
            desired_rows(state),
            now=now,
            scoped=False,
            write=not dry_run,
            progress=progress,
        )
        extra = 0
        if not dry_run and (applied.changes or stored_warnings != warnings or created):
            extra += prune_journal(session, host_name, now, journal_retention)
            extra += bump_host(session, host_name, now, warnings)
        return applied, extra

    operation = f"reconcile host {host_name}"
    if dry_run:
        with store.read(operation) as session:
            applied, extra = work(session)
    else:
        applied, extra = store.run_write(work, operation)
    written += applied.written + extra
    for volume in applied.ambiguous:
        LOG.warning(
            "volume %s matches several logical units on %s (%s): not linked",
            volume.volume_id,
            host_name,
            ", ".join(volume.wwids),
        )
    return ReconcileResult(
        host_name=host_name,
        changes=applied.changes,
        rows_written=written,
        dry_run=dry_run,
        ambiguous=applied.ambiguous,
        counts=counts,
    )
