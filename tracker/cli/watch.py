"""``tracker watch``: keep the store's model of this host live, in the foreground.

The command only wires things together: the store, the device source, the
event source and the incremental engine go to
:class:`tracker.watch.WatchService`, which does the work; SIGTERM and SIGINT
ask it to stop after the batch in progress.

Exit statuses: 0 stopped by SIGTERM/SIGINT (the lease released), 1 an error,
6 the store stayed unreachable for longer than ``[watch] grace_period``,
7 another ``tracker watch`` holds this host's lease (without ``--wait``), or
took it over while this one could not renew it, 130 a second signal
interrupted a batch (rolled back, never half-applied).
"""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from tracker.cli import common

if TYPE_CHECKING:
    from tracker.clock import Clock
    from tracker.db.store import Store
    from tracker.host.events import EventSource
    from tracker.host.sources import DeviceSource
    from tracker.watch import BatchReport, LiveModelLike

__all__ = ["live_model", "register", "run_watch"]


def register(subparsers: Any) -> None:
    """Add ``tracker watch``.

    :returns: nothing.
    """
    parser = common.add_command(
        subparsers,
        "watch",
        run_watch,
        help="apply this host's device events to the store as they happen (foreground)",
        description=(
            "Subscribe to the kernel's device events, reconcile the host in full once, "
            "then apply each batch of events in one transaction, logging one line per "
            "batch; resync in full every [watch] resync_interval seconds. Stops cleanly "
            "on SIGTERM or SIGINT (exit 0). Exits 6 when the store stays unreachable "
            "longer than [watch] grace_period, 7 when another watcher holds this host."
        ),
    )
    parser.add_argument(
        "--root",
        metavar="DIR",
        default=None,
        help="directory holding the sys/ tree to scan; overrides [discovery] root",
    )
    parser.add_argument(
        "--host-name",
        metavar="NAME",
        default=None,
        help="store the state under this host name; overrides [discovery] host_name",
    )
    parser.add_argument(
        "--wait",
        action="store_true",
        default=False,
        help="if another watcher holds this host, wait for its lease instead of exiting 7",
    )
    parser.add_argument(
        "--events-file",
        metavar="PATH",
        default=None,
        help=(
            "testing aid: read device events from a JSON-lines file that is appended "
            "to (one uevent's properties per line) instead of udev's netlink monitor"
        ),
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=False,
        help="stream one JSON object per applied batch on standard output",
    )


def live_model(
    store: Store,
    host_name: str,
    source: DeviceSource,
    events: EventSource,
    *,
    clock: Clock,
    window: float,
    max_batch: int,
    gap_resync: bool,
) -> LiveModelLike:
    """Build the incremental engine the service drives.

    :param gap_resync: resync when sequence numbers skip: only for a source that
        sees every event it numbers (the kernel numbers the events of every
        subsystem, and udev's monitor is filtered to the storage ones, so its
        gaps are normal: it relies on ``ENOBUFS`` and the periodic resync).
    :returns: a :class:`tracker.reconcile.incremental.LiveModel`.
    :raises: nothing.
    """
    from tracker.reconcile.incremental import LiveModel

    model: LiveModelLike = LiveModel(
        store,
        host_name,
        source,
        events,
        clock=clock,
        window=window,
        max_batch=max_batch,
        gap_resync=gap_resync,
    )
    return model


def _event_source(conf: cfg.ConfigOpts, clock: Clock) -> EventSource:
    events_file: str | None = common.arg(conf, "events_file")
    if events_file is not None:
        from tracker.testing.eventfile import JsonLinesEventSource

        return JsonLinesEventSource(Path(events_file), clock)
    from tracker.host.events import PyudevEventSource

    return PyudevEventSource(clock=clock)


def _printer(as_json: bool) -> tuple[Any, Any]:
    def report(batch: BatchReport) -> None:
        if as_json:
            print(json.dumps(batch.as_dict(), sort_keys=True, default=str), flush=True)
        else:
            print(f"{batch.host_name}: {batch.line()}", flush=True)

    def warn(text: str) -> None:
        print(f"warning: {text}", file=sys.stderr, flush=True)

    return report, warn


def run_watch(conf: cfg.ConfigOpts) -> int:
    """Run the watch service until SIGTERM or SIGINT.

    :returns: 0 once stopped by a signal.
    :raises tracker.exceptions.HostAlreadyWatched: another watcher holds the host
        (exit status 7).
    :raises tracker.exceptions.StoreLost: the store stayed unreachable past the
        grace period (exit status 6).
    :raises tracker.exceptions.StoreError: the store cannot be opened.
    :raises tracker.exceptions.HostError: the sysfs tree or the event source
        cannot be read.
    """
    from tracker.cli.discovery import host_name_of
    from tracker.clock import SystemClock
    from tracker.host.sources import open_source
    from tracker.watch import WatchService, WatchSettings

    options = conf.watch
    settings = WatchSettings(
        resync_interval=options.resync_interval,
        grace_period=options.grace_period,
        lease_ttl=options.lease_ttl,
        lease_renew=options.lease_renew,
        wait=bool(common.arg(conf, "wait")),
    )
    host_name = host_name_of(conf)
    clock = SystemClock()
    root = Path(common.arg(conf, "root") or conf.discovery.root)
    source = open_source(conf.discovery.source, root)
    events = _event_source(conf, clock)
    report, warn = _printer(bool(common.arg(conf, "json")))
    with ExitStack() as stack:
        store = stack.enter_context(common.opened_store(conf))
        stack.callback(events.stop)
        model = live_model(
            store,
            host_name,
            source,
            events,
            clock=clock,
            window=options.window,
            max_batch=options.max_batch,
            # The events file numbers only what it holds; netlink's SEQNUM skips
            # the other subsystems' events.
            gap_resync=common.arg(conf, "events_file") is not None,
        )
        service = WatchService(
            store, host_name, model, settings=settings, clock=clock, report=report, warn=warn
        )
        if conf.connections.monitor:
            # the managed storage connections of this host, kept connected in the
            # same process (the monitor has its own view of the events)
            from tracker.cli.connections import build_monitor

            monitor = build_monitor(conf, store, _event_source(conf, clock))
            monitor.start()
            stack.callback(monitor.stop)
        with common.stop_on_signals(service.request_stop, lambda: service.stopping):
            return service.run()
    raise AssertionError("unreachable")  # pragma: no cover
