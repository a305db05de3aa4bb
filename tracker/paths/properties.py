"""Connection properties: os-brick's dicts, read into typed, frozen, normalised objects.

A backend describes how to reach a volume with a dict (os-brick's
``connection_properties``, the ``data`` of cinder's ``connection_info``).
:func:`properties_from_dict` reads one into an :class:`IscsiProperties`, an
:class:`FcProperties` or a :class:`LocalProperties`, whose values are in the
normal forms the reconciled model holds, so they compare equal to what
discovery observed. Keys it does not use (``auth_method``, ``auth_password``,
``volume_id``, ``encrypted``, ``qos_specs``, ``discard`` ...) are ignored, and
CHAP credentials are never put in an error message or in ``as_dict()``: a
rejected value that holds the text of a key named ``*password*``,
``*username*`` or ``*secret*`` (or holds such a key) is shown as its type
(``<str>``, ``<dict>``) instead.

Accepted shapes
---------------

The dict may be the properties themselves, or a cinder ``connection_info``:
``{"driver_volume_type": "iscsi", "data": {...}}`` (recognised by its
``driver_volume_type`` key; the properties are then its ``data``, and a
``driver_volume_type`` that is not the protocol asked for is refused).

Everywhere, a key whose value is ``None`` (JSON ``null``) counts as absent, and
so does an empty list for a list key (os-brick tests those lists for truth).

**iSCSI** (os-brick's ``base_iscsi._get_all_targets``):

* single path: ``target_portal``, ``target_iqn``, and ``target_lun``, which is
  0 when absent (os-brick's ``connection_properties.get('target_lun', 0)``);
* multipath: ``target_portals`` with the parallel lists ``target_iqns`` and
  ``target_luns``. Without ``target_iqns`` the single ``target_iqn`` is every
  portal's target; without ``target_luns`` the single ``target_lun`` is every
  portal's LUN (os-brick's ``_get_luns``; here it is needed, as it is there).
  Lists whose lengths differ are refused (os-brick's ``zip`` would silently
  drop paths). When ``target_portals`` is given, the single keys serve only as
  these defaults; when it is not, ``target_iqns`` and ``target_luns`` are
  ignored, as os-brick does.

A portal is :func:`tracker.validation.portal`'s ``address:port`` (port 3260
when none is given, ``[2001:db8::1]:3260`` for IPv6). A target name is
lowercased (RFC 3722 folds case) and must start with ``iqn.``, ``eui.`` or
``naa.``, with at most :data:`MAX_IQN_LENGTH` printable ASCII characters and no
spaces (non-ASCII names are refused before lowercasing, as the storage URIs
refuse them). Repeated (portal, target, LUN) triples are kept once.

**Fibre Channel** (os-brick's ``fibre_channel._add_targets_to_connection_properties``):

* the target ports: ``target_wwns`` (a list), else ``target_wwn`` (a string or
  a list), else, when neither is given, every target port of
  ``initiator_target_map`` (in the order they first appear there);
* the LUNs: ``target_luns`` (a list), else ``target_lun`` (0 when absent, as
  in os-brick). One LUN serves every port; otherwise there must be one per
  port (os-brick's rule);
* ``initiator_target_map``: ``{initiator WWPN: [target WWPNs]}``, optional.

WWNs are accepted in every spelling :func:`tracker.validation.wwn` accepts
(any case, ``0x``, ``:`` or ``-`` separators) and kept as 16 lowercase hex
digits.

**local** (os-brick's ``LocalConnector``): ``device_path``, an absolute path
under ``/dev`` (``/dev/sdb``, ``/dev/loop0``, ``/dev/disk/by-id/...``), kept
in its :func:`posixpath.normpath` form; a path that leaves ``/dev`` once
normalised (``/dev/../etc/passwd``) is refused.

**LUNs** are ``int`` from 0 to 2^64-1 (:func:`tracker.validation.lun`), as
os-brick receives them; a string of decimal ASCII digits (``"1"``) is read as
its number too, since JSON written by hand or by other tools sometimes quotes
them. Signs, spaces, ``bool`` and ``float`` are refused.

Errors
------

Every refusal is a :class:`~tracker.exceptions.InvalidInput`: a needed key
that is absent is :class:`~tracker.exceptions.MissingConnectionProperty`
(whose ``key`` names the alternatives, ``"target_iqn or target_iqns"``), a
value of the wrong type or form is an ``InvalidInput`` whose ``field`` is the
key (``target_luns[1]`` for a list item), and an unknown protocol is
:class:`~tracker.exceptions.UnknownProtocol`. A dict that is not a mapping is
refused without being shown.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeAlias, TypeVar

from tracker import exceptions, validation

__all__ = [
    "MAX_DEVICE_PATH",
    "MAX_IQN_LENGTH",
    "PROTOCOLS",
    "ConnectionProperties",
    "FcProperties",
    "FcTargetLun",
    "IscsiProperties",
    "IscsiTargetLun",
    "LocalProperties",
    "properties_from_dict",
    "protocol_of",
]

#: The protocols connection properties are read for, in their normal names.
PROTOCOLS: tuple[str, ...] = ("iscsi", "fc", "local")

#: The names each protocol is known by (os-brick's ``ISCSI``, ``FIBRE_CHANNEL``,
#: ``LOCAL``; cinder's ``driver_volume_type`` ``iscsi``, ``fibre_channel``),
#: compared in lowercase.
_ALIASES: Mapping[str, str] = {
    "iscsi": "iscsi",
    "fc": "fc",
    "fibre_channel": "fc",
    "local": "local",
}

#: The longest iSCSI name (RFC 7143, section 4.2.7.1).
MAX_IQN_LENGTH = 223
#: The longest device path (Linux's ``PATH_MAX`` less its NUL).
MAX_DEVICE_PATH = 4095
_IQN_PREFIXES = ("iqn.", "eui.", "naa.")
#: The most digits a LUN has (2^64-1 has 20).
_MAX_LUN_DIGITS = 20

#: Words that make a key's value a credential, never shown in an error.
_SECRET_WORDS = ("password", "username", "secret")
#: How deep a rejected value is searched for credentials before it is withheld anyway.
_MAX_SECRET_DEPTH = 16

_T = TypeVar("_T")


# --- values ---------------------------------------------------------------------------------


def _iqn(field: str, value: object) -> str:
    """:returns: an iSCSI target name, lowercase.

    :raises tracker.exceptions.InvalidInput: not text, empty, longer than
        :data:`MAX_IQN_LENGTH`, not printable ASCII, with a space, or not
        starting with ``iqn.``, ``eui.`` or ``naa.``.
    """
    reason = (
        f"an iSCSI name: iqn., eui. or naa. then up to {MAX_IQN_LENGTH} printable ASCII "
        "characters without spaces, e.g. iqn.2010-10.org.openstack:volume-1"
    )
    name = validation.text(field, value, MAX_IQN_LENGTH).strip()
    # checked before lowercasing: str.lower folds some non-ASCII letters (U+212A
    # KELVIN SIGN) into ASCII ones
    if not (name.isascii() and name.isprintable()) or " " in name:
        raise exceptions.InvalidInput(field, value, reason)
    name = name.lower()
    if not name.startswith(_IQN_PREFIXES) or len(name) == len("iqn."):
        raise exceptions.InvalidInput(field, value, reason)
    return name


def _lun(field: str, value: object) -> int:
    """:returns: a LUN given as an ``int`` or as a string of decimal digits.

    :raises tracker.exceptions.InvalidInput: anything else, or a number
        outside 0 to 2^64-1.
    """
    if not isinstance(value, str):
        return validation.lun(field, value)
    if not (value.isascii() and value.isdigit() and len(value) <= _MAX_LUN_DIGITS):
        raise exceptions.InvalidInput(
            field, value, "a LUN: a whole number from 0 to 2^64-1, or a string of its digits"
        )
    try:
        return validation.lun(field, int(value))
    except exceptions.InvalidInput as exc:
        raise exceptions.InvalidInput(field, value, exc.reason) from None


def _device_path(field: str, value: object) -> str:
    """:returns: a device path under ``/dev``, normalised.

    :raises tracker.exceptions.InvalidInput: not text, not printable, not
        absolute, or outside ``/dev`` once normalised.
    """
    reason = "an absolute path under /dev, e.g. /dev/sdb or /dev/disk/by-id/wwn-0x..."
    path = validation.text(field, value, MAX_DEVICE_PATH)
    if not path.isprintable() or not path.startswith("/"):
        raise exceptions.InvalidInput(field, value, reason)
    normal = posixpath.normpath(path)
    # normpath keeps a leading "//", so "//dev/x" stays outside "/dev/"
    if not normal.startswith("/dev/"):
        raise exceptions.InvalidInput(field, value, reason)
    return normal


def _wwn_list(field: str, value: object) -> tuple[str, ...]:
    """:returns: the WWNs of a list, normalised, in their order.

    :raises tracker.exceptions.InvalidInput: not a list, or an item that is not a WWN.
    """
    if not isinstance(value, list | tuple):
        raise exceptions.InvalidInput(field, value, "a list of WWNs")
    return tuple(validation.wwn(f"{field}[{i}]", item) for i, item in enumerate(value))


# --- the typed properties -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IscsiTargetLun:
    """One (portal, target, LUN) an iSCSI volume is reached through.

    The values are normalised when the object is made, so two spellings of one
    path make equal objects.

    :ivar portal: ``address:port`` (:func:`tracker.validation.portal`).
    :ivar iqn: the target name, lowercase.
    :ivar lun: the LUN, 0 to 2^64-1.
    :raises tracker.exceptions.InvalidInput: a value that is not one of those.
    """

    portal: str
    iqn: str
    lun: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "portal", validation.portal("portal", self.portal))
        object.__setattr__(self, "iqn", _iqn("iqn", self.iqn))
        object.__setattr__(self, "lun", validation.lun("lun", self.lun))


@dataclass(frozen=True, slots=True)
class IscsiProperties:
    """An iSCSI volume's paths: one or more (portal, target, LUN).

    :ivar targets: the paths, at least one, each once, in the order given.
    :raises tracker.exceptions.InvalidInput: no target, or an item that is
        not an :class:`IscsiTargetLun`.
    """

    targets: tuple[IscsiTargetLun, ...]
    protocol: ClassVar[str] = "iscsi"

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", _targets("targets", self.targets, IscsiTargetLun))

    def as_dict(self) -> dict[str, object]:
        """Give the properties in os-brick's multipath shape.

        :returns: JSON-ready: ``target_portals``, ``target_iqns``, ``target_luns``,
            and the first path as ``target_portal``, ``target_iqn``, ``target_lun``
            (the shape cinder's drivers give).
        """
        first = self.targets[0]
        return {
            "target_portal": first.portal,
            "target_iqn": first.iqn,
            "target_lun": first.lun,
            "target_portals": [t.portal for t in self.targets],
            "target_iqns": [t.iqn for t in self.targets],
            "target_luns": [t.lun for t in self.targets],
        }


@dataclass(frozen=True, slots=True)
class FcTargetLun:
    """One (target port, LUN) a Fibre Channel volume is reached through.

    :ivar target_wwn: the target port's WWPN, 16 lowercase hex digits.
    :ivar lun: the LUN, 0 to 2^64-1.
    :raises tracker.exceptions.InvalidInput: a value that is not one of those.
    """

    target_wwn: str
    lun: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_wwn", validation.wwn("target_wwn", self.target_wwn))
        object.__setattr__(self, "lun", validation.lun("lun", self.lun))


@dataclass(frozen=True, slots=True)
class FcProperties:
    """A Fibre Channel volume's paths.

    :ivar targets: the (target port, LUN) pairs, at least one, each once, in
        the order given.
    :ivar initiator_target_map: which target ports each initiator port is
        zoned to: ``(initiator, (target, ...))`` pairs, WWNs normalised, both
        levels sorted and without repeats (an initiator given twice has the
        union); ``()`` when the backend gave no map.
    :raises tracker.exceptions.InvalidInput: no target, an item of the wrong
        type, or a map entry that is not an (initiator, targets) pair of WWNs.
    """

    targets: tuple[FcTargetLun, ...]
    initiator_target_map: tuple[tuple[str, tuple[str, ...]], ...] = ()
    protocol: ClassVar[str] = "fc"

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", _targets("targets", self.targets, FcTargetLun))
        object.__setattr__(self, "initiator_target_map", _normal_map(self.initiator_target_map))

    def as_dict(self) -> dict[str, object]:
        """Give the properties in os-brick's shape.

        :returns: JSON-ready: the parallel lists ``target_wwns`` and
            ``target_luns``, and ``initiator_target_map`` when there is one.
        """
        result: dict[str, object] = {
            "target_wwns": [t.target_wwn for t in self.targets],
            "target_luns": [t.lun for t in self.targets],
        }
        if self.initiator_target_map:
            result["initiator_target_map"] = {
                initiator: list(targets) for initiator, targets in self.initiator_target_map
            }
        return result


@dataclass(frozen=True, slots=True)
class LocalProperties:
    """A volume that is a local block device.

    :ivar device_path: its path, absolute, under ``/dev``, normalised.
    :raises tracker.exceptions.InvalidInput: a path that is not one.
    """

    device_path: str
    protocol: ClassVar[str] = "local"

    def __post_init__(self) -> None:
        object.__setattr__(self, "device_path", _device_path("device_path", self.device_path))

    def as_dict(self) -> dict[str, object]:
        """:returns: os-brick's properties, JSON-ready: ``device_path``."""
        return {"device_path": self.device_path}


#: The properties of any protocol.
ConnectionProperties: TypeAlias = IscsiProperties | FcProperties | LocalProperties


def _targets(field: str, value: object, kind: type[_T]) -> tuple[_T, ...]:
    """:returns: ``value``'s items, each once, in order.

    :raises tracker.exceptions.InvalidInput: not a non-empty tuple or list of ``kind``.
    """
    reason = f"a non-empty tuple of {kind.__name__}"
    if not isinstance(value, tuple | list) or not value:
        raise exceptions.InvalidInput(field, value, reason)
    items: list[_T] = []
    for item in value:
        if not isinstance(item, kind):
            raise exceptions.InvalidInput(field, item, reason)
        items.append(item)
    return tuple(dict.fromkeys(items))


def _normal_map(value: object) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """:returns: an initiator-target map as (initiator, targets) pairs, normalised and sorted.

    :raises tracker.exceptions.InvalidInput: not a sequence of (WWN, list of WWNs) pairs.
    """
    field = "initiator_target_map"
    if not isinstance(value, tuple | list):
        raise exceptions.InvalidInput(field, value, "a tuple of (initiator, targets) pairs")
    merged: dict[str, set[str]] = {}
    for pair in value:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise exceptions.InvalidInput(field, pair, "an (initiator, targets) pair")
        initiator = validation.wwn(field, pair[0])
        merged.setdefault(initiator, set()).update(_wwn_list(f"{field}[{initiator}]", pair[1]))
    return tuple((initiator, tuple(sorted(merged[initiator]))) for initiator in sorted(merged))


# --- reading os-brick's dicts ---------------------------------------------------------------


class _Withheld:
    """Stands in an error for a value that is not shown: it may hold credentials."""

    __slots__ = ("_type_name",)

    def __init__(self, value: object) -> None:
        self._type_name = type(value).__name__

    def __repr__(self) -> str:
        return f"<{self._type_name}>"


def protocol_of(name: object) -> str:
    """Normalise a protocol name: tracker's, os-brick's or cinder's spelling, in any case.

    ``iscsi``/``ISCSI`` -> ``iscsi``; ``fc``/``fibre_channel``/``FIBRE_CHANNEL``
    -> ``fc``; ``local``/``LOCAL`` -> ``local``.

    :returns: one of :data:`PROTOCOLS`.
    :raises tracker.exceptions.UnknownProtocol: anything else (another
        protocol, not a string).
    """
    if isinstance(name, str) and name.isascii():
        protocol = _ALIASES.get(name.lower())
        if protocol is not None:
            return protocol
    raise exceptions.UnknownProtocol(name, PROTOCOLS)


def properties_from_dict(protocol: str, data: Mapping[str, object]) -> ConnectionProperties:
    """Read os-brick's connection properties (or a cinder ``connection_info``).

    See the module for the accepted shapes.

    :param protocol: the protocol they are for (any name :func:`protocol_of` knows).
    :param data: the properties, or ``{"driver_volume_type": ..., "data": {...}}``.
    :returns: the typed properties of that protocol.
    :raises tracker.exceptions.UnknownProtocol: an unknown protocol.
    :raises tracker.exceptions.MissingConnectionProperty: a needed key is absent.
    :raises tracker.exceptions.InvalidInput: ``data`` (or its ``data``) is not a
        mapping, a ``driver_volume_type`` of another protocol, or a value of
        the wrong type or form.
    """
    normal = protocol_of(protocol)
    if not isinstance(data, Mapping):
        raise exceptions.InvalidInput(
            "connection_properties", _Withheld(data), "a mapping of os-brick connection properties"
        )
    try:
        properties = _unwrapped(normal, data)
        if normal == "iscsi":
            return _iscsi(properties)
        if normal == "fc":
            return _fc(properties)
        return _local(properties)
    except exceptions.MissingConnectionProperty:
        raise  # its message is made of key names only
    except exceptions.InvalidInput as exc:
        secrets = _secrets(data)
        if any(secret in str(exc) for secret in secrets) or _holds(exc.value, secrets, 0):
            raise _redacted(exc, secrets) from None
        raise


def _secrets(data: Mapping[str, object]) -> list[str]:
    """:returns: the credentials in ``data`` and in its ``data``: the text values
    of the keys named like :data:`_SECRET_WORDS` (``auth_password``,
    ``discovery_auth_username`` ...).
    """
    found: list[str] = []
    for level in (data, data.get("data")):
        if isinstance(level, Mapping):
            found.extend(
                value
                for key, value in level.items()
                if _secret_key(key) and isinstance(value, str) and value
            )
    return found


def _secret_key(key: object) -> bool:
    """:returns: whether ``key`` names a credential (see :data:`_SECRET_WORDS`)."""
    return isinstance(key, str) and any(word in key.lower() for word in _SECRET_WORDS)


def _holds(value: object, secrets: list[str], depth: int) -> bool:
    """:returns: whether ``value``, or anything in it, has one of ``secrets`` in it."""
    if depth > _MAX_SECRET_DEPTH:
        return True  # too deep to tell: withhold it
    if isinstance(value, str):
        return any(secret in value for secret in secrets)
    if isinstance(value, Mapping):
        return any(
            _secret_key(key) or _holds(key, secrets, depth + 1) or _holds(item, secrets, depth + 1)
            for key, item in value.items()
        )
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds(item, secrets, depth + 1) for item in value)
    return False


def _redacted(exc: exceptions.InvalidInput, secrets: list[str]) -> exceptions.InvalidInput:
    """:returns: ``exc`` with its value withheld and the credentials in its text as ``***``."""
    field, reason = exc.field, exc.reason
    for secret in secrets:
        field, reason = field.replace(secret, "***"), reason.replace(secret, "***")
    return exceptions.InvalidInput(
        field, _Withheld(exc.value), f"{reason}; not shown: it holds a credential"
    )


def _unwrapped(protocol: str, data: Mapping[str, object]) -> Mapping[str, object]:
    """:returns: the properties of a cinder ``connection_info``, or ``data`` itself.

    :raises tracker.exceptions.InvalidInput: a ``driver_volume_type`` of
        another protocol, or a ``data`` that is not a mapping.
    :raises tracker.exceptions.MissingConnectionProperty: no ``data``.
    """
    volume_type = data.get("driver_volume_type")
    if volume_type is None:
        return data
    try:
        given = protocol_of(volume_type)
    except exceptions.UnknownProtocol:
        given = None
    if given != protocol:
        raise exceptions.InvalidInput(
            "driver_volume_type", volume_type, f"the connection_info of a {protocol} volume"
        )
    inner = data.get("data")
    if inner is None:
        raise exceptions.MissingConnectionProperty(protocol, "data")
    if not isinstance(inner, Mapping):
        raise exceptions.InvalidInput(
            "data", _Withheld(inner), "the connection_info's data: a mapping of properties"
        )
    return inner


def _items(data: Mapping[str, object], key: str) -> Sequence[object] | None:
    """:returns: the list under ``key``, or ``None`` when it is absent, ``None`` or empty.

    :raises tracker.exceptions.InvalidInput: a value that is not a list.
    """
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise exceptions.InvalidInput(key, value, "a list")
    return value or None


def _iscsi(data: Mapping[str, object]) -> IscsiProperties:
    portals = _items(data, "target_portals")
    if portals is None:
        portal = data.get("target_portal")
        if portal is None:
            raise exceptions.MissingConnectionProperty("iscsi", "target_portal or target_portals")
        iqn = data.get("target_iqn")
        if iqn is None:
            raise exceptions.MissingConnectionProperty("iscsi", "target_iqn or target_iqns")
        lun = data.get("target_lun")
        target = IscsiTargetLun(
            validation.portal("target_portal", portal),
            _iqn("target_iqn", iqn),
            0 if lun is None else _lun("target_lun", lun),
        )
        return IscsiProperties((target,))
    checked = [validation.portal(f"target_portals[{i}]", p) for i, p in enumerate(portals)]
    iqns = _parallel(data, "target_iqns", "target_iqn", len(checked), _iqn)
    luns = _parallel(data, "target_luns", "target_lun", len(checked), _lun)
    return IscsiProperties(
        tuple(IscsiTargetLun(*path) for path in zip(checked, iqns, luns, strict=True))
    )


def _parallel(
    data: Mapping[str, object],
    plural: str,
    single: str,
    count: int,
    check: Callable[[str, object], _T],
) -> list[_T]:
    """:returns: the ``count`` values of the list ``plural`` parallel to
    ``target_portals``, or ``single`` repeated.

    :raises tracker.exceptions.MissingConnectionProperty: neither is given.
    :raises tracker.exceptions.InvalidInput: a list of another length, or a bad value.
    """
    items = _items(data, plural)
    if items is None:
        value = data.get(single)
        if value is None:
            raise exceptions.MissingConnectionProperty("iscsi", f"{single} or {plural}")
        return [check(single, value)] * count
    if len(items) != count:
        raise exceptions.InvalidInput(
            plural,
            items,
            f"{len(items)} items, but target_portals has {count}: "
            f"target_portals and {plural} are parallel lists",
        )
    return [check(f"{plural}[{i}]", item) for i, item in enumerate(items)]


def _fc(data: Mapping[str, object]) -> FcProperties:
    zoning, zoned = _initiator_target_map(data.get("initiator_target_map"))
    source, ports = _fc_ports(data, zoned)
    given = _items(data, "target_luns")
    if given is None:
        lun = data.get("target_lun")
        luns = [0 if lun is None else _lun("target_lun", lun)]
    else:
        luns = [_lun(f"target_luns[{i}]", item) for i, item in enumerate(given)]
    if len(luns) == 1:
        luns *= len(ports)
    elif len(luns) != len(ports):
        raise exceptions.InvalidInput(
            "target_luns",
            given,
            f"{len(luns)} LUNs for the {len(ports)} WWNs of {source}: "
            "one LUN for every port, or one per port",
        )
    return FcProperties(
        tuple(FcTargetLun(*target) for target in zip(ports, luns, strict=True)), zoning
    )


def _fc_ports(data: Mapping[str, object], zoned: list[str]) -> tuple[str, list[str]]:
    """:returns: the key the target ports came from, and the ports (see the module).

    :raises tracker.exceptions.MissingConnectionProperty: no target port anywhere.
    :raises tracker.exceptions.InvalidInput: a value that is not a WWN or a list of them.
    """
    plural = _items(data, "target_wwns")
    if plural is not None:
        return "target_wwns", list(_wwn_list("target_wwns", plural))
    single = data.get("target_wwn")
    if isinstance(single, list | tuple):
        if single:
            return "target_wwn", list(_wwn_list("target_wwn", single))
    elif single is not None:
        return "target_wwn", [validation.wwn("target_wwn", single)]
    if zoned:
        return "initiator_target_map", zoned
    raise exceptions.MissingConnectionProperty(
        "fc", "target_wwn, target_wwns or initiator_target_map"
    )


def _initiator_target_map(
    value: object,
) -> tuple[tuple[tuple[str, tuple[str, ...]], ...], list[str]]:
    """:returns: the map as (initiator, targets) pairs, and its target ports in
    the order they first appear.

    :raises tracker.exceptions.InvalidInput: not a mapping of WWNs to lists of WWNs.
    """
    if value is None:
        return (), []
    field = "initiator_target_map"
    if not isinstance(value, Mapping):
        raise exceptions.InvalidInput(
            field, value, "a mapping of initiator WWNs to lists of target WWNs"
        )
    pairs: list[tuple[str, tuple[str, ...]]] = []
    for key, targets in value.items():
        initiator = validation.wwn(field, key)
        pairs.append((initiator, _wwn_list(f"{field}[{exceptions.short_repr(key)}]", targets)))
    zoned = dict.fromkeys(target for _, targets in pairs for target in targets)
    return tuple(pairs), list(zoned)


def _local(data: Mapping[str, object]) -> LocalProperties:
    path = data.get("device_path")
    if path is None:
        raise exceptions.MissingConnectionProperty("local", "device_path")
    return LocalProperties(_device_path("device_path", path))
