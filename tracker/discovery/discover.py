"""Turn a host's device records into a :class:`~tracker.discovery.model.HostState`.

:func:`discover` classifies every record once, parses it with its kind's parser and
joins the results through dictionaries, so it runs in time linear in the number of
records (plus the final sorts). Joins:

* SCSI device -> host: the ``H`` of its ``H:C:T:L``;
* SCSI device -> FC remote port: the ``fc_transport`` class device of its
  ``targetH:C:T`` path component, else the ``rport-H:C-N`` component of its path;
* SCSI device -> iSCSI session: the ``sessionN`` component of its path, and that
  session's connection 0 (lowest connection id) for the portal and the connection
  state (a ``LOGGED_IN`` session whose connection is not ``up`` is warned about);
* SCSI device -> udev links: its block device's ``udev_links``;
* block disk -> SCSI device: the block device's ``parent``, else the path above
  ``/block/<name>``;
* multipath map -> members: the ``slaves/<name>`` links of the dm device.

Path components are used rather than ``parent`` for the SCSI joins so that either
parent convention (``rport-*``/``session*`` kernel objects as parents or not) works.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable

from tracker.discovery.model import (
    DiscoveryWarning,
    FcPathIds,
    FcRemotePort,
    Hctl,
    HostState,
    IscsiPathIds,
    IscsiSession,
    MultipathMap,
    MultipathPath,
    PathState,
    ScsiDevice,
    ScsiHost,
    Transport,
    WarningCode,
)
from tracker.discovery.parsers import (
    BlockDiskInfo,
    DmInfo,
    FcHostInfo,
    FcTransportInfo,
    IscsiConnectionInfo,
    IscsiHostInfo,
    IscsiSessionInfo,
    PathContext,
    RecordKind,
    ScsiDeviceInfo,
    ScsiHostInfo,
    classify,
    identity_of,
    parse_block_disk,
    parse_dm,
    parse_fc_host,
    parse_fc_remote_port,
    parse_fc_transport,
    parse_iscsi_connection,
    parse_iscsi_host,
    parse_iscsi_session,
    parse_scsi_device,
    parse_scsi_host,
)
from tracker.host.records import DeviceRecord

__all__ = ["MULTIPATH_UUID_PREFIX", "discover", "path_state"]

logger = logging.getLogger(__name__)

MULTIPATH_UUID_PREFIX = "mpath-"

_NO_HCTL = Hctl(0, 0, 0, 0)

_FAILED_STATES = frozenset(
    ("offline", "transport-offline", "blocked", "created-blocked", "cancel", "deleted")
)


def path_state(device_state: str | None) -> PathState:
    """Judge a multipath member's health from its SCSI device state.

    :returns: ``ACTIVE`` for ``running``; ``FAILED`` for ``offline``,
        ``transport-offline``, ``blocked``, ``created-blocked``, ``cancel`` and
        ``deleted``; ``UNKNOWN`` otherwise (no device, ``quiesce``, ``created``,
        unrecognised states). Never raises.
    """
    if device_state == "running":
        return PathState.ACTIVE
    if device_state in _FAILED_STATES:
        return PathState.FAILED
    return PathState.UNKNOWN


class _Records:
    """Records sorted by kind, parsed, and indexed for the joins."""

    def __init__(self) -> None:
        self.warnings: list[DiscoveryWarning] = []
        self.host_devices: dict[int, ScsiHostInfo] = {}
        self.host_classes: dict[int, ScsiHostInfo] = {}
        self.fc_hosts: dict[int, FcHostInfo] = {}
        self.iscsi_hosts: dict[int, IscsiHostInfo] = {}
        self.sas_hosts: set[int] = set()
        self.rports: dict[str, FcRemotePort] = {}
        self.fc_transports: dict[str, FcTransportInfo] = {}
        self.sessions: dict[int, IscsiSessionInfo] = {}
        self.connections: dict[int, IscsiConnectionInfo] = {}
        self.scsi_devices: dict[str, ScsiDeviceInfo] = {}
        self.blocks: list[BlockDiskInfo] = []
        self.dms: list[DmInfo] = []
        # Every path of a logical unit carries the same pages: compute each identity
        # once per discover() call.
        self.identity = functools.lru_cache(maxsize=None)(identity_of)

    def _duplicate(self, record: DeviceRecord, what: str) -> None:
        self.warnings.append(
            DiscoveryWarning(
                record.sys_path, WarningCode.DUPLICATE, f"another record is already {what}"
            )
        )

    def add(self, record: DeviceRecord, kind: RecordKind) -> None:
        """Parse one record of a known kind and index it. Never raises."""
        warnings = self.warnings
        if kind is RecordKind.SCSI_DEVICE:
            device = parse_scsi_device(record, warnings, self.identity)
            if device is not None:
                self.scsi_devices[device.sys_path] = device
        elif kind is RecordKind.BLOCK_DISK:
            self.blocks.append(parse_block_disk(record, warnings))
        elif kind is RecordKind.DM_DISK:
            self.dms.append(parse_dm(record, warnings))
        elif kind is RecordKind.FC_TRANSPORT:
            transport = parse_fc_transport(record, warnings)
            if transport is not None:
                self.fc_transports[transport.target] = transport
        elif kind is RecordKind.FC_REMOTE_PORT:
            rport = parse_fc_remote_port(record, warnings)
            if rport is not None:
                self.rports[rport.name] = rport
        elif kind is RecordKind.SCSI_HOST_DEVICE or kind is RecordKind.SCSI_HOST:
            host = parse_scsi_host(record, warnings)
            if host is not None:
                table = (
                    self.host_devices if kind is RecordKind.SCSI_HOST_DEVICE else self.host_classes
                )
                if host.number in table:
                    self._duplicate(record, f"host{host.number}")
                else:
                    table[host.number] = host
        elif kind is RecordKind.FC_HOST:
            fc_host = parse_fc_host(record, warnings)
            if fc_host is not None:
                self.fc_hosts[fc_host.number] = fc_host
        elif kind is RecordKind.ISCSI_HOST:
            iscsi_host = parse_iscsi_host(record, warnings)
            if iscsi_host is not None:
                self.iscsi_hosts[iscsi_host.number] = iscsi_host
        elif kind is RecordKind.ISCSI_SESSION:
            session = parse_iscsi_session(record, warnings)
            if session is not None:
                self.sessions[session.session_id] = session
        elif kind is RecordKind.ISCSI_CONNECTION:
            connection = parse_iscsi_connection(record, warnings)
            if connection is not None:
                known = self.connections.get(connection.session_id)
                if known is None or connection.connection_id < known.connection_id:
                    self.connections[connection.session_id] = connection
        elif kind is RecordKind.SAS_HOST:
            sas_host = parse_scsi_host(record, warnings)
            if sas_host is not None:
                self.sas_hosts.add(sas_host.number)


def _hosts(parts: _Records) -> list[ScsiHost]:
    numbers = parts.host_devices.keys() | parts.host_classes.keys()
    sessions_by_host: dict[int, IscsiSessionInfo] = {}
    for info in parts.sessions.values():
        if info.host is not None:
            sessions_by_host.setdefault(info.host, info)
    hosts = []
    for number in numbers:
        device = parts.host_devices.get(number)
        klass = parts.host_classes.get(number)
        fc = parts.fc_hosts.get(number)
        iscsi = parts.iscsi_hosts.get(number)
        session = sessions_by_host.get(number)
        if fc is not None:
            transport = Transport.FC
        elif iscsi is not None or session is not None:
            transport = Transport.ISCSI
        elif number in parts.sas_hosts:
            transport = Transport.SAS
        else:
            transport = Transport.OTHER
        initiator = iscsi.initiator_name if iscsi is not None else None
        if initiator is None and session is not None:
            initiator = session.initiator_name
        sys_path = device.sys_path if device is not None else klass.sys_path if klass else ""
        hosts.append(
            ScsiHost(
                number=number,
                sys_path=sys_path,
                transport=transport,
                driver=klass.driver if klass is not None else None,
                state=klass.state if klass is not None else None,
                wwpn=fc.wwpn if fc is not None else None,
                wwnn=fc.wwnn if fc is not None else None,
                port_state=fc.port_state if fc is not None else None,
                port_id=fc.port_id if fc is not None else None,
                speed=fc.speed if fc is not None else None,
                fabric_name=fc.fabric_name if fc is not None else None,
                iscsi_initiator_name=initiator,
            )
        )
    hosts.sort(key=lambda h: h.number)
    return hosts


#: The iSCSI connection state of a working connection.
CONNECTION_UP = "up"
#: The iSCSI session state of a session that is logged in.
LOGGED_IN = "LOGGED_IN"


def _sessions(parts: _Records) -> dict[int, IscsiSession]:
    sessions = {}
    for sid, info in parts.sessions.items():
        connection = parts.connections.get(sid)
        persistent = connection.persistent_portal if connection is not None else None
        current = connection.current_portal if connection is not None else None
        connection_state = connection.state if connection is not None else None
        sessions[sid] = IscsiSession(
            session_id=sid,
            host=info.host,
            sys_path=info.sys_path,
            target_iqn=info.target_iqn,
            tpgt=info.tpgt,
            portal=persistent if persistent is not None else current,
            current_portal=current,
            state=info.state,
            iface=info.iface,
            connection_state=connection_state,
            persistent_address=connection.persistent_address if connection is not None else None,
            persistent_port=connection.persistent_port if connection is not None else None,
        )
        if (
            connection is not None
            and info.state == LOGGED_IN
            and connection_state is not None
            and connection_state != CONNECTION_UP
        ):
            parts.warnings.append(
                DiscoveryWarning(
                    info.sys_path,
                    WarningCode.UNHEALTHY,
                    f"session{sid} is {LOGGED_IN} but its connection "
                    f"connection{sid}:{connection.connection_id} is {connection_state!r}, "
                    f"not {CONNECTION_UP!r}",
                )
            )
    return sessions


def _transport_ids(
    context: PathContext, parts: _Records, sessions: dict[int, IscsiSession]
) -> FcPathIds | IscsiPathIds | None:
    rport = parts.rports.get(context.rport) if context.rport is not None else None
    transport = parts.fc_transports.get(context.target) if context.target is not None else None
    if transport is not None:
        return FcPathIds(
            wwpn=transport.wwpn,
            wwnn=transport.wwnn,
            port_id=transport.port_id,
            rport=context.rport,
        )
    if rport is not None:
        return FcPathIds(rport.wwpn, rport.wwnn, rport.port_id, rport.name)
    if context.session is not None:
        session = sessions.get(context.session)
        if session is None:
            return IscsiPathIds(context.session)
        return IscsiPathIds(session.session_id, session.target_iqn, session.portal, session.tpgt)
    return None


def _devices(
    parts: _Records, sessions: dict[int, IscsiSession]
) -> tuple[list[ScsiDevice], dict[str, ScsiDevice]]:
    """Build SCSI devices; also return them by the sys_path of their block device."""
    block_of: dict[str, BlockDiskInfo] = {}
    for block in parts.blocks:
        scsi_path = block.scsi_path
        if scsi_path not in parts.scsi_devices:
            derived = block.sys_path.rsplit("/block/", 1)[0]
            if derived in parts.scsi_devices:
                scsi_path = derived
            else:
                if block.name.startswith("sd"):
                    parts.warnings.append(
                        DiscoveryWarning(
                            block.sys_path,
                            WarningCode.ORPHAN,
                            f"no SCSI device record for {block.name}",
                        )
                    )
                elif logger.isEnabledFor(logging.DEBUG):
                    logger.debug("skipping non-SCSI block device %s", block.sys_path)
                continue
        if scsi_path in block_of:
            parts.warnings.append(
                DiscoveryWarning(
                    block.sys_path,
                    WarningCode.DUPLICATE,
                    f"{scsi_path} already has block device {block_of[scsi_path].name}",
                )
            )
            continue
        block_of[scsi_path] = block

    devices = []
    by_block_path: dict[str, ScsiDevice] = {}
    # LUNs behind one target share their transport ids: build those once per context.
    ids_of: dict[PathContext, FcPathIds | IscsiPathIds | None] = {}
    for info in parts.scsi_devices.values():
        disk = block_of.get(info.sys_path)
        context = info.context
        if context in ids_of:
            ids = ids_of[context]
        else:
            ids = ids_of[context] = _transport_ids(context, parts, sessions)
        device = ScsiDevice(
            hctl=info.hctl,
            sys_path=info.sys_path,
            peripheral_type=info.peripheral_type,
            vendor=info.vendor,
            model=info.model,
            revision=info.revision,
            state=info.state,
            block_name=disk.name if disk is not None else None,
            block_devno=disk.devno if disk is not None else None,
            size_bytes=disk.size_bytes if disk is not None else None,
            logical_block_size=disk.logical_block_size if disk is not None else None,
            read_only=disk.read_only if disk is not None else None,
            identity=info.identity,
            transport_ids=ids,
            links=disk.links if disk is not None else (),
        )
        devices.append(device)
        if disk is not None:
            by_block_path[disk.sys_path] = device
    devices.sort(key=lambda d: d.hctl)
    return devices, by_block_path


def _multipath_maps(parts: _Records, by_block_path: dict[str, ScsiDevice]) -> list[MultipathMap]:
    by_block_name = {d.block_name: d for d in by_block_path.values() if d.block_name}
    maps = []
    for dm in parts.dms:
        if dm.uuid is None or not dm.uuid.startswith(MULTIPATH_UUID_PREFIX):
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("skipping dm device %s (uuid %r)", dm.sys_path, dm.uuid)
            continue
        wwid = dm.uuid[len(MULTIPATH_UUID_PREFIX) :]
        paths = []
        for name, target in dm.slaves:
            device = by_block_path.get(target) if target is not None else None
            if device is None:
                device = by_block_name.get(name)
            if device is None:
                parts.warnings.append(
                    DiscoveryWarning(
                        dm.sys_path,
                        WarningCode.ORPHAN,
                        f"multipath member {name} is not a known SCSI block device",
                    )
                )
                paths.append(MultipathPath(name))
                continue
            if device.identity.wwid is not None and device.identity.wwid != wwid:
                parts.warnings.append(
                    DiscoveryWarning(
                        dm.sys_path,
                        WarningCode.WWID_MISMATCH,
                        f"member {name} ({device.hctl}) has WWID {device.identity.wwid}, "
                        f"the map has {wwid}",
                    )
                )
            paths.append(MultipathPath(name, device.hctl, path_state(device.state), device.state))
        paths.sort(key=lambda p: (p.hctl is None, p.hctl or _NO_HCTL, p.block_name))
        maps.append(
            MultipathMap(
                name=dm.name,
                uuid=dm.uuid,
                wwid=wwid,
                block_name=dm.block_name,
                sys_path=dm.sys_path,
                size_bytes=dm.size_bytes,
                read_only=dm.read_only,
                suspended=dm.suspended,
                paths=tuple(paths),
            )
        )
    maps.sort(key=lambda m: (m.name or "", m.wwid, m.block_name))
    return maps


def discover(records: Iterable[DeviceRecord], host_name: str) -> HostState:
    """Build the storage state of a host from its device records.

    Records of kinds discovery does not use are skipped (debug log). What a source
    could not read as it was (a record's ``problems``: an attribute that is a FIFO,
    too big, not UTF-8 ...) becomes a warning about that device. Records that
    cannot be made sense of (bad names, unparsable attributes, broken VPD pages,
    dangling links) are skipped or partly filled, each with a
    :class:`~tracker.discovery.model.DiscoveryWarning` in :attr:`HostState.warnings`.
    The result does not depend on the order of ``records``.

    :param records: the host's device records, any order; a repeated sys_path is
        ignored after the first (with a warning).
    :param host_name: the name to put in the state.
    :returns: the host state, every tuple in a deterministic order. Never raises on
        record content.
    """
    parts = _Records()
    seen: set[str] = set()
    for record in records:
        if record.sys_path in seen:
            parts.warnings.append(
                DiscoveryWarning(record.sys_path, WarningCode.DUPLICATE, "sys_path seen twice")
            )
            continue
        seen.add(record.sys_path)
        for name, reason in record.problems.items():
            parts.warnings.append(
                DiscoveryWarning(record.sys_path, WarningCode.BAD_ATTRIBUTE, f"{name}: {reason}")
            )
        kind = classify(record)
        if kind is not None:
            parts.add(record, kind)

    hosts = _hosts(parts)
    sessions = _sessions(parts)
    devices, by_block_path = _devices(parts, sessions)
    maps = _multipath_maps(parts, by_block_path)
    rports = sorted(parts.rports.values(), key=lambda r: (r.host, r.channel, r.number))
    warnings = sorted(parts.warnings, key=DiscoveryWarning.sort_key)
    return HostState(
        host_name=host_name,
        scsi_hosts=tuple(hosts),
        fc_remote_ports=tuple(rports),
        iscsi_sessions=tuple(sorted(sessions.values(), key=lambda s: s.session_id)),
        scsi_devices=tuple(devices),
        multipath_maps=tuple(maps),
        warnings=tuple(warnings),
    )
