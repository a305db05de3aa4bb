"""``tracker discover``, ``tracker host show|capture`` and ``tracker journal``.

The command-line side of host discovery: scan this host's sysfs (or a testbed
or a capture), turn the records into a :class:`~tracker.discovery.model.HostState`,
reconcile it into the store, and read back what the store holds about a host.

The host a command is about is ``--host-name``, else ``[discovery] host_name``,
else the name the kernel reports (:func:`tracker.opts.default_host_name`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tarfile
import tempfile
import zlib
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from tracker import exceptions, opts
from tracker.cli import common
from tracker.host.capture import DEFAULT_MAX_BYTES, DEFAULT_MAX_SECONDS
from tracker.hotpath import paused_gc
from tracker.progress import ProgressLine

if TYPE_CHECKING:
    # Imported by the handlers that use them: the parser and ``--help`` must
    # not load SQLAlchemy (reconcile), pyudev or the discovery code.
    from tracker.discovery.model import DiscoveryWarning
    from tracker.host.executor import CommandExecutor
    from tracker.host.sources import DeviceSource
    from tracker.reconcile import JournalRecord

#: What a reconcile's ``progress(phase, ...)`` phases are shown as.
_PHASE_LABELS = {"compare": "reconciling compare", "write": "writing"}
#: Columns of observed rows that ``tracker host show --json`` leaves out.
_INTERNAL_COLUMNS = frozenset({"digest"})
#: Observed kinds that may be linked to a tracked volume.
_LINKED_KINDS = ("scsi_device", "multipath_map")


def register(subparsers: Any) -> None:
    """Add ``tracker discover``, ``tracker host`` and ``tracker journal``.

    :returns: nothing.
    """
    _register_discover(subparsers)
    _register_host(subparsers)
    _register_journal(subparsers)


def _add_host_name(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--host-name", metavar="NAME", default=None, help=help)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _register_discover(subparsers: Any) -> None:
    parser = common.add_command(
        subparsers,
        "discover",
        run_discover,
        help="scan this host's SCSI, FC, iSCSI and multipath state into the store",
        description=(
            "Scan the host (the [discovery] source below [discovery] root, or a "
            "capture), discover its SCSI hosts, FC remote ports, iSCSI sessions, LUNs "
            "and multipath maps, and reconcile them into the store: only the "
            "differences are written, and each is journaled. Prints every change and "
            "a summary line."
        ),
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--from",
        dest="from_capture",
        metavar="CAPTURE",
        default=None,
        help="replay a capture written by `tracker host capture` instead of scanning",
    )
    where.add_argument(
        "--root",
        metavar="DIR",
        default=None,
        help="directory holding the sys/ tree to scan; overrides [discovery] root",
    )
    _add_host_name(parser, "store the state under this host name; overrides [discovery] host_name")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=False,
        help="report what would change, write nothing",
    )
    parser.add_argument(
        "--rescan",
        action="store_true",
        default=False,
        help=(
            "first ask every SCSI host below the root to scan for new LUNs (and run "
            "`iscsiadm -m session --rescan` when iSCSI sessions exist); never deletes a device"
        ),
    )
    common.add_json(parser)


def rescan_executor() -> CommandExecutor:
    """Build the executor ``tracker discover --rescan`` runs ``iscsiadm`` with.

    :returns: a :class:`~tracker.host.executor.SubprocessExecutor` (tests replace
        this factory).
    :raises: nothing.
    """
    from tracker.host.executor import SubprocessExecutor

    return SubprocessExecutor()


def _rescan(conf: cfg.ConfigOpts) -> None:
    if common.arg(conf, "from_capture") is not None:
        raise common.CommandError("--rescan cannot be used with --from: a capture cannot rescan")
    from tracker.host.rescan import Rescanner

    root = Path(common.arg(conf, "root") or conf.discovery.root)
    Rescanner(root, rescan_executor()).scan_all()


def _register_host(subparsers: Any) -> None:
    host = subparsers.add_parser(
        "host",
        help="show a host's reconciled storage, or capture this host's sysfs",
        description="Read what the store holds about a host, or capture its sysfs tree.",
    )
    actions = host.add_subparsers(dest="host_action", metavar="ACTION", title="host actions")
    actions.required = True
    show = common.add_command(
        actions,
        "show",
        run_host_show,
        help="show the reconciled host model as a tree",
        description=(
            "Show the host's reconciled model: each SCSI host, its FC remote ports or "
            "iSCSI sessions, their LUNs and the LUNs' multipath maps, with the tracked "
            "volume a LUN is linked to."
        ),
    )
    _add_host_name(show, "the host to show; [discovery] host_name by default")
    common.add_json(show)
    grab = common.add_command(
        actions,
        "capture",
        run_host_capture,
        help="capture the storage part of this host's sysfs into a .tar.gz",
        description=(
            "Record the storage-relevant part of <root>/sys (what discovery reads) "
            "into FILE, bounded in size and time; `tracker discover --from FILE` "
            "replays it. The store is not used."
        ),
        uses_store=False,
    )
    grab.add_argument("file", metavar="FILE", help="the .tar.gz to write (replaced whole)")
    grab.add_argument(
        "--root",
        metavar="DIR",
        default=None,
        help="directory holding the sys/ tree; [discovery] root (/) by default",
    )
    grab.add_argument(
        "--max-bytes",
        metavar="N",
        type=_positive_int,
        default=DEFAULT_MAX_BYTES,
        help=f"give up past N bytes of payload (default {DEFAULT_MAX_BYTES})",
    )
    grab.add_argument(
        "--max-seconds",
        metavar="S",
        type=_positive_float,
        default=DEFAULT_MAX_SECONDS,
        help=f"give up after S seconds (default {DEFAULT_MAX_SECONDS:g})",
    )
    common.add_json(grab)


def _register_journal(subparsers: Any) -> None:
    parser = common.add_command(
        subparsers,
        "journal",
        run_journal,
        help="list the newest discovery journal entries",
        description=(
            "List what reconciles found appearing, changing and vanishing, newest "
            "entry last, for every host or one."
        ),
    )
    _add_host_name(parser, "only this host's entries (every host's by default)")
    parser.add_argument(
        "--limit",
        metavar="N",
        type=_positive_int,
        default=100,
        help="at most the newest N entries (default 100)",
    )
    common.add_json(parser)


# --- shared ----------------------------------------------------------------------


def host_name_of(conf: cfg.ConfigOpts) -> str:
    """Find the host a command is about.

    :returns: ``--host-name``, else ``[discovery] host_name``, else this host's name.
    :raises oslo_config.cfg.Error: ``[discovery] host_name`` is not a valid host name.
    """
    given: str | None = common.arg(conf, "host_name")
    if given:
        return given
    configured: str | None = conf.discovery.host_name
    return configured or opts.default_host_name()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _timestamp(value: dt.datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _size(size_bytes: int | None) -> str:
    if size_bytes is None:
        return "size ?"
    if size_bytes < 1024:
        return f"{size_bytes} B"
    amount = size_bytes / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if amount < 1024:
            return f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"


# --- tracker discover --------------------------------------------------------------


class _PhaseLine(ProgressLine):
    """One progress line whose label follows the phase of discovery."""

    def __init__(self) -> None:
        super().__init__("scanning", interval=0.0)
        self.unit = ""
        self.counted = True

    def format(self, done: int, total: int | None = None) -> str:
        """:returns: the line, with the unit counted (``scanning: 42 records``), or
        the label alone (``scanning ...``) while nothing is counted.
        """
        if not self.counted:
            return f"{self.label} ..."
        text = super().format(done, total)
        return f"{text} {self.unit}" if self.unit else text

    def phase(
        self, label: str, done: int | None = None, total: int | None = None, unit: str = ""
    ) -> None:
        """Show that ``label`` has reached ``done`` of ``total`` (or just started).

        :param done: units finished; ``None`` shows the label alone.
        :returns: nothing.
        """
        self.label = label
        self.unit = unit
        self.counted = done is not None
        self.update(done or 0, total)

    def reconcile_progress(self, phase: str, done: int, total: int) -> None:
        """The ``progress`` callback of :func:`tracker.reconcile.reconcile`.

        :returns: nothing.
        """
        self.phase(_PHASE_LABELS.get(phase, phase), done, total)


@contextmanager
def _capture_source(path: str) -> Iterator[DeviceSource]:
    """Unpack a capture into a temporary directory, removed afterwards."""
    from tracker.host.capture import open_capture

    with tempfile.TemporaryDirectory(prefix="tracker-capture-") as directory:
        try:
            source = open_capture(Path(path), Path(directory))
        except exceptions.SysfsRootMissing as exc:
            raise common.CommandError(f"{path} is not a sysfs capture (no sys/ in it)") from exc
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise common.CommandError(f"{path} is not a readable capture: {detail}") from exc
        except OSError as exc:
            raise common.CommandError(f"cannot read {path}: {exc.strerror or exc}") from exc
        yield source


@contextmanager
def _scan_source(conf: cfg.ConfigOpts) -> Iterator[tuple[DeviceSource, str]]:
    capture_file: str | None = common.arg(conf, "from_capture")
    if capture_file is not None:
        with _capture_source(capture_file) as source:
            yield source, f"capture {capture_file}"
        return
    from tracker.host.sources import open_source

    kind: str = conf.discovery.source
    root = Path(common.arg(conf, "root") or conf.discovery.root)
    yield open_source(kind, root), f"{kind} {root}"


def _warning_dict(warning: DiscoveryWarning) -> dict[str, str]:
    return {"sys_path": warning.sys_path, "code": warning.code.value, "detail": warning.detail}


def run_discover(conf: cfg.ConfigOpts) -> int:
    """Scan, discover and reconcile; print the changes and a summary.

    A scan that finds no SCSI host at all says so in a line of its own (and
    ``"no_scsi_hosts": true`` with ``--json``); it still succeeds.

    :returns: 0.
    :raises tracker.exceptions.HostError: the host or capture cannot be read
        (an unsafe capture, no sysfs tree under the root ...).
    :raises tracker.exceptions.InvalidInput: the pyudev source with a root other
        than ``/``, or an unusable host name.
    :raises tracker.exceptions.StoreError: the store cannot be opened or written.
    :raises tracker.cli.common.CommandError: the capture file is not readable, or
        ``--rescan`` with ``--from``.
    :raises tracker.exceptions.RescanFailed: ``--rescan`` could not write a scan
        file (nothing was discovered or written).
    """
    from tracker.discovery.discover import discover
    from tracker.reconcile import reconcile

    host_name = host_name_of(conf)
    dry_run = bool(common.arg(conf, "dry_run"))
    retention = dt.timedelta(days=conf.discovery.journal_retention_days)
    progress = _PhaseLine()
    # Scan, discovery and reconcile allocate a large host's model at once: the
    # cyclic collector would walk it again and again for nothing (tracker.hotpath).
    with progress, paused_gc():
        if common.arg(conf, "rescan"):
            progress.phase("rescanning")
            _rescan(conf)
        with _scan_source(conf) as (source, described):
            progress.phase("scanning")
            records = source.scan()
            progress.phase("scanning", len(records), unit="records")
        progress.phase("discovering", len(records), unit="records")
        state = discover(records, host_name)
        # A dry run only compares: it creates no store.
        with common.opened_store(conf, create=not dry_run) as store:
            result = reconcile(
                store,
                state,
                dry_run=dry_run,
                journal_retention=retention,
                progress=progress.reconcile_progress,
            )
    # A host without any SCSI host (a VM with virtio-blk disks only, a tree
    # without scsi_host devices) is said so, not shown as a silent empty result.
    no_scsi = not state.scsi_hosts
    if common.arg(conf, "json"):
        common.print_json(
            {
                **result.as_dict(),
                "source": described,
                "no_scsi_hosts": no_scsi,
                "warning_count": len(state.warnings),
                "warnings": [_warning_dict(w) for w in state.warnings],
            }
        )
        return 0
    for change in result.changes:
        print(str(change))
    for ambiguous in result.ambiguous:
        print(
            f"ambiguous volume {ambiguous.volume_id}: matches {', '.join(ambiguous.wwids)}; "
            "not linked"
        )
    print(result.summary)
    if no_scsi:
        print(
            f"no SCSI hosts found ({described}): nothing to discover here "
            "(no FC, iSCSI, SAS or other SCSI adapter)"
        )
    if state.warnings:
        print(f"{common.plural(len(state.warnings), 'discovery warning')}:")
        for warning in state.warnings:
            print(f"  {warning.code.value}: {warning}")
    return 0


# --- tracker host show ---------------------------------------------------------------


def run_host_show(conf: cfg.ConfigOpts) -> int:
    """Print the reconciled model of a host as a tree (or JSON).

    :returns: 0.
    :raises tracker.exceptions.HostNotDiscovered: the host never reconciled into
        the store; its message suggests ``tracker discover`` and the command
        exits with status 5.
    :raises tracker.exceptions.StoreError: the store cannot be opened or read.
    """
    from dataclasses import asdict

    from tracker.db import observed

    host_name = host_name_of(conf)
    with common.opened_store(conf, create=False) as store:
        try:
            view = observed.host_view(store, host_name)
        except exceptions.NotFound as exc:
            raise exceptions.HostNotDiscovered(host_name) from exc
    host = {
        "generation": view.host.generation,
        "changed_at": view.host.changed_at,
        "warnings": list(view.host.warnings),
    }
    rows = {kind: [asdict(r) for r in records] for kind, records in view.kinds().items()}
    for kind in _LINKED_KINDS:
        for row in rows[kind]:
            volume_id = row["volume_id"]
            row["volume_name"] = None if volume_id is None else view.volume_names.get(volume_id)
    if common.arg(conf, "json"):
        common.print_json(
            _jsonable(
                {
                    "host_name": host_name,
                    **host,
                    "observed": {
                        kind: [
                            {k: v for k, v in row.items() if k not in _INTERNAL_COLUMNS}
                            for row in kind_rows
                        ]
                        for kind, kind_rows in rows.items()
                    },
                }
            )
        )
    else:
        print("\n".join(render_host(host_name, host, rows)))
    return 0


def _volume_text(row: Mapping[str, Any]) -> str:
    if row.get("volume_id") is None:
        return ""
    name = row.get("volume_name")
    shown = repr(name) if name is not None else "(unnamed)"
    return f" -> volume {shown} ({row['volume_id']})"


def _scsi_host_line(row: Mapping[str, Any]) -> str:
    parts = [f"host{row['number']} {row['transport']}"]
    if row["driver"]:
        parts[0] += f" ({row['driver']})"
    if row["wwpn"]:
        parts.append(f"WWPN {row['wwpn']}")
    if row["iscsi_initiator_name"]:
        parts.append(f"initiator {row['iscsi_initiator_name']}")
    parts.append(row["state"] or "state ?")
    if row["port_state"]:
        speed = f" {row['speed']}" if row["speed"] else ""
        parts.append(f"port {row['port_state']}{speed}")
    return ", ".join(parts)


def _lun_line(row: Mapping[str, Any], with_volume: bool) -> str:
    product = " ".join(p for p in (row["vendor"], row["model"]) if p) or "unknown device"
    parts = [
        f"LUN {row['hctl']} {product}",
        row["state"] or "state ?",
        row["block_name"] or "no block device",
        _size(row["size_bytes"]),
        f"WWID {row['wwid']}" if row["wwid"] else "no WWID",
    ]
    return ", ".join(parts) + (_volume_text(row) if with_volume else "")


def _map_line(row: Mapping[str, Any]) -> str:
    paths: Sequence[Mapping[str, Any]] = row["paths"] or ()
    active = sum(1 for p in paths if p.get("state") == "active")
    name = row["name"] or row["wwid"]
    return (
        f"multipath {name} ({row['block_name']}), "
        f"{common.plural(len(paths), 'path')} ({active} active)" + _volume_text(row)
    )


def render_host(
    host_name: str, host: Mapping[str, Any], rows: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[str]:
    """Render a host's observed rows as an indented tree.

    SCSI host -> FC remote port or iSCSI session -> LUN -> multipath map; LUNs
    reached through neither (SAS, or a target the store has no row for) hang
    from their SCSI host, and maps whose paths are all gone come last.

    :param host_name: the host.
    :param host: its ``generation``, ``changed_at`` and stored ``warnings``.
    :param rows: kind -> observed rows, as :func:`tracker.reconcile.observed`
        returns them, with ``volume_name`` on device and map rows.
    :returns: the lines.
    """
    maps_by_hctl: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    maps_by_wwid = {m["wwid"]: m for m in rows["multipath_map"]}
    for mpath in rows["multipath_map"]:
        for path in mpath["paths"] or ():
            if path.get("hctl"):
                maps_by_hctl[path["hctl"]].append(mpath)
    shown_maps: set[str] = set()

    rport_of = {(r["scsi_host"], r["wwpn"]): r for r in rows["fc_remote_port"]}
    session_of = {(s["scsi_host"], s["target_iqn"], s["portal"]): s for s in rows["iscsi_session"]}
    under: dict[tuple[str, Any], list[Mapping[str, Any]]] = defaultdict(list)
    direct: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for device in rows["scsi_device"]:
        key_fc = (device["scsi_host"], device["target_wwpn"])
        key_iscsi = (device["scsi_host"], device["target_iqn"], device["target_portal"])
        if device["transport"] == "fc" and key_fc in rport_of:
            under[("fc", key_fc)].append(device)
        elif device["transport"] == "iscsi" and key_iscsi in session_of:
            under[("iscsi", key_iscsi)].append(device)
        else:
            direct[device["scsi_host"]].append(device)

    def luns(devices: Sequence[Mapping[str, Any]], indent: str) -> Iterator[str]:
        for device in devices:
            maps = maps_by_hctl.get(device["hctl"]) or (
                [maps_by_wwid[device["wwid"]]] if device["wwid"] in maps_by_wwid else []
            )
            yield indent + _lun_line(device, with_volume=not maps)
            for mpath in maps:
                shown_maps.add(mpath["wwid"])
                yield indent + "  " + _map_line(mpath)

    counts = ", ".join(
        [
            common.plural(len(rows["scsi_host"]), "SCSI host"),
            common.plural(len(rows["fc_remote_port"]), "FC remote port"),
            common.plural(len(rows["iscsi_session"]), "iSCSI session"),
            common.plural(len(rows["scsi_device"]), "LUN path"),
            common.plural(len(rows["multipath_map"]), "multipath map"),
        ]
    )
    lines = [
        f"Host {host_name}: {counts}",
        f"  reconciled {_timestamp(host.get('changed_at'))}, generation {host.get('generation')}",
    ]
    numbers = sorted(
        {r["number"] for r in rows["scsi_host"]}
        | {r["scsi_host"] for r in rows["fc_remote_port"]}
        | {s["scsi_host"] for s in rows["iscsi_session"] if s["scsi_host"] is not None}
        | set(direct)
    )
    hosts = {r["number"]: r for r in rows["scsi_host"]}
    for number in numbers:
        row = hosts.get(number)
        lines.append(_scsi_host_line(row) if row else f"host{number} (no SCSI host row)")
        for rport in (r for r in rows["fc_remote_port"] if r["scsi_host"] == number):
            roles = f" [{rport['roles']}]" if rport["roles"] else ""
            lines.append(
                f"  FC remote port {rport['port_key']} (rport-{number}:{rport['channel']}-"
                f"{rport['number']}), {rport['port_state'] or 'state ?'}{roles}"
            )
            lines.extend(luns(under.get(("fc", (number, rport["wwpn"])), []), "    "))
        for session in (s for s in rows["iscsi_session"] if s["scsi_host"] == number):
            iface = f" via {session['iface']}" if session["iface"] else ""
            lines.append(
                f"  iSCSI session {session['session_id']}: {session['target_iqn']} @ "
                f"{session['portal']}{iface}, {session['state'] or 'state ?'}"
            )
            key = (number, session["target_iqn"], session["portal"])
            lines.extend(luns(under.get(("iscsi", key), []), "    "))
        lines.extend(luns(direct.get(number, []), "  "))
    for session in (s for s in rows["iscsi_session"] if s["scsi_host"] is None):
        lines.append(
            f"iSCSI session {session['session_id']} (no SCSI host): {session['target_iqn']} "
            f"@ {session['portal']}, {session['state'] or 'state ?'}"
        )
    orphans = [m for m in rows["multipath_map"] if m["wwid"] not in shown_maps]
    if orphans:
        lines.append("multipath maps without a present path:")
        lines.extend("  " + _map_line(m) for m in orphans)
    warnings: Sequence[str] = host.get("warnings") or ()
    if warnings:
        lines.append(f"{common.plural(len(warnings), 'discovery warning')}:")
        lines.extend(f"  {w}" for w in warnings)
    return lines


# --- tracker host capture --------------------------------------------------------------


def run_host_capture(conf: cfg.ConfigOpts) -> int:
    """Capture the storage part of ``<root>/sys`` into the file.

    :returns: 0.
    :raises tracker.exceptions.SysfsRootMissing: the root has no ``sys/``.
    :raises tracker.exceptions.CaptureLimitExceeded: a bound was hit; no file is left.
    :raises tracker.cli.common.CommandError: the file cannot be written.
    """
    from tracker.host.capture import capture

    root = Path(common.arg(conf, "root") or conf.discovery.root)
    out: str = common.arg(conf, "file")
    try:
        summary = capture(
            root,
            Path(out),
            max_bytes=common.arg(conf, "max_bytes"),
            max_seconds=common.arg(conf, "max_seconds"),
        )
    except OSError as exc:
        raise common.CommandError(f"cannot write {out}: {exc.strerror or exc}") from exc
    if common.arg(conf, "json"):
        common.print_json(
            {
                "path": str(summary.path),
                "root": str(root),
                "devices": summary.devices,
                "files": summary.members,
                "bytes": summary.payload_bytes,
                "seconds": round(summary.seconds, 3),
            }
        )
    else:
        print(
            f"captured {common.plural(summary.devices, 'device')} from {root / 'sys'} into "
            f"{out}: {common.plural(summary.members, 'file')}, "
            f"{common.plural(summary.payload_bytes, 'byte')}, {summary.seconds:.2f} s"
        )
    return 0


# --- tracker journal ------------------------------------------------------------------


def _detail_text(detail: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{name}: {change.get('before')!r} -> {change.get('after')!r}"
        if isinstance(change, Mapping)
        else f"{name}: {change!r}"
        for name, change in detail.items()
    )


def _entry_dict(entry: JournalRecord) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "host_name": entry.host_name,
        "event": entry.event,
        "kind": entry.kind,
        "key": entry.key,
        "detail": _jsonable(dict(entry.detail or {})),
    }


def run_journal(conf: cfg.ConfigOpts) -> int:
    """Print the newest journal entries, newest last.

    :returns: 0.
    :raises tracker.exceptions.StoreError: the store cannot be opened or read.
    """
    from tracker.db.observed import journal

    host_name: str | None = common.arg(conf, "host_name")
    limit: int = common.arg(conf, "limit")
    with common.opened_store(conf, create=False) as store:
        entries = journal(store, host_name, limit)
    if common.arg(conf, "json"):
        common.print_json({"host_name": host_name, "entries": [_entry_dict(e) for e in entries]})
        return 0
    if not entries:
        print("no journal entries" + (f" for {host_name}" if host_name else ""))
    for entry in entries:
        detail = _detail_text(entry.detail or {})
        print(
            f"{_timestamp(entry.at)} {entry.host_name} {entry.event:9} {entry.kind} {entry.key}"
            + (f" ({detail})" if detail else "")
        )
    return 0
