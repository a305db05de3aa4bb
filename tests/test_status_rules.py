"""Status rules as in cinderlib, delete refusals, and bad input that loses nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tracker import exceptions
from tracker.db.store import Store
from tracker.resources import Backend, VolumeSpec
from tracker.serialization import dump


def test_volume_life_cycle(backend: Backend) -> None:
    volume = backend.create_volume(1, "v")
    assert volume.status == "creating"
    volume.status = "available"
    volume.save()
    first = volume.connect({"host": "a"}, protocol="fc")
    assert volume.status == "in-use"
    second = volume.connect({"host": "b"}, protocol="fc")
    first.disconnect()
    assert volume.status == "in-use"  # one attachment is left
    second.disconnect()
    assert volume.status == "available"
    volume.status = "deleting"
    volume.save()
    volume.delete()
    assert volume.status == "deleted"
    with pytest.raises(exceptions.NotFound):
        volume.refresh()


def test_status_follows_connection_status(backend: Backend) -> None:
    volume = backend.create_volume(1, status="available")
    connection = volume.connect({"host": "a"}, status="attaching")
    assert volume.status == "available"
    connection.status = "attached"
    connection.save()
    assert volume.status == "in-use"
    volume.refresh()
    assert volume.status == "in-use"
    connection.status = "error"
    connection.save()
    assert volume.status == "available"


@pytest.mark.parametrize(
    ("start", "target"),
    [
        ("creating", "in-use"),
        ("available", "in-use"),
        ("available", "creating"),
        ("available", "deleted"),
        ("deleting", "available"),
    ],
)
def test_forbidden_volume_transitions(backend: Backend, start: str, target: str) -> None:
    volume = backend.create_volume(1, "v", status="creating")
    if start != "creating":
        for step in {"available": ["available"], "deleting": ["available", "deleting"]}[start]:
            volume.status = step
            volume.save()
    version = volume.version
    volume.status = target
    with pytest.raises(exceptions.InvalidStatusTransition) as raised:
        volume.save()
    assert (raised.value.current, raised.value.requested) == (start, target)
    volume.refresh()  # nothing was written
    assert (volume.status, volume.version) == (start, version)


def test_in_use_cannot_be_left_by_hand(backend: Backend) -> None:
    volume = backend.create_volume(1, status="available")
    volume.connect({"host": "a"})
    volume.status = "available"
    with pytest.raises(exceptions.InvalidStatusTransition):
        volume.save()


@pytest.mark.parametrize("status", ["creating", "error", "deleting"])
def test_snapshot_and_connect_need_a_usable_volume(backend: Backend, status: str) -> None:
    volume = backend.create_volume(1, status="available" if status == "deleting" else status)
    if status == "deleting":
        volume.status = "deleting"
        volume.save()
    with pytest.raises(exceptions.InvalidState):
        volume.create_snapshot()
    with pytest.raises(exceptions.InvalidState):
        volume.connect({"host": "a"})
    volume.refresh()
    assert volume.snapshots == () and volume.connections == ()


def test_delete_with_snapshots_or_connections_is_refused(store: Store, backend: Backend) -> None:
    volume = backend.create_volume(1, "v", status="available")
    snapshot = volume.create_snapshot("s")
    connection = volume.connect({"host": "a"})
    before = dump(store)
    with pytest.raises(exceptions.DeleteRefused) as raised:
        volume.delete()
    assert raised.value.resource_id == volume.id
    assert raised.value.dependents == ("1 snapshot", "1 connection (attached)")
    assert dump(store) == before
    connection.disconnect()
    with pytest.raises(exceptions.DeleteRefused, match="1 snapshot"):
        volume.delete()
    snapshot.delete()
    volume.delete()
    assert backend.volumes == ()


def test_the_database_itself_refuses_orphans(store: Store, backend: Backend) -> None:
    """Even bypassing the API, foreign keys keep snapshots from losing their volume."""
    from sqlalchemy import delete
    from sqlalchemy.exc import IntegrityError

    from tracker.db import models

    volume = backend.create_volume(1, status="available")
    volume.create_snapshot()
    with pytest.raises(IntegrityError), store.write() as session:
        session.execute(delete(models.Volume).where(models.Volume.id == volume.id))
    assert backend.get_volume(volume.id).snapshots


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"size": 0}, "size"),
        ({"size": -1}, "size"),
        ({"size": 1.5}, "size"),
        ({"size": True}, "size"),
        ({"size": 2**31}, "size"),
        ({"size": 1, "status": "in-use"}, "status"),
        ({"size": 1, "status": "bogus"}, "status"),
        ({"size": 1, "name": "n" * 256}, "name"),
        ({"size": 1, "metadata": {"k": {1, 2}}}, "metadata"),
        ({"size": 1, "metadata": ["not", "a", "mapping"]}, "metadata"),
    ],
)
def test_bad_volume_input_is_typed_and_writes_nothing(
    store: Store, backend: Backend, kwargs: dict[str, Any], field: str
) -> None:
    backend.create_volume(1, "existing")
    before = dump(store)
    with pytest.raises(exceptions.InvalidInput) as raised:
        backend.create_volume(**kwargs)
    assert raised.value.field == field
    assert dump(store) == before


def test_a_bad_spec_in_a_batch_writes_none_of_it(store: Store, backend: Backend) -> None:
    before = dump(store)
    with pytest.raises(exceptions.InvalidInput):
        backend.create_volumes([VolumeSpec(1), VolumeSpec(2), VolumeSpec(0)])
    assert dump(store) == before
    assert backend.volumes == ()


def test_bad_assignments_raise_at_once(backend: Backend) -> None:
    volume = backend.create_volume(1, "v")
    with pytest.raises(exceptions.InvalidInput):
        volume.size = 0
    with pytest.raises(exceptions.InvalidInput):
        volume.status = "in_use"
    with pytest.raises(exceptions.InvalidInput):
        volume.metadata = {"when": object()}
    assert (volume.size, volume.status, volume.metadata) == (1, "creating", {})
    assert not volume.is_dirty()


def test_duplicate_ids_are_already_exists(store: Store, backend: Backend) -> None:
    volume = backend.create_volume(1, "v", status="available")
    before = dump(store)
    with pytest.raises(exceptions.AlreadyExists) as raised:
        backend.create_volume(1, "again", volume_id=volume.id)
    assert raised.value.resource_id == volume.id
    snapshot = volume.create_snapshot()
    with pytest.raises(exceptions.AlreadyExists):
        volume.create_snapshot(snapshot_id=snapshot.id)
    assert len(dump(store)["backends"][0]["volumes"]) == len(before["backends"][0]["volumes"])


def test_unknown_ids_are_not_found(backend: Backend) -> None:
    with pytest.raises(exceptions.NotFound) as raised:
        backend.get_volume("00000000-0000-0000-0000-000000000000")
    assert raised.value.resource == "volume"


def test_metadata_mutated_in_place_is_saved(store: Store, backend: Backend) -> None:
    volume = backend.create_volume(1, metadata={"tags": ["a"]})
    volume.metadata["tags"].append("b")
    volume.metadata["owner"] = "ops"
    assert volume.is_dirty()
    volume.save()
    assert not volume.is_dirty()
    Backend.backends.clear()
    again = Backend.load(Store(store.url), backend.name).get_volume(volume.id)
    assert again.metadata == {"tags": ["a", "b"], "owner": "ops"}


def test_timestamps_keep_sub_second_precision(store: Store, backend: Backend) -> None:
    volume = backend.create_volume(1)
    volume.refresh()
    stored = volume.created_at
    Backend.backends.clear()
    again = Backend.load(Store(store.url), backend.name).get_volume(volume.id)
    assert again.created_at == stored
    assert again.created_at.tzinfo is not None
    assert again.created_at.microsecond == volume.created_at.microsecond


def test_saving_nothing_writes_nothing(store: Store, backend: Backend) -> None:
    from tracker.testing.queries import count_queries

    volume = backend.create_volume(1)
    with count_queries(store.engine) as log:
        volume.save()
    assert log.count == 0
