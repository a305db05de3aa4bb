"""Checks applied to everything users hand to tracker, before anything is written."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tracker import exceptions

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

MAX_SIZE_GIB = 2**31 - 1
MAX_NAME = 255


def json_document(field: str, value: object, *, config: bool = False) -> dict[str, Any]:
    """Validate a JSON object and return a normalised deep copy of it.

    Tuples become lists; keys must be strings; floats must be finite. The copy
    is exactly what the store will give back, so an object compares equal to
    itself after a round trip.

    :param field: what the value is, for the error message.
    :param value: the candidate mapping.
    :param config: raise :class:`~tracker.exceptions.ConfigError` rather than
        :class:`~tracker.exceptions.InvalidInput` (for backend configuration).
    :returns: the normalised copy.
    :raises tracker.exceptions.InvalidInput: ``value`` is not a JSON object.
    :raises tracker.exceptions.ConfigError: the same, when ``config`` is set.
    """
    if value is None:
        return {}
    try:
        if not isinstance(value, Mapping):
            raise _NotJson(f"expected a mapping, got {type(value).__name__}")
        normalised = _json_value(value, field)
    except _NotJson as exc:
        if config:
            raise exceptions.ConfigError(field, str(exc)) from None
        raise exceptions.InvalidInput(field, value, str(exc)) from None
    assert isinstance(normalised, dict)
    return normalised


class _NotJson(Exception):
    pass


def _json_value(value: object, path: str) -> JsonValue:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJson(f"{path} is {value}, which JSON cannot hold")
        return value
    if isinstance(value, list | tuple):
        return [_json_value(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, Mapping):
        result: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotJson(f"{path} has a non-string key {key!r}")
            result[key] = _json_value(item, f"{path}.{key}")
        return result
    raise _NotJson(f"{path} holds a {type(value).__name__}, which is not JSON")


def size_gib(field: str, value: object) -> int:
    """:returns: ``value`` as a size in GiB.

    :raises tracker.exceptions.InvalidInput: not a whole number from 1 to 2^31-1.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise exceptions.InvalidInput(field, value, "a whole number of GiB")
    if not 1 <= value <= MAX_SIZE_GIB:
        raise exceptions.InvalidInput(field, value, f"between 1 and {MAX_SIZE_GIB} GiB")
    return value


def optional_text(field: str, value: object, max_length: int = MAX_NAME) -> str | None:
    """:returns: ``value`` when it is ``None`` or a short enough string.

    :raises tracker.exceptions.InvalidInput: anything else.
    """
    if value is None:
        return None
    return text(field, value, max_length, allow_empty=True)


def text(
    field: str, value: object, max_length: int = MAX_NAME, *, allow_empty: bool = False
) -> str:
    """:returns: ``value`` when it is a string of acceptable length.

    :raises tracker.exceptions.InvalidInput: anything else.
    """
    if not isinstance(value, str):
        raise exceptions.InvalidInput(field, value, "a string")
    if not allow_empty and not value:
        raise exceptions.InvalidInput(field, value, "must not be empty")
    if len(value) > max_length:
        raise exceptions.InvalidInput(field, value, f"at most {max_length} characters")
    return value


def choice(field: str, value: object, allowed: tuple[str, ...]) -> str:
    """:returns: ``value`` when it is one of ``allowed``.

    :raises tracker.exceptions.InvalidInput: anything else.
    """
    if not isinstance(value, str) or value not in allowed:
        raise exceptions.InvalidInput(field, value, f"one of {', '.join(allowed)}")
    return value
