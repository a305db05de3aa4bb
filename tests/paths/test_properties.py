"""Connection properties read from os-brick's dicts: shapes, normal forms, refusals.

Each os-brick shape is read into the exact typed object; each missing key and
each bad value is refused with a typed error naming the key; CHAP secrets are
never shown; :meth:`as_dict` reads back into the same object; and arbitrary
dicts only ever raise :class:`~tracker.exceptions.InvalidInput`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker import exceptions
from tracker.paths.properties import (
    PROTOCOLS,
    ConnectionProperties,
    FcProperties,
    FcTargetLun,
    IscsiProperties,
    IscsiTargetLun,
    LocalProperties,
    properties_from_dict,
    protocol_of,
)

IQN = "iqn.2010-10.org.openstack:volume-1"
IQN2 = "iqn.2010-10.org.openstack:volume-2"
WWN1 = "500a098280feeba5"
WWN2 = "500a098290feeba5"
INIT1 = "10000000c9abcdef"
INIT2 = "10000000c9abcdf0"
PASSWORD = "s3cr3t-chap-pw"
USERNAME = "chap-user-xyz"

AUTH = {"auth_method": "CHAP", "auth_username": USERNAME, "auth_password": PASSWORD}


def iscsi(*targets: tuple[str, str, int]) -> IscsiProperties:
    return IscsiProperties(tuple(IscsiTargetLun(*t) for t in targets))


def fc(
    *targets: tuple[str, int], itmap: tuple[tuple[str, tuple[str, ...]], ...] = ()
) -> FcProperties:
    return FcProperties(tuple(FcTargetLun(*t) for t in targets), itmap)


# --- the shapes --------------------------------------------------------------------------

SHAPES: list[tuple[str, str, Mapping[str, object], ConnectionProperties]] = [
    (
        "iscsi-single",
        "iscsi",
        {"target_portal": "192.0.2.10:3260", "target_iqn": IQN, "target_lun": 1},
        iscsi(("192.0.2.10:3260", IQN, 1)),
    ),
    (
        "iscsi-single-lun-absent-is-0",
        "iscsi",
        {"target_portal": "192.0.2.10:3260", "target_iqn": IQN},
        iscsi(("192.0.2.10:3260", IQN, 0)),
    ),
    (
        "iscsi-single-lun-null-is-0",
        "iscsi",
        {"target_portal": "192.0.2.10", "target_iqn": IQN, "target_lun": None},
        iscsi(("192.0.2.10:3260", IQN, 0)),
    ),
    (
        "iscsi-cinder-lvm-with-auth-and-extras",
        "iscsi",
        {
            "target_discovered": False,
            "target_portal": "192.0.2.10:3260",
            "target_iqn": IQN,
            "target_lun": 0,
            "volume_id": "6b2f6b2c-1b1c-4d5e-9a7e-0c3f2b8a1d11",
            "encrypted": False,
            "qos_specs": None,
            "access_mode": "rw",
            "discard": True,
            **AUTH,
        },
        iscsi(("192.0.2.10:3260", IQN, 0)),
    ),
    (
        "iscsi-multipath-parallel-lists",
        "iscsi",
        {
            "target_portal": "192.0.2.10:3260",
            "target_iqn": IQN,
            "target_lun": 1,
            "target_portals": ["192.0.2.10:3260", "198.51.100.10:3260"],
            "target_iqns": [IQN, IQN2],
            "target_luns": [1, 2],
        },
        iscsi(("192.0.2.10:3260", IQN, 1), ("198.51.100.10:3260", IQN2, 2)),
    ),
    (
        "iscsi-multipath-single-iqn-and-lun-for-every-portal",
        "iscsi",
        {"target_portals": ["192.0.2.10", "198.51.100.10"], "target_iqn": IQN, "target_lun": 3},
        iscsi(("192.0.2.10:3260", IQN, 3), ("198.51.100.10:3260", IQN, 3)),
    ),
    (
        "iscsi-multipath-iqns-without-luns",
        "iscsi",
        {
            "target_portals": ["192.0.2.10", "198.51.100.10"],
            "target_iqns": [IQN, IQN2],
            "target_lun": 4,
        },
        iscsi(("192.0.2.10:3260", IQN, 4), ("198.51.100.10:3260", IQN2, 4)),
    ),
    (
        "iscsi-multipath-luns-without-iqns",
        "iscsi",
        {
            "target_portals": ["192.0.2.10", "198.51.100.10"],
            "target_iqn": IQN,
            "target_luns": [5, 6],
        },
        iscsi(("192.0.2.10:3260", IQN, 5), ("198.51.100.10:3260", IQN, 6)),
    ),
    (
        "iscsi-plurals-ignored-without-target_portals",
        "iscsi",
        {
            "target_portal": "192.0.2.10",
            "target_iqn": IQN,
            "target_lun": 1,
            "target_iqns": [IQN2],
            "target_luns": [9],
        },
        iscsi(("192.0.2.10:3260", IQN, 1)),
    ),
    (
        "iscsi-empty-target_portals-falls-back-to-single",
        "iscsi",
        {
            "target_portals": [],
            "target_iqns": [],
            "target_portal": "192.0.2.10",
            "target_iqn": IQN,
            "target_lun": 2,
        },
        iscsi(("192.0.2.10:3260", IQN, 2)),
    ),
    (
        "iscsi-repeated-path-kept-once-order-kept",
        "iscsi",
        {
            "target_portals": ["198.51.100.10", "192.0.2.10", "198.51.100.10:3260"],
            "target_iqn": IQN,
            "target_lun": 0,
        },
        iscsi(("198.51.100.10:3260", IQN, 0), ("192.0.2.10:3260", IQN, 0)),
    ),
    (
        "iscsi-lun-as-digit-string",
        "iscsi",
        {"target_portal": "192.0.2.10", "target_iqn": IQN, "target_lun": "7"},
        iscsi(("192.0.2.10:3260", IQN, 7)),
    ),
    (
        "iscsi-luns-as-digit-strings",
        "iscsi",
        {"target_portals": ["192.0.2.10"], "target_iqns": [IQN], "target_luns": ["010"]},
        iscsi(("192.0.2.10:3260", IQN, 10)),
    ),
    (
        "iscsi-tuples-for-lists",
        "iscsi",
        {"target_portals": ("192.0.2.10",), "target_iqns": (IQN,), "target_luns": (1,)},
        iscsi(("192.0.2.10:3260", IQN, 1)),
    ),
    (
        "fc-target_wwn-string",
        "fc",
        {"target_wwn": WWN1, "target_lun": 1},
        fc((WWN1, 1)),
    ),
    (
        "fc-target_wwn-list-one-lun",
        "fc",
        {"target_discovered": False, "target_wwn": [WWN1, WWN2], "target_lun": 2},
        fc((WWN1, 2), (WWN2, 2)),
    ),
    (
        "fc-lun-absent-is-0",
        "fc",
        {"target_wwn": [WWN1]},
        fc((WWN1, 0)),
    ),
    (
        "fc-target_wwns-parallel-luns",
        "fc",
        {"target_wwns": [WWN1, WWN2], "target_luns": [1, 2]},
        fc((WWN1, 1), (WWN2, 2)),
    ),
    (
        "fc-target_wwns-one-target_lun",
        "fc",
        {"target_wwns": [WWN1, WWN2], "target_lun": 3},
        fc((WWN1, 3), (WWN2, 3)),
    ),
    (
        "fc-target_luns-of-one-serves-every-port",
        "fc",
        {"target_wwns": [WWN1, WWN2], "target_luns": [4]},
        fc((WWN1, 4), (WWN2, 4)),
    ),
    (
        "fc-target_wwns-wins-over-target_wwn",
        "fc",
        {"target_wwns": [WWN2], "target_wwn": [WWN1], "target_luns": [5], "target_lun": 6},
        fc((WWN2, 5)),
    ),
    (
        "fc-empty-target_wwns-falls-back-to-target_wwn",
        "fc",
        {"target_wwns": [], "target_luns": [], "target_wwn": WWN1, "target_lun": 1},
        fc((WWN1, 1)),
    ),
    (
        "fc-with-initiator_target_map",
        "fc",
        {
            "target_wwn": [WWN1, WWN2],
            "target_lun": 1,
            "initiator_target_map": {INIT2: [WWN2, WWN1], INIT1: [WWN1]},
        },
        fc((WWN1, 1), (WWN2, 1), itmap=((INIT1, (WWN1,)), (INIT2, (WWN1, WWN2)))),
    ),
    (
        "fc-only-the-map-targets-are-its-union",
        "fc",
        {"initiator_target_map": {INIT1: [WWN2], INIT2: [WWN2, WWN1]}, "target_lun": 7},
        fc((WWN2, 7), (WWN1, 7), itmap=((INIT1, (WWN2,)), (INIT2, (WWN1, WWN2)))),
    ),
    (
        "fc-map-initiator-given-twice-is-merged",
        "fc",
        {
            "target_wwn": WWN1,
            "initiator_target_map": {INIT1: [WWN1], INIT1.upper(): [WWN2], INIT2: []},
        },
        fc((WWN1, 0), itmap=((INIT1, (WWN1, WWN2)), (INIT2, ()))),
    ),
    (
        "fc-empty-map-is-no-map",
        "fc",
        {"target_wwn": WWN1, "target_lun": 0, "initiator_target_map": {}},
        fc((WWN1, 0)),
    ),
    (
        "local-device_path",
        "local",
        {"device_path": "/dev/sdb"},
        LocalProperties("/dev/sdb"),
    ),
    (
        "local-by-id-link",
        "local",
        {"device_path": "/dev/disk/by-id/wwn-0x600a098038304437"},
        LocalProperties("/dev/disk/by-id/wwn-0x600a098038304437"),
    ),
    (
        "local-loop",
        "local",
        {"device_path": "/dev/loop0", "other": 1},
        LocalProperties("/dev/loop0"),
    ),
]


@pytest.mark.parametrize(
    ("protocol", "data", "expected"), [s[1:] for s in SHAPES], ids=[s[0] for s in SHAPES]
)
def test_shape_reads_into_exact_object(
    protocol: str, data: Mapping[str, object], expected: ConnectionProperties
) -> None:
    assert properties_from_dict(protocol, data) == expected


def test_multipath_targets_exact_fields() -> None:
    """The objects compared above hold exactly the normal forms, not the inputs."""
    properties = properties_from_dict(
        "iscsi",
        {
            "target_portals": ["[2001:DB8::1]", "192.0.2.10:3261"],
            "target_iqn": IQN.upper(),
            "target_luns": ["0", 255],
        },
    )
    assert isinstance(properties, IscsiProperties)
    assert [(t.portal, t.iqn, t.lun) for t in properties.targets] == [
        ("[2001:db8::1]:3260", IQN, 0),
        ("192.0.2.10:3261", IQN, 255),
    ]
    assert properties.protocol == "iscsi"


@pytest.mark.parametrize(
    ("shape_id", "protocol", "data", "expected"), SHAPES, ids=[s[0] for s in SHAPES]
)
def test_as_dict_round_trip(
    shape_id: str, protocol: str, data: Mapping[str, object], expected: ConnectionProperties
) -> None:
    properties = properties_from_dict(protocol, data)
    as_dict = properties.as_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict  # JSON-ready
    assert properties_from_dict(properties.protocol, as_dict) == properties
    assert PASSWORD not in json.dumps(as_dict)
    assert USERNAME not in json.dumps(as_dict)


def test_as_dict_exact_iscsi() -> None:
    properties = iscsi(("192.0.2.10:3260", IQN, 1), ("198.51.100.10:3260", IQN2, 2))
    assert properties.as_dict() == {
        "target_portal": "192.0.2.10:3260",
        "target_iqn": IQN,
        "target_lun": 1,
        "target_portals": ["192.0.2.10:3260", "198.51.100.10:3260"],
        "target_iqns": [IQN, IQN2],
        "target_luns": [1, 2],
    }


def test_as_dict_exact_fc() -> None:
    assert fc((WWN1, 1)).as_dict() == {"target_wwns": [WWN1], "target_luns": [1]}
    assert fc((WWN1, 1), (WWN2, 2), itmap=((INIT1, (WWN2, WWN1)),)).as_dict() == {
        "target_wwns": [WWN1, WWN2],
        "target_luns": [1, 2],
        "initiator_target_map": {INIT1: [WWN1, WWN2]},
    }


def test_as_dict_exact_local() -> None:
    assert LocalProperties("/dev/sdb").as_dict() == {"device_path": "/dev/sdb"}


# --- normal forms --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("192.0.2.10", "192.0.2.10:3260"),
        ("192.0.2.10:3261", "192.0.2.10:3261"),
        (" 192.0.2.10:3260 ", "192.0.2.10:3260"),
        ("Storage.Example.COM", "storage.example.com:3260"),
        ("[2001:db8::1]:3260", "[2001:db8::1]:3260"),
        ("[2001:DB8:0:0::1]:3262", "[2001:db8::1]:3262"),
        ("[2001:db8::1]", "[2001:db8::1]:3260"),
        ("2001:db8::1", "[2001:db8::1]:3260"),
    ],
    ids=repr,
)
def test_portal_normal_form(given: str, normal: str) -> None:
    single = properties_from_dict("iscsi", {"target_portal": given, "target_iqn": IQN})
    multi = properties_from_dict(
        "iscsi", {"target_portals": [given], "target_iqn": IQN, "target_lun": 0}
    )
    assert single == multi == iscsi((normal, IQN, 0))


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        (IQN, IQN),
        ("IQN.2010-10.ORG.OpenStack:Volume-1", IQN),
        (f"  {IQN}\t", IQN),
        ("eui.02004567A425678D", "eui.02004567a425678d"),
        ("NAA.52004567BA64678D", "naa.52004567ba64678d"),
    ],
    ids=repr,
)
def test_iqn_normal_form(given: str, normal: str) -> None:
    properties = properties_from_dict("iscsi", {"target_portal": "192.0.2.10", "target_iqn": given})
    assert properties == iscsi(("192.0.2.10:3260", normal, 0))


@pytest.mark.parametrize(
    "spelling",
    [
        "500a098280feeba5",
        "500A098280FEEBA5",
        "0x500A098280FEEBA5",
        "50:0a:09:82:80:fe:eb:a5",
        "50:0A:09:82:80:FE:EB:A5",
        "50-0a-09-82-80-fe-eb-a5",
    ],
    ids=repr,
)
def test_wwn_spellings(spelling: str) -> None:
    expected = fc((WWN1, 0), itmap=((INIT1, (WWN1,)),))
    init = "0x" + INIT1.upper()
    for data in (
        {"target_wwn": spelling, "initiator_target_map": {init: [spelling]}},
        {"target_wwn": [spelling], "initiator_target_map": {init: [spelling]}},
        {"target_wwns": [spelling], "initiator_target_map": {init: [spelling]}},
        {"initiator_target_map": {init: [spelling]}},
    ):
        assert properties_from_dict("fc", data) == expected, data


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("/dev/sdb", "/dev/sdb"),
        ("/dev//sdb", "/dev/sdb"),
        ("/dev/./disk/by-path/../by-id/x/", "/dev/disk/by-id/x"),
        ("/dev/mapper/3600a0980", "/dev/mapper/3600a0980"),
    ],
    ids=repr,
)
def test_device_path_normal_form(given: str, normal: str) -> None:
    assert properties_from_dict("local", {"device_path": given}) == LocalProperties(normal)


@pytest.mark.parametrize(
    ("given", "lun"),
    [
        (0, 0),
        (1, 1),
        ("0", 0),
        ("1", 1),
        ("0012", 12),
        (2**64 - 1, 2**64 - 1),
        (str(2**64 - 1), 2**64 - 1),
    ],
    ids=repr,
)
def test_lun_accepted(given: object, lun: int) -> None:
    data = {"target_portal": "192.0.2.10", "target_iqn": IQN, "target_lun": given}
    assert properties_from_dict("iscsi", data) == iscsi(("192.0.2.10:3260", IQN, lun))
    assert properties_from_dict("fc", {"target_wwn": WWN1, "target_lun": given}) == fc((WWN1, lun))


def test_direct_construction_normalises() -> None:
    target = IscsiTargetLun("192.0.2.10", IQN.upper(), 0)
    assert (target.portal, target.iqn) == ("192.0.2.10:3260", IQN)
    assert FcTargetLun("0x" + WWN1.upper(), 1).target_wwn == WWN1
    assert LocalProperties("/dev//sdb").device_path == "/dev/sdb"
    assert FcProperties((FcTargetLun(WWN1, 0),)).initiator_target_map == ()
    repeated = (IscsiTargetLun("192.0.2.10", IQN, 0), IscsiTargetLun("192.0.2.10:3260", IQN, 0))
    assert len(IscsiProperties(repeated).targets) == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: IscsiProperties(()),
        lambda: IscsiProperties((FcTargetLun(WWN1, 0),)),  # type: ignore[arg-type]
        lambda: FcProperties(()),
        lambda: FcProperties((FcTargetLun(WWN1, 0),), (("nope", ()),)),
        lambda: FcProperties((FcTargetLun(WWN1, 0),), ((INIT1,),)),  # type: ignore[arg-type]
        lambda: IscsiTargetLun("192.0.2.10", IQN, "1"),  # type: ignore[arg-type]
        lambda: FcTargetLun(WWN1, -1),
        lambda: LocalProperties("sdb"),
    ],
    ids=[
        "iscsi-no-target",
        "iscsi-wrong-item",
        "fc-no-target",
        "fc-bad-initiator",
        "fc-map-not-pairs",
        "target-lun-str",
        "fc-lun-negative",
        "local-relative",
    ],
)
def test_direct_construction_refuses(make: object) -> None:
    with pytest.raises(exceptions.InvalidInput):
        make()  # type: ignore[operator]


def test_frozen_and_slotted() -> None:
    properties = iscsi(("192.0.2.10", IQN, 0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        properties.targets = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        properties.targets[0].lun = 1  # type: ignore[misc]
    for value in (properties, properties.targets[0], fc((WWN1, 0)), LocalProperties("/dev/sdb")):
        assert not hasattr(value, "__dict__")
    assert hash(properties) == hash(iscsi(("192.0.2.10:3260", IQN, 0)))
    assert (FcProperties.protocol, LocalProperties.protocol) == ("fc", "local")


# --- cinder's connection_info --------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "volume_type", "data", "expected"),
    [
        (
            "iscsi",
            "iscsi",
            {"target_portal": "192.0.2.10", "target_iqn": IQN, **AUTH},
            iscsi(("192.0.2.10:3260", IQN, 0)),
        ),
        (
            "iscsi",
            "ISCSI",
            {"target_portal": "192.0.2.10", "target_iqn": IQN},
            iscsi(("192.0.2.10:3260", IQN, 0)),
        ),
        ("fc", "fibre_channel", {"target_wwn": [WWN1], "target_lun": 1}, fc((WWN1, 1))),
        ("FIBRE_CHANNEL", "fibre_channel", {"target_wwn": WWN1}, fc((WWN1, 0))),
        ("local", "local", {"device_path": "/dev/sdb"}, LocalProperties("/dev/sdb")),
    ],
    ids=["iscsi", "iscsi-uppercase-type", "fibre_channel", "os-brick-protocol-name", "local"],
)
def test_connection_info_wrapper(
    protocol: str, volume_type: str, data: Mapping[str, object], expected: ConnectionProperties
) -> None:
    wrapped = {"driver_volume_type": volume_type, "data": data, "serial": "x"}
    assert properties_from_dict(protocol, wrapped) == expected


@pytest.mark.parametrize(
    ("protocol", "volume_type"),
    [("iscsi", "fibre_channel"), ("fc", "iscsi"), ("local", "rbd"), ("iscsi", 3), ("iscsi", "")],
    ids=repr,
)
def test_connection_info_of_another_protocol(protocol: str, volume_type: object) -> None:
    wrapped = {
        "driver_volume_type": volume_type,
        "data": {"target_portal": "192.0.2.10", "target_iqn": IQN, **AUTH},
    }
    with pytest.raises(exceptions.InvalidInput) as raised:
        properties_from_dict(protocol, wrapped)
    assert raised.type is exceptions.InvalidInput
    assert raised.value.field == "driver_volume_type"
    assert raised.value.value == volume_type
    assert f"connection_info of a {protocol_of(protocol)} volume" in str(raised.value)


def test_connection_info_without_data() -> None:
    with pytest.raises(exceptions.MissingConnectionProperty) as raised:
        properties_from_dict("iscsi", {"driver_volume_type": "iscsi"})
    assert raised.value.key == "data"
    assert str(raised.value) == "iscsi connection properties need data"


@pytest.mark.parametrize("data", [[("auth_password", PASSWORD)], PASSWORD, 42], ids=repr)
def test_connection_info_data_not_a_mapping(data: object) -> None:
    with pytest.raises(exceptions.InvalidInput) as raised:
        properties_from_dict("iscsi", {"driver_volume_type": "iscsi", "data": data})
    assert raised.value.field == "data"
    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize(
    "data", [[("auth_password", PASSWORD)], PASSWORD, None, 42, {PASSWORD}], ids=repr
)
def test_properties_not_a_mapping(data: object) -> None:
    with pytest.raises(exceptions.InvalidInput) as raised:
        properties_from_dict("iscsi", data)  # type: ignore[arg-type]
    assert raised.type is exceptions.InvalidInput
    assert raised.value.field == "connection_properties"
    assert PASSWORD not in str(raised.value)
    assert PASSWORD not in repr(raised.value.value)
    assert f"<{type(data).__name__}>" in str(raised.value)


# --- missing keys --------------------------------------------------------------------------

MISSING: list[tuple[str, str, Mapping[str, object], str]] = [
    ("iscsi-empty", "iscsi", {}, "target_portal or target_portals"),
    (
        "iscsi-no-portal",
        "iscsi",
        {"target_iqn": IQN, "target_lun": 0},
        "target_portal or target_portals",
    ),
    (
        "iscsi-null-portal",
        "iscsi",
        {"target_portal": None, "target_iqn": IQN},
        "target_portal or target_portals",
    ),
    (
        "iscsi-iqns-without-portals",
        "iscsi",
        {"target_iqns": [IQN], "target_luns": [0]},
        "target_portal or target_portals",
    ),
    (
        "iscsi-no-iqn",
        "iscsi",
        {"target_portal": "192.0.2.10", "target_lun": 0},
        "target_iqn or target_iqns",
    ),
    (
        "iscsi-portals-no-iqn",
        "iscsi",
        {"target_portals": ["192.0.2.10"], "target_luns": [0]},
        "target_iqn or target_iqns",
    ),
    (
        "iscsi-portals-empty-iqns",
        "iscsi",
        {"target_portals": ["192.0.2.10"], "target_iqns": [], "target_luns": [0]},
        "target_iqn or target_iqns",
    ),
    (
        "iscsi-portals-no-lun",
        "iscsi",
        {"target_portals": ["192.0.2.10"], "target_iqns": [IQN]},
        "target_lun or target_luns",
    ),
    (
        "iscsi-portals-null-lun",
        "iscsi",
        {"target_portals": ["192.0.2.10"], "target_iqn": IQN, "target_lun": None},
        "target_lun or target_luns",
    ),
    ("fc-empty", "fc", {}, "target_wwn, target_wwns or initiator_target_map"),
    ("fc-only-lun", "fc", {"target_lun": 1}, "target_wwn, target_wwns or initiator_target_map"),
    (
        "fc-empty-lists",
        "fc",
        {"target_wwn": [], "target_wwns": [], "target_lun": 1},
        "target_wwn, target_wwns or initiator_target_map",
    ),
    (
        "fc-map-without-targets",
        "fc",
        {"initiator_target_map": {INIT1: []}},
        "target_wwn, target_wwns or initiator_target_map",
    ),
    ("local-empty", "local", {}, "device_path"),
    ("local-null", "local", {"device_path": None}, "device_path"),
]


@pytest.mark.parametrize(
    ("protocol", "data", "key"), [m[1:] for m in MISSING], ids=[m[0] for m in MISSING]
)
def test_missing_key(protocol: str, data: Mapping[str, object], key: str) -> None:
    with pytest.raises(exceptions.MissingConnectionProperty) as raised:
        properties_from_dict(protocol, {**data, **AUTH})
    assert raised.value.key == key
    assert raised.value.protocol == protocol
    assert str(raised.value) == f"{protocol} connection properties need {key}"
    with pytest.raises(exceptions.MissingConnectionProperty) as wrapped:
        properties_from_dict(protocol, {"driver_volume_type": protocol, "data": data})
    assert wrapped.value.key == key


# --- bad values ----------------------------------------------------------------------------

BASE_ISCSI: dict[str, object] = {"target_portal": "192.0.2.10", "target_iqn": IQN, "target_lun": 0}
BASE_MULTI: dict[str, object] = {
    "target_portals": ["192.0.2.10", "198.51.100.10"],
    "target_iqns": [IQN, IQN],
    "target_luns": [0, 0],
}
BASE_FC: dict[str, object] = {"target_wwn": WWN1, "target_lun": 0}

BAD: list[tuple[str, str, dict[str, object], str]] = [
    ("iscsi-portal-int", "iscsi", {**BASE_ISCSI, "target_portal": 5}, "target_portal"),
    ("iscsi-portal-empty", "iscsi", {**BASE_ISCSI, "target_portal": ""}, "target_portal"),
    (
        "iscsi-portal-bad-port",
        "iscsi",
        {**BASE_ISCSI, "target_portal": "192.0.2.10:99999"},
        "target_portal",
    ),
    (
        "iscsi-portal-unbalanced-bracket",
        "iscsi",
        {**BASE_ISCSI, "target_portal": "[2001:db8::1:3260"},
        "target_portal",
    ),
    ("iscsi-iqn-int", "iscsi", {**BASE_ISCSI, "target_iqn": 7}, "target_iqn"),
    ("iscsi-iqn-no-prefix", "iscsi", {**BASE_ISCSI, "target_iqn": "volume-1"}, "target_iqn"),
    ("iscsi-iqn-prefix-only", "iscsi", {**BASE_ISCSI, "target_iqn": "iqn."}, "target_iqn"),
    (
        "iscsi-iqn-space",
        "iscsi",
        {**BASE_ISCSI, "target_iqn": "iqn.2010-10.org.x:a b"},
        "target_iqn",
    ),
    (
        "iscsi-iqn-control",
        "iscsi",
        {**BASE_ISCSI, "target_iqn": "iqn.2010-10.org.x:a\nb"},
        "target_iqn",
    ),
    (
        "iscsi-iqn-nul",
        "iscsi",
        {**BASE_ISCSI, "target_iqn": "iqn.2010-10.org.x:a\x00"},
        "target_iqn",
    ),
    (
        "iscsi-iqn-kelvin-sign",
        "iscsi",
        {**BASE_ISCSI, "target_iqn": "iqn.2010-10.org.\u212a:v"},
        "target_iqn",
    ),
    ("iscsi-iqn-too-long", "iscsi", {**BASE_ISCSI, "target_iqn": "iqn." + "a" * 220}, "target_iqn"),
    ("iscsi-lun-abc", "iscsi", {**BASE_ISCSI, "target_lun": "abc"}, "target_lun"),
    ("iscsi-lun-negative", "iscsi", {**BASE_ISCSI, "target_lun": -1}, "target_lun"),
    ("iscsi-lun-negative-str", "iscsi", {**BASE_ISCSI, "target_lun": "-1"}, "target_lun"),
    ("iscsi-lun-spaces", "iscsi", {**BASE_ISCSI, "target_lun": " 1"}, "target_lun"),
    ("iscsi-lun-empty-str", "iscsi", {**BASE_ISCSI, "target_lun": ""}, "target_lun"),
    ("iscsi-lun-arabic-digit", "iscsi", {**BASE_ISCSI, "target_lun": "\u0661"}, "target_lun"),
    ("iscsi-lun-float", "iscsi", {**BASE_ISCSI, "target_lun": 1.0}, "target_lun"),
    ("iscsi-lun-bool", "iscsi", {**BASE_ISCSI, "target_lun": True}, "target_lun"),
    ("iscsi-lun-2**64", "iscsi", {**BASE_ISCSI, "target_lun": 2**64}, "target_lun"),
    ("iscsi-lun-2**64-str", "iscsi", {**BASE_ISCSI, "target_lun": str(2**64)}, "target_lun"),
    ("iscsi-lun-5000-digits", "iscsi", {**BASE_ISCSI, "target_lun": "9" * 5000}, "target_lun"),
    (
        "iscsi-portals-str",
        "iscsi",
        {**BASE_MULTI, "target_portals": "192.0.2.10"},
        "target_portals",
    ),
    (
        "iscsi-portals-item-int",
        "iscsi",
        {**BASE_MULTI, "target_portals": ["192.0.2.10", 5]},
        "target_portals[1]",
    ),
    ("iscsi-iqns-dict", "iscsi", {**BASE_MULTI, "target_iqns": {IQN: 1}}, "target_iqns"),
    ("iscsi-iqns-item-none", "iscsi", {**BASE_MULTI, "target_iqns": [IQN, None]}, "target_iqns[1]"),
    ("iscsi-luns-item-abc", "iscsi", {**BASE_MULTI, "target_luns": [0, "abc"]}, "target_luns[1]"),
    ("iscsi-iqns-shorter", "iscsi", {**BASE_MULTI, "target_iqns": [IQN]}, "target_iqns"),
    ("iscsi-luns-longer", "iscsi", {**BASE_MULTI, "target_luns": [0, 1, 2]}, "target_luns"),
    ("iscsi-luns-shorter", "iscsi", {**BASE_MULTI, "target_luns": [0]}, "target_luns"),
    (
        "iscsi-single-iqn-bad-for-portals",
        "iscsi",
        {"target_portals": ["192.0.2.10"], "target_iqn": 3, "target_lun": 0},
        "target_iqn",
    ),
    ("fc-wwn-int", "fc", {**BASE_FC, "target_wwn": 0x500A098280FEEBA5}, "target_wwn"),
    ("fc-wwn-short", "fc", {**BASE_FC, "target_wwn": "500a0982"}, "target_wwn"),
    ("fc-wwn-not-hex", "fc", {**BASE_FC, "target_wwn": "500a098280feebzz"}, "target_wwn"),
    ("fc-wwn-list-item-int", "fc", {**BASE_FC, "target_wwn": [WWN1, 1]}, "target_wwn[1]"),
    ("fc-wwns-str", "fc", {"target_wwns": WWN1, "target_luns": [0]}, "target_wwns"),
    (
        "fc-wwns-item-bad",
        "fc",
        {"target_wwns": [WWN1, "x"], "target_luns": [0, 0]},
        "target_wwns[1]",
    ),
    ("fc-lun-abc", "fc", {**BASE_FC, "target_lun": "abc"}, "target_lun"),
    (
        "fc-luns-item-bad",
        "fc",
        {"target_wwns": [WWN1, WWN2], "target_luns": [0, -1]},
        "target_luns[1]",
    ),
    (
        "fc-luns-length",
        "fc",
        {"target_wwns": [WWN1, WWN2], "target_luns": [0, 1, 2]},
        "target_luns",
    ),
    ("fc-luns-not-list", "fc", {"target_wwns": [WWN1], "target_luns": 1}, "target_luns"),
    ("fc-map-list", "fc", {**BASE_FC, "initiator_target_map": [INIT1]}, "initiator_target_map"),
    (
        "fc-map-bad-initiator",
        "fc",
        {**BASE_FC, "initiator_target_map": {"host1": [WWN1]}},
        "initiator_target_map",
    ),
    (
        "fc-map-targets-str",
        "fc",
        {**BASE_FC, "initiator_target_map": {INIT1: WWN1}},
        f"initiator_target_map[{INIT1!r}]",
    ),
    (
        "fc-map-target-bad",
        "fc",
        {**BASE_FC, "initiator_target_map": {INIT1: [WWN1, 5]}},
        f"initiator_target_map[{INIT1!r}][1]",
    ),
    ("local-int", "local", {"device_path": 3}, "device_path"),
    ("local-relative", "local", {"device_path": "dev/sdb"}, "device_path"),
    ("local-not-dev", "local", {"device_path": "/tmp/disk.img"}, "device_path"),
    ("local-dev-itself", "local", {"device_path": "/dev"}, "device_path"),
    ("local-dev-slash", "local", {"device_path": "/dev/"}, "device_path"),
    ("local-escapes-dev", "local", {"device_path": "/dev/../etc/passwd"}, "device_path"),
    ("local-double-slash-root", "local", {"device_path": "//dev/sdb"}, "device_path"),
    ("local-devices-prefix", "local", {"device_path": "/devices/sdb"}, "device_path"),
    ("local-newline", "local", {"device_path": "/dev/sdb\n"}, "device_path"),
    ("local-empty", "local", {"device_path": ""}, "device_path"),
    ("local-list", "local", {"device_path": ["/dev/sdb"]}, "device_path"),
]


@pytest.mark.parametrize(
    ("protocol", "data", "field"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_value_names_the_field(protocol: str, data: dict[str, object], field: str) -> None:
    with pytest.raises(exceptions.InvalidInput) as raised:
        properties_from_dict(protocol, {**data, **AUTH})
    assert raised.type is exceptions.InvalidInput
    assert raised.value.field == field
    assert str(raised.value).startswith(f"invalid {field}: ")
    assert PASSWORD not in str(raised.value)
    assert USERNAME not in str(raised.value)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({**BASE_MULTI, "target_iqns": [IQN]}, ["target_portals", "target_iqns", "1 items", "2"]),
        ({**BASE_MULTI, "target_luns": [0, 0, 0]}, ["target_portals", "target_luns", "3 items"]),
    ],
    ids=["iqns", "luns"],
)
def test_length_mismatch_names_both_keys(data: dict[str, object], words: list[str]) -> None:
    with pytest.raises(exceptions.InvalidInput) as raised:
        properties_from_dict("iscsi", data)
    for word in words:
        assert word in str(raised.value)


def test_fc_length_mismatch_names_both_keys() -> None:
    with pytest.raises(exceptions.InvalidInput) as raised:
        properties_from_dict("fc", {"target_wwn": [WWN1, WWN2], "target_luns": [0, 1, 2]})
    assert "3 LUNs for the 2 WWNs of target_wwn" in str(raised.value)


def test_unknown_protocol_argument() -> None:
    with pytest.raises(exceptions.UnknownProtocol) as raised:
        properties_from_dict("nvmeof", BASE_ISCSI)
    assert raised.value.known == PROTOCOLS


# --- secrets -------------------------------------------------------------------------------


SECRET_CASES: list[tuple[str, str, object]] = [
    *[(b[0], b[1], {**b[2], **AUTH}) for b in BAD],
    *[(m[0], m[1], {**m[2], **AUTH}) for m in MISSING],
    (
        "wrapped-bad",
        "iscsi",
        {"driver_volume_type": "iscsi", "data": {**BASE_ISCSI, "target_lun": "x", **AUTH}},
    ),
    ("wrapped-other-type", "fc", {"driver_volume_type": "iscsi", "data": {**BASE_ISCSI, **AUTH}}),
    ("password-as-portal-list", "iscsi", {"target_portals": AUTH, "target_iqn": IQN}),
    ("not-a-mapping", "iscsi", list(AUTH.items())),
    ("password-as-iqn", "iscsi", {"target_portal": "192.0.2.10", "target_iqn": PASSWORD, **AUTH}),
    ("username-as-portal", "iscsi", {"target_portal": USERNAME + ":x", "target_iqn": IQN, **AUTH}),
    (
        "long-password-cut-in-repr",
        "iscsi",
        {
            "target_portal": "192.0.2.10",
            "target_iqn": "x" * 200 + PASSWORD * 20,
            "auth_password": "x" * 200 + PASSWORD * 20,
        },
    ),
    (
        "password-as-map-key",
        "fc",
        {"target_wwn": WWN1, "initiator_target_map": {PASSWORD: [WWN1]}, **AUTH},
    ),
    (
        "password-in-map-targets",
        "fc",
        {"target_wwn": WWN1, "initiator_target_map": {INIT1: [PASSWORD]}, **AUTH},
    ),
    ("password-as-volume-type", "iscsi", {"driver_volume_type": PASSWORD, "data": {}, **AUTH}),
    (
        "discovery-password-as-lun",
        "iscsi",
        {**BASE_ISCSI, "target_lun": PASSWORD, "discovery_auth_password": PASSWORD},
    ),
    (
        "password-in-inner-data-as-device",
        "local",
        {"driver_volume_type": "local", "data": {"device_path": PASSWORD, **AUTH}},
    ),
]


@pytest.mark.parametrize(
    ("protocol", "data"), [c[1:] for c in SECRET_CASES], ids=[c[0] for c in SECRET_CASES]
)
def test_secrets_never_in_messages(protocol: str, data: object) -> None:
    with pytest.raises(exceptions.InvalidInput) as raised:
        properties_from_dict(protocol, data)  # type: ignore[arg-type]
    shown = str(raised.value) + repr(raised.value.args)
    assert PASSWORD not in shown
    assert USERNAME not in shown


def test_withheld_value_keeps_field_and_reason() -> None:
    data = {"target_portal": "192.0.2.10", "target_iqn": PASSWORD, **AUTH}
    with pytest.raises(exceptions.InvalidInput) as raised:
        properties_from_dict("iscsi", data)
    assert raised.value.field == "target_iqn"
    assert str(raised.value).startswith("invalid target_iqn: <str> (an iSCSI name")
    assert str(raised.value).endswith("; not shown: it holds a credential)")
    assert raised.value.__suppress_context__


def test_value_without_credential_is_shown() -> None:
    data = {"target_portal": "192.0.2.10", "target_iqn": "volume-1", **AUTH}
    with pytest.raises(exceptions.InvalidInput) as raised:
        properties_from_dict("iscsi", data)
    assert str(raised.value).startswith("invalid target_iqn: 'volume-1' (an iSCSI name")


# --- protocol names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "protocol"),
    [
        ("iscsi", "iscsi"),
        ("ISCSI", "iscsi"),
        ("iSCSI", "iscsi"),
        ("fc", "fc"),
        ("FC", "fc"),
        ("fibre_channel", "fc"),
        ("FIBRE_CHANNEL", "fc"),
        ("local", "local"),
        ("LOCAL", "local"),
    ],
    ids=repr,
)
def test_protocol_of_aliases(name: str, protocol: str) -> None:
    assert protocol_of(name) == protocol


@pytest.mark.parametrize(
    "name",
    [
        "",
        "nfs",
        "rbd",
        "iser",
        "fibre channel",
        " iscsi",
        "iscsi ",
        "lo\u212aal",
        None,
        3,
        b"iscsi",
        ["iscsi"],
    ],
    ids=repr,
)
def test_protocol_of_unknown(name: object) -> None:
    with pytest.raises(exceptions.UnknownProtocol) as raised:
        protocol_of(name)
    assert isinstance(raised.value, exceptions.InvalidInput)
    assert raised.value.protocol == name
    assert raised.value.known == ("iscsi", "fc", "local")
    assert str(raised.value).endswith("(known: iscsi, fc, local)")
    assert str(raised.value).startswith("unknown connector protocol ")


def test_protocols_are_the_normal_names() -> None:
    assert PROTOCOLS == ("iscsi", "fc", "local")
    assert [protocol_of(p) for p in PROTOCOLS] == list(PROTOCOLS)
    assert [IscsiProperties.protocol, FcProperties.protocol, LocalProperties.protocol] == list(
        PROTOCOLS
    )


# --- properties ----------------------------------------------------------------------------

KEYS = [
    "target_portal",
    "target_portals",
    "target_iqn",
    "target_iqns",
    "target_lun",
    "target_luns",
    "target_wwn",
    "target_wwns",
    "initiator_target_map",
    "device_path",
    "driver_volume_type",
    "data",
    "auth_password",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(
        [
            IQN,
            "IQN.2010-10.X:Y",
            "192.0.2.10",
            "[2001:db8::1]:3260",
            "2001:db8::1",
            WWN1,
            "0x" + WWN2.upper(),
            "1",
            "/dev/sdb",
            "/dev/../x",
            "iscsi",
            "fibre_channel",
            "local",
        ]
    )
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner)
        | st.dictionaries(
            st.one_of(st.sampled_from(KEYS), st.text(max_size=6), st.integers()), inner, max_size=4
        )
    ),
    max_leaves=12,
)
DICTS = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), VALUES, max_size=8)


@settings(max_examples=400, deadline=None)
@given(protocol=st.sampled_from(["iscsi", "fc", "local", "FIBRE_CHANNEL"]), data=DICTS)
def test_arbitrary_dicts_only_raise_invalid_input(protocol: str, data: dict[str, object]) -> None:
    for candidate in (data, {"driver_volume_type": protocol, "data": data}):
        try:
            properties = properties_from_dict(protocol, candidate)
        except exceptions.InvalidInput as exc:
            assert str(exc)
        else:
            assert properties.protocol == protocol_of(protocol)
            assert properties_from_dict(properties.protocol, properties.as_dict()) == properties


PORTALS = st.sampled_from(
    ["192.0.2.10", "192.0.2.11:3261", "[2001:db8::1]", "2001:DB8::2", "Storage.Example"]
)
NAMES = st.sampled_from([IQN, IQN2.upper(), "eui.02004567A425678D", "naa.52004567ba64678d"])
LUNS = st.integers(min_value=0, max_value=2**64 - 1)
WWNS = st.sampled_from([WWN1, WWN2, "0x" + INIT1.upper(), "50:0a:09:82:80:fe:eb:a6"])


@settings(max_examples=150, deadline=None)
@given(
    iscsi_paths=st.lists(st.tuples(PORTALS, NAMES, LUNS), min_size=1, max_size=4),
    fc_paths=st.lists(st.tuples(WWNS, LUNS), min_size=1, max_size=4),
    zoning=st.dictionaries(WWNS, st.lists(WWNS, max_size=3), max_size=3),
)
def test_built_properties_round_trip(
    iscsi_paths: list[tuple[str, str, int]],
    fc_paths: list[tuple[str, int]],
    zoning: dict[str, list[str]],
) -> None:
    built_iscsi = IscsiProperties(tuple(IscsiTargetLun(*p) for p in iscsi_paths))
    pairs = tuple((k, tuple(v)) for k, v in zoning.items())
    built_fc = FcProperties(tuple(FcTargetLun(*p) for p in fc_paths), pairs)
    for built in (built_iscsi, built_fc):
        assert properties_from_dict(built.protocol, built.as_dict()) == built
    assert list(built_fc.initiator_target_map) == sorted(built_fc.initiator_target_map)
