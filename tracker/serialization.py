"""JSON dump and load of the tracked state, as an exact round trip.

A dump holds every column of every tracked row (ids, versions, timestamps to
the microsecond), nested backend -> volume -> snapshots / connections, plus
the key-value pairs when the whole store is dumped. ``load`` validates the
whole document first and writes it in one transaction: a bad or clashing dump
writes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, insert, select

from tracker import exceptions, validation
from tracker.db import models, repository
from tracker.db.store import Store

FORMAT = "tracker-dump"
FORMAT_VERSION = 1

Progress = Callable[[int, int], None]

_COMMON = ("id", "created_at", "updated_at", "version")
_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "backend": ("name", "driver", "config", *_COMMON),
    "volume": ("name", "size", "status", "serial", "wwn", "metadata", *_COMMON),
    "snapshot": ("name", "size", "status", *_COMMON),
    "connection": (
        "host",
        "protocol",
        "attach_mode",
        "status",
        "connector_info",
        "connection_info",
        *_COMMON,
    ),
}


def _out(row: Row[Any], resource: str) -> dict[str, Any]:
    data = row._mapping
    result: dict[str, Any] = {}
    for column in _COLUMNS[resource]:
        value = data[column]
        result[column] = (
            value.isoformat(timespec="microseconds") if column.endswith("_at") else value
        )
    return result


def dump(store: Store, backend: str | None = None) -> dict[str, Any]:
    """Read the tracked state as JSON-ready data (five queries).

    :param backend: only this backend (by ``volume_backend_name``); the key-value
        pairs are then left out.
    :returns: the dump.
    :raises tracker.exceptions.NotFound: ``backend`` is not stored.
    """
    B, V, S, C = (
        repository.BACKENDS,
        repository.VOLUMES,
        repository.SNAPSHOTS,
        repository.CONNECTIONS,
    )
    with store.read() as session:
        backend_stmt = select(B).order_by(B.c.name)
        if backend is not None:
            backend_stmt = backend_stmt.where(B.c.name == backend)
        backends = session.execute(backend_stmt).all()
        if backend is not None and not backends:
            raise exceptions.NotFound("backend", backend)
        ids = [row.id for row in backends]
        volumes = session.execute(
            select(V).where(V.c.backend_id.in_(ids)).order_by(V.c.created_at, V.c.id)
            if backend is not None
            else select(V).order_by(V.c.created_at, V.c.id)
        ).all()
        children = {}
        for resource, table in (("snapshot", S), ("connection", C)):
            stmt = select(table).join(V, V.c.id == table.c.volume_id)
            if backend is not None:
                stmt = stmt.where(V.c.backend_id.in_(ids))
            children[resource] = session.execute(
                stmt.order_by(table.c.created_at, table.c.id)
            ).all()
        key_values = (
            {kv.key: kv.value for kv in session.execute(select(models.KeyValue)).scalars()}
            if backend is None
            else None
        )
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = {
        "snapshot": defaultdict(list),
        "connection": defaultdict(list),
    }
    for resource, rows in children.items():
        for row in rows:
            grouped[resource][row.volume_id].append(_out(row, resource))
    by_backend: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in volumes:
        volume = _out(row, "volume")
        volume["snapshots"] = grouped["snapshot"].get(row.id, [])
        volume["connections"] = grouped["connection"].get(row.id, [])
        by_backend[row.backend_id].append(volume)
    document: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "backends": [
            {**_out(row, "backend"), "volumes": by_backend.get(row.id, [])} for row in backends
        ],
    }
    if key_values is not None:
        document["key_values"] = key_values
    return document


def dumps(store: Store, backend: str | None = None, indent: int | None = 2) -> str:
    """:returns: :func:`dump` as a JSON document.

    :raises tracker.exceptions.NotFound: ``backend`` is not stored.
    """
    return json.dumps(dump(store, backend), indent=indent, sort_keys=True)


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """What :func:`load` wrote."""

    backends: int
    volumes: int
    snapshots: int
    connections: int
    key_values: int


class _Reader:
    """Validates a dump, collecting rows per table, with paths in error messages."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in _COLUMNS}

    def fail(self, path: str, reason: str) -> exceptions.DumpFormatError:
        return exceptions.DumpFormatError(f"{path}: {reason}")

    def mapping(self, value: object, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, "expected an object")
        return value

    def items(self, value: object, path: str) -> Sequence[Any]:
        if not isinstance(value, list):
            raise self.fail(path, "expected a list")
        return value

    def record(self, resource: str, raw: object, path: str, **parent: str) -> dict[str, Any]:
        data = self.mapping(raw, path)
        row: dict[str, Any] = dict(parent)
        try:
            for column in _COLUMNS[resource]:
                if column not in data:
                    raise self.fail(path, f"missing {column!r}")
                row[column] = self.column(resource, column, data[column])
        except exceptions.InvalidInput as exc:
            raise self.fail(path, str(exc)) from None
        self.rows[resource].append(row)
        return row

    def column(self, resource: str, column: str, value: Any) -> Any:
        if column.endswith("_at"):
            try:
                parsed = dt.datetime.fromisoformat(value)
            except (TypeError, ValueError):
                raise exceptions.InvalidInput(column, value, "an ISO 8601 timestamp") from None
            if parsed.tzinfo is None:
                raise exceptions.InvalidInput(column, value, "a timestamp with a time zone")
            return parsed
        if column == "version":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise exceptions.InvalidInput(column, value, "a positive integer")
            return value
        if column in ("config", "metadata", "connector_info", "connection_info"):
            return validation.json_document(column, value)
        if column == "size":
            return validation.size_gib(column, value)
        if column == "status":
            allowed = {
                "volume": models.VOLUME_STATUSES,
                "snapshot": models.SNAPSHOT_STATUSES,
                "connection": models.CONNECTION_STATUSES,
            }[resource]
            return validation.choice(column, value, allowed)
        if column == "attach_mode":
            return validation.choice(column, value, models.ATTACH_MODES)
        if column == "id":
            return validation.text(column, value, 36)
        if column in ("name", "serial", "wwn") and resource != "backend":
            return validation.optional_text(column, value, 64 if column == "wwn" else 255)
        return validation.text(column, value, 255, allow_empty=column != "name")


def _parse(document: object) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    reader = _Reader()
    root = reader.mapping(document, "$")
    if root.get("format") != FORMAT:
        raise reader.fail("$.format", f"expected {FORMAT!r}")
    if root.get("format_version") != FORMAT_VERSION:
        raise reader.fail(
            "$.format_version",
            f"this tracker reads version {FORMAT_VERSION}, not {root.get('format_version')!r}",
        )
    for bi, raw_backend in enumerate(reader.items(root.get("backends"), "$.backends")):
        bpath = f"$.backends[{bi}]"
        backend = reader.record("backend", raw_backend, bpath)
        volumes = reader.items(reader.mapping(raw_backend, bpath).get("volumes", []), bpath)
        for vi, raw_volume in enumerate(volumes):
            vpath = f"{bpath}.volumes[{vi}]"
            volume = reader.record("volume", raw_volume, vpath, backend_id=backend["id"])
            mapping = reader.mapping(raw_volume, vpath)
            for kind in ("snapshot", "connection"):
                children = reader.items(mapping.get(f"{kind}s", []), f"{vpath}.{kind}s")
                for ci, raw_child in enumerate(children):
                    reader.record(kind, raw_child, f"{vpath}.{kind}s[{ci}]", volume_id=volume["id"])
    key_values = reader.mapping(root.get("key_values", {}), "$.key_values")
    for key, value in key_values.items():
        if not isinstance(value, str):
            raise reader.fail(f"$.key_values.{key}", "expected a string")
    for kind, rows in reader.rows.items():
        ids = [row["id"] for row in rows]
        if len(set(ids)) != len(ids):
            raise reader.fail("$", f"a {kind} id appears twice")
    return reader.rows, dict(key_values)


def load(
    store: Store, document: str | bytes | Mapping[str, Any], progress: Progress | None = None
) -> LoadSummary:
    """Write a dump into ``store`` in one transaction.

    :param document: the dump, as JSON text or already parsed.
    :param progress: called as ``progress(done, total)`` while rows are written.
    :returns: how many records of each kind were written.
    :raises tracker.exceptions.DumpFormatError: the document is not a valid dump.
    :raises tracker.exceptions.AlreadyExists: a record of the dump is already
        stored (same id, or a backend of the same name); nothing is written.
    """
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise exceptions.DumpFormatError(f"not JSON: {exc}") from None
    rows, key_values = _parse(document)
    total = sum(len(r) for r in rows.values()) + len(key_values)
    done = 0
    with store.write() as session:
        for resource in ("backend", "volume", "snapshot", "connection"):
            taken = repository.existing_ids(session, resource, (r["id"] for r in rows[resource]))
            if taken:
                raise exceptions.AlreadyExists(resource, sorted(taken)[0])
        names = [r["name"] for r in rows["backend"]]
        for name in names:
            if repository.backend_by_name(session, name) is not None:
                raise exceptions.AlreadyExists("backend", name)
        existing_keys = store_keys(session, key_values)
        if existing_keys:
            raise exceptions.AlreadyExists("key-value", existing_keys[0])
        for resource in ("backend", "volume", "snapshot", "connection"):
            for chunk in _chunks(rows[resource], 1000):
                repository.insert_rows(session, resource, chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
        if key_values:
            session.execute(
                insert(models.KeyValue), [{"key": k, "value": v} for k, v in key_values.items()]
            )
            done += len(key_values)
            if progress is not None:
                progress(done, total)
    return LoadSummary(
        backends=len(rows["backend"]),
        volumes=len(rows["volume"]),
        snapshots=len(rows["snapshot"]),
        connections=len(rows["connection"]),
        key_values=len(key_values),
    )


def store_keys(session: Any, key_values: Mapping[str, str]) -> list[str]:
    """:returns: which keys of ``key_values`` are already stored, sorted."""
    if not key_values:
        return []
    found = session.execute(
        select(models.KeyValue.key).where(models.KeyValue.key.in_(list(key_values)))
    ).scalars()
    return sorted(found)


def _chunks(rows: Sequence[dict[str, Any]], size: int) -> Iterable[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
