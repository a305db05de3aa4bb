"""Counting the SQL statements a piece of code sends (tests, demo, benchmarks)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event


@dataclass
class QueryLog:
    """Statements seen while :func:`count_queries` was active.

    :ivar statements: their SQL text, in order (transaction control excluded).
    """

    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """:returns: how many statements were sent."""
        return len(self.statements)

    @property
    def writes(self) -> list[str]:
        """:returns: the INSERT, UPDATE and DELETE statements."""
        return [s for s in self.statements if s.lstrip().split(" ", 1)[0].upper() in _WRITE_VERBS]

    def reset(self) -> None:
        """Forget what was counted so far.

        :returns: nothing.
        """
        self.statements.clear()


_WRITE_VERBS = frozenset({"INSERT", "UPDATE", "DELETE", "REPLACE"})
_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA")


@contextmanager
def count_queries(engine: Engine) -> Iterator[QueryLog]:
    """Record every statement sent on ``engine`` inside the ``with`` block.

    ``executemany`` counts once, as the database sees one statement.

    :returns: a context manager yielding the live :class:`QueryLog`.
    """
    log = QueryLog()

    def before_cursor_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if not statement.lstrip().upper().startswith(_CONTROL):
            log.statements.append(statement)

    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield log
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)
