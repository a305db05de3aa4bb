"""What predicates read: one host's reconciled model, in one snapshot.

A :class:`ModelView` wraps one :meth:`Store.read() <tracker.db.store.Store.read>`
session and one host name. Every read goes through the typed read model
(:mod:`tracker.db.observed`) -- never sysfs -- so what a wait sees is what
``tracker host show`` shows, and every part of one evaluation (all the
predicates of a :class:`~tracker.waiting.predicates.PredicateList`) sees the
same committed state. Reads are memoised for the life of the view: two
predicates about one serial cost one query.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from tracker.db import observed, repository
from tracker.db.observed import (
    FcRemotePortRecord,
    HostRecord,
    IscsiSessionRecord,
    ScsiHostRecord,
    UnitView,
)

__all__ = ["ModelView", "VolumeIdentity"]

T = TypeVar("T")


class VolumeIdentity:
    """What a tracked volume is recognised by on a host.

    :ivar volume_id: its id.
    :ivar name: its name (or ``None``).
    :ivar wwn: its WWN, or ``None``.
    :ivar serial: its unit serial, or ``None``.
    """

    __slots__ = ("name", "serial", "volume_id", "wwn")

    def __init__(self, volume_id: str, name: str | None, wwn: str | None, serial: str | None):
        self.volume_id = volume_id
        self.name = name
        self.wwn = wwn
        self.serial = serial


class ModelView:
    """The reconciled model of one host, as one snapshot read.

    :param session: a read session (:meth:`Store.read <tracker.db.store.Store.read>`).
    :param host_name: the host the predicates are about.
    :ivar queries: how many reads were made (each a query or two).
    """

    def __init__(self, session: Session, host_name: str) -> None:
        self.session = session
        self.host_name = host_name
        self._memo: dict[Hashable, Any] = {}
        self.queries = 0

    def __repr__(self) -> str:
        return f"ModelView(host_name={self.host_name!r})"

    def _once(self, key: Hashable, read: Callable[[], T]) -> T:
        if key not in self._memo:
            self.queries += 1
            self._memo[key] = read()
        value: T = self._memo[key]
        return value

    def host(self) -> HostRecord | None:
        """:returns: the host's own row, ``None`` if it never reconciled."""
        return self._once("host", lambda: observed.host_record(self.session, self.host_name))

    def units_by_serial(self, serial: str) -> UnitView:
        """:returns: the host's paths with that unit serial, and their maps."""
        return self._once(
            ("serial", serial),
            lambda: observed.read_serial(self.session, serial, self.host_name),
        )

    def units_by_wwid(self, wwid: str) -> UnitView:
        """:returns: the host's paths and maps of the unit with that WWID."""
        return self._once(
            ("wwid", wwid.lower()),
            lambda: observed.read_wwid(self.session, wwid, self.host_name),
        )

    def fc_nexus(self, initiator_wwpn: str, target_wwpn: str) -> UnitView:
        """Read an I-T nexus: WWPNs as 16 lowercase hex digits.

        :returns: the host's paths from the initiator port to the target port
            (every LUN), and their maps.
        """
        return self._once(
            ("fc", initiator_wwpn, target_wwpn),
            lambda: observed.read_fc_mapping(
                self.session, initiator_wwpn, target_wwpn, None, self.host_name
            ),
        )

    def units_of_volume(self, volume_id: str) -> UnitView:
        """:returns: the host's paths and maps linked to a tracked volume."""
        return self._once(
            ("volume", volume_id),
            lambda: observed.read_volume_on_host(self.session, volume_id, self.host_name),
        )

    def volume(self, volume_id: str) -> VolumeIdentity | None:
        """:returns: a tracked volume's identity, ``None`` when there is no such volume."""

        def read() -> VolumeIdentity | None:
            found = repository.volume_identity(self.session, volume_id)
            return None if found is None else VolumeIdentity(volume_id, *found)

        return self._once(("volume-row", volume_id), read)

    def scsi_hosts(self) -> tuple[ScsiHostRecord, ...]:
        """:returns: the host's SCSI hosts (HBA ports, iSCSI hosts ...)."""
        return self._once(
            "scsi-hosts", lambda: observed.read_scsi_hosts(self.session, self.host_name)
        )

    def fc_remote_ports(self, wwpn: str) -> tuple[FcRemotePortRecord, ...]:
        """:returns: the host's remote ports with that WWPN (16 lowercase hex digits)."""
        return self._once(
            ("rports", wwpn),
            lambda: observed.read_fc_remote_ports(self.session, self.host_name, wwpn),
        )

    def iscsi_sessions(self, target_iqn: str) -> tuple[IscsiSessionRecord, ...]:
        """:returns: the host's iSCSI sessions to that target (IQN without case)."""
        return self._once(
            ("iscsi", target_iqn.lower()),
            lambda: observed.read_iscsi_sessions(self.session, self.host_name, target_iqn),
        )
