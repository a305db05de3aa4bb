"""Fixtures of the command-line tests: run ``tracker`` in-process, track a small tree."""

from __future__ import annotations

import pytest

from tracker.cli.main import main
from tracker.db.store import Store
from tracker.resources import Backend

from .helpers import Cli, Run, Tracked, url_of


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli("status", "--json")`` runs ``main([...])`` and captures what it printed."""

    def run(*args: str) -> Run:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return run


@pytest.fixture
def url(store: Store) -> str:
    return url_of(store)


@pytest.fixture
def tracked(backend: Backend) -> Tracked:
    """A backend with three volumes, two snapshots and two connections."""
    data = backend.create_volume(10, "data", status="available", serial="SER-1")
    logs = backend.create_volume(5, "logs", status="available")
    spare = backend.create_volume(1, None, status="creating")
    snap1 = data.create_snapshot("data-snap", status="available")
    snap2 = logs.create_snapshot(None, size=2)
    conn1 = data.connect({"host": "node-1", "initiator": "iqn.x:1"}, protocol="iscsi")
    conn2 = logs.connect({"host": "node-2"}, protocol="fc", attach_mode="ro", status="attaching")
    backend.store.set_key_value("cluster", "east")
    return Tracked(
        backend=backend,
        volumes={v.id: v for v in (data, logs, spare)},
        snapshots={s.id: s for s in (snap1, snap2)},
        connections={c.id: c for c in (conn1, conn2)},
    )
