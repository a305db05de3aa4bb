"""Each observed kind, described once, as data.

A :class:`KindSpec` says everything the reconciler and the read model need to
know about one kind of observed object: its table, its natural-key columns,
which discovery objects of a :class:`~tracker.discovery.model.HostState` it
holds, how one of them becomes a row, how its key is printed in the journal,
and whether (and how) its rows link to tracked volumes. :data:`SPECS` lists
them parents first, the order rows are inserted in (deletes go the other way).

Adding a kind is one :class:`KindSpec` entry here plus a migration creating its
table; nothing else in :mod:`tracker.reconcile` names a kind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import Table

from tracker.db import models
from tracker.discovery.model import (
    FcPathIds,
    FcRemotePort,
    HostState,
    IscsiPathIds,
    IscsiSession,
    MultipathMap,
    ScsiDevice,
    ScsiHost,
)

__all__ = [
    "KINDS",
    "SPECS",
    "Key",
    "KindSpec",
    "Row",
    "RowContext",
    "VolumeLink",
    "desired_rows",
    "digest",
    "spec",
]

#: A natural key: the values of a kind's key columns, in order.
Key = tuple[Any, ...]
#: A row's column values (``host_name`` and bookkeeping columns excluded).
Row = dict[str, Any]

T = TypeVar("T")


class VolumeLink(StrEnum):
    """How the rows of a kind are linked to tracked volumes (their ``volume_id``)."""

    NONE = "none"
    """The kind has no ``volume_id``."""
    IDENTITY = "identity"
    """Matched by the row's ``wwn``/``wwid`` (with or without a ``naa.``/``eui.``/``0x``
    prefix) or its unit ``serial`` against the volume's WWN or serial."""
    UNIT = "unit"
    """Inherits the link of its logical unit: the volume an ``IDENTITY`` row with the
    same ``wwid`` on the same host is linked to."""


@dataclass(frozen=True, slots=True)
class RowContext:
    """What building one row may need beyond its own object.

    :ivar initiators: SCSI host number -> its FC initiator WWPN (``None`` if not FC).
    """

    initiators: Mapping[int, str | None] = field(default_factory=dict)

    @classmethod
    def of(cls, scsi_hosts: Sequence[ScsiHost]) -> RowContext:
        """:returns: the context of a host with these SCSI hosts. Never raises."""
        return cls({host.number: host.wwpn for host in scsi_hosts})


@dataclass(frozen=True, slots=True)
class KindSpec(Generic[T]):
    """One observed kind.

    :ivar name: the kind's name, as journaled (``scsi_device``).
    :ivar table: its table.
    :ivar key_columns: the columns of its natural key (after ``host_name``).
    :ivar objects: the discovery objects of this kind in a HostState.
    :ivar build: turns one object into its row (every compared column, in a fixed
        order; ``volume_id`` ``None`` -- linking fills it).
    :ivar key_text: prints a key for the journal and for operators.
    :ivar volume_link: whether and how its rows link to tracked volumes.
    """

    name: str
    table: Table
    key_columns: tuple[str, ...]
    objects: Callable[[HostState], Sequence[T]]
    build: Callable[[T, RowContext], Row]
    key_text: Callable[[Key], str]
    volume_link: VolumeLink = VolumeLink.NONE

    def key_of(self, row: Mapping[str, Any]) -> Key:
        """The natural key of a row (built or read).

        :returns: the values of :attr:`key_columns`. Never raises on a row of this kind.
        """
        return tuple(row[column] for column in self.key_columns)

    def rows(self, state: HostState, context: RowContext | None = None) -> dict[Key, Row]:
        """:returns: natural key -> row, for every object of this kind in ``state``."""
        ctx = context if context is not None else RowContext.of(state.scsi_hosts)
        built = (self.build(obj, ctx) for obj in self.objects(state))
        return {self.key_of(row): row for row in built}


# --- rows of each kind (pure) ---------------------------------------------------


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _scsi_host_row(host: ScsiHost, context: RowContext) -> Row:
    return {
        "number": host.number,
        "sys_path": host.sys_path,
        "transport": host.transport.value,
        "driver": host.driver,
        "state": host.state,
        "wwpn": host.wwpn,
        "wwnn": host.wwnn,
        "port_state": host.port_state,
        "port_id": host.port_id,
        "speed": host.speed,
        "fabric_name": host.fabric_name,
        "iscsi_initiator_name": host.iscsi_initiator_name,
    }


def _fc_remote_port_row(rport: FcRemotePort, context: RowContext) -> Row:
    port_key = rport.key[1]
    return {
        "scsi_host": rport.host,
        "port_key": port_key,
        "sys_path": rport.sys_path,
        "channel": rport.channel,
        "number": rport.number,
        "wwpn": rport.wwpn,
        "wwnn": rport.wwnn,
        "port_id": rport.port_id,
        "roles": ",".join(rport.roles),
        "port_state": rport.port_state,
        "scsi_target_id": rport.scsi_target_id,
    }


def _iscsi_session_row(session: IscsiSession, context: RowContext) -> Row:
    iqn, portal, iface = session.key
    return {
        "target_iqn": iqn,
        "portal": portal,
        "iface": iface,
        "sys_path": session.sys_path,
        "session_id": session.session_id,
        "scsi_host": session.host,
        "tpgt": session.tpgt,
        "current_portal": _text(session.current_portal),
        "state": session.state,
        "connection_state": session.connection_state,
        "persistent_address": session.persistent_address,
        "persistent_port": session.persistent_port,
    }


def _scsi_device_row(device: ScsiDevice, context: RowContext) -> Row:
    ids = device.transport_ids
    identity = device.identity
    fc = ids if isinstance(ids, FcPathIds) else None
    iscsi = ids if isinstance(ids, IscsiPathIds) else None
    return {
        "hctl": str(device.hctl),
        "scsi_host": device.hctl.host,
        "channel": device.hctl.channel,
        "target": device.hctl.target,
        "lun": device.hctl.lun,
        "sys_path": device.sys_path,
        "peripheral_type": device.peripheral_type,
        "vendor": device.vendor,
        "model": device.model,
        "revision": device.revision,
        "state": device.state,
        "block_name": device.block_name,
        "block_devno": device.block_devno,
        "size_bytes": device.size_bytes,
        "logical_block_size": device.logical_block_size,
        "read_only": device.read_only,
        "wwn": identity.wwn,
        "wwid": identity.wwid,
        "serial": identity.serial,
        "transport": "fc" if fc is not None else ("iscsi" if iscsi is not None else None),
        "initiator_wwpn": context.initiators.get(device.hctl.host) if fc is not None else None,
        "target_wwpn": fc.wwpn if fc is not None else None,
        "target_iqn": iscsi.target_iqn if iscsi is not None else None,
        "target_portal": _text(iscsi.portal) if iscsi is not None else None,
        "links": list(device.links),
        "volume_id": None,
    }


def _multipath_map_row(mpath: MultipathMap, context: RowContext) -> Row:
    return {
        "wwid": mpath.wwid,
        "name": mpath.name,
        "uuid": mpath.uuid,
        "block_name": mpath.block_name,
        "sys_path": mpath.sys_path,
        "size_bytes": mpath.size_bytes,
        "read_only": mpath.read_only,
        "suspended": mpath.suspended,
        "paths": [
            {
                "block_name": p.block_name,
                "hctl": _text(p.hctl),
                "state": p.state.value,
                "device_state": p.device_state,
            }
            for p in mpath.paths
        ],
        "volume_id": None,
    }


def _session_key_text(key: Key) -> str:
    iqn, portal, iface = key
    return f"{iqn} @ {portal}" + (f" ({iface})" if iface else "")


def _table(model: type[models.Base]) -> Table:
    table: Table = model.__table__  # type: ignore[assignment]
    return table


#: Every observed kind, parents first (the order rows are inserted in).
SPECS: tuple[KindSpec[Any], ...] = (
    KindSpec(
        name="scsi_host",
        table=_table(models.ObservedScsiHost),
        key_columns=("number",),
        objects=lambda state: state.scsi_hosts,
        build=_scsi_host_row,
        key_text=lambda key: f"host{key[0]}",
    ),
    KindSpec(
        name="fc_remote_port",
        table=_table(models.ObservedFcRemotePort),
        key_columns=("scsi_host", "port_key"),
        objects=lambda state: state.fc_remote_ports,
        build=_fc_remote_port_row,
        key_text=lambda key: f"host{key[0]} -> {key[1]}",
    ),
    KindSpec(
        name="iscsi_session",
        table=_table(models.ObservedIscsiSession),
        key_columns=("target_iqn", "portal", "iface"),
        objects=lambda state: state.iscsi_sessions,
        build=_iscsi_session_row,
        key_text=_session_key_text,
    ),
    KindSpec(
        name="scsi_device",
        table=_table(models.ObservedScsiDevice),
        key_columns=("hctl",),
        objects=lambda state: state.scsi_devices,
        build=_scsi_device_row,
        key_text=lambda key: str(key[0]),
        volume_link=VolumeLink.IDENTITY,
    ),
    KindSpec(
        name="multipath_map",
        table=_table(models.ObservedMultipathMap),
        key_columns=("wwid",),
        objects=lambda state: state.multipath_maps,
        build=_multipath_map_row,
        key_text=lambda key: str(key[0]),
        volume_link=VolumeLink.UNIT,
    ),
)

#: The kinds' names, parents first.
KINDS: tuple[str, ...] = tuple(s.name for s in SPECS)
_BY_NAME: Mapping[str, KindSpec[Any]] = {s.name: s for s in SPECS}


def spec(kind: str) -> KindSpec[Any]:
    """:returns: the spec of the kind with that name.

    :raises KeyError: no kind has that name.
    """
    return _BY_NAME[kind]


def desired_rows(state: HostState) -> dict[str, dict[Key, Row]]:
    """Turn a HostState into the rows the store should hold for that host.

    :returns: kind -> natural key -> column values (``host_name`` excluded).
    """
    context = RowContext.of(state.scsi_hosts)
    return {s.name: s.rows(state, context) for s in SPECS}


#: Columns a digest does not cover: the volume link is compared on its own, so
#: that re-linking a row needs neither its content nor a new digest.
UNDIGESTED = frozenset({"volume_id"})


def digest(values: Mapping[str, Any]) -> str:
    """A digest of an object's compared columns, ``volume_id`` excluded.

    The rows of one kind are always built with the same columns in the same
    order (:attr:`KindSpec.build`), so the values alone identify the content.

    :returns: 32 hex digits. Never raises.
    """
    content = tuple(v for k, v in values.items() if k not in UNDIGESTED and k != "digest")
    return hashlib.blake2b(repr(content).encode(), digest_size=16).hexdigest()
