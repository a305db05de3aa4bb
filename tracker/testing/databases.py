"""Throw-away databases for tests, on SQLite, PostgreSQL and MariaDB.

Each test run creates its own databases (``tracker_<pid>_<random>``) on the
servers and drops them afterwards, so runs never share tables. Server URLs
come from the environment, with the local defaults of this project's machines:

* ``TRACKER_TEST_POSTGRESQL_URL`` (default ``postgresql+psycopg://root@127.0.0.1:5432/postgres``)
* ``TRACKER_TEST_MYSQL_URL`` (default ``mysql+pymysql://root@127.0.0.1:3306/test``)

:func:`server_unavailable` says why a server cannot be used; the pytest
fixtures turn that into a failure when ``CI=true`` and a skip otherwise.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

DIALECTS = ("sqlite", "postgresql", "mariadb")

_DEFAULTS = {
    "postgresql": (
        "TRACKER_TEST_POSTGRESQL_URL",
        "postgresql+psycopg://root@127.0.0.1:5432/postgres",
    ),
    "mariadb": ("TRACKER_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}


def server_url(dialect: str) -> URL:
    """:returns: the admin URL of the test server for ``dialect``."""
    variable, default = _DEFAULTS[dialect]
    return make_url(os.environ.get(variable, default))


def required() -> bool:
    """:returns: whether unreachable servers must fail tests (``CI=true``)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def server_unavailable(dialect: str) -> str | None:
    """Try the test server once.

    :returns: ``None`` when it answers, else why it cannot be used.
    """
    if dialect == "sqlite":
        return None
    url = server_url(dialect)
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, ImportError) as exc:
        return f"{dialect} test server {url.render_as_string(hide_password=True)}: {exc}"
    finally:
        engine.dispose()
    return None


@dataclass(frozen=True, slots=True)
class ThrowawayDatabase:
    """A database created for one test run.

    :ivar dialect: ``"sqlite"``, ``"postgresql"`` or ``"mariadb"``.
    :ivar url: its SQLAlchemy URL.
    """

    dialect: str
    url: URL


@contextmanager
def throwaway_database(dialect: str, sqlite_dir: str) -> Iterator[ThrowawayDatabase]:
    """Create an empty database and drop it afterwards.

    :param sqlite_dir: directory for SQLite files.
    :returns: a context manager yielding the database.
    :raises sqlalchemy.exc.SQLAlchemyError: the server refused.
    """
    name = f"tracker_{os.getpid()}_{secrets.token_hex(4)}"
    if dialect == "sqlite":
        yield ThrowawayDatabase(dialect, make_url(f"sqlite:///{sqlite_dir}/{name}.sqlite"))
        return
    admin = server_url(dialect)
    engine = create_engine(admin, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    # DDL takes no bind parameters: the name is ours (pid + random hex) and is
    # quoted by the dialect's own identifier preparer.
    quoted = engine.dialect.identifier_preparer.quote_identifier(name)
    options = "" if dialect == "postgresql" else " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {quoted}{options}"))
    try:
        yield ThrowawayDatabase(dialect, admin.set(database=name))
    finally:
        force = " WITH (FORCE)" if dialect == "postgresql" else ""
        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {quoted}{force}"))
        engine.dispose()
