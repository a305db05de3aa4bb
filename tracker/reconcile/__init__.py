"""The only writer of observed host state.

* :mod:`tracker.reconcile.kinds` -- each observed kind described once, as data;
* :mod:`tracker.reconcile.apply` -- row-level application (diff, write, journal,
  volume links) of all of a host's rows or of a subset of keys;
* :mod:`tracker.reconcile.full` -- the full reconcile of a discovered HostState;
* :mod:`tracker.reconcile.incremental` -- the live model: device events applied
  to the stored rows of the keys they touch (:class:`LiveModel`);
* :mod:`tracker.reconcile.journal` -- reading back (wrappers over
  :mod:`tracker.db.observed`, the typed read model).

The public names are re-exported here: ``from tracker.reconcile import
reconcile, journal, observed, observed_host, ...`` keeps working.
"""

from __future__ import annotations

from tracker.reconcile.apply import AmbiguousVolume, Applied, Change, apply_rows
from tracker.reconcile.full import DEFAULT_JOURNAL_RETENTION, ReconcileResult, reconcile
from tracker.reconcile.incremental import BatchResult, LiveModel
from tracker.reconcile.journal import (
    JournalRecord,
    ObservedHostRecord,
    journal,
    observed,
    observed_host,
    observed_hosts,
)
from tracker.reconcile.kinds import KINDS, SPECS, KindSpec, desired_rows

__all__ = [
    "DEFAULT_JOURNAL_RETENTION",
    "KINDS",
    "SPECS",
    "AmbiguousVolume",
    "Applied",
    "BatchResult",
    "Change",
    "JournalRecord",
    "KindSpec",
    "LiveModel",
    "ObservedHostRecord",
    "ReconcileResult",
    "apply_rows",
    "desired_rows",
    "journal",
    "observed",
    "observed_host",
    "observed_hosts",
    "reconcile",
]
