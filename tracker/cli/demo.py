"""``tracker demo``: the narrated tour on a throw-away store (see :mod:`tracker.demo`)."""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from tracker.cli import common


def register(subparsers: Any) -> None:
    """Add ``tracker demo``.

    :returns: nothing.
    """
    parser = common.add_command(
        subparsers,
        "demo",
        run_demo,
        help="a narrated tour of tracker on a throw-away SQLite store",
        description=(
            "Track a backend with volumes, snapshots and connections in a throw-away "
            "SQLite store, and show lazy loading, refresh() after a change made by "
            "another process, local_attach across refresh and restart, and the status "
            "tree. The configured store is not used."
        ),
        uses_store=False,
    )
    parser.add_argument(
        "--keep", action="store_true", default=False, help="keep the store afterwards"
    )
    parser.add_argument(
        "--workdir",
        metavar="DIR",
        default=None,
        help="create the store's temporary directory in DIR (default: the system's)",
    )


def run_demo(conf: cfg.ConfigOpts) -> int:
    """Run the demo, narrating on standard output.

    :returns: 0.
    :raises tracker.exceptions.TrackerError: a step failed.
    :raises OSError: the working directory cannot be created.
    """
    from tracker import demo

    demo.run(workdir=common.arg(conf, "workdir"), keep=bool(common.arg(conf, "keep")))
    return 0
