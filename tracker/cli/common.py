"""What the ``tracker`` sub-commands share: registering, options, opening the store."""

from __future__ import annotations

import argparse
import json
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from tracker import exceptions, opts
from tracker.exceptions import TrackerError

if TYPE_CHECKING:
    # Imported where used: the parser and ``--help`` must not load SQLAlchemy.
    from tracker.db.store import Store

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


def environment_variable(group: str, name: str) -> str:
    """:returns: the variable oslo.config reads an option from (``OS_DATABASE__CONNECTION``)."""
    return f"OS_{group.upper()}__{name.upper()}"


def connection_source(conf: cfg.ConfigOpts) -> str:
    """Say where the store URL came from, for error messages.

    :returns: ``"--database-url"``, ``"OS_DATABASE__CONNECTION"``,
        ``"[database] connection in /etc/tracker/tracker.conf"`` or
        ``"[database] connection (default)"``.
    """
    if database_url(conf):
        return "--database-url"
    location = conf.get_location("connection", "database")
    if location is not None and location.location == cfg.Locations.environment:
        return location.detail or environment_variable("database", "connection")
    if location is not None and location.location == cfg.Locations.user and location.detail:
        return f"[database] connection in {location.detail}"
    return "[database] connection (default)"


def _config_files(conf: cfg.ConfigOpts) -> list[Path]:
    """The configuration files oslo.config read, in the order it read them."""
    files = [Path(name) for name in (conf.config_file or [])]
    dirs = conf.config_dir or []
    for directory in [dirs] if isinstance(dirs, str) else dirs:
        files.extend(sorted(Path(directory).glob("*.conf")))
    return files


def raw_option(conf: cfg.ConfigOpts, group: str, name: str) -> tuple[str, str | None]:
    """Find an option's text as written, before oslo.config converts or substitutes it.

    The environment wins over the files, and a later file over an earlier one,
    as in oslo.config.

    :returns: where it was set (the variable or ``"FILE"``) and its text;
        ``("the configuration", None)`` when it cannot be found.
    """
    variable = environment_variable(group, name)
    if variable in os.environ:
        return variable, os.environ[variable]
    found: tuple[str, str | None] = ("the configuration", None)
    for path in _config_files(conf):
        sections: dict[str, dict[str, list[str]]] = {}
        try:
            cfg.ConfigParser(str(path), sections).parse()
        except (OSError, cfg.ParseError):
            continue
        values = sections.get(group, {}).get(name)
        if values:
            found = (str(path), values[-1])
    return found


def check_options(conf: cfg.ConfigOpts) -> None:
    """Read every tracker option once, so a bad value fails early with a clear message.

    oslo.config's own messages quote its internals (``LocationInfo(...)``);
    this names the option, where its value came from and why it is refused,
    with secrets masked.

    :returns: nothing.
    :raises tracker.exceptions.ConfigError: an option's value is not valid.
    """
    for group, group_opts in opts.list_opts():
        for opt in group_opts:
            try:
                conf[group.name][opt.dest]
            except (
                cfg.ConfigFileValueError,
                cfg.ConfigSourceValueError,
                cfg.TemplateSubstitutionError,
                cfg.NoSuchOptError,  # what a $NAME naming no option raises
            ) as exc:
                source, raw = raw_option(conf, group.name, opt.dest)
                if isinstance(exc, cfg.TemplateSubstitutionError | cfg.NoSuchOptError):
                    reason = (
                        "oslo.config reads $NAME as a reference to another option, "
                        "and there is none by that name (write $$ for a literal $)"
                    )
                else:
                    reason = "not a valid value"
                    try:
                        opt.type(raw)
                    except (ValueError, TypeError) as error:
                        reason = " ".join(str(error).split()) or reason
                from tracker.db.store import mask_password

                shown = mask_password(raw) if opt.secret and raw is not None else raw
                where = f"[{group.name}] {opt.dest} in {source}"
                if source.startswith("OS_"):
                    where = source
                value_text = "" if shown is None else f"{shown!r}: "
                raise exceptions.ConfigError(where, f"{value_text}{reason}") from exc


@contextmanager
def opened_store(
    conf: cfg.ConfigOpts, *, check_schema: bool = True, create: bool = True
) -> Iterator[Store]:
    """Open the store the command line and configuration point at; dispose it after.

    :param check_schema: ``False`` for the ``tracker db`` commands, which must
        work on stores whose schema is behind or ahead of the code.
    :param create: ``False`` for read-only commands: a missing SQLite file is
        :class:`~tracker.exceptions.StoreNotFound` and an empty database is not
        given a schema (see :class:`~tracker.db.store.Store`).
    :returns: a context manager yielding the store.
    :raises tracker.exceptions.ConfigError: the URL is unusable; the message
        names where it came from (``--database-url``, a file, the environment).
    :raises tracker.exceptions.StoreError: as :class:`tracker.db.store.Store`.
    """
    from tracker.db.store import Store

    source = connection_source(conf)
    url = database_url(conf)
    if url:
        conf.set_override("connection", url, group="database")
    try:
        store = Store.from_config(conf, check_schema=check_schema, create=create)
    except exceptions.ConfigError as exc:
        if exc.what != "[database] connection":
            raise
        raise exceptions.ConfigError(source, exc.reason) from exc
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


@contextmanager
def stop_on_signals(
    request_stop: Callable[[], None], stopping: Callable[[], bool]
) -> Iterator[None]:
    """While the block runs, SIGTERM and SIGINT ask for a stop; a second one interrupts.

    :param request_stop: called by the first signal (it must be safe in a
        signal handler: set a flag).
    :param stopping: whether a stop was asked for already; then the signal
        raises :class:`KeyboardInterrupt` (exit 130).
    :returns: a context manager; the previous handlers are put back after it.
    """

    def handler(signum: int, frame: object) -> None:
        if stopping():
            raise KeyboardInterrupt
        request_stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
