"""The predicates of ``rescan_and_wait_for``, where infi.storagemodel users look for them.

``from tracker.predicates import DiskExists`` is
``from infi.storagemodel.predicates import DiskExists`` for tracker; the
classes live in :mod:`tracker.waiting.predicates`, which documents them.
"""

from tracker.waiting.predicates import (
    AnyOf,
    CallablePredicate,
    DiskExists,
    DiskNotExists,
    FiberChannelMappingExists,
    FiberChannelMappingNotExists,
    IscsiSessionExists,
    MultipathPathsAtLeast,
    Not,
    Predicate,
    PredicateList,
    Verdict,
    VolumeAttached,
    VolumeDetached,
    WaitForNothing,
)

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
    "Verdict",
    "VolumeAttached",
    "VolumeDetached",
    "WaitForNothing",
]
