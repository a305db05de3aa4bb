"""``tracker status``: the tracked tree of the store."""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from tracker import exceptions
from tracker.cli import common


def register(subparsers: Any) -> None:
    """Add ``tracker status``.

    :returns: nothing.
    """
    parser = common.add_command(
        subparsers,
        "status",
        run_status,
        help="show the tracked backends, volumes, snapshots and connections",
        description=(
            "Show the status tree of the store: every backend with its volumes (their "
            "WWN and serial), and their snapshots, connections and where reconciled hosts "
            "see them (one line per host: the multipath map and the paths with their SCSI "
            "state), read in six queries whatever the number of records and hosts."
        ),
    )
    parser.add_argument(
        "--backend",
        action="append",
        metavar="NAME",
        default=None,
        help="only this backend (volume_backend_name); may be repeated",
    )
    common.add_json(parser)


def run_status(conf: cfg.ConfigOpts) -> int:
    """Print the status tree.

    :returns: 0.
    :raises tracker.exceptions.NotFound: a backend asked for is not stored.
    :raises tracker.exceptions.StoreError: the store cannot be opened or read.
    """
    from tracker import report

    names: list[str] | None = common.arg(conf, "backend")
    with common.opened_store(conf, create=False) as store:
        status = report.collect(store, names)
    if names:
        missing = sorted(set(names) - {backend.name for backend in status.backends})
        if missing:
            raise exceptions.NotFound("backend", missing[0])
    if common.arg(conf, "json"):
        print(status.to_json())
    else:
        print(status.render())
    return 0
