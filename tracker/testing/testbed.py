"""Simulated storage hosts: the one import place for tests.

The code lives in modules split by job; this module re-exports their public
names so that ``from tracker.testing.testbed import Testbed, LunSpec, ...``
keeps working:

* :mod:`tracker.testing.specs`: typed, frozen specs (:class:`Hctl`,
  :class:`LunSpec` ...) and the kernel's sd naming;
* :mod:`tracker.testing.builder`: :class:`Testbed`, which writes
  umockdev-compatible sysfs trees;
* :mod:`tracker.testing.umockdev`: running programs against a testbed
  (umockdev's preload, ``lsscsi -y``) and the skip rule for optional tools;
* :mod:`tracker.testing.uevents`: uevents for ``pyudev.Monitor`` under the
  preload;
* :mod:`tracker.testing.live`: live changes (hot-plug) on a testbed, with
  the kernel's events in the kernel's order;
* :mod:`tracker.testing.scanfifo`: a responder to writes to a host's
  ``scan`` file.
"""

from __future__ import annotations

from tracker.testing.builder import Testbed
from tracker.testing.specs import (
    DiskSpec,
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
    sd_devnum,
    sd_name,
)
from tracker.testing.umockdev import (
    PRELOAD_LIBRARY,
    LsscsiRow,
    find_preload_library,
    preload_environment,
    require_lsscsi,
    require_no_udevd,
    require_preload_library,
    run_lsscsi,
    run_under_preload,
    unavailable,
)

__all__ = [
    "PRELOAD_LIBRARY",
    "DiskSpec",
    "FcHbaSpec",
    "FcRemotePortSpec",
    "Hctl",
    "HostSpec",
    "IscsiHostSpec",
    "IscsiSessionSpec",
    "LsscsiRow",
    "LunSpec",
    "MultipathSpec",
    "SasEndDeviceSpec",
    "SasHostSpec",
    "Testbed",
    "find_preload_library",
    "preload_environment",
    "require_lsscsi",
    "require_no_udevd",
    "require_preload_library",
    "run_lsscsi",
    "run_under_preload",
    "sd_devnum",
    "sd_name",
    "unavailable",
]
