"""Per-connector volume paths: os-brick's fetch-paths API, answered from the reconciled model.

os-brick's connectors answer ``get_search_path()``, ``get_volume_paths(props)``
and ``get_all_available_volumes()`` by globbing ``/dev/disk/by-path``: a device
without a udev link is missed, and the glob returns local disks and
partitions too. :class:`PathConnector` answers the same three calls from the
host's reconciled model (``tracker host show``): the SCSI devices at the
connection's targets and LUNs, their udev links, and the multipath map behind
them; and only the devices of its transport.

Each protocol is described once, in :data:`PATH_KINDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tracker import exceptions, validation
from tracker.db import paths as db_paths
from tracker.db.observed import MultipathMapRecord, ScsiDeviceRecord
from tracker.db.store import Store
from tracker.paths.findings import device_at
from tracker.paths.properties import (
    PROTOCOLS,
    ConnectionProperties,
    properties_from_dict,
    protocol_of,
)

__all__ = ["PATH_KINDS", "PathConnector", "PathKind", "VolumePath", "connector_for", "paths_of"]


@dataclass(frozen=True, slots=True)
class PathKind:
    """What one protocol's connector looks at.

    :ivar transports: the SCSI transports of its devices.
    :ivar search_path: where its volume paths live, or ``None`` (os-brick's).
    """

    protocol: str
    transports: tuple[str, ...]
    search_path: str | None


#: The connectors, by protocol.
PATH_KINDS: Mapping[str, PathKind] = {
    kind.protocol: kind
    for kind in (
        PathKind("iscsi", ("iscsi",), "/dev/disk/by-path"),
        PathKind("fc", ("fc",), "/dev/disk/by-path"),
        PathKind("local", ("sas", "other"), None),
    )
}
assert set(PATH_KINDS) == set(PROTOCOLS)


@dataclass(frozen=True, slots=True)
class VolumePath:
    """One path of a volume on a host.

    :ivar kind: ``link`` (a udev link), ``device`` (a SCSI block device) or ``map``.
    :ivar hctl: the SCSI address behind it (``None`` for a map).
    """

    path: str
    kind: str
    hctl: str | None
    wwid: str | None

    def as_dict(self) -> dict[str, str | None]:
        """:returns: the path, JSON-ready. Never raises."""
        return {"path": self.path, "kind": self.kind, "hctl": self.hctl, "wwid": self.wwid}


def _paths(
    devices: list[ScsiDeviceRecord], maps: tuple[MultipathMapRecord, ...]
) -> tuple[VolumePath, ...]:
    found: dict[str, VolumePath] = {}
    for device in devices:
        for link in device.links:
            found.setdefault(link, VolumePath(link, "link", device.hctl, device.wwid))
        if device.path:
            found.setdefault(
                device.path, VolumePath(device.path, "device", device.hctl, device.wwid)
            )
    blocks = {d.block_name for d in devices if d.block_name}
    for map_ in maps:
        if blocks & {p.block_name for p in map_.paths}:
            found.setdefault(map_.path, VolumePath(map_.path, "map", None, map_.wwid))
    order = {"link": 0, "device": 1, "map": 2}
    return tuple(sorted(found.values(), key=lambda p: (order[p.kind], p.path)))


def paths_of(
    snapshot: db_paths.PathsSnapshot, host_name: str, properties: ConnectionProperties
) -> tuple[VolumePath, ...]:
    """The paths on one host of the volume the properties name.

    :returns: its udev links, SCSI devices and multipath map, links first. Never raises.
    """
    devices = [d for d in snapshot.devices if d.host_name == host_name and device_at(d, properties)]
    maps = tuple(m for m in snapshot.maps if m.host_name == host_name)
    return _paths(devices, maps)


class PathConnector:
    """One protocol's volume paths on one host, from the reconciled model.

    :param store: the store the host reconciles into.
    :param protocol: ``iscsi``, ``fc`` or ``local`` (os-brick's names too:
        ``ISCSI``, ``FIBRE_CHANNEL``).
    :param host_name: the host (this host's name by default).
    :raises tracker.exceptions.UnknownProtocol: another protocol.
    :raises tracker.exceptions.InvalidInput: a bad store or host name.
    """

    def __init__(self, store: Store, protocol: str, host_name: str | None = None) -> None:
        from tracker import opts

        self.store = validation.store("store", store)
        self.kind = PATH_KINDS[protocol_of(protocol)]
        self.host_name = validation.text(
            "host_name", host_name if host_name is not None else opts.default_host_name()
        )

    def __repr__(self) -> str:
        return f"PathConnector({self.kind.protocol!r}, host_name={self.host_name!r})"

    def get_search_path(self) -> str | None:
        """:returns: where this connector's volume paths live, or ``None``. Never raises."""
        return self.kind.search_path

    def _snapshot(self) -> db_paths.PathsSnapshot:
        with self.store.read(f"read the {self.kind.protocol} paths of {self.host_name}") as session:
            return db_paths.read_paths(session, self.host_name)

    def volume_paths(
        self, connection_properties: ConnectionProperties | Mapping[str, object]
    ) -> tuple[VolumePath, ...]:
        """Every path of one volume on the host: udev links, SCSI devices, the map.

        :param connection_properties: typed properties, or os-brick's dict.
        :returns: the paths, links first.
        :raises tracker.exceptions.InvalidInput: properties that cannot be read
            (:class:`~tracker.exceptions.MissingConnectionProperty` for a missing key).
        :raises tracker.exceptions.HostNotDiscovered: the host never reconciled.
        :raises tracker.exceptions.StoreError: the store cannot be read.
        """
        properties = (
            properties_from_dict(self.kind.protocol, connection_properties)
            if isinstance(connection_properties, Mapping)
            else connection_properties
        )
        if properties.protocol != self.kind.protocol:
            raise exceptions.InvalidInput(
                "connection_properties",
                properties.protocol,
                f"{self.kind.protocol} properties for the {self.kind.protocol} connector",
            )
        return paths_of(self._snapshot(), self.host_name, properties)

    def get_volume_paths(
        self, connection_properties: ConnectionProperties | Mapping[str, object]
    ) -> list[str]:
        """os-brick's call: the paths of one volume on the host.

        :returns: the paths (as :meth:`volume_paths`), as text.
        :raises tracker.exceptions.InvalidInput: as :meth:`volume_paths`.
        :raises tracker.exceptions.StoreError: the store cannot be read.
        """
        return [p.path for p in self.volume_paths(connection_properties)]

    def available_volumes(self) -> tuple[VolumePath, ...]:
        """Every volume path this connector's transport has on the host.

        :returns: the paths, links first (no local disk for ``iscsi``/``fc``).
        :raises tracker.exceptions.HostNotDiscovered: the host never reconciled.
        :raises tracker.exceptions.StoreError: the store cannot be read.
        """
        snapshot = self._snapshot()
        devices = [d for d in snapshot.devices if d.transport in self.kind.transports]
        return _paths(devices, snapshot.maps)

    def get_all_available_volumes(self) -> list[str]:
        """os-brick's call: every volume path of this transport on the host.

        :returns: the paths, as text.
        :raises tracker.exceptions.StoreError: the store cannot be read.
        """
        return [p.path for p in self.available_volumes()]


def connector_for(store: Store, protocol: str, host_name: str | None = None) -> PathConnector:
    """:returns: the path connector of a protocol on a host (see :class:`PathConnector`).

    :raises tracker.exceptions.UnknownProtocol: another protocol.
    """
    return PathConnector(store, protocol, host_name)
