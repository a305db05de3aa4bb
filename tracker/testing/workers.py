"""Code that tests (and the demo) run in a *second process* against the same store.

Each function opens its own :class:`~tracker.db.store.Store` from a URL, as a
separate cinderlib-style service would, so what it proves holds across real
processes, not just across objects in one interpreter.
"""

from __future__ import annotations

import multiprocessing
import queue
from multiprocessing.synchronize import Barrier
from typing import Any

from tracker import exceptions
from tracker.db.store import Store
from tracker.resources import Backend


def _open(url: str, backend_name: str) -> Backend:
    store = Store(url, auto_upgrade="never")
    return Backend.load(store, backend_name)


def rename_volume(url: str, backend_name: str, volume_id: str, new_name: str) -> None:
    """Rename a volume from a fresh process-like context.

    :returns: nothing.
    :raises tracker.exceptions.TrackerError: as :meth:`tracker.Volume.save`.
    """
    backend = _open(url, backend_name)
    volume = backend.get_volume(volume_id)
    volume.name = new_name
    volume.save()
    backend.store.dispose()


def delete_snapshot(url: str, backend_name: str, volume_id: str, snapshot_id: str) -> None:
    """Delete one snapshot of a volume, as another service would.

    :returns: nothing.
    :raises tracker.exceptions.TrackerError: as :meth:`tracker.Snapshot.delete`.
    """
    backend = _open(url, backend_name)
    volume = backend.get_volume(volume_id)
    for snapshot in volume.snapshots:
        if snapshot.id == snapshot_id:
            snapshot.delete()
    backend.store.dispose()


def _racer(
    url: str,
    backend_name: str,
    volume_id: str,
    barrier: Barrier,
    results: Any,
    key: str,
    value: str,
) -> None:
    """Read a volume, wait until the other racer has read it too, then write."""
    backend = _open(url, backend_name)
    volume = backend.get_volume(volume_id)
    barrier.wait(timeout=60)
    volume.metadata[key] = value
    try:
        volume.save()
        results.put((key, "saved"))
    except exceptions.ConflictError as exc:
        results.put((key, f"conflict: {exc}"))
    finally:
        backend.store.dispose()


def race_metadata_updates(
    url: str, backend_name: str, volume_id: str, racers: int = 2
) -> dict[str, str]:
    """Let ``racers`` processes read the same volume, then all write it at once.

    Racer ``i`` sets ``metadata["racer-i"] = "i"``.

    :returns: racer key -> ``"saved"`` or ``"conflict: <message>"``.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(racers)
    results = context.Queue()
    processes = [
        context.Process(
            target=_racer,
            args=(url, backend_name, volume_id, barrier, results, f"racer-{i}", str(i)),
        )
        for i in range(racers)
    ]
    for process in processes:
        process.start()
    outcome = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    return outcome


def _call(function: Any, args: tuple[Any, ...], results: Any) -> None:
    try:
        results.put(("ok", function(*args)))
    except BaseException as exc:  # handed back to the parent, which re-raises it
        results.put(("error", exc))


def run_in_process(function: Any, *args: Any, timeout: float = 120) -> Any:
    """Run ``function(*args)`` in a freshly spawned interpreter.

    :returns: what it returned.
    :raises Exception: what it raised (re-raised here).
    :raises RuntimeError: the child died without answering.
    """
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_call, args=(function, args, results))
    process.start()
    try:
        while True:
            try:
                outcome, value = results.get(timeout=0.2)
                break
            except queue.Empty:
                if not process.is_alive():
                    raise RuntimeError(
                        f"the child process running {function.__name__} died "
                        f"(exit code {process.exitcode})"
                    ) from None
                timeout -= 0.2
                if timeout <= 0:
                    raise TimeoutError(f"{function.__name__} did not finish in time") from None
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    if outcome == "error":
        raise value
    return value


def reconcile_tree(url: str, root: str, host_name: str) -> tuple[int, int]:
    """Scan a sysfs tree and reconcile it, as a host's discovery service would.

    :returns: ``(number of changes, rows written)``.
    """
    from pathlib import Path

    from tracker.discovery.discover import discover
    from tracker.host.sources import SysfsTreeSource
    from tracker.reconcile import reconcile

    store = Store(url, auto_upgrade="never")
    try:
        state = discover(SysfsTreeSource(Path(root)).scan(), host_name)
        result = reconcile(store, state)
    finally:
        store.dispose()
    return len(result.changes), result.rows_written


def run_concurrently(
    function: Any, arguments: list[tuple[Any, ...]], timeout: float = 120
) -> list[Any]:
    """Run ``function`` once per argument tuple, all in spawned processes at once.

    :returns: the results, in the order of ``arguments``.
    :raises Exception: the first error a process raised.
    """
    context = multiprocessing.get_context("spawn")
    with context.Pool(len(arguments)) as pool:
        pending = [pool.apply_async(function, args) for args in arguments]
        return [job.get(timeout=timeout) for job in pending]
