"""tracker.hotpath.paused_gc: the collector is off inside, as it was afterwards."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tracker.hotpath import paused_gc


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.parametrize("enabled_before", [True, False])
def test_the_collector_is_off_inside_and_as_before_afterwards(enabled_before: bool) -> None:
    (gc.enable if enabled_before else gc.disable)()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block does not switch it back on
    assert gc.isenabled() is enabled_before


def test_the_collector_comes_back_when_the_block_raises() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError("scan failed")
    assert gc.isenabled()
