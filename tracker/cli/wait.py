"""``tracker wait CONDITION ...``: rescan and block until the host sees (or stops seeing) storage.

One sub-command per predicate of :mod:`tracker.predicates`; each builds the
predicate from its arguments and calls
:meth:`StorageModel.rescan_and_wait_for <tracker.waiting.model.StorageModel.rescan_and_wait_for>`
on this host's model (the store, host name and root of the configuration,
``--host-name`` / ``--root`` to override them).

Exit statuses: 0 the condition holds (one line, or one JSON object with
``--json``), 124 the timeout passed first (as ``timeout(1)``; the line says the
last state seen), 1 an error (a bad WWN, the store unreachable ...), 2 bad
arguments. While waiting, a terminal shows one progress line: the time spent,
the events applied, the rescans and the condition's state.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from tracker.cli import common
from tracker.progress import ProgressLine

if TYPE_CHECKING:
    from tracker.waiting.model import WaitProgress
    from tracker.waiting.predicates import Predicate

__all__ = ["register", "run_wait"]

DEFAULT_TIMEOUT = 60.0

#: condition name -> (help, positional arguments (name, metavar, help, type)).
_Argument = tuple[str, str, str, Callable[[str], Any]]


def _lun(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a LUN number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a LUN number: {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of paths: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a number of paths: {text!r} (1 or more)")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


_SERIAL = ("serial", "SERIAL", "the unit serial number (SCSI VPD page 0x80)", str)
_INITIATOR = ("initiator", "INITIATOR", "the host's FC port name (WWPN), any spelling", str)
_TARGET = ("target", "TARGET", "the array's FC port name (WWPN), any spelling", str)
_LUN = ("lun", "LUN", "the LUN number, as the array shows it", _lun)
_VOLUME = ("volume_id", "VOLUME_ID", "a tracked volume's id", str)

#: Each condition once: its help, its arguments and how it becomes a predicate.
CONDITIONS: dict[str, tuple[str, tuple[_Argument, ...], str]] = {
    "disk-exists": (
        "a disk with this serial is usable (a multipath map counts once)",
        (_SERIAL,),
        "DiskExists",
    ),
    "disk-not-exists": (
        "no device with this serial is left, in any state",
        (_SERIAL,),
        "DiskNotExists",
    ),
    "fc-mapping-exists": (
        "the LUN is mapped (running) from the initiator port to the target port",
        (_INITIATOR, _TARGET, _LUN),
        "FiberChannelMappingExists",
    ),
    "fc-mapping-not-exists": (
        "no device is left at the LUN behind the initiator and target ports",
        (_INITIATOR, _TARGET, _LUN),
        "FiberChannelMappingNotExists",
    ),
    "iscsi-session": (
        "an iSCSI session to the target is logged in with its connection up",
        (("target", "TARGET", "the target's IQN", str),),
        "IscsiSessionExists",
    ),
    "paths-at-least": (
        "the multipath map of a unit has at least N active paths",
        (
            ("id", "ID", "the map's WWID or its paths' unit serial", str),
            ("n", "N", "the number of active paths", _count),
        ),
        "MultipathPathsAtLeast",
    ),
    "volume-attached": (
        "a disk of the tracked volume is usable on this host",
        (_VOLUME,),
        "VolumeAttached",
    ),
    "volume-detached": (
        "no device of the tracked volume is left on this host",
        (_VOLUME,),
        "VolumeDetached",
    ),
}


def register(subparsers: Any) -> None:
    """Add ``tracker wait`` and its conditions.

    :returns: nothing.
    """
    parser = subparsers.add_parser(
        "wait",
        help="rescan and wait until this host sees (or stops seeing) storage",
        description=(
            "Rescan (targeted when the condition names an FC or iSCSI target), then "
            "wait, event-driven, until the condition holds on this host's reconciled "
            "model. Exits 0 when it holds, 124 when --timeout passes first, 1 on an "
            "error."
        ),
    )
    conditions = parser.add_subparsers(dest="condition", metavar="CONDITION", title="conditions")
    conditions.required = True
    for name, (summary, arguments, _class) in CONDITIONS.items():
        leaf = common.add_command(conditions, name, run_wait, help=summary)
        for dest, metavar, text, kind in arguments:
            leaf.add_argument(dest, metavar=metavar, type=kind, help=text)
        if name == "iscsi-session":
            leaf.add_argument(
                "--portal",
                metavar="ADDRESS[:PORT]",
                default=None,
                help="only a session through this portal (port 3260 by default)",
            )
        _add_wait_options(leaf)


def _add_wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        help=f"give up after S seconds (exit 124); default {DEFAULT_TIMEOUT:g}",
    )
    parser.add_argument(
        "--no-rescan",
        dest="no_rescan",
        action="store_true",
        default=False,
        help="write no scan request: only wait for what the kernel announces",
    )
    parser.add_argument(
        "--root",
        metavar="DIR",
        default=None,
        help="directory holding the sys/ tree; overrides [discovery] root",
    )
    parser.add_argument(
        "--host-name",
        metavar="NAME",
        default=None,
        help="the host's name in the store; overrides [discovery] host_name",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--poll",
        action="store_true",
        default=False,
        help="poll sysfs every [waiting] poll_interval seconds instead of udev's events",
    )
    source.add_argument(
        "--events-file",
        metavar="PATH",
        default=None,
        help=(
            "testing aid: read device events from a JSON-lines file that is appended "
            "to, instead of udev's netlink monitor (as tracker watch --events-file)"
        ),
    )
    common.add_json(parser)


def predicate_of(conf: cfg.ConfigOpts) -> Predicate:
    """Build the predicate of the chosen condition from its arguments.

    :returns: the predicate.
    :raises tracker.exceptions.InvalidInput: an argument the predicate refuses
        (a WWN that is not 16 hex digits ...).
    """
    from tracker import predicates

    _summary, arguments, class_name = CONDITIONS[common.arg(conf, "condition")]
    values = [common.arg(conf, dest) for dest, *_rest in arguments]
    factory = getattr(predicates, class_name)
    if class_name == "IscsiSessionExists":
        built: Predicate = factory(*values, portal=common.arg(conf, "portal"))
    else:
        built = factory(*values)
    return built


class _WaitLine(ProgressLine):
    """The progress line of a wait: time, events, rescans and the condition's state."""

    def __init__(self) -> None:
        super().__init__("waiting", interval=0.1)
        self.text = ""

    def format(self, done: int, total: int | None = None) -> str:
        """:returns: the line."""
        return self.text

    def show(self, progress: WaitProgress) -> None:
        """The ``progress`` callback of ``rescan_and_wait_for``.

        :returns: nothing.
        """
        mode = ", polling" if progress.polling else ""
        self.text = (
            f"waiting {progress.elapsed:.1f} s for {progress.predicate!r}: "
            f"{common.plural(progress.events, 'event')}, "
            f"{common.plural(progress.rescans, 'rescan')}{mode}; {progress.state}"
        )
        width = 160
        if len(self.text) > width:
            self.text = self.text[: width - 3] + "..."
        self.update(0)


def run_wait(conf: cfg.ConfigOpts) -> int:
    """Wait for the chosen condition.

    :returns: 0 once it holds.
    :raises tracker.exceptions.WaitTimeout: the timeout passed first (exit 124).
    :raises tracker.exceptions.InvalidInput: a bad argument.
    :raises tracker.exceptions.StoreError: the store cannot be opened or written.
    :raises tracker.exceptions.HostError: the sysfs tree cannot be read.
    """
    from tracker.cli.discovery import host_name_of, rescan_executor
    from tracker.host.rescan import Rescanner
    from tracker.host.sources import open_source
    from tracker.waiting.model import UDEV, StorageModel, WaitSettings

    predicate = predicate_of(conf)
    root = Path(common.arg(conf, "root") or conf.discovery.root)
    source = open_source(conf.discovery.source, root)
    events_file: str | None = common.arg(conf, "events_file")
    events: Any = UDEV
    if events_file is not None:
        from tracker.testing.eventfile import JsonLinesEventSource

        events = JsonLinesEventSource(Path(events_file))
    elif common.arg(conf, "poll"):
        events = None
    as_json = bool(common.arg(conf, "json"))
    line = _WaitLine()
    with common.opened_store(conf) as store, line:
        model = StorageModel(
            store,
            host_name=host_name_of(conf),
            source=source,
            events=events,
            rescanner=Rescanner(root, rescan_executor()),
            settings=WaitSettings.from_config(conf),
            gap_resync=events_file is not None,
        )
        try:
            result = model.rescan_and_wait_for(
                predicate,
                timeout=common.arg(conf, "timeout"),
                rescan=not common.arg(conf, "no_rescan"),
                progress=line.show,
            )
        finally:
            model.close()
    if as_json:
        print(json.dumps(result.as_dict(), sort_keys=True))
    else:
        print(
            f"{result.predicate!r} holds after {result.elapsed:.2f} s "
            f"({common.plural(result.events, 'event')}, "
            f"{common.plural(result.rescans, 'rescan')}): {result.state}"
        )
    return 0
