"""Status dumps: the tracked tree, read in a constant number of queries.

``collect`` reads backends, volumes, snapshots and connections with one query
each (four in all, whatever the number of records; cinderlib needed 1 + 2N)
and returns frozen records; :class:`StatusReport` renders them as the tree
operators read in a REPL, or as JSON for scripts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Select, select

from tracker.db import repository
from tracker.db.store import Store

B, V, S, C = (
    repository.BACKENDS,
    repository.VOLUMES,
    repository.SNAPSHOTS,
    repository.CONNECTIONS,
)


@dataclass(frozen=True, slots=True)
class SnapshotStatus:
    """One snapshot in a status dump."""

    id: str
    name: str | None
    size: int
    status: str


@dataclass(frozen=True, slots=True)
class ConnectionStatus:
    """One connection in a status dump."""

    id: str
    host: str
    protocol: str
    attach_mode: str
    status: str


@dataclass(frozen=True, slots=True)
class VolumeStatus:
    """One volume in a status dump, with its snapshots and connections."""

    id: str
    name: str | None
    size: int
    status: str
    serial: str | None
    wwn: str | None
    snapshots: tuple[SnapshotStatus, ...]
    connections: tuple[ConnectionStatus, ...]


@dataclass(frozen=True, slots=True)
class BackendStatus:
    """One backend in a status dump, with its volumes."""

    id: str
    name: str
    driver: str
    store: str
    volumes: tuple[VolumeStatus, ...]


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
            "backends": [asdict(backend) for backend in self.backends],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:returns: the report as a JSON document."""
        return json.dumps(self.as_dict(), indent=indent)

    def render(self) -> str:
        """:returns: the tree, one line per record, as in cinderlib's tracking docs."""
        lines: list[str] = []
        add = lines.append
        if not self.backends:
            return "(no backends tracked)"
        for backend in self.backends:
            add(
                f"Backend {backend.name} ({backend.driver or 'no driver'}): "
                f"{len(backend.volumes)} volume{'' if len(backend.volumes) == 1 else 's'}"
            )
            for vi, volume in enumerate(backend.volumes):
                last_volume = vi == len(backend.volumes) - 1
                branch, stem = ("└── ", "    ") if last_volume else ("├── ", "│   ")
                label = f" {volume.name}" if volume.name else ""
                ident = f" serial={volume.serial}" if volume.serial else ""
                add(f"{branch}Volume {volume.id}{label} {volume.size}GiB [{volume.status}]{ident}")
                children = [
                    f"Snapshot {s.id}{f' {s.name}' if s.name else ''} {s.size}GiB [{s.status}]"
                    for s in volume.snapshots
                ] + [
                    f"Connection {c.id} {c.protocol or '?'} -> {c.host} ({c.attach_mode}) "
                    f"[{c.status}]"
                    for c in volume.connections
                ]
                for ci, child in enumerate(children):
                    twig = "└── " if ci == len(children) - 1 else "├── "
                    add(f"{stem}{twig}{child}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        # In a REPL the report *is* the dump operators asked for.
        return self.render()


def _filtered(stmt: Select[Any], names: Sequence[str] | None) -> Select[Any]:
    return stmt if names is None else stmt.where(B.c.name.in_(list(names)))


def collect(store: Store, names: Iterable[str] | None = None) -> StatusReport:
    """Read the tracked tree of ``store`` in four queries.

    :param names: only these backends (``volume_backend_name``); all by default.
    :returns: the report.
    :raises tracker.exceptions.StoreUnavailable: the database cannot be reached.
    """
    wanted = None if names is None else sorted(set(names))
    with store.read() as session:
        backends = session.execute(
            _filtered(select(B.c.id, B.c.name, B.c.driver), wanted).order_by(B.c.name)
        ).all()
        volumes = session.execute(
            _filtered(
                select(
                    V.c.backend_id, V.c.id, V.c.name, V.c.size, V.c.status, V.c.serial, V.c.wwn
                ).join(B, B.c.id == V.c.backend_id),
                wanted,
            ).order_by(V.c.created_at, V.c.id)
        ).all()
        snapshots = session.execute(
            _filtered(
                select(S.c.volume_id, S.c.id, S.c.name, S.c.size, S.c.status)
                .join(V, V.c.id == S.c.volume_id)
                .join(B, B.c.id == V.c.backend_id),
                wanted,
            ).order_by(S.c.created_at, S.c.id)
        ).all()
        connections = session.execute(
            _filtered(
                select(C.c.volume_id, C.c.id, C.c.host, C.c.protocol, C.c.attach_mode, C.c.status)
                .join(V, V.c.id == C.c.volume_id)
                .join(B, B.c.id == V.c.backend_id),
                wanted,
            ).order_by(C.c.created_at, C.c.id)
        ).all()
    snaps_by_volume: dict[str, list[SnapshotStatus]] = defaultdict(list)
    for volume_id, *fields in snapshots:
        snaps_by_volume[volume_id].append(SnapshotStatus(*fields))
    conns_by_volume: dict[str, list[ConnectionStatus]] = defaultdict(list)
    for volume_id, *fields in connections:
        conns_by_volume[volume_id].append(ConnectionStatus(*fields))
    vols_by_backend: dict[str, list[VolumeStatus]] = defaultdict(list)
    for backend_id, volume_id, name, size, status, serial, wwn in volumes:
        vols_by_backend[backend_id].append(
            VolumeStatus(
                volume_id,
                name,
                size,
                status,
                serial,
                wwn,
                tuple(snaps_by_volume.get(volume_id, ())),
                tuple(conns_by_volume.get(volume_id, ())),
            )
        )
    return StatusReport(
        backends=tuple(
            BackendStatus(
                backend_id,
                name,
                driver,
                store.display_url,
                tuple(vols_by_backend.get(backend_id, ())),
            )
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
