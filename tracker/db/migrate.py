"""Schema migrations of the store, wrapping Alembic.

The Alembic environment lives in ``migrations/`` at the top of the source tree
and is installed as the ``tracker.migrations`` package. These functions run it
on a :class:`~tracker.db.store.Store`'s own connection; ``tracker db ...`` on
the command line calls them.

Checking a store's revision, which every command opening a store does, does
not import Alembic (about a third of a short command's start-up): the code's
revisions are read from the ``revision`` and ``down_revision`` assignments of
the files in ``versions/`` (:func:`code_revisions`), and the store's from its
``alembic_version`` table with a plain select. Alembic is imported to migrate,
compare or list the migrations, and to resolve the revisions whenever the files
cannot be read that simply.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, column, create_engine, func, inspect, select, table
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool

from tracker import exceptions

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from tracker.db.store import Store

#: Alembic's table of the store's revision, and its column.
VERSION_TABLE = "alembic_version"
VERSION_COLUMN = "version_num"
#: The module-level assignments a revision file is read for.
_ASSIGNMENT = re.compile(
    r"^(?P<name>revision|down_revision)\s*(?::[^=\n]*)?=\s*(?P<value>[^\n#]+?)\s*(?:#.*)?$",
    re.MULTILINE,
)
#: The files Alembic reads as revisions (its ``_only_source_rev_file``).
_REVISION_FILE = re.compile(r"^(?!\.#|__init__)[^/]*\.py$")


def script_location() -> Path:
    """:returns: the directory holding ``env.py`` and ``versions/``.

    :raises tracker.exceptions.MigrationError: the environment is not installed.
    """
    spec = importlib.util.find_spec("tracker.migrations")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    # Running from a source tree that was not installed: migrations/ sits
    # beside the tracker package.
    candidate = Path(__file__).resolve().parents[2] / "migrations"
    if (candidate / "env.py").is_file():
        return candidate
    raise exceptions.MigrationError("<none>", "the tracker.migrations package is not installed")


def alembic_config(connection: Connection | None = None) -> Config:
    """Build an Alembic configuration for tracker's migrations.

    :param connection: the connection migrations run on, if any.
    :returns: the configuration (no ``alembic.ini`` is read).
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def script_directory() -> ScriptDirectory:
    """:returns: Alembic's view of the revisions this code ships."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def _literal(text: str) -> str | tuple[str, ...] | None:
    """:returns: a ``down_revision`` value as written: a string, a tuple of them or ``None``.

    :raises ValueError: anything else (an expression, a name).
    """
    value = ast.literal_eval(text)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, tuple | list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise ValueError(text)


def parse_revisions(versions: Path) -> dict[str, tuple[str, ...]] | None:
    """Read the revision graph from the files of a ``versions/`` directory, without Alembic.

    Each file must assign ``revision`` a string literal and ``down_revision``
    ``None``, a string or a tuple of strings, once each, at module level (as
    Alembic's template writes them).

    :param versions: the directory.
    :returns: each revision's down revisions (an empty tuple for a base), or
        ``None`` when a file cannot be read that way, so the caller asks Alembic.
    """
    graph: dict[str, tuple[str, ...]] = {}
    try:
        names = sorted(entry.name for entry in versions.iterdir() if entry.is_file())
        for name in names:
            if not _REVISION_FILE.match(name):
                continue
            found: dict[str, list[str]] = {"revision": [], "down_revision": []}
            for match in _ASSIGNMENT.finditer((versions / name).read_text(encoding="utf-8")):
                found[match["name"]].append(match["value"])
            if len(found["revision"]) != 1 or len(found["down_revision"]) != 1:
                return None
            revision = _literal(found["revision"][0])
            down = _literal(found["down_revision"][0])
            if not isinstance(revision, str) or revision in graph:
                return None
            graph[revision] = () if down is None else (down,) if isinstance(down, str) else down
    except (OSError, UnicodeDecodeError, ValueError, SyntaxError):
        return None
    return graph


def single_head(graph: Mapping[str, tuple[str, ...]]) -> str | None:
    """Find the head of a revision graph.

    :returns: the one revision no other revision follows; ``None`` when there
        are none or several, or a down revision is missing (Alembic then decides).
    """
    followed = {down for downs in graph.values() for down in downs}
    if not followed <= graph.keys():
        return None
    heads = [revision for revision in graph if revision not in followed]
    return heads[0] if len(heads) == 1 else None


@functools.lru_cache(maxsize=1)
def code_revisions() -> tuple[str, frozenset[str]]:
    """The code's head revision and every revision it knows.

    Read from the migration files (:func:`parse_revisions`); Alembic is asked
    only when they cannot be read that way.

    :returns: the head and the set of known revisions.
    :raises tracker.exceptions.MigrationError: the migrations are not installed,
        or Alembic cannot resolve a single head.
    """
    graph = parse_revisions(script_location() / "versions")
    head = None if graph is None else single_head(graph)
    if graph is not None and head is not None:
        return head, frozenset(graph)
    from alembic.util import CommandError

    try:
        scripts = script_directory()
        alembic_head = scripts.get_current_head()
        known = frozenset(script.revision for script in scripts.walk_revisions())
    except CommandError as exc:
        raise exceptions.MigrationError("<none>", _first_line(exc)) from exc
    assert alembic_head is not None, "tracker ships at least one migration"
    return alembic_head, known


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a store's schema stands against the code.

    :ivar current: the store's revision, ``None`` for an empty store.
    :ivar head: the newest revision this code knows.
    :ivar known: whether this code knows ``current``.
    """

    current: str | None
    head: str
    known: bool

    @property
    def is_current(self) -> bool:
        """:returns: ``True`` when the store is at the code's head."""
        return self.current == self.head

    @property
    def is_newer(self) -> bool:
        """:returns: ``True`` when a newer tracker migrated the store."""
        return self.current is not None and not self.known

    @property
    def is_behind(self) -> bool:
        """:returns: ``True`` when the store needs ``tracker db upgrade``."""
        return not self.is_current and not self.is_newer


@contextmanager
def _connect(store: Store, *, for_ddl: bool = False) -> Iterator[Connection]:
    try:
        with store.engine.connect() as conn:
            if for_ddl and store.dialect == "sqlite":
                # SQLite rebuilds tables to alter them; with foreign keys on,
                # dropping the old copy of a parent table would trip them. The
                # pragma only takes effect outside a transaction, so it goes
                # to the driver before SQLAlchemy begins one.
                raw: Any = conn.connection.dbapi_connection
                raw.execute("PRAGMA foreign_keys=OFF")
            yield conn
    except OperationalError as exc:
        raise exceptions.StoreUnavailable(store.display_url, str(exc.orig)) from exc


def _current_revision(conn: Connection) -> str | None:
    """Read the store's revision from ``alembic_version`` with a plain select."""
    heads: list[str] = []
    if inspect(conn).has_table(VERSION_TABLE):
        version = table(VERSION_TABLE, column(VERSION_COLUMN))
        heads = list(conn.execute(select(version.c[VERSION_COLUMN])).scalars())
    conn.rollback()
    if len(heads) > 1:
        raise exceptions.MigrationError(
            str(conn.engine.url), f"the store has several schema heads: {heads}"
        )
    return heads[0] if heads else None


def schema_state(store: Store) -> SchemaState:
    """Compare the store's revision with the code's.

    :returns: the :class:`SchemaState`.
    :raises tracker.exceptions.StoreUnavailable: the database cannot be reached.
    """
    head, revisions = code_revisions()
    with _connect(store) as conn:
        current = _current_revision(conn)
    known = current is None or current in revisions
    return SchemaState(current=current, head=head, known=known)


def current(store: Store) -> str | None:
    """:returns: the store's schema revision, ``None`` for an empty store.

    :raises tracker.exceptions.StoreUnavailable: the database cannot be reached.
    """
    with _connect(store) as conn:
        return _current_revision(conn)


def _first_line(error: BaseException) -> str:
    """:returns: the first line of a driver's message (never the SQL it may quote)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _shape(conn: Connection) -> dict[str, set[str]]:
    inspector = inspect(conn)
    return {
        name: {col["name"] for col in inspector.get_columns(name)}
        for name in inspector.get_table_names()
        if name != "alembic_version"
    }


@functools.lru_cache(maxsize=32)
def _dropped_by_downgrade(
    current: str, target: str
) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Find what a downgrade from ``current`` to ``target`` removes.

    Nothing is declared per revision: the shipped migrations are run on a
    scratch in-memory SQLite database, up to ``current`` and then down to
    ``target`` (resolved by Alembic exactly as the real downgrade resolves
    it), and the two schemas are compared.

    :param current: the store's revision.
    :param target: the downgrade's target (a revision id, ``"base"``, ``"-1"``...).
    :returns: the tables dropped, and the ``(table, column)`` pairs dropped from
        tables that remain.
    :raises alembic.util.CommandError: Alembic cannot resolve the revisions
        (callers turn it into :class:`~tracker.exceptions.MigrationError`).
    """
    from alembic import command

    scratch = create_engine("sqlite://", poolclass=StaticPool)
    try:
        with scratch.connect() as conn:
            config = alembic_config(conn)
            command.upgrade(config, current)
            before = _shape(conn)
            command.downgrade(config, target)
            after = _shape(conn)
            conn.rollback()
    finally:
        scratch.dispose()
    tables = tuple(sorted(set(before) - set(after)))
    columns = tuple(
        sorted(
            (name, col) for name in set(before) & set(after) for col in before[name] - after[name]
        )
    )
    return tables, columns


def _count_losses(
    conn: Connection, tables: tuple[str, ...], columns: tuple[tuple[str, str], ...]
) -> dict[str, int]:
    """Count, in the live store, the rows of ``tables`` and the non-null values of ``columns``.

    :returns: ``{"volumes": 3, "volumes.description": 2}``; zero counts are left out.
    """
    live = _shape(conn)
    losses: dict[str, int] = {}
    for name in tables:
        if name in live:
            rows = conn.execute(select(func.count()).select_from(table(name))).scalar_one()
            if rows:
                losses[name] = int(rows)
    for name, col in columns:
        if col in live.get(name, set()):
            values = conn.execute(
                select(func.count(column(col))).select_from(table(name))
            ).scalar_one()
            if values:
                losses[f"{name}.{col}"] = int(values)
    return losses


def planned_losses(store: Store, revision: str) -> dict[str, int]:
    """Say what downgrading the store to ``revision`` would lose, without changing it.

    :returns: rows per dropped table (``"volumes"``) and non-null values per
        dropped column (``"volumes.description"``); empty when nothing stored
        would be lost.
    :raises tracker.exceptions.SchemaTooNew: a newer tracker migrated the store.
    :raises tracker.exceptions.MigrationError: the revision cannot be resolved.
    :raises tracker.exceptions.StoreUnavailable: the database cannot be reached.
    """
    from alembic.util import CommandError

    state = schema_state(store)
    if state.is_newer:
        raise exceptions.SchemaTooNew(store.display_url, state.current or "?", state.head)
    if state.current is None:
        return {}
    try:
        tables, columns = _dropped_by_downgrade(state.current, revision)
    except CommandError as exc:
        raise exceptions.MigrationError(store.display_url, _first_line(exc)) from exc
    with _connect(store) as conn:
        losses = _count_losses(conn, tables, columns)
        conn.rollback()
    return losses


def _run(
    store: Store, action: str, revision: str, *, allow_data_loss: bool = False
) -> dict[str, int]:
    from alembic import command
    from alembic.util import CommandError

    state = schema_state(store)
    if state.is_newer:
        raise exceptions.SchemaTooNew(store.display_url, state.current or "?", state.head)
    losses: dict[str, int] = {}
    if action == "downgrade" and state.current is None:
        return losses  # an empty store: nothing to undo (and no alembic_version to create)
    with _connect(store, for_ddl=True) as conn:
        config = alembic_config(conn)
        try:
            if action == "downgrade" and state.current is not None:
                tables, columns = _dropped_by_downgrade(state.current, revision)
                # Counted on the connection that runs the downgrade: on
                # PostgreSQL, in the same transaction as the DDL.
                losses = _count_losses(conn, tables, columns)
                if losses and not allow_data_loss:
                    conn.rollback()
                    raise exceptions.DataLossRefused(
                        store.display_url, state.current, revision, losses
                    )
            if action == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
            if store.dialect == "sqlite":
                # Foreign keys were off while tables were rebuilt: prove the
                # data still satisfies them before anything is committed.
                problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if problems:
                    conn.rollback()
                    raise exceptions.MigrationError(
                        store.display_url, f"foreign key check failed: {problems[:5]!r}"
                    )
            conn.commit()
        except CommandError as exc:
            raise exceptions.MigrationError(store.display_url, _first_line(exc)) from exc
        except DBAPIError as exc:
            raise exceptions.MigrationError(
                store.display_url, _first_line(exc.orig or exc)
            ) from exc
    return losses


def upgrade(store: Store, revision: str = "head") -> None:
    """Migrate the store up to ``revision``.

    :returns: nothing.
    :raises tracker.exceptions.SchemaTooNew: a newer tracker migrated the store.
    :raises tracker.exceptions.MigrationError: Alembic or the database refused.
    """
    _run(store, "upgrade", revision)


def downgrade(store: Store, revision: str, *, allow_data_loss: bool = False) -> dict[str, int]:
    """Migrate the store down to ``revision`` (``"base"`` empties the schema).

    A downgrade that would drop tables holding rows, or columns holding
    values, needs explicit consent: what it would drop is derived from the
    revisions being undone (the shipped migrations are replayed on a
    scratch SQLite schema and compared) and counted in the
    store first.

    :param allow_data_loss: drop stored data if the downgrade requires it.
    :returns: what was dropped, as :func:`planned_losses` counts it (empty
        when nothing stored was lost).
    :raises tracker.exceptions.DataLossRefused: the downgrade would drop
        stored data and ``allow_data_loss`` is false; nothing was changed.
    :raises tracker.exceptions.SchemaTooNew: a newer tracker migrated the store.
    :raises tracker.exceptions.MigrationError: Alembic or the database refused.
    """
    return _run(store, "downgrade", revision, allow_data_loss=allow_data_loss)


@dataclass(frozen=True, slots=True)
class RevisionInfo:
    """One migration this code ships.

    :ivar revision: its id.
    :ivar down_revision: the revision it follows, ``None`` for the first.
    :ivar message: its one-line description.
    """

    revision: str
    down_revision: str | None
    message: str


def history() -> list[RevisionInfo]:
    """:returns: the migrations this code ships, oldest first."""
    revisions = []
    for script in script_directory().walk_revisions():
        down = script.down_revision
        revisions.append(
            RevisionInfo(
                revision=script.revision,
                down_revision=down if isinstance(down, str) or down is None else ",".join(down),
                message=script.doc or "",
            )
        )
    return list(reversed(revisions))


def check(store: Store) -> list[str]:
    """Compare the store's live schema with the models (Alembic's ``check``).

    :returns: one line per difference; empty when there is no drift.
    :raises tracker.exceptions.SchemaOutdated: the store is not at head, so a
        comparison would only repeat the pending migrations.
    :raises tracker.exceptions.StoreUnavailable: the database cannot be reached.
    """
    state = schema_state(store)
    if state.is_newer:
        raise exceptions.SchemaTooNew(store.display_url, state.current or "?", state.head)
    if not state.is_current:
        raise exceptions.SchemaOutdated(store.display_url, state.current, state.head)
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from tracker.db.models import Base

    with _connect(store) as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(context, Base.metadata)
        conn.rollback()
    return [repr(diff) for diff in diffs]
