"""tracker: a persistent resource tracker with an SQL metadata store.

Typical use in a REPL::

    >>> import tracker
    >>> store = tracker.open_store("sqlite:////tmp/t.sqlite")
    >>> lvm = tracker.Backend("lvm", store=store, driver="LVMVolumeDriver", volume_group="cinder")
    >>> vol = lvm.create_volume(1, "data", status="available")
    >>> tracker.status()
"""

from __future__ import annotations

from tracker.db.store import Store
from tracker.exceptions import TrackerError
from tracker.report import StatusReport, status
from tracker.resources import Backend, Connection, Snapshot, Volume, VolumeSpec
from tracker.serialization import dump, dumps, load

__all__ = [
    "Backend",
    "Connection",
    "Snapshot",
    "StatusReport",
    "Store",
    "TrackerError",
    "Volume",
    "VolumeSpec",
    "dump",
    "dumps",
    "load",
    "open_store",
    "status",
]

__version__ = "0.1.0"


def open_store(
    url: str | None = None, *, config_files: list[str] | None = None, **kwargs: object
) -> Store:
    """Open a metadata store, from a URL or from tracker's configuration.

    :param url: SQLAlchemy URL; when ``None`` it comes from ``[database]
        connection`` of ``config_files`` (or the embedded SQLite default).
    :param config_files: oslo.config files to read when ``url`` is ``None``.
    :param kwargs: passed to :class:`~tracker.db.store.Store`.
    :returns: the open store.
    :raises tracker.exceptions.StoreError: as :class:`~tracker.db.store.Store`.
    """
    if url is not None:
        return Store(url, **kwargs)  # type: ignore[arg-type]
    from oslo_config import cfg

    from tracker import opts

    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], project="tracker", default_config_files=config_files or [])
    return Store.from_config(conf, **kwargs)
