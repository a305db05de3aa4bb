"""Entry point of the ``tracker`` command (``tracker.cli.main:main``).

Options come from oslo.config: each call of :func:`main` builds its own
:class:`~oslo_config.cfg.ConfigOpts` (there is no global one), registers
tracker's options on it (:func:`tracker.opts.register_opts`) and a
:class:`~oslo_config.cfg.SubCommandOpt` whose handler adds the sub-commands.
``--config-file`` and ``--config-dir`` are oslo.config's own; without them the
usual places (``~/.tracker/``, ``~/``, ``/etc/tracker/``, ``/etc/``) are read
for ``tracker.conf``.

Exit codes: 0 success, 1 a tracker error (one ``error: ...`` line on standard
error, never a traceback) or ``tracker db check`` found drift, 2 bad arguments.
"""

from __future__ import annotations

import sys
from typing import Any

from oslo_config import cfg
from sqlalchemy.exc import SQLAlchemyError

from tracker import __version__, exceptions, opts
from tracker.cli import common

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

DESCRIPTION = (
    "Persistent resource tracker for cinderlib-style volume managers. "
    "The store is [database] connection of the configuration files, or --database-url "
    "(accepted before or after the command), or else the embedded SQLite file in "
    "$XDG_STATE_HOME/tracker."
)
EPILOG = "Run `tracker COMMAND --help` for a command's options."


def _add_commands(subparsers: Any) -> None:
    """The :class:`cfg.SubCommandOpt` handler: add every sub-command."""
    from tracker.cli import db, demo, discovery, status, transfer

    subparsers.metavar = "COMMAND"
    status.register(subparsers)
    db.register(subparsers)
    transfer.register(subparsers)
    discovery.register(subparsers)
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


def _fail(message: str, code: int = EXIT_ERROR) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the ``tracker`` command.

    :param argv: the arguments, without the program name; ``sys.argv[1:]`` by default.
    :returns: the exit code: 0 on success, 1 on a tracker error (reported as
        one ``error: ...`` line on standard error), 2 on bad arguments.
    :raises KeyboardInterrupt: never; an interruption returns 130.
    """
    conf = build_config()
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
        return _fail(f"configuration: {_one_line(exc)}")
    try:
        handler: common.Handler = conf.command.handler
        return handler(conf)
    except exceptions.TrackerError as exc:
        return _fail(_one_line(exc))
    except cfg.Error as exc:  # a bad value in a configuration file
        return _fail(f"configuration: {_one_line(exc)}")
    except SQLAlchemyError as exc:
        return _fail(f"database: {_one_line(exc)}")
    except OSError as exc:
        return _fail(_one_line(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    finally:
        conf.reset()


if __name__ == "__main__":
    sys.exit(main())
