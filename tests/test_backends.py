"""The backend registry and backend persistence."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tracker import exceptions
from tracker.db.store import Store
from tracker.resources import Backend
from tracker.serialization import dump


def test_same_name_store_and_config_is_the_same_instance(store: Store) -> None:
    first = Backend("ceph", store=store, driver="RBDDriver", pool="volumes")
    again = Backend("ceph", store=store, driver="RBDDriver", pool="volumes")
    assert again is first
    assert Backend.backends == {"ceph": first}


@pytest.mark.parametrize(
    "change",
    [
        {"driver": "RBDDriver", "pool": "other"},
        {"driver": "OtherDriver", "pool": "volumes"},
        {"driver": "RBDDriver"},
    ],
)
def test_same_name_other_config_is_refused(store: Store, change: dict[str, str]) -> None:
    first = Backend("ceph", store=store, driver="RBDDriver", pool="volumes")
    with pytest.raises(exceptions.BackendConflict) as raised:
        Backend("ceph", store=store, **change)
    assert raised.value.name == "ceph"
    assert Backend.backends["ceph"] is first
    assert first.config == {"pool": "volumes"}


def test_same_name_other_store_is_refused(store: Store, reopen: Callable[[], Store]) -> None:
    Backend("ceph", store=store, driver="RBDDriver")
    other_store = Store(store.url)
    with pytest.raises(exceptions.BackendConflict):
        Backend("ceph", store=other_store, driver="RBDDriver")


def test_backends_are_persisted_and_adopted_after_a_restart(
    store: Store, reopen: Callable[[], Store]
) -> None:
    first = Backend("ceph", store=store, driver="RBDDriver", pool="volumes")
    volume = first.create_volume(3, "kept", status="available")

    reopened = reopen()
    adopted = Backend("ceph", store=reopened, driver="RBDDriver", pool="volumes")
    assert adopted is not first
    assert adopted.id == first.id
    assert [(v.id, v.name, v.size) for v in adopted.volumes] == [(volume.id, "kept", 3)]


def test_a_restart_with_new_config_updates_the_stored_config(
    store: Store, reopen: Callable[[], Store]
) -> None:
    first = Backend("ceph", store=store, driver="RBDDriver", pool="volumes")
    reopened = reopen()
    updated = Backend("ceph", store=reopened, driver="RBDDriver", pool="fast")
    assert updated.id == first.id
    assert updated.config == {"pool": "fast"}
    assert updated.version == first.version + 1
    Backend.backends.clear()
    assert Backend.load(Store(store.url), "ceph").config == {"pool": "fast"}


def test_load_all_and_load_unknown(store: Store, reopen: Callable[[], Store]) -> None:
    Backend("a", store=store)
    Backend("b", store=store, driver="x", opt=1)
    reopened = reopen()
    assert [b.name for b in Backend.load_all(reopened)] == ["a", "b"]
    assert Backend.load(reopened, "b").config == {"opt": 1}
    with pytest.raises(exceptions.NotFound):
        Backend.load(reopened, "missing")


@pytest.mark.parametrize(
    "config",
    [
        {"password": object()},
        {"ratio": float("nan")},
        {"nested": {1: "non-string key"}},
        {"raw": b"bytes"},
    ],
    ids=["object", "nan", "int-key", "bytes"],
)
def test_malformed_config_is_a_config_error_and_stores_nothing(
    store: Store, config: dict[str, object]
) -> None:
    Backend("kept", store=store, driver="d", size=1)
    before = dump(store)
    with pytest.raises(exceptions.ConfigError) as raised:
        Backend("bad", store=store, **config)
    assert "bad" in raised.value.what
    assert "bad" not in Backend.backends
    assert dump(store) == before


@pytest.mark.parametrize("name", ["", "x" * 256, None, 42])
def test_bad_backend_names_are_refused(store: Store, name: object) -> None:
    with pytest.raises(exceptions.InvalidInput) as raised:
        Backend(name, store=store)  # type: ignore[arg-type]
    assert raised.value.field == "volume_backend_name"
    assert Backend.backends == {}


def test_config_tuples_are_normalised_so_the_same_config_matches(store: Store) -> None:
    first = Backend("ceph", store=store, monitors=("a", "b"))
    assert first.config == {"monitors": ["a", "b"]}
    assert Backend("ceph", store=store, monitors=["a", "b"]) is first
