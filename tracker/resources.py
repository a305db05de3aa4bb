"""The tracked objects users hold: Backend, Volume, Snapshot, Connection.

Semantics (the contract, see ``docs/tracking.rst``):

* :class:`Backend` instances are registered in :attr:`Backend.backends` by
  ``volume_backend_name``; asking again with the same name, store and
  configuration returns the same instance.
* ``backend.volumes``, ``volume.snapshots``, ``volume.connections``,
  ``snapshot.volume`` and ``connection.volume`` load on first access and are
  cached afterwards. Creating or deleting through this API keeps loaded caches
  right, matching records by id.
* Each backend keeps an identity map, so within a process there is one
  object per record: whoever holds it sees what ``refresh()`` loads.
* ``refresh()`` reloads the row and every lazy property already loaded, keeps
  the object's identity and ``local_attach``, and raises
  :class:`~tracker.exceptions.NotFound` if the row was deleted elsewhere.
* Writes are conditional on the version read: a stale write raises
  :class:`~tracker.exceptions.ConflictError` and writes nothing.
* ``volume.local_attach`` lives only in this process's memory.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker import exceptions, validation
from tracker.db import models, observed, repository
from tracker.db.store import Store

T = TypeVar("T")
R = TypeVar("R", bound="_Record")

#: Volume status changes allowed through ``save()``. ``in-use`` is entered and
#: left only by connecting and disconnecting; ``deleted`` only by ``delete()``.
VOLUME_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "creating": frozenset({"available", "error", "deleting"}),
    "available": frozenset({"deleting", "error"}),
    "in-use": frozenset({"error"}),
    "error": frozenset({"available", "deleting"}),
    "deleting": frozenset({"error_deleting"}),
    "error_deleting": frozenset({"deleting"}),
    "deleted": frozenset(),
}
SNAPSHOT_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "creating": frozenset({"available", "error", "deleting"}),
    "available": frozenset({"deleting", "error"}),
    "error": frozenset({"available", "deleting"}),
    "deleting": frozenset({"error_deleting"}),
    "error_deleting": frozenset({"deleting"}),
    "deleted": frozenset(),
}
CONNECTION_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "attaching": frozenset({"attached", "error"}),
    "attached": frozenset({"detaching", "error"}),
    "detaching": frozenset({"attached", "error"}),
    "error": frozenset({"attaching", "detaching"}),
}
VOLUME_CREATE_STATUSES = ("creating", "available", "error")
SNAPSHOT_CREATE_STATUSES = ("creating", "available", "error")
CONNECTION_CREATE_STATUSES = ("attaching", "attached")
#: Volume statuses that allow connecting and snapshotting.
USABLE_VOLUME_STATUSES = ("available", "in-use")
# in-use is listed so that its connections are reported by DeleteRefused.
DELETABLE_STATUSES = ("creating", "available", "in-use", "error", "deleting", "error_deleting")


class _Field(Generic[T]):
    """A validated attribute: assigning a bad value raises at once."""

    def __init__(self, validate: Callable[[str, object], T]) -> None:
        self._validate = validate
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> _Field[T]: ...

    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> T: ...

    def __get__(self, obj: object | None, objtype: type | None = None) -> T | _Field[T]:
        if obj is None:
            return self
        value: T = obj.__dict__[self.name]
        return value

    def __set__(self, obj: object, value: object) -> None:
        obj.__dict__[self.name] = self._validate(self.name, value)


def _status_field(allowed: tuple[str, ...]) -> _Field[str]:
    return _Field(lambda name, value: validation.choice(name, value, allowed))


def _json_field() -> _Field[dict[str, Any]]:
    return _Field(validation.json_document)


def _now() -> dt.datetime:
    return models.utcnow()


class _Record:
    """What every tracked record has: an id, timestamps, a version, a store."""

    _resource: ClassVar[str]
    #: attribute -> column of the fields ``save()`` writes
    _writable: ClassVar[Mapping[str, str]]
    _transitions: ClassVar[Mapping[str, frozenset[str]]] = {}

    id: str
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    _saved: dict[str, Any]

    _backend: Backend

    @property
    def store(self) -> Store:
        """:returns: the store tracking the record."""
        return self._backend.store

    @property
    def backend(self) -> Backend:
        """:returns: the backend the record (or its volume) lives on."""
        return self._backend

    def _register_created(self, values: Mapping[str, Any]) -> None:
        """Take freshly inserted values and join the backend's identity map."""
        self._apply_row(_FakeRow(values), fresh=True)  # type: ignore[arg-type]
        with self._backend._identity_lock:
            self._backend._identity[self._resource][self.id] = self

    def _apply_row(self, row: Row[Any], *, fresh: bool = False) -> None:
        """Take the values of a row (``fresh``: values this process just built
        and owns, which need no defensive copy)."""
        data = row._mapping
        self.id = data["id"]
        self.version = data["version"]
        self.created_at = data["created_at"]
        self.updated_at = data["updated_at"]
        attributes = self.__dict__
        for attribute, column in self._writable.items():
            value = data[column]
            attributes[attribute] = (
                value if fresh or not isinstance(value, dict | list) else (copy.deepcopy(value))
            )
        self._mark_saved()

    def _mark_saved(self) -> None:
        attributes = self.__dict__
        self._saved = {
            name: copy.deepcopy(value) if isinstance(value, dict | list) else value
            for name in self._writable
            for value in (attributes[name],)
        }

    def _changes(self) -> dict[str, Any]:
        """:returns: column -> value of the attributes changed since the last load or save.

        Every value is validated again, with the rule its attribute's setter
        applies: JSON attributes can be changed in place
        (``volume.metadata["k"] = object()``), which no setter sees.

        :raises tracker.exceptions.InvalidInput: an attribute holds a value
            that cannot be stored.
        """
        changes = {}
        cls = type(self)
        for attribute, column in self._writable.items():
            value = getattr(self, attribute)
            descriptor = getattr(cls, attribute, None)
            if isinstance(descriptor, _Field) and isinstance(value, dict | list):
                value = descriptor._validate(attribute, value)  # a fresh, normalised copy
                if value != self._saved[attribute]:
                    changes[column] = value
            elif value != self._saved[attribute]:
                changes[column] = value
        return changes

    def _check_transition(self) -> None:
        if "status" not in self._writable:
            return
        current, requested = self._saved["status"], self.__dict__["status"]
        if requested != current and requested not in self._transitions.get(current, ()):
            raise exceptions.InvalidStatusTransition(self._resource, self.id, current, requested)

    def is_dirty(self) -> bool:
        """:returns: whether attributes were changed since the last load or save.

        :raises tracker.exceptions.InvalidInput: a JSON attribute was changed
            in place into something that cannot be stored.
        """
        return bool(self._changes())

    def save(self) -> None:
        """Write changed attributes, if the record has not moved on meanwhile.

        In-place changes to JSON attributes (``volume.metadata["k"] = "v"``)
        are found too. Saving nothing changed writes nothing.

        :returns: nothing.
        :raises tracker.exceptions.InvalidStatusTransition: the status rules
            forbid the change.
        :raises tracker.exceptions.InvalidInput: a JSON attribute was changed in
            place into something that cannot be stored; nothing was written.
        :raises tracker.exceptions.ConflictError: the record changed in the store
            since it was read; nothing was written.
        :raises tracker.exceptions.NotFound: the record was deleted elsewhere.
        """
        changes = self._changes()
        if not changes:
            return
        self._check_transition()
        now = _now()

        def work(session: Session) -> tuple[int, Callable[[], None] | None]:
            self._lock_parent(session, changes)
            version = repository.update_versioned(
                session, self._resource, self.id, self.version, {**changes, "updated_at": now}
            )
            return version, self._after_write(session, changes)

        version, after_commit = self.store.run_write(work, f"save {self._resource} {self.id}")
        self.version = version
        self.updated_at = now
        self._mark_saved()
        if after_commit is not None:
            after_commit()

    def _lock_parent(self, session: Session, changes: Mapping[str, Any]) -> None:
        """Hook: lock the rows a write will also change, before this one (parents first)."""

    def _after_write(
        self, session: Session, changes: Mapping[str, Any]
    ) -> Callable[[], None] | None:
        """Hook for writes that must happen in the same transaction.

        :returns: what to apply to objects in memory once the transaction committed.
        """
        return None

    def _short_id(self) -> str:
        return self.id[:8]


@dataclass(frozen=True, slots=True)
class VolumeSpec:
    """What to track for a new volume (see :meth:`Backend.create_volumes`).

    :ivar size: size in GiB.
    :ivar name: display name.
    :ivar status: ``creating`` (default), ``available`` or ``error``.
    :ivar serial: the LUN's SCSI unit serial number, when known.
    :ivar wwn: the LUN's WWN (``naa.`` form), when known.
    :ivar metadata: free JSON metadata.
    :ivar id: a chosen id (see :func:`tracker.validation.identifier`); a new
        UUID by default.
    :ivar description: free text, as cinderlib's.
    :ivar bootable: whether the volume holds a bootable image, as cinderlib's.
    """

    size: int
    name: str | None = None
    status: str = "creating"
    serial: str | None = None
    wwn: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    description: str | None = None
    bootable: bool = False


@dataclass(frozen=True, slots=True)
class HostDevice:
    """A path to a tracked volume that discovery found on a host.

    :ivar host_name: the host.
    :ivar hctl: the SCSI address ``H:C:T:L``.
    :ivar block_name: the block device (``sdc``), if any.
    :ivar state: the SCSI device state (``running``, ``offline`` ...).
    :ivar wwid: the logical unit's WWID.
    :ivar serial: its unit serial number.
    :ivar transport: ``fc``, ``iscsi`` or ``None``.
    :ivar target: the target WWPN (FC) or ``IQN @ portal`` (iSCSI).
    :ivar size_bytes: size of the block device.
    """

    host_name: str
    hctl: str
    block_name: str | None
    state: str | None
    wwid: str | None
    serial: str | None
    transport: str | None
    target: str | None
    size_bytes: int | None

    @property
    def path(self) -> str | None:
        """:returns: ``/dev/<block_name>``, or ``None`` without a block device."""
        return None if self.block_name is None else f"/dev/{self.block_name}"


@dataclass(frozen=True, slots=True)
class MultipathDevice:
    """The multipath map of a tracked volume on a host.

    :ivar host_name: the host.
    :ivar name: dm name (``mpatha``).
    :ivar wwid: the WWID.
    :ivar block_name: ``dm-N``.
    :ivar paths: ``(block_name, state)`` of each member.
    """

    host_name: str
    name: str | None
    wwid: str
    block_name: str
    paths: tuple[tuple[str, str], ...]

    @property
    def path(self) -> str:
        """:returns: ``/dev/mapper/<name>`` (``/dev/<dm-N>`` for an unnamed map)."""
        return f"/dev/mapper/{self.name}" if self.name else f"/dev/{self.block_name}"


def _host_device(record: observed.ScsiDeviceRecord) -> HostDevice:
    return HostDevice(
        record.host_name,
        record.hctl,
        record.block_name,
        record.state,
        record.wwid,
        record.serial,
        record.transport,
        record.target_text,
        record.size_bytes,
    )


def _multipath_device(record: observed.MultipathMapRecord) -> MultipathDevice:
    return MultipathDevice(
        record.host_name,
        record.name,
        record.wwid,
        record.block_name,
        tuple((p.block_name, p.state) for p in record.paths),
    )


class Backend:
    """A storage backend, tracked by its ``volume_backend_name``.

    ``Backend(name, store=store, **config)`` registers the backend in this
    process and persists it: the same name, store and configuration return the
    same instance; a backend stored by an earlier run is adopted (its
    configuration updated to the one given now).

    :param volume_backend_name: the backend's unique name.
    :param store: the store tracking it.
    :param driver: the driver's name, free text.
    :param volume_driver: cinderlib's spelling of ``driver`` (its
        ``Backend(volume_backend_name=..., volume_driver=..., **driver_config)``):
        the same meaning; give either, or both with the same value.
    :param config: the driver configuration; must be a JSON object.
    :raises tracker.exceptions.BackendConflict: the name is registered in this
        process with another store, driver or configuration; the error says
        which differ.
    :raises tracker.exceptions.ConfigError: the configuration is not JSON.
    :raises tracker.exceptions.InvalidInput: the name is empty or too long, the
        driver is not text, ``driver`` and ``volume_driver`` differ, or
        ``store`` is not a :class:`~tracker.db.store.Store`.
    """

    #: The in-process registry, keyed by ``volume_backend_name``. Forget a
    #: backend with :meth:`destroy`; anything in it that is not a Backend is
    #: ignored (with a warning) by :func:`tracker.status`.
    backends: ClassVar[dict[str, Backend]] = {}

    id: str
    name: str
    driver: str
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    _store: Store
    _config: dict[str, Any]
    _volumes: list[Volume] | None
    #: one live object per record id and kind ("volume", "snapshot", "connection")
    _identity: dict[str, weakref.WeakValueDictionary[str, Any]]
    #: volume id -> connection this process attached it through (memory only)
    _local_attach: dict[str, Connection]
    #: makes "look up, else build and register" atomic across threads
    _identity_lock: threading.Lock

    def __new__(
        cls,
        volume_backend_name: str,
        *,
        store: Store,
        driver: str | None = None,
        volume_driver: str | None = None,
        **config: Any,
    ) -> Backend:
        name = validation.text("volume_backend_name", volume_backend_name)
        validation.store("store", store)
        driver = _driver_argument(driver, volume_driver)
        normalised = validation.json_document(f"backend {name} config", config, config=True)
        existing = cls._registered(name)
        if existing is not None:
            differences = existing._differences(store, driver, normalised)
            if not differences:
                return existing
            raise exceptions.BackendConflict(name, differences)
        row = _persist_backend(store, name, driver, normalised)
        return cls._register(store, row)

    @classmethod
    def _registered(cls, name: str) -> Backend | None:
        """:returns: the backend registered as ``name``, ignoring anything else put there."""
        found: object = cls.backends.get(name)
        return found if isinstance(found, Backend) else None

    def _differences(self, store: Store, driver: str, config: Mapping[str, Any]) -> list[str]:
        """:returns: what differs between this backend and one asked for (no config values)."""
        differences = []
        if self.store is not store:
            differences.append(
                f"store (registered with {self.store.display_url}, asked for {store.display_url})"
            )
        if self.driver != driver:
            differences.append(f"driver ({self.driver!r} registered, {driver!r} asked for)")
        added = sorted(set(config) - set(self._config))
        removed = sorted(set(self._config) - set(config))
        changed = sorted(k for k in set(config) & set(self._config) if config[k] != self._config[k])
        parts = [
            f"{label}: {', '.join(keys)}"
            for label, keys in (("added", added), ("removed", removed), ("changed", changed))
            if keys
        ]
        if parts:
            differences.append(f"configuration (keys {'; '.join(parts)})")
        return differences

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Everything happens in ``__new__`` (it may return a registered instance)."""

    @classmethod
    def _register(cls, store: Store, row: Row[Any]) -> Backend:
        self = object.__new__(cls)
        self._store = store
        self._volumes = None
        self._identity = {
            kind: weakref.WeakValueDictionary() for kind in ("volume", "snapshot", "connection")
        }
        self._local_attach = {}
        self._identity_lock = threading.Lock()
        self._apply_row(row)
        cls.backends[self.name] = self
        return self

    @classmethod
    def load(cls, store: Store, volume_backend_name: str) -> Backend:
        """Adopt a backend stored earlier (after a restart, or by another process).

        :returns: the registered instance.
        :raises tracker.exceptions.NotFound: no backend of that name is stored.
        :raises tracker.exceptions.BackendConflict: the name is registered in
            this process with another store.
        :raises tracker.exceptions.InvalidInput: ``store`` is not a Store, or
            the name is not a backend name.
        """
        validation.store("store", store)
        volume_backend_name = validation.text("volume_backend_name", volume_backend_name)
        existing = cls._registered(volume_backend_name)
        if existing is not None:
            if existing.store is store:
                return existing
            raise exceptions.BackendConflict(
                volume_backend_name, existing._differences(store, existing.driver, existing._config)
            )
        with store.read() as session:
            row = repository.backend_by_name(session, volume_backend_name)
        if row is None:
            raise exceptions.NotFound("backend", volume_backend_name)
        return cls._register(store, row)

    @classmethod
    def load_all(cls, store: Store) -> list[Backend]:
        """Adopt every backend stored in ``store``.

        :returns: the registered instances, by name.
        :raises tracker.exceptions.BackendConflict: a name is registered in this
            process with another store.
        :raises tracker.exceptions.InvalidInput: ``store`` is not a Store.
        """
        validation.store("store", store)
        with store.read() as session:
            rows = repository.all_backends(session)
        return [
            cls.load(store, row.name)
            if cls._registered(row.name) is not None
            else cls._register(store, row)
            for row in rows
        ]

    def destroy(self) -> None:
        """Forget this backend in this process (cinderlib's ``Backend.destroy()``).

        It leaves :attr:`Backend.backends`, so ``Backend(name, store=...)`` may
        register it again, with another driver, configuration or store.
        **Nothing stored changes**: the backend's row and all its volumes,
        snapshots and connections stay tracked (as cinderlib's ``destroy()``
        deletes no volume), and ``Backend.load(store, name)`` adopts them again.
        Objects already obtained through this instance keep working, but a new
        instance builds its own objects and its own (empty) ``local_attach``.
        Destroying a backend that is no longer registered does nothing.

        :returns: nothing.
        """
        if self.backends.get(self.name) is self:
            self.backends.pop(self.name, None)

    def _apply_row(self, row: Row[Any]) -> None:
        data = row._mapping
        self.id = data["id"]
        self.name = data["name"]
        self.driver = data["driver"]
        self._config = copy.deepcopy(data["config"])
        self.version = data["version"]
        self.created_at = data["created_at"]
        self.updated_at = data["updated_at"]

    # -- plain data ---------------------------------------------------------

    @property
    def store(self) -> Store:
        """:returns: the store tracking this backend."""
        return self._store

    @property
    def config(self) -> dict[str, Any]:
        """:returns: a copy of the driver configuration."""
        return copy.deepcopy(self._config)

    @property
    def volume_backend_name(self) -> str:
        """:returns: the backend's name (the registry key)."""
        return self.name

    # -- lazy properties ----------------------------------------------------

    @property
    def volumes(self) -> tuple[Volume, ...]:
        """The backend's volumes, loaded on first access and cached.

        :returns: the volumes, oldest first.
        """
        if self._volumes is None:
            with self.store.read() as session:
                rows = repository.volumes_of(session, self.id)
            self._volumes = [self._volume_from_row(row) for row in rows]
        return tuple(self._volumes)

    def volumes_loaded(self) -> bool:
        """:returns: whether :attr:`volumes` is cached (no query on access)."""
        return self._volumes is not None

    def get_volume(self, volume_id: str) -> Volume:
        """Find one volume of this backend by id.

        :returns: the volume (the cached object when there is one).
        :raises tracker.exceptions.NotFound: no such volume on this backend.
        :raises tracker.exceptions.InvalidInput: ``volume_id`` cannot be an id.
        """
        volume_id = validation.identifier("volume_id", volume_id)
        cached = self._cached_volume(volume_id)
        if cached is not None:
            return cached
        with self.store.read() as session:
            row = repository.get_row(session, "volume", volume_id)
        if row.backend_id != self.id:
            raise exceptions.NotFound("volume", volume_id)
        return self._volume_from_row(row)

    # -- identity map -------------------------------------------------------

    def _from_row(self, kind: str, row: Row[Any], build: Callable[[], R], refresh: bool) -> R:
        identity = self._identity[kind]
        with self._identity_lock:
            obj: R | None = identity.get(row.id)
            if obj is None:
                obj = build()
                obj._apply_row(row)
                identity[row.id] = obj
                return obj
        if refresh:
            obj._apply_row(row)
        return obj

    def _volume_from_row(self, row: Row[Any], *, refresh: bool = False) -> Volume:
        return self._from_row("volume", row, lambda: Volume._new(self), refresh)

    def _snapshot_from_row(self, row: Row[Any], *, refresh: bool = False) -> Snapshot:
        return self._from_row("snapshot", row, lambda: Snapshot._new(self), refresh)

    def _connection_from_row(self, row: Row[Any], *, refresh: bool = False) -> Connection:
        return self._from_row("connection", row, lambda: Connection._new(self), refresh)

    def _cached_volume(self, volume_id: str) -> Volume | None:
        obj: Volume | None = self._identity["volume"].get(volume_id)
        return obj

    # -- creating -----------------------------------------------------------

    def create_volume(
        self,
        size: int,
        name: str | None = None,
        description: str | None = None,
        bootable: bool = False,
        *,
        status: str = "creating",
        serial: str | None = None,
        wwn: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        volume_id: str | None = None,
        **more_metadata: Any,
    ) -> Volume:
        """Track a new volume on this backend.

        Takes cinderlib's ``create_volume(size, name, description, bootable,
        **kwargs)``: keyword arguments other than the ones below are metadata
        entries, merged with ``metadata``.

        :param size: size in GiB.
        :param name: display name.
        :param description: free text.
        :param bootable: whether the volume holds a bootable image.
        :param status: ``creating`` (the driver is still at work), or
            ``available``/``error`` for a LUN whose creation is known.
        :param serial: the LUN's unit serial number, when known.
        :param wwn: the LUN's WWN, when known.
        :param metadata: free JSON metadata.
        :param volume_id: a chosen id; a new UUID by default.
        :param more_metadata: more metadata entries, as cinderlib's ``**kwargs``.
        :returns: the new volume.
        :raises tracker.exceptions.InvalidInput: a bad size, name, description,
            status, id or metadata, or a metadata key given twice.
        :raises tracker.exceptions.AlreadyExists: ``volume_id`` is taken.
        :raises tracker.exceptions.NotFound: the backend was deleted elsewhere.
        """
        merged = validation.json_document("metadata", metadata)
        if more_metadata:
            twice = sorted(set(merged) & set(more_metadata))
            if twice:
                raise exceptions.InvalidInput(
                    "metadata", twice, "given both in metadata= and as keyword arguments"
                )
            merged.update(more_metadata)
        spec = VolumeSpec(
            size=size,
            name=name,
            status=status,
            serial=serial,
            wwn=wwn,
            metadata=merged,
            id=volume_id,
            description=description,
            bootable=bootable,
        )
        return self.create_volumes([spec])[0]

    def create_volumes(self, specs: Iterable[VolumeSpec]) -> list[Volume]:
        """Track many new volumes in one transaction (all or none).

        :returns: the new volumes, in the order given.
        :raises tracker.exceptions.InvalidInput: a spec is bad; nothing is written.
        :raises tracker.exceptions.AlreadyExists: an id is taken; nothing is written.
        :raises tracker.exceptions.NotFound: the backend was deleted elsewhere.
        """
        now = _now()
        rows = [self._volume_values(spec, now) for spec in specs]
        try:
            with self.store.write() as session:
                repository.insert_rows(session, "volume", rows)
        except IntegrityError as exc:
            raise self._insert_error("volume", [r["id"] for r in rows]) from exc
        volumes = [Volume._created(self, values) for values in rows]
        if self._volumes is not None:
            self._volumes.extend(volumes)
        return volumes

    def _volume_values(self, spec: VolumeSpec, now: dt.datetime) -> dict[str, Any]:
        if not isinstance(spec, VolumeSpec):
            raise exceptions.InvalidInput("specs", spec, "VolumeSpec objects")
        return {
            "id": validation.optional_identifier("volume_id", spec.id) or models.new_id(),
            "backend_id": self.id,
            "name": validation.optional_text("name", spec.name),
            "size": validation.size_gib("size", spec.size),
            "status": validation.choice("status", spec.status, VOLUME_CREATE_STATUSES),
            "serial": validation.optional_text("serial", spec.serial),
            "wwn": validation.optional_text("wwn", spec.wwn, 64),
            "metadata": validation.json_document("metadata", spec.metadata),
            "description": validation.optional_text("description", spec.description),
            "bootable": validation.boolean("bootable", spec.bootable),
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }

    def _insert_error(self, resource: str, ids: Sequence[str]) -> Exception:
        return _insert_refusal(self.store, resource, ids, "backend", self.id, self.name)

    # -- refresh ------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the backend and every lazy property already loaded below it.

        Volumes, and the snapshots and connections of volumes that have them
        loaded, are reloaded in at most four queries in all.

        :returns: nothing.
        :raises tracker.exceptions.NotFound: the backend was deleted elsewhere.
        """
        volumes = self._volumes
        with self.store.read() as session:
            row = repository.get_row(session, "backend", self.id)
            volume_rows = repository.volumes_of(session, self.id) if volumes is not None else None
            live = list(volumes or ())
            snapshot_rows = (
                repository.snapshots_of_backend(session, self.id)
                if any(v._snapshots is not None for v in live)
                else None
            )
            connection_rows = (
                repository.connections_of_backend(session, self.id)
                if any(v._connections is not None for v in live)
                else None
            )
        self._apply_row(row)
        if volume_rows is None:
            return
        self._volumes = [self._volume_from_row(r, refresh=True) for r in volume_rows]
        snapshots = _group(snapshot_rows)
        connections = _group(connection_rows)
        for volume in self._volumes:
            if volume._snapshots is not None:
                volume._snapshots = [
                    self._snapshot_from_row(r, refresh=True) for r in snapshots.get(volume.id, ())
                ]
            if volume._connections is not None:
                volume._connections = [
                    self._connection_from_row(r, refresh=True)
                    for r in connections.get(volume.id, ())
                ]

    # -- forgetting ---------------------------------------------------------

    def _forget(self, kind: str, record_id: str) -> None:
        self._identity[kind].pop(record_id, None)
        if kind == "volume":
            if self._volumes is not None:
                self._volumes = [v for v in self._volumes if v.id != record_id]
            self._local_attach.pop(record_id, None)

    # -- display ------------------------------------------------------------

    def status(self) -> Any:
        """The status tree of this backend, read from the store in 6 queries.

        :returns: a :class:`tracker.report.StatusReport`.
        """
        from tracker.report import collect

        return collect(self.store, names=[self.name])

    def __str__(self) -> str:
        return str(self.status())

    def __repr__(self) -> str:
        loaded = f"{len(self._volumes)} volumes loaded" if self._volumes is not None else "lazy"
        return (
            f"<Backend {self.name!r} driver={self.driver!r} {loaded} "
            f"store={self.store.display_url}>"
        )


def _insert_refusal(
    store: Store,
    resource: str,
    ids: Sequence[str],
    parent: str,
    parent_id: str,
    parent_label: str,
) -> Exception:
    """Say why the store refused new rows (their transaction was rolled back).

    :returns: AlreadyExists for a taken id, NotFound when the parent is gone,
        else InvalidInput.
    """
    with store.read() as session:
        taken = sorted(repository.existing_ids(session, resource, ids))
        parent_exists = bool(repository.existing_ids(session, parent, [parent_id]))
    if taken:
        return exceptions.AlreadyExists(resource, taken[0])
    if not parent_exists:
        return exceptions.NotFound(parent, parent_label)
    return exceptions.InvalidInput(resource, ids[0] if ids else None, "rejected by the store")


def _read_observed(
    session: Session, volume_id: str
) -> tuple[tuple[HostDevice, ...], tuple[MultipathDevice, ...]]:
    paths = observed.read_volume(session, volume_id)
    return (
        tuple(_host_device(r) for r in paths.devices),
        tuple(_multipath_device(r) for r in paths.maps),
    )


def _group(rows: Sequence[Row[Any]] | None) -> dict[str, list[Row[Any]]]:
    grouped: dict[str, list[Row[Any]]] = defaultdict(list)
    for row in rows or ():
        grouped[row.volume_id].append(row)
    return grouped


def _driver_argument(driver: object, volume_driver: object) -> str:
    """:returns: the driver name from ``driver=`` or cinderlib's ``volume_driver=``.

    :raises tracker.exceptions.InvalidInput: not text, or both given and different.
    """
    if driver is not None and volume_driver is not None and driver != volume_driver:
        raise exceptions.InvalidInput(
            "volume_driver",
            volume_driver,
            f"differs from driver={driver!r}; they mean the same, give one of them",
        )
    if driver is None:
        chosen = "" if volume_driver is None else volume_driver
        return validation.text("volume_driver", chosen, allow_empty=True)
    return validation.text("driver", driver, allow_empty=True)


def _persist_backend(store: Store, name: str, driver: str, config: dict[str, Any]) -> Row[Any]:
    """Insert the backend, or adopt the stored one and bring its config up to date."""
    for _attempt in range(3):
        try:
            with store.write() as session:
                row = repository.backend_by_name(session, name)
                if row is None:
                    now = _now()
                    values = {
                        "id": models.new_id(),
                        "name": name,
                        "driver": driver,
                        "config": config,
                        "created_at": now,
                        "updated_at": now,
                        "version": 1,
                    }
                    repository.insert_rows(session, "backend", [values])
                elif row.driver != driver or row.config != config:
                    repository.update_versioned(
                        session,
                        "backend",
                        row.id,
                        row.version,
                        {"driver": driver, "config": config, "updated_at": _now()},
                    )
                else:
                    return row
                found = repository.backend_by_name(session, name)
                assert found is not None
                return found
        except (IntegrityError, exceptions.ConflictError):
            # Another process stored or updated the same backend first: look again.
            continue
    raise exceptions.BackendConflict(name)


class Volume(_Record):
    """A volume tracked on a backend. Build it with :meth:`Backend.create_volume`."""

    _resource = "volume"
    _writable: ClassVar[Mapping[str, str]] = {
        "name": "name",
        "size": "size",
        "status": "status",
        "serial": "serial",
        "wwn": "wwn",
        "metadata": "metadata",
        "description": "description",
        "bootable": "bootable",
    }
    _transitions = VOLUME_TRANSITIONS

    name = _Field(validation.optional_text)
    size = _Field(validation.size_gib)
    status = _status_field(models.VOLUME_STATUSES)
    serial = _Field(validation.optional_text)
    wwn = _Field(lambda name, value: validation.optional_text(name, value, 64))
    metadata = _json_field()
    description = _Field(validation.optional_text)
    bootable = _Field(validation.boolean)

    _snapshots: list[Snapshot] | None
    _connections: list[Connection] | None
    _observed: tuple[tuple[HostDevice, ...], tuple[MultipathDevice, ...]] | None

    @classmethod
    def _new(cls, backend: Backend) -> Volume:
        self = cls.__new__(cls)
        self._backend = backend
        self._snapshots = None
        self._connections = None
        self._observed = None
        return self

    @classmethod
    def _created(cls, backend: Backend, values: Mapping[str, Any]) -> Volume:
        self = cls._new(backend)
        self._snapshots = []
        self._connections = []
        self._register_created(values)
        return self

    @property
    def backend_id(self) -> str:
        """:returns: the id of :attr:`backend`."""
        return self._backend.id

    # -- lazy properties ----------------------------------------------------

    @property
    def snapshots(self) -> tuple[Snapshot, ...]:
        """The volume's snapshots, loaded on first access and cached.

        :returns: the snapshots, oldest first.
        """
        if self._snapshots is None:
            with self.store.read() as session:
                rows = repository.snapshots_of(session, self.id)
            self._snapshots = [self._backend._snapshot_from_row(row) for row in rows]
        return tuple(self._snapshots)

    @property
    def connections(self) -> tuple[Connection, ...]:
        """The volume's connections, loaded on first access and cached.

        :returns: the connections, oldest first.
        """
        if self._connections is None:
            with self.store.read() as session:
                rows = repository.connections_of(session, self.id)
            self._connections = [self._backend._connection_from_row(row) for row in rows]
        return tuple(self._connections)

    # -- what hosts see of it (written by tracker.reconcile) -----------------

    def _load_observed(self) -> tuple[tuple[HostDevice, ...], tuple[MultipathDevice, ...]]:
        if self._observed is None:
            with self.store.read() as session:
                self._observed = _read_observed(session, self.id)
        return self._observed

    @property
    def host_devices(self) -> tuple[HostDevice, ...]:
        """The paths to this volume that reconciled hosts found, loaded once and cached.

        :returns: the paths, by host and SCSI address.
        """
        return self._load_observed()[0]

    @property
    def multipath_devices(self) -> tuple[MultipathDevice, ...]:
        """The multipath maps of this volume on every reconciled host (cached).

        :returns: the maps, by host.
        """
        return self._load_observed()[1]

    @property
    def multipath_device(self) -> MultipathDevice | None:
        """The multipath map of this volume, when one host has one (cached).

        :returns: the map, or ``None`` when no host has one.
        :raises tracker.exceptions.InvalidState: several hosts have one; use
            :attr:`multipath_devices`.
        """
        maps = self._load_observed()[1]
        if len(maps) > 1:
            raise exceptions.InvalidState(
                "volume", self.id, f"mapped on {len(maps)} hosts", "pick one multipath device of"
            )
        return maps[0] if maps else None

    def snapshots_loaded(self) -> bool:
        """:returns: whether :attr:`snapshots` is cached."""
        return self._snapshots is not None

    def connections_loaded(self) -> bool:
        """:returns: whether :attr:`connections` is cached."""
        return self._connections is not None

    # -- local attach (memory only) -----------------------------------------

    @property
    def local_attach(self) -> Connection | None:
        """The connection through which this process attached the volume.

        Kept in memory only, per process, keyed by volume id: it survives
        ``refresh()`` but not a restart (or reloading the backend).

        :returns: the connection, or ``None``.
        """
        connection: Connection | None = self._backend._local_attach.get(self.id)
        return connection

    @local_attach.setter
    def local_attach(self, connection: Connection | None) -> None:
        if connection is None:
            self._backend._local_attach.pop(self.id, None)
            return
        if not isinstance(connection, Connection) or connection.volume_id != self.id:
            raise exceptions.InvalidInput(
                "local_attach", connection, f"a connection of volume {self.id}"
            )
        self._backend._local_attach[self.id] = connection

    # -- operations ---------------------------------------------------------

    def create_snapshot(
        self,
        name: str | None = None,
        *,
        size: int | None = None,
        status: str = "creating",
        snapshot_id: str | None = None,
    ) -> Snapshot:
        """Track a new snapshot of this volume.

        :param size: GiB; the volume's size by default.
        :returns: the new snapshot.
        :raises tracker.exceptions.InvalidState: the volume is not available or in-use.
        :raises tracker.exceptions.InvalidInput: a bad name, size, status or id.
        :raises tracker.exceptions.NotFound: the volume was deleted elsewhere.
        """
        self._require_usable("snapshot")
        now = _now()
        values = {
            "id": validation.optional_identifier("snapshot_id", snapshot_id) or models.new_id(),
            "volume_id": self.id,
            "name": validation.optional_text("name", name),
            "size": validation.size_gib("size", self.size if size is None else size),
            "status": validation.choice("status", status, SNAPSHOT_CREATE_STATUSES),
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }
        try:
            with self.store.write() as session:
                repository.insert_rows(session, "snapshot", [values])
        except IntegrityError as exc:
            raise self._insert_error("snapshot", str(values["id"])) from exc
        snapshot = Snapshot._created(self._backend, values, self)
        if self._snapshots is not None:
            self._snapshots.append(snapshot)
        return snapshot

    def connect(
        self,
        connector_info: Mapping[str, Any],
        *,
        host: str | None = None,
        connection_info: Mapping[str, Any] | None = None,
        protocol: str = "",
        attach_mode: str = "rw",
        status: str = "attached",
        connection_id: str | None = None,
    ) -> Connection:
        """Track an export of this volume to a host.

        With ``status="attached"`` (the default) the volume becomes ``in-use``.

        :param connector_info: the host's connector properties (os-brick's
            ``get_connector_properties``); ``host`` defaults to its ``"host"``.
        :param connection_info: what the driver returned for the export.
        :returns: the new connection.
        :raises tracker.exceptions.InvalidState: the volume is not available or in-use.
        :raises tracker.exceptions.InvalidInput: bad connector, host, mode, status or id.
        :raises tracker.exceptions.ConflictError: the volume changed in the store
            since it was read; nothing was written.
        """
        self._require_usable("connect")
        connector = validation.json_document("connector_info", connector_info)
        host_name = host if host is not None else connector.get("host")
        now = _now()
        values = {
            "id": validation.optional_identifier("connection_id", connection_id) or models.new_id(),
            "volume_id": self.id,
            "host": validation.text("host", host_name),
            "protocol": validation.text("protocol", protocol, 32, allow_empty=True),
            "attach_mode": validation.choice("attach_mode", attach_mode, models.ATTACH_MODES),
            "status": validation.choice("status", status, CONNECTION_CREATE_STATUSES),
            "connector_info": connector,
            "connection_info": validation.json_document("connection_info", connection_info),
            "created_at": now,
            "updated_at": now,
            "version": 1,
        }

        def work(session: Session) -> Callable[[], None]:
            repository.lock_versioned(session, "volume", self.id, self.version)
            repository.insert_rows(session, "connection", [values])
            return self._sync_status(session, now)

        try:
            synced = self.store.run_write(work, f"connect volume {self.id}")
        except IntegrityError as exc:
            raise self._insert_error("connection", str(values["id"])) from exc
        synced()
        connection = Connection._created(self._backend, values, self)
        if self._connections is not None:
            self._connections.append(connection)
        return connection

    def _sync_status(self, session: Session, now: dt.datetime) -> Callable[[], None]:
        """Bump the volume for a change of its connections, in the caller's transaction.

        Every connection change writes the volume row, conditional on the
        version read, so two processes changing connections of one volume are
        serialised by it: the second gets ConflictError instead of computing
        ``in-use``/``available`` from a count that is already stale.
        """
        status = self.status
        if self._saved["status"] in USABLE_VOLUME_STATUSES:
            attached = repository.count_attached(session, self.id)
            status = "in-use" if attached else "available"
        version = repository.update_versioned(
            session, "volume", self.id, self.version, {"status": status, "updated_at": now}
        )

        def apply() -> None:
            """Applied to the object only once the transaction has committed."""
            self.__dict__["status"] = status
            self._saved["status"] = status
            self.version = version
            self.updated_at = now

        return apply

    def _require_usable(self, operation: str) -> None:
        if self._saved["status"] not in USABLE_VOLUME_STATUSES:
            raise exceptions.InvalidState("volume", self.id, self._saved["status"], operation)

    def _insert_error(self, resource: str, new_id: str) -> Exception:
        return _insert_refusal(self.store, resource, [new_id], "volume", self.id, self.id)

    def save(self) -> None:
        """Write changed attributes; see :meth:`_Record.save`.

        ``in-use`` cannot be set by hand: it follows from the connections.

        :returns: nothing.
        :raises tracker.exceptions.InvalidStatusTransition: forbidden status change.
        :raises tracker.exceptions.ConflictError: the volume changed in the store.
        :raises tracker.exceptions.NotFound: the volume was deleted elsewhere.
        """
        super().save()

    def delete(self) -> None:
        """Stop tracking the volume (the driver has deleted it).

        :returns: nothing.
        :raises tracker.exceptions.DeleteRefused: it still has snapshots or
            connections; nothing is deleted.
        :raises tracker.exceptions.InvalidState: its status does not allow it.
        :raises tracker.exceptions.ConflictError: it changed in the store since read.
        :raises tracker.exceptions.NotFound: it was deleted elsewhere.
        """
        if self._saved["status"] not in DELETABLE_STATUSES:
            raise exceptions.InvalidState("volume", self.id, self._saved["status"], "delete")

        def work(session: Session) -> None:
            # The volume row first: no dependent can appear once it is held.
            repository.lock_versioned(session, "volume", self.id, self.version, for_delete=True)
            dependents = repository.dependents_of_volume(session, self.id)
            if dependents:
                raise exceptions.DeleteRefused("volume", self.id, dependents)
            try:
                repository.delete_versioned(session, "volume", self.id, self.version)
            except IntegrityError as exc:  # a dependent appeared meanwhile
                raise exceptions.DeleteRefused("volume", self.id, ["new dependents"]) from exc

        self.store.run_write(work, f"delete volume {self.id}")
        self.__dict__["status"] = "deleted"
        self._mark_saved()
        self._snapshots = []
        self._connections = []
        self._backend._forget("volume", self.id)

    def refresh(self) -> None:
        """Reload the volume and its loaded snapshots and connections.

        :returns: nothing.
        :raises tracker.exceptions.NotFound: it was deleted elsewhere.
        """
        with self.store.read(f"refresh volume {self.id}") as session:
            apply = self._reload(session)
        apply()

    def _reload(self, session: Session) -> Callable[[], None]:
        """Read the volume and what it has loaded in the caller's (snapshot) transaction.

        :returns: what applies the rows to the objects, once the read is over.
        :raises tracker.exceptions.NotFound: it was deleted elsewhere.
        """
        row = repository.get_row(session, "volume", self.id)
        snapshot_rows = (
            repository.snapshots_of(session, self.id) if self._snapshots is not None else None
        )
        connection_rows = (
            repository.connections_of(session, self.id) if self._connections is not None else None
        )
        observed = _read_observed(session, self.id) if self._observed is not None else None

        def apply() -> None:
            self._apply_row(row)
            if observed is not None:
                self._observed = observed
            if snapshot_rows is not None:
                self._snapshots = [
                    self._backend._snapshot_from_row(r, refresh=True) for r in snapshot_rows
                ]
            if connection_rows is not None:
                self._connections = [
                    self._backend._connection_from_row(r, refresh=True) for r in connection_rows
                ]

        return apply

    def _forget_child(self, kind: str, child_id: str) -> None:
        if kind == "snapshot" and self._snapshots is not None:
            self._snapshots = [s for s in self._snapshots if s.id != child_id]
        if kind == "connection" and self._connections is not None:
            self._connections = [c for c in self._connections if c.id != child_id]

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return (
            f"<Volume {self._short_id()}{name} {self.size}GiB {self.status} "
            f"on {self._backend.name!r}>"
        )


class _Child(_Record):
    """A snapshot or connection: it belongs to a volume."""

    volume_id: str
    _volume: Volume | None

    @classmethod
    def _new(cls, backend: Backend) -> Self:
        self = cls.__new__(cls)
        self._backend = backend
        self._volume = None
        return self

    @classmethod
    def _created(cls, backend: Backend, values: Mapping[str, Any], volume: Volume) -> Self:
        self = cls._new(backend)
        self._volume = volume
        self._register_created(values)
        return self

    def _apply_row(self, row: Row[Any], *, fresh: bool = False) -> None:
        self.volume_id = row._mapping["volume_id"]
        super()._apply_row(row, fresh=fresh)

    @property
    def volume(self) -> Volume:
        """The volume this belongs to, loaded on first access and cached.

        :returns: the volume (the cached object when there is one).
        :raises tracker.exceptions.NotFound: the volume is gone from the store.
        """
        if self._volume is None:
            self._volume = self._backend.get_volume(self.volume_id)
        return self._volume

    def volume_loaded(self) -> bool:
        """:returns: whether :attr:`volume` is cached."""
        return self._volume is not None

    def refresh(self) -> None:
        """Reload the record and, when loaded, its volume (and what that has loaded).

        :returns: nothing.
        :raises tracker.exceptions.NotFound: it was deleted elsewhere.
        """
        volume = self._volume
        with self.store.read(f"refresh {self._resource} {self.id}") as session:
            row = repository.get_row(session, self._resource, self.id)
            reload_volume = volume._reload(session) if volume is not None else None
        self._apply_row(row)
        if reload_volume is not None:  # read in the same snapshot as the record
            reload_volume()

    def _after_delete(self) -> None:
        volume = self._volume or self._backend._cached_volume(self.volume_id)
        if volume is not None:
            volume._forget_child(self._resource, self.id)
        self._backend._forget(self._resource, self.id)


class Snapshot(_Child):
    """A snapshot tracked on a volume. Build it with :meth:`Volume.create_snapshot`."""

    _resource = "snapshot"
    _writable: ClassVar[Mapping[str, str]] = {"name": "name", "size": "size", "status": "status"}
    _transitions = SNAPSHOT_TRANSITIONS

    name = _Field(validation.optional_text)
    size = _Field(validation.size_gib)
    status = _status_field(models.SNAPSHOT_STATUSES)

    def delete(self) -> None:
        """Stop tracking the snapshot (the driver has deleted it).

        :returns: nothing.
        :raises tracker.exceptions.ConflictError: it changed in the store since read.
        :raises tracker.exceptions.NotFound: it was deleted elsewhere.
        """
        self.store.run_write(
            lambda session: repository.delete_versioned(session, "snapshot", self.id, self.version),
            f"delete snapshot {self.id}",
        )
        self.__dict__["status"] = "deleted"
        self._mark_saved()
        self._after_delete()

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        return (
            f"<Snapshot {self._short_id()}{name} {self.size}GiB {self.status} "
            f"of volume {self.volume_id[:8]}>"
        )


class Connection(_Child):
    """An export of a volume to a host. Build it with :meth:`Volume.connect`."""

    _resource = "connection"
    _writable: ClassVar[Mapping[str, str]] = {
        "status": "status",
        "connection_info": "connection_info",
        "connector_info": "connector_info",
    }
    _transitions = CONNECTION_TRANSITIONS

    status = _status_field(models.CONNECTION_STATUSES)
    connector_info = _json_field()
    connection_info = _json_field()

    host: str
    protocol: str
    attach_mode: str

    def _apply_row(self, row: Row[Any], *, fresh: bool = False) -> None:
        data = row._mapping
        self.host = data["host"]
        self.protocol = data["protocol"]
        self.attach_mode = data["attach_mode"]
        super()._apply_row(row, fresh=fresh)

    @property
    def attached(self) -> bool:
        """:returns: whether this connection keeps its volume ``in-use``."""
        return self.status in repository.ATTACHED_STATUSES

    def _lock_parent(self, session: Session, changes: Mapping[str, Any]) -> None:
        if "status" in changes:  # the volume is written too: lock it first
            volume = self.volume
            repository.lock_versioned(session, "volume", volume.id, volume.version)

    def _after_write(
        self, session: Session, changes: Mapping[str, Any]
    ) -> Callable[[], None] | None:
        if "status" in changes:
            return self.volume._sync_status(session, _now())
        return None

    def save(self) -> None:
        """Write changed attributes; a status change updates the volume's status too.

        :returns: nothing.
        :raises tracker.exceptions.InvalidStatusTransition: forbidden status change.
        :raises tracker.exceptions.ConflictError: the connection or its volume
            changed in the store since read; nothing was written.
        :raises tracker.exceptions.NotFound: it was deleted elsewhere.
        """
        if "status" in self._changes():
            self.volume  # load it before the write transaction  # noqa: B018
        super().save()

    def disconnect(self) -> None:
        """Stop tracking the export (the driver has removed it).

        When it was the volume's last attached connection the volume goes back
        to ``available``. A ``local_attach`` through it is cleared.

        :returns: nothing.
        :raises tracker.exceptions.ConflictError: the connection or its volume
            changed in the store since read; nothing was written.
        :raises tracker.exceptions.NotFound: it was deleted elsewhere.
        """
        volume = self.volume
        now = _now()

        def work(session: Session) -> Callable[[], None]:
            repository.lock_versioned(session, "volume", volume.id, volume.version)
            repository.delete_versioned(session, "connection", self.id, self.version)
            return volume._sync_status(session, now)

        synced = self.store.run_write(work, f"disconnect connection {self.id}")
        synced()
        attached_here = volume.local_attach
        if attached_here is not None and attached_here.id == self.id:
            volume.local_attach = None
        self._after_delete()

    def __repr__(self) -> str:
        return (
            f"<Connection {self._short_id()} {self.protocol or '?'} to {self.host!r} "
            f"{self.status} ({self.attach_mode}) of volume {self.volume_id[:8]}>"
        )


class _FakeRow:
    """Lets freshly inserted values go through the same ``_apply_row`` as loaded rows."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._mapping = values

    def __getattr__(self, name: str) -> Any:
        try:
            return self._mapping[name]
        except KeyError:
            raise AttributeError(name) from None
