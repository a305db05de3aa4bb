"""oslo.config options of tracker.

:func:`list_opts` is registered under the ``oslo.config.opts`` entry point so
``oslo-config-generator --namespace tracker`` writes
``etc/tracker/tracker.conf.sample``. Nothing here registers options on a
global :class:`~oslo_config.cfg.ConfigOpts`: callers pass the object they own
to :func:`register_opts`.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from oslo_config import cfg

database_group = cfg.OptGroup(
    "database", title="Metadata store", help="Where tracker keeps its SQL metadata store."
)

database_opts = [
    cfg.StrOpt(
        "connection",
        secret=True,
        # A literal, valid value: uncommented, it is the default of a user
        # without XDG_STATE_HOME (a "$" would be read as an option reference).
        sample_default="sqlite:///~/.local/state/tracker/tracker.sqlite",
        help=(
            "SQLAlchemy URL of the metadata store. Unset means the embedded SQLite "
            "file tracker.sqlite in the per-user state directory "
            "(XDG_STATE_HOME/tracker, by default ~/.local/state/tracker, the value "
            "shown below); a leading ~ in an SQLite path is the user's home. "
            "For deployments use postgresql+psycopg://user@host/db or "
            "mysql+pymysql://user@host/db. A literal $ is written $$."
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


discovery_group = cfg.OptGroup(
    "discovery",
    title="Host discovery",
    help="How tracker reads this host's SCSI, FC, iSCSI and multipath state.",
)

discovery_opts = [
    cfg.HostnameOpt(
        "host_name",
        sample_default="compute-1",
        help=(
            "Name this host's observed state is stored under. Several hosts can "
            "share one store; each reconciles only its own rows. Unset means the "
            "host's name as the kernel reports it; the value below is only an "
            "example (each host sharing a store needs its own name)."
        ),
    ),
    cfg.StrOpt(
        "source",
        default="sysfs",
        choices=[
            ("sysfs", "read /sys directly (the fastest full scan; see docs/architecture)"),
            ("pyudev", "enumerate through libudev with pyudev"),
        ],
        help="Which device source a full scan uses.",
    ),
    cfg.StrOpt(
        "root",
        default="/",
        help="Directory holding the sys/ tree to scan (only tests and replays change it).",
    ),
    cfg.IntOpt(
        "journal_retention_days",
        default=30,
        min=1,
        help="Journal entries of this host older than this are pruned by reconciles.",
    ),
]


watch_group = cfg.OptGroup(
    "watch",
    title="tracker watch",
    help="How the `tracker watch` service applies device events and outlives outages.",
)

watch_opts = [
    cfg.FloatOpt(
        "resync_interval",
        default=3600.0,
        min=1.0,
        help=(
            "Seconds between periodic full resyncs (a full scan and reconcile), the "
            "safety net against events the kernel or udev never delivered."
        ),
    ),
    cfg.FloatOpt(
        "window",
        default=0.05,
        min=0.0,
        help=(
            "Seconds events are gathered into one batch after the first one arrives; "
            "a burst (an array mapped at once) is applied in a few transactions."
        ),
    ),
    cfg.IntOpt(
        "max_batch",
        default=5000,
        min=1,
        help="The most events applied in one batch (one transaction).",
    ),
    cfg.FloatOpt(
        "grace_period",
        default=300.0,
        min=0.0,
        help=(
            "Seconds the store may stay unreachable (retried with growing pauses) "
            "before `tracker watch` exits with status 6."
        ),
    ),
    cfg.FloatOpt(
        "lease_ttl",
        default=30.0,
        min=1.0,
        help=(
            "Seconds a watcher's lease on its host lasts without renewal. A watcher "
            "killed without cleaning up blocks another one for at most this long."
        ),
    ),
    cfg.FloatOpt(
        "lease_renew",
        default=10.0,
        min=0.1,
        help="Seconds between lease renewals; must be less than lease_ttl.",
    ),
]


waiting_group = cfg.OptGroup(
    "waiting",
    title="rescan_and_wait_for and tracker wait",
    help=(
        "How waits for storage to appear or go (rescan_and_wait_for, `tracker wait`) "
        "pace themselves."
    ),
)

waiting_opts = [
    cfg.FloatOpt(
        "quiet_period",
        default=5.0,
        min=0.1,
        help=(
            "Seconds during which what a wait is about (its predicate's state) must stay "
            "unchanged before the wait rescans again. A wait rescans once when it starts; "
            "it never rescans on every evaluation."
        ),
    ),
    cfg.FloatOpt(
        "poll_interval",
        default=1.0,
        min=0.05,
        help=(
            "Seconds between two listings of sysfs when no device event source can be "
            "opened (no udev netlink, e.g. in a container), and between two re-reads of "
            "the devices a wait is about in that mode."
        ),
    ),
    cfg.FloatOpt(
        "window",
        default=0.005,
        min=0.0,
        help=(
            "Seconds device events are gathered into one batch while waiting, after the "
            "first one arrives; the predicate is evaluated again after each batch."
        ),
    ),
]


connections_group = cfg.OptGroup(
    "connections",
    title="Managed storage connections",
    help="How `tracker connections` keeps managed iSCSI targets and NFS exports connected.",
)

connections_opts = [
    cfg.BoolOpt(
        "monitor",
        default=False,
        help=(
            "Run the connection monitor inside `tracker watch` (it reconnects the managed "
            "connections of this host); `tracker connections monitor` runs it alone."
        ),
    ),
    cfg.StrOpt(
        "mount_base",
        default="/run/tracker/mnt",
        help="Directory under which NFS exports are mounted, one directory per export.",
    ),
    cfg.FloatOpt(
        "check_interval",
        default=10.0,
        min=0.1,
        help=(
            "Seconds between two checks of one connection (the safety net against events "
            "that never came); the checks of several connections are spread over it."
        ),
    ),
    cfg.FloatOpt(
        "backoff_initial",
        default=1.0,
        min=0.01,
        help="Seconds before the second attempt to reconnect; doubled after each failure.",
    ),
    cfg.FloatOpt(
        "backoff_max",
        default=300.0,
        min=0.01,
        help=(
            "The longest pause between two attempts (the cap, jitter included). Attempts "
            "never stop while the connection is managed."
        ),
    ),
    cfg.FloatOpt(
        "jitter",
        default=1.0,
        min=0.0,
        help="At most this many seconds added at random to each pause.",
    ),
    cfg.FloatOpt(
        "lease_ttl",
        default=300.0,
        min=1.0,
        help=(
            "Seconds one process holds a connection's lease for an attempt, so that "
            "processes sharing the store never reconnect it at once; longer than "
            "command_timeout."
        ),
    ),
    cfg.FloatOpt(
        "command_timeout",
        default=120.0,
        min=1.0,
        help="Seconds before an iscsiadm, mount or umount command is killed.",
    ),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register tracker's options on ``conf``.

    :param conf: the configuration object the caller owns.
    :returns: nothing.
    """
    conf.register_group(database_group)
    conf.register_opts(database_opts, group=database_group)
    conf.register_group(discovery_group)
    conf.register_opts(discovery_opts, group=discovery_group)
    conf.register_group(watch_group)
    conf.register_opts(watch_opts, group=watch_group)
    conf.register_group(waiting_group)
    conf.register_opts(waiting_opts, group=waiting_group)
    conf.register_group(connections_group)
    conf.register_opts(connections_opts, group=connections_group)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    """:returns: every option of tracker, grouped, for oslo-config-generator."""
    return [
        (database_group, list(database_opts)),
        (discovery_group, list(discovery_opts)),
        (watch_group, list(watch_opts)),
        (waiting_group, list(waiting_opts)),
        (connections_group, list(connections_opts)),
    ]


def default_host_name() -> str:
    """:returns: this host's name, as the kernel reports it."""
    return socket.gethostname()


def state_dir() -> Path:
    """:returns: the per-user state directory (``$XDG_STATE_HOME/tracker``)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tracker"


def default_connection() -> str:
    """:returns: the URL of the embedded SQLite store in :func:`state_dir`."""
    return f"sqlite:///{state_dir() / 'tracker.sqlite'}"
