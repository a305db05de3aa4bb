"""Fixtures for the host-layer tests: testbeds on tmpfs, tools, VPD vectors.

A test that needs umockdev, lsscsi or the shared VPD vectors and cannot find
them fails when ``CI=true`` and is skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tracker.exceptions import PreloadLibraryMissing
from tracker.host.executor import SubprocessExecutor
from tracker.host.records import DeviceRecord, RecordJSON, record_from_json
from tracker.testing.testbed import Testbed, find_preload_library, run_under_preload
from tracker.testing.topologies import VpdVector, load_vpd_vectors

#: /work/shared beside the checkout.
VPD_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "vpd"


def unavailable(reason: str) -> None:
    """Fail under CI=true, skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true requires this test to run, but: {reason}")
    pytest.skip(reason)


@pytest.fixture
def bed_dir() -> Iterator[Path]:
    """A fresh directory on tmpfs when possible (never under /sys or /dev nodes)."""
    shm = Path("/dev/shm")
    parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    directory = Path(tempfile.mkdtemp(prefix="host-test-", dir=parent))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def testbed(bed_dir: Path) -> Testbed:
    return Testbed(bed_dir)


@pytest.fixture
def executor() -> SubprocessExecutor:
    return SubprocessExecutor()


@pytest.fixture(scope="session")
def vpd_vectors() -> Mapping[str, VpdVector]:
    if not (VPD_DIR / "pages.json").is_file():
        unavailable(f"VPD vectors not found at {VPD_DIR.resolve()} (/work/shared beside the repo)")
    return load_vpd_vectors(VPD_DIR)


@pytest.fixture(scope="session")
def preload_library() -> Path:
    try:
        return find_preload_library(SubprocessExecutor())
    except PreloadLibraryMissing as error:
        unavailable(str(error))
        raise


@pytest.fixture(scope="session")
def lsscsi() -> str:
    path = shutil.which("lsscsi")
    if path is None:
        unavailable("lsscsi is not installed (Debian package 'lsscsi')")
    return str(path)


def pyudev_scan(root: Path, library: Path) -> tuple[DeviceRecord, ...]:
    """Run PyudevSource.scan() in a subprocess that sees the testbed at ``root``."""
    for marker in Path("/run/udev/data").glob("b8:*"):
        unavailable(f"udevd keeps {marker} here; libudev would mix it into testbed records")
    result = run_under_preload(
        root,
        ["python", "-m", "tracker.host.dump_records", "--source", "pyudev"],
        SubprocessExecutor(),
        library=library,
    ).check()
    document = json.loads(result.stdout)
    records: list[RecordJSON] = document["records"]
    return tuple(record_from_json(item) for item in records)
