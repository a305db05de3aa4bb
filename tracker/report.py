"""Status dumps: the tracked tree, read in a constant number of queries.

``collect`` reads backends, volumes, snapshots and connections with one query
each, and where the volumes are present on hosts (the SCSI devices and
multipath maps reconciles linked to them) with one query each: six in all,
whatever the number of records or hosts (cinderlib needed 1 + 2N). The
statements live in :mod:`tracker.db.status_queries`; this module turns their
rows into frozen records, and :class:`StatusReport` renders them as the tree
operators read in a REPL, or as JSON for scripts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Any, NamedTuple

from tracker.db import status_queries
from tracker.db.store import Store

#: How many queries :func:`collect` sends, whatever the store holds.
QUERIES = status_queries.STATEMENTS


class SnapshotStatus(NamedTuple):
    """One snapshot in a status dump."""

    id: str
    name: str | None
    size: int
    status: str


class ConnectionStatus(NamedTuple):
    """One connection in a status dump."""

    id: str
    host: str
    protocol: str
    attach_mode: str
    status: str


class PathStatus(NamedTuple):
    """One path to a volume on a host: a SCSI device a reconcile linked to it.

    :ivar hctl: its SCSI address, ``H:C:T:L``.
    :ivar device: its block device (``/dev/sdc``), ``None`` without one.
    :ivar state: the SCSI device state (``running``, ``offline``,
        ``transport-offline`` ...), ``None`` when the host did not report one.
    :ivar transport: ``fc``, ``iscsi``, ``sas`` ..., ``None`` when unknown.
    """

    hctl: str
    device: str | None
    state: str | None
    transport: str | None

    def describe(self, short: bool) -> str:
        """:param short: name the block device without ``/dev/`` (``sdc``).

        :returns: e.g. ``"sdc running"``, ``"/dev/sdc offline"``, or
            ``"2:0:0:1 (no block device) running"``.
        """
        if self.device is None:
            where = f"{self.hctl} (no block device)"
        else:
            where = self.device.removeprefix("/dev/") if short else self.device
        return f"{where} {self.state or 'state ?'}"


class MultipathStatus(NamedTuple):
    """The multipath map of a volume on a host.

    :ivar name: the map's name (``mpatha``), ``None`` for an unnamed map.
    :ivar device: ``/dev/mapper/<name>``, or ``/dev/dm-N`` for an unnamed map.
    :ivar wwid: the WWID the map is keyed by.
    """

    name: str | None
    device: str
    wwid: str


class HostPresence(NamedTuple):
    """Where a volume is present on one host, from the host's last reconcile.

    A tracked volume is linked to one logical unit at most (a volume matching
    several is linked to none), and a host has one map per WWID, so a volume
    has at most one multipath map per host.

    :ivar host: the host's name, as it reconciled.
    :ivar multipath: its multipath map there, ``None`` when it has none.
    :ivar paths: its paths there, by SCSI address.
    """

    host: str
    multipath: MultipathStatus | None
    paths: tuple[PathStatus, ...]

    def as_dict(self) -> dict[str, Any]:
        """:returns: the presence as JSON-ready data."""
        return {
            "host": self.host,
            "multipath": None if self.multipath is None else self.multipath._asdict(),
            "paths": [path._asdict() for path in self.paths],
        }

    def describe(self) -> str:
        """One line for an operator.

        :returns: e.g. ``"on compute-1: mpatha (/dev/mapper/mpatha) via sdc
            running, sdg running"``, or ``"on compute-2: /dev/sdc running"``
            without a multipath map.
        """
        mpath = self.multipath
        if mpath is None:
            shown = ", ".join(path.describe(short=False) for path in self.paths)
        else:
            name = mpath.name or mpath.device.removeprefix("/dev/")
            via = ", ".join(path.describe(short=True) for path in self.paths)
            shown = f"{name} ({mpath.device}) " + (f"via {via}" if via else "with no path present")
        return f"on {self.host}: {shown}"


class VolumeStatus(NamedTuple):
    """One volume in a status dump, with its snapshots, connections and presence on hosts."""

    id: str
    name: str | None
    size: int
    status: str
    serial: str | None
    wwn: str | None
    snapshots: tuple[SnapshotStatus, ...]
    connections: tuple[ConnectionStatus, ...]
    #: where reconciled hosts see the volume, by host name
    hosts: tuple[HostPresence, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """:returns: the volume as JSON-ready data."""
        data = self._asdict()
        data["snapshots"] = [s._asdict() for s in self.snapshots]
        data["connections"] = [c._asdict() for c in self.connections]
        data["hosts"] = [h.as_dict() for h in self.hosts]
        return data


class BackendStatus(NamedTuple):
    """One backend in a status dump, with its volumes."""

    id: str
    name: str
    driver: str
    store: str
    volumes: tuple[VolumeStatus, ...]

    def as_dict(self) -> dict[str, Any]:
        """:returns: the backend as JSON-ready data."""
        data = self._asdict()
        data["volumes"] = [v.as_dict() for v in self.volumes]
        return data


@dataclass(frozen=True, slots=True)
class StatusReport:
    """The tracked tree. ``str()`` renders it; :meth:`as_dict` is for JSON.

    :ivar backends: the backends, by name.
    :ivar generated_at: when the store was read.
    """

    backends: tuple[BackendStatus, ...]
    generated_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        """:returns: the report as JSON-ready data."""
        return {
            "generated_at": self.generated_at.isoformat(),
            "backends": [backend.as_dict() for backend in self.backends],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:returns: the report as a JSON document."""
        return json.dumps(self.as_dict(), indent=indent)

    def render(self) -> str:
        """:returns: the tree, one line per record, as in cinderlib's tracking docs."""
        if not self.backends:
            return "(no backends tracked)"
        lines: list[str] = []
        add = lines.append
        for backend in self.backends:
            volumes = backend.volumes
            plural = "" if len(volumes) == 1 else "s"
            driver = backend.driver or "no driver"
            add(f"Backend {backend.name} ({driver}): {len(volumes)} volume{plural}")
            last_volume = len(volumes) - 1
            for vi, (vid, name, size, status, serial, wwn, snaps, conns, hosts) in enumerate(
                volumes
            ):
                branch, stem = ("└── ", "    ") if vi == last_volume else ("├── ", "│   ")
                label = f" {name}" if name else ""
                ident = (f" serial={serial}" if serial else "") + (f" wwn={wwn}" if wwn else "")
                add(f"{branch}Volume {vid}{label} {size}GiB [{status}]{ident}")
                last = len(snaps) + len(conns) + len(hosts) - 1
                index = 0
                for sid, sname, ssize, sstatus in snaps:
                    twig = "└── " if index == last else "├── "
                    slabel = f" {sname}" if sname else ""
                    add(f"{stem}{twig}Snapshot {sid}{slabel} {ssize}GiB [{sstatus}]")
                    index += 1
                for cid, host, protocol, mode, cstatus in conns:
                    twig = "└── " if index == last else "├── "
                    proto = protocol or "?"
                    add(f"{stem}{twig}Connection {cid} {proto} -> {host} ({mode}) [{cstatus}]")
                    index += 1
                for presence in hosts:
                    twig = "└── " if index == last else "├── "
                    add(f"{stem}{twig}{presence.describe()}")
                    index += 1
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        # In a REPL the report *is* the dump operators asked for.
        return self.render()


def _grouped(rows: Sequence[Any], make: Any) -> dict[str, tuple[Any, ...]]:
    """Group rows ordered by their first column into tuples of ``make(rest)``."""
    grouped: dict[str, tuple[Any, ...]] = {}
    for parent, group in groupby(rows, key=itemgetter(0)):
        grouped[parent] = tuple(make(row[1:]) for row in group)
    return grouped


def _presence(devices: Sequence[Any], maps: Sequence[Any]) -> dict[str, tuple[HostPresence, ...]]:
    """Group device and map rows (ordered by volume, then host) into presences per volume."""
    paths: dict[str, dict[str, list[PathStatus]]] = {}
    for volume_id, host, hctl, block_name, state, transport in devices:
        device = None if block_name is None else f"/dev/{block_name}"
        per_host = paths.setdefault(volume_id, {})
        per_host.setdefault(host, []).append(PathStatus(hctl, device, state, transport))
    mapped: dict[str, dict[str, MultipathStatus]] = {}
    for volume_id, host, name, block_name, wwid in maps:
        device = f"/dev/mapper/{name}" if name else f"/dev/{block_name}"
        # at most one map per volume and host (see HostPresence); keep the first
        mapped.setdefault(volume_id, {}).setdefault(host, MultipathStatus(name, device, wwid))
    presence: dict[str, tuple[HostPresence, ...]] = {}
    for volume_id in paths.keys() | mapped.keys():
        host_paths = paths.get(volume_id, {})
        host_maps = mapped.get(volume_id, {})
        presence[volume_id] = tuple(
            HostPresence(host, host_maps.get(host), tuple(host_paths.get(host, ())))
            for host in sorted(host_paths.keys() | host_maps.keys())
        )
    return presence


def collect(store: Store, names: Iterable[str] | None = None) -> StatusReport:
    """Read the tracked tree of ``store`` in :data:`QUERIES` (six) queries.

    Each volume carries where reconciled hosts see it (:class:`HostPresence`):
    its paths and multipath map per host, as the hosts' last reconciles stored
    them.

    :param names: only these backends (``volume_backend_name``); all by default.
    :returns: the report.
    :raises tracker.exceptions.StoreUnavailable: the database cannot be reached.
    """
    wanted = None if names is None else sorted(set(names))
    with store.read() as session:
        rows = status_queries.status_rows(session, wanted)
    snaps = _grouped(rows.snapshots, SnapshotStatus._make)
    conns = _grouped(rows.connections, ConnectionStatus._make)
    hosts = _presence(rows.devices, rows.maps)
    empty: tuple[()] = ()
    vols = _grouped(
        rows.volumes,
        lambda row: VolumeStatus._make(
            (*row, snaps.get(row[0], empty), conns.get(row[0], empty), hosts.get(row[0], empty))
        ),
    )
    url = store.display_url
    return StatusReport(
        backends=tuple(
            BackendStatus(row.id, row.name, row.driver, url, vols.get(row.id, empty))
            for row in rows.backends
        ),
        generated_at=dt.datetime.now(dt.UTC),
    )


def status(*stores: Store) -> StatusReport:
    """The status tree for a REPL.

    With no argument, of the backends registered in this process
    (:attr:`tracker.Backend.backends`), grouped by their stores, in six
    queries per store; with stores, of everything tracked in them.

    A value put into :attr:`tracker.Backend.backends` that is not a Backend
    (``Backend.backends["x"] = 42``) is skipped with a warning logged.

    :returns: the combined report.
    :raises tracker.exceptions.StoreUnavailable: a database cannot be reached.
    :raises tracker.exceptions.InvalidInput: an argument is not a Store.
    """
    import logging

    from tracker import validation
    from tracker.resources import Backend

    reports: list[StatusReport] = []
    if stores:
        reports = [collect(validation.store("stores", store)) for store in stores]
    else:
        by_store: dict[int, tuple[Store, list[str]]] = {}
        for key, backend in list(Backend.backends.items()):
            if not isinstance(backend, Backend):
                logging.getLogger(__name__).warning(
                    "tracker.status(): skipping Backend.backends[%r], which is a %s, not a Backend",
                    key,
                    type(backend).__name__,
                )
                continue
            by_store.setdefault(id(backend.store), (backend.store, []))[1].append(backend.name)
        reports = [collect(store, names) for store, names in by_store.values()]
    merged = sorted((b for r in reports for b in r.backends), key=lambda b: (b.name, b.store))
    return StatusReport(backends=tuple(merged), generated_at=dt.datetime.now(dt.UTC))
