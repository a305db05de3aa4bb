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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from tracker import exceptions
from tracker.db import observed, repository
from tracker.db.observed import MultipathMapRecord, ScsiDeviceRecord

__all__ = [
    "ATTACHED_STATUSES",
    "AttachmentRecord",
    "PathsSnapshot",
    "TrackedVolumeRecord",
    "appeared_since",
    "read_paths",
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


def read_paths(session: Session, host_name: str | None = None) -> PathsSnapshot:
    """Read one host's paths (or every host's) and the tracked volumes and attachments.

    :param host_name: the host, or ``None`` for every host in the store.
    :returns: the snapshot.
    :raises tracker.exceptions.HostNotDiscovered: ``host_name`` never reconciled
        into the store.
    """
    hosts_stmt = select(observed.HOSTS.c.host_name).order_by(observed.HOSTS.c.host_name)
    if host_name is not None:
        hosts_stmt = hosts_stmt.where(observed.HOSTS.c.host_name == host_name)
    hosts = tuple(session.execute(hosts_stmt).scalars())
    if host_name is not None and not hosts:
        raise exceptions.HostNotDiscovered(host_name)
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
        AttachmentRecord(
            row.id,
            row.volume_id,
            row.host,
            row.protocol or "",
            row.status,
            dict(row.connection_info or {}),
            row.created_at,
            row.updated_at,
        )
        for row in session.execute(connections_stmt.order_by(connections.c.id))
    )
    return PathsSnapshot(hosts, devices, maps, volumes, attachments)


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
