"""Benchmarks of the tracking core: status dumps and tracking new volumes.

Every figure is printed as one line: what tracker did (queries, median time)
and the ratio against a raw SQLAlchemy Core baseline timed in the same run on
the same database, with the goal it is held to::

    .venv/bin/python benchmarks/tracking.py                 # sqlite + postgresql
    .venv/bin/python benchmarks/tracking.py --scale 0.05    # quick smoke run
    .venv/bin/python benchmarks/tracking.py --dialect all --repeat 7

See benchmarks/README.md for what each figure measures.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, update

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

from tracker import report
from tracker.db import repository
from tracker.db.store import Store
from tracker.resources import Backend, VolumeSpec
from tracker.testing.queries import count_queries

B, V, S, C = repository.BACKENDS, repository.VOLUMES, repository.SNAPSHOTS, repository.CONNECTIONS
D, M = repository.OBSERVED_DEVICES, repository.OBSERVED_MAPS

BENCHMARKS = ("status-dump", "track-bulk", "track-single")

#: the documented sizes, before --scale
STATUS_VOLUMES, STATUS_SNAPSHOTS, STATUS_CONNECTIONS = 10_000, 30_000, 20_000
BULK_VOLUMES = 10_000
SINGLE_VOLUMES = 1_000
#: volumes of the status dump are spread over this many backends
STATUS_BACKENDS = 2
CHUNK = 2_000

CONFIG = {"volume_group": "cinder-volumes", "target_helper": "lioadm", "target_protocol": "iscsi"}


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def profile_once(settings: _common.Settings, name: str, run: Callable[[], Any]) -> None:
    """Write a cProfile of one run of ``run`` when --profile was given."""
    if settings.profile is None:
        return
    path = settings.profile / f"{name}.pstats"
    profiler = cProfile.Profile()
    profiler.runcall(run)
    profiler.dump_stats(path)
    _common.emit(f"  (profile of {name} written to {path})")


# --- a. status dump ----------------------------------------------------------


def populate_status(store: Store, volumes: int, snapshots: int, connections: int) -> None:
    """Track ``volumes`` volumes over a few backends, then bulk-insert children.

    Volumes go through :meth:`Backend.create_volumes`; snapshots and connections,
    spread round-robin over the volumes, through :func:`repository.insert_rows`
    (tracker's own bulk insert). Volumes with a connection are set ``in-use``.
    """
    volume_ids: list[str] = []
    for index in range(STATUS_BACKENDS):
        backend = Backend(f"bench-status-{index}", store=store, driver="LVMVolumeDriver", **CONFIG)
        share = volumes // STATUS_BACKENDS + (index < volumes % STATUS_BACKENDS)
        specs = [
            VolumeSpec(
                size=10 + n % 90,
                name=f"vol-{index}-{n:05d}",
                status="available",
                serial=f"LIO-{index}-{n:08d}",
                wwn=f"naa.6001405{index:01d}{n:024x}",
                metadata={"tier": "gold" if n % 3 else "silver", "owner": f"project-{n % 17}"},
            )
            for n in range(share)
        ]
        volume_ids.extend(volume.id for volume in backend.create_volumes(specs))
    stamp = now()
    snapshot_rows = [
        {
            "id": new_id(),
            "volume_id": volume_ids[n % len(volume_ids)],
            "name": f"snap-{n:05d}",
            "size": 10,
            "status": "available",
            "created_at": stamp,
            "updated_at": stamp,
            "version": 1,
        }
        for n in range(snapshots)
    ]
    connection_rows = [
        {
            "id": new_id(),
            "volume_id": volume_ids[n % len(volume_ids)],
            "host": f"compute-{n % 64:02d}",
            "protocol": "iscsi",
            "attach_mode": "rw",
            "status": "attached",
            "connector_info": {"host": f"compute-{n % 64:02d}", "initiator": "iqn.1993-08.x"},
            "connection_info": {
                "driver_volume_type": "iscsi",
                "data": {"target_lun": n % 256, "target_portal": "192.0.2.10:3260"},
            },
            "created_at": stamp,
            "updated_at": stamp,
            "version": 1,
        }
        for n in range(connections)
    ]
    with store.write() as session:
        for resource, rows in (("snapshot", snapshot_rows), ("connection", connection_rows)):
            for start in range(0, len(rows), CHUNK):
                repository.insert_rows(session, resource, rows[start : start + CHUNK])
        session.execute(
            update(V)
            .where(V.c.id.in_(select(C.c.volume_id).where(C.c.status == "attached")))
            .values(status="in-use", version=V.c.version + 1)
        )


def raw_status_select(store: Store, *, ordered: bool = True) -> list[Sequence[Any]]:
    """The baseline: the rows ``collect`` reads, six plain Core selects, ``.all()``.

    ``ordered`` fetches them in the order a status tree needs (by parent, then
    creation), which is what "the same rows" means for a readable dump; without
    it the database may return them in any order (an information-only figure).
    """
    statements = [
        select(B.c.id, B.c.name, B.c.driver).order_by(B.c.name),
        select(
            V.c.backend_id, V.c.id, V.c.name, V.c.size, V.c.status, V.c.serial, V.c.wwn
        ).order_by(V.c.backend_id, V.c.created_at, V.c.id),
        select(S.c.volume_id, S.c.id, S.c.name, S.c.size, S.c.status).order_by(
            S.c.volume_id, S.c.created_at, S.c.id
        ),
        select(C.c.volume_id, C.c.id, C.c.host, C.c.protocol, C.c.attach_mode, C.c.status).order_by(
            C.c.volume_id, C.c.created_at, C.c.id
        ),
        # where the volumes are on hosts (empty here: no host reconciled)
        select(D.c.volume_id, D.c.host_name, D.c.hctl, D.c.block_name, D.c.state, D.c.transport)
        .where(D.c.volume_id.is_not(None))
        .order_by(D.c.volume_id, D.c.host_name, D.c.scsi_host, D.c.channel, D.c.target, D.c.lun),
        select(M.c.volume_id, M.c.host_name, M.c.name, M.c.block_name, M.c.wwid)
        .where(M.c.volume_id.is_not(None))
        .order_by(M.c.volume_id, M.c.host_name, M.c.wwid),
    ]
    with store.engine.connect() as conn:
        return [conn.execute(stmt if ordered else stmt.order_by(None)).all() for stmt in statements]


def bench_status_dump(settings: _common.Settings, dialect: str, sqlite_dir: str) -> None:
    volumes = settings.scaled(STATUS_VOLUMES)
    snapshots = settings.scaled(STATUS_SNAPSHOTS)
    connections = settings.scaled(STATUS_CONNECTIONS)
    with _common.fresh_store(dialect, sqlite_dir) as store:
        populate_status(store, volumes, snapshots, connections)
        queries: list[int] = []

        def tracked() -> int:
            with count_queries(store.engine) as log:
                text = str(report.collect(store))
            queries.append(log.count)
            return len(text)

        seconds, baseline, length = _common.interleaved(
            tracked, lambda: raw_status_select(store), settings.repeat
        )
        rows = len(raw_status_select(store)[1])
        assert rows == volumes, (rows, volumes)
        _common.emit(
            _common.figure(
                "status-dump",
                dialect,
                f"{volumes}/{snapshots}/{connections} vol/snap/conn, {max(queries)} queries, "
                f"{length // 1024} KiB rendered",
                seconds,
                baseline,
                "raw Core select",
                "goal <= 6 queries, <= 2x",
            )
        )
        collect_seconds, collect_baseline, _ = _common.interleaved(
            lambda: report.collect(store), lambda: raw_status_select(store), settings.repeat
        )
        _common.emit(
            _common.figure(
                "status-collect",
                dialect,
                "report.collect() alone, without rendering",
                collect_seconds,
                collect_baseline,
                "raw Core select",
                "information only: the goal above includes rendering",
            )
        )
        unordered_seconds, unordered_baseline, _ = _common.interleaved(
            tracked, lambda: raw_status_select(store, ordered=False), settings.repeat
        )
        _common.emit(
            _common.figure(
                "status-dump-vs-unordered",
                dialect,
                "the same dump against selects without ORDER BY",
                unordered_seconds,
                unordered_baseline,
                "raw unordered Core select",
                "information only: what sorting costs the database",
            )
        )
        profile_once(settings, f"status-dump-{dialect}", tracked)


# --- b. tracking new volumes ---------------------------------------------------


def volume_spec() -> VolumeSpec:
    return VolumeSpec(
        size=10,
        name="bulk",
        status="available",
        metadata={"tier": "gold", "owner": "project-1"},
    )


def raw_volume_rows(backend_id: str, count: int) -> list[dict[str, Any]]:
    """The rows ``create_volumes`` writes for ``volume_spec()``: same columns, same values."""
    spec = volume_spec()
    stamp = now()
    return [
        {
            "id": new_id(),
            "backend_id": backend_id,
            "name": spec.name,
            "size": spec.size,
            "status": spec.status,
            "serial": spec.serial,
            "wwn": spec.wwn,
            "metadata": dict(spec.metadata),
            "created_at": stamp,
            "updated_at": stamp,
            "version": 1,
        }
        for _ in range(count)
    ]


def empty_volumes(store: Store) -> None:
    with store.write() as session:
        session.execute(delete(V))


def bench_track_bulk(settings: _common.Settings, dialect: str, sqlite_dir: str) -> None:
    count = settings.scaled(BULK_VOLUMES)
    with _common.fresh_store(dialect, sqlite_dir) as store:
        backend = Backend("bench-bulk", store=store, driver="LVMVolumeDriver", **CONFIG)
        specs = [volume_spec()] * count
        queries: list[int] = []

        def tracked() -> int:
            with count_queries(store.engine) as log:
                created = backend.create_volumes(specs)
            queries.append(log.count)
            return len(created)

        def baseline() -> None:
            # Rows (ids, timestamps) are built inside the timing, as the
            # tracked side must build them too.
            rows = raw_volume_rows(backend.id, count)
            with store.engine.begin() as conn:
                conn.execute(insert(V), rows)

        seconds, baseline_seconds, created = _common.interleaved(
            tracked, baseline, settings.repeat, between=lambda: empty_volumes(store)
        )
        assert created == count
        _common.emit(
            _common.figure(
                "track-bulk",
                dialect,
                f"{count} volumes by create_volumes, {max(queries)} statement(s)",
                seconds,
                baseline_seconds,
                "raw Core insert executemany",
                "goal <= 3x",
            )
        )
        profile_once(settings, f"track-bulk-{dialect}", tracked)
        empty_volumes(store)


def bench_track_single(settings: _common.Settings, dialect: str, sqlite_dir: str) -> None:
    count = settings.scaled(SINGLE_VOLUMES, minimum=10)
    repeat = max(1, min(settings.repeat, 3))
    with _common.fresh_store(dialect, sqlite_dir) as store:
        backend = Backend("bench-single", store=store, driver="LVMVolumeDriver", **CONFIG)
        spec = volume_spec()
        queries: list[int] = []

        def tracked() -> None:
            with count_queries(store.engine) as log:
                for _ in range(count):
                    backend.create_volume(
                        spec.size, spec.name, status=spec.status, metadata=spec.metadata
                    )
            queries.append(log.count)

        def baseline() -> None:
            for _ in range(count):
                (row,) = raw_volume_rows(backend.id, 1)
                with store.engine.begin() as conn:
                    conn.execute(insert(V), row)

        seconds, baseline_seconds, _ = _common.interleaved(
            tracked, baseline, repeat, between=lambda: empty_volumes(store)
        )
        per_volume = seconds / count
        _common.emit(
            _common.figure(
                "track-single",
                dialect,
                f"{count} x create_volume, {max(queries) / count:g} statement(s) and "
                f"{per_volume * 1000:.2f} ms per volume",
                seconds,
                baseline_seconds,
                "raw Core one-row insert per transaction",
                "information only: the one-at-a-time path, not the bulk goal",
            )
        )
        profile_once(settings, f"track-single-{dialect}", tracked)


RUNNERS: dict[str, Callable[[_common.Settings, str, str], None]] = {
    "status-dump": bench_status_dump,
    "track-bulk": bench_track_bulk,
    "track-single": bench_track_single,
}


def main() -> int:
    settings = _common.parse_args(__doc__.splitlines()[0], BENCHMARKS)
    chosen = settings.only or BENCHMARKS
    _common.emit(
        f"# tracker benchmarks: scale {settings.scale:g}, median of {settings.repeat} "
        f"(track-single: {max(1, min(settings.repeat, 3))}), "
        f"python {sys.version.split()[0]}, {dt.date.today().isoformat()}"
    )
    with _common.scratch_dir() as sqlite_dir:
        for dialect in settings.dialects:
            reason = _common.unavailable(dialect)
            if reason is not None:
                _common.emit(f"# skipping {dialect}: {reason}")
                continue
            for name in chosen:
                RUNNERS[name](settings, dialect, sqlite_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
