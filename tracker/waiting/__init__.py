"""Waiting for storage: infi.storagemodel's ``rescan_and_wait_for`` on the reconciled model.

* :mod:`tracker.waiting.predicates` -- the conditions (``DiskExists`` ...);
* :mod:`tracker.waiting.view` -- what they read: one snapshot of one host's model;
* :mod:`tracker.waiting.engine` -- the one writer applying events, and the
  background rescans;
* :mod:`tracker.waiting.model` -- :class:`StorageModel`,
  :func:`get_storage_model` and ``rescan_and_wait_for``.
"""

from tracker.waiting.model import (
    StorageModel,
    WaitProgress,
    WaitResult,
    WaitSettings,
    get_storage_model,
)

__all__ = ["StorageModel", "WaitProgress", "WaitResult", "WaitSettings", "get_storage_model"]
