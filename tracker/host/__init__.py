"""The host layer: reading a host's storage devices into plain records.

* :mod:`tracker.host.records` - the frozen :class:`DeviceRecord`.
* :mod:`tracker.host.wanted` - which devices and attributes are read.
* :mod:`tracker.host.sources` - :class:`PyudevSource` and
  :class:`SysfsTreeSource`, both :class:`DeviceSource`.
* :mod:`tracker.host.capture` - recording a host's sysfs for offline replay.
* :mod:`tracker.host.executor` - the injectable command runner.
"""

from tracker.host.records import DeviceRecord
from tracker.host.sources import DeviceSource, PyudevSource, SysfsTreeSource, open_source

__all__ = ["DeviceRecord", "DeviceSource", "PyudevSource", "SysfsTreeSource", "open_source"]
