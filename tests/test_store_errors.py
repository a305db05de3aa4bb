"""Database errors become typed errors, classified by SQLSTATE or driver error code."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlalchemy.orm import Session

from tracker import exceptions
from tracker.db import models
from tracker.db.store import Store

EXPECTED_CODE = {"sqlite": "SQLITE_ERROR", "postgresql": "42883", "mariadb": "MySQL 1305"}


def test_an_unexpected_database_error_is_typed_and_names_its_code(
    store: Store, dialect: str
) -> None:
    """Not StoreUnavailable (the old text match took "does not exist" for a lost server)."""
    with (
        pytest.raises(exceptions.StoreQueryFailed) as raised,
        store.read() as session,
    ):
        session.execute(text("SELECT no_such_function()"))
    error = raised.value
    assert not isinstance(error, exceptions.StoreUnavailable)
    assert error.code == EXPECTED_CODE[dialect]
    assert error.operation == "read"
    message = str(error)
    assert EXPECTED_CODE[dialect] in message and "read failed" in message
    for leak in ("SELECT", "no_such_function", "Background on this error", "sqlalche.me"):
        assert leak not in message
    store.set_key_value("still", "usable")  # the store is not broken by it
    assert store.get_key_values("still") == {"still": "usable"}


def test_a_sqlite_writer_past_the_busy_timeout_is_store_busy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/busy.sqlite"
    holder = Store(url)
    waiter = Store(url, sqlite_busy_timeout=0.2)
    holder.set_key_value("k", "before")
    with holder.write() as session:
        session.execute(update(models.KeyValue).values(value="holder"))
        with pytest.raises(exceptions.StoreBusy) as raised:
            waiter.set_key_value("k", "waiter")
    error = raised.value
    assert error.timeout == 0.2 and error.code.startswith("SQLITE_BUSY")
    assert "is busy" in str(error) and "0.2 s" in str(error)
    assert "database is locked" not in str(error)
    assert waiter.get_key_values() == {"k": "holder"}  # the waiter wrote nothing
    waiter.set_key_value("k", "waiter")  # and can write once the lock is free
    assert holder.get_key_values() == {"k": "waiter"}


def _deadlock(store: Store, *, retried: bool) -> list[BaseException | None]:
    """Two transactions each update one key-value row, then the other's."""
    store.set_key_value("a", "0")
    store.set_key_value("b", "0")
    barrier = threading.Barrier(2)
    errors: list[BaseException | None] = [None, None]

    def work(session: Session, mine: str, theirs: str, first: list[bool]) -> None:
        kv = models.KeyValue
        session.execute(update(kv).where(kv.key == mine).values(value=mine))
        if first:  # only the first attempt waits for the other (a retry must not)
            first.clear()
            barrier.wait(timeout=30)
        session.execute(update(kv).where(kv.key == theirs).values(value=mine))

    def run(index: int, mine: str, theirs: str) -> None:
        first = [True]
        try:
            if retried:
                store.run_write(lambda s: work(s, mine, theirs, first), f"swap {mine}")
            else:
                with store.write() as session:
                    work(session, mine, theirs, first)
        except BaseException as exc:
            errors[index] = exc

    threads = [
        threading.Thread(target=run, args=(0, "a", "b")),
        threading.Thread(target=run, args=(1, "b", "a")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


DEADLOCK_CODE = {"postgresql": "40P01", "mariadb": "MySQL 1213"}


@pytest.mark.parametrize("dialect", ["postgresql", "mariadb"])
def test_a_deadlock_without_retry_is_a_typed_conflict(store: Store, dialect: str) -> None:
    errors = _deadlock(store, retried=False)
    raised = [e for e in errors if e is not None]
    assert len(raised) == 1, errors
    error = raised[0]
    assert isinstance(error, exceptions.TransactionConflict), repr(error)
    assert error.code == DEADLOCK_CODE[dialect] and error.operation == "write"
    assert "Deadlock" not in str(error) and "UPDATE" not in str(error)
    # The victim wrote nothing: both rows hold the winner's value.
    values = store.get_key_values()
    assert values["a"] == values["b"] != "0"


@pytest.mark.parametrize("dialect", ["postgresql", "mariadb"])
def test_a_deadlock_is_retried_inside_the_operation(store: Store, dialect: str) -> None:
    assert _deadlock(store, retried=True) == [None, None]
    values = store.get_key_values()
    assert values["a"] == values["b"] != "0"  # one ran after the other, whole


def test_the_retry_gives_up_after_its_attempts(store: Store, dialect: str) -> None:
    calls = []

    def always_collides(session: Session) -> None:
        calls.append(1)
        raise exceptions.TransactionConflict(store.display_url, "test", "40P01")

    store.retry_attempts = 3
    with pytest.raises(exceptions.TransactionConflict) as raised:
        store.run_write(always_collides, "give up")
    assert len(calls) == 3
    assert raised.value.attempts == 3 and raised.value.operation == "give up"


def _lost_connection(dialect: str) -> Exception:
    """The driver's own "server gone" error, as it escapes while a connection is set up."""
    if dialect == "postgresql":
        import psycopg

        return psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    if dialect == "mariadb":
        import pymysql

        return pymysql.err.OperationalError(2013, "Lost connection to server during query")
    raise AssertionError(f"no server to lose on {dialect}")


@pytest.mark.parametrize("dialect", ["postgresql", "mariadb"])
def test_a_raw_driver_error_is_classified_too(store: Store, dialect: str) -> None:
    """SQLAlchemy leaves driver errors raised while it sets up a connection unwrapped."""
    raw = _lost_connection(dialect)
    with pytest.raises(exceptions.StoreUnavailable) as raised, store.read():
        raise raw
    assert raised.value.__cause__ is not None
    assert "Background on this error" not in str(raised.value)
