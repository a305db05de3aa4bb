"""Which sysfs devices and which of their files the host layer reads.

Discovery only needs a small, fixed part of sysfs. This module is the one
table that says which part, so that both device sources
(:class:`tracker.host.sources.PyudevSource` and
:class:`tracker.host.sources.SysfsTreeSource`) and the capture
(:mod:`tracker.host.capture`) read exactly the same things.

A device is *storage-relevant* when its subsystem is in :data:`SUBSYSTEMS`
and, if the subsystem's entry restricts it, its devtype and name match. For a
relevant device the entry selected by :func:`spec_for` says which text
attributes, binary attributes and link directories are read. Properties are
not selected: every uevent property is kept (see :mod:`tracker.host.sources`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BINARY_ATTRIBUTES",
    "SUBSYSTEMS",
    "WANTED",
    "WantedSpec",
    "is_wanted",
    "spec_for",
]


@dataclass(frozen=True, slots=True)
class WantedSpec:
    """What is read for the devices of one ``(subsystem, devtype)``.

    :ivar subsystem: the device's subsystem (``"scsi"``, ``"block"`` ...).
    :ivar devtype: the ``DEVTYPE`` it must have, or ``None`` for any
        devtype (including none).
    :ivar name_prefixes: when not empty, the device's sysname must start
        with one of these (``("sd", "dm-")`` for block devices).
    :ivar attributes: text attributes, as paths relative to the device
        directory (``"dm/name"``, ``"queue/logical_block_size"``).
    :ivar binary_attributes: attributes read as raw bytes (VPD pages).
    :ivar link_dirs: directories of symlinks to other devices (``"slaves"``).
        ``holders/`` is never read: each link in it is the reverse of a
        ``slaves/`` link that is read.
    """

    subsystem: str
    devtype: str | None
    name_prefixes: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    binary_attributes: tuple[str, ...] = ()
    link_dirs: tuple[str, ...] = ()

    def matches(self, subsystem: str, devtype: str | None, sys_name: str) -> bool:
        """Tell whether a device falls under this entry.

        :returns: ``True`` when subsystem, devtype and name prefix all match.
        :raises: nothing.
        """
        if subsystem != self.subsystem:
            return False
        if self.devtype is not None and devtype != self.devtype:
            return False
        return not self.name_prefixes or sys_name.startswith(self.name_prefixes)


#: Binary attributes: never read through libudev (it returns C strings, and
#: VPD pages start with a NUL byte); always read from the file as bytes.
BINARY_ATTRIBUTES: tuple[str, ...] = ("vpd_pg80", "vpd_pg83")

_SCSI_DEVICE_ATTRIBUTES = (
    "vendor",
    "model",
    "rev",
    "type",
    "state",
    "wwid",
)

#: The table, in the order the sources enumerate it.
WANTED: tuple[WantedSpec, ...] = (
    WantedSpec("scsi", "scsi_host"),
    WantedSpec("scsi", "scsi_target"),
    WantedSpec(
        "scsi",
        "scsi_device",
        attributes=_SCSI_DEVICE_ATTRIBUTES,
        binary_attributes=BINARY_ATTRIBUTES,
    ),
    WantedSpec("scsi_host", None, attributes=("proc_name", "unique_id", "state")),
    WantedSpec(
        "fc_host",
        None,
        attributes=(
            "port_name",
            "node_name",
            "port_state",
            "port_id",
            "port_type",
            "speed",
            "fabric_name",
            "symbolic_name",
        ),
    ),
    WantedSpec(
        "fc_remote_ports",
        None,
        attributes=(
            "port_name",
            "node_name",
            "port_id",
            "port_state",
            "roles",
            "scsi_target_id",
            "dev_loss_tmo",
            "fast_io_fail_tmo",
        ),
    ),
    WantedSpec("fc_transport", None, attributes=("port_name", "node_name", "port_id")),
    WantedSpec("iscsi_host", None, attributes=("ipaddress", "initiatorname")),
    WantedSpec(
        "iscsi_session",
        None,
        attributes=(
            "targetname",
            "tpgt",
            "state",
            "recovery_tmo",
            "ifacename",
            "target_state",
            "initiatorname",
        ),
    ),
    WantedSpec(
        "iscsi_connection",
        None,
        attributes=("persistent_address", "persistent_port", "address", "port", "state"),
    ),
    WantedSpec("sas_host", None),
    WantedSpec(
        "sas_device",
        None,
        attributes=("sas_address", "device_type", "phy_identifier", "enclosure_identifier"),
    ),
    WantedSpec("sas_end_device", None, attributes=("bay_identifier", "enclosure_identifier")),
    WantedSpec(
        "block",
        "disk",
        name_prefixes=("sd",),
        # No link directory: the map an sd belongs to is read from the map's
        # own slaves/ (holders/ would cost ~10 % of a scan for nothing).
        attributes=("size", "ro", "queue/logical_block_size"),
    ),
    WantedSpec(
        "block",
        "disk",
        name_prefixes=("dm-",),
        attributes=("size", "ro", "dm/name", "dm/uuid", "dm/suspended"),
        link_dirs=("slaves",),
    ),
)

#: Storage-relevant subsystems, in enumeration order, without repeats.
SUBSYSTEMS: tuple[str, ...] = tuple(dict.fromkeys(spec.subsystem for spec in WANTED))


def spec_for(subsystem: str | None, devtype: str | None, sys_name: str) -> WantedSpec | None:
    """Find the entry of :data:`WANTED` that a device falls under.

    :param subsystem: the device's subsystem (``None`` when it has none).
    :param devtype: its ``DEVTYPE`` or ``None``.
    :param sys_name: the last component of its path.
    :returns: the first matching entry, or ``None`` when the device is not
        storage-relevant.
    :raises: nothing.
    """
    if subsystem is None:
        return None
    for spec in WANTED:
        if spec.matches(subsystem, devtype, sys_name):
            return spec
    return None


def is_wanted(subsystem: str | None, devtype: str | None, sys_name: str) -> bool:
    """Tell whether a device is storage-relevant.

    :returns: ``True`` when :func:`spec_for` finds an entry for it.
    :raises: nothing.
    """
    return spec_for(subsystem, devtype, sys_name) is not None
