"""Checks applied to everything users hand to tracker, before anything is written.

One rule per kind of value, used by every path that takes such a value (the
API, ``save()``, ``tracker load``, the key-value pairs), so a value is accepted
or refused the same way wherever it comes in and on every database:

* **text** (:func:`text`): a ``str`` without NUL characters (PostgreSQL cannot
  store them) and without lone surrogates (they are not Unicode text and cannot
  be encoded), within the column's length.
* **ids** (:func:`identifier`): text of 1 to :data:`MAX_ID` printable
  characters -- the schema's ``String(36)``, which a UUID fills exactly.
* **JSON** (:func:`json_document`): a mapping of text keys to ``None``, bools,
  integers in :data:`JSON_INT_RANGE`, finite floats, text, lists and mappings,
  nested at most :data:`MAX_JSON_DEPTH` deep, without cycles, and at most
  :data:`MAX_JSON_BYTES` as compact UTF-8 JSON.
* **integers** (:func:`integer`): ``int`` (not ``bool``) within the range of the
  column they go into.
* **timestamps** (:func:`timestamp`): timezone-aware, from :data:`EARLIEST` to
  :data:`LATEST` once converted to UTC, which every supported database stores.
* **FC port names** (:func:`wwn`): 16 hex digits in any spelling users write
  (``0x10000000C9ABCDEF``, ``10:00:00:00:c9:ab:cd:ef``, ``10-00-...``), kept
  as the 16 lowercase digits the observed rows hold.
* **LUNs** (:func:`lun`): the integer users write, 0 to 2^64-1.
* **iSCSI portals** (:func:`portal`): ``address[:port]`` (an IPv6 address in
  brackets when a port follows), kept as ``address:port`` with the default port
  3260, the form the observed sessions hold.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import math
from collections.abc import Mapping
from typing import Any

from tracker import exceptions

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

MAX_SIZE_GIB = 2**31 - 1
MAX_NAME = 255
#: the schema's ``String(36)`` id columns
MAX_ID = 36
#: ``Integer`` columns (``version``): signed 32 bits on every database
MAX_INT32 = 2**31 - 1
#: how deep JSON values may nest: objects and lists, the top-level object
#: counting as 1 (MariaDB's JSON_VALID refuses 32 levels)
MAX_JSON_DEPTH = 31
#: how large one JSON value may be, as compact UTF-8 JSON
MAX_JSON_BYTES = 64 * 1024
#: integers JSON values may hold: signed or unsigned 64-bit
JSON_INT_RANGE = (-(2**63), 2**64 - 1)
#: the key-value keys' ``String(255)``
MAX_KEY = 255
#: the key-value values' ``Text`` (64 KiB on MariaDB), in UTF-8 bytes
MAX_VALUE_BYTES = 65535
#: timestamps every database stores (after conversion to UTC)
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)


def _text_problem(value: str) -> str | None:
    """:returns: why ``value`` cannot be stored as text on every database, or ``None``."""
    position = value.find("\x00")
    if position >= 0:
        return f"contains a NUL character at position {position}, which databases cannot store"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"contains a lone surrogate {value[exc.start]!r} at position {exc.start}, "
            "which is not Unicode text"
        )
    return None


def text(
    field: str, value: object, max_length: int = MAX_NAME, *, allow_empty: bool = False
) -> str:
    """:returns: ``value`` when it is clean text of acceptable length.

    :raises tracker.exceptions.InvalidInput: anything else.
    """
    if not isinstance(value, str):
        raise exceptions.InvalidInput(field, value, "a string")
    if not allow_empty and not value:
        raise exceptions.InvalidInput(field, value, "must not be empty")
    if len(value) > max_length:
        raise exceptions.InvalidInput(field, value, f"at most {max_length} characters")
    problem = _text_problem(value)
    if problem is not None:
        raise exceptions.InvalidInput(field, value, problem)
    return str.__str__(value)


def optional_text(field: str, value: object, max_length: int = MAX_NAME) -> str | None:
    """:returns: ``value`` when it is ``None`` or clean, short enough text.

    :raises tracker.exceptions.InvalidInput: anything else.
    """
    if value is None:
        return None
    return text(field, value, max_length, allow_empty=True)


def identifier(field: str, value: object) -> str:
    """:returns: ``value`` when it can be a record id.

    An id is text of 1 to :data:`MAX_ID` printable characters (the schema's
    ``String(36)``; a UUID in its canonical form fills it exactly).

    :raises tracker.exceptions.InvalidInput: anything else.
    """
    reason = f"an id is a string of 1 to {MAX_ID} printable characters, such as a UUID"
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID:
        raise exceptions.InvalidInput(field, value, reason)
    problem = _text_problem(value)
    if problem is not None:
        raise exceptions.InvalidInput(field, value, problem)
    if not value.isprintable():
        raise exceptions.InvalidInput(field, value, reason)
    return str.__str__(value)


def optional_identifier(field: str, value: object) -> str | None:
    """:returns: ``value`` when it is ``None`` or an id (see :func:`identifier`).

    :raises tracker.exceptions.InvalidInput: anything else.
    """
    return None if value is None else identifier(field, value)


def integer(field: str, value: object, minimum: int, maximum: int) -> int:
    """:returns: ``value`` when it is an ``int`` (not a ``bool``) from ``minimum`` to ``maximum``.

    :raises tracker.exceptions.InvalidInput: anything else.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise exceptions.InvalidInput(field, value, "a whole number")
    if not minimum <= value <= maximum:
        raise exceptions.InvalidInput(field, value, f"between {minimum} and {maximum}")
    return int(value)


def boolean(field: str, value: object) -> bool:
    """:returns: ``value`` when it is ``True`` or ``False``.

    :raises tracker.exceptions.InvalidInput: anything else (``0``, ``"yes"`` ...).
    """
    if not isinstance(value, bool):
        raise exceptions.InvalidInput(field, value, "True or False")
    return value


def size_gib(field: str, value: object) -> int:
    """:returns: ``value`` as a size in GiB.

    :raises tracker.exceptions.InvalidInput: not a whole number from 1 to 2^31-1.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise exceptions.InvalidInput(field, value, "a whole number of GiB")
    if not 1 <= value <= MAX_SIZE_GIB:
        raise exceptions.InvalidInput(field, value, f"between 1 and {MAX_SIZE_GIB} GiB")
    return int(value)


def choice(field: str, value: object, allowed: tuple[str, ...]) -> str:
    """:returns: ``value`` when it is one of ``allowed``.

    :raises tracker.exceptions.InvalidInput: anything else.
    """
    if not isinstance(value, str) or value not in allowed:
        raise exceptions.InvalidInput(field, value, f"one of {', '.join(allowed)}")
    return str.__str__(value)


def timestamp(field: str, value: object) -> dt.datetime:
    """:returns: ``value`` (a ``datetime`` or ISO 8601 text) as an aware ``datetime``.

    :raises tracker.exceptions.InvalidInput: not a timestamp, without a time
        zone, or outside :data:`EARLIEST` .. :data:`LATEST` in UTC.
    """
    parsed = value
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if not isinstance(parsed, dt.datetime):
        raise exceptions.InvalidInput(field, value, "an ISO 8601 timestamp")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise exceptions.InvalidInput(field, value, "a timestamp with a time zone")
    try:
        in_utc = parsed.astimezone(dt.UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST <= in_utc <= LATEST:
        raise exceptions.InvalidInput(
            field, value, "a time from 1970-01-01 to 9999-12-31 (UTC), which every database stores"
        )
    return parsed


def key_value_key(field: str, value: object) -> str:
    """:returns: ``value`` when it can be a key of the key-value pairs (1 to 255 characters).

    :raises tracker.exceptions.InvalidInput: anything else.
    """
    return text(field, value, MAX_KEY)


def key_value_value(field: str, value: object) -> str:
    """:returns: ``value`` when it can be stored as a key-value value.

    :raises tracker.exceptions.InvalidInput: not text, or over
        :data:`MAX_VALUE_BYTES` bytes in UTF-8.
    """
    checked = text(field, value, MAX_VALUE_BYTES, allow_empty=True)
    size = len(checked.encode("utf-8"))
    if size > MAX_VALUE_BYTES:
        raise exceptions.InvalidInput(
            field, value, f"{size} bytes in UTF-8; at most {MAX_VALUE_BYTES}"
        )
    return checked


#: The characters of a WWN, once separators and a ``0x`` prefix are gone.
_HEX_DIGITS = frozenset("0123456789abcdef")
_WWN_SEPARATORS = str.maketrans("", "", ":-")
#: The largest LUN (LUNs are 64-bit).
MAX_LUN = 2**64 - 1
#: The TCP port of an iSCSI portal given without one (RFC 7143).
ISCSI_PORT = 3260


def wwn(field: str, value: object) -> str:
    """Normalise a Fibre Channel port or node name (WWPN/WWNN) as users write it.

    Accepted: 16 hex digits in either case, optionally prefixed with ``0x``,
    optionally grouped with ``:`` or ``-`` separators
    (``0x10000000C9ABCDEF``, ``10:00:00:00:c9:ab:cd:ef``,
    ``10-00-00-00-C9-AB-CD-EF``, ``10000000c9abcdef``).

    :returns: the 16 lowercase hex digits (the form the observed rows hold).
    :raises tracker.exceptions.InvalidInput: anything else -- fewer or more
        digits, a character that is not a hex digit, not a string.
    """
    reason = "a WWN is 16 hex digits, e.g. 0x10000000c9abcdef or 10:00:00:00:c9:ab:cd:ef"
    if not isinstance(value, str):
        raise exceptions.InvalidInput(field, value, reason)
    digits = value.strip().lower()
    if digits.startswith("0x"):
        digits = digits[2:]
    digits = digits.translate(_WWN_SEPARATORS)
    if len(digits) != 16 or not _HEX_DIGITS.issuperset(digits):
        raise exceptions.InvalidInput(field, value, reason)
    return digits


def lun(field: str, value: object) -> int:
    """:returns: ``value`` when it is a LUN number (an ``int`` from 0 to 2^64-1).

    :raises tracker.exceptions.InvalidInput: anything else.
    """
    return integer(field, value, 0, MAX_LUN)


def portal(field: str, value: object) -> str:
    """Normalise an iSCSI portal: ``address``, ``address:port``, ``[v6]:port``, a bare IPv6.

    :returns: ``address:port`` (``[address]:port`` for IPv6), the address in
        lowercase, the port 3260 when none was given.
    :raises tracker.exceptions.InvalidInput: empty, a port that is not a
        number from 1 to 65535, or an unbalanced bracket.
    """
    reason = "an iSCSI portal is address[:port], e.g. 192.0.2.10:3260 or [2001:db8::1]:3260"
    checked = text(field, value).strip().lower()
    address, port_text = checked, ""
    if checked.startswith("["):
        address, bracket, rest = checked[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise exceptions.InvalidInput(field, value, reason)
        port_text = rest[1:]
    elif checked.count(":") == 1:
        address, _, port_text = checked.partition(":")
    if checked.startswith("[") or ":" in address:
        try:
            address = str(ipaddress.IPv6Address(address))
        except ValueError:
            raise exceptions.InvalidInput(field, value, reason) from None
    if not address or any(c.isspace() or c in "[]/" for c in address):
        raise exceptions.InvalidInput(field, value, reason)
    port = ISCSI_PORT
    if port_text or checked.endswith(":"):
        if not (port_text.isascii() and port_text.isdigit() and 1 <= int(port_text) <= 65535):
            raise exceptions.InvalidInput(field, value, reason)
        port = int(port_text)
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def store(field: str, value: object) -> Any:
    """:returns: ``value`` when it is a :class:`~tracker.db.store.Store`.

    :raises tracker.exceptions.InvalidInput: anything else (a URL, ``None`` ...).
    """
    from tracker.db.store import Store

    if not isinstance(value, Store):
        raise exceptions.InvalidInput(
            field, value, "an open Store (tracker.open_store(url)), not a URL or anything else"
        )
    return value


# --- JSON ----------------------------------------------------------------------


def json_document(field: str, value: object, *, config: bool = False) -> dict[str, Any]:
    """Validate a JSON object and return a normalised deep copy of it.

    Tuples become lists; keys must be strings; floats must be finite; see the
    module's rules for depth, size, cycles and text. The copy is exactly what
    the store will give back, so an object compares equal to itself after a
    round trip.

    :param field: what the value is, for the error message.
    :param value: the candidate mapping.
    :param config: raise :class:`~tracker.exceptions.ConfigError` rather than
        :class:`~tracker.exceptions.InvalidInput` (for backend configuration).
    :returns: the normalised copy.
    :raises tracker.exceptions.InvalidInput: ``value`` is not a JSON object
        tracker can store.
    :raises tracker.exceptions.ConfigError: the same, when ``config`` is set.
    """
    if value is None:
        return {}
    try:
        if not isinstance(value, Mapping):
            raise _NotJson(f"expected a mapping, got {type(value).__name__}")
        walker = _JsonWalker(field)
        normalised = walker.value(value, field, 1)
        size = len(
            json.dumps(normalised, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        )
        if size > MAX_JSON_BYTES:
            raise _NotJson(f"{size} bytes as JSON; at most {MAX_JSON_BYTES}")
    except _NotJson as exc:
        if config:
            raise exceptions.ConfigError(field, str(exc)) from None
        raise exceptions.InvalidInput(field, value, str(exc)) from None
    assert isinstance(normalised, dict)
    return normalised


class _NotJson(Exception):
    pass


class _JsonWalker:
    """One pass over a candidate JSON value, with a budget that bounds the work.

    ``budget`` counts a lower bound of the value's JSON size as it is walked,
    so a huge value, or a small graph that shares lists many times over, is
    refused after at most :data:`MAX_JSON_BYTES` steps rather than expanded.
    """

    def __init__(self, field: str) -> None:
        self.field = field
        self.budget = 0
        self.on_path: set[int] = set()

    def spend(self, amount: int) -> None:
        self.budget += amount
        if self.budget > MAX_JSON_BYTES:
            raise _NotJson(f"larger than {MAX_JSON_BYTES} bytes as JSON")

    def text(self, value: str, path: str, what: str) -> str:
        self.spend(len(value) + 2)
        problem = _text_problem(value)
        if problem is not None:
            raise _NotJson(f"{what} at {path} {problem}")
        return str.__str__(value)

    def value(self, value: object, path: str, depth: int) -> JsonValue:
        if value is None or isinstance(value, bool):
            self.spend(4)
            return value
        if isinstance(value, str):
            return self.text(value, path, "the string")
        if isinstance(value, int):
            low, high = JSON_INT_RANGE
            if not low <= value <= high:
                raise _NotJson(f"{path} is an integer outside {low}..{high}")
            self.spend(1)
            return int(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise _NotJson(f"{path} is {value}, which JSON cannot hold")
            self.spend(1)
            return float(value)
        if not isinstance(value, list | tuple | Mapping):
            raise _NotJson(f"{path} holds a {type(value).__name__}, which is not JSON")
        if depth > MAX_JSON_DEPTH:
            raise _NotJson(f"{path} is nested deeper than {MAX_JSON_DEPTH} levels")
        if id(value) in self.on_path:
            raise _NotJson(f"{path} contains itself")
        self.on_path.add(id(value))
        self.spend(2)
        try:
            if isinstance(value, Mapping):
                result: dict[str, JsonValue] = {}
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise _NotJson(f"{path} has a non-string key {_short(key)}")
                    clean = self.text(key, path, f"the key {_short(key)}")
                    result[clean] = self.value(item, f"{path}.{key}", depth + 1)
                return result
            return [
                self.value(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value)
            ]
        finally:
            self.on_path.discard(id(value))


def _short(value: object, limit: int = 40) -> str:
    shown = repr(value)
    return shown if len(shown) <= limit else f"{shown[:limit]}..."


#: The prefixes a WWN or WWID may be written with (dropped to compare them).
WWN_PREFIXES: tuple[str, ...] = ("naa.", "eui.", "0x")


def wwn_forms(value: str | None) -> tuple[str, ...]:
    """The spellings a volume's WWN or a device's WWID may be matched by.

    The one rule by which a device is linked to a tracked volume (reconcile)
    and a path is said to belong to one (:mod:`tracker.paths`): lowercase,
    with and without a ``naa.``, ``eui.`` or ``0x`` prefix, and a WWID in
    scsi_id's form (``3`` + an NAA name, ``2`` + an EUI-64) with and without its
    designator type.

    :returns: the forms (empty for no value). Never raises.
    """
    if not value:
        return ()
    text = value.strip().lower()
    for prefix in WWN_PREFIXES:
        if text.startswith(prefix):
            return (text, text[len(prefix) :])
    # scsi_id's (and multipath's) WWID: the designator type, then its hex digits
    # (3: NAA, 16 or 32 digits; 2: EUI-64, 16 digits)
    if _HEX_DIGITS.issuperset(text) and (
        (text[:1] == "3" and len(text) in (17, 33)) or (text[:1] == "2" and len(text) == 17)
    ):
        return (text, text[1:])
    return (text,)
