"""Findings about volume paths: leftovers after a detach, reused-LUN hazards, attach checks.

Pure functions of a :class:`~tracker.db.paths.PathsSnapshot` (one consistent
read of the hosts' devices and maps and of the tracked attachments). Each kind
of finding is described once, in :data:`KINDS`: its name, its severity and
what it means.

* **leftover** findings are what a detach left behind: a SCSI device or a
  multipath map of a volume that has no attached connection on that host
  (matched by the same WWID, the same serial, or the link reconcile made), a
  map with no paths, an iSCSI/FC device nothing tracked accounts for;
* **hazard** findings are the OSSA-2023-003 condition, where a path can give
  one volume's I/O to another: a device at a target and LUN where an attached
  connection expects another volume; a multipath map one of whose paths
  reports another WWID than the map; a udev link that names another LU than
  the device it points at;
* **attach** findings say what :func:`verify_attach` found missing or wrong.

A device *belongs* to a volume when the reconcile linked it (``volume_id``),
when one of its WWN/WWID spellings is one of the volume's
(:func:`tracker.validation.wwn_forms`), or when its serial is the volume's.
A device is *at* a connection's target and LUN when its transport, target
(IQN and portal, or WWPN) and kernel LUN (:func:`tracker.waiting.predicates.kernel_luns`)
are the connection properties'.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tracker import exceptions, validation
from tracker.db.observed import MultipathMapRecord, ScsiDeviceRecord
from tracker.db.paths import AttachmentRecord, PathsSnapshot, TrackedVolumeRecord
from tracker.paths.properties import (
    ConnectionProperties,
    FcProperties,
    IscsiProperties,
    LocalProperties,
    properties_from_dict,
    protocol_of,
)
from tracker.waiting.predicates import kernel_luns

__all__ = [
    "KINDS",
    "AttachReport",
    "DetachReport",
    "Finding",
    "FindingKind",
    "OrphanReport",
    "attachment_properties",
    "dated",
    "device_at",
    "find_orphans",
    "link_target",
    "verify_attach",
    "verify_detach",
]

LOG = logging.getLogger(__name__)

#: Transports whose devices come from a storage connection (a local disk does not).
CONNECTED_TRANSPORTS = ("iscsi", "fc")


@dataclass(frozen=True, slots=True)
class FindingKind:
    """One kind of finding.

    :ivar severity: ``leftover``, ``hazard`` or ``attach``.
    :ivar meaning: what it says, for an operator.
    """

    name: str
    severity: str
    meaning: str


#: Every kind of finding, by name.
KINDS: Mapping[str, FindingKind] = {
    kind.name: kind
    for kind in (
        FindingKind(
            "leftover-device",
            "leftover",
            "a SCSI device of a volume that has no attached connection on this host",
        ),
        FindingKind(
            "leftover-map",
            "leftover",
            "a multipath map of a volume that has no attached connection on this host",
        ),
        FindingKind("empty-map", "leftover", "a multipath map with no paths"),
        FindingKind(
            "unmatched-device",
            "leftover",
            "an iSCSI or FC device that no tracked volume and no attached connection accounts for",
        ),
        FindingKind(
            "reused-lun",
            "hazard",
            "a device at a target and LUN where an attached connection expects another volume",
        ),
        FindingKind("mixed-map", "hazard", "a multipath map with a path that reports another WWID"),
        FindingKind(
            "link-mismatch",
            "hazard",
            "a udev link that names another LU than the device it points at",
        ),
        FindingKind("not-attached", "attach", "the volume has no attached connection on this host"),
        FindingKind(
            "missing-path", "attach", "an expected path (target and LUN) is not on the host"
        ),
        FindingKind("missing-map", "attach", "the volume has several paths but no multipath map"),
        FindingKind(
            "degraded-map", "attach", "the multipath map has fewer active paths than expected"
        ),
        FindingKind(
            "wrong-wwid", "hazard", "a path of the volume reports another volume's identity"
        ),
        FindingKind(
            "unreadable-properties",
            "attach",
            "a tracked connection's connection_info cannot be read as connection properties",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing found.

    :ivar kind: a name of :data:`KINDS`.
    :ivar host_name: the host.
    :ivar path: the device node or map (``/dev/sdc``, ``/dev/mapper/mpatha``), if any.
    :ivar hctl: the SCSI address of a device finding.
    :ivar wwid: the WWID the device or map reports.
    :ivar volume_id: the tracked volume it is about, if any.
    :ivar reason: why, in words (``same WWID as volume ...``).
    :ivar since: when the object appeared on the host (the journal), if known.
    :ivar links: the udev links of the device.
    """

    kind: str
    host_name: str
    reason: str
    path: str | None = None
    hctl: str | None = None
    wwid: str | None = None
    volume_id: str | None = None
    since: dt.datetime | None = None
    links: tuple[str, ...] = ()

    @property
    def severity(self) -> str:
        """:returns: the kind's severity. Never raises."""
        return KINDS[self.kind].severity

    @property
    def object(self) -> tuple[str, str, str] | None:
        """:returns: ``(host, journal kind, key)`` of the device or map, if any."""
        if self.hctl is not None:
            return (self.host_name, "scsi_device", self.hctl)
        if self.wwid is not None and self.kind in ("leftover-map", "empty-map", "mixed-map"):
            return (self.host_name, "multipath_map", self.wwid)
        return None

    def as_dict(self) -> dict[str, Any]:
        """:returns: the finding, JSON-ready. Never raises."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "host": self.host_name,
            "path": self.path,
            "hctl": self.hctl,
            "wwid": self.wwid,
            "volume_id": self.volume_id,
            "reason": self.reason,
            "since": None if self.since is None else self.since.isoformat(),
            "links": list(self.links),
        }


def _order(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    rank = {"hazard": 0, "attach": 1, "leftover": 2}
    return tuple(
        sorted(
            set(findings),
            key=lambda f: (rank[f.severity], f.host_name, f.kind, f.hctl or "", f.wwid or ""),
        )
    )


@dataclass(frozen=True, slots=True)
class DetachReport:
    """What :func:`verify_detach` found.

    :ivar hosts: the hosts checked (where the volume has no attached connection).
    :ivar attached_on: the hosts where it is still attached (not checked).
    """

    volume_id: str
    hosts: tuple[str, ...]
    attached_on: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def clean(self) -> bool:
        """:returns: whether nothing was found. Never raises."""
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        """:returns: the report, JSON-ready. Never raises."""
        return {
            "volume_id": self.volume_id,
            "clean": self.clean,
            "hosts": list(self.hosts),
            "attached_on": list(self.attached_on),
            "findings": [f.as_dict() for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class OrphanReport:
    """What :func:`find_orphans` found, over :attr:`hosts`."""

    hosts: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def clean(self) -> bool:
        """:returns: whether nothing was found. Never raises."""
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        """:returns: the report, JSON-ready. Never raises."""
        return {
            "clean": self.clean,
            "hosts": list(self.hosts),
            "findings": [f.as_dict() for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class AttachReport:
    """What :func:`verify_attach` found on one host.

    :ivar paths: the volume's device nodes and map on the host.
    :ivar expected_paths: how many paths its attached connections name.
    """

    volume_id: str
    host_name: str
    paths: tuple[str, ...]
    expected_paths: int
    findings: tuple[Finding, ...]

    @property
    def clean(self) -> bool:
        """:returns: whether nothing was found. Never raises."""
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        """:returns: the report, JSON-ready. Never raises."""
        return {
            "volume_id": self.volume_id,
            "host": self.host_name,
            "clean": self.clean,
            "paths": list(self.paths),
            "expected_paths": self.expected_paths,
            "findings": [f.as_dict() for f in self.findings],
        }


# --- matching ---------------------------------------------------------------------------


def _portal(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return validation.portal("portal", text)
    except exceptions.InvalidInput:
        return None


def _wwn(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return validation.wwn("wwn", text)
    except exceptions.InvalidInput:
        return None


def identity_reason(device: ScsiDeviceRecord, volume: TrackedVolumeRecord) -> str | None:
    """Say why a device belongs to a tracked volume, if it does.

    :returns: ``"same WWID"``, ``"same serial"``, ``"linked by reconcile"`` or ``None``.
    """
    forms = set(validation.wwn_forms(volume.wwn))
    if forms and forms & {*validation.wwn_forms(device.wwid), *validation.wwn_forms(device.wwn)}:
        return "same WWID"
    if volume.serial and device.serial == volume.serial:
        return "same serial"
    if device.volume_id == volume.id:
        return "linked by reconcile"
    return None


def _map_reason(map_: MultipathMapRecord, volume: TrackedVolumeRecord) -> str | None:
    forms = set(validation.wwn_forms(volume.wwn))
    if forms and forms & set(validation.wwn_forms(map_.wwid)):
        return "same WWID"
    if map_.volume_id == volume.id:
        return "linked by reconcile"
    return None


def _identified(device: ScsiDeviceRecord) -> bool:
    return bool(device.wwid or device.wwn or device.serial)


def attachment_properties(attachment: AttachmentRecord) -> ConnectionProperties:
    """Read a tracked connection's ``connection_info`` as connection properties.

    :returns: the properties.
    :raises tracker.exceptions.InvalidInput: they cannot be read (an unknown
        protocol, a missing or malformed key).
    """
    return properties_from_dict(protocol_of(attachment.protocol), attachment.connection_info)


def device_at(device: ScsiDeviceRecord, properties: ConnectionProperties) -> bool:
    """Tell whether a device is at one of the target and LUN pairs the properties name.

    :returns: the answer. Never raises.
    """
    if isinstance(properties, IscsiProperties):
        if device.transport != "iscsi" or device.target_iqn is None:
            return False
        portal = _portal(device.target_portal)
        return any(
            device.target_iqn.lower() == t.iqn
            and portal == t.portal
            and device.lun in kernel_luns(t.lun)
            for t in properties.targets
        )
    if isinstance(properties, FcProperties):
        if device.transport != "fc":
            return False
        target = _wwn(device.target_wwpn)
        return any(
            target == t.target_wwn and device.lun in kernel_luns(t.lun) for t in properties.targets
        )
    return properties.device_path in {device.path, *device.links}


def target_keys(properties: ConnectionProperties) -> set[tuple[str, str, str, int]]:
    """The ``(transport, target, portal, kernel LUN)`` keys a device at the properties has.

    :returns: the keys (``portal`` empty for FC; none for local properties). Never raises.
    """
    keys: set[tuple[str, str, str, int]] = set()
    if isinstance(properties, IscsiProperties):
        for t in properties.targets:
            keys |= {("iscsi", t.iqn, t.portal, lun) for lun in kernel_luns(t.lun)}
    elif isinstance(properties, FcProperties):
        for ft in properties.targets:
            keys |= {("fc", ft.target_wwn, "", lun) for lun in kernel_luns(ft.lun)}
    return keys


def device_key(device: ScsiDeviceRecord) -> tuple[str, str, str, int] | None:
    """The ``(transport, target, portal, LUN)`` key of an iSCSI or FC device.

    :returns: the key, or ``None`` for another transport or an unknown target.
    """
    if device.transport == "iscsi" and device.target_iqn:
        return ("iscsi", device.target_iqn.lower(), _portal(device.target_portal) or "", device.lun)
    if device.transport == "fc":
        target = _wwn(device.target_wwpn)
        return None if target is None else ("fc", target, "", device.lun)
    return None


def _expected_paths(properties: ConnectionProperties) -> int:
    if isinstance(properties, IscsiProperties):
        return len(properties.targets)
    if isinstance(properties, FcProperties):
        if properties.initiator_target_map:
            wanted = {t.target_wwn for t in properties.targets}
            return sum(len(wanted & set(targets)) for _, targets in properties.initiator_target_map)
        return len(properties.targets)
    return 1


# --- links ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkTarget:
    """What a udev link's name says it points at.

    :ivar transport: ``iscsi`` or ``fc`` for a ``by-path`` link, ``None`` for ``by-id``.
    :ivar wwn: the WWN of a ``by-id/wwn-0x...`` link.
    """

    transport: str | None = None
    target: str | None = None
    portal: str | None = None
    lun: int | None = None
    wwn: str | None = None


def link_target(link: str) -> LinkTarget | None:
    """Read what a ``/dev/disk/by-path`` or ``/dev/disk/by-id/wwn-`` link names.

    ``by-path/ip-PORTAL-iscsi-IQN-lun-N``, ``by-path/pci-...-fc-0xWWPN-lun-N``,
    ``by-id/wwn-0xWWN``; anything else (``by-id/scsi-...``, a SAS or local
    path) says nothing checkable.

    :returns: the target, or ``None``. Never raises.
    """
    name = link.rsplit("/", 1)[-1]
    if "/by-id/" in link:
        if name.startswith("wwn-"):
            return LinkTarget(wwn=name[4:].lower())
        return None
    if "/by-path/" not in link:
        return None
    head, sep, lun_text = name.rpartition("-lun-")
    if not sep or not lun_text.isdigit():
        return None
    lun = int(lun_text)
    if name.startswith("ip-") and "-iscsi-" in head:
        portal, _, iqn = head[3:].partition("-iscsi-")
        return LinkTarget("iscsi", iqn.lower(), _portal(portal), lun)
    if "-fc-" in head:
        wwpn = _wwn(head.rpartition("-fc-")[2])
        return LinkTarget("fc", wwpn, None, lun) if wwpn else None
    return None


def _link_mismatch(device: ScsiDeviceRecord, link: str) -> str | None:
    named = link_target(link)
    if named is None:
        return None
    if named.wwn is not None:
        own = {*validation.wwn_forms(device.wwn), *validation.wwn_forms(device.wwid)}
        if own and not own & set(validation.wwn_forms(named.wwn)):
            return f"{link} names WWN {named.wwn}; the device reports {device.wwn or device.wwid}"
        return None
    if named.transport != device.transport:
        return None
    if named.transport == "iscsi":
        same = (
            (device.target_iqn or "").lower() == named.target
            and _portal(device.target_portal) == named.portal
            and device.lun == named.lun
        )
        here = f"{device.target_iqn} @ {device.target_portal} LUN {device.lun}"
    else:
        same = _wwn(device.target_wwpn) == named.target and device.lun == named.lun
        here = f"target {device.target_wwpn} LUN {device.lun}"
    if same:
        return None
    return f"{link} names another LU than the device's ({here})"


# --- the checks ---------------------------------------------------------------------------


@dataclass
class _Host:
    """One host's devices, maps and attachments, indexed for the checks."""

    name: str
    devices: list[ScsiDeviceRecord] = field(default_factory=list)
    maps: list[MultipathMapRecord] = field(default_factory=list)
    attachments: list[tuple[AttachmentRecord, ConnectionProperties | None]] = field(
        default_factory=list
    )

    def attached(self) -> list[tuple[AttachmentRecord, ConnectionProperties | None]]:
        return [(a, p) for a, p in self.attachments if a.attached]

    def attached_volumes(self) -> set[str]:
        return {a.volume_id for a, _ in self.attached()}

    def at_targets(self) -> dict[tuple[str, str, str, int], list[AttachmentRecord]]:
        """The attached connections by the target keys of their paths."""
        found: dict[tuple[str, str, str, int], list[AttachmentRecord]] = defaultdict(list)
        for attachment, properties in self.attached():
            if properties is not None:
                for key in target_keys(properties):
                    found[key].append(attachment)
        return found

    def attached_local_paths(self) -> set[str]:
        return {p.device_path for _, p in self.attached() if isinstance(p, LocalProperties)}

    def by_block(self) -> dict[str, ScsiDeviceRecord]:
        return {d.block_name: d for d in self.devices if d.block_name}


def _hosts(snapshot: PathsSnapshot) -> dict[str, _Host]:
    hosts = {name: _Host(name) for name in snapshot.hosts}
    for device in snapshot.devices:
        hosts.setdefault(device.host_name, _Host(device.host_name)).devices.append(device)
    for map_ in snapshot.maps:
        hosts.setdefault(map_.host_name, _Host(map_.host_name)).maps.append(map_)
    for attachment in snapshot.attachments:
        if attachment.host not in hosts:
            continue
        try:
            properties: ConnectionProperties | None = attachment_properties(attachment)
        except exceptions.InvalidInput as error:
            LOG.debug("connection %s: %s", attachment.id, error)
            properties = None
        hosts[attachment.host].attachments.append((attachment, properties))
    return hosts


def _device_finding(
    kind: str, device: ScsiDeviceRecord, reason: str, volume: str | None
) -> Finding:
    return Finding(
        kind,
        device.host_name,
        reason,
        path=device.path,
        hctl=device.hctl,
        wwid=device.wwid,
        volume_id=volume,
        links=device.links,
    )


def _map_finding(kind: str, map_: MultipathMapRecord, reason: str, volume: str | None) -> Finding:
    return Finding(kind, map_.host_name, reason, path=map_.path, wwid=map_.wwid, volume_id=volume)


def _volume_of(
    device: ScsiDeviceRecord, volumes: Mapping[str, TrackedVolumeRecord], by_key: _VolumeIndex
) -> tuple[TrackedVolumeRecord, str] | None:
    for volume_id in by_key.candidates(device):
        volume = volumes[volume_id]
        reason = identity_reason(device, volume)
        if reason is not None:
            return volume, reason
    return None


@dataclass
class _VolumeIndex:
    """Tracked volumes by each WWN spelling and serial (to match devices fast)."""

    by_wwn: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    by_serial: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    @classmethod
    def of(cls, volumes: Mapping[str, TrackedVolumeRecord]) -> _VolumeIndex:
        index = cls()
        for volume in volumes.values():
            for form in validation.wwn_forms(volume.wwn):
                index.by_wwn[form].add(volume.id)
            if volume.serial:
                index.by_serial[volume.serial].add(volume.id)
        return index

    def candidates(self, device: ScsiDeviceRecord) -> list[str]:
        found: set[str] = set()
        for form in (*validation.wwn_forms(device.wwid), *validation.wwn_forms(device.wwn)):
            found |= self.by_wwn.get(form, set())
        if device.serial:
            found |= self.by_serial.get(device.serial, set())
        if device.volume_id is not None:
            found.add(device.volume_id)
        return sorted(found)

    def map_candidates(self, map_: MultipathMapRecord) -> list[str]:
        found: set[str] = set()
        for form in validation.wwn_forms(map_.wwid):
            found |= self.by_wwn.get(form, set())
        if map_.volume_id is not None:
            found.add(map_.volume_id)
        return sorted(found)


def _hazards(host: _Host, snapshot: PathsSnapshot, index: _VolumeIndex) -> list[Finding]:
    """The reused-LUN hazards of one host."""
    found: list[Finding] = []
    at_targets = host.at_targets()
    for device in host.devices:
        key = device_key(device)
        for attachment in at_targets.get(key, ()) if key is not None else ():
            expected = snapshot.volumes.get(attachment.volume_id)
            if expected is None or not _identified(device):
                continue
            if not (expected.wwn or expected.serial) and device.volume_id in (None, expected.id):
                continue  # nothing to compare with
            if identity_reason(device, expected) is not None:
                continue
            other = _volume_of(device, snapshot.volumes, index)
            who = f"volume {other[0].id} ({other[1]})" if other else "an untracked LU"
            found.append(
                _device_finding(
                    "reused-lun",
                    device,
                    f"connection {attachment.id} expects volume {expected.id} at this target "
                    f"and LUN; the device reports {device.wwid or device.serial}: {who}",
                    expected.id,
                )
            )
        for link in device.links:
            mismatch = _link_mismatch(device, link)
            if mismatch is not None:
                named = link_target(link)
                volumes: set[str] = set()
                for form in validation.wwn_forms(named.wwn if named else None):
                    volumes |= index.by_wwn.get(form, set())
                # about the volume the link names, else the device's
                about = min(volumes) if volumes else device.volume_id
                found.append(_device_finding("link-mismatch", device, mismatch, about))
    blocks = host.by_block()
    for map_ in host.maps:
        own = set(validation.wwn_forms(map_.wwid))
        for path in map_.paths:
            member = blocks.get(path.block_name)
            if member is None or not member.wwid:
                continue
            if not own & set(validation.wwn_forms(member.wwid)):
                found.append(
                    _map_finding(
                        "mixed-map",
                        map_,
                        f"its path {path.block_name} ({member.hctl}) reports WWID "
                        f"{member.wwid}, not the map's",
                        map_.volume_id,
                    )
                )
    return found


def _leftovers(
    host: _Host, snapshot: PathsSnapshot, index: _VolumeIndex, only: str | None
) -> list[Finding]:
    """Devices and maps of volumes not attached on the host (all, or volume ``only``'s)."""
    found: list[Finding] = []
    attached = host.attached_volumes()
    for device in host.devices:
        match = _volume_of(device, snapshot.volumes, index)
        if match is None:
            continue
        volume, reason = match
        if only is not None and volume.id != only:
            continue
        if volume.id in attached:
            continue
        found.append(
            _device_finding(
                "leftover-device",
                device,
                f"{reason} as volume {volume.id}, which has no attached connection on {host.name}",
                volume.id,
            )
        )
    for map_ in host.maps:
        volume_ids = index.map_candidates(map_)
        for volume_id in volume_ids:
            if only is not None and volume_id != only:
                continue
            tracked = snapshot.volumes.get(volume_id)
            map_reason = None if tracked is None else _map_reason(map_, tracked)
            if map_reason is None or volume_id in attached:
                continue
            found.append(
                _map_finding(
                    "leftover-map",
                    map_,
                    f"{map_reason} as volume {volume_id}, which has no attached connection on "
                    f"{host.name}",
                    volume_id,
                )
            )
        if not map_.paths and (only is None or only in volume_ids):
            found.append(_map_finding("empty-map", map_, "the map has no paths", map_.volume_id))
    return found


def _unmatched(host: _Host, snapshot: PathsSnapshot, index: _VolumeIndex) -> list[Finding]:
    found: list[Finding] = []
    at_targets = host.at_targets()
    for device in host.devices:
        if device.transport not in CONNECTED_TRANSPORTS:
            continue
        if _volume_of(device, snapshot.volumes, index) is not None:
            continue  # a tracked volume's: a leftover, or attached
        if device_key(device) in at_targets:
            continue
        found.append(
            _device_finding(
                "unmatched-device",
                device,
                f"no tracked volume has its identity ({device.wwid or device.serial or 'none'})"
                f" and no attached connection on {host.name} names {device.target_text} "
                f"LUN {device.lun}",
                None,
            )
        )
    return found


def verify_detach(
    snapshot: PathsSnapshot, volume_id: str, since: Mapping[tuple[str, str, str], dt.datetime]
) -> DetachReport:
    """Check that a volume left nothing behind on the hosts it is not attached to.

    :param snapshot: the hosts to check (one, or all) and the tracked state.
    :param since: when objects appeared (:func:`tracker.db.paths.appeared_since`).
    :returns: the leftovers of the volume, and the hazards that involve it.
    :raises tracker.exceptions.NotFound: the volume is not tracked.
    """
    if volume_id not in snapshot.volumes:
        raise exceptions.NotFound("volume", volume_id)
    index = _VolumeIndex.of(snapshot.volumes)
    checked, attached_on, found = [], [], []
    for name, host in sorted(_hosts(snapshot).items()):
        if volume_id in host.attached_volumes():
            attached_on.append(name)
            hazards = [f for f in _hazards(host, snapshot, index) if f.volume_id == volume_id]
            found += hazards
            continue
        checked.append(name)
        found += _leftovers(host, snapshot, index, volume_id)
        found += [f for f in _hazards(host, snapshot, index) if f.volume_id == volume_id]
    return DetachReport(volume_id, tuple(checked), tuple(attached_on), dated(found, since))


def find_orphans(
    snapshot: PathsSnapshot, since: Mapping[tuple[str, str, str], dt.datetime]
) -> OrphanReport:
    """Find every leftover and hazard on the hosts of the snapshot.

    :returns: the findings, hazards first.
    """
    index = _VolumeIndex.of(snapshot.volumes)
    found: list[Finding] = []
    for _, host in sorted(_hosts(snapshot).items()):
        found += _hazards(host, snapshot, index)
        found += _leftovers(host, snapshot, index, None)
        found += _unmatched(host, snapshot, index)
    return OrphanReport(snapshot.hosts, dated(found, since))


def verify_attach(
    snapshot: PathsSnapshot,
    volume_id: str,
    host_name: str,
    since: Mapping[tuple[str, str, str], dt.datetime],
) -> AttachReport:
    """Check that an attached volume has every expected path on a host, healthy.

    Every target and LUN its attached connections name has a device, each of
    them reports the volume's identity, and when there are several paths their
    multipath map exists with that many active paths.

    :returns: the report.
    :raises tracker.exceptions.NotFound: the volume is not tracked.
    """
    volume = snapshot.volumes.get(volume_id)
    if volume is None:
        raise exceptions.NotFound("volume", volume_id)
    host = _hosts(snapshot).get(host_name, _Host(host_name))
    found: list[Finding] = []
    mine = [(a, p) for a, p in host.attached() if a.volume_id == volume_id]
    if not mine:
        found.append(
            Finding(
                "not-attached",
                host_name,
                f"no attached connection of volume {volume_id} on {host_name}",
                volume_id=volume_id,
            )
        )
    expected = 0
    devices: list[ScsiDeviceRecord] = []
    for attachment, properties in mine:
        if properties is None:
            found.append(
                Finding(
                    "unreadable-properties",
                    host_name,
                    f"connection {attachment.id}: its connection_info is not readable",
                    volume_id=volume_id,
                )
            )
            continue
        expected += _expected_paths(properties)
        at = [d for d in host.devices if device_at(d, properties)]
        devices += at
        for missing in _missing_targets(properties, at):
            found.append(Finding("missing-path", host_name, missing, volume_id=volume_id))
    for device in devices:
        if (
            _identified(device)
            and identity_reason(device, volume) is None
            and (volume.wwn or volume.serial)
        ):
            found.append(
                _device_finding(
                    "wrong-wwid",
                    device,
                    f"the path reports {device.wwid or device.serial}, not volume {volume_id}'s "
                    f"{volume.wwn or volume.serial}",
                    volume_id,
                )
            )
    wwids = {form for d in devices for form in validation.wwn_forms(d.wwid)}
    maps = [m for m in host.maps if wwids & set(validation.wwn_forms(m.wwid))]
    if expected > 1 and devices and not maps:
        found.append(
            Finding(
                "missing-map",
                host_name,
                f"{len(devices)} paths, no multipath map",
                volume_id=volume_id,
            )
        )
    for map_ in maps:
        active = len(map_.active_paths)
        if active < expected:
            found.append(
                _map_finding(
                    "degraded-map",
                    map_,
                    f"{active} of {expected} expected paths active",
                    volume_id,
                )
            )
    paths = tuple(sorted({d.path for d in devices if d.path} | {m.path for m in maps}))
    return AttachReport(volume_id, host_name, paths, expected, dated(found, since))


def _missing_targets(
    properties: ConnectionProperties, present: Sequence[ScsiDeviceRecord]
) -> list[str]:
    missing = []
    if isinstance(properties, IscsiProperties):
        for t in properties.targets:
            if not any(device_at(d, IscsiProperties((t,))) for d in present):
                missing.append(f"no device at {t.iqn} @ {t.portal} LUN {t.lun}")
    elif isinstance(properties, FcProperties):
        for ft in properties.targets:
            if not any(device_at(d, FcProperties((ft,), ())) for d in present):
                missing.append(f"no device at target 0x{ft.target_wwn} LUN {ft.lun}")
    elif isinstance(properties, LocalProperties) and not present:
        missing.append(f"no device {properties.device_path}")
    return missing


def dated(
    findings: Iterable[Finding], since: Mapping[tuple[str, str, str], dt.datetime]
) -> tuple[Finding, ...]:
    """Give findings the time their object appeared, and order them (hazards first).

    :returns: the findings.
    """
    result = []
    for finding in findings:
        key = finding.object
        when = since.get(key) if key is not None else None
        result.append(finding if when is None else replace(finding, since=when))
    return _order(result)
