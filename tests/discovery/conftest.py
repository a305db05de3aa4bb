"""Fixtures for discovery tests: the shared VPD vectors and the example host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tracker.host.records import DeviceRecord

from .records_fixtures import example_host

# tests/discovery/conftest.py -> <repo>/../shared
SHARED_DIR = Path(__file__).resolve().parents[3] / "shared"
VPD_VECTORS = SHARED_DIR / "data" / "vpd" / "pages.json"
EXAMPLE_UMOCKDEV = SHARED_DIR / "notes" / "example-fc-host.umockdev"


def load_vpd_vectors() -> list[dict[str, Any]] | None:
    """The entries of pages.json, or None when the file is not there."""
    if not VPD_VECTORS.is_file():
        return None
    vectors: list[dict[str, Any]] = json.loads(VPD_VECTORS.read_text(encoding="utf-8"))
    return vectors


def require_file(path: Path) -> Path:
    """Fail (not skip) with a clear message when a shared test input is absent."""
    if not path.is_file():
        pytest.fail(
            f"shared test input {path} is missing: discovery tests expect the shared "
            f"directory next to the repository (<repo>/../shared)"
        )
    return path


@pytest.fixture
def example_records() -> list[DeviceRecord]:
    """The records of the example FC + iSCSI + multipath host."""
    return example_host()
