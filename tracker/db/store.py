"""The metadata store: an engine and a session factory, created from configuration.

There is no global session or engine. A :class:`Store` is an ordinary object;
several can coexist in one process (the tests open one per database), and
every tracked object remembers the store it came from.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine, create_engine, delete, event, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    StatementError,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from tracker import exceptions
from tracker.db import models

if TYPE_CHECKING:
    from oslo_config import cfg

LOG = logging.getLogger(__name__)

AUTO_UPGRADE_CHOICES = ("never", "sqlite", "always")

#: sqlite3's primary result code for "file is not a database".
SQLITE_NOTADB = 26

T = TypeVar("T")


_PASSWORD_IN_URL = re.compile(r"(://[^/?#@:]*:)[^@/]*@")


def mask_password(text: str) -> str:
    """:returns: ``text``, a URL as written, with its ``user:password@`` password hidden."""
    return _PASSWORD_IN_URL.sub(r"\1***@", text)


def display_url(url: URL | str) -> str:
    """:returns: ``url`` as text with any password hidden (also when it cannot be parsed)."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError):
        return mask_password(str(url))
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
    :param create: ``True`` (the default) creates a missing SQLite file and its
        directory, and gives an empty database its schema when ``auto_upgrade``
        allows. ``False`` (read-only commands) never creates anything: a missing
        SQLite file is :class:`~tracker.exceptions.StoreNotFound`, an empty
        database :class:`~tracker.exceptions.SchemaOutdated`. Either way, once
        open, an SQLite store never re-creates its file: connections open it
        with ``mode=rw``, so a file removed under an open store is
        :class:`~tracker.exceptions.StoreNotFound` too.
    :raises tracker.exceptions.ConfigError: the URL is malformed or names an
        unknown driver.
    :raises tracker.exceptions.StoreNotFound: ``create`` is false and the SQLite
        file does not exist.
    :raises tracker.exceptions.StoreUnavailable: the database cannot be reached,
        or the file is not an SQLite database.
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
        create: bool = True,
        echo: bool = False,
    ) -> None:
        if auto_upgrade not in AUTO_UPGRADE_CHOICES:
            raise exceptions.InvalidInput(
                "auto_upgrade", auto_upgrade, f"one of {', '.join(AUTO_UPGRADE_CHOICES)}"
            )
        try:
            self.url = make_url(url) if isinstance(url, str) else url
        except (ArgumentError, ValueError) as exc:
            raise exceptions.ConfigError(
                "[database] connection", f"cannot parse the URL {display_url(str(url))}"
            ) from exc
        self.display_url = display_url(self.url)
        self.auto_upgrade = auto_upgrade
        self.create = create
        #: The SQLite file of the store (``None`` for a server, or a ``file:`` URI).
        self.sqlite_path: Path | None = None
        self.engine = self._create_engine(sqlite_busy_timeout, connect_timeout, echo)
        self.sqlite_busy_timeout = sqlite_busy_timeout
        self._read_sessions, self._write_sessions = self._session_factories()
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
            connect_args["timeout"] = busy_timeout
            connect_args["check_same_thread"] = False
            if database in ("", ":memory:"):
                raise exceptions.ConfigError(
                    "[database] connection",
                    "an in-memory SQLite store would vanish with its connection; use a file",
                )
            if not database.startswith("file:"):
                self.sqlite_path = Path(database).expanduser()
                self._prepare_sqlite_file(self.sqlite_path)
                kwargs["creator"] = self._sqlite_creator(self.sqlite_path, busy_timeout)
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

    def _prepare_sqlite_file(self, path: Path) -> None:
        """Check that the SQLite file exists, or create it (and its directory) if allowed."""
        try:
            if path.is_file():
                return
            if path.exists():
                raise exceptions.StoreUnavailable(self.display_url, f"{path} is not a file")
            if not self.create:
                raise exceptions.StoreNotFound(self.display_url, str(path))
            path.parent.mkdir(parents=True, exist_ok=True)
            # The only connection allowed to create the file; every other one
            # opens it with mode=rw.
            sqlite3.connect(path).close()
        except (OSError, ValueError, sqlite3.Error) as exc:
            raise exceptions.StoreUnavailable(self.display_url, str(exc)) from exc

    def _sqlite_creator(self, path: Path, busy_timeout: float) -> Callable[[], Any]:
        """A connection factory that opens ``path`` read-write and never creates it."""
        uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=rw"
        url = self.display_url

        def connect() -> sqlite3.Connection:
            try:
                connection = sqlite3.connect(
                    uri, uri=True, timeout=busy_timeout, check_same_thread=False
                )
            except sqlite3.OperationalError as exc:
                if not path.exists():
                    raise exceptions.StoreNotFound(url, str(path), removed=True) from exc
                raise
            try:
                # Reads the header: a file that is not a database fails here,
                # by its error code, with the file named.
                connection.execute("PRAGMA schema_version").fetchall()
            except sqlite3.DatabaseError as exc:
                connection.close()
                if getattr(exc, "sqlite_errorcode", None) == SQLITE_NOTADB:
                    raise exceptions.StoreUnavailable(
                        url, f"the file {path} is not an SQLite database"
                    ) from exc
                raise
            return connection

        return connect

    # -- sessions -----------------------------------------------------------

    def _session_factories(self) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
        """Session factories for snapshot reads and for writes (see ``docs/architecture.rst``).

        Reads run in one read-only snapshot: REPEATABLE READ READ ONLY on
        PostgreSQL, ``START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`` at
        REPEATABLE READ on MariaDB/MySQL, a deferred ``BEGIN`` in WAL mode on
        SQLite. Writes run at READ COMMITTED on the servers (``BEGIN IMMEDIATE``
        on SQLite) and are checked by version, not by isolation.
        """
        backend = self.url.get_backend_name()
        reader: Engine = self.engine
        writer: Engine = self.engine.execution_options(tracker_write=True)
        if backend == "postgresql":
            reader = self.engine.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            writer = writer.execution_options(isolation_level="READ COMMITTED")
        elif backend in ("mysql", "mariadb"):
            _configure_mysql(self.engine)
            reader = self.engine.execution_options(
                isolation_level="REPEATABLE READ", tracker_snapshot=True
            )
            writer = writer.execution_options(isolation_level="READ COMMITTED")
        return (
            sessionmaker(reader, expire_on_commit=False),
            sessionmaker(writer, expire_on_commit=False),
        )

    @contextmanager
    def read(self, operation: str = "read") -> Iterator[Session]:
        """A session for reading, in one read-only snapshot transaction, closed afterwards.

        Every statement in the block sees the same committed state, whatever
        other processes commit meanwhile.

        :param operation: what is being read, for error messages.
        :returns: a context manager yielding the session.
        :raises tracker.exceptions.StoreUnavailable: the database went away.
        :raises tracker.exceptions.StoreQueryFailed: the database refused a statement.
        """
        with (
            self._translate_errors(operation),
            self._read_sessions() as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def write(self, operation: str = "write") -> Iterator[Session]:
        """A session for writing: one transaction, committed on success.

        On SQLite the transaction starts with ``BEGIN IMMEDIATE``, so a writer
        waits for the lock up front instead of failing when it upgrades a
        read snapshot. Use :meth:`run_write` to have deadlocks retried.

        :param operation: what is being written, for error messages.
        :returns: a context manager yielding the session.
        :raises tracker.exceptions.StoreUnavailable: the database went away.
        :raises tracker.exceptions.StoreBusy: the lock was not granted in time.
        :raises tracker.exceptions.TransactionConflict: a deadlock or
            serialisation failure rolled the transaction back.
        :raises tracker.exceptions.StoreQueryFailed: the database refused a statement.
        :raises sqlalchemy.exc.IntegrityError: a constraint was violated; callers
            translate it, knowing which key they wrote.
        """
        with (
            self._translate_errors(operation),
            self._write_sessions() as session,
            session.begin(),
        ):
            yield session

    def run_write(self, work: Callable[[Session], T], operation: str = "write") -> T:
        """Run ``work(session)`` in a write transaction, retrying deadlocks.

        A deadlock or serialisation failure rolls the whole transaction back,
        so nothing was committed and ``work`` is run again in a new one, up to
        :attr:`retry_attempts` times with a jittered, growing pause. ``work``
        must therefore only touch the database (and compute); changes to
        objects in memory belong after the call.

        :param work: the transaction's body; its result is returned.
        :param operation: what is being written, for error messages.
        :returns: what ``work`` returned.
        :raises tracker.exceptions.TransactionConflict: every attempt collided.
        :raises tracker.exceptions.TrackerError: what ``work`` raised, or as
            :meth:`write`.
        """
        retrying = Retrying(
            stop=stop_after_attempt(self.retry_attempts),
            wait=wait_random_exponential(multiplier=0.02, max=0.5),
            retry=retry_if_exception_type(exceptions.TransactionConflict),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt, self.write(operation) as session:
                    return work(session)
        except exceptions.TransactionConflict as exc:
            raise exceptions.TransactionConflict(
                self.display_url, operation, exc.code, self.retry_attempts
            ) from exc
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    #: How many times :meth:`run_write` tries a transaction that deadlocks.
    retry_attempts = 8

    @contextmanager
    def _translate_errors(self, operation: str) -> Iterator[None]:
        """Turn database errors into typed errors, classified by SQLSTATE or error code."""
        dbapi_error: type[Exception] = getattr(
            self.engine.dialect.loaded_dbapi, "Error", DBAPIError
        )
        try:
            try:
                yield
            except dbapi_error as raw:
                # A driver error SQLAlchemy did not wrap (raised while it set up a
                # new connection, e.g. its isolation level): classified the same way.
                wrapped = DBAPIError.instance(None, None, raw, dbapi_error)
                raise wrapped from raw
        except DBAPIError as exc:
            kind, code = classify_error(exc)
            LOG.debug("store %s: %s: %s error %s", self.display_url, operation, kind, code)
            if kind == "integrity":
                raise
            if kind == "unavailable":
                raise exceptions.StoreUnavailable(self.display_url, _reason(exc)) from exc
            if kind == "busy":
                timeout = self.sqlite_busy_timeout if code.startswith("SQLITE") else None
                raise exceptions.StoreBusy(self.display_url, operation, timeout, code) from exc
            if kind == "conflict":
                raise exceptions.TransactionConflict(self.display_url, operation, code) from exc
            raise exceptions.StoreQueryFailed(self.display_url, operation, code) from exc
        except StatementError as exc:  # failed before reaching the database
            code = type(exc.orig).__name__ if exc.orig is not None else "statement"
            raise exceptions.StoreQueryFailed(self.display_url, operation, code) from exc

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
        if state.current is None and not self.create:
            # Read-only: an empty database is not given a schema.
            raise exceptions.SchemaOutdated(self.display_url, state.current, state.head)
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
        :raises tracker.exceptions.InvalidInput: ``key`` cannot be a key.
        """
        if key is not None:
            from tracker import validation

            key = validation.key_value_key("key", key)
        stmt = select(models.KeyValue.key, models.KeyValue.value)
        if key is not None:
            stmt = stmt.where(models.KeyValue.key == key)
        with self.read() as session:
            return {row.key: row.value for row in session.execute(stmt)}

    def set_key_value(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing any previous value.

        :returns: nothing.
        :raises tracker.exceptions.InvalidInput: ``key`` or ``value`` is not
            text that every database stores (see :mod:`tracker.validation`).
        """
        from tracker import validation

        key = validation.key_value_key("key", key)
        value = validation.key_value_value("value", value)

        def put(session: Session) -> None:
            row = session.get(models.KeyValue, key)
            if row is None:
                session.add(models.KeyValue(key=key, value=value))
                session.flush()
            else:
                row.value = value

        try:
            self.run_write(put, f"set key {key}")
        except IntegrityError:
            # Another process inserted the key between this one's read and insert:
            # the key exists now, so the second try updates it.
            self.run_write(put, f"set key {key}")

    def delete_key_value(self, key: str) -> None:
        """Remove ``key``; removing a missing key is not an error.

        :returns: nothing.
        :raises tracker.exceptions.InvalidInput: ``key`` cannot be a key.
        """
        from tracker import validation

        key = validation.key_value_key("key", key)
        with self.write() as session:
            session.execute(delete(models.KeyValue).where(models.KeyValue.key == key))

    def __repr__(self) -> str:
        return f"<Store {self.display_url}>"


#: PostgreSQL SQLSTATEs (besides class 08, connection exception) that mean the
#: server cannot be used: shut down, starting, refusing logins, no such database.
_PG_UNAVAILABLE = frozenset({"57P01", "57P02", "57P03", "3D000", "28000", "28P01", "53300"})
_PG_CONFLICT = frozenset({"40P01", "40001"})  # deadlock, serialization failure
_PG_BUSY = frozenset({"55P03"})  # lock_not_available (lock_timeout)
#: MySQL/MariaDB error numbers: server gone or refusing us ...
_MYSQL_UNAVAILABLE = frozenset(
    {1040, 1044, 1045, 1049, 1053, 1129, 1130, 1927, 2002, 2003, 2005, 2006, 2013, 2055, 4031}
)
#: ... deadlock, "record changed since last read" (snapshot isolation) ...
_MYSQL_CONFLICT = frozenset({1213, 1020})
#: ... and lock wait timeout.
_MYSQL_BUSY = frozenset({1205})
#: SQLite primary result codes: cannot open, not a database, I/O error, corrupt.
_SQLITE_UNAVAILABLE = frozenset({14, 26, 10, 11})
_SQLITE_BUSY = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED


def classify_error(exc: DBAPIError) -> tuple[str, str]:
    """Classify a database error by its SQLSTATE or driver error code, never its text.

    :returns: ``(kind, code)``; ``kind`` is ``"unavailable"``, ``"busy"``,
        ``"conflict"`` (deadlock or serialisation failure: retry the
        transaction), ``"integrity"`` or ``"other"``; ``code`` names the error
        (``"40P01"``, ``"MySQL 1213"``, ``"SQLITE_BUSY"``).
    """
    orig = exc.orig
    if exc.connection_invalidated:  # SQLAlchemy saw the connection break
        return "unavailable", getattr(orig, "sqlstate", None) or type(orig).__name__
    driver = type(orig).__module__.split(".")[0]
    lost = isinstance(exc, OperationalError | InterfaceError)
    if driver == "psycopg":
        sqlstate = getattr(orig, "sqlstate", None)
        if sqlstate is None:  # raised by the client library: no server answer
            return ("unavailable" if lost else "other", type(orig).__name__)
        if sqlstate.startswith("08") or sqlstate in _PG_UNAVAILABLE:
            kind = "unavailable"
        elif sqlstate in _PG_CONFLICT:
            kind = "conflict"
        elif sqlstate in _PG_BUSY:
            kind = "busy"
        elif sqlstate.startswith("23"):
            kind = "integrity"
        else:
            kind = "other"
        return kind, sqlstate
    if driver == "pymysql":
        args = getattr(orig, "args", ())
        number = args[0] if args and isinstance(args[0], int) else None
        code = f"MySQL {number}" if number is not None else type(orig).__name__
        if number in _MYSQL_UNAVAILABLE or (number in (None, 0) and lost):
            return "unavailable", code
        if number in _MYSQL_CONFLICT:
            return "conflict", code
        if number in _MYSQL_BUSY:
            return "busy", code
        return ("integrity" if isinstance(exc, IntegrityError) else "other"), code
    if isinstance(orig, sqlite3.Error):
        number = getattr(orig, "sqlite_errorcode", None)
        name = getattr(orig, "sqlite_errorname", None) or type(orig).__name__
        primary = None if number is None else number & 0xFF
        if primary in _SQLITE_BUSY:
            return "busy", name
        if primary in _SQLITE_UNAVAILABLE:
            return "unavailable", name
        return ("integrity" if isinstance(exc, IntegrityError) else "other"), name
    return ("integrity" if isinstance(exc, IntegrityError) else "other"), type(orig).__name__


def _reason(exc: DBAPIError) -> str:
    """The driver's own words for a connection failure (no SQL in them)."""
    orig = exc.orig
    args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
    if type(orig).__module__.startswith("pymysql") and len(args) > 1:
        return str(args[1])
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    LOG.debug("retrying a transaction after %s (attempt %d)", error, state.attempt_number)


def _configure_mysql(engine: Engine) -> None:
    """Start read transactions as consistent, read-only snapshots."""

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("tracker_snapshot", False):
            # The driver's own cursor: transaction control, not a counted statement.
            cursor = conn.connection.dbapi_connection.cursor()
            try:
                cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            finally:
                cursor.close()


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
