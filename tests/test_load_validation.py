"""``tracker.load``: the whole document is checked first, every problem reported, nothing written.

Each test loads into the ``store`` fixture (SQLite, PostgreSQL, MariaDB) and
checks that the store's dump is unchanged by a refused load.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest

from tracker import exceptions, serialization
from tracker.db.store import Store
from tracker.resources import Backend
from tracker.serialization import dump, dumps, load

T0 = "2026-01-02T03:04:05.000006+00:00"
T1 = "2026-01-02T03:04:06.000007+00:00"


def _id(kind: str, n: int) -> str:
    prefix = {"backend": "b", "volume": "a", "snapshot": "5", "connection": "c"}[kind]
    return f"{prefix * 8}-0000-4000-8000-{n:012d}"


def _common(kind: str, n: int) -> dict[str, Any]:
    return {"id": _id(kind, n), "created_at": T0, "updated_at": T1, "version": 3}


def _volume(n: int, backend: int) -> dict[str, Any]:
    return {
        **_common("volume", n),
        "name": f"vol-{n}",
        "size": n + 1,
        "status": "in-use",
        "serial": f"SER{n}",
        "wwn": None,
        "metadata": {"n": n, "deep": {"list": [1.5, None, "x"]}},
        "description": f"volume {n} of backend {backend}",
        "bootable": n % 2 == 0,
        "snapshots": [{**_common("snapshot", n), "name": "snap", "size": 1, "status": "available"}],
        "connections": [
            {
                **_common("connection", n),
                "host": "node-1",
                "protocol": "iscsi",
                "attach_mode": "rw",
                "status": "attached",
                "connector_info": {"host": "node-1"},
                "connection_info": {"driver_volume_type": "iscsi"},
            }
        ],
    }


def _document(backends: int = 2) -> dict[str, Any]:
    """A valid dump with ``backends`` backends of two volumes each."""
    return {
        "format": serialization.FORMAT,
        "format_version": serialization.FORMAT_VERSION,
        "backends": [
            {
                **_common("backend", b),
                "name": f"backend-{b}",
                "driver": "LVMVolumeDriver",
                "config": {"volume_group": f"vg-{b}"},
                "volumes": [_volume(2 * b + i, b) for i in range(2)],
            }
            for b in range(backends)
        ],
        "key_values": {"k": "v"},
    }


@pytest.fixture
def unchanged(store: Store) -> Iterator[None]:
    Backend("kept", store=store, driver="d").create_volume(1, "kept", volume_id=_id("volume", 99))
    store.set_key_value("kept", "1")
    before = dumps(store)
    yield
    assert dumps(store) == before


def _problems(store: Store, document: Any) -> tuple[str, ...]:
    with pytest.raises(exceptions.DumpInvalid) as raised:
        load(store, document)
    assert isinstance(raised.value, exceptions.DumpFormatError)
    return raised.value.problems


def test_a_valid_document_round_trips_exactly(store: Store) -> None:
    document = _document()
    summary = load(store, json.dumps(document))
    assert (summary.backends, summary.volumes, summary.snapshots, summary.connections) == (
        2,
        4,
        4,
        4,
    )
    assert dump(store) == document
    Backend.backends.clear()
    volume = Backend.load(store, "backend-1").volumes[0]
    assert (volume.description, volume.bootable) == ("volume 2 of backend 1", True)


@pytest.mark.usefixtures("unchanged")
def test_every_problem_is_reported_with_where_it_is(store: Store) -> None:
    document = _document(3)
    backends = document["backends"]
    backends[2]["name"] = "backend-0"  # duplicate name
    backends[0]["volumes"][1]["created_at"] = "0001-01-01T00:00:00+14:00"  # before year 1 in UTC
    backends[1]["version"] = 2**40  # beyond the Integer column
    backends[1]["volumes"][0]["snapshots"][0]["id"] = backends[0]["volumes"][0]["snapshots"][0][
        "id"
    ]
    backends[2]["volumes"][0]["name"] = "nul\x00here"
    document["key_values"] = {"k" * 300: "v"}
    problems = _problems(store, document)
    assert [p.split(": ")[0] for p in problems[:5]] == [
        "$.backends[0].volumes[1].created_at",
        "$.backends[1].version",
        "$.backends[1].volumes[0].snapshots[0].id",
        "$.backends[2].name",
        "$.backends[2].volumes[0].name",
    ]
    assert problems[5].startswith("$.key_values['kkkkkkkkkk")
    assert len(problems) == 6
    assert "1970-01-01 to 9999-12-31" in problems[0]
    assert "between 1 and 2147483647" in problems[1]
    assert "appears twice (also at $.backends[0].volumes[0].snapshots[0].id)" in problems[2]
    assert "backend name 'backend-0' appears twice (also at $.backends[0].name)" in problems[3]
    assert "NUL" in problems[4]
    assert "at most 255 characters" in problems[5]


@pytest.mark.parametrize(
    ("where", "value", "reason"),
    [
        ("created_at", "9999-12-31T23:00:00-02:00", "1970-01-01 to 9999-12-31"),
        ("updated_at", "1969-12-31T23:59:59+00:00", "1970-01-01 to 9999-12-31"),
        ("version", 0, "between 1 and"),
        ("version", True, "a whole number"),
        ("id", 4242, "an id is a string of 1 to 36"),
        ("id", "x" * 37, "an id is a string of 1 to 36"),
        ("size", 2**31, "between 1 and"),
        ("metadata", {"x": math.nan}, "JSON cannot hold"),
        ("bootable", "yes", "True or False"),
        ("description", "d" * 256, "at most 255"),
        ("serial", "x\ud800", "lone surrogate"),
    ],
)
@pytest.mark.usefixtures("unchanged")
def test_each_column_is_checked_like_the_api(
    store: Store, where: str, value: Any, reason: str
) -> None:
    document = _document(1)
    document["backends"][0]["volumes"][1][where] = value
    problems = _problems(store, document)
    assert len(problems) == 1
    assert problems[0].startswith(f"$.backends[0].volumes[1].{where}: ")
    assert reason in problems[0]


@pytest.mark.usefixtures("unchanged")
def test_a_cyclic_or_deep_parsed_document_is_refused_without_recursion(store: Store) -> None:
    document = _document(1)
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    document["backends"][0]["config"] = cyclic
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    document["backends"][0]["volumes"][0]["connections"][0]["connection_info"] = {"d": deep}
    problems = _problems(store, document)
    assert "contains itself" in problems[0]
    assert "nested deeper than" in problems[1]


@pytest.mark.usefixtures("unchanged")
def test_a_very_deep_json_text_is_a_typed_error(store: Store) -> None:
    text = "[" * 100_000 + "]" * 100_000
    with pytest.raises(exceptions.DumpFormatError, match="nested too deeply"):
        load(store, text)


@pytest.mark.usefixtures("unchanged")
def test_many_problems_are_all_kept_and_the_message_stays_short(store: Store) -> None:
    document = _document(1)
    volumes = document["backends"][0]["volumes"]
    volumes.extend(copy.deepcopy(volumes[0]) for _ in range(30))
    for index, volume in enumerate(volumes):
        volume.update(id=f"id-{index}", size=0, snapshots=[], connections=[])
    with pytest.raises(exceptions.DumpInvalid) as raised:
        load(store, document)
    assert len(raised.value.problems) == 32
    assert str(raised.value).endswith("; and 12 more problems")
    assert "\n" not in str(raised.value)


def test_version_1_dumps_load_with_the_new_columns_defaulted(store: Store) -> None:
    document = _document(1)
    document["format_version"] = 1
    for volume in document["backends"][0]["volumes"]:
        del volume["description"], volume["bootable"]
    load(store, document)
    loaded = dump(store)["backends"][0]["volumes"]
    assert [(v["description"], v["bootable"]) for v in loaded] == [(None, False), (None, False)]


@pytest.mark.usefixtures("unchanged")
def test_version_2_dumps_must_have_the_new_columns(store: Store) -> None:
    document = _document(1)
    del document["backends"][0]["volumes"][0]["bootable"]
    assert _problems(store, document) == ("$.backends[0].volumes[0]: missing 'bootable'",)


@pytest.mark.parametrize("version", [2**40, 3, 0, "2", True, None])
@pytest.mark.usefixtures("unchanged")
def test_unknown_format_versions_are_refused(store: Store, version: Any) -> None:
    document = _document(1)
    document["format_version"] = version
    problems = _problems(store, document)
    assert len(problems) == 1
    assert problems[0].startswith("$.format_version: this tracker reads versions 1, 2, not ")


def test_conflicts_name_every_clash_and_backends_by_name(store: Store) -> None:
    document = _document(2)
    load(store, document)
    before = dumps(store)
    again = _document(3)
    again["backends"][0]["id"] = _id("backend", 7)  # same name, new id: clashes by name
    again["key_values"]["new"] = "x"
    with pytest.raises(exceptions.DumpConflict) as raised:
        load(store, again)
    assert isinstance(raised.value, exceptions.AlreadyExists)
    conflicts = raised.value.conflicts
    assert conflicts[:2] == (
        "backend 'backend-0' already exists",
        "backend 'backend-1' already exists (same id)",
    )
    volume = _id("volume", 0)
    assert f"volume {volume} of backend 'backend-0' already exists" in conflicts
    snapshot = _id("snapshot", 2)
    assert (
        f"snapshot {snapshot} of volume {_id('volume', 2)} of backend 'backend-1' already exists"
        in conflicts
    )
    assert conflicts[-1] == "key-value 'k' already exists"
    assert len(conflicts) == 2 + 4 * 3 + 1
    assert "backend-2" not in str(raised.value)
    assert dumps(store) == before
