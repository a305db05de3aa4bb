"""JSON dump and load of the tracked state, as an exact round trip.

A dump holds every column of every tracked row (ids, versions, timestamps to
the microsecond), nested backend -> volume -> snapshots / connections, plus
the key-value pairs when the whole store is dumped. ``load`` validates the
whole document first and writes it in one transaction: a bad or clashing dump
writes nothing.
"""

from __future__ import annotations

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
#: 2 added the volumes' ``description`` and ``bootable``
FORMAT_VERSION = 2
#: the format versions :func:`load` reads
READABLE_VERSIONS = (1, 2)

Progress = Callable[[int, int], None]

_COMMON = ("id", "created_at", "updated_at", "version")
_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "backend": ("name", "driver", "config", *_COMMON),
    "volume": (
        "name",
        "size",
        "status",
        "serial",
        "wwn",
        "metadata",
        "description",
        "bootable",
        *_COMMON,
    ),
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
    :raises tracker.exceptions.InvalidInput: ``store`` is not a Store, or
        ``backend`` is not a backend name.
    """
    validation.store("store", store)
    if backend is not None:
        backend = validation.text("backend", backend)
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
    :raises tracker.exceptions.InvalidInput: a bad argument, as :func:`dump`,
        or ``indent`` is not ``None`` or from 0 to 16.
    """
    if indent is not None:
        validation.integer("indent", indent, 0, 16)
    return json.dumps(dump(store, backend), indent=indent, sort_keys=True)


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """What :func:`load` wrote."""

    backends: int
    volumes: int
    snapshots: int
    connections: int
    key_values: int


#: Columns a dump of an older format version may lack, and the value they get.
_ADDED_IN_VERSION_2: Mapping[tuple[str, str], Any] = {
    ("volume", "description"): None,
    ("volume", "bootable"): False,
}


def _check_column(resource: str, column: str, value: Any) -> Any:
    """:returns: the value of ``column`` to insert, checked with the API's rules.

    :raises tracker.exceptions.InvalidInput: the value is not acceptable.
    """
    if column.endswith("_at"):
        return validation.timestamp(column, value)
    if column == "version":
        return validation.integer(column, value, 1, validation.MAX_INT32)
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
        return validation.identifier(column, value)
    if column == "bootable":
        return validation.boolean(column, value)
    if column == "wwn":
        return validation.optional_text(column, value, 64)
    if column in ("name", "serial", "description") and resource != "backend":
        return validation.optional_text(column, value)
    if column == "protocol":
        return validation.text(column, value, 32, allow_empty=True)
    return validation.text(column, value, allow_empty=column == "driver")


class _Reader:
    """Validates a whole dump, collecting every problem with where it is."""

    def __init__(self, format_version: int) -> None:
        self.format_version = format_version
        self.rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in _COLUMNS}
        self.problems: list[str] = []
        #: (kind, id) -> path of the record that has it, to report duplicates
        self.seen: dict[tuple[str, str], str] = {}
        #: the backend name of each volume id, to name backends in conflicts
        self.backend_of_volume: dict[str, str] = {}
        self.key_values: dict[str, str] = {}

    def problem(self, path: str, reason: str) -> None:
        if len(self.problems) < exceptions.DumpInvalid.MAX_PROBLEMS:
            self.problems.append(f"{path}: {reason}")

    def mapping(self, value: object, path: str) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.problem(path, f"expected an object, got {_kind(value)}")
            return None
        return value

    def items(self, value: object, path: str) -> Sequence[Any]:
        if not isinstance(value, list):
            self.problem(path, f"expected a list, got {_kind(value)}")
            return ()
        return value

    def record(
        self, resource: str, raw: object, path: str, **parent: str
    ) -> tuple[Mapping[str, Any] | None, dict[str, Any] | None]:
        """:returns: the raw mapping (when it is one) and the checked row (when valid)."""
        data = self.mapping(raw, path)
        if data is None:
            return None, None
        row: dict[str, Any] = dict(parent)
        valid = True
        for column in _COLUMNS[resource]:
            if column not in data:
                added = _ADDED_IN_VERSION_2.get((resource, column), _MISSING)
                if self.format_version < 2 and added is not _MISSING:
                    row[column] = added
                    continue
                self.problem(path, f"missing {column!r}")
                valid = False
                continue
            try:
                row[column] = _check_column(resource, column, data[column])
            except exceptions.InvalidInput as exc:
                self.problem(f"{path}.{column}", f"{exc.fields['shown']} ({exc.reason})")
                valid = False
        if "id" in row:
            self.unique(f"{resource} id", row["id"], f"{path}.id")
        if resource == "backend" and "name" in row:
            self.unique("backend name", row["name"], f"{path}.name")
        if not valid:
            return data, None
        self.rows[resource].append(row)
        return data, row

    def unique(self, label: str, value: str, path: str) -> None:
        first = self.seen.setdefault((label, value), path)
        if first != path:
            self.problem(path, f"{label} {value!r} appears twice (also at {first})")


_MISSING = object()


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _parse(document: object) -> _Reader:
    """Check the whole document; every problem is collected in the returned reader."""
    if not isinstance(document, Mapping):
        reader = _Reader(FORMAT_VERSION)
        reader.problem("$", f"expected an object, got {_kind(document)}")
        return reader
    version = document.get("format_version")
    reader = _Reader(version if version in READABLE_VERSIONS else FORMAT_VERSION)
    if document.get("format") != FORMAT:
        reader.problem("$.format", f"expected {FORMAT!r}, got {_short(document.get('format'))}")
        return reader
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        readable = ", ".join(str(v) for v in READABLE_VERSIONS)
        reader.problem(
            "$.format_version", f"this tracker reads versions {readable}, not {_short(version)}"
        )
        return reader
    for bi, raw_backend in enumerate(reader.items(document.get("backends"), "$.backends")):
        bpath = f"$.backends[{bi}]"
        backend_data, backend = reader.record("backend", raw_backend, bpath)
        if backend_data is None:
            continue
        backend_id = backend["id"] if backend is not None else ""
        backend_name = backend["name"] if backend is not None else str(backend_data.get("name"))
        for vi, raw_volume in enumerate(
            reader.items(backend_data.get("volumes", []), f"{bpath}.volumes")
        ):
            vpath = f"{bpath}.volumes[{vi}]"
            volume_data, volume = reader.record("volume", raw_volume, vpath, backend_id=backend_id)
            if volume_data is None:
                continue
            volume_id = volume["id"] if volume is not None else ""
            if volume is not None:
                reader.backend_of_volume[volume_id] = backend_name
            for kind in ("snapshot", "connection"):
                children = reader.items(volume_data.get(f"{kind}s", []), f"{vpath}.{kind}s")
                for ci, raw_child in enumerate(children):
                    reader.record(kind, raw_child, f"{vpath}.{kind}s[{ci}]", volume_id=volume_id)
    key_values: dict[str, str] = {}
    raw_pairs = reader.mapping(document.get("key_values", {}), "$.key_values")
    for key, value in (raw_pairs or {}).items():
        path = f"$.key_values[{_short(key)}]"
        try:
            key_values[validation.key_value_key("key", key)] = validation.key_value_value(
                "value", value
            )
        except exceptions.InvalidInput as exc:
            reader.problem(path, f"{exc.field} {exc.fields['shown']} ({exc.reason})")
    reader.key_values = key_values
    return reader


def _short(value: object) -> str:
    return exceptions.short_repr(value)


def load(
    store: Store, document: str | bytes | Mapping[str, Any], progress: Progress | None = None
) -> LoadSummary:
    """Write a dump into ``store`` in one transaction, after checking all of it.

    Every record is checked with the rules the API applies (ids, text, JSON,
    sizes, statuses), and the columns' ranges (versions, timestamps from 1970
    to 9999 in UTC); ids and backend names must be unique in the dump. Every
    problem is reported at once, and nothing is written unless there is none.
    Dumps of format versions 1 and 2 are read (version 1 has no volume
    ``description``/``bootable``: they load as ``None``/``False``).

    :param document: the dump, as JSON text or already parsed.
    :param progress: called as ``progress(done, total)`` while rows are written.
    :returns: how many records of each kind were written.
    :raises tracker.exceptions.DumpInvalid: the document has invalid records
        or values; ``problems`` lists each one with where it is.
    :raises tracker.exceptions.DumpFormatError: the document is not JSON.
    :raises tracker.exceptions.DumpConflict: records of the dump are already
        stored (same id, a backend of the same name, or a key); ``conflicts``
        lists them all; nothing is written.
    :raises tracker.exceptions.InvalidInput: ``store`` is not a Store, or
        ``progress`` is not callable.
    """
    validation.store("store", store)
    if progress is not None and not callable(progress):
        raise exceptions.InvalidInput("progress", progress, "a callable or None")
    if isinstance(document, str | bytes | bytearray):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise exceptions.DumpFormatError(f"not JSON: {exc}") from None
        except RecursionError:
            raise exceptions.DumpFormatError(
                "not JSON tracker can read: nested too deeply for the parser"
            ) from None
    elif not isinstance(document, Mapping):
        raise exceptions.InvalidInput(
            "document", document, "JSON text, or the parsed dump as a mapping"
        )
    reader = _parse(document)
    if reader.problems:
        raise exceptions.DumpInvalid(reader.problems)
    rows, key_values = reader.rows, reader.key_values
    total = sum(len(r) for r in rows.values()) + len(key_values)
    done = 0
    with store.write() as session:
        _refuse_conflicts(session, reader)
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


def _refuse_conflicts(session: Any, reader: _Reader) -> None:
    """Raise one error naming every record of the dump that the store already has.

    :raises tracker.exceptions.DumpConflict: there is at least one.
    """
    rows = reader.rows
    conflicts: list[tuple[str, str, str]] = []
    backend_names = {row["id"]: row["name"] for row in rows["backend"]}
    taken = repository.existing_ids(session, "backend", backend_names)
    for row in rows["backend"]:
        if row["id"] in taken:
            conflicts.append(
                ("backend", row["name"], f"backend {row['name']!r} already exists (same id)")
            )
        elif repository.backend_by_name(session, row["name"]) is not None:
            conflicts.append(("backend", row["name"], f"backend {row['name']!r} already exists"))
    volume_of_child = {
        row["id"]: row["volume_id"] for kind in ("snapshot", "connection") for row in rows[kind]
    }
    for resource in ("volume", "snapshot", "connection"):
        taken = repository.existing_ids(session, resource, (r["id"] for r in rows[resource]))
        for record_id in sorted(taken):
            volume_id = record_id if resource == "volume" else volume_of_child[record_id]
            where = f"backend {reader.backend_of_volume.get(volume_id, '?')!r}"
            if resource != "volume":
                where = f"volume {volume_id} of {where}"
            conflicts.append(
                (resource, record_id, f"{resource} {record_id} of {where} already exists")
            )
    for key in store_keys(session, reader.key_values):
        conflicts.append(("key-value", key, f"key-value {key!r} already exists"))
    if conflicts:
        resource, first, _ = conflicts[0]
        raise exceptions.DumpConflict(resource, first, [text for _, _, text in conflicts])


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
