"""tracker: a persistent resource tracker with an SQL metadata store.

Typical use in a REPL::

    >>> import tracker
    >>> store = tracker.open_store("sqlite:////tmp/t.sqlite")
    >>> lvm = tracker.Backend("lvm", store=store, driver="LVMVolumeDriver", volume_group="cinder")
    >>> vol = lvm.create_volume(1, "data", status="available")
    >>> tracker.status()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from tracker.exceptions import TrackerError

if TYPE_CHECKING:
    from tracker.db.store import Store
    from tracker.report import StatusReport, status
    from tracker.resources import Backend, Connection, Snapshot, Volume, VolumeSpec
    from tracker.serialization import dump, dumps, load
    from tracker.waiting.model import StorageModel, get_storage_model

__all__ = [
    "Backend",
    "Connection",
    "Snapshot",
    "StatusReport",
    "StorageModel",
    "Store",
    "TrackerError",
    "Volume",
    "VolumeSpec",
    "dump",
    "dumps",
    "get_storage_model",
    "load",
    "open_store",
    "predicates",
    "status",
]

__version__ = "0.1.0"

#: The public names imported on first use, not with the package: ``tracker
#: --help`` and the commands that never open a store do not pay for SQLAlchemy
#: (see "Start-up" in docs/benchmarks.rst).
_LAZY = {
    "Backend": "tracker.resources",
    "Connection": "tracker.resources",
    "Snapshot": "tracker.resources",
    "Volume": "tracker.resources",
    "VolumeSpec": "tracker.resources",
    "Store": "tracker.db.store",
    "StatusReport": "tracker.report",
    "status": "tracker.report",
    "dump": "tracker.serialization",
    "dumps": "tracker.serialization",
    "load": "tracker.serialization",
    "StorageModel": "tracker.waiting.model",
    "get_storage_model": "tracker.waiting.model",
}

#: Sub-modules reachable as attributes of the package (``tracker.predicates``).
_LAZY_MODULES = frozenset({"predicates"})


def __getattr__(name: str) -> object:
    """Import a public name on first use (PEP 562).

    :returns: the object ``name`` stands for.
    :raises AttributeError: ``name`` is not a public name of the package.
    """
    if name in _LAZY_MODULES:
        value: object = importlib.import_module(f"tracker.{name}")
        globals()[name] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tracker' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """:returns: the package's names, the lazy ones included."""
    return sorted(set(globals()) | set(_LAZY) | _LAZY_MODULES)


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
    from oslo_config import cfg

    from tracker import opts
    from tracker.db.store import Store

    if url is not None:
        return Store(url, **kwargs)  # type: ignore[arg-type]

    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf([], project="tracker", default_config_files=config_files or [])
    return Store.from_config(conf, **kwargs)
