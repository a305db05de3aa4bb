"""JSON dump/load round trips and the constant-query status tree."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tracker import exceptions
from tracker.db.store import Store
from tracker.report import collect, status
from tracker.resources import Backend, VolumeSpec
from tracker.serialization import dump, dumps, load
from tracker.testing.databases import ThrowawayDatabase
from tracker.testing.queries import count_queries


def _track(store: Store, volumes: int = 3) -> Backend:
    lvm = Backend("lvm", store=store, driver="LVM", vg="cinder", ratio=1.5, tags=["a", "b"])
    Backend("empty", store=store)
    for i in range(volumes):
        volume = lvm.create_volume(
            i + 1,
            f"vol-{i}",
            status="available",
            serial=f"SER{i}",
            wwn=f"naa.60000000000000{i:02d}",
            metadata={"i": i, "nested": {"list": [1, None, "x"]}},
        )
        for j in range(i):
            volume.create_snapshot(f"snap-{i}-{j}")
        if i % 2:
            volume.connect(
                {"host": f"node-{i}", "initiator": "iqn.1993-08.org.debian:01:x"},
                connection_info={"driver_volume_type": "iscsi", "data": {"target_lun": i}},
                protocol="iscsi",
                attach_mode="ro",
            )
    store.set_key_value("k1", "v1")
    return lvm


def test_dump_load_dump_is_exact(store: Store, fresh_database: ThrowawayDatabase) -> None:
    _track(store)
    first = dumps(store)
    target = Store(fresh_database.url, auto_upgrade="always")
    summary = load(target, first)
    assert (summary.backends, summary.volumes, summary.snapshots, summary.connections) == (
        2,
        3,
        3,
        1,
    )
    assert summary.key_values == 1
    assert dumps(target) == first
    Backend.backends.clear()
    reloaded = Backend.load(target, "lvm")
    assert reloaded.config == {"vg": "cinder", "ratio": 1.5, "tags": ["a", "b"]}
    vol = reloaded.volumes[2]
    assert (vol.name, vol.metadata["nested"], len(vol.snapshots)) == (
        "vol-2",
        {"list": [1, None, "x"]},
        2,
    )


def test_dump_of_one_backend(store: Store) -> None:
    _track(store)
    data = dump(store, backend="lvm")
    assert [b["name"] for b in data["backends"]] == ["lvm"]
    assert "key_values" not in data
    with pytest.raises(exceptions.NotFound):
        dump(store, backend="nope")


def test_loading_twice_clashes_and_writes_nothing(store: Store) -> None:
    _track(store)
    text = dumps(store)
    with pytest.raises(exceptions.AlreadyExists):
        load(store, text)
    assert dumps(store) == text


def _corrupt(data: dict[str, Any], how: str) -> Any:
    lvm = next(b for b in data["backends"] if b["name"] == "lvm")
    volume = lvm["volumes"][0]
    if how == "size":
        volume["size"] = 0
    elif how == "status":
        volume["status"] = "exploded"
    elif how == "timestamp":
        volume["created_at"] = "yesterday"
    elif how == "naive-timestamp":
        volume["created_at"] = "2026-01-01T00:00:00"
    elif how == "missing":
        del volume["version"]
    elif how == "format":
        data["format"] = "cinderlib"
    elif how == "duplicate":
        lvm["volumes"].append(volume)
    elif how == "metadata":
        volume["metadata"] = [1, 2]
    return data


@pytest.mark.parametrize(
    "how",
    [
        "size",
        "status",
        "timestamp",
        "naive-timestamp",
        "missing",
        "format",
        "duplicate",
        "metadata",
    ],
)
def test_bad_dumps_are_refused_whole(
    store: Store, fresh_database: ThrowawayDatabase, how: str
) -> None:
    _track(store)
    bad = _corrupt(json.loads(dumps(store)), how)
    target = Store(fresh_database.url, auto_upgrade="always")
    with pytest.raises(exceptions.DumpFormatError) as raised:
        load(target, bad)
    assert "$" in raised.value.reason
    assert dump(target)["backends"] == []


def test_not_json_is_a_dump_format_error(store: Store) -> None:
    with pytest.raises(exceptions.DumpFormatError, match="not JSON"):
        load(store, "{truncated")


def test_load_reports_progress(store: Store, fresh_database: ThrowawayDatabase) -> None:
    _track(store)
    seen: list[tuple[int, int]] = []
    load(
        Store(fresh_database.url, auto_upgrade="always"),
        dump(store),
        progress=lambda d, t: seen.append((d, t)),
    )
    assert seen[-1][0] == seen[-1][1] == 2 + 3 + 3 + 1 + 1
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_status_tree_is_six_queries_whatever_the_size(store: Store) -> None:
    # four for the tracked tree, two for where volumes are on hosts
    # (tests/test_status_context.py counts them with hosts reconciled)
    lvm = _track(store, volumes=2)
    with count_queries(store.engine) as log:
        small = collect(store)
    assert log.count == 6
    lvm.create_volumes([VolumeSpec(1, f"bulk-{i}") for i in range(200)])
    with count_queries(store.engine) as log:
        large = collect(store)
    assert log.count == 6
    assert (
        sum(len(b.volumes) for b in large.backends)
        == sum(len(b.volumes) for b in small.backends) + 200
    )


def test_status_tree_shows_what_is_tracked(store: Store) -> None:
    lvm = _track(store, volumes=2)
    volume = lvm.volumes[1]
    rendered = str(lvm)
    lines = rendered.splitlines()
    assert lines[0] == "Backend lvm (LVM): 2 volumes"
    assert f"Volume {volume.id} vol-1 2GiB [in-use] serial=SER1" in rendered
    assert f"Snapshot {volume.snapshots[0].id} snap-1-0 2GiB [creating]" in rendered
    assert f"Connection {volume.connections[0].id} iscsi -> node-1 (ro) [attached]" in rendered
    assert "empty" not in rendered  # print(backend) is that backend only

    everything = status(store)
    assert [b.name for b in everything.backends] == ["empty", "lvm"]
    as_json = json.loads(everything.to_json())
    lvm_json = as_json["backends"][1]
    assert lvm_json["volumes"][1]["connections"][0]["host"] == "node-1"
    assert [v["status"] for v in lvm_json["volumes"]] == ["available", "in-use"]


def test_status_without_arguments_covers_registered_backends(store: Store) -> None:
    _track(store, volumes=1)
    Backend.backends.pop("empty")
    report = status()
    assert [b.name for b in report.backends] == ["lvm"]
    assert repr(report) == str(report)
