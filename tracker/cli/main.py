"""Entry point of the ``tracker`` command (``tracker.cli.main:main``).

Options come from oslo.config: each call of :func:`main` builds its own
:class:`~oslo_config.cfg.ConfigOpts` (there is no global one), registers
tracker's options on it (:func:`tracker.opts.register_opts`) and a
:class:`~oslo_config.cfg.SubCommandOpt` whose handler adds the sub-commands.
``--config-file`` and ``--config-dir`` are oslo.config's own; without them the
usual places (``~/.tracker/``, ``~/``, ``/etc/tracker/``, ``/etc/``) are read
for ``tracker.conf``.

Exit codes: 0 success, 1 a tracker error (one ``error: ...`` line on standard
error, never a traceback) or ``tracker db check`` found drift, 2 bad arguments,
3 and 4 ``tracker db current`` found the store behind or newer than the code,
5 ``tracker host show`` for a host never discovered into the store (run
``tracker discover`` first), 6 ``tracker watch`` lost the store for longer
than its grace period, 7 ``tracker watch`` found its host watched by another
process, 124 ``tracker wait`` timed out (the condition did not hold in time; as
``timeout(1)``),
130 interrupted, 141 standard output was closed early (``tracker ... | head``;
nothing more is printed). With ``--json``, an error is one JSON object on
standard error, ``{"error": {"type": ..., "message": ..., ...}}``, with the same
exit code.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, cast

from oslo_config import cfg

from tracker import __version__, exceptions, opts
from tracker.cli import common

if TYPE_CHECKING:
    from sqlalchemy.exc import SQLAlchemyError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: Standard output was closed by its reader: 128 + SIGPIPE, as a shell reports
#: a program killed by a broken pipe.
EXIT_BROKEN_PIPE = 141

DESCRIPTION = (
    "Persistent resource tracker for cinderlib-style volume managers. "
    "The store is [database] connection of the configuration files, or --database-url "
    "(accepted before or after the command), or else the embedded SQLite file in "
    "$XDG_STATE_HOME/tracker."
)
EPILOG = "Run `tracker COMMAND --help` for a command's options."


def _add_commands(subparsers: Any) -> None:
    """The :class:`cfg.SubCommandOpt` handler: add every sub-command.

    The command modules import only argparse and oslo.config at module level;
    SQLAlchemy, Alembic, pyudev and tenacity are imported by the handler that
    uses them, so that ``tracker --help`` and a bad argument stay fast.
    """
    from tracker.cli import connections, db, demo, discovery, paths, status, transfer, wait, watch

    subparsers.metavar = "COMMAND"
    status.register(subparsers)
    db.register(subparsers)
    transfer.register(subparsers)
    discovery.register(subparsers)
    watch.register(subparsers)
    wait.register(subparsers)
    connections.register(subparsers)
    paths.register(subparsers)
    demo.register(subparsers)


def build_config() -> cfg.ConfigOpts:
    """Build the configuration object of one run of the command, unparsed.

    :returns: a fresh ConfigOpts with tracker's options, ``--database-url`` and
        the sub-commands registered.
    """
    conf = cfg.ConfigOpts()
    opts.register_opts(conf)
    conf.register_cli_opts(
        [
            cfg.StrOpt("database-url", metavar="URL", secret=True, help=common.DATABASE_URL_HELP),
            cfg.SubCommandOpt(
                "command",
                title="commands",
                handler=_add_commands,
                help="what to do",
            ),
        ]
    )
    return conf


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(item) for item in value]
    return str(value)


def _fail(
    message: str,
    code: int = EXIT_ERROR,
    *,
    as_json: bool = False,
    error: BaseException | None = None,
) -> int:
    """Report an error on standard error: one line, or one JSON object."""
    if as_json:
        document: dict[str, object] = {
            "type": type(error).__name__ if error is not None else "Error",
            "message": message,
        }
        if isinstance(error, exceptions.TrackerError):
            for key, value in error.fields.items():
                document.setdefault(key, _jsonable(value))
        print(json.dumps({"error": document}, sort_keys=True), file=sys.stderr)
    else:
        print(f"error: {message}", file=sys.stderr)
    return code


def _database_error(error: Exception) -> SQLAlchemyError | None:
    """:returns: ``error`` if it is an SQLAlchemy error, else ``None``.

    SQLAlchemy is not imported to find out: if it was never imported, nothing
    could raise one of its errors.
    """
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_exc is not None and isinstance(error, sqlalchemy_exc.SQLAlchemyError):
        return cast("SQLAlchemyError", error)
    return None


def _database_message(error: SQLAlchemyError) -> str:
    """A database error the store did not translate: its class and the driver's
    first line; never SQL text or SQLAlchemy's "Background on this error" link."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(error, DBAPIError) and error.orig is not None:
        lines = str(error.orig).strip().splitlines()
        first = lines[0] if lines else ""
        return f"database: {type(error.orig).__name__}: {first}".rstrip(": ")
    return f"database: {type(error).__name__}"


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's last flush
    cannot fail again on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the ``tracker`` command.

    :param argv: the arguments, without the program name; ``sys.argv[1:]`` by default.
    :returns: the exit code: 0 on success, 1 on a tracker error (reported as
        one ``error: ...`` line on standard error), 2 on bad arguments.
    :raises KeyboardInterrupt: never; an interruption returns 130.
    """
    conf = build_config()
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    try:
        conf(
            argv,
            project="tracker",
            prog="tracker",
            version=__version__,
            description=DESCRIPTION,
            epilog=EPILOG,
        )
    except SystemExit as exc:  # argparse: --help, --version, or bad arguments
        code = exc.code
        return code if isinstance(code, int) else (EXIT_OK if code is None else EXIT_USAGE)
    except cfg.Error as exc:  # unreadable or malformed configuration files
        try:
            # Name the option, its source and its value where oslo.config does not.
            common.check_options(conf)
        except exceptions.ConfigError as precise:
            return _fail(_one_line(precise), as_json=as_json, error=precise)
        except cfg.Error:
            pass
        return _fail(f"configuration: {_one_line(exc)}", as_json=as_json, error=exc)
    as_json = bool(common.arg(conf, "json", False))
    try:
        common.check_options(conf)
        handler: common.Handler = conf.command.handler
        code = handler(conf)
        sys.stdout.flush()  # a closed pipe is found here, not at interpreter exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except exceptions.TrackerError as exc:
        code = getattr(exc, "exit_code", EXIT_ERROR)  # HostNotDiscovered: 5
        return _fail(_one_line(exc), code, as_json=as_json, error=exc)
    except cfg.Error as exc:  # a bad value oslo.config found late
        return _fail(f"configuration: {_one_line(exc)}", as_json=as_json, error=exc)
    except OSError as exc:
        return _fail(_one_line(exc), as_json=as_json, error=exc)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED, as_json=as_json)
    except Exception as exc:
        database_error = _database_error(exc)
        if database_error is None:
            raise
        return _fail(_database_message(database_error), as_json=as_json, error=exc)
    finally:
        conf.reset()


if __name__ == "__main__":
    sys.exit(main())
