"""Conditions to wait for: infi.storagemodel's predicates, evaluated on the reconciled model.

A predicate is a small callable object. :meth:`Predicate.evaluate` reads one
host's reconciled model through a :class:`~tracker.waiting.view.ModelView`
(one snapshot of the store, never sysfs) and returns a :class:`Verdict`:
whether it holds, and the state it saw, in words (``"present but offline:
/dev/sdc (1:0:0:3)"``, ``"mpatha: 2 of 4 paths active (needs 3)"``,
``"no such FC mapping; remote port 0x500a098000000001 Blocked"``).

The names and signatures are infi.storagemodel's -- :class:`DiskExists`,
:class:`DiskNotExists`, :class:`FiberChannelMappingExists`,
:class:`FiberChannelMappingNotExists`, :class:`PredicateList` -- and, beyond
them, :class:`IscsiSessionExists`, :class:`MultipathPathsAtLeast`,
:class:`VolumeAttached`, :class:`VolumeDetached`, :class:`AnyOf` and the
``~``, ``&`` and ``|`` operators.

Arguments are validated and normalised when the predicate is built: an
invalid WWN is an :class:`~tracker.exceptions.InvalidInput` then, not a
predicate that never holds. Two predicates that mean the same (one mapping in
two WWN spellings) are equal, hash alike and have one ``repr``, which is
valid Python that builds the predicate again.

What counts:

* A **disk** is a multipath map (counted once, whatever its number of paths)
  or a SCSI device that is in no map. A map exists while at least one of its
  paths is active; a lone SCSI device while its state is ``running`` and it
  has a block device. A disk that is present but offline, failed or without a
  block device does not count as existing -- and is not gone either:
  :class:`DiskNotExists` holds only once no device of that serial is left.
* **LUN numbers** are the integers users write (an array's LUN id). The kernel
  numbers a LUN reported with flat-space addressing (SAM's method ``01b``,
  every LUN from 256 on and, on some arrays, every LUN) as ``0x4000 + n``
  (``scsilun_to_int``), and one reported with peripheral addressing as ``n``:
  a LUN below 16384 matches both, a LUN of 16384 or more (already a kernel
  number, as ``lsscsi`` prints it) matches itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from tracker import exceptions, validation
from tracker.db.observed import (
    MultipathMapRecord,
    ScsiDeviceRecord,
    UnitView,
)

if TYPE_CHECKING:
    from tracker.waiting.model import StorageModel
    from tracker.waiting.view import ModelView

__all__ = [
    "AnyOf",
    "CallablePredicate",
    "DiskExists",
    "DiskNotExists",
    "FiberChannelMappingExists",
    "FiberChannelMappingNotExists",
    "IscsiSessionExists",
    "MultipathPathsAtLeast",
    "Not",
    "Predicate",
    "PredicateList",
    "RescanPlan",
    "Verdict",
    "VolumeAttached",
    "VolumeDetached",
    "WaitForNothing",
    "as_predicate",
    "kernel_luns",
]

LOG = logging.getLogger(__name__)

#: The first LUN number that flat-space addressing cannot express (14 bits).
FLAT_LUNS = 0x4000
#: The longest iSCSI name (RFC 3720, 223 bytes).
MAX_ISCSI_NAME = 223
#: The transports whose SCSI hosts a wait rescans when its condition names no target.
RESCANNED_TRANSPORTS = frozenset({"fc", "iscsi", "sas"})

#: (host, channel, target, LUN) of a scan request; ``None`` is "any".
ScanAddress = tuple[int, int | None, int | None, int | None]


def kernel_luns(lun_number: int) -> frozenset[int]:
    """The kernel LUN numbers a LUN number written by a user stands for.

    :param lun_number: a LUN as an array or an operator writes it.
    :returns: ``{n, 0x4000 + n}`` for ``n < 16384`` (peripheral and flat-space
        addressing), ``{n}`` from 16384 on (already a kernel number).
    :raises tracker.exceptions.InvalidInput: not an integer from 0 to 2^64-1.
    """
    n = validation.lun("lun_number", lun_number)
    return frozenset({n, FLAT_LUNS | n}) if n < FLAT_LUNS else frozenset({n})


# --- verdicts and rescan plans -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one evaluation.

    :ivar holds: whether the predicate holds.
    :ivar state: what it saw, in words.
    :ivar paths: the device paths (``/devices/...``) it looked at: what a
        targeted re-read refreshes.
    """

    holds: bool
    state: str
    paths: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class RescanPlan:
    """What to ask the kernel to scan for a predicate.

    :ivar addresses: explicit scan requests (host, channel, target, LUN; ``None`` any).
    :ivar every_host: also every FC, iSCSI and SAS host (``- - -``), when the
        condition names no target.
    """

    addresses: frozenset[ScanAddress] = frozenset()
    every_host: bool = False

    def __or__(self, other: RescanPlan) -> RescanPlan:
        return RescanPlan(self.addresses | other.addresses, self.every_host or other.every_host)

    @property
    def empty(self) -> bool:
        """:returns: whether nothing would be scanned. Never raises."""
        return not self.addresses and not self.every_host

    def resolve(self, view: ModelView) -> tuple[ScanAddress, ...]:
        """Turn the plan into scan requests for the host ``view`` is about.

        :returns: the requests, in order; a whole-host request replaces the
            narrower requests of the same host.
        """
        addresses = set(self.addresses)
        if self.every_host:
            addresses |= {
                (h.number, None, None, None)
                for h in view.scsi_hosts()
                if h.transport in RESCANNED_TRANSPORTS
            }
        whole = {a[0] for a in addresses if a[1:] == (None, None, None)}
        kept = {a for a in addresses if a[0] not in whole or a[1:] == (None, None, None)}
        return tuple(sorted(kept, key=lambda a: tuple(-1 if v is None else v for v in a)))


NO_RESCAN = RescanPlan()
EVERY_HOST = RescanPlan(every_host=True)


# --- the base class ----------------------------------------------------------------


class Predicate:
    """A condition on one host's reconciled model.

    Subclasses implement :meth:`evaluate` and, when a rescan can help,
    :meth:`rescan_plan`; ``_fields`` gives their normalised arguments (for
    ``repr``, equality and hashing).
    """

    __slots__ = ()

    #: The keyword names of the constructor arguments shown by ``repr``.
    _names: ClassVar[tuple[str, ...]] = ()

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._names)

    def evaluate(self, view: ModelView) -> Verdict:
        """Evaluate the predicate on a snapshot of the model.

        :returns: the verdict.
        :raises tracker.exceptions.TrackerError: the model cannot be read, or
            the predicate is about a record that does not exist.
        """
        raise NotImplementedError

    def rescan_plan(self, view: ModelView) -> RescanPlan:
        """Say what a rescan should cover for this predicate.

        :returns: every FC, iSCSI and SAS host, unless a subclass knows better.
        """
        return EVERY_HOST

    def __call__(self, model: StorageModel | ModelView | None = None) -> bool:
        """Tell whether the predicate holds now (no rescan, no waiting).

        :param model: a storage model (its host's model is brought up to date
            first), a view, or ``None`` for :func:`tracker.get_storage_model`'s.
        :returns: whether it holds.
        :raises tracker.exceptions.TrackerError: as :meth:`evaluate`.
        """
        from tracker.waiting.view import ModelView

        if isinstance(model, ModelView):
            return self.evaluate(model).holds
        if model is None:
            from tracker.waiting.model import get_storage_model

            model = get_storage_model()
        return model.check(self).holds

    def __and__(self, other: object) -> PredicateList:
        return PredicateList(
            [*_parts(self, PredicateList), *_parts(as_predicate(other), PredicateList)]
        )

    def __rand__(self, other: object) -> PredicateList:
        return as_predicate(other) & self

    def __or__(self, other: object) -> AnyOf:
        return AnyOf([*_parts(self, AnyOf), *_parts(as_predicate(other), AnyOf)])

    def __ror__(self, other: object) -> AnyOf:
        return as_predicate(other) | self

    def __invert__(self) -> Predicate:
        return Not(self)

    def __repr__(self) -> str:
        values = ", ".join(repr(v) for v in self._fields())
        return f"{type(self).__name__}({values})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._fields()))


def _parts(predicate: Predicate, kind: type[_Group]) -> tuple[Predicate, ...]:
    if isinstance(predicate, _Group) and type(predicate) is kind:
        return predicate.predicates
    return (predicate,)


def as_predicate(value: object) -> Predicate:
    """Turn what a caller passes to ``rescan_and_wait_for`` into a predicate.

    :param value: a :class:`Predicate`; a list or tuple (all of them, as
        :class:`PredicateList`); ``None`` (:class:`WaitForNothing`); or any
        other callable taking no argument and returning a truth value
        (infi.storagemodel's contract), wrapped in :class:`CallablePredicate`.
    :returns: the predicate.
    :raises tracker.exceptions.InvalidInput: anything else.
    """
    if isinstance(value, Predicate):
        return value
    if value is None:
        return WaitForNothing()
    if isinstance(value, list | tuple):
        return PredicateList(value)
    if callable(value):
        return CallablePredicate(value)
    raise exceptions.InvalidInput(
        "predicate", value, "a predicate, a list or tuple of predicates, or a callable"
    )


# --- describing what a view holds ---------------------------------------------------


def _device_text(device: ScsiDeviceRecord) -> str:
    if device.block_name is None:
        return f"SCSI device {device.hctl}"
    return f"{device.path} ({device.hctl})"


def _path_count(map_: MultipathMapRecord) -> str:
    return f"{len(map_.active_paths)} of {len(map_.paths)} paths active"


def _map_text(map_: MultipathMapRecord) -> str:
    return f"{map_.path} ({_path_count(map_)})"


def _problem(device: ScsiDeviceRecord) -> str:
    if not device.usable:
        return f"{_device_text(device)} present but {device.state or 'in an unknown state'}"
    return f"{_device_text(device)} present, no block device yet"


@dataclass(frozen=True, slots=True)
class _Disks:
    """The disks of a unit view: maps counted once, lone devices, which are usable."""

    usable: tuple[str, ...]
    unusable: tuple[str, ...]
    paths: frozenset[str]

    @property
    def present(self) -> bool:
        return bool(self.usable or self.unusable)

    @classmethod
    def of(cls, units: UnitView) -> _Disks:
        members = {p.block_name for m in units.maps for p in m.paths}
        usable: list[str] = []
        unusable: list[str] = []
        for map_ in units.maps:
            if map_.active_paths:
                usable.append(_map_text(map_))
            else:
                unusable.append(f"{map_.path} present but {_path_count(map_)}")
        for device in units.devices:
            if device.block_name is not None and device.block_name in members:
                continue
            if device.usable and device.block_name is not None:
                usable.append(_device_text(device))
            else:
                unusable.append(_problem(device))
        paths = frozenset(d.sys_path for d in units.devices) | {m.sys_path for m in units.maps}
        return cls(tuple(usable), tuple(unusable), paths)

    def every(self) -> str:
        return "; ".join((*self.usable, *self.unusable))


def _serial(value: object) -> str:
    text = validation.text("scsi_serial_number", value).strip()
    if not text:
        raise exceptions.InvalidInput("scsi_serial_number", value, "must not be blank")
    return text


# --- infi.storagemodel's predicates ---------------------------------------------------


class DiskExists(Predicate):
    """Holds when a disk with that unit serial number (SCSI VPD page 0x80) is usable
    on the host: a multipath map with an active path, or a running SCSI disk in no
    map. A disk present but offline or failed does not count.

    :param scsi_serial_number: the serial, as ``sg_inq`` or the array shows it
        (surrounding blanks are ignored, as the kernel's padding).
    :raises tracker.exceptions.InvalidInput: not text, or blank.
    """

    __slots__ = ("scsi_serial_number",)
    _names = ("scsi_serial_number",)

    def __init__(self, scsi_serial_number: str) -> None:
        self.scsi_serial_number = _serial(scsi_serial_number)

    def evaluate(self, view: ModelView) -> Verdict:
        """:returns: whether such a disk is usable, with what is there."""
        disks = _Disks.of(view.units_by_serial(self.scsi_serial_number))
        if disks.usable:
            return Verdict(True, "present: " + disks.every(), disks.paths)
        if disks.unusable:
            return Verdict(False, "; ".join(disks.unusable), disks.paths)
        return Verdict(
            False, f"no disk with serial {self.scsi_serial_number!r} on {view.host_name}"
        )


class DiskNotExists(DiskExists):
    """Holds once no device with that unit serial number is left on the host, in any
    state: a disk that is still there but offline is not gone.

    :param scsi_serial_number: as for :class:`DiskExists`.
    :raises tracker.exceptions.InvalidInput: as :class:`DiskExists`.
    """

    __slots__ = ()

    def evaluate(self, view: ModelView) -> Verdict:
        """:returns: whether every such device is gone, with what is left."""
        disks = _Disks.of(view.units_by_serial(self.scsi_serial_number))
        if disks.present:
            return Verdict(False, "still present: " + disks.every(), disks.paths)
        return Verdict(True, f"gone: no device with serial {self.scsi_serial_number!r}")

    def rescan_plan(self, view: ModelView) -> RescanPlan:
        """:returns: nothing: a rescan only adds devices, it never removes one."""
        return NO_RESCAN


class FiberChannelMappingExists(Predicate):
    """Holds when the LUN is mapped from the initiator port to the target port: a
    SCSI device at that LUN behind that I-T nexus whose state is ``running``.

    :param initiator_wwn: the host's FC port name (WWPN), in any spelling
        (case, ``0x``, ``:``/``-`` separators).
    :param target_wwn: the array's port name, likewise.
    :param lun_number: the LUN (see the module documentation for flat-space
        addressing).
    :raises tracker.exceptions.InvalidInput: a WWN that is not 16 hex digits,
        or a LUN that is not an integer from 0 to 2^64-1.
    """

    __slots__ = ("_initiator", "_luns", "_target", "lun_number")
    _names = ("initiator_wwn", "target_wwn", "lun_number")

    def __init__(self, initiator_wwn: str, target_wwn: str, lun_number: int) -> None:
        self._initiator = validation.wwn("initiator_wwn", initiator_wwn)
        self._target = validation.wwn("target_wwn", target_wwn)
        self._luns = kernel_luns(lun_number)
        self.lun_number = int(lun_number)

    @property
    def initiator_wwn(self) -> str:
        """:returns: ``0x`` + the 16 lowercase hex digits. Never raises."""
        return f"0x{self._initiator}"

    @property
    def target_wwn(self) -> str:
        """:returns: ``0x`` + the 16 lowercase hex digits. Never raises."""
        return f"0x{self._target}"

    def _devices(self, view: ModelView) -> tuple[UnitView, list[ScsiDeviceRecord]]:
        nexus = view.fc_nexus(self._initiator, self._target)
        return nexus, [d for d in nexus.devices if d.lun in self._luns]

    def _context(self, view: ModelView, nexus: UnitView) -> tuple[str, frozenset[str]]:
        """Why there is no mapping: the initiator port, the remote port, its state."""
        initiators = [h for h in view.scsi_hosts() if h.wwpn == self._initiator]
        if not initiators:
            return f"no FC port {self.initiator_wwn} on {view.host_name}", frozenset()
        numbers = {h.number for h in initiators}
        rports = [r for r in view.fc_remote_ports(self._target) if r.scsi_host in numbers]
        paths = frozenset(h.sys_path for h in initiators) | {r.sys_path for r in rports}
        if not rports:
            hosts = ", ".join(
                f"host{h.number} {h.port_state or 'state unknown'}" for h in initiators
            )
            return (
                f"port {self.initiator_wwn} ({hosts}) sees no remote port {self.target_wwn}",
                paths,
            )
        states = ", ".join(sorted({r.port_state or "state unknown" for r in rports}))
        text = f"remote port {self.target_wwn} {states}"
        if nexus.devices:
            luns = ", ".join(str(n) for n in sorted({d.lun for d in nexus.devices}))
            text += f" (kernel LUNs {luns} behind it)"
        return text, paths

    def evaluate(self, view: ModelView) -> Verdict:
        """:returns: whether the mapping is there and running, with what is there."""
        nexus, devices = self._devices(view)
        paths = frozenset(d.sys_path for d in devices)
        running = [d for d in devices if d.usable]
        if running:
            return Verdict(True, "mapped: " + ", ".join(map(_device_text, running)), paths)
        if devices:
            return Verdict(False, "; ".join(map(_problem, devices)), paths)
        context, more = self._context(view, nexus)
        return Verdict(False, f"no such FC mapping; {context}", paths | more)

    def rescan_plan(self, view: ModelView) -> RescanPlan:
        """Target the rescan at the remote port of ``target_wwn``.

        :returns: the target behind that remote port (its channel and target
            id), on each host port with the initiator's WWPN; that host port
            whole when the remote port is not known; every host when the
            initiator is not.
        """
        initiators = [h.number for h in view.scsi_hosts() if h.wwpn == self._initiator]
        if not initiators:
            return EVERY_HOST
        rports = {r.scsi_host: r for r in view.fc_remote_ports(self._target)}
        addresses: set[ScanAddress] = set()
        for host in initiators:
            rport = rports.get(host)
            if rport is not None and rport.scsi_target_id is not None:
                addresses.add((host, rport.channel, rport.scsi_target_id, None))
            else:
                addresses.add((host, None, None, None))
        return RescanPlan(frozenset(addresses))


class FiberChannelMappingNotExists(FiberChannelMappingExists):
    """Holds once no SCSI device is left at that LUN behind that I-T nexus, in any state.

    :raises tracker.exceptions.InvalidInput: as :class:`FiberChannelMappingExists`.
    """

    __slots__ = ()

    def evaluate(self, view: ModelView) -> Verdict:
        """:returns: whether the mapping is gone, with what is left."""
        _nexus, devices = self._devices(view)
        if devices:
            return Verdict(
                False,
                "still mapped: " + "; ".join(f"{_device_text(d)} {d.state}" for d in devices),
                frozenset(d.sys_path for d in devices),
            )
        return Verdict(True, "no such FC mapping")

    def rescan_plan(self, view: ModelView) -> RescanPlan:
        """:returns: nothing: a rescan never removes a device."""
        return NO_RESCAN


class WaitForNothing(Predicate):
    """Always holds: ``rescan_and_wait_for()`` without a predicate only rescans."""

    __slots__ = ()

    def evaluate(self, view: ModelView) -> Verdict:
        """:returns: a verdict that holds."""
        return Verdict(True, "nothing to wait for")


# --- beyond infi -------------------------------------------------------------------


class IscsiSessionExists(Predicate):
    """Holds when an iSCSI session to the target is logged in and its connection is up.

    :param target_iqn: the target's name (compared without case, RFC 3722).
    :param portal: only a session through this portal (``address[:port]``,
        port 3260 by default; matched against the session's portal, current
        address and persistent address).
    :raises tracker.exceptions.InvalidInput: an empty or over-long name, or a
        malformed portal.
    """

    __slots__ = ("portal", "target_iqn")
    _names = ("target_iqn", "portal")

    def __init__(self, target_iqn: str, portal: str | None = None) -> None:
        iqn = validation.text("target_iqn", target_iqn, MAX_ISCSI_NAME).strip().lower()
        if not iqn or any(c.isspace() for c in iqn):
            raise exceptions.InvalidInput("target_iqn", target_iqn, "an iSCSI name, without blanks")
        self.target_iqn = iqn
        self.portal = None if portal is None else validation.portal("portal", portal)

    def __repr__(self) -> str:
        if self.portal is None:
            return f"IscsiSessionExists({self.target_iqn!r})"
        return f"IscsiSessionExists({self.target_iqn!r}, portal={self.portal!r})"

    def _sessions(self, view: ModelView) -> list[Any]:
        sessions = list(view.iscsi_sessions(self.target_iqn))
        if self.portal is not None:
            sessions = [s for s in sessions if self.portal in _portals(s)]
        return sessions

    def evaluate(self, view: ModelView) -> Verdict:
        """:returns: whether such a session is healthy, with what sessions there are."""
        sessions = self._sessions(view)
        paths = frozenset(s.sys_path for s in sessions)
        described = []
        for s in sessions:
            where = f"session {s.session_id} to {s.portal}"
            if s.state == "LOGGED_IN" and s.connection_state in (None, "up"):
                return Verdict(True, f"logged in: {where}", paths)
            if s.state == "LOGGED_IN":
                described.append(f"{where} logged in but its connection is {s.connection_state}")
            else:
                described.append(f"{where} {s.state or 'in an unknown state'}")
        if described:
            return Verdict(False, "; ".join(described), paths)
        through = "" if self.portal is None else f" through {self.portal}"
        return Verdict(False, f"no iSCSI session to {self.target_iqn}{through}", paths)

    def rescan_plan(self, view: ModelView) -> RescanPlan:
        """Target the rescan at the target's sessions.

        :returns: their SCSI hosts (what ``iscsiadm -m session --rescan``
            writes to); nothing without a session, which only a login creates.
        """
        hosts = {s.scsi_host for s in self._sessions(view) if s.scsi_host is not None}
        return RescanPlan(frozenset((h, None, None, None) for h in hosts))


def _portals(session: Any) -> set[str]:
    """The normalised portals a session can be named by."""
    found = set()
    texts = [session.portal, session.current_portal]
    if session.persistent_address is not None:
        port = session.persistent_port or validation.ISCSI_PORT
        address = session.persistent_address
        texts.append(f"[{address}]:{port}" if ":" in address else f"{address}:{port}")
    for text in texts:
        if text:
            try:
                found.add(validation.portal("portal", text))
            except exceptions.InvalidInput:
                continue
    return found


class MultipathPathsAtLeast(Predicate):
    """Holds when the multipath map of a logical unit has at least ``n`` active paths.

    :param serial_or_wwid: the map's WWID (as ``multipath -ll`` shows it; a
        hexadecimal WWID in either case) or the unit serial of its paths.
    :param n: the number of active paths, 1 or more.
    :raises tracker.exceptions.InvalidInput: an empty identifier or a bad ``n``.
    """

    __slots__ = ("n", "serial_or_wwid")
    _names = ("serial_or_wwid", "n")

    def __init__(self, serial_or_wwid: str, n: int) -> None:
        text = validation.text("serial_or_wwid", serial_or_wwid).strip()
        if not text:
            raise exceptions.InvalidInput("serial_or_wwid", serial_or_wwid, "must not be blank")
        self.serial_or_wwid = text
        self.n = validation.integer("n", n, 1, 2**31 - 1)

    def evaluate(self, view: ModelView) -> Verdict:
        """:returns: whether a map has enough active paths, with the counts."""
        by_wwid = view.units_by_wwid(self.serial_or_wwid)
        by_serial = view.units_by_serial(self.serial_or_wwid)
        maps = {m.wwid: m for m in (*by_wwid.maps, *by_serial.maps)}
        devices = {d.hctl: d for d in (*by_wwid.devices, *by_serial.devices)}
        paths = frozenset(m.sys_path for m in maps.values()) | {
            d.sys_path for d in devices.values()
        }
        if not maps:
            extra = f"; {len(devices)} SCSI path(s) in no map" if devices else ""
            return Verdict(False, f"no multipath map for {self.serial_or_wwid!r}{extra}", paths)
        best = max(maps.values(), key=lambda m: len(m.active_paths))
        active = len(best.active_paths)
        text = f"{best.name or best.block_name}: {active} of {len(best.paths)} paths active"
        if active >= self.n:
            return Verdict(True, text, paths)
        return Verdict(False, f"{text} (needs {self.n})", paths)


def _volume_id(volume: object) -> tuple[str, str | None]:
    """``(id, why it cannot be recognised or None)`` of a tracked volume or an id."""
    from tracker.resources import Volume

    if isinstance(volume, Volume):
        missing = None if (volume.wwn or volume.serial) else _UNRECOGNISABLE
        return volume.id, missing
    return validation.identifier("volume", volume), None


_UNRECOGNISABLE = "has no WWN and no serial: tracker cannot recognise it on a host"


class VolumeAttached(Predicate):
    """Holds when a disk of the tracked volume (linked to it by its WWN or serial,
    as ``tracker host show`` shows) is usable on the host.

    :param volume: a :class:`tracker.Volume` or a volume id.
    :raises tracker.exceptions.InvalidInput: not a volume or an id, or a volume
        without a WWN and a serial (it could never be recognised).
    """

    __slots__ = ("volume_id",)
    _names = ("volume_id",)

    def __init__(self, volume: object) -> None:
        volume_id, missing = _volume_id(volume)
        if missing is not None:
            raise exceptions.InvalidInput("volume", volume_id, missing)
        self.volume_id = volume_id

    def _disks(self, view: ModelView) -> tuple[_Disks, str]:
        identity = view.volume(self.volume_id)
        if identity is None:
            raise exceptions.NotFound("volume", self.volume_id)
        if not (identity.wwn or identity.serial):
            raise exceptions.InvalidInput("volume", self.volume_id, _UNRECOGNISABLE)
        name = f"volume {identity.name or self.volume_id}"
        return _Disks.of(view.units_of_volume(self.volume_id)), name

    def evaluate(self, view: ModelView) -> Verdict:
        """:returns: whether the volume is usable on the host, with what is there.

        :raises tracker.exceptions.NotFound: the volume is not tracked.
        :raises tracker.exceptions.InvalidInput: it has no WWN and no serial.
        """
        disks, name = self._disks(view)
        if disks.usable:
            return Verdict(True, f"{name} attached: " + disks.every(), disks.paths)
        if disks.unusable:
            return Verdict(False, f"{name}: " + "; ".join(disks.unusable), disks.paths)
        return Verdict(False, f"no device of {name} on {view.host_name}")


class VolumeDetached(VolumeAttached):
    """Holds once no device of the tracked volume is left on the host, in any state.

    :raises tracker.exceptions.InvalidInput: as :class:`VolumeAttached`.
    """

    __slots__ = ()

    def evaluate(self, view: ModelView) -> Verdict:
        """:returns: whether every device of the volume is gone, with what is left.

        :raises tracker.exceptions.NotFound: the volume is not tracked.
        """
        disks, name = self._disks(view)
        if disks.present:
            return Verdict(False, f"{name} still present: " + disks.every(), disks.paths)
        return Verdict(True, f"no device of {name} left on {view.host_name}")

    def rescan_plan(self, view: ModelView) -> RescanPlan:
        """:returns: nothing: a rescan never removes a device."""
        return NO_RESCAN


class CallablePredicate(Predicate):
    """Any callable taking no argument (infi.storagemodel's predicate contract).

    It is called as it is, on each evaluation; what it raises propagates.

    :param function: the callable.
    """

    __slots__ = ("function",)
    _names = ("function",)

    def __init__(self, function: Callable[[], object]) -> None:
        self.function = function

    def __repr__(self) -> str:
        return repr(self.function)

    def evaluate(self, view: ModelView) -> Verdict:
        """:returns: whether the callable returned a true value."""
        result = bool(self.function())
        return Verdict(result, "returned True" if result else "returned False")


# --- combinations -------------------------------------------------------------------


class _Group(Predicate):
    __slots__ = ("predicates",)
    _names = ("predicates",)
    _word: ClassVar[str] = ""

    def __init__(self, predicates: Iterable[object]) -> None:
        if isinstance(predicates, Predicate | str | bytes) or not isinstance(predicates, Iterable):
            raise exceptions.InvalidInput("predicates", predicates, "a list or tuple of predicates")
        self.predicates: tuple[Predicate, ...] = tuple(as_predicate(p) for p in predicates)

    def __repr__(self) -> str:
        return f"{type(self).__name__}([{', '.join(map(repr, self.predicates))}])"

    def __iter__(self) -> Iterator[Predicate]:
        return iter(self.predicates)

    def __len__(self) -> int:
        return len(self.predicates)

    def _verdicts(self, view: ModelView) -> list[tuple[Predicate, Verdict]]:
        return [(p, p.evaluate(view)) for p in self.predicates]

    def rescan_plan(self, view: ModelView) -> RescanPlan:
        """:returns: what each part's plan covers."""
        plan = NO_RESCAN
        for predicate in self.predicates:
            plan = plan | predicate.rescan_plan(view)
        return plan


def _union(verdicts: Sequence[tuple[Predicate, Verdict]]) -> frozenset[str]:
    paths: frozenset[str] = frozenset()
    for _predicate, verdict in verdicts:
        paths |= verdict.paths
    return paths


class PredicateList(_Group):
    """Holds when every predicate of the list holds (one snapshot for all of them).

    :param list_of_predicates: the predicates (plain callables are accepted,
        as in infi.storagemodel).
    :raises tracker.exceptions.InvalidInput: not a list or tuple.
    """

    __slots__ = ()

    def __init__(self, list_of_predicates: Iterable[object]) -> None:
        super().__init__(list_of_predicates)

    def evaluate(self, view: ModelView) -> Verdict:
        """:returns: whether all hold; the state of those that do not."""
        verdicts = self._verdicts(view)
        failing = [(p, v) for p, v in verdicts if not v.holds]
        if not failing:
            return Verdict(True, f"all {len(verdicts)} hold", _union(verdicts))
        state = "; ".join(f"{p!r}: {v.state}" for p, v in failing)
        return Verdict(False, state, _union(verdicts))


class AnyOf(_Group):
    """Holds when at least one of the predicates holds.

    :param predicates: the predicates.
    :raises tracker.exceptions.InvalidInput: not a list or tuple.
    """

    __slots__ = ()

    def evaluate(self, view: ModelView) -> Verdict:
        """:returns: whether one holds: its state, else every state."""
        verdicts = self._verdicts(view)
        for p, v in verdicts:
            if v.holds:
                return Verdict(True, f"{p!r}: {v.state}", _union(verdicts))
        state = "; ".join(f"{p!r}: {v.state}" for p, v in verdicts) or "no predicate"
        return Verdict(False, state, _union(verdicts))


class Not(Predicate):
    """Holds when the predicate does not (``~predicate``).

    ``~DiskExists(s)`` holds while no *usable* disk is there (an offline one
    included), unlike ``DiskNotExists(s)``, which waits until it is gone.

    :param predicate: the predicate to negate.
    """

    __slots__ = ("predicate",)
    _names = ("predicate",)

    def __init__(self, predicate: object) -> None:
        self.predicate = as_predicate(predicate)

    def __repr__(self) -> str:
        return f"~{self.predicate!r}"

    def __invert__(self) -> Predicate:
        return self.predicate

    def evaluate(self, view: ModelView) -> Verdict:
        """:returns: the negation, with the inner predicate's state."""
        inner = self.predicate.evaluate(view)
        return Verdict(not inner.holds, inner.state, inner.paths)

    def rescan_plan(self, view: ModelView) -> RescanPlan:
        """:returns: nothing: a rescan adds devices, it does not make conditions false."""
        return NO_RESCAN
