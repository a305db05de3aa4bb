"""What a scan reads: only what discovery uses.

``holders/`` of a block device is the reverse of the ``slaves/`` links of the
maps built on it; discovery reads a map's members from its ``slaves/``, so the
scan (and a capture, which reads the same table) leaves ``holders/`` alone —
about a tenth of a large host's scan.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker.discovery.discover import discover
from tracker.host.capture import capture
from tracker.host.sources import SysfsTreeSource
from tracker.testing.testbed import Testbed
from tracker.testing.topologies import fc_multipath


def test_the_scan_never_lists_holders_and_maps_keep_every_path(
    testbed: Testbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    topology = fc_multipath(testbed, luns=3)
    listed: list[str] = []
    real_scandir = os.scandir

    def spying_scandir(path: str) -> Iterator[os.DirEntry[str]]:
        listed.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", spying_scandir)
    records = SysfsTreeSource(testbed.root).scan()

    assert any(path.endswith("/slaves") for path in listed)  # the spy sees the link reads
    assert not [path for path in listed if path.endswith("/holders")]
    assert not [key for r in records for key in r.links if key.startswith("holders/")]
    state = discover(records, "h")
    assert {m.wwid: sorted(p.block_name for p in m.paths) for m in state.multipath_maps} == {
        spec.uuid.removeprefix("mpath-"): sorted(spec.paths) for spec in topology.multipaths
    }


def test_a_capture_leaves_holders_out(testbed: Testbed, tmp_path: Path) -> None:
    fc_multipath(testbed, luns=2)
    out = tmp_path / "host.tar.gz"
    capture(testbed.root, out)
    with tarfile.open(out) as archive:
        names = archive.getnames()
    assert any("/slaves/" in name for name in names)
    assert not [name for name in names if "/holders/" in name]
