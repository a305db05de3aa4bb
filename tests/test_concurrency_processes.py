"""Concurrency across threads and processes: typed errors, no lost writes, one snapshot per read.

Each test runs on SQLite, PostgreSQL and MariaDB. The process tests spawn real
interpreters (:mod:`tracker.testing.workers`), as separate services would.
"""

from __future__ import annotations

import gc
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tracker.db import repository
from tracker.db.store import Store
from tracker.discovery.discover import discover
from tracker.discovery.model import HostState
from tracker.host.sources import SysfsTreeSource
from tracker.reconcile import observed, reconcile
from tracker.resources import Backend, Volume
from tracker.serialization import dump
from tracker.testing import topologies, workers
from tracker.testing.testbed import Testbed


@pytest.fixture
def testbed() -> Iterator[Testbed]:
    bed = Testbed.create(prefix="concurrency-test-")
    yield bed
    shutil.rmtree(bed.root, ignore_errors=True)


def _url(store: Store) -> str:
    return store.url.render_as_string(hide_password=False)


def _scan(testbed: Testbed) -> HostState:
    return discover(SysfsTreeSource(testbed.root).scan(), "compute-1")


def _linked_volume(store: Store, testbed: Testbed) -> tuple[HostState, Volume]:
    topologies.fc_multipath(testbed)
    state = _scan(testbed)
    lun = state.devices_for_wwid(state.multipath_maps[0].wwid)[0]
    backend = Backend("netapp", store=store)
    return state, backend.create_volume(1, status="available", wwn=lun.identity.wwn)


def _in_thread(function: Callable[[], Any]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            function()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def _links(store: Store) -> set[str | None]:
    rows = observed(store, "compute-1")
    return {r["volume_id"] for kind in ("scsi_device", "multipath_map") for r in rows[kind]}


def test_a_volume_deleted_while_a_reconcile_links_it(store: Store, testbed: Testbed) -> None:
    """The reconcile holds the volume it links; the delete waits, then unlinks it."""
    state, volume = _linked_volume(store, testbed)
    deleting: list[tuple[threading.Thread, list[BaseException]]] = []

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "compare" and not deleting:  # inside the reconcile's transaction
            deleting.append(_in_thread(volume.delete))
            deleting[0][0].join(timeout=1.5)

    result = reconcile(store, state, progress=progress)
    thread, errors = deleting[0]
    thread.join(timeout=60)
    assert errors == []
    assert result.counts["scsi_device"] == 8
    assert volume.status == "deleted"
    assert _links(store) == {None}  # linked at commit, unlinked by the delete after it


def test_a_volume_deleted_before_the_link_is_taken_is_not_linked(
    store: Store, testbed: Testbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order: the delete commits after the reconcile read the volumes."""
    state, volume = _linked_volume(store, testbed)
    real = repository.lock_existing_volumes

    def delete_first(session: Any, volume_ids: Any) -> set[str]:
        thread, errors = _in_thread(volume.delete)
        thread.join(timeout=1.5)  # SQLite: the delete waits for the reconcile instead
        deleted.append((thread, errors))
        return real(session, volume_ids)

    deleted: list[tuple[threading.Thread, list[BaseException]]] = []
    monkeypatch.setattr(repository, "lock_existing_volumes", delete_first)
    reconcile(store, state)
    thread, errors = deleted[0]
    thread.join(timeout=60)
    assert errors == []
    assert volume.status == "deleted"
    assert _links(store) == {None}


def test_a_connection_refresh_reads_it_and_its_volume_in_one_snapshot(
    store: Store, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume = backend.create_volume(1, status="available")
    theirs = volume.connect({"host": "a"})  # another service's object, used to write
    Backend.backends.clear()  # this service: its own registry and store
    mine = Backend.load(Store(store.url, auto_upgrade="never"), backend.name)
    connection = mine.get_volume(volume.id).connections[0]
    gc.collect()  # only the connection is held: its volume is loaded afresh
    assert connection.volume.status == "in-use" and not connection.volume.connections_loaded()
    real = repository.get_row
    wrote: list[list[BaseException]] = []

    def get_row_then_let_them_write(session: Any, resource: str, row_id: str) -> Any:
        row = real(session, resource, row_id)
        if resource == "connection" and not wrote:  # between the two reads of refresh()
            theirs.status = "error"  # the volume goes back to available with it
            thread, errors = _in_thread(theirs.save)
            thread.join(timeout=60)
            wrote.append(errors)
        return row

    monkeypatch.setattr(repository, "get_row", get_row_then_let_them_write)
    connection.refresh()
    assert wrote == [[]]
    # Both as they were when the read began: never "attached" with an available volume.
    assert (connection.status, connection.volume.status) == ("attached", "in-use")
    connection.refresh()
    assert (connection.status, connection.volume.status) == ("error", "available")


def _torn(volumes: list[dict[str, Any]]) -> list[str]:
    return [
        v["id"]
        for v in volumes
        if (v["status"] == "in-use") != any(c["status"] == "attached" for c in v["connections"])
    ]


@pytest.mark.slow
def test_reads_see_one_snapshot_while_a_writer_flips_the_volume(
    store: Store, backend: Backend
) -> None:
    """dump() and refresh() never see a volume available with an attached connection."""
    volume = backend.create_volume(1, status="available")
    Backend.backends.clear()  # the reader is another service, with its own objects
    reader = Backend.load(Store(store.url, auto_upgrade="never"), backend.name)
    for loaded in reader.volumes:  # loaded lazily (apart) once; refresh() reloads them
        loaded.connections  # noqa: B018
    seen: Counter[str] = Counter()
    torn: list[str] = []
    with workers.Background(workers.flip_volume, _url(store), backend.name, volume.id) as job:
        for _ in range(300):
            document = dump(store)
            volumes = document["backends"][0]["volumes"]
            torn += _torn(volumes)
            seen[volumes[0]["status"]] += 1
            reader.refresh()  # one read of the backend, its volumes and their connections
            for loaded in reader.volumes:
                attached = any(c.status == "attached" for c in loaded.connections)
                if (loaded.status == "in-use") != attached:
                    torn.append(f"refresh of {loaded.id}")
                seen[f"refresh {loaded.status}"] += 1
    assert job.result.get("ok connect", 0) > 20, job.result
    assert not [k for k in job.result if not k.startswith("ok")], job.result
    assert seen["available"] and seen["in-use"], seen  # the reads did race the writer
    assert torn == []


def _untyped(counts: Counter[str]) -> dict[str, int]:
    return {label: n for label, n in counts.items() if label.startswith("UNTYPED")}


@pytest.mark.slow
def test_four_processes_connecting_and_disconnecting_one_volume(
    store: Store, backend: Backend
) -> None:
    """MariaDB used to leak (1213, 'Deadlock found') here hundreds of times a run."""
    volume = backend.create_volume(1, status="available")
    url = _url(store)
    results = workers.run_concurrently(
        workers.churn,
        [(url, backend.name, i, volume.id, None, None, 6.0, i) for i in range(4)],
    )
    _check_shared_volume(volume, results)


def _check_shared_volume(volume: Volume, results: list[dict[str, int]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for counts in results:
        total.update(counts)
    assert _untyped(total) == {}, total
    assert total["ok connect"] > 0 and total["ok disconnect"] > 0 and total["ok save"] > 0
    volume.refresh()
    # No write was lost: every one that reported success is in the store, once.
    assert volume.version == 1 + total["ok connect"] + total["ok disconnect"] + total["ok save"]
    landed = {f"w{i}": counts["saves landed"] for i, counts in enumerate(results)}
    assert volume.metadata == {key: n for key, n in landed.items() if n}
    connections = volume.connections
    assert len(connections) == total["ok connect"] - total["ok disconnect"]
    assert volume.status == ("in-use" if connections else "available")
    return total


@pytest.mark.slow
def test_eight_processes_on_shared_rows(store: Store, backend: Backend, testbed: Testbed) -> None:
    """The "done means" run: only tracker errors escape, and nothing is lost."""
    topologies.fc_multipath(testbed, luns=8)
    state = _scan(testbed)
    wwns = [state.devices_for_wwid(m.wwid)[0].identity.wwn for m in state.multipath_maps]
    volume = backend.create_volume(1, status="available")
    url = _url(store)
    root = str(testbed.root)
    results = workers.run_concurrently(
        workers.churn,
        [(url, backend.name, i, volume.id, wwns[i], root, 12.0, 100 + i) for i in range(8)],
        timeout=300,
    )
    total = _check_shared_volume(volume, results)
    assert total["ok scratch"] > 0 and total["ok reconcile"] > 0, total
    # No observed row points to a volume that is gone.
    backend.refresh()
    remaining = {v.id for v in backend.volumes} - {volume.id}
    for i in range(8):
        rows = observed(store, f"host-{i}")
        assert {r["volume_id"] for r in rows["scsi_device"]} <= remaining | {None}
    typed = {k: n for k, n in total.items() if not k.startswith(("ok", "skipped", "saves"))}
    print(f"\n{store.dialect}: {dict(sorted(total.items()))}; typed errors {typed}")
