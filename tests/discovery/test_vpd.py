"""VPD page 0x80 / 0x83 parsing against real pages, hand-made defects and fuzzing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.discovery.vpd import (
    Association,
    CodeSet,
    Designator,
    DesignatorType,
    DeviceIdPage,
    IdentitySource,
    ProtocolId,
    VpdProblem,
    device_identity,
    kernel_wwid_to_multipath,
    multipath_wwid,
    parse_pg80,
    parse_pg83,
    preferred_lu_designator,
    udev_safe,
)

from .conftest import VPD_VECTORS, load_vpd_vectors

LU = Association.LOGICAL_UNIT
PORT = Association.TARGET_PORT
DEV = Association.TARGET_DEVICE
NAA = DesignatorType.NAA
T10 = DesignatorType.T10_VENDOR_ID
VS = DesignatorType.VENDOR_SPECIFIC
RTP = DesignatorType.RELATIVE_TARGET_PORT
TPG = DesignatorType.TARGET_PORT_GROUP
NAME = DesignatorType.SCSI_NAME_STRING
BIN = CodeSet.BINARY
ASCII = CodeSet.ASCII
UTF8 = CodeSet.UTF8
SAS = ProtocolId.SAS

# (association, type, code set, protocol (None unless PIV and port/device), text)
Expected = tuple[Association, DesignatorType, CodeSet, ProtocolId | None, str]

KINGSTON_T10 = "t10.ATA     KINGSTON SH103S3240G" + " " * 20 + "50026B724B09A1FF    "
WD_T10 = "t10.ATA     WDC WD800JD-00MSA1" + " " * 22 + "     WD-WMAM9XE78956"

# What each page 0x83 holds, written from its designators_note and bytes:
# designators, preferred LU WWN, multipath WWID.
PG83: dict[str, tuple[list[Expected], str | None, str | None]] = {
    "sg3utils-seagate-sas-pg83": (
        [
            (LU, NAA, BIN, None, "naa.5000c5003011cb2b"),
            (PORT, NAA, BIN, SAS, "naa.5000c5003011cb29"),
            (PORT, RTP, BIN, SAS, "0x1"),
            (DEV, NAA, BIN, SAS, "naa.5000c5003011cb28"),
            # PIV=0 here, so the protocol field means nothing
            (DEV, NAME, UTF8, None, "naa.5000C5003011CB28"),
        ],
        "naa.5000c5003011cb2b",
        "35000c5003011cb2b",
    ),
    "sg3utils-emc-dmx-pg83": (
        [(LU, NAA, BIN, None, "naa.60060480000190103189533030343834")],
        "naa.60060480000190103189533030343834",
        "360060480000190103189533030343834",
    ),
    "sg3utils-scsi_debug-pg83": (
        [
            (LU, T10, ASCII, None, "t10.Linux   scsi_debug      2000"),
            (LU, NAA, BIN, None, "naa.33333330000007d0"),
            (PORT, RTP, BIN, SAS, "0x1"),
            (PORT, NAA, BIN, SAS, "naa.32222220000007ce"),
            (PORT, TPG, BIN, SAS, "0x100"),
            (DEV, NAA, BIN, SAS, "naa.32222220000007cd"),
            (DEV, NAME, UTF8, SAS, "naa.32222220000007CD"),
        ],
        # NAA-3 beats the T10 vendor id that comes first
        "naa.33333330000007d0",
        "333333330000007d0",
    ),
    "util-linux-kingston-sh103s3-pg83": (
        [
            (LU, VS, ASCII, None, "50026B724B09A1FF    "),
            (LU, T10, ASCII, None, KINGSTON_T10),
            (LU, NAA, BIN, None, "naa.50026b724b09a1ff"),
        ],
        "naa.50026b724b09a1ff",
        "350026b724b09a1ff",
    ),
    "util-linux-wd800jd-pg83": (
        [
            (LU, VS, ASCII, None, "     WD-WMAM9XE78956"),
            (LU, T10, ASCII, None, WD_T10),
        ],
        # no NAA/EUI: the T10 vendor id is all there is
        WD_T10,
        "1ATA_WDC_WD800JD-00MSA1_WD-WMAM9XE78956",
    ),
    "infi-asi-nexsan-pg83-rtp2": (
        [
            (LU, NAA, BIN, None, "naa.6000402001f45eb566d41cc300000000"),
            (PORT, RTP, BIN, None, "0x2"),
            (PORT, TPG, BIN, None, "0x2"),
        ],
        "naa.6000402001f45eb566d41cc300000000",
        "36000402001f45eb566d41cc300000000",
    ),
    "infi-asi-infinibox-pg83": (
        [
            (LU, NAA, BIN, None, "naa.5742b0f010300000"),
            (LU, VS, ASCII, None, "ip=251.252.253.254"),
            (PORT, RTP, BIN, None, "0x2003"),
            (PORT, TPG, BIN, None, "0x2003"),
            (LU, NAME, UTF8, None, "host=just_for_test_host_name"),
            (LU, NAME, UTF8, None, "vol=VGX15S "),
        ],
        "naa.5742b0f010300000",
        "35742b0f010300000",
    ),
    "os-win-3par-pg83": (
        [
            (LU, NAA, BIN, None, "naa.60002ac00000000000000ea000008699"),
            (PORT, RTP, BIN, None, "0x3f4"),
            (PORT, TPG, BIN, None, "0x1"),
        ],
        "naa.60002ac00000000000000ea000008699",
        "360002ac00000000000000ea000008699",
    ),
    "linstor-seagate-exos-dothill-pg83": (
        [
            (LU, NAA, BIN, None, "naa.600c0ff00029a5f56e7bfe5f01000000"),
            (PORT, RTP, BIN, None, "0x1"),
            (
                LU,
                VS,
                BIN,
                None,
                # 0x11, "3beed4", NUL, MAC 00c0ff29a5f5, 0000, IP ac10100c (172.16.16.12),
                # MAC 00c0ff3b7c78, 0000, IP ac10100d (172.16.16.13)
                "11" + b"3beed4".hex() + "00" + "00c0ff29a5f5" + "0000" + "ac10100c"
                "00c0ff3b7c78" + "0000" + "ac10100d",
            ),
            (PORT, TPG, BIN, None, "0x0"),
            (PORT, NAA, BIN, SAS, "naa.500c0ff3beed4000"),
            (DEV, NAA, BIN, SAS, "naa.500c0ff3beed4000"),
        ],
        "naa.600c0ff00029a5f56e7bfe5f01000000",
        "3600c0ff00029a5f56e7bfe5f01000000",
    ),
}

INFINIBOX_SERIAL = "742b0f0000075360000000000000000"

# page 0x80: (text as reported minus padding, trimmed identity serial, peripheral type)
PG80: dict[str, tuple[str, str, int]] = {
    "sg3utils-scsi_debug-pg80": ("2000", "2000", 0),
    "util-linux-kingston-sh103s3-pg80": ("50026B724B09A1FF", "50026B724B09A1FF", 0),
    # leading spaces of a right-justified ATA serial: kept in text, dropped in identity
    "util-linux-wd800jd-pg80": ("     WD-WMAM9XE78956", "WD-WMAM9XE78956", 0),
    # NUL counted inside the page length
    "infi-asi-infinibox-pg80-pdt0c": (
        "742b0f0000075360000000000000000",
        "742b0f0000075360000000000000000",
        0x0C,
    ),
    "trident-netapp-ontap-pg80": ("yocwB?Wl7x2l", "yocwB?Wl7x2l", 0),
}

LEGACY = "sg3utils-emc-symmetrix-legacy-pg83"

_VECTORS = load_vpd_vectors()


def _vector_params() -> list[Any]:
    if _VECTORS is None:
        return [pytest.param(None, id="vectors-missing")]
    return [pytest.param(v, id=v["id"]) for v in _VECTORS]


def _page(vector: dict[str, Any] | None) -> bytes:
    if vector is None:
        pytest.fail(f"VPD test vectors not found at {VPD_VECTORS} (tests/data/vpd)")
    return bytes.fromhex(vector["hex"])


def _summary(d: Designator) -> Expected:
    return (d.association, d.designator_type, d.code_set, d.protocol, d.text)


def test_every_vector_has_written_expectations() -> None:
    if _VECTORS is None:
        pytest.fail(f"VPD test vectors not found at {VPD_VECTORS}")
    ids = {v["id"] for v in _VECTORS}
    assert len(_VECTORS) == 15
    assert ids == set(PG83) | set(PG80) | {LEGACY}


@pytest.mark.parametrize("vector", _vector_params())
def test_real_page(vector: dict[str, Any] | None) -> None:
    data = _page(vector)
    assert vector is not None
    vid = vector["id"]
    if vector["page_code"] == "0x80":
        text, trimmed, peripheral = PG80[vid]
        page = parse_pg80(data)
        assert page.warnings == ()
        assert page.peripheral_type == peripheral
        assert page.serial is not None
        assert page.serial.text == text
        assert page.serial.raw == data[4:]  # raw form stays available, padding and all
        identity = device_identity(data, None, None)
        assert identity.serial == trimmed
        assert identity.unit_serial == page.serial
        return

    parsed = parse_pg83(data)
    if vid == LEGACY:
        # bare NAA-6 with no descriptor header: a warning and no bogus designator
        assert parsed.designators == ()
        assert [w.code for w in parsed.warnings] == [VpdProblem.LEGACY_LAYOUT]
        assert parsed.warnings[0].offset == 4
        assert parsed.legacy_id == bytes.fromhex("6006048000123456789abcdef0123456")
        identity = device_identity(None, data, None)
        assert identity.wwn is None
        assert identity.source is IdentitySource.LEGACY_PAGE_83
        # what udev's scsi_id makes of such a page
        assert identity.wwid == "36006048000123456789abcdef0123456"
        return

    expected, wwn, wwid = PG83[vid]
    assert parsed.warnings == ()
    assert parsed.legacy_id is None
    assert [_summary(d) for d in parsed.designators] == expected
    # every descriptor's stated length is consumed exactly: header + designators == page
    assert 4 + sum(4 + len(d.raw) for d in parsed.designators) == len(data)
    identity = device_identity(None, data, None)
    assert identity.wwn == wwn
    assert identity.wwid == wwid
    assert identity.designators == parsed.designators
    assert identity.source is IdentitySource.VPD_PAGE_83


def test_odd_lengths_are_followed_not_aligned() -> None:
    vector = next((v for v in _VECTORS or () if v["id"] == "infi-asi-infinibox-pg83"), None)
    data = _page(vector)
    parsed = parse_pg83(data)
    lengths = [len(d.raw) for d in parsed.designators]
    assert lengths == [8, 19, 4, 4, 29, 12]
    assert parsed.designators[1].raw.endswith(b"\x00")
    assert [d.number for d in parsed.designators[2:4]] == [0x2003, 0x2003]


def test_protocol_needs_piv_and_port_association() -> None:
    vector = next((v for v in _VECTORS or () if v["id"] == "sg3utils-seagate-sas-pg83"), None)
    parsed = parse_pg83(_page(vector))
    name = parsed.designators[4]
    assert name.protocol_id is ProtocolId.FC  # raw field is 0 ...
    assert name.protocol is None  # ... but PIV=0 makes it meaningless
    assert parsed.designators[1].piv
    assert parsed.designators[1].naa_type == 5


# --- hand-made pages ---------------------------------------------------------------


def _pg83(*descriptors: bytes, page_length: int | None = None) -> bytes:
    body = b"".join(descriptors)
    length = len(body) if page_length is None else page_length
    return b"\x00\x83" + length.to_bytes(2, "big") + body


def _desc(b0: int, b1: int, value: bytes) -> bytes:
    return bytes((b0, b1, 0, len(value))) + value


NAA6 = _desc(0x01, 0x03, bytes.fromhex("600a098038303053453f463239723033"))
NAA6_TEXT = "naa.600a098038303053453f463239723033"
NAA5 = _desc(0x01, 0x03, bytes.fromhex("5000c50000000001"))
NAA3 = _desc(0x01, 0x03, bytes.fromhex("3000000000000001"))
NAA2 = _desc(0x01, 0x03, bytes.fromhex("2000000000000001"))
NAA6_SHORT = _desc(0x01, 0x03, bytes.fromhex("6000000000000001"))
EUI16 = _desc(0x01, 0x02, bytes.fromhex("00112233445566778899aabbccddeeff"))
EUI8 = _desc(0x01, 0x02, bytes.fromhex("0011223344556677"))
T10_ID = _desc(0x02, 0x01, b"VENDOR  PRODUCT 1234")
NAME_LU = _desc(0x03, 0x08, b"iqn.2000-01.com.example:lun1\x00\x00\x00\x00")
NAA_PORT = _desc(0x61, 0x93, bytes.fromhex("5000000000000009"))
UUID_LU = _desc(0x01, 0x0A, bytes.fromhex("1000") + bytes(range(16)))


@pytest.mark.parametrize(
    ("descriptors", "wwn"),
    [
        (
            (T10_ID, NAME_LU, EUI8, NAA2, NAA3, NAA5, NAA6_SHORT, NAA6),
            "naa.600a098038303053453f463239723033",
        ),
        ((T10_ID, NAME_LU, EUI8, NAA2, NAA3, NAA5, NAA6_SHORT), "naa.6000000000000001"),
        ((T10_ID, NAME_LU, EUI8, NAA2, NAA3, NAA5), "naa.5000c50000000001"),
        ((T10_ID, NAME_LU, EUI8, NAA2, NAA3), "naa.3000000000000001"),
        ((T10_ID, NAME_LU, EUI8, NAA2), "naa.2000000000000001"),
        ((T10_ID, NAME_LU, EUI8, EUI16), "eui.00112233445566778899aabbccddeeff"),
        ((T10_ID, NAME_LU, EUI8), "eui.0011223344556677"),
        ((T10_ID, NAME_LU), "iqn.2000-01.com.example:lun1"),
        ((T10_ID,), "t10.VENDOR  PRODUCT 1234"),
        ((NAA_PORT,), None),  # target port designators never name the LU
        ((UUID_LU,), None),
    ],
)
def test_lu_wwn_preference(descriptors: tuple[bytes, ...], wwn: str | None) -> None:
    page = parse_pg83(_pg83(*descriptors))
    chosen = preferred_lu_designator(page.designators)
    assert (chosen.text if chosen else None) == wwn
    # order of the descriptors in the page does not change the choice
    reversed_page = parse_pg83(_pg83(*reversed(descriptors)))
    chosen_r = preferred_lu_designator(reversed_page.designators)
    assert (chosen_r.text if chosen_r else None) == wwn


def test_naa6_with_wrong_length_is_kept_with_warning() -> None:
    page = parse_pg83(_pg83(NAA6_SHORT))
    assert [d.text for d in page.designators] == ["naa.6000000000000001"]
    assert [w.code for w in page.warnings] == [VpdProblem.BAD_DESIGNATOR_LENGTH]


def test_uuid_designator_text() -> None:
    page = parse_pg83(_pg83(UUID_LU))
    assert page.designators[0].text == "uuid.00010203-0405-0607-0809-0a0b0c0d0e0f"
    assert page.designators[0].designator_type is DesignatorType.UUID


def test_multipath_wwid_follows_scsi_id_order() -> None:
    # scsi_id: NAA-6, NAA-5, any NAA, EUI-64, T10 - and never SCSI name strings
    assert multipath_wwid(parse_pg83(_pg83(EUI16, NAA3, NAA5))) == "35000c50000000001"
    assert multipath_wwid(parse_pg83(_pg83(EUI16, NAA3))) == "33000000000000001"
    assert multipath_wwid(parse_pg83(_pg83(T10_ID, EUI8))) == "20011223344556677"
    assert multipath_wwid(parse_pg83(_pg83(NAME_LU, T10_ID))) == "1VENDOR_PRODUCT_1234"
    assert multipath_wwid(parse_pg83(_pg83(NAME_LU))) is None


def test_multipath_wwid_vendor_specific_and_serial_fallbacks() -> None:
    vs = parse_pg83(_pg83(_desc(0x02, 0x00, b"ABC 123")))
    assert multipath_wwid(vs) is None  # needs the INQUIRY vendor and model
    assert multipath_wwid(vs, vendor="ACME    ", model="Box             ") == "0ACME_Box_ABC_123"
    serial = parse_pg80(b"\x00\x80\x00\x06SER 42").serial
    empty = parse_pg83(None)
    assert multipath_wwid(empty, serial, vendor="ACME    ", model="Box             ") == (
        "SACME_Box_SER_42"
    )


def test_kernel_wwid_conversion() -> None:
    assert kernel_wwid_to_multipath("naa.600A0B80") == "3600a0b80"
    assert kernel_wwid_to_multipath("eui.0011223344556677") == "20011223344556677"
    assert kernel_wwid_to_multipath("t10.ATA     WDC  X   ") == "1ATA_WDC_X"
    assert kernel_wwid_to_multipath("iqn.2000-01.com.example:x") is None
    assert kernel_wwid_to_multipath("naa.") is None


def test_udev_safe() -> None:
    assert udev_safe("  a  b\tc ") == "a_b_c"
    assert udev_safe("x/y,z") == "x_y_z"
    assert udev_safe("ok#+-.:=@_") == "ok#+-.:=@_"


def test_identity_falls_back_to_wwid_attribute() -> None:
    identity = device_identity(None, None, "naa.600a0b800026b52e0000000000000000")
    assert identity.wwn == "naa.600a0b800026b52e0000000000000000"
    assert identity.wwid == "3600a0b800026b52e0000000000000000"
    assert identity.source is IdentitySource.WWID_ATTRIBUTE
    assert identity.warnings == ()  # the attribute stands in for the missing page


def test_identity_without_anything() -> None:
    identity = device_identity(None, None, None)
    assert not identity.known
    assert identity.source is IdentitySource.NONE
    assert [w.code for w in identity.warnings] == [VpdProblem.MISSING]


def test_truncated_page_keeps_what_could_be_read() -> None:
    full = _pg83(NAA6, T10_ID)
    cut = full[: 4 + len(NAA6) + 6]  # in the middle of the T10 descriptor
    page = parse_pg83(cut)
    assert [d.text for d in page.designators] == ["naa.600a098038303053453f463239723033"]
    assert [w.code for w in page.warnings] == [
        VpdProblem.TRUNCATED,
        VpdProblem.DESIGNATOR_OVERRUN,
    ]
    assert page.warnings[1].offset == 4 + len(NAA6)
    # ... but a page cut short is not trusted for identity: what it lost may be
    # the preferred designator. The kernel's wwid attribute stands in, if any.
    identity = device_identity(None, cut, None)
    assert (identity.wwn, identity.wwid, identity.source) == (None, None, IdentitySource.NONE)
    assert [d.text for d in identity.designators] == ["naa.600a098038303053453f463239723033"]
    assert VpdProblem.TRUNCATED in [w.code for w in identity.warnings]
    fallback = device_identity(None, cut, "naa.600a098038303053453f463239723033")
    assert fallback.source is IdentitySource.WWID_ATTRIBUTE
    assert fallback.wwn == "naa.600a098038303053453f463239723033"


def test_a_cut_serial_page_gives_no_serial() -> None:
    serial = b"80ABCD000000"
    page = bytes([0x00, 0x80, 0x00, len(serial)]) + serial
    assert device_identity(page, None, None).serial == "80ABCD000000"
    cut = device_identity(page[:-3], None, None)
    assert cut.serial is None
    assert VpdProblem.TRUNCATED in [w.code for w in cut.warnings]


def test_truncated_first_descriptor_gives_no_identity() -> None:
    cut = _pg83(NAA6)[:10]
    identity = device_identity(None, cut, None)
    assert not identity.known
    assert identity.designators == ()
    assert {w.code for w in identity.warnings} == {
        VpdProblem.TRUNCATED,
        VpdProblem.DESIGNATOR_OVERRUN,
    }


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", VpdProblem.SHORT_HEADER),
        (b"\x00\x83\x00", VpdProblem.SHORT_HEADER),
        (b"\x00\x80\x00\x00", VpdProblem.WRONG_PAGE),
        (b"\x00\x83\x00\x00", VpdProblem.EMPTY),
        (_pg83(NAA5) + b"\xff\xff", VpdProblem.TRAILING_BYTES),
        (_pg83(NAA5, b"\x01\x03"), VpdProblem.DESCRIPTOR_TRUNCATED),
        (_pg83(_desc(0x05, 0x03, bytes(8))), VpdProblem.RESERVED_CODE_SET),
        (_pg83(_desc(0x02, 0x01, b"AB\x01C")), VpdProblem.NOT_ASCII),
        (_pg83(_desc(0x03, 0x08, b"\xff\xfe")), VpdProblem.BAD_UTF8),
        (_pg83(_desc(0x01, 0x02, bytes(5))), VpdProblem.BAD_DESIGNATOR_LENGTH),
        (_pg83(_desc(0x01, 0x04, bytes(2))), VpdProblem.BAD_DESIGNATOR_LENGTH),
    ],
)
def test_pg83_problems_are_warnings(data: bytes, code: VpdProblem) -> None:
    page = parse_pg83(data)
    assert code in {w.code for w in page.warnings}
    assert all(w.page == 0x83 for w in page.warnings)


def test_trailing_bytes_are_ignored() -> None:
    page = parse_pg83(_pg83(NAA5) + NAA6)
    assert [d.text for d in page.designators] == ["naa.5000c50000000001"]


# b1 = PIV | association | type: 0x94 relative target port, 0x95 target port group
# (target port association), 0x03 NAA, 0x02 EUI-64 (logical unit), 0x08 SCSI name.
@pytest.mark.parametrize(
    ("b0", "b1", "value"),
    [
        (0x02, 0x14, b"0001"),  # relative target port in ASCII
        (0x03, 0x15, b"0002"),  # target port group in UTF-8
        (0x02, 0x03, b"600a098038303053453f463239723033"),  # NAA in ASCII
        (0x02, 0x02, b"0011223344556677"),  # EUI-64 in ASCII
        (0x01, 0x08, b"iqn.2010-10.org.openstack:x\x00"),  # SCSI name string in binary
    ],
)
def test_a_code_set_that_contradicts_the_type_is_malformed(b0: int, b1: int, value: bytes) -> None:
    page = parse_pg83(_pg83(_desc(b0, b1, value)))
    [warning] = [w for w in page.warnings if w.code is VpdProblem.CODE_SET_MISMATCH]
    assert warning.offset == 4
    [designator] = page.designators
    assert designator.text == value.hex()  # its bytes, not a number or name read from text
    assert designator.number is None
    identity = device_identity(None, _pg83(_desc(b0, b1, value)), None)
    assert identity.wwn is None  # never an identity


def test_binary_relative_target_port_is_still_a_number() -> None:
    page = parse_pg83(_pg83(_desc(0x01, 0x14, b"\x00\x00\x00\x07")))
    assert not page.warnings
    assert page.designators[0].number == 7


def test_not_ascii_is_escaped() -> None:
    page = parse_pg83(_pg83(_desc(0x02, 0x01, b"AB\x01C\x00\x00")))
    assert page.designators[0].text == "t10.AB\\x01C"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x00\x80", VpdProblem.SHORT_HEADER),
        (b"\x00\x83\x00\x02ab", VpdProblem.WRONG_PAGE),
        (b"\x00\x80\x00\x08abc", VpdProblem.TRUNCATED),
        (b"\x00\x80\x00\x04    ", VpdProblem.EMPTY),
        (b"\x00\x80\x00\x02ab\x00", VpdProblem.TRAILING_BYTES),
        (b"\x00\x80\x00\x03a\x07b", VpdProblem.NOT_ASCII),
    ],
)
def test_pg80_problems_are_warnings(data: bytes, code: VpdProblem) -> None:
    page = parse_pg80(data)
    assert code in {w.code for w in page.warnings}


def test_pg80_truncated_keeps_what_is_there() -> None:
    page = parse_pg80(b"\x00\x80\x00\x08abc")
    assert page.serial is not None
    assert page.serial.text == "abc"


# --- fuzzing ----------------------------------------------------------------------


class _Tracked(bytes):
    """bytes that remember the highest index read through [] (ints and slices)."""

    highest: int

    def __new__(cls, data: bytes) -> _Tracked:
        obj = super().__new__(cls, data)
        obj.highest = -1
        return obj

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            start, stop, _ = key.indices(len(self))
            if stop > start:
                self.highest = max(self.highest, stop - 1)
        else:
            self.highest = max(self.highest, key if key >= 0 else len(self) + key)
        return super().__getitem__(key)


def _check_page(data: bytes, page: DeviceIdPage) -> None:
    stated = int.from_bytes(data[2:4], "big") if len(data) >= 4 else 0
    end = min(len(data), 4 + stated)
    consumed = sum(4 + len(d.raw) for d in page.designators)
    assert consumed <= max(0, end - 4)
    for w in page.warnings:
        assert 0 <= w.offset <= len(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_pg83_random_bytes_never_raise(data: bytes) -> None:
    page = parse_pg83(data)
    _check_page(data, page)
    device_identity(data, data, data.decode("latin-1"))
    parse_pg80(data)


@settings(max_examples=400, deadline=None)
@given(
    payload=st.lists(
        st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=40)), max_size=6
    ),
    stated_delta=st.integers(-30, 30),
    trailer=st.binary(max_size=40),
)
def test_pg83_never_reads_past_stated_length(
    payload: list[tuple[int, int, bytes]], stated_delta: int, trailer: bytes
) -> None:
    body = b"".join(bytes((b0, b1, 0, len(v))) + v for b0, b1, v in payload)
    stated = max(0, len(body) + stated_delta)
    data = _Tracked(b"\x00\x83" + stated.to_bytes(2, "big") + body + trailer)
    page = parse_pg83(data)
    assert data.highest < 4 + stated
    _check_page(bytes(data), page)
    # what follows the stated length makes no difference to the designators
    bounded = bytes(data)[: 4 + stated]
    if len(bounded) == 4 + stated:
        assert parse_pg83(bounded + b"\xaa" * 7).designators == parse_pg83(bounded).designators


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=60), trailer=st.binary(max_size=20))
def test_pg80_never_reads_past_stated_length(body: bytes, trailer: bytes) -> None:
    data = _Tracked(b"\x00\x80" + len(body).to_bytes(2, "big") + body + trailer)
    page = parse_pg80(data)
    assert data.highest < 4 + len(body)
    if page.serial is not None:
        assert len(page.serial.raw) <= len(body)


def _real_pages() -> list[bytes]:
    return [bytes.fromhex(v["hex"]) for v in _VECTORS or ()]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_truncations_of_real_pages(data: st.DataObject) -> None:
    pages = _real_pages()
    if not pages:
        pytest.fail(f"VPD test vectors not found at {VPD_VECTORS}")
    full = data.draw(st.sampled_from(pages))
    cut = data.draw(st.integers(0, len(full)))
    truncated = full[:cut]
    if full[1] == 0x80:
        page80 = parse_pg80(truncated)
        if 4 <= cut < len(full):
            assert VpdProblem.TRUNCATED in {w.code for w in page80.warnings}
        return
    whole = parse_pg83(full)
    page = parse_pg83(truncated)
    _check_page(truncated, page)
    # a truncated page yields a prefix of the full page's designators
    assert page.designators == whole.designators[: len(page.designators)]
    if 4 <= cut < len(full):
        assert VpdProblem.TRUNCATED in {w.code for w in page.warnings}
