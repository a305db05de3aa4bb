"""A fleet of live testbeds reconciled into one store, with tracked volumes attached.

Each host is a :class:`~tracker.testing.live.LiveTestbed` with ``iscsi_multipath``
(two LUs on two portals, one multipath map each), reconciled as ``tracker
discover`` writes it.
"""

from __future__ import annotations

from pathlib import Path

from tracker.db.store import Store
from tracker.discovery.discover import discover
from tracker.host.sources import SysfsTreeSource
from tracker.reconcile import reconcile
from tracker.resources import Backend, Volume
from tracker.testing.live import LiveTestbed
from tracker.testing.topologies import iscsi_multipath

IQN = "iqn.2010-10.org.openstack:volume-5f1e0c2a"
PORTALS = ("192.0.2.10:3260", "192.0.2.11:3260")
#: the WWNs of the two LUs of iscsi_multipath (LUN 0 and LUN 1)
WWN0 = "naa.60014050383041423030303030303634"
WWN1 = "naa.60014050383041423030303030303635"


def iscsi_info(lun: int) -> dict[str, object]:
    return {
        "target_portals": list(PORTALS),
        "target_iqns": [IQN, IQN],
        "target_luns": [lun, lun],
        "auth_password": "never-shown",
    }


class Fleet:
    def __init__(self, directory: Path, store: Store) -> None:
        self.directory = directory
        self.store = store
        self.beds: dict[str, LiveTestbed] = {}
        self.backend = Backend("array", store=store, driver="NetApp")

    def host(self, name: str) -> LiveTestbed:
        root = self.directory / name
        root.mkdir()
        bed = LiveTestbed(root, deliver=False)
        iscsi_multipath(bed, luns=2)
        self.beds[name] = bed
        self.sync(name)
        return bed

    def sync(self, name: str) -> None:
        bed = self.beds[name]
        reconcile(self.store, discover(SysfsTreeSource(bed.root).scan(), name))

    def volume(self, wwn: str, name: str) -> Volume:
        return self.backend.create_volume(1, name, status="available", wwn=wwn)

    def attach(self, volume: Volume, host: str, lun: int) -> None:
        volume.connect({"host": host}, host=host, protocol="iscsi", connection_info=iscsi_info(lun))

    def detach(self, volume: Volume, host: str) -> None:
        volume.refresh()
        for connection in volume.connections:
            if connection.host == host:
                connection.disconnect()
