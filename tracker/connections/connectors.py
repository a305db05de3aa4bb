"""Connecting and disconnecting storage targets, one connector per scheme.

A connector turns a parsed target (:mod:`tracker.connections.uri`) into host
commands -- run by the host layer (:mod:`tracker.host.iscsiadm`,
:mod:`tracker.host.mounts`) through the injected executor -- and says whether
the target is connected:

* **iSCSI** logs in to the target through its portal (with the CHAP
  credentials, if any) and out of it. It is connected when the host's
  reconciled model (``tracker host show``) has a session to that target and
  portal that is ``LOGGED_IN`` with its connection up. It tells whether its
  login created the session (a session that was there before tracker managed
  the target -- logged in by os-brick, an operator -- is never logged out by
  tracker).
* **NFS** mounts the export on a mount point of its own under the mount base
  (one per target, named by :func:`~tracker.host.mounts.mount_point_for`) and
  unmounts it. It is connected when the host's mount table has the export
  mounted there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tracker import exceptions, validation
from tracker.connections.uri import IscsiTarget, NfsExport, StorageTarget
from tracker.host.iscsiadm import ChapCredentials, Iscsiadm
from tracker.host.mounts import MountEntry, Mounter, mount_point_for

if TYPE_CHECKING:
    from tracker.db.observed import IscsiSessionRecord

__all__ = [
    "Connector",
    "HostConnections",
    "IscsiConnector",
    "NfsConnector",
    "session_healthy",
]


def session_healthy(session: IscsiSessionRecord) -> bool:
    """Tell whether an observed session is logged in with its connection up.

    A connection state the kernel does not report counts as up.

    :returns: the answer. Never raises.
    """
    return session.state == "LOGGED_IN" and session.connection_state in (None, "up")


def _portal(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return validation.portal("portal", text)
    except exceptions.InvalidInput:
        return None


@dataclass(frozen=True, slots=True)
class HostConnections:
    """What the host has now: its iSCSI sessions (reconciled model) and NFS mounts.

    :ivar sessions: the observed iSCSI sessions of the host.
    :ivar mounts: the NFS entries of its mount table.
    """

    sessions: tuple[IscsiSessionRecord, ...] = ()
    mounts: tuple[MountEntry, ...] = ()

    def sessions_to(self, target: IscsiTarget) -> list[IscsiSessionRecord]:
        """Find the sessions to a target through its portal (IQN without case).

        :returns: the sessions.
        """
        return [
            s
            for s in self.sessions
            if s.target_iqn.lower() == target.iqn
            and target.portal in {_portal(s.portal), _portal(s.current_portal)}
        ]


class Connector(Protocol):
    """Connects one scheme's targets (the connectors below)."""

    scheme: str

    def connect(self, target: StorageTarget, secret: ChapCredentials | None) -> bool:
        """Connect the target.

        :returns: whether this call created the connection (``False``: it was
            there already).
        :raises tracker.exceptions.ConnectorFailed: the command failed.
        """
        ...

    def disconnect(self, target: StorageTarget) -> None:
        """Disconnect the target (nothing when it is not connected).

        :raises tracker.exceptions.ConnectorFailed: the command failed.
        """
        ...

    def connected(self, target: StorageTarget, host: HostConnections) -> bool:
        """:returns: whether the target is connected on the host. Never raises."""
        ...


class IscsiConnector:
    """Logs in to and out of iSCSI targets with ``iscsiadm``.

    :param iscsiadm: runs the commands.
    """

    scheme = "iscsi"

    def __init__(self, iscsiadm: Iscsiadm) -> None:
        self.iscsiadm = iscsiadm

    def __repr__(self) -> str:
        return "IscsiConnector()"

    @staticmethod
    def _target(target: StorageTarget) -> IscsiTarget:
        assert isinstance(target, IscsiTarget), "an iSCSI connector got another target"
        return target

    def connect(self, target: StorageTarget, secret: ChapCredentials | None) -> bool:
        """Log in (a session that exists already is left as it is).

        :returns: whether this login created the session.
        :raises tracker.exceptions.ConnectorFailed: ``iscsiadm`` failed.
        """
        iscsi = self._target(target)
        existing = {(s.target_iqn.lower(), _portal(s.portal)) for s in self.iscsiadm.sessions()}
        if (iscsi.iqn, iscsi.portal) in existing:
            return False
        self.iscsiadm.login(
            iscsi.iqn, iscsi.portal, iface=iscsi.iface, tpgt=iscsi.tpgt, chap=secret
        )
        return True

    def disconnect(self, target: StorageTarget) -> None:
        """Log out of the target through its portal.

        :raises tracker.exceptions.ConnectorFailed: ``iscsiadm`` failed.
        """
        iscsi = self._target(target)
        self.iscsiadm.logout(iscsi.iqn, iscsi.portal, iface=iscsi.iface)

    def connected(self, target: StorageTarget, host: HostConnections) -> bool:
        """Tell whether a healthy session to the target and portal exists.

        :returns: the answer. Never raises.
        """
        return any(session_healthy(s) for s in host.sessions_to(self._target(target)))


class NfsConnector:
    """Mounts NFS exports on mount points of their own under a base directory.

    :param mounter: runs ``mount``/``umount`` and reads the mount table (its
        ``root``).
    :param base: where the mount points are made (``[connections] mount_base``).
    """

    scheme = "nfs"

    def __init__(self, mounter: Mounter, base: Path) -> None:
        self.mounter = mounter
        self.base = Path(base)

    def __repr__(self) -> str:
        return f"NfsConnector(base={self.base!r})"

    @staticmethod
    def _target(target: StorageTarget) -> NfsExport:
        assert isinstance(target, NfsExport), "an NFS connector got another target"
        return target

    def mount_point(self, target: StorageTarget) -> Path:
        """Name the export's mount point (one directory per target).

        :returns: ``<base>/<escaped target key>``.
        """
        return mount_point_for(self.base, self._target(target).key)

    def _mounted(self, export: NfsExport, mounts: Sequence[MountEntry]) -> bool:
        point = str(self.mount_point(export))
        return any(m.mount_point == point and m.source == export.mount_source() for m in mounts)

    def connect(self, target: StorageTarget, secret: ChapCredentials | None) -> bool:
        """Mount the export (nothing when it is mounted there already).

        :returns: whether this call mounted it.
        :raises tracker.exceptions.ConnectorFailed: ``mount`` failed, or the mount
            point is unusable (see :meth:`tracker.host.mounts.Mounter.mount_nfs`).
        """
        export = self._target(target)
        point = self.mount_point(export)
        if self._mounted(export, self.mounter.mounted(point)):
            return False
        self.mounter.mount_nfs(export.mount_source(), point, export.options)
        return True

    def disconnect(self, target: StorageTarget) -> None:
        """Unmount the export from its mount point.

        :raises tracker.exceptions.ConnectorFailed: ``umount`` failed.
        """
        self.mounter.umount(self.mount_point(target))

    def connected(self, target: StorageTarget, host: HostConnections) -> bool:
        """Tell whether the export is mounted on its mount point.

        :returns: the answer. Never raises.
        """
        return self._mounted(self._target(target), host.mounts)


def connectors_by_scheme(connectors: Sequence[Connector]) -> Mapping[str, Connector]:
    """:returns: scheme -> connector (each scheme described once)."""
    return {connector.scheme: connector for connector in connectors}
