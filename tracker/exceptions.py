"""The one exception hierarchy of tracker.

Every error tracker raises on purpose derives from :class:`TrackerError`.
Each class carries the data it is about as typed attributes, and its message
is a template filled from those same named fields, so callers can either show
``str(error)`` to an operator or branch on the attributes.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence
from typing import ClassVar

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple = 3, 6, 6, 6
_REPR.maxstring = _REPR.maxother = 100


class TrackerError(Exception):
    """Base of every error tracker raises on purpose.

    :ivar fields: the named values the message template was filled from.
    """

    template: ClassVar[str] = "tracker error"

    def __init__(self, **fields: object) -> None:
        self.fields = fields
        super().__init__(self.template.format(**fields))


# --- input -----------------------------------------------------------------


class InvalidInput(TrackerError, ValueError):
    """A value given to tracker is not acceptable.

    :ivar field: which argument or attribute was wrong.
    :ivar value: the rejected value (a ``repr`` shortened to a line goes in
        the message, so a huge, deep or cyclic value makes a readable one).
    :ivar reason: why it was rejected.
    """

    template = "invalid {field}: {shown} ({reason})"

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(field=field, value=value, reason=reason, shown=short_repr(value))


def short_repr(value: object) -> str:
    """:returns: a ``repr`` of ``value`` cut to about a line, whatever its size or depth."""
    try:
        return _REPR.repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        return f"<{type(value).__name__}>"


class InvalidStatusTransition(InvalidInput):
    """A status change that the status rules do not allow.

    :ivar resource: ``"volume"``, ``"snapshot"`` or ``"connection"``.
    :ivar resource_id: id of the record.
    :ivar current: the status it has.
    :ivar requested: the status that was asked for.
    """

    template = "{resource} {resource_id}: cannot go from {current!r} to {requested!r}"

    def __init__(self, resource: str, resource_id: str, current: str, requested: str) -> None:
        self.resource = resource
        self.resource_id = resource_id
        self.current = current
        self.requested = requested
        TrackerError.__init__(
            self, resource=resource, resource_id=resource_id, current=current, requested=requested
        )
        self.field = "status"
        self.value = requested
        self.reason = f"not allowed from {current!r}"


class ConfigError(TrackerError):
    """Configuration that tracker cannot use (malformed JSON, bad option).

    :ivar what: which setting or document.
    :ivar reason: what is wrong with it.
    """

    template = "bad configuration for {what}: {reason}"

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(what=what, reason=reason)


class DumpFormatError(TrackerError):
    """A dump given to :func:`tracker.load` is not a tracker dump.

    :ivar reason: what is wrong with it.
    """

    template = "not a valid tracker dump: {reason}"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason=reason)


class DumpInvalid(DumpFormatError):
    """A dump with records or values that cannot be loaded; every problem is listed.

    :ivar problems: one text per problem, each starting with where it is
        (``$.backends[2].name: ...``), in document order (at most
        :attr:`MAX_PROBLEMS`; the message shows the first :attr:`SHOWN`).
    """

    MAX_PROBLEMS: ClassVar[int] = 1000
    SHOWN: ClassVar[int] = 20

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(self.problems[: self.SHOWN])
        hidden = len(self.problems) - self.SHOWN
        if hidden > 0:
            shown += f"; and {hidden} more problem{'s' if hidden > 1 else ''}"
        super().__init__(shown)


# --- records ---------------------------------------------------------------


class NotFound(TrackerError):
    """A record does not exist (any more) in the store.

    :ivar resource: kind of record (``"volume"``, ``"backend"``, ...).
    :ivar resource_id: the id or name that was looked up.
    """

    template = "{resource} {resource_id} not found"

    def __init__(self, resource: str, resource_id: str) -> None:
        self.resource = resource
        self.resource_id = resource_id
        super().__init__(resource=resource, resource_id=resource_id)


class HostNotDiscovered(NotFound):
    """A host has no reconciled state in the store: it was never discovered into it.

    :ivar host_name: the host asked for.
    :ivar exit_code: the ``tracker`` command's exit status for it (5), so that
        scripts can tell "discover first" from other failures (1).
    """

    template = (
        "host {resource_id} has not been discovered into this store yet: run `tracker "
        "discover` on that host (with --host-name {resource_id} if it reports another name) first"
    )
    exit_code: ClassVar[int] = 5

    def __init__(self, host_name: str) -> None:
        self.host_name = host_name
        super().__init__("host", host_name)


class AlreadyExists(TrackerError):
    """A record with the same key is already stored.

    :ivar resource: kind of record.
    :ivar resource_id: its id or name.
    """

    template = "{resource} {resource_id} already exists"

    def __init__(self, resource: str, resource_id: str) -> None:
        self.resource = resource
        self.resource_id = resource_id
        super().__init__(resource=resource, resource_id=resource_id)


class DumpConflict(AlreadyExists):
    """Records of a dump are already stored; nothing was loaded.

    Backends are named by name, other records by id and their backend.

    :ivar conflicts: one text per clash (``backend 'lvm' already exists``).
    """

    template = "cannot load the dump, it clashes with the store: {conflicts_text}"

    def __init__(self, resource: str, resource_id: str, conflicts: Sequence[str]) -> None:
        self.resource = resource
        self.resource_id = resource_id
        self.conflicts = tuple(conflicts)
        shown = "; ".join(self.conflicts[:20])
        if len(self.conflicts) > 20:
            shown += f"; and {len(self.conflicts) - 20} more"
        TrackerError.__init__(
            self, resource=resource, resource_id=resource_id, conflicts_text=shown
        )


class ConflictError(TrackerError):
    """A write was based on stale data: someone else changed the record first.

    Nothing was written. Call ``refresh()`` on the object and retry.

    :ivar resource: kind of record.
    :ivar resource_id: its id.
    :ivar expected_version: the version this process had read.
    :ivar actual_version: the version in the store when the write was tried.
    """

    template = (
        "{resource} {resource_id} was changed by someone else "
        "(this process read version {expected_version}, the store has {actual_version}); "
        "refresh() it and retry"
    )

    def __init__(
        self, resource: str, resource_id: str, expected_version: int, actual_version: int
    ) -> None:
        self.resource = resource
        self.resource_id = resource_id
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            resource=resource,
            resource_id=resource_id,
            expected_version=expected_version,
            actual_version=actual_version,
        )


class BackendConflict(TrackerError):
    """A backend name is already registered in this process with another configuration.

    :ivar name: the ``volume_backend_name``.
    :ivar differences: what differs, e.g. ``("driver ('A' registered, 'B' asked
        for)", "config keys changed: vg")``; configuration *values* are never
        shown (they may hold passwords). Empty when it is not known.
    """

    template = (
        "backend {name!r} is already registered in this process with a different {differences_text}"
    )

    def __init__(self, name: str, differences: Sequence[str] = ()) -> None:
        self.name = name
        self.differences = tuple(differences)
        text = (
            "; ".join(self.differences) + " (destroy() the registered backend to replace it)"
            if self.differences
            else "configuration or store"
        )
        super().__init__(name=name, differences_text=text)


class DeleteRefused(TrackerError):
    """A delete that would orphan dependent records.

    :ivar resource: kind of record.
    :ivar resource_id: its id.
    :ivar dependents: descriptions of what still depends on it.
    """

    template = "cannot delete {resource} {resource_id}: it still has {dependents_text}"

    def __init__(self, resource: str, resource_id: str, dependents: Sequence[str]) -> None:
        self.resource = resource
        self.resource_id = resource_id
        self.dependents = tuple(dependents)
        super().__init__(
            resource=resource,
            resource_id=resource_id,
            dependents_text=", ".join(self.dependents),
        )


class InvalidState(TrackerError):
    """An operation that the record's current status does not allow.

    :ivar resource: kind of record.
    :ivar resource_id: its id.
    :ivar status: its current status.
    :ivar operation: what was attempted.
    """

    template = "cannot {operation} {resource} {resource_id} while it is {status!r}"

    def __init__(self, resource: str, resource_id: str, status: str, operation: str) -> None:
        self.resource = resource
        self.resource_id = resource_id
        self.status = status
        self.operation = operation
        super().__init__(
            resource=resource, resource_id=resource_id, status=status, operation=operation
        )


# --- store -----------------------------------------------------------------


class StoreError(TrackerError):
    """The metadata store cannot be used.

    :ivar url: the database URL, with any password hidden.
    :ivar reason: what went wrong.
    """

    template = "store {url}: {reason}"

    def __init__(self, url: str, reason: str, **extra: object) -> None:
        self.url = url
        self.reason = reason
        super().__init__(url=url, reason=reason, **extra)


class StoreUnavailable(StoreError):
    """The database cannot be reached or opened."""

    template = "cannot open store {url}: {reason}"


class StoreNotFound(StoreUnavailable):
    """The store's SQLite file does not exist (never did, or was removed while open).

    Nothing was created: read-only commands never create a store, and an open
    store never re-creates a removed file.

    :ivar path: the SQLite file.
    :ivar removed: ``True`` when the file disappeared under an open store.
    """

    template = "cannot open store {url}: {reason}"

    def __init__(self, url: str, path: str, *, removed: bool = False) -> None:
        self.path = path
        self.removed = removed
        if removed:
            reason = (
                f"the SQLite file {path} was removed while the store was open; "
                "restore it from a backup, or create a new store with `tracker db upgrade`"
            )
        else:
            reason = f"the SQLite file {path} does not exist; create it with `tracker db upgrade`"
        super().__init__(url, reason, path=path, removed=removed)


class SchemaOutdated(StoreError):
    """The store's schema is older than this code.

    :ivar current: the store's revision (``None`` for an empty store).
    :ivar head: the revision this code needs.
    """

    template = (
        "store {url} has schema revision {current} but this tracker needs {head}; "
        "run `tracker db upgrade`"
    )

    def __init__(self, url: str, current: str | None, head: str) -> None:
        self.current = current
        self.head = head
        super().__init__(url, "schema is behind", current=current or "<empty>", head=head)


class SchemaTooNew(StoreError):
    """The store was migrated by a newer tracker than this one.

    :ivar current: the store's revision, unknown to this code.
    :ivar head: the newest revision this code knows.
    """

    template = (
        "store {url} has schema revision {current}, which this tracker does not know "
        "(it knows up to {head}); it was migrated by a newer tracker: upgrade tracker, "
        "or downgrade the store with the newer version"
    )

    def __init__(self, url: str, current: str, head: str) -> None:
        self.current = current
        self.head = head
        super().__init__(url, "schema is newer than the code", current=current, head=head)


class MigrationError(StoreError):
    """A schema migration command failed."""

    template = "migration on {url} failed: {reason}"


class DataLossRefused(MigrationError):
    """A downgrade would drop stored data and was not allowed to; nothing was changed.

    :ivar current: the store's revision.
    :ivar target: the revision the downgrade was asked to reach.
    :ivar losses: what would be lost: rows per dropped table (``"volumes"``) and
        non-null values per dropped column (``"volumes.description"``).
    """

    template = (
        "downgrading store {url} from {current} to {target} would lose {losses_text}; "
        "nothing was changed (pass --yes to `tracker db downgrade`, or "
        "allow_data_loss=True to tracker.db.migrate.downgrade, to drop them)"
    )

    def __init__(self, url: str, current: str, target: str, losses: Mapping[str, int]) -> None:
        self.current = current
        self.target = target
        self.losses = dict(losses)
        super().__init__(
            url,
            "the downgrade would drop stored data",
            current=current,
            target=target,
            losses_text=describe_losses(self.losses),
        )


def describe_losses(losses: Mapping[str, int]) -> str:
    """:returns: ``"3 rows of volumes, 2 values of volumes.description"``."""
    parts = []
    for name, count in losses.items():
        noun = ("value" if "." in name else "row") + ("" if count == 1 else "s")
        parts.append(f"{count} {noun} of {name}")
    return ", ".join(parts) or "nothing"


class StoreBusy(StoreError):
    """Another transaction held a lock longer than this one would wait; nothing was written.

    :ivar operation: what was being done (``"connect volume ..."``).
    :ivar timeout: seconds waited (SQLite's busy timeout), or ``None`` when the
        server's own lock wait timeout applied.
    :ivar code: the database error code (``"SQLITE_BUSY"``, ``"MySQL 1205"`` ...).
    """

    template = (
        "store {url} is busy: another writer held the lock for more than {waited} ({operation})"
    )

    def __init__(self, url: str, operation: str, timeout: float | None, code: str) -> None:
        self.operation = operation
        self.timeout = timeout
        self.code = code
        waited = "the server's lock wait timeout" if timeout is None else f"{timeout:g} s"
        super().__init__(url, f"busy ({code})", operation=operation, waited=waited, code=code)


class TransactionConflict(StoreError):
    """Concurrent transactions deadlocked or could not be serialised, on every attempt.

    Each attempt was rolled back, so nothing was written; the operation may be
    tried again.

    :ivar operation: what was being done.
    :ivar code: the database error code (``"40P01"``, ``"MySQL 1213"`` ...).
    :ivar attempts: how many times the transaction was tried.
    """

    template = (
        "store {url}: {operation} collided with concurrent transactions ({code}) "
        "on {attempts} attempt(s); nothing was written, retry it"
    )

    def __init__(self, url: str, operation: str, code: str, attempts: int = 1) -> None:
        self.operation = operation
        self.code = code
        self.attempts = attempts
        super().__init__(
            url, f"conflict ({code})", operation=operation, code=code, attempts=attempts
        )


class StoreQueryFailed(StoreError):
    """The database refused a statement for a reason tracker does not expect.

    The message names the database's error code, never the SQL statement.

    :ivar operation: what was being done.
    :ivar code: the SQLSTATE (PostgreSQL), ``"MySQL <number>"`` or SQLite's
        error name; the original error is chained as ``__cause__``.
    """

    template = "store {url}: {operation} failed with database error {code}"

    def __init__(self, url: str, operation: str, code: str) -> None:
        self.operation = operation
        self.code = code
        super().__init__(url, f"database error {code}", operation=operation, code=code)


# --- tracker watch ---


class StoreLost(StoreUnavailable):
    """``tracker watch`` could not reach the store for longer than its grace period.

    :ivar grace_period: the seconds it kept retrying.
    :ivar exit_code: the ``tracker watch`` exit status for it (6).
    """

    template = (
        "store {url} unreachable for more than {grace_period:g} s ({reason}); "
        "tracker watch gives up: restart it once the store is back"
    )
    exit_code: ClassVar[int] = 6

    def __init__(self, url: str, reason: str, grace_period: float) -> None:
        self.grace_period = grace_period
        StoreError.__init__(self, url, reason, grace_period=grace_period)


class HostAlreadyWatched(TrackerError):
    """Another ``tracker watch`` holds the host's lease: it alone writes the host's rows.

    :ivar host_name: the host.
    :ivar owner: the holder (``host/pid/uuid``).
    :ivar expires_at: when its lease lapses unless renewed (ISO 8601, UTC).
    :ivar exit_code: the ``tracker watch`` exit status for it (7).
    """

    template = (
        "host {host_name} is already watched by {owner} (lease until {expires_at}); "
        "stop that watcher, or pass --wait to take over when its lease ends"
    )
    exit_code: ClassVar[int] = 7

    def __init__(self, host_name: str, owner: str, expires_at: str) -> None:
        self.host_name = host_name
        self.owner = owner
        self.expires_at = expires_at
        super().__init__(host_name=host_name, owner=owner, expires_at=expires_at)


class LeaseLost(HostAlreadyWatched):
    """This watcher's lease lapsed and another watcher took the host; it stops writing."""

    template = (
        "lost the lease of host {host_name} to {owner} (lease until {expires_at}): "
        "another tracker watch now writes this host; stopping"
    )


# --- waiting ---


class WaitTimeout(TrackerError, TimeoutError):
    """A condition waited for with ``rescan_and_wait_for`` did not hold in time.

    It is also a builtin :class:`TimeoutError`, so ``except TimeoutError``
    (what infi.storagemodel users catch, as its own ``TimeoutError``) works.

    :ivar predicate: what was waited for (the predicate object).
    :ivar timeout: the seconds allowed.
    :ivar elapsed: the seconds waited, by the model's clock.
    :ivar last_state: the predicate's last state, in words (``"present but
        offline: /dev/sdc (1:0:0:3)"``, ``"2 of 4 paths active"``).
    :ivar events: device events applied while waiting.
    :ivar rescans: rescans asked for while waiting.
    :ivar exit_code: the ``tracker wait`` exit status for it (124, as
        ``timeout(1)``: 2 is argparse's "bad arguments").
    """

    template = (
        "timed out after {elapsed:.1f} s (timeout {timeout:g} s) waiting for {predicate}: "
        "{last_state}"
    )
    exit_code: ClassVar[int] = 124

    def __init__(
        self,
        predicate: object,
        timeout: float,
        elapsed: float,
        last_state: str,
        events: int = 0,
        rescans: int = 0,
    ) -> None:
        self.predicate = predicate
        self.timeout = timeout
        self.elapsed = elapsed
        self.last_state = last_state
        self.events = events
        self.rescans = rescans
        TrackerError.__init__(
            self,
            predicate=short_repr(predicate),
            timeout=timeout,
            elapsed=elapsed,
            last_state=last_state,
            events=events,
            rescans=rescans,
        )


# --- storage connections ---


class InvalidStorageUri(InvalidInput):
    """A storage connection URI that is malformed or names no supported target.

    :ivar uri: the URI as given (never shown with credentials: a URI holding a
        password is refused and shown without it).
    :ivar reason: what is wrong with it.
    :ivar accepted: the forms that are accepted, for the message.
    """

    ACCEPTED: ClassVar[tuple[str, ...]] = (
        "nfs://SERVER/EXPORT",
        "nfs://SERVER:/EXPORT",
        "nfs://SERVER/EXPORT?vers=4.1&proto=tcp&timeo=600&retrans=2",
        "iscsi://PORTAL[:PORT]/IQN[?lun=N&iface=NAME&tpgt=N]",
        "iscsi://PORTAL/IQN;portal=TPGT",
        "(an IPv6 PORTAL or SERVER in brackets: iscsi://[2001:db8::1]:3260/IQN)",
    )

    template = "invalid storage URI {shown}: {reason}; accepted forms: {accepted_text}"

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.accepted = self.ACCEPTED
        TrackerError.__init__(
            self,
            shown=short_repr(uri),
            reason=reason,
            accepted_text=", ".join(self.ACCEPTED),
        )
        self.field = "uri"
        self.value = uri
        self.reason = reason


class UnsupportedScheme(InvalidStorageUri):
    """A storage URI whose scheme tracker does not connect (only ``iscsi`` and ``nfs``).

    :ivar scheme: the scheme given.
    """

    def __init__(self, uri: str, scheme: str) -> None:
        self.scheme = scheme
        super().__init__(uri, f"unsupported scheme {scheme!r} (iscsi and nfs are)")


class SecretFileRefused(InvalidInput):
    """A CHAP secret file that cannot be used: unreadable, malformed, or readable by
    group or others (it must be ``0600`` or stricter, like an SSH key).

    :ivar path: the file.
    """

    template = "cannot use the secret file {path}: {reason}"

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        TrackerError.__init__(self, path=path, reason=reason)
        self.field = "secret_file"
        self.value = path
        self.reason = reason


class StorageConnectionInUse(AlreadyExists):
    """A storage connection id that this host already manages.

    :ivar host_name: the host.
    :ivar connection_id: the id.
    """

    template = (
        "storage connection {resource_id!r} is already managed on host {host_name}: "
        "unmanage it first, or choose another id"
    )

    def __init__(self, host_name: str, connection_id: str) -> None:
        self.host_name = host_name
        self.connection_id = connection_id
        self.resource = "storage connection"
        self.resource_id = connection_id
        TrackerError.__init__(self, host_name=host_name, resource_id=connection_id)


class StorageConnectionNotFound(NotFound):
    """A storage connection id that this host does not manage.

    :ivar host_name: the host.
    :ivar connection_id: the id.
    """

    template = "storage connection {resource_id!r} is not managed on host {host_name}"

    def __init__(self, host_name: str, connection_id: str) -> None:
        self.host_name = host_name
        self.connection_id = connection_id
        self.resource = "storage connection"
        self.resource_id = connection_id
        TrackerError.__init__(self, host_name=host_name, resource_id=connection_id)


# --- volume paths ---


class UnknownProtocol(InvalidInput):
    """A connector protocol tracker has no path connector for.

    :ivar protocol: the protocol given.
    :ivar known: the protocols there are connectors for.
    """

    template = "unknown connector protocol {shown} (known: {known_text})"

    def __init__(self, protocol: object, known: tuple[str, ...]) -> None:
        self.protocol = protocol
        self.known = known
        TrackerError.__init__(self, shown=short_repr(protocol), known_text=", ".join(known))
        self.field = "protocol"
        self.value = protocol
        self.reason = f"known: {', '.join(known)}"


class MissingConnectionProperty(InvalidInput):
    """Connection properties without a key their protocol needs (os-brick raises KeyError).

    :ivar protocol: the protocol of the properties.
    :ivar key: the missing key (or the alternatives, ``"target_portal or target_portals"``).
    """

    template = "{protocol} connection properties need {key}"

    def __init__(self, protocol: str, key: str) -> None:
        self.protocol = protocol
        self.key = key
        TrackerError.__init__(self, protocol=protocol, key=key)
        self.field = key
        self.value = None
        self.reason = "missing"


# --- host ---


class HostError(TrackerError):
    """Base of the errors of the host layer (device sources, captures, testbeds)."""

    template = "host error"


class CommandNotFound(HostError):
    """A program the host layer needs is not installed.

    :ivar command: the program name (``"lsscsi"``).
    :ivar package: the Debian package that provides it.
    """

    template = "command {command!r} not found; install the Debian package {package!r}"

    def __init__(self, command: str, package: str) -> None:
        self.command = command
        self.package = package
        super().__init__(command=command, package=package)


class CommandFailed(HostError):
    """A program run by the host layer exited with an error or timed out.

    :ivar command: the command line, joined with spaces.
    :ivar returncode: its exit status (``None`` when it timed out).
    :ivar stderr: what it wrote on standard error (may be cut).
    """

    template = "command {command!r} failed (exit status {returncode}): {stderr}"

    def __init__(self, command: str, returncode: int | None, stderr: str) -> None:
        self.command = command
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(command=command, returncode=returncode, stderr=stderr)


class ConnectorFailed(HostError):
    """A connector's command (``iscsiadm``, ``mount``, ``umount``) failed.

    The command line is shown with secrets (CHAP passwords) replaced by
    ``***``; the exit status is mapped to a stable code.

    :ivar code: the stable error code (``ISCSI_ERR_LOGIN_AUTH_FAILED``,
        ``MOUNT_FAILED`` ...), what ``last_error.code`` of a storage
        connection holds.
    :ivar message: what it means, for an operator.
    :ivar returncode: the exit status (``None`` when the command timed out).
    :ivar command: the command line, secrets redacted.
    :ivar stderr: what it wrote on standard error (cut, secrets redacted).
    """

    template = "{message} ({code}, exit status {returncode}): {command}{detail}"

    def __init__(
        self, code: str, message: str, returncode: int | None, command: str, stderr: str = ""
    ) -> None:
        self.code = code
        self.message = message
        self.returncode = returncode
        self.command = command
        self.stderr = stderr
        detail = f": {stderr}" if stderr else ""
        super().__init__(
            code=code, message=message, returncode=returncode, command=command, detail=detail
        )


class PreloadLibraryMissing(HostError):
    """The umockdev preload library cannot be found on this machine.

    :ivar library: the library file name that was looked for.
    :ivar searched: the places that were searched.
    :ivar package: the Debian package that provides it.
    """

    template = (
        "{library} not found (searched: {searched_text}); install the Debian package {package!r}"
    )

    def __init__(self, library: str, searched: Sequence[str], package: str = "umockdev") -> None:
        self.library = library
        self.searched = tuple(searched)
        self.package = package
        super().__init__(library=library, searched_text=", ".join(self.searched), package=package)


class SysfsRootMissing(HostError):
    """A sysfs tree root has no ``sys/`` directory in it.

    :ivar root: the root that was given.
    """

    template = "no sysfs tree under {root!r} (expected a 'sys' directory there)"

    def __init__(self, root: str) -> None:
        self.root = root
        super().__init__(root=root)


class NotASysfsTree(SysfsRootMissing):
    """A ``sys/`` directory that has neither ``bus/`` nor ``class/``: a partial copy
    or some other directory, not a sysfs tree (scanning it would find nothing).

    :ivar root: the root that was given.
    """

    template = "{sys_dir!r} is not a sysfs tree: it has neither 'bus/' nor 'class/'"

    def __init__(self, root: str) -> None:
        self.root = root
        HostError.__init__(self, root=root, sys_dir=f"{root.rstrip('/')}/sys")


class EventSourceError(HostError):
    """A device event source cannot be started or read.

    :ivar source: which source (``"udev netlink"``, ``"in-memory"``).
    :ivar reason: what went wrong (an errno name and text, never a traceback).
    """

    template = "device event source {source}: {reason}"

    def __init__(self, source: str, reason: str, **extra: object) -> None:
        self.source = source
        self.reason = reason
        super().__init__(source=source, reason=reason, **extra)


class EventsLost(EventSourceError):
    """Device events were dropped before they were read (a netlink ``ENOBUFS``):
    what the caller knows of the host may be stale, it must resynchronise with a
    full scan. The source itself stays usable.

    :ivar source: which source.
    :ivar reason: how the loss was noticed.
    """

    template = "device event source {source} lost events ({reason}); resynchronise with a full scan"


class ScanFileMissing(HostError):
    """A SCSI host has no ``scan`` file to write a rescan request to.

    :ivar host: the host number (``None`` when no SCSI host exists at all).
    :ivar path: the file that was looked for.
    """

    template = "cannot rescan: {path} does not exist{detail}"

    def __init__(self, host: int | None, path: str) -> None:
        self.host = host
        self.path = path
        detail = "" if host is None else f" (is host{host} present?)"
        super().__init__(host=host, path=path, detail=detail)


class RescanFailed(HostError):
    """Writing a rescan request to one or more ``scan`` files failed. Every
    host was still tried; nothing was deleted.

    :ivar failures: one text per failed host (``host3: ENXIO (...)``).
    """

    template = "SCSI rescan failed: {failures_text}"

    def __init__(self, failures: Sequence[str]) -> None:
        self.failures = tuple(failures)
        super().__init__(failures_text="; ".join(self.failures))


class CaptureLimitExceeded(HostError):
    """A sysfs capture grew past its size or time bound; nothing was written.

    :ivar limit: ``"bytes"`` or ``"seconds"``.
    :ivar maximum: the bound that was set.
    """

    template = "capture stopped: it exceeded its bound of {maximum} {limit}"

    def __init__(self, limit: str, maximum: float) -> None:
        self.limit = limit
        self.maximum = maximum
        super().__init__(limit=limit, maximum=maximum)


class UnsafeCapture(HostError):
    """A capture archive holds a member that would escape its extraction root.

    :ivar member: the member name in the archive.
    :ivar reason: what is wrong with it.
    """

    template = "refusing capture member {member!r}: {reason}"

    def __init__(self, member: str, reason: str) -> None:
        self.member = member
        self.reason = reason
        super().__init__(member=member, reason=reason)


class TestbedError(HostError):
    """A simulated host cannot be built as asked.

    :ivar what: the object being added or removed (``"LUN 0:0:0:1"``).
    :ivar reason: why it cannot be.
    """

    __test__ = False  # not a pytest test class
    template = "testbed: cannot build {what}: {reason}"

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(what=what, reason=reason)


class UeventNotDelivered(HostError):
    """A testbed's uevent could not be sent to one of its monitors' sockets.

    :ivar action: the event's action (``"add"``).
    :ivar sys_path: the device path of the event.
    :ivar socket: the monitor's socket (``<testbed>/event3``).
    :ivar reason: why (an errno name and text, or a timeout).
    """

    template = "testbed: uevent {action} {sys_path} not delivered to {socket}: {reason}"

    def __init__(self, action: str, sys_path: str, socket: str, reason: str) -> None:
        self.action = action
        self.sys_path = sys_path
        self.socket = socket
        self.reason = reason
        super().__init__(action=action, sys_path=sys_path, socket=socket, reason=reason)
