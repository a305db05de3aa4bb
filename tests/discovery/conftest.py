"""Fixtures for discovery tests: the VPD vectors and the example host (tests/data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tracker.host.records import DeviceRecord

from .records_fixtures import example_host

# tests/discovery/conftest.py -> tests/data (see its README for provenance and licences)
DATA_DIR = Path(__file__).resolve().parents[1] / "data"
VPD_VECTORS = DATA_DIR / "vpd" / "pages.json"
EXAMPLE_UMOCKDEV = DATA_DIR / "example-fc-host.umockdev"


def load_vpd_vectors() -> list[dict[str, Any]] | None:
    """The entries of pages.json, or None when the file is not there."""
    if not VPD_VECTORS.is_file():
        return None
    vectors: list[dict[str, Any]] = json.loads(VPD_VECTORS.read_text(encoding="utf-8"))
    return vectors


def require_file(path: Path) -> Path:
    """Fail (not skip) with a clear message when a test input of tests/data is absent."""
    if not path.is_file():
        pytest.fail(f"test input {path} is missing from the repository (tests/data)")
    return path


@pytest.fixture
def example_records() -> list[DeviceRecord]:
    """The records of the example FC + iSCSI + multipath host."""
    return example_host()
