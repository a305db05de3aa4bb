"""``tracker discover`` scans, discovers and reconciles with the cyclic collector off."""

from __future__ import annotations

import gc
import importlib
from pathlib import Path

import pytest

from tracker.host.records import DeviceRecord
from tracker.host.sources import SysfsTreeSource
from tracker.testing import topologies
from tracker.testing.testbed import Testbed

from .helpers import Cli

# The package re-exports the function under the module's name.
discover_module = importlib.import_module("tracker.discovery.discover")


@pytest.fixture
def testbed(tmp_path: Path) -> Testbed:
    return Testbed.create(parent=tmp_path, prefix="host-")


def test_discover_pauses_the_collector_and_restores_it(
    cli: Cli, url: str, testbed: Testbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    topologies.fc_multipath(testbed)
    seen: dict[str, bool] = {}
    real_scan = SysfsTreeSource.scan
    real_discover = discover_module.discover

    def scan(self: SysfsTreeSource) -> tuple[DeviceRecord, ...]:
        seen["scan"] = gc.isenabled()
        return real_scan(self)

    def discover(*args: object, **kwargs: object) -> object:
        seen["discover"] = gc.isenabled()
        return real_discover(*args, **kwargs)

    monkeypatch.setattr(SysfsTreeSource, "scan", scan)
    monkeypatch.setattr(discover_module, "discover", discover)
    gc.enable()
    run = cli("discover", "--root", str(testbed.root), "--database-url", url, "--json")
    assert run.code == 0, run.err
    assert run.json()["rows_written"] > 0
    assert seen == {"scan": False, "discover": False}
    assert gc.isenabled()
