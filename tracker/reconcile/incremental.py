"""The incremental reconcile: applying device events to the stored model of one host.

:class:`LiveModel` keeps the store's observed rows of one host equal to the
host's devices as udev events come in, without rescanning the host:

* :meth:`LiveModel.start` subscribes to the event source **first**, then scans
  the whole host and reconciles it (a full reconcile), then applies the events
  that arrived during the scan, in sequence-number order. An event about state
  the scan already saw changes nothing: applying an event re-reads the device
  (``source.lookup``), it never replays what the event says.
* :meth:`LiveModel.step` waits for an event, coalesces what follows for
  ``window`` seconds (or ``max_batch`` events) and applies the batch in one
  transaction, under the same per-host lock as a full reconcile
  (:func:`tracker.reconcile.full.lock_host`), with the same volume linking
  (:func:`tracker.reconcile.apply.apply_rows` over only the keys the batch
  touched).
* A netlink overflow (:class:`~tracker.exceptions.EventsLost`) or a gap in the
  sequence numbers makes the next step a full resync (:meth:`LiveModel.resync`)
  instead.

How a batch is applied
----------------------
The model keeps the host's current :class:`~tracker.host.records.DeviceRecord`
values in memory (``sys_path -> record``, from the initial scan), with a few
indexes over them (:class:`_Records`). A batch:

1. updates the records: each event's device is re-read with ``lookup`` (a
   ``remove`` first drops the device and everything below it: a removed rport
   takes its targets and LUNs with it), and so are the multipath maps that hold
   a disk the batch added or removed (a new ``sd`` can change a map's paths);
2. finds what the changed records affect (the *owners*: the devices whose
   discovery objects may differ), e.g. a changed FC remote port affects the
   LUNs behind it, a changed disk its SCSI device and the maps holding it;
3. runs discovery -- which is pure -- over the *closure* of the owners only:
   every record the owners' objects and warnings are computed from (a LUN's
   disks, its target's ``fc_transport``, its rport or iSCSI session, its SCSI
   host; a map's members with their closures). Discovery of a subset is exactly
   discovery of the whole host restricted to those objects, because every join
   discovery makes is within such a closure;
4. writes the owners' rows (``None`` for an owner's key that is gone) and the
   host's warnings (kept per record: only the warnings of the owners' records
   are replaced).

So one LUN costs a handful of lookups and a discovery of a few dozen records,
whatever the size of the host; a burst of thousands of events is one
discovery of the records it touched and one transaction per ``max_batch``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from tracker import validation
from tracker.clock import Clock, SystemClock
from tracker.db import models
from tracker.db.store import Store
from tracker.discovery import discover
from tracker.discovery.model import HostState
from tracker.discovery.parsers import RecordKind, classify, path_context
from tracker.exceptions import EventsLost, InvalidInput
from tracker.host.events import DeviceAction, DeviceEvent, EventSource
from tracker.host.records import DeviceRecord
from tracker.host.sources import DeviceSource
from tracker.host.wanted import SUBSYSTEMS, spec_for
from tracker.reconcile.apply import Change, apply_rows, prune_journal
from tracker.reconcile.full import (
    DEFAULT_JOURNAL_RETENTION,
    bump_host,
    ensure_host,
    lock_host,
    reconcile,
)
from tracker.reconcile.kinds import SPECS, Key, Row, RowContext

__all__ = ["BatchResult", "LiveModel"]

LOG = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

_HOST_KINDS = frozenset(
    {
        RecordKind.SCSI_HOST_DEVICE,
        RecordKind.SCSI_HOST,
        RecordKind.FC_HOST,
        RecordKind.ISCSI_HOST,
        RecordKind.SAS_HOST,
    }
)
_SESSION_KINDS = frozenset({RecordKind.ISCSI_SESSION, RecordKind.ISCSI_CONNECTION})
_SLAVES = "slaves/"

#: A batch prunes the host's old journal entries at most this often (seconds of
#: the model's clock); a resync always does, as every full reconcile.
PRUNE_INTERVAL = 3600.0

#: The reason given when :meth:`LiveModel.start` scans the host.
INITIAL_SCAN = "initial scan"


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What one applied batch (or one resync) did.

    :ivar events: how many events it applied (for a resync: those applied
        after its scan).
    :ivar changes: every difference written, as the journal records them.
    :ivar rows_written: observed, journal and host rows inserted, updated or
        deleted.
    :ivar resynced: ``True`` when the host was scanned in full.
    :ivar reason: why it was (``"initial scan"``, an overflow, a gap), or
        ``None``.
    :ivar first_seqnum: the lowest sequence number applied, ``None`` if none.
    :ivar last_seqnum: the highest sequence number applied, ``None`` if none.
    :ivar duration: seconds from the start of the batch's application (after
        the coalescing window) to its commit, by the model's clock.
    """

    events: int
    changes: tuple[Change, ...]
    rows_written: int
    resynced: bool
    reason: str | None
    first_seqnum: int | None
    last_seqnum: int | None
    duration: float

    @property
    def summary(self) -> str:
        """:returns: one line for operators' logs. Never raises."""
        counts = {e: sum(1 for c in self.changes if c.event == e) for e in _EVENTS}
        what = f"resync ({self.reason})" if self.resynced else "batch"
        seqnums = (
            f" seqnum {self.first_seqnum}..{self.last_seqnum}"
            if self.first_seqnum is not None
            else ""
        )
        return (
            f"{what}: {self.events} events{seqnums}; {counts['appeared']} appeared, "
            f"{counts['changed']} changed, {counts['vanished']} vanished; "
            f"{self.rows_written} rows written in {self.duration * 1000:.1f} ms"
        )

    def as_dict(self) -> dict[str, Any]:
        """:returns: the result as JSON-ready data. Never raises."""
        return {
            "events": self.events,
            "resynced": self.resynced,
            "reason": self.reason,
            "first_seqnum": self.first_seqnum,
            "last_seqnum": self.last_seqnum,
            "rows_written": self.rows_written,
            "duration": self.duration,
            "changes": [change.as_dict() for change in self.changes],
        }


_EVENTS = ("appeared", "changed", "vanished")


# --- the host's records, indexed -------------------------------------------------


def _wanted(record: DeviceRecord) -> bool:
    """Whether a full scan would list this record (the scan's own rule)."""
    return record.subsystem in SUBSYSTEMS and (
        spec_for(record.subsystem, record.devtype, record.sys_name) is not None
    )


def _block_owners(record: DeviceRecord) -> tuple[str, ...]:
    """The SCSI device paths a block disk may belong to (as discovery joins them)."""
    derived = record.sys_path.rsplit("/block/", 1)[0]
    if record.parent is not None and record.parent != derived:
        return (record.parent, derived)
    return (derived,)


def _slaves(record: DeviceRecord) -> list[tuple[str, str | None]]:
    return [
        (name[len(_SLAVES) :], target or None)
        for name, target in record.links.items()
        if name.startswith(_SLAVES)
    ]


def _entries(record: DeviceRecord, kind: RecordKind | None) -> tuple[tuple[str, Hashable], ...]:
    """The index entries of one record: how other records find it."""
    if kind is None:
        return ()
    context = path_context(record.sys_path)
    if kind in _HOST_KINDS:
        return (("host", context.host),)
    if kind in _SESSION_KINDS:
        return (("host", context.host), ("sid", context.session))
    if kind is RecordKind.FC_REMOTE_PORT:
        return (("rport", record.sys_name),)
    if kind is RecordKind.FC_TRANSPORT:
        return (("target", record.sys_name),)
    if kind is RecordKind.SCSI_DEVICE:
        return (
            ("dev_host", context.host),
            ("dev_rport", context.rport),
            ("dev_target", context.target),
            ("dev_sid", context.session),
        )
    if kind is RecordKind.BLOCK_DISK:
        return (
            ("block_name", record.sys_name),
            *(("blocks_of", owner) for owner in _block_owners(record)),
        )
    if kind is RecordKind.DM_DISK:
        entries: list[tuple[str, Hashable]] = []
        for name, target in _slaves(record):
            entries.append(("holder_name", name))
            if target is not None:
                entries.append(("holder_path", target))
        return tuple(entries)
    return ()


class _Records:
    """The host's current records, with the indexes the closures are computed from."""

    def __init__(self, records: Iterable[DeviceRecord] = ()) -> None:
        self.by_path: dict[str, DeviceRecord] = {}
        self.kinds: dict[str, RecordKind | None] = {}
        self._entries: dict[str, tuple[tuple[str, Hashable], ...]] = {}
        self._index: defaultdict[tuple[str, Hashable], set[str]] = defaultdict(set)
        self._sorted: list[str] = []
        for record in records:
            self.put(record)

    def find(self, name: str, key: Hashable) -> set[str]:
        """:returns: the paths indexed under ``(name, key)`` (do not modify)."""
        if key is None:
            return set()
        return self._index.get((name, key), set())

    def put(self, record: DeviceRecord) -> None:
        path = record.sys_path
        if path in self.by_path:
            self.drop(path)
        else:
            bisect.insort(self._sorted, path)
        kind = classify(record)
        self.by_path[path] = record
        self.kinds[path] = kind
        entries = _entries(record, kind)
        self._entries[path] = entries
        for entry in entries:
            self._index[entry].add(path)

    def drop(self, path: str) -> None:
        """Forget one record (its path stays in the sorted list until :meth:`remove`)."""
        self.by_path.pop(path, None)
        self.kinds.pop(path, None)
        for entry in self._entries.pop(path, ()):
            paths = self._index.get(entry)
            if paths is not None:
                paths.discard(path)
                if not paths:
                    del self._index[entry]

    def subtree(self, path: str) -> list[str]:
        """:returns: ``path`` and every record path below it."""
        start = bisect.bisect_left(self._sorted, path)
        found = []
        prefix = path + "/"
        for candidate in self._sorted[start:]:
            if candidate != path and not candidate.startswith(prefix):
                break
            found.append(candidate)
        return found

    def remove(self, path: str) -> None:
        """Forget one record entirely."""
        self.drop(path)
        index = bisect.bisect_left(self._sorted, path)
        if index < len(self._sorted) and self._sorted[index] == path:
            del self._sorted[index]


@dataclass
class _Scope:
    """What a set of changed records affects, and what discovery must see for it."""

    owners: set[str]
    closure: set[str]
    warned: set[str]


def _scope(records: _Records, changed: Mapping[str, DeviceRecord | None]) -> _Scope:
    """Work out the owners a batch affects, their closure and whose warnings to redo.

    ``changed`` maps each changed path to its record *before* the batch
    (``None`` when it is new); ``records`` already holds the new ones.
    """
    hosts: set[int] = set()
    sids: set[int] = set()
    devices: set[str] = set()
    maps: set[str] = set()
    owners: set[str] = set(changed)
    for path, old in changed.items():
        new = records.by_path.get(path)
        for record in (old, new):
            if record is None:
                continue
            kind = classify(record)
            context = path_context(path)
            if kind in _HOST_KINDS:
                if context.host is not None:
                    hosts.add(context.host)
                if kind is RecordKind.FC_HOST and (
                    old is None
                    or new is None
                    or old.attributes.get("port_name") != new.attributes.get("port_name")
                ):
                    devices |= records.find("dev_host", context.host)
            elif kind in _SESSION_KINDS:
                if context.session is not None:
                    sids.add(context.session)
                if context.host is not None:
                    hosts.add(context.host)
                devices |= records.find("dev_sid", context.session)
            elif kind is RecordKind.FC_REMOTE_PORT:
                devices |= records.find("dev_rport", record.sys_name)
            elif kind is RecordKind.FC_TRANSPORT:
                devices |= records.find("dev_target", record.sys_name)
            elif kind is RecordKind.SCSI_DEVICE:
                devices.add(path)
            elif kind is RecordKind.BLOCK_DISK:
                devices.update(_block_owners(record))
                maps |= records.find("holder_name", record.sys_name)
                maps |= records.find("holder_path", path)
            elif kind is RecordKind.DM_DISK:
                maps.add(path)
    warned: set[str] = set(changed)
    for device in devices:
        for block in records.find("blocks_of", device):
            warned.add(block)
            maps |= records.find("holder_name", records.by_path[block].sys_name)
            maps |= records.find("holder_path", block)
    owners |= devices | maps
    for number in hosts:
        found = records.find("host", number)
        owners |= found
        warned |= found
    for sid in sids:
        found = records.find("sid", sid)
        owners |= found
        warned |= found
    warned |= owners

    closure = _closure(records, devices, maps, hosts, sids, owners)
    return _Scope(owners, closure, warned)


def _closure(
    records: _Records,
    devices: set[str],
    maps: set[str],
    hosts: set[int],
    sids: set[int],
    owners: set[str],
) -> set[str]:
    """Every record the owners' objects and warnings are discovered from."""
    closure: set[str] = set()

    def close_device(device: str) -> None:
        if device not in records.by_path or device in closure:
            return
        closure.add(device)
        closure.update(records.find("blocks_of", device))
        context = path_context(device)
        closure.update(records.find("target", context.target))
        closure.update(records.find("rport", context.rport))
        closure.update(records.find("sid", context.session))
        closure.update(records.find("host", context.host))

    for device in devices:
        close_device(device)
    for dm in maps:
        record = records.by_path.get(dm)
        if record is None:
            continue
        closure.add(dm)
        for name, target in _slaves(record):
            blocks = {target} if target in records.by_path else records.find("block_name", name)
            for block in blocks:
                for owner in _block_owners(records.by_path[block]):
                    close_device(owner)
    for number in hosts:
        closure.update(records.find("host", number))
    for sid in sids:
        closure.update(records.find("sid", sid))
    closure.update(path for path in owners if path in records.by_path)
    return closure


# --- the model ---------------------------------------------------------------------


@dataclass
class _Pending:
    """A batch's outcome, kept in memory until its transaction commits."""

    keys: dict[str, dict[str, Key]]
    warnings: dict[str, list[str]]


class LiveModel:
    """The store's observed rows of one host, kept current by device events.

    :param store: the store to write.
    :param host_name: the host's name in the store.
    :param source: reads the host's devices (``scan`` for a full scan,
        ``lookup`` per event).
    :param events: the event source; :meth:`start` starts it, the caller
        stops it.
    :param clock: times the coalescing window and the results.
    :param window: after a batch's first event, how long (seconds) to keep
        collecting events into the batch.
    :param max_batch: the most events one batch applies.
    :param progress: called as ``progress(phase, done, total)`` during full
        reconciles and batches.
    :param gap_resync: resynchronise when sequence numbers skip (see
        :doc:`/discovery`: a monitor filtered on some subsystems sees the
        sequence numbers of the other subsystems' events as gaps).
    :param journal_retention: journal entries of the host older than this are
        pruned by every resync, and by a batch at most every
        :data:`PRUNE_INTERVAL` seconds.
    :raises tracker.exceptions.InvalidInput: the host name is empty or too
        long, ``window`` is negative or ``max_batch`` is not positive.
    """

    def __init__(
        self,
        store: Store,
        host_name: str,
        source: DeviceSource,
        events: EventSource,
        *,
        clock: Clock = SystemClock(),  # noqa: B008 -- stateless
        window: float = 0.05,
        max_batch: int = 5000,
        progress: Progress | None = None,
        gap_resync: bool = True,
        journal_retention: dt.timedelta = DEFAULT_JOURNAL_RETENTION,
    ) -> None:
        self.store = store
        self.host_name = validation.text("host_name", host_name)
        self.source = source
        self.events = events
        self.clock = clock
        if isinstance(window, bool) or not isinstance(window, int | float) or not window >= 0:
            raise InvalidInput("window", window, "a number of seconds, 0 or more")
        self.window = float(window)
        self.max_batch = validation.integer("max_batch", max_batch, 1, 2**31 - 1)
        self.progress = progress
        self.gap_resync = gap_resync
        self.journal_retention = journal_retention
        self._records = _Records()
        #: kind -> owner sys_path -> the key of the object it owns
        self._keys: dict[str, dict[str, Key]] = {s.name: {} for s in SPECS}
        #: record sys_path -> the warnings about it (as stored: ``str``)
        self._warnings: dict[str, list[str]] = {}
        self._last_seqnum: int | None = None
        self._stale: str | None = "not started"
        self._host_exists = False
        self._pruned_at = float("-inf")

    def __repr__(self) -> str:
        return f"LiveModel(host_name={self.host_name!r}, records={len(self._records.by_path)})"

    # -- public API --

    def start(self) -> BatchResult:
        """Subscribe, scan and reconcile the whole host, then apply what came meanwhile.

        :returns: the initial resync's result, with the events that arrived
            during the scan counted in (and their changes appended).
        :raises tracker.exceptions.EventSourceError: the source cannot start.
        :raises tracker.exceptions.HostError: the host cannot be read.
        :raises tracker.exceptions.StoreError: the store cannot be written.
        """
        started = self.clock.monotonic()
        self.events.start()
        result = self.resync(INITIAL_SCAN)
        try:
            pending = self._drain()
        except EventsLost as lost:
            return self._merge(result, self.resync(f"events lost: {lost.reason}"), started)
        if not pending:
            return result
        pending.sort(key=lambda e: (e.seqnum is None, e.seqnum or 0))
        gap = self._gap(pending)
        if gap is not None:
            return self._merge(result, self.resync(gap), started)
        return self._merge(result, self._apply(pending), started)

    def step(self, timeout: float | None) -> BatchResult | None:
        """Wait for events and apply one batch of them.

        :param timeout: how long to wait for the first event (``None``: as
            long as it takes).
        :returns: the batch's result (a resync's, after lost events or a
            sequence gap), or ``None`` when no event came in time.
        :raises tracker.exceptions.EventSourceError: the source is not
            started or cannot be read.
        :raises tracker.exceptions.HostError: the host cannot be read.
        :raises tracker.exceptions.StoreError: the store cannot be written
            (nothing of the batch was committed; the next step resyncs).
        """
        if self._stale is not None:
            return self.resync(self._stale)
        try:
            first = self.events.poll(timeout)
            if first is None:
                return None
            batch = [first]
            deadline = self.clock.monotonic() + self.window
            while len(batch) < self.max_batch:
                remaining = deadline - self.clock.monotonic()
                event = self.events.poll(max(0.0, remaining))
                if event is None:  # the window is over
                    break
                batch.append(event)
        except EventsLost as lost:
            return self.resync(f"events lost: {lost.reason}")
        gap = self._gap(batch)
        if gap is not None:
            return self.resync(gap)
        return self._apply(batch)

    def reread(self, paths: Iterable[str]) -> BatchResult:
        """Re-read some devices and apply what changed, as if each had a ``change`` event.

        For state the kernel changes without an event (a SCSI device's
        ``state``, a remote port's ``port_state``): a waiter re-reads the
        devices its condition is about, instead of a full resync. Paths the
        model does not hold are skipped (new devices come with an ``add``
        event, or from a resync); sequence numbers are not touched.

        :param paths: device paths (``/devices/...``).
        :returns: the batch's result (``events`` counts the paths re-read).
        :raises tracker.exceptions.HostError: the host cannot be read.
        :raises tracker.exceptions.StoreError: the store cannot be written
            (nothing was committed; the next step resyncs).
        """
        if self._stale is not None:
            return self.resync(self._stale)
        held = self._records.by_path
        batch = [
            DeviceEvent(DeviceAction.CHANGE, path, held[path].subsystem, held[path].devtype)
            for path in dict.fromkeys(paths)
            if path in held
        ]
        return self._apply(batch)

    def resync(self, reason: str) -> BatchResult:
        """Scan the whole host and reconcile it in full; forget the sequence numbers.

        :param reason: why, for the result and the log.
        :returns: the result (``resynced=True``).
        :raises tracker.exceptions.HostError: the host cannot be read.
        :raises tracker.exceptions.StoreError: the store cannot be written.
        """
        started = self.clock.monotonic()
        LOG.info("%s: full resync (%s)", self.host_name, reason)
        self._stale = reason
        records = self.source.scan()
        state = discover(records, self.host_name)
        result = reconcile(
            self.store,
            state,
            journal_retention=self.journal_retention,
            progress=self.progress,
        )
        self._records = _Records(records)
        self._keys = {s.name: {} for s in SPECS}
        self._remember(state, self._keys)
        self._warnings = defaultdict(list)
        for warning in state.warnings:
            self._warnings[warning.sys_path].append(str(warning))
        self._last_seqnum = None
        self._stale = None
        self._host_exists = True
        self._pruned_at = started  # a full reconcile prunes the journal
        return BatchResult(
            events=0,
            changes=result.changes,
            rows_written=result.rows_written,
            resynced=True,
            reason=reason,
            first_seqnum=None,
            last_seqnum=None,
            duration=self.clock.monotonic() - started,
        )

    # -- internals --

    def _drain(self) -> list[DeviceEvent]:
        """Take every event already waiting (the ones that came during the scan)."""
        pending: list[DeviceEvent] = []
        while True:
            event = self.events.poll(0)
            if event is None:
                return pending
            pending.append(event)

    def _gap(self, batch: Sequence[DeviceEvent]) -> str | None:
        """Check the batch's sequence numbers against the last applied; track them.

        :returns: why to resync instead, or ``None``.
        """
        last = self._last_seqnum
        for event in batch:
            seqnum = event.seqnum
            if seqnum is None:
                continue
            if last is not None and seqnum != last + 1 and self.gap_resync:
                return f"sequence gap: {last} then {seqnum}"
            last = seqnum if last is None else max(last, seqnum)
        return None

    @staticmethod
    def _merge(first: BatchResult, then: BatchResult, started: float) -> BatchResult:
        return BatchResult(
            events=first.events + then.events,
            changes=first.changes + then.changes,
            rows_written=first.rows_written + then.rows_written,
            resynced=True,
            reason=first.reason if not then.resynced else then.reason,
            first_seqnum=then.first_seqnum,
            last_seqnum=then.last_seqnum,
            duration=first.duration + then.duration,
        )

    @staticmethod
    def _remember(state: HostState, keys: dict[str, dict[str, Key]]) -> None:
        """Record which record path owns which key of each kind in ``state``."""
        for spec in SPECS:
            owned = keys[spec.name]
            context = RowContext()
            for obj in spec.objects(state):
                owned[obj.sys_path] = spec.key_of(spec.build(obj, context))

    def _update_records(self, batch: Sequence[DeviceEvent]) -> dict[str, DeviceRecord | None]:
        """Re-read the batch's devices; :returns: changed path -> record before."""
        records = self._records
        before: dict[str, DeviceRecord | None] = {}
        to_read: dict[str, None] = {}
        for event in batch:
            path = event.sys_path
            if event.action is DeviceAction.REMOVE:
                for gone in records.subtree(path):
                    before.setdefault(gone, records.by_path.get(gone))
                    records.remove(gone)
            if event.subsystem in SUBSYSTEMS:
                to_read[path] = None
        self._read(to_read, before)
        # Dependants: the maps holding a disk that came or went (a new sd can
        # change a map's paths), and the members of a map that changed (a
        # multipath "change" is how a path failing is announced; the SCSI
        # device's own state change has no uevent).
        again: dict[str, None] = {}
        for path, old in list(before.items()):
            for record in (old, records.by_path.get(path)):
                kind = None if record is None else classify(record)
                if record is not None and kind is RecordKind.BLOCK_DISK:
                    again.update(dict.fromkeys(records.find("holder_name", record.sys_name)))
                elif record is not None and kind is RecordKind.DM_DISK:
                    for name, target in _slaves(record):
                        blocks = (
                            {target}
                            if target in records.by_path
                            else records.find("block_name", name)
                        )
                        for block in blocks:
                            again[block] = None
                            again.update(
                                dict.fromkeys(
                                    owner
                                    for owner in _block_owners(records.by_path[block])
                                    if owner in records.by_path
                                )
                            )
        self._read((path for path in again if path not in to_read), before)
        return {path: old for path, old in before.items() if old != records.by_path.get(path)}

    def _read(self, paths: Iterable[str], before: dict[str, DeviceRecord | None]) -> None:
        records = self._records
        for path in paths:
            record = self.source.lookup(path)
            if record is not None and not _wanted(record):
                record = None
            before.setdefault(path, records.by_path.get(path))
            if record is None:
                if path in records.by_path:
                    records.remove(path)
            elif records.by_path.get(path) != record:
                records.put(record)

    def _apply(self, batch: Sequence[DeviceEvent]) -> BatchResult:
        """Apply one batch in one transaction."""
        started = self.clock.monotonic()
        seqnums = [e.seqnum for e in batch if e.seqnum is not None]
        try:
            changed = self._update_records(batch)
        except Exception:
            self._stale = "a batch could not be read"
            raise
        pending, desired, warnings = self._plan(changed)
        now = models.utcnow()
        prune = started - self._pruned_at >= PRUNE_INTERVAL

        def work(session: Session) -> tuple[tuple[Change, ...], int]:
            stored = lock_host(session, self.store, self.host_name, lock=True)
            applied = apply_rows(
                session, self.host_name, desired, now=now, scoped=True, progress=self.progress
            )
            written = applied.written
            if applied.changes or stored != warnings:
                if prune:
                    written += prune_journal(session, self.host_name, now, self.journal_retention)
                written += bump_host(session, self.host_name, now, warnings)
            return applied.changes, written

        try:
            if any(desired.values()) or changed:
                # The host's row exists since the resync; a batch does not re-check it.
                written = 0 if self._host_exists else ensure_host(self.store, self.host_name, now)
                self._host_exists = True
                changes, rows = self.store.run_write(work, f"apply events to {self.host_name}")
                written += rows
            else:
                changes, written = (), 0
        except Exception:
            self._stale = "a batch could not be written"
            raise
        self._keys, self._warnings = pending.keys, pending.warnings
        if prune and changes:
            self._pruned_at = started
        if seqnums:
            self._last_seqnum = max([*seqnums, self._last_seqnum or 0])
        return BatchResult(
            events=len(batch),
            changes=tuple(changes),
            rows_written=written,
            resynced=False,
            reason=None,
            first_seqnum=min(seqnums) if seqnums else None,
            last_seqnum=max(seqnums) if seqnums else None,
            duration=self.clock.monotonic() - started,
        )

    def _plan(
        self, changed: Mapping[str, DeviceRecord | None]
    ) -> tuple[_Pending, dict[str, dict[Key, Row | None]], list[str]]:
        """Discover the affected owners; :returns: the new memory, the rows, the warnings."""
        keys = {name: dict(owned) for name, owned in self._keys.items()}
        warnings = dict(self._warnings)
        desired: dict[str, dict[Key, Row | None]] = {s.name: {} for s in SPECS}
        if changed:
            records = self._records
            scope = _scope(records, changed)
            subset = [records.by_path[path] for path in sorted(scope.closure)]
            state = discover(subset, self.host_name)
            context = RowContext.of(state.scsi_hosts)
            for spec in SPECS:
                owned = keys[spec.name]
                rows = desired[spec.name]
                for owner in scope.owners:
                    old_key = owned.pop(owner, None)
                    if old_key is not None:
                        rows[old_key] = None
                for obj in spec.objects(state):
                    if obj.sys_path in scope.owners:
                        row = spec.build(obj, context)
                        key = spec.key_of(row)
                        rows[key] = row
                        owned[obj.sys_path] = key
            for path in scope.warned:
                warnings.pop(path, None)
            for warning in state.warnings:
                if warning.sys_path in scope.warned:
                    warnings.setdefault(warning.sys_path, []).append(str(warning))
        flat = sorted(text for texts in warnings.values() for text in texts)
        return _Pending(keys, warnings), desired, flat
