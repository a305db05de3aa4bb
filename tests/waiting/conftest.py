"""Fixtures of the waiting tests: live testbeds on tmpfs, the umockdev preload."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker.testing.live import LiveTestbed
from tracker.testing.testbed import require_preload_library


@pytest.fixture
def bed_dir(tmpfs_dir: Path) -> Path:
    """A fresh directory on tmpfs when possible."""
    return tmpfs_dir


@pytest.fixture
def live(bed_dir: Path) -> LiveTestbed:
    """An empty live testbed that journals its events without sending them."""
    return LiveTestbed(bed_dir, deliver=False)


@pytest.fixture(scope="session")
def preload_library() -> Path:
    return require_preload_library()
