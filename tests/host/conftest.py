"""Fixtures for the host-layer tests: testbeds on tmpfs, tools, VPD vectors.

The VPD vectors are in ``tests/data`` (see its README). A test that needs
umockdev or lsscsi and cannot find them fails when ``CI=true`` and is skipped,
with the reason, elsewhere (:func:`tracker.testing.testbed.unavailable`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from tracker.host.executor import SubprocessExecutor
from tracker.host.records import DeviceRecord, RecordJSON, record_from_json
from tracker.testing.testbed import (
    Testbed,
    require_lsscsi,
    require_no_udevd,
    require_preload_library,
    run_under_preload,
)
from tracker.testing.topologies import VpdVector, load_vpd_vectors

#: The test data of the repository (tests/data).
DATA_DIR = Path(__file__).resolve().parents[1] / "data"
VPD_DIR = DATA_DIR / "vpd"


@pytest.fixture
def bed_dir(tmpfs_dir: Path) -> Path:
    """A fresh directory on tmpfs when possible (never under /sys or /dev nodes)."""
    return tmpfs_dir


@pytest.fixture
def testbed(bed_dir: Path) -> Testbed:
    return Testbed(bed_dir)


@pytest.fixture
def executor() -> SubprocessExecutor:
    return SubprocessExecutor()


@pytest.fixture(scope="session")
def vpd_vectors() -> Mapping[str, VpdVector]:
    return load_vpd_vectors(VPD_DIR)


@pytest.fixture(scope="session")
def preload_library() -> Path:
    return require_preload_library()


@pytest.fixture(scope="session")
def lsscsi() -> str:
    return require_lsscsi()


def pyudev_scan(root: Path, library: Path) -> tuple[DeviceRecord, ...]:
    """Run PyudevSource.scan() in a subprocess that sees the testbed at ``root``."""
    require_no_udevd()
    result = run_under_preload(
        root,
        ["python", "-m", "tracker.host.dump_records", "--source", "pyudev"],
        SubprocessExecutor(),
        library=library,
    ).check()
    document = json.loads(result.stdout)
    records: list[RecordJSON] = document["records"]
    return tuple(record_from_json(item) for item in records)
