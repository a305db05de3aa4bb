"""``tracker demo``: what tracker does, narrated, on a throw-away store.

The demo is a list of :class:`Step` objects run in order on one
:class:`DemoContext`. Each step prints a section of plain-English narrative and
records what it measured in :attr:`DemoContext.facts` (the tests read those, and
so can later steps). Later features add steps by building their own list::

    steps = [*tracker.demo.STEPS[:-1], discovery_step, tracker.demo.STEPS[-1]]
    tracker.demo.run(steps=steps)

The demo owns everything it touches: a fresh SQLite store in a temporary
directory (removed at the end unless kept), and the in-process registry
:attr:`tracker.Backend.backends`, which it empties while it runs (to simulate
restarts) and gives back as it found it.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from tracker import report
from tracker.db.store import Store
from tracker.discovery.discover import discover
from tracker.host.sources import SysfsTreeSource
from tracker.reconcile import reconcile
from tracker.resources import Backend, Volume
from tracker.testing import topologies, workers
from tracker.testing.queries import count_queries
from tracker.testing.testbed import Testbed

#: Name of the backend the demo tracks.
BACKEND_NAME = "demo-lvm"
#: The name the second process gives to the renamed volume.
RENAMED_TO = "scratch-renamed"
#: The host name the discovery step reconciles the simulated host under.
DEMO_HOST = "demo-host"
#: The backend of the SAN volume the discovery step tracks.
SAN_BACKEND_NAME = "demo-san"
#: The name of that volume.
SAN_VOLUME_NAME = "san-data"

_COMPUTE_1 = {
    "host": "compute-1",
    "initiator": "iqn.1994-05.com.redhat:compute-1",
    "ip": "192.0.2.11",
    "multipath": False,
}
_COMPUTE_2 = {
    "host": "compute-2",
    "initiator": "iqn.1994-05.com.redhat:compute-2",
    "ip": "192.0.2.12",
    "multipath": True,
}


def _queries(count: int) -> str:
    return f"{count} SQL {'query' if count == 1 else 'queries'}"


@dataclass
class DemoContext:
    """What the steps share.

    :ivar store: the open store (replaced by :meth:`restart`).
    :ivar url: the store's URL, with any password, for other processes.
    :ivar workdir: the directory holding the store.
    :ivar out: where the narrative goes.
    :ivar backend: the tracked backend, once the first step created it.
    :ivar facts: what the steps measured, by name (see each step).
    """

    store: Store
    url: str
    workdir: Path
    out: TextIO
    backend: Backend | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    _section: int = 0

    def say(self, text: str = "") -> None:
        """Print one paragraph of narrative.

        :returns: nothing.
        """
        print(text, file=self.out)

    def heading(self, title: str) -> None:
        """Start a numbered section.

        :returns: nothing.
        """
        self._section += 1
        line = f"{self._section}. {title}"
        self.say()
        self.say(line)
        self.say("-" * len(line))

    def require_backend(self) -> Backend:
        """:returns: the tracked backend.

        :raises RuntimeError: no step has created it yet (the steps are out of order).
        """
        if self.backend is None:
            raise RuntimeError("the demo steps need the 'track' step to run first")
        return self.backend

    def volume(self, name: str) -> Volume:
        """:returns: the volume of that name on the tracked backend.

        :raises LookupError: there is none.
        """
        for volume in self.require_backend().volumes:
            if volume.name == name:
                return volume
        raise LookupError(f"no volume named {name!r} in the demo")

    def restart(self) -> Backend:
        """Simulate a restart of this process: forget every registered backend,
        open the store anew, and adopt the backend with :meth:`Backend.load`.

        :returns: the newly loaded backend (also set as :attr:`backend`).
        :raises tracker.exceptions.TrackerError: the store cannot be reopened.
        """
        Backend.backends.clear()
        self.store.dispose()
        self.store = Store(self.url, auto_upgrade="never")
        self.backend = Backend.load(self.store, BACKEND_NAME)
        return self.backend


@dataclass(frozen=True, slots=True)
class Step:
    """One section of the demo.

    :ivar name: short identifier (for lists of steps and tests).
    :ivar title: the section heading.
    :ivar run: prints the section and records facts.
    """

    name: str
    title: str
    run: Callable[[DemoContext], None]


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What a demo run did.

    :ivar url: the store's URL.
    :ivar workdir: the directory that held the store.
    :ivar kept: whether the directory was left in place.
    :ivar facts: what the steps measured.
    """

    url: str
    workdir: Path
    kept: bool
    facts: dict[str, Any]


# -- the steps ----------------------------------------------------------------


def track_resources(ctx: DemoContext) -> None:
    """Track a backend with volumes, snapshots and connections.

    Facts: ``volume_names`` (list), ``volume_ids`` (name -> id).

    :returns: nothing.
    :raises tracker.exceptions.TrackerError: the store refused a write.
    """
    backend = Backend(
        BACKEND_NAME,
        store=ctx.store,
        driver="LVMVolumeDriver",
        volume_group="cinder-volumes",
        target_helper="lioadm",
    )
    ctx.backend = backend
    ctx.say(f"Backend({BACKEND_NAME!r}, store=store, driver='LVMVolumeDriver', ...) registered")
    ctx.say("the backend in this process and stored it. Three volumes:")
    data = backend.create_volume(10, "db-data", status="available", serial="DEMO0001")
    logs = backend.create_volume(5, "logs", status="available", serial="DEMO0002")
    scratch = backend.create_volume(1, "scratch", status="available", serial="DEMO0003")
    for volume in (data, logs, scratch):
        ctx.say(f"  volume {volume.name!r}, {volume.size} GiB, id {volume.id}")
    nightly = data.create_snapshot("db-data-nightly", status="available")
    before = logs.create_snapshot("logs-before-upgrade", status="available")
    ctx.say("Two snapshots:")
    for snapshot in (nightly, before):
        ctx.say(f"  snapshot {snapshot.name!r} of {snapshot.volume.name!r}, id {snapshot.id}")
    first = data.connect(
        _COMPUTE_1,
        protocol="iscsi",
        connection_info={"target_portal": "192.0.2.10:3260", "target_lun": 1},
    )
    second = logs.connect(
        _COMPUTE_2,
        protocol="iscsi",
        attach_mode="ro",
        connection_info={"target_portal": "192.0.2.10:3260", "target_lun": 2},
    )
    ctx.say("Two connections (exports to compute hosts); their volumes are now in-use:")
    for connection in (first, second):
        ctx.say(
            f"  {connection.volume.name!r} -> {connection.host} "
            f"({connection.protocol}, {connection.attach_mode}), id {connection.id}"
        )
    ctx.facts["volume_names"] = [v.name for v in (data, logs, scratch)]
    ctx.facts["volume_ids"] = {str(v.name): v.id for v in (data, logs, scratch)}


def lazy_loading(ctx: DemoContext) -> None:
    """Show that ``backend.volumes`` queries once and then serves its cache.

    Facts: ``first_access_queries``, ``second_access_queries``.

    :returns: nothing.
    :raises tracker.exceptions.TrackerError: the store cannot be read.
    """
    ctx.say("Start over as a freshly started service would: Backend.load() adopts the")
    ctx.say("stored backend and reads nothing else.")
    backend = ctx.restart()
    ctx.say(f"backend.volumes_loaded() -> {backend.volumes_loaded()}")
    with count_queries(ctx.store.engine) as first:
        volumes = backend.volumes
    ctx.say(
        f"First access to backend.volumes: {len(volumes)} volumes, cost {_queries(first.count)}."
    )
    with count_queries(ctx.store.engine) as second:
        again = backend.volumes
    ctx.say(
        f"Second access to backend.volumes: {len(again)} volumes, "
        f"cost {_queries(second.count)} (served from the cache)."
    )
    same = all(a is b for a, b in zip(volumes, again, strict=True))
    ctx.say(f"Both accesses returned the very same Volume objects: {same}.")
    ctx.facts["first_access_queries"] = first.count
    ctx.facts["second_access_queries"] = second.count


def refresh_from_other_process(ctx: DemoContext) -> None:
    """Rename a volume in a spawned process, then ``refresh()`` it here.

    Facts: ``renamed_to`` (what the other process wrote), ``name_before_refresh``,
    ``name_after_refresh``, ``same_object``, ``refresh_queries``.

    :returns: nothing.
    :raises tracker.exceptions.TrackerError: the other process failed.
    """
    backend = ctx.require_backend()
    volume = ctx.volume("scratch")
    ctx.say(f"This process holds volume {volume.id} named {volume.name!r}.")
    workers.run_in_process(workers.rename_volume, ctx.url, backend.name, volume.id, RENAMED_TO)
    ctx.say(
        f"A second process (a freshly spawned Python interpreter with its own Store) "
        f"renamed it to {RENAMED_TO!r}."
    )
    ctx.say(f"Before refresh(), this process still sees the cached name: {volume.name!r}.")
    before = volume.name
    with count_queries(ctx.store.engine) as log:
        backend.refresh()
    after = backend.get_volume(volume.id)
    ctx.say(
        f"backend.refresh() reloaded the backend and its loaded volumes ({_queries(log.count)})."
    )
    ctx.say(f"After refresh(), the name is {after.name!r}.")
    ctx.say(
        f"It is the same Python object as before (refreshed volume is the one we held): "
        f"{after is volume}."
    )
    ctx.facts["renamed_to"] = RENAMED_TO
    ctx.facts["name_before_refresh"] = before
    ctx.facts["name_after_refresh"] = after.name
    ctx.facts["same_object"] = after is volume
    ctx.facts["refresh_queries"] = log.count


def local_attach(ctx: DemoContext) -> None:
    """Show that ``volume.local_attach`` survives ``refresh()`` but not a restart.

    Facts: ``local_attach_after_refresh`` (bool: still the connection),
    ``local_attach_after_restart`` (the value, ``None``),
    ``connection_tracked_after_restart`` (bool).

    :returns: nothing.
    :raises tracker.exceptions.TrackerError: the store cannot be read.
    """
    volume = ctx.volume("db-data")
    connection = volume.connections[0]
    volume.local_attach = connection
    ctx.say(
        f"This process attached {volume.name!r} through connection {connection.id} "
        f"to {connection.host}:"
    )
    ctx.say("volume.local_attach = connection  (kept in this process's memory only)")
    volume.refresh()
    kept = volume.local_attach is connection
    ctx.say(f"After volume.refresh(), local_attach is still that connection: {kept}.")
    ctx.say("Now simulate a restart: forget the registered backends, reopen the store,")
    ctx.say(f"and Backend.load(store, {BACKEND_NAME!r}).")
    ctx.restart()
    reloaded = ctx.volume("db-data")
    ctx.say(f"After the restart: local_attach is {reloaded.local_attach!r}.")
    tracked = [c.id for c in reloaded.connections]
    still = connection.id in tracked
    ctx.say(
        f"The connection itself is still tracked in the store: {still} "
        f"({len(tracked)} connection of {reloaded.name!r}, id {', '.join(tracked)})."
    )
    ctx.facts["local_attach_after_refresh"] = kept
    ctx.facts["local_attach_after_restart"] = reloaded.local_attach
    ctx.facts["connection_tracked_after_restart"] = still


def host_discovery(ctx: DemoContext) -> None:
    """Discover a simulated FC multipath host and link a tracked volume to its LUN.

    The host is a sysfs tree built in the demo's directory (never the real
    ``/sys``): two FC HBAs, each logged in to two target ports, two LUNs on four
    paths each, in two multipath maps.

    Facts: ``discovery_records``, ``discovery_changes`` (first reconcile),
    ``discovery_rows_written`` (first reconcile), ``discovery_paths`` (the
    volume's ``/dev`` paths), ``discovery_map_name``, ``discovery_map_path``,
    ``discovery_second_changes``, ``discovery_second_rows_written``.

    :returns: nothing.
    :raises tracker.exceptions.TrackerError: the testbed cannot be built or the
        store refused a write.
    :raises OSError: the testbed directory cannot be written.
    """
    root = ctx.workdir / "host"
    root.mkdir()
    topologies.fc_multipath(Testbed(root))
    source = SysfsTreeSource(root)
    ctx.say(f"A simulated host: a sysfs tree built under {root} (not the real /sys),")
    ctx.say("with two FC HBAs, each logged in to two target ports, and two LUNs on four")
    ctx.say("paths each, in two multipath maps.")
    records = source.scan()
    state = discover(records, DEMO_HOST)
    ctx.say(f"SysfsTreeSource(root).scan() read {len(records)} device records; discover() found")
    ctx.say(
        f"{len(state.scsi_hosts)} SCSI hosts, {len(state.fc_remote_ports)} FC remote ports, "
        f"{len(state.scsi_devices)} SCSI devices and {len(state.multipath_maps)} multipath maps."
    )
    first_map = state.multipath_maps[0]
    lun = state.devices_for_wwid(first_map.wwid)[0]
    san = Backend(SAN_BACKEND_NAME, store=ctx.store, driver="FibreChannelDemoDriver")
    volume = san.create_volume(1, SAN_VOLUME_NAME, status="available", wwn=lun.identity.wwn)
    ctx.say(
        f"Backend {SAN_BACKEND_NAME!r} tracks {SAN_VOLUME_NAME!r} with the WWN of LUN "
        f"{lun.hctl} ({lun.identity.wwn})."
    )
    first = reconcile(ctx.store, state)
    ctx.say("reconcile(store, state) wrote the host's state into the store:")
    ctx.say(f"  {first.summary}")
    paths = volume.host_devices
    ctx.say(f"volume.host_devices: {len(paths)} paths:")
    for device in paths:
        ctx.say(
            f"  {device.path} ({device.hctl}, {device.transport} target {device.target}, "
            f"{device.state})"
        )
    mpath = volume.multipath_device
    if mpath is None:
        raise RuntimeError("the demo volume was not linked to its multipath map")
    ctx.say(
        f"volume.multipath_device: {mpath.name} at {mpath.path} ({mpath.block_name}, "
        f"{len(mpath.paths)} paths)"
    )
    again = reconcile(ctx.store, discover(source.scan(), DEMO_HOST))
    ctx.say(
        f"A second reconcile of the unchanged host found {len(again.changes)} changes and "
        f"wrote {again.rows_written} rows."
    )
    ctx.facts["discovery_records"] = len(records)
    ctx.facts["discovery_changes"] = len(first.changes)
    ctx.facts["discovery_rows_written"] = first.rows_written
    ctx.facts["discovery_paths"] = [d.path for d in paths]
    ctx.facts["discovery_map_name"] = mpath.name
    ctx.facts["discovery_map_path"] = mpath.path
    ctx.facts["discovery_second_changes"] = len(again.changes)
    ctx.facts["discovery_second_rows_written"] = again.rows_written


def status_tree(ctx: DemoContext) -> None:
    """Print the status tree and the number of queries it took.

    Facts: ``tree`` (the rendered text), ``status_queries``.

    :returns: nothing.
    :raises tracker.exceptions.TrackerError: the store cannot be read.
    """
    with count_queries(ctx.store.engine) as log:
        tree = report.collect(ctx.store)
    ctx.say(f"tracker.report.collect(store) read the whole tree in {_queries(log.count)}:")
    ctx.say()
    ctx.say(tree.render())
    ctx.facts["tree"] = tree.render()
    ctx.facts["status_queries"] = log.count


#: The demo, in order. Build a new list to add steps (see the module docstring).
STEPS: tuple[Step, ...] = (
    Step("track", "Tracking a backend, volumes, snapshots and connections", track_resources),
    Step("lazy", "Lazy loading: the first access queries, the second does not", lazy_loading),
    Step(
        "refresh",
        "refresh() picks up a change made by a second process",
        refresh_from_other_process,
    ),
    Step("local_attach", "local_attach lives in this process's memory only", local_attach),
    Step(
        "discovery",
        "Discovery",
        host_discovery,
    ),
    Step("status", "The status tree", status_tree),
)


# -- running ------------------------------------------------------------------


@contextmanager
def _own_registry() -> Iterator[None]:
    """Run with an empty :attr:`Backend.backends`; give it back afterwards."""
    saved = dict(Backend.backends)
    Backend.backends.clear()
    try:
        yield
    finally:
        Backend.backends.clear()
        Backend.backends.update(saved)


def run(
    out: TextIO | None = None,
    *,
    workdir: str | Path | None = None,
    keep: bool = False,
    steps: Sequence[Step] = STEPS,
) -> DemoResult:
    """Run the demo on a fresh SQLite store.

    :param out: where the narrative goes; standard output by default.
    :param workdir: parent directory for the store's temporary directory; the
        system's temporary directory by default. It is created if missing and
        never removed itself.
    :param keep: leave the store's directory in place (its path is printed).
    :param steps: the sections to run, in order.
    :returns: what the demo did, with the facts the steps measured.
    :raises tracker.exceptions.TrackerError: a step failed.
    :raises OSError: the working directory cannot be created.
    """
    stream = out if out is not None else sys.stdout
    parent: Path | None = None
    if workdir is not None:
        parent = Path(workdir).expanduser()
        parent.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="tracker-demo-", dir=parent))
    url = f"sqlite:///{directory / 'tracker.sqlite'}"
    print("tracker demo", file=stream)
    print("============", file=stream)
    print(f"A throw-away SQLite store: {url}", file=stream)
    print(
        "(kept afterwards)" if keep else "(removed at the end; use --keep to keep it)",
        file=stream,
    )
    ctx: DemoContext | None = None
    try:
        with _own_registry():
            ctx = DemoContext(store=Store(url), url=url, workdir=directory, out=stream)
            try:
                for step in steps:
                    ctx.heading(step.title)
                    step.run(ctx)
            finally:
                ctx.store.dispose()
    finally:
        if not keep:
            shutil.rmtree(directory, ignore_errors=True)
    print(file=stream)
    if keep:
        print(f"Done. The store is kept in {directory}", file=stream)
    else:
        print("Done. The throw-away store was removed.", file=stream)
    return DemoResult(url=url, workdir=directory, kept=keep, facts=dict(ctx.facts))
