"""Host storage discovery: from sysfs device records to a frozen :class:`HostState`.

Pure code: nothing here touches ``/sys`` or any file. :mod:`tracker.host` turns a
live or captured sysfs tree into :class:`~tracker.host.records.DeviceRecord` values;
:func:`discover` turns those into a :class:`HostState`. :mod:`.vpd` decodes SCSI VPD
pages 0x80 and 0x83.
"""

from tracker.discovery.discover import discover
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
    Portal,
    ScsiDevice,
    ScsiHost,
    Transport,
    WarningCode,
)
from tracker.discovery.vpd import (
    Designator,
    DeviceIdentity,
    VpdWarning,
    device_identity,
    parse_pg80,
    parse_pg83,
)

__all__ = [
    "Designator",
    "DeviceIdentity",
    "DiscoveryWarning",
    "FcPathIds",
    "FcRemotePort",
    "Hctl",
    "HostState",
    "IscsiPathIds",
    "IscsiSession",
    "MultipathMap",
    "MultipathPath",
    "PathState",
    "Portal",
    "ScsiDevice",
    "ScsiHost",
    "Transport",
    "VpdWarning",
    "WarningCode",
    "device_identity",
    "discover",
    "parse_pg80",
    "parse_pg83",
]
