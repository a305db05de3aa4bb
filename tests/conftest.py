"""Fixtures shared by the whole suite: stores on SQLite, PostgreSQL and MariaDB.

Every test that takes ``store`` runs once per database. PostgreSQL and MariaDB
tests use databases created for this run and dropped at its end. When a server
is unreachable the test fails under ``CI=true`` and is skipped elsewhere, with
the reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tracker.db.models import Base
from tracker.db.store import Store
from tracker.resources import Backend
from tracker.testing import databases
from tracker.testing.databases import ThrowawayDatabase


class Databases:
    """One schema-at-head database per dialect for the run, plus fresh ones on demand."""

    def __init__(self, stack: ExitStack, sqlite_dir: Path) -> None:
        self._stack = stack
        self._sqlite_dir = str(sqlite_dir)
        self._shared: dict[str, ThrowawayDatabase] = {}
        self._unavailable: dict[str, str | None] = {}

    def require(self, dialect: str) -> None:
        if dialect not in self._unavailable:
            self._unavailable[dialect] = databases.server_unavailable(dialect)
        reason = self._unavailable[dialect]
        if reason is None:
            return
        if databases.required():
            pytest.fail(f"CI=true requires the {dialect} tests to run, but: {reason}")
        pytest.skip(f"no {dialect} server here ({reason}); CI runs these")

    def fresh(self, dialect: str) -> ThrowawayDatabase:
        self.require(dialect)
        return self._stack.enter_context(databases.throwaway_database(dialect, self._sqlite_dir))

    def shared(self, dialect: str) -> ThrowawayDatabase:
        if dialect not in self._shared:
            database = self.fresh(dialect)
            Store(database.url, auto_upgrade="always").dispose()
            self._shared[dialect] = database
        return self._shared[dialect]


@pytest.fixture(scope="session")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    with ExitStack() as stack:
        yield Databases(stack, tmp_path_factory.mktemp("sqlite"))


@pytest.fixture
def tmpfs_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh directory on tmpfs (``/dev/shm``) when possible, removed afterwards.

    Testbeds live there: fast, and never under a real ``/sys`` or ``/dev`` node.
    """
    shm = Path("/dev/shm")
    parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    prefix = f"{request.node.path.parent.name}-test-"
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    """Each test starts as a fresh process would: no backend registered."""
    Backend.backends.clear()
    yield
    Backend.backends.clear()


def _wipe(store: Store) -> None:
    with store.write() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())


@pytest.fixture(params=databases.DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def store(dbs: Databases, dialect: str) -> Iterator[Store]:
    """An open store with the schema at head and no rows, on each database."""
    database = dbs.shared(dialect)
    opened = Store(database.url, auto_upgrade="never")
    _wipe(opened)
    yield opened
    opened.dispose()


@pytest.fixture
def fresh_database(dbs: Databases, dialect: str) -> ThrowawayDatabase:
    """An empty database (no schema at all), on each database."""
    return dbs.fresh(dialect)


@pytest.fixture
def reopen(store: Store) -> Callable[[], Store]:
    """Simulate a restart: forget every registered backend and open the store anew."""

    def _reopen() -> Store:
        Backend.backends.clear()
        return Store(store.url, auto_upgrade="never")

    return _reopen


@pytest.fixture
def backend(store: Store) -> Backend:
    return Backend("lvm-1", store=store, driver="LVMVolumeDriver", volume_group="cinder-volumes")
