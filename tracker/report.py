"""Status dumps: the tracked tree, read in a constant number of queries.

``collect`` reads backends, volumes, snapshots and connections with one query
each (four in all, whatever the number of records; cinderlib needed 1 + 2N)
and returns frozen records; :class:`StatusReport` renders them as the tree
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

from sqlalchemy import Select, select

from tracker.db import repository
from tracker.db.store import Store

B, V, S, C = (
    repository.BACKENDS,
    repository.VOLUMES,
    repository.SNAPSHOTS,
    repository.CONNECTIONS,
)


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


class VolumeStatus(NamedTuple):
    """One volume in a status dump, with its snapshots and connections."""

    id: str
    name: str | None
    size: int
    status: str
    serial: str | None
    wwn: str | None
    snapshots: tuple[SnapshotStatus, ...]
    connections: tuple[ConnectionStatus, ...]

    def as_dict(self) -> dict[str, Any]:
        """:returns: the volume as JSON-ready data."""
        data = self._asdict()
        data["snapshots"] = [s._asdict() for s in self.snapshots]
        data["connections"] = [c._asdict() for c in self.connections]
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
            for vi, (vid, name, size, status, serial, _wwn, snaps, conns) in enumerate(volumes):
                branch, stem = ("└── ", "    ") if vi == last_volume else ("├── ", "│   ")
                label = f" {name}" if name else ""
                ident = f" serial={serial}" if serial else ""
                add(f"{branch}Volume {vid}{label} {size}GiB [{status}]{ident}")
                last = len(snaps) + len(conns) - 1
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
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        # In a REPL the report *is* the dump operators asked for.
        return self.render()


def _queries(names: Sequence[str] | None) -> tuple[Select[Any], ...]:
    """The four statements of a status dump.

    Rows come out grouped by parent and in creation order, straight off the
    ``(parent, created_at, id)`` indexes, so nothing is joined or sorted in
    Python. A backend filter is a sub-select, not a join.
    """
    backends = select(B.c.id, B.c.name, B.c.driver).order_by(B.c.name)
    volumes = select(
        V.c.backend_id, V.c.id, V.c.name, V.c.size, V.c.status, V.c.serial, V.c.wwn
    ).order_by(V.c.backend_id, V.c.created_at, V.c.id)
    snapshots = select(S.c.volume_id, S.c.id, S.c.name, S.c.size, S.c.status).order_by(
        S.c.volume_id, S.c.created_at, S.c.id
    )
    connections = select(
        C.c.volume_id, C.c.id, C.c.host, C.c.protocol, C.c.attach_mode, C.c.status
    ).order_by(C.c.volume_id, C.c.created_at, C.c.id)
    if names is not None:
        backend_ids = select(B.c.id).where(B.c.name.in_(list(names))).scalar_subquery()
        volume_ids = select(V.c.id).where(V.c.backend_id.in_(backend_ids)).scalar_subquery()
        backends = backends.where(B.c.name.in_(list(names)))
        volumes = volumes.where(V.c.backend_id.in_(backend_ids))
        snapshots = snapshots.where(S.c.volume_id.in_(volume_ids))
        connections = connections.where(C.c.volume_id.in_(volume_ids))
    return backends, volumes, snapshots, connections


def _grouped(rows: Sequence[Any], make: Any) -> dict[str, tuple[Any, ...]]:
    """Group rows ordered by their first column into tuples of ``make(rest)``."""
    grouped: dict[str, tuple[Any, ...]] = {}
    for parent, group in groupby(rows, key=itemgetter(0)):
        grouped[parent] = tuple(make(row[1:]) for row in group)
    return grouped


def collect(store: Store, names: Iterable[str] | None = None) -> StatusReport:
    """Read the tracked tree of ``store`` in four queries.

    :param names: only these backends (``volume_backend_name``); all by default.
    :returns: the report.
    :raises tracker.exceptions.StoreUnavailable: the database cannot be reached.
    """
    wanted = None if names is None else sorted(set(names))
    with store.read() as session:
        backends, volumes, snapshots, connections = (
            session.execute(stmt).all() for stmt in _queries(wanted)
        )
    snaps = _grouped(snapshots, SnapshotStatus._make)
    conns = _grouped(connections, ConnectionStatus._make)
    empty: tuple[()] = ()
    vols = _grouped(
        volumes,
        lambda row: VolumeStatus._make((*row, snaps.get(row[0], empty), conns.get(row[0], empty))),
    )
    url = store.display_url
    return StatusReport(
        backends=tuple(
            BackendStatus(backend_id, name, driver, url, vols.get(backend_id, empty))
            for backend_id, name, driver in backends
        ),
        generated_at=dt.datetime.now(dt.UTC),
    )


def status(*stores: Store) -> StatusReport:
    """The status tree for a REPL.

    With no argument, of the backends registered in this process
    (:attr:`tracker.Backend.backends`), grouped by their stores, in four
    queries per store; with stores, of everything tracked in them.

    :returns: the combined report.
    :raises tracker.exceptions.StoreUnavailable: a database cannot be reached.
    """
    from tracker.resources import Backend

    reports: list[StatusReport] = []
    if stores:
        reports = [collect(store) for store in stores]
    else:
        by_store: dict[int, tuple[Store, list[str]]] = {}
        for backend in Backend.backends.values():
            by_store.setdefault(id(backend.store), (backend.store, []))[1].append(backend.name)
        reports = [collect(store, names) for store, names in by_store.values()]
    merged = sorted((b for r in reports for b in r.backends), key=lambda b: (b.name, b.store))
    return StatusReport(backends=tuple(merged), generated_at=dt.datetime.now(dt.UTC))
