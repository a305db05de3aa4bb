"""Code that tests (and the demo) run in a *second process* against the same store.

Each function opens its own :class:`~tracker.db.store.Store` from a URL, as a
separate cinderlib-style service would, so what it proves holds across real
processes, not just across objects in one interpreter.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import queue
import time
from collections.abc import Callable
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
    return _race(
        _racer, racers, lambda i: (url, backend_name, volume_id), lambda i: (f"racer-{i}", str(i))
    )


def _race(
    target: Any,
    racers: int,
    before: Callable[[int], tuple[Any, ...]],
    after: Callable[[int], tuple[Any, ...]],
) -> dict[Any, Any]:
    """Run ``target(*before(i), barrier, results, *after(i))`` in ``racers`` spawned
    processes that meet at the barrier; each puts one ``(key, value)`` in ``results``.

    :returns: key -> value, one per racer.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(racers)
    results = context.Queue()
    processes = [
        context.Process(target=target, args=(*before(i), barrier, results, *after(i)))
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


# --- stress: many processes on shared rows ------------------------------------


def _outcome(counts: dict[str, int], label: str) -> None:
    counts[label] = counts.get(label, 0) + 1


def _classify_failure(exc: BaseException) -> str:
    """``"<TypeName>"`` for a tracker error, ``"UNTYPED <TypeName>: ..."`` otherwise."""
    if isinstance(exc, exceptions.TrackerError):
        return type(exc).__name__
    first_line = (str(exc).splitlines() or [""])[0][:200]
    return f"UNTYPED {type(exc).__module__}.{type(exc).__name__}: {first_line}"


class _Churner:
    """One worker of :func:`churn`: its objects and what it counted."""

    def __init__(self, store: Store, backend_name: str, worker: int, volume_id: str) -> None:
        self.store = store
        self.worker = worker
        self.host = f"h{worker}"
        self.backend = Backend.load(store, backend_name)
        self.volume = self.backend.get_volume(volume_id)
        self.volume.connections  # noqa: B018  (loaded, so refresh() reloads them)
        self.saves = 0
        self.counts: dict[str, int] = {}

    def connect(self) -> None:
        self.volume.connect({"host": self.host}, protocol="iscsi")

    def disconnect(self) -> bool:
        mine = [c for c in self.volume.connections if c.host == self.host]
        if not mine:
            return False
        mine[0].disconnect()
        return True

    def save(self) -> None:
        self.volume.metadata[f"w{self.worker}"] = self.saves + 1
        try:
            self.volume.save()
        except Exception:
            self.volume.metadata[f"w{self.worker}"] = self.saves
            raise
        self.saves += 1

    def scratch(self, wwn: str | None, connect: bool) -> None:
        scratch = self.backend.create_volume(1, status="available", wwn=wwn)
        try:
            if connect:
                scratch.connect({"host": self.host}).disconnect()
        finally:
            scratch.delete()

    def run(self, operation: str, work: Any) -> None:
        try:
            done = work()
            _outcome(self.counts, f"{'skipped' if done is False else 'ok'} {operation}")
        except Exception as exc:  # counted by type; the tests assert on them
            _outcome(self.counts, _classify_failure(exc))
            try:
                self.volume.refresh()
            except Exception as again:
                _outcome(self.counts, _classify_failure(again))


def churn(
    url: str,
    backend_name: str,
    worker: int,
    shared_volume_id: str,
    wwn: str | None,
    sysfs_root: str | None,
    seconds: float,
    seed: int,
) -> dict[str, int]:
    """Hammer a store as one of several services would, for ``seconds``.

    Operations, picked at random: connect the shared volume to this worker's
    host, disconnect this worker's connection of it, save this worker's key in
    its metadata (``metadata["w<worker>"]`` = how many saves of this worker
    landed), create a scratch volume with ``wwn`` and delete it, and (with a
    ``sysfs_root``) reconcile that host tree as host ``host-<worker>``.

    :returns: label -> count: ``ok <operation>`` for each success, the error
        class name for each tracker error, ``UNTYPED ...`` for anything else,
        and ``saves landed``.
    """
    import random
    from pathlib import Path

    from tracker.discovery.discover import discover
    from tracker.host.sources import SysfsTreeSource
    from tracker.reconcile import reconcile

    rng = random.Random(seed)  # noqa: S311  (a test schedule, not a secret)
    store = Store(url, auto_upgrade="never")
    try:
        churner = _Churner(store, backend_name, worker, shared_volume_id)
        operations: dict[str, Any] = {
            "connect": churner.connect,
            "disconnect": churner.disconnect,
            "save": churner.save,
            "scratch": lambda: churner.scratch(wwn, rng.random() < 0.5),
        }
        if sysfs_root is not None:
            state = discover(SysfsTreeSource(Path(sysfs_root)).scan(), f"host-{worker}")
            operations["reconcile"] = lambda: reconcile(store, state)
        names = sorted(operations)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            name = rng.choice(names)
            churner.run(name, operations[name])
    finally:
        store.dispose()
    churner.counts["saves landed"] = churner.saves
    return churner.counts


def flip_volume(
    url: str, backend_name: str, volume_id: str, stop: Any, started: Any
) -> dict[str, int]:
    """Flip a volume between ``available`` and ``in-use`` until ``stop`` is set.

    Each flip is one transaction: connect (a connection row appears and the
    volume becomes ``in-use``) or disconnect (it goes and the volume is
    ``available`` again).

    :param stop: a multiprocessing Event that ends the loop.
    :param started: an Event set once the first flip committed.
    :returns: label -> count, as :func:`churn`.
    """
    counts: dict[str, int] = {}
    store = Store(url, auto_upgrade="never")
    try:
        volume = Backend.load(store, backend_name).get_volume(volume_id)
        while not stop.is_set():
            try:
                if volume.connections:
                    volume.connections[0].disconnect()
                    _outcome(counts, "ok disconnect")
                else:
                    volume.connect({"host": "flipper"})
                    _outcome(counts, "ok connect")
                started.set()
            except Exception as exc:
                _outcome(counts, _classify_failure(exc))
                volume.refresh()
    finally:
        started.set()
        store.dispose()
    return counts


class Background:
    """Run ``function(*args, stop, started)`` in a spawned process while a block runs.

    ``with Background(f, a, b) as job:`` waits until the child sets ``started``;
    leaving the block sets ``stop`` and collects the result as ``job.result``.
    """

    def __init__(self, function: Any, *args: Any, timeout: float = 120) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._started = context.Event()
        self._results = context.Queue()
        self._timeout = timeout
        self.result: Any = None
        self._process = context.Process(
            target=_call, args=(function, (*args, self._stop, self._started), self._results)
        )

    def __enter__(self) -> Background:
        self._process.start()
        if not self._started.wait(self._timeout):
            self._process.kill()
            raise TimeoutError("the background process did not start in time")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        try:
            outcome, value = self._results.get(timeout=self._timeout)
        finally:
            self._process.join(timeout=30)
            if self._process.is_alive():
                self._process.kill()
        if outcome == "error":
            raise value
        self.result = value


# --- storage connection leases ------------------------------------------------


def _take_storage_connection_lease(
    url: str, host_name: str, connection_id: str, owner: str, barrier: Barrier, results: Any
) -> None:  # the arguments in _race's order
    from tracker.db import storage_connections
    from tracker.db.models import utcnow

    store = Store(url, auto_upgrade="never")
    try:
        barrier.wait(timeout=60)
        taken = storage_connections.take_lease(
            store, host_name, connection_id, owner, dt.timedelta(seconds=300), utcnow()
        )
        results.put((owner, taken))
    finally:
        store.dispose()


def race_storage_connection_lease(
    url: str, host_name: str, connection_id: str, racers: int = 2
) -> dict[str, bool]:
    """Let ``racers`` processes try to take one storage connection's lease at once.

    :returns: owner (``racer-i``) -> whether it got the lease.
    """
    return _race(
        _take_storage_connection_lease,
        racers,
        lambda i: (url, host_name, connection_id, f"racer-{i}"),
        lambda i: (),
    )


def hold_storage_connection_lease(
    url: str, host_name: str, connection_id: str, stop: Any, started: Any
) -> bool:
    """Hold a storage connection's lease, as another process's monitor reconnecting it
    would, until ``stop`` is set; then give it up.

    :returns: whether the lease was taken.
    """
    from tracker.db import storage_connections
    from tracker.db.models import utcnow

    store = Store(url, auto_upgrade="never")
    owner = "other-process"
    try:
        taken = storage_connections.take_lease(
            store, host_name, connection_id, owner, dt.timedelta(seconds=300), utcnow()
        )
        started.set()
        stop.wait(120)
        storage_connections.release_lease(store, host_name, connection_id, owner)
        return taken
    finally:
        store.dispose()


def url_text(store: Store) -> str:
    """:returns: a store's URL as text, with its password (for a child process)."""
    return str(store.url.render_as_string(hide_password=False))
