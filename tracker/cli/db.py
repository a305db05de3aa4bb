"""``tracker db ...``: schema migrations of the store.

These commands open the store without checking its schema, so they work on
stores that are behind the code (to upgrade them) or ahead of it (to say so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oslo_config import cfg

from tracker import exceptions
from tracker.cli import common

if TYPE_CHECKING:
    # Imported by each handler: the parser must not load SQLAlchemy.
    from tracker.db import migrate

STATE_CURRENT = "current"
STATE_BEHIND = "behind"
STATE_NEWER = "newer than this tracker"

#: Exit statuses of ``tracker db current`` (1 and 2 keep their meaning: an
#: error, bad arguments).
EXIT_CURRENT = 0
EXIT_BEHIND = 3
EXIT_NEWER = 4

CURRENT_DESCRIPTION = (
    "Show the store's schema revision and whether it is current, behind (older than "
    "this tracker, or empty) or newer than this tracker. Nothing is created or migrated. "
    f"Exit status: {EXIT_CURRENT} current, {EXIT_BEHIND} behind (run `tracker db upgrade`), "
    f"{EXIT_NEWER} newer than this tracker, 1 the store cannot be read, 2 bad arguments."
)


def register(subparsers: Any) -> None:
    """Add ``tracker db`` and its sub-commands.

    :returns: nothing.
    """
    db = subparsers.add_parser(
        "db",
        help="migrate and inspect the store's schema",
        description=(
            "Schema migrations of the metadata store. These commands do not require "
            "the schema to match this tracker, so they work on outdated stores and "
            "detect stores migrated by a newer tracker."
        ),
    )
    commands = db.add_subparsers(dest="db_command", title="db commands", metavar="COMMAND")
    commands.required = True

    upgrade = common.add_command(
        commands, "upgrade", run_upgrade, help="migrate the schema up (to head by default)"
    )
    upgrade.add_argument(
        "revision", nargs="?", default="head", metavar="REVISION", help="target (default: head)"
    )
    downgrade = common.add_command(
        commands,
        "downgrade",
        run_downgrade,
        help="migrate the schema down",
        description=(
            "Migrate the schema down to REVISION ('base' removes every table). A downgrade "
            "that would drop tables holding rows or columns holding values lists what would "
            "be lost and changes nothing unless --yes is given."
        ),
    )
    downgrade.add_argument("revision", metavar="REVISION", help="target revision, or 'base'")
    downgrade.add_argument(
        "--yes",
        action="store_true",
        default=False,
        help="drop the stored data the downgrade removes (listed without --yes)",
    )
    current = common.add_command(
        commands,
        "current",
        run_current,
        help="show the store's revision and whether it is behind, current or newer",
        description=CURRENT_DESCRIPTION,
    )
    common.add_json(current)
    history = common.add_command(
        commands,
        "history",
        run_history,
        help="list the migrations this tracker ships",
        uses_store=False,
    )
    common.add_json(history)
    check = common.add_command(
        commands,
        "check",
        run_check,
        help="compare the live schema with the models; exit 1 on drift",
        description=(
            "Compare the live schema of a store at head with tracker's models and "
            "list the differences; the exit status is 1 when there are any."
        ),
    )
    common.add_json(check)


def state_name(state: migrate.SchemaState) -> str:
    """:returns: ``"current"``, ``"behind"`` or ``"newer than this tracker"``."""
    if state.is_current:
        return STATE_CURRENT
    if state.is_newer:
        return STATE_NEWER
    return STATE_BEHIND


def exit_status(state: migrate.SchemaState) -> int:
    """:returns: the exit status of ``tracker db current`` for ``state``."""
    if state.is_current:
        return EXIT_CURRENT
    if state.is_newer:
        return EXIT_NEWER
    return EXIT_BEHIND


def run_current(conf: cfg.ConfigOpts) -> int:
    """Print the store's revision and where it stands against the code.

    :returns: 0 current, 3 behind, 4 newer than this tracker (:func:`exit_status`).
    :raises tracker.exceptions.StoreError: the store cannot be reached.
    """
    from tracker.db import migrate

    with common.opened_store(conf, check_schema=False, create=False) as store:
        state = migrate.schema_state(store)
        url = store.display_url
    name = state_name(state)
    if common.arg(conf, "json"):
        common.print_json(
            {
                "store": url,
                "current": state.current,
                "head": state.head,
                "known": state.known,
                "state": name,
            }
        )
        return exit_status(state)
    print(f"store:    {url}")
    print(f"revision: {state.current or '<none> (empty store)'}")
    print(f"head:     {state.head}")
    print(f"state:    {name}")
    if state.is_behind:
        print("run `tracker db upgrade` to bring the store up to date")
    elif state.is_newer:
        print(
            "a newer tracker migrated this store: upgrade tracker, or downgrade the "
            "store with the newer version"
        )
    return exit_status(state)


def _migrate(conf: cfg.ConfigOpts, action: str) -> int:
    from tracker.db import migrate

    revision: str = common.arg(conf, "revision")
    losses: dict[str, int] = {}
    # Only an upgrade may create the store; a downgrade of a missing one is an error.
    with common.opened_store(conf, check_schema=False, create=action == "upgrade") as store:
        before = migrate.current(store)
        if action == "upgrade":
            migrate.upgrade(store, revision)
        else:
            losses = migrate.downgrade(
                store, revision, allow_data_loss=bool(common.arg(conf, "yes"))
            )
        after = migrate.current(store)
        url = store.display_url
    if losses:
        print(f"dropped {exceptions.describe_losses(losses)}")
    if before == after:
        print(f"store {url} is already at {after or '<empty>'}; nothing to do")
    else:
        verb = "upgraded" if action == "upgrade" else "downgraded"
        print(f"{verb} store {url} from {before or '<empty>'} to {after or '<empty>'}")
    return 0


def run_upgrade(conf: cfg.ConfigOpts) -> int:
    """Migrate the store up.

    :returns: 0.
    :raises tracker.exceptions.SchemaTooNew: a newer tracker migrated the store.
    :raises tracker.exceptions.MigrationError: the migration failed.
    :raises tracker.exceptions.StoreError: the store cannot be reached.
    """
    return _migrate(conf, "upgrade")


def run_downgrade(conf: cfg.ConfigOpts) -> int:
    """Migrate the store down; refuse to drop stored data without ``--yes``.

    :returns: 0.
    :raises tracker.exceptions.DataLossRefused: data would be lost and ``--yes``
        was not given; nothing was changed.
    :raises tracker.exceptions.SchemaTooNew: a newer tracker migrated the store.
    :raises tracker.exceptions.MigrationError: the migration failed.
    :raises tracker.exceptions.StoreError: the store cannot be reached.
    """
    return _migrate(conf, "downgrade")


def run_history(conf: cfg.ConfigOpts) -> int:
    """List the migrations this tracker ships (no store is opened).

    :returns: 0.
    :raises tracker.exceptions.MigrationError: the migrations are not installed.
    """
    from tracker.db import migrate

    revisions = migrate.history()
    head = revisions[-1].revision if revisions else None
    if common.arg(conf, "json"):
        common.print_json(
            [
                {
                    "revision": info.revision,
                    "down_revision": info.down_revision,
                    "message": info.message,
                    "head": info.revision == head,
                }
                for info in revisions
            ]
        )
        return 0
    for info in revisions:
        marker = " (head)" if info.revision == head else ""
        print(f"{info.down_revision or '<base>'} -> {info.revision}{marker}: {info.message}")
    return 0


def run_check(conf: cfg.ConfigOpts) -> int:
    """Compare the live schema with the models.

    :returns: 0 when they match, 1 when they differ.
    :raises tracker.exceptions.SchemaOutdated: the store is not at head.
    :raises tracker.exceptions.SchemaTooNew: a newer tracker migrated the store.
    :raises tracker.exceptions.StoreError: the store cannot be reached.
    """
    from tracker.db import migrate

    with common.opened_store(conf, check_schema=False, create=False) as store:
        differences = migrate.check(store)
        revision = migrate.current(store)
        url = store.display_url
    if common.arg(conf, "json"):
        common.print_json(
            {
                "store": url,
                "revision": revision,
                "ok": not differences,
                "differences": differences,
            }
        )
    elif differences:
        print(
            f"store {url} (revision {revision}) drifts from the models: "
            f"{common.plural(len(differences), 'difference')}"
        )
        for line in differences:
            print(f"  {line}")
    else:
        print(f"store {url} (revision {revision}) matches the models")
    return 1 if differences else 0
