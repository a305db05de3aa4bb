"""Live changes on a testbed: hot-plug and unplug, with the kernel's events in the kernel's order.

:class:`LiveTestbed` is a :class:`~tracker.testing.builder.Testbed` that
journals a :class:`~tracker.testing.uevents.Uevent` for every device
(a directory with a ``SUBSYSTEM``) it creates or removes, and sends each to
the testbed's monitors (``pyudev.Monitor`` under umockdev's preload) unless
built with ``deliver=False``. Every change returns its events too, so an
in-memory event source can replay them without any socket
(:func:`to_device_events`).

The order is the kernel's:

* a device is announced (``add``) once its files are complete, parents before
  children and in the order the kernel registers them: ``scsi_target`` (on
  its first LUN) -> its ``fc_transport`` -> ``scsi_device`` -> the
  ``scsi_device`` class device -> ``scsi_disk`` -> ``block`` (disk) -> a
  ``change`` of the multipath map the disk joins;
* a removal is the exact reverse: ``change`` of the maps that held the disk
  (the map is reloaded without the path, as os-brick does before deleting a
  device), then the devices in the reverse of their creation order, each
  event carrying the properties the device had;
* kernel objects without a subsystem (``rport-H:C-N``, ``sessionN``) are
  silent, as in the kernel (its uevent filter drops them).

Because the journal is the generic result of the builder's own device
writes, any builder method is covered; :func:`replay_build` runs a topology
builder on a :class:`LiveTestbed` from an empty host and returns the events
of the whole build, for "applying these events equals a full scan" tests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker.exceptions import TestbedError
from tracker.testing.builder import Testbed
from tracker.testing.specs import (
    FcHbaSpec,
    FcRemotePortSpec,
    Hctl,
    HostSpec,
    IscsiHostSpec,
    IscsiSessionSpec,
    LunSpec,
    MultipathSpec,
    SasEndDeviceSpec,
    SasHostSpec,
)
from tracker.testing.uevents import Uevent, UeventSender, read_uevent_file

if TYPE_CHECKING:
    from tracker.host.events import DeviceEvent
    from tracker.testing.topologies import Topology, TopologyBuilder, VpdVector

__all__ = ["LiveTestbed", "MultipathChoice", "replay_build", "to_device_events"]

#: How a plugged LUN's disk joins multipath: the index of an existing map, a
#: new map to create (its ``paths`` must exist by then), or ``None``.
MultipathChoice = int | MultipathSpec | None


class LiveTestbed(Testbed):
    """A testbed whose changes emit (and send) the kernel's uevents.

    Thread-safe: one change at a time (a scan-file responder may plug LUNs
    from its thread while the test reads :attr:`events`).

    :param root: as for :class:`~tracker.testing.builder.Testbed`.
    :param sender: numbers and sends the events (a new one for ``root`` when
        ``None``).
    :param deliver: send each change's events to the monitors' sockets;
        ``False`` only journals and returns them.
    :raises tracker.exceptions.TestbedError: when ``root`` is not a directory.
    """

    __test__ = False

    def __init__(
        self, root: Path, *, sender: UeventSender | None = None, deliver: bool = True
    ) -> None:
        super().__init__(root)
        self.sender = sender if sender is not None else UeventSender(self.root)
        self.deliver = deliver
        self._lock = threading.RLock()
        self._journal: list[Uevent] = []
        self._created: dict[str, None] = {}  # every device made, in creation order
        self._pending: list[str] | None = None
        self._batch: list[Uevent] = []
        self._depth = 0

    @property
    def events(self) -> tuple[Uevent, ...]:
        """Every event of this testbed's changes so far, in order.

        :raises: nothing.
        """
        with self._lock:
            return tuple(self._journal)

    # -- the journal --

    def _device(self, sys_path: str, subsystem: str, **kwargs: Any) -> None:
        super()._device(sys_path, subsystem, **kwargs)
        if sys_path not in self._created:
            self._created[sys_path] = None
            if self._pending is not None:
                self._pending.append(sys_path)

    @contextmanager
    def _change(self) -> Iterator[list[Uevent]]:
        """One change: collect the devices it creates, announce them at the end.

        Nested changes (a LUN plugged by an rport plug) add to the outer
        one's events, which go out together when it ends. A change that
        fails part way still announces what it did, so the events always
        describe the tree.
        """
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._pending = []
                self._batch = []
            self._depth += 1
            try:
                yield self._batch
            finally:
                self._depth -= 1
                self._flush_adds(self._batch)
                if outer:
                    self._pending = None
                    batch, self._batch = self._batch, []
                    self._finish(batch)

    def _finish(self, batch: Sequence[Uevent]) -> None:
        self._journal.extend(batch)
        if self.deliver:
            for event in batch:
                self.sender.deliver(event)

    def _flush_adds(self, batch: list[Uevent]) -> None:
        """Announce the devices created so far in this change (before a ``change``)."""
        for path in self._pending or ():
            if (self.sys_dir / path.lstrip("/") / "uevent").exists():
                batch.append(self.sender.event("add", path))
        if self._pending is not None:
            self._pending.clear()

    def _snapshot(self, prefixes: Iterable[str]) -> list[tuple[str, dict[str, str]]]:
        """The devices below ``prefixes`` with their properties, newest first."""
        tops = [p.rstrip("/") for p in prefixes]
        found = [
            path
            for path in self._created
            if any(path == top or path.startswith(top + "/") for top in tops)
        ]
        snapshot = []
        for path in reversed(found):
            properties = read_uevent_file(self.root, path)
            if properties is not None:
                snapshot.append((path, properties))
        return snapshot

    def _removed(self, batch: list[Uevent], snapshot: list[tuple[str, dict[str, str]]]) -> None:
        """Journal ``remove`` for the snapshot devices that are gone now."""
        for path, properties in snapshot:
            if not (self.sys_dir / path.lstrip("/") / "uevent").exists():
                batch.append(self.sender.event("remove", path, properties))
                self._created.pop(path, None)

    # -- the builder's changes, journalled --

    def add_host(self, spec: HostSpec) -> str:
        """As the builder\'s ``add_host``, announcing the devices it creates.

        :raises tracker.exceptions.TestbedError: as the builder's method does.
        """
        with self._change():
            return super().add_host(spec)

    def add_fc_hba(self, spec: FcHbaSpec) -> str:
        """As the builder\'s ``add_fc_hba``, announcing the devices it creates.

        :raises tracker.exceptions.TestbedError: as the builder's method does.
        """
        with self._change():
            return super().add_fc_hba(spec)

    def add_fc_remote_port(self, spec: FcRemotePortSpec) -> str:
        """As the builder\'s ``add_fc_remote_port``, announcing the devices it creates.

        :raises tracker.exceptions.TestbedError: as the builder's method does.
        """
        with self._change():
            return super().add_fc_remote_port(spec)

    def add_iscsi_host(self, spec: IscsiHostSpec) -> str:
        """As the builder\'s ``add_iscsi_host``, announcing the devices it creates.

        :raises tracker.exceptions.TestbedError: as the builder's method does.
        """
        with self._change():
            return super().add_iscsi_host(spec)

    def add_iscsi_session(self, spec: IscsiSessionSpec) -> str:
        """As the builder\'s ``add_iscsi_session``, announcing the devices it creates.

        :raises tracker.exceptions.TestbedError: as the builder's method does.
        """
        with self._change():
            return super().add_iscsi_session(spec)

    def add_sas_host(self, spec: SasHostSpec) -> str:
        """As the builder\'s ``add_sas_host``, announcing the devices it creates.

        :raises tracker.exceptions.TestbedError: as the builder's method does.
        """
        with self._change():
            return super().add_sas_host(spec)

    def add_sas_end_device(self, spec: SasEndDeviceSpec) -> str:
        """As the builder\'s ``add_sas_end_device``, announcing the devices it creates.

        :raises tracker.exceptions.TestbedError: as the builder's method does.
        """
        with self._change():
            return super().add_sas_end_device(spec)

    def add_lun(self, spec: LunSpec) -> str:
        """As the builder\'s ``add_lun``, announcing the devices it creates.

        :raises tracker.exceptions.TestbedError: as the builder's method does.
        """
        with self._change():
            return super().add_lun(spec)

    def add_multipath(self, spec: MultipathSpec) -> str:
        """Add a multipath map: ``add`` of ``dm-N``, then ``change`` (table loaded).

        :returns: the map's sys_path.
        :raises tracker.exceptions.TestbedError: as the builder's method does.
        """
        with self._change() as batch:
            sys_path = super().add_multipath(spec)
            self._flush_adds(batch)
            batch.append(self.sender.event("change", sys_path))
            return sys_path

    def add_multipath_path(self, index: int, disk: str) -> None:
        """Add a disk to a map: ``change`` of the map.

        :raises tracker.exceptions.TestbedError: as the builder's method does.
        """
        with self._change() as batch:
            super().add_multipath_path(index, disk)
            self._flush_adds(batch)
            batch.append(self.sender.event("change", self.multipaths[index]))

    def remove_lun(self, hctl: Hctl) -> None:
        """Remove a LUN: ``change`` of the maps on its disk, then its devices
        (and its target's, when it was the last LUN) newest first.

        :raises tracker.exceptions.TestbedError: when there is no such LUN.
        """
        with self._change() as batch:
            device = self.lun_path(hctl)
            disk = self.lun_disk(hctl)
            holders = self.holders_of(disk.name) if disk is not None else ()
            snapshot = self._snapshot([device.rsplit("/", 1)[0]])
            super().remove_lun(hctl)
            for index in holders:
                batch.append(self.sender.event("change", self.multipaths[index]))
            self._removed(batch, snapshot)

    def remove_multipath(self, index: int) -> None:
        """Remove a map: ``remove`` of ``dm-N``.

        :raises tracker.exceptions.TestbedError: when there is no such map.
        """
        with self._change() as batch:
            snapshot = self._snapshot([self.multipaths.get(index, f"/devices/none/dm-{index}")])
            super().remove_multipath(index)
            self._removed(batch, snapshot)

    def remove_fc_remote_port(self, host: int, channel: int, number: int) -> None:
        """Remove a remote port without LUNs: ``remove`` of its ``fc_remote_ports``.

        :raises tracker.exceptions.TestbedError: as the builder's method does.
        """
        with self._change() as batch:
            snapshot = self._snapshot([self.fc_remote_port_path(host, channel, number)])
            super().remove_fc_remote_port(host, channel, number)
            self._removed(batch, snapshot)

    def remove_iscsi_session(self, host: int) -> None:
        """Remove a session without LUNs: ``remove`` of its connection, then of it.

        :raises tracker.exceptions.TestbedError: as the builder's method does.
        """
        with self._change() as batch:
            snapshot = self._snapshot([self.iscsi_session_path(host)])
            super().remove_iscsi_session(host)
            self._removed(batch, snapshot)

    # -- live changes: each returns its events --

    @contextmanager
    def _returning(self) -> Iterator[list[Uevent]]:
        result: list[Uevent] = []
        with self._lock:
            start = len(self._journal)
            with self._change():
                yield result
            result.extend(self._journal[start:])

    def _join(self, spec: LunSpec, multipath: MultipathChoice) -> None:
        if multipath is None:
            return
        if spec.disk is None:
            raise TestbedError(what=f"LUN {spec.hctl}", reason="no disk to add to a multipath map")
        if isinstance(multipath, int):
            self.add_multipath_path(multipath, spec.disk.name)
        elif multipath.index in self.multipaths:
            self.add_multipath_path(multipath.index, spec.disk.name)
        else:
            self.add_multipath(multipath)

    def plug_lun(self, spec: LunSpec, multipath: MultipathChoice = None) -> tuple[Uevent, ...]:
        """Hot-plug a LUN (and its disk), optionally as a path of a multipath map.

        :param multipath: see :data:`MultipathChoice`.
        :returns: the events, in order (also journalled and, unless
            ``deliver=False``, sent).
        :raises tracker.exceptions.TestbedError: when the builder refuses the
            LUN or the map; nothing is announced then.
        :raises tracker.exceptions.UeventNotDelivered: when a monitor cannot
            be reached.
        """
        with self._returning() as events:
            self.add_lun(spec)
            self._join(spec, multipath)
        return tuple(events)

    def unplug_lun(self, hctl: Hctl) -> tuple[Uevent, ...]:
        """Hot-unplug a LUN (and its target when it was the last).

        :returns: the events, in order.
        :raises tracker.exceptions.TestbedError: when there is no such LUN.
        :raises tracker.exceptions.UeventNotDelivered: as :meth:`plug_lun`.
        """
        with self._returning() as events:
            self.remove_lun(hctl)
        return tuple(events)

    def unplug_multipath(self, index: int) -> tuple[Uevent, ...]:
        """Remove a multipath map (multipathd flushing it): ``remove`` of ``dm-N``.

        :returns: the events, in order.
        :raises tracker.exceptions.TestbedError: when there is no such map.
        :raises tracker.exceptions.UeventNotDelivered: as :meth:`plug_lun`.
        """
        with self._returning() as events:
            self.remove_multipath(index)
        return tuple(events)

    def plug_path(self, spec: LunSpec, multipath: int | MultipathSpec) -> tuple[Uevent, ...]:
        """Hot-plug one path (an sd disk) of a multipath LUN.

        :returns: the events, ending with the map's ``change``.
        :raises tracker.exceptions.TestbedError: when the LUN has no disk or
            the map cannot take it.
        :raises tracker.exceptions.UeventNotDelivered: as :meth:`plug_lun`.
        """
        if spec.disk is None:
            raise TestbedError(what=f"LUN {spec.hctl}", reason="a path needs a disk")
        return self.plug_lun(spec, multipath)

    def unplug_path(self, hctl: Hctl) -> tuple[Uevent, ...]:
        """Hot-unplug one path of a multipath LUN (the map stays).

        :returns: the events, starting with the map's ``change``.
        :raises tracker.exceptions.TestbedError: when there is no such LUN or
            its disk is in no map.
        :raises tracker.exceptions.UeventNotDelivered: as :meth:`plug_lun`.
        """
        disk = self.lun_disk(hctl)
        if disk is None or not self.holders_of(disk.name):
            raise TestbedError(what=f"LUN {hctl}", reason="not a path of a multipath map")
        return self.unplug_lun(hctl)

    def plug_rport(
        self,
        spec: FcRemotePortSpec,
        luns: Sequence[LunSpec] = (),
        multipath: Mapping[Hctl, MultipathChoice] | None = None,
    ) -> tuple[Uevent, ...]:
        """Hot-plug an FC remote port with its target's LUNs.

        :param multipath: for each LUN address, how its disk joins multipath.
        :returns: the events: the ``fc_remote_ports`` device, then the LUNs'.
        :raises tracker.exceptions.TestbedError: when the builder refuses.
        :raises tracker.exceptions.UeventNotDelivered: as :meth:`plug_lun`.
        """
        choices = multipath or {}
        with self._returning() as events:
            self.add_fc_remote_port(spec)
            for lun in luns:
                self.add_lun(lun)
                self._join(lun, choices.get(lun.hctl))
        return tuple(events)

    def unplug_rport(self, host: int, channel: int, number: int) -> tuple[Uevent, ...]:
        """Hot-unplug an FC remote port, taking its targets and LUNs.

        :returns: the events: each LUN's (highest address first), then the port's.
        :raises tracker.exceptions.TestbedError: when there is no such port.
        :raises tracker.exceptions.UeventNotDelivered: as :meth:`plug_lun`.
        """
        with self._returning() as events:
            rport = self.fc_remote_port_path(host, channel, number)
            for hctl in reversed(self.luns_below(rport)):
                self.remove_lun(hctl)
            self.remove_fc_remote_port(host, channel, number)
        return tuple(events)

    def plug_iscsi_session(
        self,
        spec: IscsiSessionSpec,
        luns: Sequence[LunSpec] = (),
        multipath: Mapping[Hctl, MultipathChoice] | None = None,
    ) -> tuple[Uevent, ...]:
        """Log in an iSCSI session: its session and connection, then its LUNs.

        :returns: the events, in order.
        :raises tracker.exceptions.TestbedError: when the builder refuses.
        :raises tracker.exceptions.UeventNotDelivered: as :meth:`plug_lun`.
        """
        choices = multipath or {}
        with self._returning() as events:
            self.add_iscsi_session(spec)
            for lun in luns:
                self.add_lun(lun)
                self._join(lun, choices.get(lun.hctl))
        return tuple(events)

    def unplug_iscsi_session(self, host: int) -> tuple[Uevent, ...]:
        """Log out an iSCSI host's session: its LUNs, then connection and session.

        :returns: the events, in order.
        :raises tracker.exceptions.TestbedError: when the host has no session.
        :raises tracker.exceptions.UeventNotDelivered: as :meth:`plug_lun`.
        """
        with self._returning() as events:
            session = self.iscsi_session_path(host)
            for hctl in reversed(self.luns_below(session)):
                self.remove_lun(hctl)
            self.remove_iscsi_session(host)
        return tuple(events)

    def unplug_iscsi_host(self, host: int) -> tuple[Uevent, ...]:
        """Remove an iSCSI host whose session is gone, as ``iscsi_tcp`` does after a
        logout (one host per session): its ``iscsi_host`` and ``scsi_host`` class
        devices, then the host, newest first.

        :returns: the events, in order.
        :raises tracker.exceptions.TestbedError: when the host is not an iSCSI
            host or still has a session.
        :raises tracker.exceptions.UeventNotDelivered: as :meth:`plug_lun`.
        """
        with self._returning() as events, self._change() as batch:
            host_path = self._require_host(host, "iscsi", f"host{host}")
            if host in self._sessions:
                raise TestbedError(what=f"host{host}", reason="log its session out first")
            snapshot = self._snapshot([host_path])
            del self._hosts[host], self._host_kinds[host]
            self._session_specs.pop(host, None)
            self._unlink_subtree(host_path)
            self._removed(batch, snapshot)
        return tuple(events)

    def change(
        self, sys_path: str, attributes: Mapping[str, str] | None = None
    ) -> tuple[Uevent, ...]:
        """Change attributes of a device and announce it: one ``change`` event.

        :param attributes: attribute name -> new text (written with a newline).
        :returns: the event (journalled and, unless ``deliver=False``, sent).
        :raises tracker.exceptions.TestbedError: when there is no such device.
        :raises tracker.exceptions.UeventNotDelivered: as :meth:`plug_lun`.
        """
        with self._returning() as events, self._change() as batch:
            for name, value in (attributes or {}).items():
                self.set_attribute(sys_path, name, value)
            batch.append(self.sender.event("change", sys_path))
        return tuple(events)


def to_device_events(events: Iterable[Uevent]) -> tuple[DeviceEvent, ...]:
    """Convert events for :class:`tracker.host.events.InMemoryEventSource`.

    :returns: one :class:`~tracker.host.events.DeviceEvent` per event, decoded
        by the same function as events a real monitor receives.
    :raises tracker.exceptions.TestbedError: when an event cannot be decoded.
    """
    from tracker.host.events import decode_event

    converted = []
    for event in events:
        device_event = decode_event(event.properties)
        if device_event is None:
            raise TestbedError(what=f"event {event.seqnum}", reason="not a decodable uevent")
        converted.append(device_event)
    return tuple(converted)


def replay_build(
    builder: TopologyBuilder,
    root: Path,
    vectors: Mapping[str, VpdVector] | None = None,
) -> tuple[Topology, tuple[Uevent, ...]]:
    """Build a topology from an empty host through live changes.

    :param builder: a topology builder (``builder(testbed, vectors)``).
    :param root: an empty directory for the testbed.
    :returns: the topology and every event of its build, in order (not sent).
    :raises tracker.exceptions.TestbedError: when the builder fails.
    """
    live = LiveTestbed(root, deliver=False)
    topology = builder(live, vectors)
    return topology, live.events
