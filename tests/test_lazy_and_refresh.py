"""Lazy properties, their caches, refresh() and local_attach (on every database)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tracker import exceptions
from tracker.db.store import Store
from tracker.resources import Backend, Volume
from tracker.testing import workers
from tracker.testing.queries import count_queries


def _url(store: Store) -> str:
    return store.url.render_as_string(hide_password=False)


def _populated(backend: Backend) -> Volume:
    volume = backend.create_volume(2, "data", status="available")
    volume.create_snapshot("s1", status="available")
    volume.create_snapshot("s2")
    volume.connect({"host": "node-1"}, protocol="iscsi")
    return volume


def test_each_lazy_property_loads_once(
    store: Store, backend: Backend, reopen: Callable[[], Store]
) -> None:
    _populated(backend)
    reopened = reopen()
    lvm = Backend.load(reopened, "lvm-1")
    with count_queries(reopened.engine) as log:
        volumes = lvm.volumes
        first = log.count
        assert lvm.volumes == volumes
        assert log.count == first == 1
        volume = volumes[0]
        assert [s.name for s in volume.snapshots] == ["s1", "s2"]
        assert [c.host for c in volume.connections] == ["node-1"]
        assert log.count == 3
        # second access: served from the cache
        volume.snapshots, volume.connections, lvm.volumes  # noqa: B018
        snapshot = volume.snapshots[0]
        assert snapshot.volume is volume  # the parent is known without a query
        assert log.count == 3


def test_child_volume_is_lazy_and_shared(
    store: Store, backend: Backend, reopen: Callable[[], Store]
) -> None:
    _populated(backend)
    reopened = reopen()
    lvm = Backend.load(reopened, "lvm-1")
    volume = lvm.volumes[0]
    connection = volume.connections[0]
    lvm2 = Backend.load(reopened, "lvm-1")
    assert lvm2 is lvm
    with count_queries(reopened.engine) as log:
        assert connection.volume is volume  # identity map: one object per record
        assert log.count == 0


def test_create_and_delete_keep_loaded_caches_right(store: Store, backend: Backend) -> None:
    first = backend.create_volume(1, "first", status="available")
    assert [v.id for v in backend.volumes] == [first.id]
    with count_queries(store.engine) as log:
        second = backend.create_volume(1, "second", status="available")
        snapshot = second.create_snapshot("snap")
        connection = second.connect({"host": "h"})
        reads = [s for s in log.statements if s.lstrip().upper().startswith("SELECT")]
    assert [v.id for v in backend.volumes] == [first.id, second.id]
    assert [s.id for s in second.snapshots] == [snapshot.id]
    assert [c.id for c in second.connections] == [connection.id]
    assert not any("FROM snapshots" in s and "WHERE snapshots.volume_id" in s for s in reads)

    # Delete through *another object path*: the same record, reached by id.
    same_volume = backend.get_volume(second.id)
    assert same_volume is second
    same_volume.snapshots[0].delete()
    same_volume.connections[0].disconnect()
    assert second.snapshots == ()
    assert second.connections == ()
    assert second.status == "available"
    second.delete()
    assert [v.id for v in backend.volumes] == [first.id]


def test_refresh_sees_a_write_from_another_process(store: Store, backend: Backend) -> None:
    volume = _populated(backend)
    held_elsewhere = backend.volumes[0]
    assert held_elsewhere is volume

    workers.run_in_process(workers.rename_volume, _url(store), "lvm-1", volume.id, "renamed")
    assert volume.name == "data"  # cached until refreshed

    version_before = volume.version
    volume.refresh()
    assert volume.name == "renamed"
    assert held_elsewhere.name == "renamed"  # same object: every holder sees it
    assert volume.version == version_before + 1


def test_refresh_reloads_loaded_children_recursively(store: Store, backend: Backend) -> None:
    volume = _populated(backend)
    assert backend.volumes == (volume,)  # loaded: refresh() goes through it
    snapshots = volume.snapshots
    assert len(snapshots) == 2
    gone = snapshots[1]
    workers.run_in_process(workers.delete_snapshot, _url(store), "lvm-1", volume.id, gone.id)
    assert len(volume.snapshots) == 2  # still cached

    backend.refresh()
    assert [s.id for s in volume.snapshots] == [snapshots[0].id]
    assert backend.volumes[0] is volume


def test_backend_refresh_is_a_constant_number_of_queries(store: Store, backend: Backend) -> None:
    for _ in range(5):
        _populated(backend)
    for volume in backend.volumes:
        volume.snapshots, volume.connections  # noqa: B018
    with count_queries(store.engine) as log:
        backend.refresh()
    assert log.count == 4
    assert all(len(v.snapshots) == 2 for v in backend.volumes)
    assert log.count == 4


def test_backend_refresh_leaves_unloaded_properties_lazy(store: Store, backend: Backend) -> None:
    _populated(backend)
    backend.refresh()
    assert not backend.volumes_loaded()
    with count_queries(store.engine) as log:
        backend.refresh()
    assert log.count == 1


def test_refresh_of_a_row_deleted_elsewhere_raises_not_found(
    store: Store, backend: Backend
) -> None:
    volume = backend.create_volume(1, "doomed", status="available")
    snapshot = volume.create_snapshot("s")
    workers.run_in_process(workers.delete_snapshot, _url(store), "lvm-1", volume.id, snapshot.id)
    with pytest.raises(exceptions.NotFound) as raised:
        snapshot.refresh()
    assert raised.value.resource == "snapshot"
    assert raised.value.resource_id == snapshot.id
    # the volume itself is still there and refreshes fine
    volume.refresh()
    assert volume.snapshots == ()


def test_local_attach_survives_refresh_but_not_a_restart(
    store: Store, backend: Backend, reopen: Callable[[], Store]
) -> None:
    volume = _populated(backend)
    connection = volume.connections[0]
    volume.local_attach = connection
    volume.refresh()
    backend.refresh()
    assert volume.local_attach is connection

    reopened = reopen()
    lvm = Backend.load(reopened, "lvm-1")
    restarted = lvm.get_volume(volume.id)
    assert restarted is not volume
    assert restarted.local_attach is None
    assert [c.id for c in restarted.connections] == [connection.id]  # the export is tracked


def test_local_attach_only_accepts_a_connection_of_the_volume(backend: Backend) -> None:
    one = _populated(backend)
    other = _populated(backend)
    with pytest.raises(exceptions.InvalidInput):
        one.local_attach = other.connections[0]
    assert one.local_attach is None


def test_disconnect_clears_local_attach(backend: Backend) -> None:
    volume = _populated(backend)
    volume.local_attach = volume.connections[0]
    volume.connections[0].disconnect()
    assert volume.local_attach is None


def test_threads_share_one_object_per_record(
    store: Store, backend: Backend, reopen: Callable[[], Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time
    from concurrent.futures import ThreadPoolExecutor

    volume = _populated(backend)
    lvm = Backend.load(reopen(), "lvm-1")
    # Widen the window between "not in the identity map" and "registered",
    # so that a missing lock shows up as two objects for one record.
    slow_apply = Volume._apply_row

    def apply_slowly(self: Volume, row: object, *, fresh: bool = False) -> None:
        time.sleep(0.02)
        slow_apply(self, row, fresh=fresh)  # type: ignore[arg-type]

    monkeypatch.setattr(Volume, "_apply_row", apply_slowly)
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda _: lvm.get_volume(volume.id), range(16)))
    assert len({id(v) for v in found}) == 1
