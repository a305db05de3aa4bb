"""Fixtures of the waiting tests: live testbeds on tmpfs, the umockdev preload."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker.testing.live import LiveTestbed
from tracker.testing.testbed import require_preload_library


@pytest.fixture
def bed_dir() -> Iterator[Path]:
    """A fresh directory on tmpfs when possible."""
    shm = Path("/dev/shm")
    parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    directory = Path(tempfile.mkdtemp(prefix="wait-test-", dir=parent))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def live(bed_dir: Path) -> LiveTestbed:
    """An empty live testbed that journals its events without sending them."""
    return LiveTestbed(bed_dir, deliver=False)


@pytest.fixture(scope="session")
def preload_library() -> Path:
    return require_preload_library()
