"""Fixtures of the path tests: a fleet of live testbeds sharing the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker.db.store import Store

from .fleet import Fleet


@pytest.fixture
def fleet(tmpfs_dir: Path, store: Store) -> Fleet:
    """Hosts (live testbeds on tmpfs) reconciled into ``store``, and a backend."""
    return Fleet(tmpfs_dir, store)
