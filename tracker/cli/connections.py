"""``tracker connections manage|unmanage|list|monitor``: managed storage connections.

* ``manage URI ID [--option K=V ...] [--secret-file PATH]`` registers a
  connection for this host (it returns at once; the monitor connects it);
* ``unmanage ID`` stops managing it, disconnecting the target when no other
  managed id of this host names it (and tracker made the connection);
* ``list`` shows the managed connections and those present that nobody
  manages (temporary ids); read-only: it creates nothing;
* ``monitor`` keeps the managed connections connected, in the foreground,
  until SIGTERM or SIGINT (exit 0).

Exit statuses: 0 success, 1 an error (a malformed URI, an id in use or
unknown, the store unreachable), 2 bad arguments, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from tracker.cli import common

if TYPE_CHECKING:
    from tracker.connections.manager import StorageConnectionManager
    from tracker.connections.monitor import ConnectionMonitor
    from tracker.db.store import Store
    from tracker.host.executor import CommandExecutor

__all__ = ["build_monitor", "connection_executor", "manager_of", "register"]


def connection_executor() -> CommandExecutor:
    """Build the executor ``iscsiadm``, ``mount`` and ``umount`` run with.

    :returns: a :class:`~tracker.host.executor.SubprocessExecutor` (tests
        replace this factory).
    :raises: nothing.
    """
    from tracker.host.executor import SubprocessExecutor

    return SubprocessExecutor()


def _option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"not KEY=VALUE: {text!r}")
    return key.strip(), value.strip()


def _add_host(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host-name",
        metavar="NAME",
        default=None,
        help="this host's name in the store; [discovery] host_name by default",
    )
    parser.add_argument(
        "--root",
        metavar="DIR",
        default=None,
        help="directory holding sys/ and proc/ (the mount table); [discovery] root by default",
    )


def register(subparsers: Any) -> None:
    """Add ``tracker connections`` and its actions.

    :returns: nothing.
    """
    group = subparsers.add_parser(
        "connections",
        help="manage storage connections (iSCSI targets, NFS exports) of this host",
        description=(
            "Managed storage connections: registered per host in the store, kept "
            "connected by the monitor, reconnected with backoff."
        ),
    )
    actions = group.add_subparsers(dest="connections_action", metavar="ACTION", title="actions")
    actions.required = True
    manage = common.add_command(
        actions,
        "manage",
        run_manage,
        help="register a connection for this host (the monitor connects it)",
        description=(
            "Register URI under ID for this host: iscsi://PORTAL[:PORT]/IQN[?lun=..&iface=.."
            "&tpgt=..], iscsi://PORTAL/IQN;portal=TPGT, nfs://SERVER/EXPORT or "
            "nfs://SERVER:/EXPORT (with vers, retrans, timeo, proto). Returns at once."
        ),
    )
    manage.add_argument("uri", metavar="URI", help="the target")
    manage.add_argument("id", metavar="ID", help="your id for it (no '/', at most 255 characters)")
    manage.add_argument(
        "--option",
        metavar="KEY=VALUE",
        type=_option,
        action="append",
        default=[],
        help="a URI option given apart (repeatable)",
    )
    manage.add_argument(
        "--secret-file",
        metavar="PATH",
        default=None,
        help="a file with 'username = ...' and 'password = ...' for CHAP, mode 0600",
    )
    _add_host(manage)
    common.add_json(manage)
    unmanage = common.add_command(
        actions,
        "unmanage",
        run_unmanage,
        help="stop managing a connection (disconnect it if nothing else needs it)",
    )
    unmanage.add_argument("id", metavar="ID", help="the managed id")
    _add_host(unmanage)
    common.add_json(unmanage)
    listing = common.add_command(
        actions,
        "list",
        run_list,
        help="list managed connections, and those present that nobody manages",
    )
    _add_host(listing)
    common.add_json(listing)
    monitor = common.add_command(
        actions,
        "monitor",
        run_monitor,
        help="keep the managed connections connected, in the foreground",
        description=(
            "Apply device events, check every connection every [connections] "
            "check_interval seconds and reconnect with backoff, until SIGTERM or SIGINT."
        ),
    )
    _add_host(monitor)
    monitor.add_argument(
        "--events-file",
        metavar="PATH",
        default=None,
        help="testing aid: device events from a JSON-lines file instead of udev's monitor",
    )


def _root(conf: cfg.ConfigOpts) -> Path:
    return Path(common.arg(conf, "root") or conf.discovery.root)


def manager_of(conf: cfg.ConfigOpts, store: Store) -> StorageConnectionManager:
    """Build the manager of this host from the command line and configuration.

    :returns: the manager.
    :raises tracker.exceptions.InvalidInput: a bad host name.
    """
    from tracker.cli.discovery import host_name_of
    from tracker.connections.manager import StorageConnectionManager

    options = conf.connections
    return StorageConnectionManager(
        store,
        host_name=host_name_of(conf),
        executor=connection_executor(),
        root=_root(conf),
        mount_base=Path(options.mount_base),
        command_timeout=options.command_timeout,
    )


def _info(info: Any) -> str:
    if info.get("type") == "iscsi":
        return f"iscsi {info.get('target')} @ {info.get('portal')}"
    return f"nfs {info.get('server')}:{info.get('export')}"


def run_manage(conf: cfg.ConfigOpts) -> int:
    """Register a connection.

    :returns: 0.
    :raises tracker.exceptions.TrackerError: a bad URI, id or option, the id in
        use, the secret file refused, the store unusable.
    """
    options = dict(common.arg(conf, "option") or [])
    secret_file = common.arg(conf, "secret_file")
    if secret_file is not None:
        options["secret_file"] = str(Path(secret_file).absolute())
    with common.opened_store(conf) as store:
        record = manager_of(conf, store).manage_storage_connection(
            common.arg(conf, "uri"), common.arg(conf, "id"), options=options
        )
    if common.arg(conf, "json"):
        common.print_json({record.id: record.as_dict()})
    else:
        print(f"managing {record.id}: {_info(record.connection_info)} ({record.state})")
    return 0


def run_unmanage(conf: cfg.ConfigOpts) -> int:
    """Stop managing a connection.

    :returns: 0 (also when the disconnect failed: it is reported).
    :raises tracker.exceptions.StorageConnectionNotFound: the id is not managed.
    :raises tracker.exceptions.StoreError: the store cannot be opened or written.
    """
    with common.opened_store(conf, create=False) as store:
        result = manager_of(conf, store).unmanage_storage_connection(common.arg(conf, "id"))
    if common.arg(conf, "json"):
        common.print_json(
            {
                "id": result.connection_id,
                "disconnected": result.disconnected,
                "keptFor": list(result.kept_for),
                "error": None if result.error is None else result.error.as_dict(),
                "reason": result.reason,
            }
        )
        return 0
    if result.disconnected:
        print(f"unmanaged {result.connection_id}; disconnected")
    elif result.error is not None:
        print(
            f"unmanaged {result.connection_id}; the disconnect failed: "
            f"{result.error.message} ({result.error.code})"
        )
    elif result.kept_for:
        print(f"unmanaged {result.connection_id}; kept connected for {', '.join(result.kept_for)}")
    else:
        print(f"unmanaged {result.connection_id}; {result.reason}")
    return 0


def run_list(conf: cfg.ConfigOpts) -> int:
    """List the connections.

    :returns: 0.
    :raises tracker.exceptions.StoreError: the store cannot be opened or read.
    """
    with common.opened_store(conf, create=False) as store:
        listing = manager_of(conf, store).get_storage_connection_list()
    if common.arg(conf, "json"):
        common.print_json({key: record.as_dict() for key, record in listing.items()})
        return 0
    if not listing:
        print("no storage connections")
    for key, record in listing.items():
        kind = record.state if record.managed else "unmanaged"
        up = "connected" if record.connected else "not connected"
        line = f"{key}: {_info(record.connection_info)} [{kind}, {up}]"
        if record.last_error is not None:
            line += f" last error {record.last_error.code}: {record.last_error.message}"
        print(line)
    return 0


def build_monitor(conf: cfg.ConfigOpts, store: Store, events: Any) -> ConnectionMonitor:
    """Build the connection monitor of this host from the command line and configuration.

    :param events: the device event source (``UDEV`` for udev's monitor).
    :returns: the monitor, not started.
    :raises tracker.exceptions.InvalidInput: a bad host name or setting.
    """
    from tracker.connections.monitor import ConnectionMonitor, MonitorSettings
    from tracker.host.sources import open_source

    options = conf.connections
    settings = MonitorSettings(
        check_interval=options.check_interval,
        backoff_initial=options.backoff_initial,
        backoff_max=options.backoff_max,
        jitter=options.jitter,
        lease_ttl=options.lease_ttl,
    )
    return ConnectionMonitor(
        manager_of(conf, store),
        source=open_source(conf.discovery.source, _root(conf)),
        events=events,
        settings=settings,
    )


def run_monitor(conf: cfg.ConfigOpts) -> int:
    """Run the connection monitor until SIGTERM or SIGINT.

    :returns: 0 once stopped by a signal.
    :raises tracker.exceptions.TrackerError: the monitor stopped on an error.
    """
    import logging

    from tracker.waiting.model import UDEV

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    events_file: str | None = common.arg(conf, "events_file")
    events: Any = UDEV
    if events_file is not None:
        from tracker.testing.eventfile import JsonLinesEventSource

        events = JsonLinesEventSource(Path(events_file))
    stop = threading.Event()
    with common.opened_store(conf) as store:
        monitor = build_monitor(conf, store, events)
        with common.stop_on_signals(stop.set, stop.is_set):
            monitor.start()
            print(
                f"monitoring the storage connections of {monitor.manager.host_name}",
                file=sys.stderr,
                flush=True,
            )
            try:
                while not stop.wait(0.2):
                    if not monitor.running:
                        break
            finally:
                monitor.stop()
    return 0
