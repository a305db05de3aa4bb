"""Optimistic concurrency: two writers never silently overwrite each other."""

from __future__ import annotations

import pytest

from tracker import exceptions
from tracker.db.store import Store
from tracker.resources import Backend
from tracker.testing import workers


def _url(store: Store) -> str:
    return store.url.render_as_string(hide_password=False)


@pytest.mark.slow
def test_two_processes_racing_on_one_volume(store: Store, backend: Backend) -> None:
    volume = backend.create_volume(1, "shared", status="available", metadata={"base": "x"})

    outcome = workers.race_metadata_updates(_url(store), backend.name, volume.id)

    saved = [key for key, result in outcome.items() if result == "saved"]
    conflicts = [result for result in outcome.values() if result.startswith("conflict")]
    assert len(saved) == 1, outcome
    assert len(conflicts) == 1, outcome
    assert volume.id in conflicts[0] and "refresh() it and retry" in conflicts[0]

    volume.refresh()
    winner = saved[0]
    assert volume.metadata == {"base": "x", winner: winner.split("-")[1]}
    assert volume.version == 2  # exactly one write landed


def test_a_stale_object_cannot_overwrite(store: Store, backend: Backend) -> None:
    volume = backend.create_volume(1, "v", status="available")
    # A second service, with its own registry and store, changes the volume.
    Backend.backends.clear()
    other = Backend.load(Store(store.url), backend.name).get_volume(volume.id)
    other.name = "theirs"
    other.save()

    volume.name = "mine"
    with pytest.raises(exceptions.ConflictError) as raised:
        volume.save()
    error = raised.value
    assert (error.resource, error.resource_id) == ("volume", volume.id)
    assert (error.expected_version, error.actual_version) == (1, 2)

    volume.refresh()
    assert volume.name == "theirs"  # the other write was not lost
    volume.name = "mine"
    volume.save()  # after refresh the retry succeeds
    assert volume.version == 3


def test_connection_changes_are_serialised_through_the_volume(
    store: Store, backend: Backend
) -> None:
    """Two services detaching the last two connections cannot both leave it in-use."""
    volume = backend.create_volume(1, status="available")
    first = volume.connect({"host": "a"})
    second = volume.connect({"host": "b"})

    Backend.backends.clear()
    elsewhere = Backend.load(Store(store.url), backend.name).get_volume(volume.id)
    elsewhere.connections[1].disconnect()

    with pytest.raises(exceptions.ConflictError):
        first.disconnect()
    volume.refresh()
    assert [c.id for c in volume.connections] == [first.id]
    assert volume.status == "in-use"
    first.refresh()
    first.disconnect()
    assert volume.status == "available"
    assert second.id not in [c.id for c in volume.connections]


def test_delete_of_a_stale_volume_is_a_conflict(store: Store, backend: Backend) -> None:
    volume = backend.create_volume(1, status="available")
    Backend.backends.clear()
    other = Backend.load(Store(store.url), backend.name).get_volume(volume.id)
    other.metadata["touched"] = True
    other.save()
    with pytest.raises(exceptions.ConflictError):
        volume.delete()
    other.refresh()
    assert other.metadata == {"touched": True}
