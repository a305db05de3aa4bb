"""Helpers shared by the command-line tests (types, URL rendering)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from tracker.resources import Backend


@dataclass(frozen=True)
class Run:
    """One in-process run of ``tracker``."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., Run]


def url_of(store_or_url: Any) -> str:
    """The URL of a store (or a ThrowawayDatabase, or a URL), with its password."""
    url = getattr(store_or_url, "url", store_or_url)
    return str(url.render_as_string(hide_password=False))


@dataclass
class Tracked:
    """What the ``tracked`` fixture created, to compare the CLI's output with."""

    backend: Backend
    volumes: dict[str, Any]
    snapshots: dict[str, Any]
    connections: dict[str, Any]


def tables_of(url: str) -> set[str]:
    """:returns: the names of the tables in the database at ``url`` (read, nothing made)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
