"""oslo.config options of tracker.

:func:`list_opts` is registered under the ``oslo.config.opts`` entry point so
``oslo-config-generator --namespace tracker`` writes
``etc/tracker/tracker.conf.sample``. Nothing here registers options on a
global :class:`~oslo_config.cfg.ConfigOpts`: callers pass the object they own
to :func:`register_opts`.
"""

from __future__ import annotations

import os
from pathlib import Path

from oslo_config import cfg

database_group = cfg.OptGroup(
    "database", title="Metadata store", help="Where tracker keeps its SQL metadata store."
)

database_opts = [
    cfg.StrOpt(
        "connection",
        secret=True,
        sample_default="sqlite:///$XDG_STATE_HOME/tracker/tracker.sqlite",
        help=(
            "SQLAlchemy URL of the metadata store. Unset means the embedded SQLite "
            "file tracker.sqlite in the per-user state directory "
            "($XDG_STATE_HOME/tracker, by default ~/.local/state/tracker). "
            "For deployments use postgresql+psycopg://user@host/db or "
            "mysql+pymysql://user@host/db."
        ),
    ),
    cfg.StrOpt(
        "auto_upgrade",
        default="sqlite",
        choices=[
            ("never", "never migrate; refuse a store whose schema is behind"),
            ("sqlite", "migrate SQLite stores (the embedded default) automatically"),
            ("always", "migrate any store automatically when it is opened"),
        ],
        help=(
            "Whether opening a store whose schema is behind the code upgrades it. "
            "A store migrated by a newer tracker is always refused."
        ),
    ),
    cfg.FloatOpt(
        "sqlite_busy_timeout",
        default=30.0,
        min=0.0,
        help="Seconds an SQLite writer waits for another writer's lock before failing.",
    ),
    cfg.IntOpt(
        "connect_timeout",
        default=10,
        min=1,
        help="Seconds to wait when connecting to a PostgreSQL or MariaDB server.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register tracker's options on ``conf``.

    :param conf: the configuration object the caller owns.
    :returns: nothing.
    """
    conf.register_group(database_group)
    conf.register_opts(database_opts, group=database_group)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    """:returns: every option of tracker, grouped, for oslo-config-generator."""
    return [(database_group, list(database_opts))]


def state_dir() -> Path:
    """:returns: the per-user state directory (``$XDG_STATE_HOME/tracker``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tracker"


def default_connection() -> str:
    """:returns: the URL of the embedded SQLite store in :func:`state_dir`."""
    return f"sqlite:///{state_dir() / 'tracker.sqlite'}"
