"""Bad input at the API: typed InvalidInput on every database, nothing stored changed.

Each case is run against SQLite, PostgreSQL and MariaDB (the ``store``
fixture) and checks that the error is :class:`~tracker.exceptions.InvalidInput`
(never a driver error, ``UnicodeEncodeError``, ``RecursionError`` or
``TypeError``) and that a dump of the store is the same before and after.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tracker import exceptions, validation
from tracker.db.store import Store
from tracker.reconcile import journal, observed_host, observed_hosts
from tracker.report import status
from tracker.resources import Backend, Volume, VolumeSpec
from tracker.serialization import dump, dumps, load

BAD_IDS = [4242, "", "x" * 37, "x" * 100, b"bytes", "a\x00b", "a\ud800b", "tab\there"]
NUL = "x\x00y"
SURROGATE = "x\ud800y"


@pytest.fixture
def volume(backend: Backend) -> Volume:
    return backend.create_volume(1, "vol", status="available", metadata={"k": "v"})


@pytest.fixture
def unchanged(store: Store, volume: Volume) -> Iterator[None]:
    """Assert that the test leaves every stored record as it found it."""
    store.set_key_value("k", "v")
    before = dumps(store)
    yield
    assert dumps(store) == before


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"d": value}
    return value


def _cyclic() -> dict[str, Any]:
    value: dict[str, Any] = {"a": [1]}
    value["a"].append(value)
    return value


# --- ids ------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_IDS, ids=repr)
@pytest.mark.usefixtures("unchanged")
def test_bad_ids_are_refused_everywhere_they_are_taken(
    backend: Backend, volume: Volume, bad: Any
) -> None:
    calls: list[tuple[str, Callable[[], object]]] = [
        ("volume_id", lambda: backend.create_volume(1, volume_id=bad)),
        ("volume_id", lambda: backend.create_volumes([VolumeSpec(1, id=bad)])),
        ("volume_id", lambda: backend.get_volume(bad)),
        ("snapshot_id", lambda: volume.create_snapshot(snapshot_id=bad)),
        ("connection_id", lambda: volume.connect({"host": "h"}, connection_id=bad)),
    ]
    for field, call in calls:
        with pytest.raises(exceptions.InvalidInput) as raised:
            call()
        assert raised.value.field == field
        assert raised.value.value is bad


def test_an_id_of_36_characters_is_taken(backend: Backend) -> None:
    chosen = "v" * validation.MAX_ID
    created = backend.create_volume(1, volume_id=chosen, status="available")
    assert created.id == chosen
    Backend.backends.clear()
    assert Backend.load(backend.store, backend.name).get_volume(chosen).id == chosen


def test_the_id_error_says_what_an_id_is(backend: Backend) -> None:
    with pytest.raises(exceptions.InvalidInput) as raised:
        backend.create_volume(1, volume_id=4242)  # type: ignore[arg-type]
    assert str(raised.value) == (
        "invalid volume_id: 4242 (an id is a string of 1 to 36 printable characters, "
        "such as a UUID)"
    )


# --- text -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_nul_and_lone_surrogates_are_refused_in_every_text(
    store: Store, backend: Backend, volume: Volume, bad: str
) -> None:
    connection = volume.connect({"host": "h"})
    store.set_key_value("k", "v")
    before = dumps(store)
    calls: list[tuple[str, Callable[[], object]]] = [
        ("name", lambda: backend.create_volume(1, bad)),
        ("description", lambda: backend.create_volume(1, "n", bad)),
        ("serial", lambda: backend.create_volume(1, serial=bad)),
        ("wwn", lambda: backend.create_volume(1, wwn=bad)),
        ("metadata", lambda: backend.create_volume(1, metadata={"k": bad})),
        ("metadata", lambda: backend.create_volume(1, metadata={bad: 1})),
        ("metadata", lambda: backend.create_volume(1, metadata={"k": [{"x": bad}]})),
        ("name", lambda: volume.create_snapshot(bad)),
        ("host", lambda: volume.connect({}, host=bad)),
        ("protocol", lambda: volume.connect({"host": "h"}, protocol=bad)),
        ("connector_info", lambda: volume.connect({"host": "h", "ip": bad})),
        ("connection_info", lambda: volume.connect({"host": "h"}, connection_info={"t": bad})),
        ("volume_backend_name", lambda: Backend(bad, store=store)),
        ("driver", lambda: Backend("b2", store=store, driver=bad)),
        ("volume_driver", lambda: Backend("b2", store=store, volume_driver=bad)),
        ("key", lambda: store.set_key_value(bad, "v")),
        ("value", lambda: store.set_key_value("k", bad)),
        ("key", lambda: store.get_key_values(bad)),
        ("key", lambda: store.delete_key_value(bad)),
        ("name", lambda: setattr(volume, "name", bad)),
        ("description", lambda: setattr(volume, "description", bad)),
        ("connector_info", lambda: setattr(connection, "connector_info", {"k": bad})),
    ]
    for field, call in calls:
        with pytest.raises(exceptions.InvalidInput) as raised:
            call()
        assert raised.value.field == field, field
        assert "NUL" in raised.value.reason or "surrogate" in raised.value.reason
    with pytest.raises(exceptions.ConfigError):
        Backend("b2", store=store, pool=bad)
    assert dumps(store) == before


@pytest.mark.usefixtures("unchanged")
def test_key_value_keys_and_values_follow_one_rule(store: Store) -> None:
    for bad_key in ("", "k" * 256, 7, None):
        with pytest.raises(exceptions.InvalidInput, match="invalid key"):
            store.set_key_value(bad_key, "v")  # type: ignore[arg-type]
    with pytest.raises(exceptions.InvalidInput, match="bytes in UTF-8"):
        store.set_key_value("k", "é" * 40000)  # 80,000 bytes: more than MariaDB's TEXT
    with pytest.raises(exceptions.InvalidInput, match="invalid value"):
        store.set_key_value("k", 5)  # type: ignore[arg-type]


def test_the_longest_accepted_key_and_value_round_trip(store: Store) -> None:
    key, value = "k" * validation.MAX_KEY, "v" * validation.MAX_VALUE_BYTES
    store.set_key_value(key, value)
    assert store.get_key_values(key) == {key: value}


# --- JSON -------------------------------------------------------------------------

BAD_JSON: list[tuple[str, Any, str]] = [
    ("cycle", _cyclic(), "contains itself"),
    ("3000-deep", _deep(3000), "nested deeper than 31"),
    ("32-deep", _deep(validation.MAX_JSON_DEPTH + 1), "nested deeper than 31"),
    ("object", {"x": object()}, "holds a object, which is not JSON"),
    ("nan", {"x": math.nan}, "nan, which JSON cannot hold"),
    ("inf", {"x": [math.inf]}, "inf, which JSON cannot hold"),
    ("huge-int", {"x": 10**5000}, "integer outside"),
    ("too-large", {"x": "y" * validation.MAX_JSON_BYTES}, "larger than 65536 bytes"),
    ("non-string-key", {1: "x"}, "non-string key 1"),
]


def _shared_many_times() -> dict[str, Any]:
    level: list[Any] = ["x" * 10]
    for _ in range(25):
        level = [level, level]  # 2**25 leaves if expanded
    return {"x": level}


@pytest.mark.parametrize(
    ("value", "reason"), [(v, r) for _, v, r in BAD_JSON], ids=[i for i, _, _ in BAD_JSON]
)
@pytest.mark.usefixtures("unchanged")
def test_bad_json_is_refused_on_creation_and_assignment(
    backend: Backend, volume: Volume, value: Any, reason: str
) -> None:
    with pytest.raises(exceptions.InvalidInput, match=reason) as raised:
        backend.create_volume(1, metadata=value)
    assert raised.value.field == "metadata"
    assert len(str(raised.value)) < 1000  # the message shows a shortened value
    with pytest.raises(exceptions.InvalidInput, match=reason):
        volume.metadata = value
    with pytest.raises(exceptions.InvalidInput, match=reason):
        volume.connect({"host": "h"}, connection_info=value)
    assert volume.metadata == {"k": "v"}


@pytest.mark.parametrize(
    ("value", "reason"), [(v, r) for _, v, r in BAD_JSON], ids=[i for i, _, _ in BAD_JSON]
)
@pytest.mark.usefixtures("unchanged")
def test_in_place_changes_are_validated_on_save(volume: Volume, value: Any, reason: str) -> None:
    volume.metadata["x"] = value
    with pytest.raises(exceptions.InvalidInput, match=reason):
        volume.save()
    with pytest.raises(exceptions.InvalidInput, match=reason):
        volume.is_dirty()
    # the object is left as the caller made it; fixing it makes it saveable
    volume.metadata = {"k": "v"}
    assert not volume.is_dirty()


def test_a_small_graph_that_expands_hugely_is_refused_quickly(backend: Backend) -> None:
    with pytest.raises(exceptions.InvalidInput, match="larger than 65536 bytes"):
        backend.create_volume(1, metadata=_shared_many_times())


def test_json_at_the_limits_round_trips(backend: Backend, reopen: Callable[[], Store]) -> None:
    metadata = {
        "deep": _deep(validation.MAX_JSON_DEPTH - 1),
        "big": 2**64 - 1,
        "small": -(2**63),
        "text": "é\u2028\U0001f600",
        "tuple": (1, 2),
    }
    volume = backend.create_volume(1, metadata=metadata)
    expected = {**metadata, "tuple": [1, 2]}
    assert volume.metadata == expected
    again = Backend.load(reopen(), backend.name).get_volume(volume.id)
    assert again.metadata == expected


def test_a_valid_in_place_change_is_saved(volume: Volume, reopen: Callable[[], Store]) -> None:
    volume.metadata["list"] = (1, {"a": None})
    volume.save()
    again = Backend.load(reopen(), volume.backend.name).get_volume(volume.id)
    assert again.metadata == {"k": "v", "list": [1, {"a": None}]}


# --- argument types at the public functions --------------------------------------


@pytest.mark.usefixtures("unchanged")
def test_argument_types_are_checked_at_the_public_functions(store: Store) -> None:
    calls: list[tuple[str, Callable[[], object]]] = [
        ("limit", lambda: journal(store, limit="5")),  # type: ignore[arg-type]
        ("limit", lambda: journal(store, limit=0)),
        ("limit", lambda: journal(store, limit=True)),
        ("limit", lambda: journal(store, limit=2**63)),
        ("host_name", lambda: journal(store, host_name=5)),  # type: ignore[arg-type]
        ("store", lambda: journal("sqlite:///x")),  # type: ignore[arg-type]
        ("host_name", lambda: observed_host(store, 42)),  # type: ignore[arg-type]
        ("store", lambda: observed_hosts(None)),  # type: ignore[arg-type]
        ("backend", lambda: dump(store, backend=42)),  # type: ignore[arg-type]
        ("store", lambda: dump("sqlite:///x")),  # type: ignore[arg-type]
        ("indent", lambda: dumps(store, indent="2")),  # type: ignore[arg-type]
        ("store", lambda: load(None, "{}")),  # type: ignore[arg-type]
        ("document", lambda: load(store, 42)),  # type: ignore[arg-type]
        ("progress", lambda: load(store, "{}", progress=5)),  # type: ignore[arg-type]
        ("store", lambda: Backend.load("sqlite:///x", "lvm-1")),  # type: ignore[arg-type]
        ("volume_backend_name", lambda: Backend.load(store, 42)),  # type: ignore[arg-type]
        ("store", lambda: Backend.load_all(object())),  # type: ignore[arg-type]
        ("store", lambda: Backend("new", store="sqlite:///x")),
        ("stores", lambda: status(store, "sqlite:///x")),  # type: ignore[arg-type]
        ("bootable", lambda: Backend.load(store, "lvm-1").create_volume(1, bootable="x")),  # type: ignore[arg-type]
        ("specs", lambda: Backend.load(store, "lvm-1").create_volumes([1])),  # type: ignore[list-item]
    ]
    for field, call in calls:
        with pytest.raises(exceptions.InvalidInput) as raised:
            call()
        assert raised.value.field == field, field
    assert journal(store, limit=5) == []


# --- FC port names, LUNs, iSCSI portals ------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "0x10000000C9ABCDEF",
        "10000000c9abcdef",
        "10:00:00:00:c9:ab:cd:ef",
        "10-00-00-00-C9-AB-CD-EF",
        " 0X10:00:00:00:C9:AB:CD:EF\n",
    ],
)
def test_a_wwn_in_any_spelling_is_its_16_lowercase_digits(spelling: str) -> None:
    assert validation.wwn("wwpn", spelling) == "10000000c9abcdef"


@pytest.mark.parametrize(
    "bad", ["", "0x", "10000000c9abcde", "10000000c9abcdef0", "0a:0b:0c:0d:0e:0f:0g:0h", 16, None]
)
def test_anything_else_is_not_a_wwn(bad: object) -> None:
    with pytest.raises(exceptions.InvalidInput) as caught:
        validation.wwn("wwpn", bad)
    assert caught.value.field == "wwpn"


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("192.0.2.10", "192.0.2.10:3260"),
        ("192.0.2.10:3261", "192.0.2.10:3261"),
        ("Target.Example", "target.example:3260"),
        ("2001:DB8::1", "[2001:db8::1]:3260"),
        ("[2001:db8:0::1]:860", "[2001:db8::1]:860"),
    ],
)
def test_portals_are_address_and_port(text: str, normal: str) -> None:
    assert validation.portal("portal", text) == normal


@pytest.mark.parametrize(
    "bad", ["", "a b", "[::1", "[::1]x", "1.2.3.4:0", "1.2.3.4:65536", "h:p", "[zz]:1"]
)
def test_bad_portals_are_refused(bad: str) -> None:
    with pytest.raises(exceptions.InvalidInput):
        validation.portal("portal", bad)


def test_luns_are_64_bit() -> None:
    assert validation.lun("lun", 2**64 - 1) == 2**64 - 1
    for bad in (-1, 2**64, True, "1"):
        with pytest.raises(exceptions.InvalidInput):
            validation.lun("lun", bad)
