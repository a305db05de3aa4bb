"""Volume paths and detach checks against a store: one snapshot per call.

The functions of :mod:`tracker.paths.findings`, reading what they need from
a store in one read-only transaction (:func:`tracker.db.paths.read_paths`,
then the journal for the times findings carry). ``host=None`` means every
host that reconciled into the store: a fleet sharing it is checked at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tracker import exceptions, validation
from tracker.db import paths as db_paths
from tracker.db.store import Store
from tracker.paths import findings
from tracker.paths.connectors import VolumePath, paths_of
from tracker.paths.findings import AttachReport, DetachReport, OrphanReport

__all__ = ["HostPaths", "find_orphans", "verify_attach", "verify_detach", "volume_paths"]


@dataclass(frozen=True, slots=True)
class HostPaths:
    """A volume's paths on one host it is attached to.

    :ivar connection_id: the tracked connection they are for.
    :ivar error: why the connection's properties could not be read, if so.
    """

    host_name: str
    connection_id: str
    paths: tuple[VolumePath, ...]
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        """:returns: JSON-ready. Never raises."""
        return {
            "host": self.host_name,
            "connection_id": self.connection_id,
            "paths": [p.as_dict() for p in self.paths],
            "error": self.error,
        }


def volume_paths(store: Store, volume_id: str, host: str | None = None) -> list[HostPaths]:
    """List a volume's paths on each host of its attached connections (one snapshot).

    :returns: one entry per attached connection, by host.
    :raises tracker.exceptions.InvalidInput: a bad store, id or host name.
    :raises tracker.exceptions.NotFound: the volume is not tracked.
    :raises tracker.exceptions.HostNotDiscovered: ``host`` never reconciled.
    :raises tracker.exceptions.StoreError: the store cannot be read.
    """
    validation.store("store", store)
    volume_id = validation.identifier("volume_id", volume_id)
    host = _host(host)
    with store.read(f"read the paths of volume {volume_id}") as session:
        snapshot = db_paths.read_paths(session, host)
    if volume_id not in snapshot.volumes:
        raise exceptions.NotFound("volume", volume_id)
    found = []
    for attachment in snapshot.attachments:
        if attachment.volume_id != volume_id or not attachment.attached:
            continue
        try:
            properties = findings.attachment_properties(attachment)
        except exceptions.InvalidInput as error:
            found.append(HostPaths(attachment.host, attachment.id, (), str(error)))
            continue
        paths = paths_of(snapshot, attachment.host, properties)
        found.append(HostPaths(attachment.host, attachment.id, paths))
    return sorted(found, key=lambda h: (h.host_name, h.connection_id))


def _host(host: str | None) -> str | None:
    return None if host is None else validation.text("host", host)


def verify_detach(store: Store, volume_id: str, host: str | None = None) -> DetachReport:
    """Report every path still present for a volume on the hosts it is not attached to.

    :param host: one host, or ``None`` for every host in the store.
    :returns: the report: leftovers and hazards that involve the volume, with
        why and since when.
    :raises tracker.exceptions.InvalidInput: a bad store, id or host name.
    :raises tracker.exceptions.NotFound: the volume is not tracked.
    :raises tracker.exceptions.HostNotDiscovered: the host never reconciled.
    :raises tracker.exceptions.StoreError: the store cannot be read.
    """
    validation.store("store", store)
    volume_id = validation.identifier("volume_id", volume_id)
    host = _host(host)
    with store.read(f"verify the detach of volume {volume_id}") as session:
        snapshot = db_paths.read_volume_paths(session, volume_id, _targets, host)
        if snapshot is None:
            raise exceptions.NotFound("volume", volume_id)
        report = findings.verify_detach(snapshot, volume_id, {})
        since = db_paths.appeared_since(session, _objects(report.findings))
    return replace(report, findings=findings.dated(report.findings, since))


def find_orphans(store: Store, host: str | None = None) -> OrphanReport:
    """Find leftover paths and reused-LUN hazards on one host or every host.

    :returns: the report, hazards first.
    :raises tracker.exceptions.InvalidInput: a bad store or host name.
    :raises tracker.exceptions.HostNotDiscovered: the host never reconciled.
    :raises tracker.exceptions.StoreError: the store cannot be read.
    """
    validation.store("store", store)
    host = _host(host)
    with store.read("find orphaned paths") as session:
        snapshot = db_paths.read_paths(session, host)
        report = findings.find_orphans(snapshot, {})
        since = db_paths.appeared_since(session, _objects(report.findings))
    return replace(report, findings=findings.dated(report.findings, since))


def verify_attach(store: Store, volume_id: str, host: str) -> AttachReport:
    """Check that every path of an attached volume is on a host, healthy, and its own.

    :returns: the report.
    :raises tracker.exceptions.InvalidInput: a bad store, id or host name.
    :raises tracker.exceptions.NotFound: the volume is not tracked.
    :raises tracker.exceptions.HostNotDiscovered: the host never reconciled.
    :raises tracker.exceptions.StoreError: the store cannot be read.
    """
    validation.store("store", store)
    volume_id = validation.identifier("volume_id", volume_id)
    host = validation.text("host", host)
    with store.read(f"verify the attach of volume {volume_id} on {host}") as session:
        snapshot = db_paths.read_paths(session, host)
        if volume_id not in snapshot.volumes:
            raise exceptions.NotFound("volume", volume_id)
        report = findings.verify_attach(snapshot, volume_id, host, {})
        since = db_paths.appeared_since(session, _objects(report.findings))
    return replace(report, findings=findings.dated(report.findings, since))


def _targets(attachment: db_paths.AttachmentRecord) -> set[tuple[str, str, str, int]]:
    try:
        return findings.target_keys(findings.attachment_properties(attachment))
    except exceptions.InvalidInput:
        return set()


def _objects(found: tuple[findings.Finding, ...]) -> list[tuple[str, str, str]]:
    return [key for key in (f.object for f in found) if key is not None]
