"""What the ``tracker`` sub-commands share: registering, options, opening the store."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from oslo_config import cfg

from tracker.db.store import Store
from tracker.exceptions import TrackerError

#: A sub-command's handler: gets the parsed configuration, returns the exit code.
Handler = Callable[[cfg.ConfigOpts], int]

DATABASE_URL_HELP = (
    "SQLAlchemy URL of the metadata store; overrides [database] connection of the "
    "configuration files (and the OS_DATABASE__CONNECTION environment variable)."
)


class CommandError(TrackerError):
    """A command failed for a reason outside the store (a file it cannot read or write).

    :ivar message: what went wrong, for the operator.
    """

    template = "{message}"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message=message)


def add_command(
    subparsers: Any,
    name: str,
    handler: Handler,
    *,
    help: str,
    description: str | None = None,
    uses_store: bool = True,
) -> argparse.ArgumentParser:
    """Add one sub-command parser that runs ``handler``.

    :param subparsers: the argparse sub-parsers action to add to.
    :param name: the command's name.
    :param help: the one-line summary shown in the parent's help.
    :param description: the longer text of the command's own ``--help``.
    :param uses_store: give the command its own ``--database-url`` option.
    :returns: the new parser, to add the command's arguments to.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help, description=description or help
    )
    parser.set_defaults(handler=handler)
    if uses_store:
        # A distinct dest: argparse copies every sub-parser default onto the
        # main namespace, which would hide the global option's value.
        parser.add_argument(
            "--database-url",
            dest="command_database_url",
            metavar="URL",
            default=None,
            help=DATABASE_URL_HELP,
        )
    return parser


def add_json(parser: argparse.ArgumentParser) -> None:
    """Give a command the ``--json`` switch.

    :returns: nothing.
    """
    parser.add_argument(
        "--json",
        action="store_true",
        default=False,
        help="print a JSON document on standard output instead of text",
    )


def arg(conf: cfg.ConfigOpts, name: str, default: Any = None) -> Any:
    """Read an argument of the chosen sub-command.

    :param name: the argument's ``dest``.
    :param default: what to return when the command has no such argument.
    :returns: its value.
    """
    try:
        return getattr(conf.command, name)
    except cfg.NoSuchOptError:
        return default


def database_url(conf: cfg.ConfigOpts) -> str | None:
    """Find the store URL given on the command line.

    :returns: ``--database-url`` given after or before the sub-command, or
        ``None`` to use the configuration.
    """
    url: str | None = arg(conf, "command_database_url") or conf.database_url
    return url


@contextmanager
def opened_store(conf: cfg.ConfigOpts, *, check_schema: bool = True) -> Iterator[Store]:
    """Open the store the command line and configuration point at; dispose it after.

    :param check_schema: ``False`` for the ``tracker db`` commands, which must
        work on stores whose schema is behind or ahead of the code.
    :returns: a context manager yielding the store.
    :raises tracker.exceptions.StoreError: as :class:`tracker.db.store.Store`.
    """
    url = database_url(conf)
    if url:
        conf.set_override("connection", url, group="database")
    store = Store.from_config(conf, check_schema=check_schema)
    try:
        yield store
    finally:
        store.dispose()


def print_json(document: Any) -> None:
    """Print ``document`` as indented JSON on standard output.

    :returns: nothing.
    :raises TypeError: it holds something JSON cannot represent.
    """
    print(json.dumps(document, indent=2, sort_keys=True))


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """:returns: ``"1 volume"``, ``"3 volumes"``."""
    word = noun if count == 1 else (plural_form or f"{noun}s")
    return f"{count} {word}"
