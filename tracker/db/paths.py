"""What volume paths and detach checks read: hosts' devices and maps, tracked volumes
and their attachments, in one snapshot.

:func:`read_paths` reads, in the caller's read-only session (one snapshot on
every database), the observed SCSI devices and multipath maps of one host or
of every host, the tracked volumes (id, name, WWN, serial) and the tracked
connections (a volume's attachment to a host) -- six queries whatever the size
of the fleet. :func:`appeared_since` reads, for findings, when each object last
appeared (the journal's ``appeared`` entries). Everything comes back as frozen
records; the analysis is :mod:`tracker.paths.findings`'s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.orm import Session

from tracker import exceptions, validation
from tracker.db import observed, repository
from tracker.db.observed import MultipathMapRecord, ScsiDeviceRecord

__all__ = [
    "ATTACHED_STATUSES",
    "AttachmentRecord",
    "PathsSnapshot",
    "TrackedVolumeRecord",
    "appeared_since",
    "read_paths",
    "read_volume_paths",
]

#: The statuses of a tracked connection whose paths are expected on its host.
ATTACHED_STATUSES = ("attaching", "attached")


@dataclass(frozen=True, slots=True)
class TrackedVolumeRecord:
    """A tracked volume, as far as its paths are concerned.

    :ivar wwn: the WWN the array gave it (its devices' WWID), if known.
    :ivar serial: its SCSI serial number, if known.
    """

    id: str
    name: str | None
    wwn: str | None
    serial: str | None


@dataclass(frozen=True, slots=True)
class AttachmentRecord:
    """A tracked connection: a volume attached (or once attached) to a host.

    :ivar host: the host name the connection is for.
    :ivar status: ``attaching``, ``attached``, ``detaching`` or ``error``.
    :ivar connection_info: the connection properties as the backend gave them.
    """

    id: str
    volume_id: str
    host: str
    protocol: str
    status: str
    connection_info: Mapping[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def attached(self) -> bool:
        """:returns: whether its paths are expected on the host. Never raises."""
        return self.status in ATTACHED_STATUSES


@dataclass(frozen=True, slots=True)
class PathsSnapshot:
    """One consistent read of the hosts' paths and the tracked attachments.

    :ivar hosts: the hosts read (one, or every host that reconciled), sorted.
    :ivar devices: their SCSI devices, by host and address.
    :ivar maps: their multipath maps, by host and WWID.
    :ivar volumes: every tracked volume, by id.
    :ivar attachments: the tracked connections to the hosts read, by id.
    """

    hosts: tuple[str, ...]
    devices: tuple[ScsiDeviceRecord, ...]
    maps: tuple[MultipathMapRecord, ...]
    volumes: Mapping[str, TrackedVolumeRecord]
    attachments: tuple[AttachmentRecord, ...]


def _hosts(session: Session, host_name: str | None) -> tuple[str, ...]:
    stmt = select(observed.HOSTS.c.host_name).order_by(observed.HOSTS.c.host_name)
    if host_name is not None:
        stmt = stmt.where(observed.HOSTS.c.host_name == host_name)
    hosts = tuple(session.execute(stmt).scalars())
    if host_name is not None and not hosts:
        raise exceptions.HostNotDiscovered(host_name)
    return hosts


def _attachment(row: Any) -> AttachmentRecord:
    return AttachmentRecord(
        row.id,
        row.volume_id,
        row.host,
        row.protocol or "",
        row.status,
        dict(row.connection_info or {}),
        row.created_at,
        row.updated_at,
    )


def read_paths(session: Session, host_name: str | None = None) -> PathsSnapshot:
    """Read one host's paths (or every host's) and the tracked volumes and attachments.

    :param host_name: the host, or ``None`` for every host in the store.
    :returns: the snapshot.
    :raises tracker.exceptions.HostNotDiscovered: ``host_name`` never reconciled
        into the store.
    """
    hosts = _hosts(session, host_name)
    devices_stmt = select(observed.SCSI_DEVICES)
    maps_stmt = select(observed.MULTIPATH_MAPS)
    connections_stmt = select(repository.CONNECTIONS)
    if host_name is not None:
        devices_stmt = devices_stmt.where(observed.SCSI_DEVICES.c.host_name == host_name)
        maps_stmt = maps_stmt.where(observed.MULTIPATH_MAPS.c.host_name == host_name)
        connections_stmt = connections_stmt.where(repository.CONNECTIONS.c.host == host_name)
    devices_stmt = devices_stmt.order_by(
        observed.SCSI_DEVICES.c.host_name, observed.SCSI_DEVICES.c.hctl
    )
    maps_stmt = maps_stmt.order_by(
        observed.MULTIPATH_MAPS.c.host_name, observed.MULTIPATH_MAPS.c.wwid
    )
    devices = tuple(
        observed._record(ScsiDeviceRecord, row) for row in session.execute(devices_stmt)
    )
    maps = tuple(observed._record(MultipathMapRecord, row) for row in session.execute(maps_stmt))
    volumes_table = repository.VOLUMES
    volumes = {
        row.id: TrackedVolumeRecord(row.id, row.name, row.wwn, row.serial)
        for row in session.execute(
            select(
                volumes_table.c.id,
                volumes_table.c.name,
                volumes_table.c.wwn,
                volumes_table.c.serial,
            )
        )
    }
    connections = repository.CONNECTIONS
    attachments = tuple(
        _attachment(row) for row in session.execute(connections_stmt.order_by(connections.c.id))
    )
    return PathsSnapshot(hosts, devices, maps, volumes, attachments)


def read_volume_paths(
    session: Session,
    volume_id: str,
    targets: Callable[[AttachmentRecord], Iterable[tuple[str, str, str, int]]],
    host_name: str | None = None,
) -> PathsSnapshot | None:
    """Read what checks of one volume need: its attachments, the devices and maps that
    may be its (or at its targets), and the identities of the volumes they link to.

    The devices are those linked to the volume, with one of its WWN spellings or
    its serial, or at a target and LUN of one of its connections (coarsely, by
    IQN or WWPN and LUN: the caller checks exactly); the maps are those linked
    to it, with its WWID, or of those devices, and the members of those maps.
    Seven indexed queries, however large the fleet.

    :param targets: the ``(transport, target, portal, kernel LUN)`` keys of a
        connection's paths (:func:`tracker.paths.findings.target_keys`).
    :param host_name: one host, or ``None`` for every host.
    :returns: the snapshot, or ``None`` when the volume is not tracked.
    :raises tracker.exceptions.HostNotDiscovered: ``host_name`` never reconciled.
    """
    hosts = _hosts(session, host_name)
    volumes_table, connections, devices_t, maps_t = (
        repository.VOLUMES,
        repository.CONNECTIONS,
        observed.SCSI_DEVICES,
        observed.MULTIPATH_MAPS,
    )
    row = session.execute(
        select(
            volumes_table.c.id, volumes_table.c.name, volumes_table.c.wwn, volumes_table.c.serial
        ).where(volumes_table.c.id == volume_id)
    ).first()
    if row is None:
        return None
    volume = TrackedVolumeRecord(row.id, row.name, row.wwn, row.serial)
    stmt = select(connections).where(connections.c.volume_id == volume_id)
    if host_name is not None:
        stmt = stmt.where(connections.c.host == host_name)
    attachments = tuple(_attachment(r) for r in session.execute(stmt.order_by(connections.c.id)))
    forms = set(validation.wwn_forms(volume.wwn))
    spellings = sorted(
        {f"{prefix}{form}" for form in forms for prefix in ("", *validation.WWN_PREFIXES)}
        | {f"3{form}" for form in forms}
    )
    device_filters = [devices_t.c.volume_id == volume_id]
    if spellings:
        device_filters += [devices_t.c.wwn.in_(spellings), devices_t.c.wwid.in_(spellings)]
    if volume.serial:
        device_filters.append(devices_t.c.serial == volume.serial)
    keys = {key for a in attachments for key in targets(a)}
    for transport, target, _portal, lun in keys:
        column = devices_t.c.target_iqn if transport == "iscsi" else devices_t.c.target_wwpn
        device_filters.append(
            (column.in_(_target_spellings(transport, target))) & (devices_t.c.lun == lun)
        )
    stmt = select(devices_t).where(or_(*device_filters))
    if host_name is not None:
        stmt = stmt.where(devices_t.c.host_name == host_name)
    devices = {
        (d.host_name, d.hctl): d
        for d in (observed._record(ScsiDeviceRecord, r) for r in session.execute(stmt))
    }
    map_filters = [maps_t.c.volume_id == volume_id]
    wwids = sorted({d.wwid for d in devices.values() if d.wwid} | set(spellings))
    if wwids:
        map_filters.append(maps_t.c.wwid.in_(wwids))
    stmt = select(maps_t).where(or_(*map_filters))
    if host_name is not None:
        stmt = stmt.where(maps_t.c.host_name == host_name)
    maps = tuple(observed._record(MultipathMapRecord, r) for r in session.execute(stmt))
    members = {(m.host_name, p.block_name) for m in maps for p in m.paths}
    have = {(d.host_name, d.block_name) for d in devices.values()}
    missing = sorted(members - have)
    for start in range(0, len(missing), 500):
        chunk = missing[start : start + 500]
        stmt = select(devices_t).where(
            tuple_(devices_t.c.host_name, devices_t.c.block_name).in_(chunk)
        )
        for r in session.execute(stmt):
            device = observed._record(ScsiDeviceRecord, r)
            devices[(device.host_name, device.hctl)] = device
    linked = {d.volume_id for d in devices.values() if d.volume_id} | {
        m.volume_id for m in maps if m.volume_id
    }
    identities = {
        f"{prefix}{form}"
        for d in devices.values()
        for value in (d.wwn, d.wwid)
        for form in validation.wwn_forms(value)
        for prefix in ("", *validation.WWN_PREFIXES)
    }
    serials = {d.serial for d in devices.values() if d.serial}
    volumes = {volume.id: volume}
    others = or_(
        volumes_table.c.id.in_(sorted(linked - {volume.id})),
        volumes_table.c.wwn.in_(sorted(identities)),
        volumes_table.c.serial.in_(sorted(serials)),
    )
    if linked - {volume.id} or identities or serials:
        for r in session.execute(
            select(
                volumes_table.c.id,
                volumes_table.c.name,
                volumes_table.c.wwn,
                volumes_table.c.serial,
            ).where(others)
        ):
            volumes[r.id] = TrackedVolumeRecord(r.id, r.name, r.wwn, r.serial)
    ordered = tuple(devices[key] for key in sorted(devices))
    maps = tuple(sorted(maps, key=lambda m: (m.host_name, m.wwid)))
    return PathsSnapshot(hosts, ordered, maps, volumes, attachments)


def _target_spellings(transport: str, target: str) -> list[str]:
    if transport == "iscsi":
        return [target]
    return [target, f"0x{target}"]


def appeared_since(
    session: Session, objects: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], dt.datetime]:
    """When each object last appeared on its host, from the journal.

    :param objects: ``(host_name, kind, key)`` triples (``scsi_device`` by
        SCSI address, ``multipath_map`` by WWID).
    :returns: triple -> the time of its latest ``appeared`` entry (objects the
        journal no longer holds are left out). One query per 500 objects.
    """
    wanted = sorted(set(objects))
    journal = observed.JOURNAL
    found: dict[tuple[str, str, str], dt.datetime] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        stmt = (
            select(
                journal.c.host_name, journal.c.kind, journal.c.object_key, func.max(journal.c.at)
            )
            .where(
                journal.c.event == "appeared",
                tuple_(journal.c.host_name, journal.c.kind, journal.c.object_key).in_(chunk),
            )
            .group_by(journal.c.host_name, journal.c.kind, journal.c.object_key)
        )
        for host_name, kind, key, at in session.execute(stmt):
            found[(host_name, kind, key)] = at
    return found
