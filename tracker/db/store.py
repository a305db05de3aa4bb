"""The metadata store: an engine and a session factory, created from configuration.

There is no global session or engine. A :class:`Store` is an ordinary object;
several can coexist in one process (the tests open one per database), and
every tracked object remembers the store it came from.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, delete, event, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from tracker import exceptions
from tracker.db import models

if TYPE_CHECKING:
    from oslo_config import cfg

LOG = logging.getLogger(__name__)

AUTO_UPGRADE_CHOICES = ("never", "sqlite", "always")


def display_url(url: URL | str) -> str:
    """:returns: ``url`` as text with any password hidden."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<unparseable URL>"
    return parsed.render_as_string(hide_password=True)


class Store:
    """An SQL metadata store.

    Opening a store connects once, checks the schema revision against the
    code's Alembic head and, when allowed by ``auto_upgrade``, migrates it.

    :param url: SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://...``,
        ``mysql+pymysql://...``).
    :param auto_upgrade: ``"never"``, ``"sqlite"`` (only SQLite stores are
        migrated automatically) or ``"always"``.
    :param sqlite_busy_timeout: seconds an SQLite writer waits for a lock.
    :param connect_timeout: seconds to wait for a database server.
    :param check_schema: ``False`` opens the store without looking at its
        schema (used by the ``tracker db`` commands themselves).
    :raises tracker.exceptions.ConfigError: the URL is malformed or names an
        unknown driver.
    :raises tracker.exceptions.StoreUnavailable: the database cannot be reached.
    :raises tracker.exceptions.SchemaOutdated: the schema is behind and may not
        be upgraded automatically.
    :raises tracker.exceptions.SchemaTooNew: a newer tracker migrated the store.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        auto_upgrade: str = "sqlite",
        sqlite_busy_timeout: float = 30.0,
        connect_timeout: int = 10,
        check_schema: bool = True,
        echo: bool = False,
    ) -> None:
        if auto_upgrade not in AUTO_UPGRADE_CHOICES:
            raise exceptions.InvalidInput(
                "auto_upgrade", auto_upgrade, f"one of {', '.join(AUTO_UPGRADE_CHOICES)}"
            )
        try:
            self.url = make_url(url) if isinstance(url, str) else url
        except ArgumentError as exc:
            raise exceptions.ConfigError("[database] connection", str(exc)) from exc
        self.display_url = display_url(self.url)
        self.auto_upgrade = auto_upgrade
        self.engine = self._create_engine(sqlite_busy_timeout, connect_timeout, echo)
        self._writer = self.engine.execution_options(tracker_write=True)
        self._read_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessions = sessionmaker(self._writer, expire_on_commit=False)
        if check_schema:
            self.ensure_schema()

    # -- construction -------------------------------------------------------

    @classmethod
    def from_config(cls, conf: cfg.ConfigOpts, **overrides: Any) -> Store:
        """Open the store described by ``conf`` (``[database]`` group).

        :param conf: a ConfigOpts on which :func:`tracker.opts.register_opts`
            was called.
        :returns: the open store.
        :raises tracker.exceptions.StoreError: as :class:`Store`.
        """
        from tracker.opts import default_connection

        url = conf.database.connection or default_connection()
        kwargs: dict[str, Any] = {
            "auto_upgrade": conf.database.auto_upgrade,
            "sqlite_busy_timeout": conf.database.sqlite_busy_timeout,
            "connect_timeout": conf.database.connect_timeout,
        }
        kwargs.update(overrides)
        return cls(url, **kwargs)

    @property
    def dialect(self) -> str:
        """:returns: ``"sqlite"``, ``"postgresql"`` or ``"mysql"``/``"mariadb"``."""
        return self.engine.dialect.name

    def _create_engine(self, busy_timeout: float, connect_timeout: int, echo: bool) -> Engine:
        url = self.url
        connect_args: dict[str, Any] = {}
        kwargs: dict[str, Any] = {"echo": echo}
        backend = url.get_backend_name()
        if backend == "sqlite":
            database = url.database or ""
            if database not in ("", ":memory:") and not database.startswith("file:"):
                try:
                    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                except (OSError, ValueError) as exc:
                    raise exceptions.StoreUnavailable(self.display_url, str(exc)) from exc
            connect_args["timeout"] = busy_timeout
            connect_args["check_same_thread"] = False
            if database in ("", ":memory:"):
                raise exceptions.ConfigError(
                    "[database] connection",
                    "an in-memory SQLite store would vanish with its connection; use a file",
                )
            # One connection per checkout: SQLite files are cheap to open, and it
            # keeps processes from holding WAL read snapshots between calls.
            kwargs["poolclass"] = NullPool
        elif backend == "postgresql":
            connect_args["connect_timeout"] = connect_timeout
        elif backend in ("mysql", "mariadb"):
            connect_args["connect_timeout"] = connect_timeout
            kwargs["pool_recycle"] = 3600
        try:
            engine = create_engine(url, connect_args=connect_args, **kwargs)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise exceptions.ConfigError(
                "[database] connection", f"{self.display_url}: {exc}"
            ) from exc
        if backend == "sqlite":
            _configure_sqlite(engine)
        return engine

    # -- sessions -----------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading, in one transaction, closed afterwards.

        :returns: a context manager yielding the session.
        :raises tracker.exceptions.StoreUnavailable: the database went away.
        """
        with self._translate_errors(), self._read_sessions() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session for writing: one transaction, committed on success.

        On SQLite the transaction starts with ``BEGIN IMMEDIATE``, so a writer
        waits for the lock up front instead of failing when it upgrades a
        read snapshot.

        :returns: a context manager yielding the session.
        :raises tracker.exceptions.StoreUnavailable: the database went away.
        """
        with self._translate_errors(), self._write_sessions() as session, session.begin():
            yield session

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except DBAPIError as exc:
            if exc.connection_invalidated or _is_connect_error(exc):
                raise exceptions.StoreUnavailable(self.display_url, str(exc.orig)) from exc
            raise

    def dispose(self) -> None:
        """Close every pooled connection.

        :returns: nothing.
        """
        self.engine.dispose()

    # -- schema -------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Check the store's schema revision; upgrade it if allowed.

        :returns: nothing.
        :raises tracker.exceptions.SchemaOutdated: behind and not upgradable here.
        :raises tracker.exceptions.SchemaTooNew: migrated by a newer tracker.
        :raises tracker.exceptions.StoreUnavailable: the database cannot be reached.
        """
        from tracker.db import migrate

        state = migrate.schema_state(self)
        if state.is_current:
            return
        if state.is_newer:
            raise exceptions.SchemaTooNew(self.display_url, state.current or "?", state.head)
        if self.auto_upgrade == "always" or (
            self.auto_upgrade == "sqlite" and self.dialect == "sqlite"
        ):
            LOG.info(
                "upgrading store %s from %s to %s", self.display_url, state.current, state.head
            )
            migrate.upgrade(self, "head")
            return
        raise exceptions.SchemaOutdated(self.display_url, state.current, state.head)

    # -- key-value pairs ----------------------------------------------------

    def get_key_values(self, key: str | None = None) -> dict[str, str]:
        """Read key-value pairs.

        :param key: one key, or ``None`` for all of them.
        :returns: the matching pairs (empty when ``key`` is not stored).
        """
        stmt = select(models.KeyValue.key, models.KeyValue.value)
        if key is not None:
            stmt = stmt.where(models.KeyValue.key == key)
        with self.read() as session:
            return {row.key: row.value for row in session.execute(stmt)}

    def set_key_value(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing any previous value.

        :returns: nothing.
        :raises tracker.exceptions.InvalidInput: ``key`` or ``value`` is not text.
        """
        if not isinstance(key, str) or not key or len(key) > 255:
            raise exceptions.InvalidInput("key", key, "a string of 1 to 255 characters")
        if not isinstance(value, str):
            raise exceptions.InvalidInput("value", value, "a string")
        with self.write() as session:
            row = session.get(models.KeyValue, key)
            if row is None:
                session.add(models.KeyValue(key=key, value=value))
            else:
                row.value = value

    def delete_key_value(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error.

        :returns: nothing.
        """
        with self.write() as session:
            session.execute(delete(models.KeyValue).where(models.KeyValue.key == key))

    def __repr__(self) -> str:
        return f"<Store {self.display_url}>"


def _is_connect_error(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(
        marker in text
        for marker in (
            "connection refused",
            "could not connect",
            "can't connect",
            "unable to open database",
            "server closed the connection",
            "lost connection",
            "name or service not known",
            "unknown database",
            "does not exist",
            "access denied",
            "timeout expired",
        )
    )


def _configure_sqlite(engine: Engine) -> None:
    """Foreign keys on, WAL, and explicit transactions (SQLAlchemy's pysqlite recipe)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("tracker_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
