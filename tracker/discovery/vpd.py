"""SCSI Vital Product Data: pages 0x80 (unit serial number) and 0x83 (device identification).

Pure functions of the page bytes as the kernel exposes them in the ``vpd_pg80`` and
``vpd_pg83`` sysfs attributes. Nothing here raises on bad input: a page that is
missing, short, truncated or malformed yields whatever could be read plus
:class:`VpdWarning` records that say what was wrong and where.

Rules followed while walking page 0x83 (SPC-4, 7.8.6):

* the walk is bounded by the *stated* page length (bytes 2-3), never by the buffer
  size; bytes after it are ignored (with a warning);
* each designation descriptor is advanced over by its stated designator length
  (byte 3), never by an alignment; a descriptor that would run past the page end is
  not turned into a :class:`Designator` (a warning is recorded and the walk stops);
* a pre-SPC-2 page that carries a bare NAA value right after the page header (old EMC
  Symmetrix) is recognised, reported with a warning and kept apart as
  :attr:`DeviceIdPage.legacy_id`: it never becomes a :class:`Designator`.

Text forms of designators (:attr:`Designator.text`):

* NAA: ``naa.`` + lowercase hex, as the kernel's ``wwid`` attribute writes it;
* EUI-64: ``eui.`` + lowercase hex;
* T10 vendor ID: ``t10.`` + the ASCII, spaces kept, trailing NULs removed,
  non-printable bytes escaped as ``\\xNN``;
* SCSI name string: the UTF-8 text up to its first NUL (SPC null-terminates and
  null-pads it);
* relative target port, target port group, logical unit group: ``0x`` + hex number;
* locally assigned UUID: ``uuid.`` + the 8-4-4-4-12 form;
* vendor specific: the text for ASCII/UTF-8 code sets, lowercase hex otherwise;
* anything else (MD5, protocol specific, reserved): lowercase hex.

Unit serial numbers (page 0x80): trailing NULs and spaces are padding and are removed
from :attr:`UnitSerial.text`; *leading* spaces are kept there because that is what the
device reports (ATA drives behind libata right-justify their serial, e.g.
``"     WD-WMAM9XE78956"``). :attr:`UnitSerial.trimmed` (used as
:attr:`DeviceIdentity.serial`) drops them as well, which is the form ``udev``
(``ID_SCSI_SERIAL``), ``hdparm`` and ``smartctl`` show; :attr:`UnitSerial.raw` keeps the
exact bytes.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import IntEnum, StrEnum

__all__ = [
    "Association",
    "CodeSet",
    "Designator",
    "DesignatorType",
    "DeviceIdPage",
    "DeviceIdentity",
    "IdentitySource",
    "ProtocolId",
    "SerialPage",
    "UnitSerial",
    "VpdProblem",
    "VpdWarning",
    "device_identity",
    "kernel_wwid_to_multipath",
    "multipath_wwid",
    "parse_pg80",
    "parse_pg83",
    "preferred_lu_designator",
    "udev_safe",
]

PAGE_SERIAL = 0x80
PAGE_DEVICE_ID = 0x83


class CodeSet(IntEnum):
    """Code set of a designation descriptor (byte 0, bits 3-0)."""

    RESERVED_0 = 0
    BINARY = 1
    ASCII = 2
    UTF8 = 3
    RESERVED_4 = 4
    RESERVED_5 = 5
    RESERVED_6 = 6
    RESERVED_7 = 7
    RESERVED_8 = 8
    RESERVED_9 = 9
    RESERVED_A = 0xA
    RESERVED_B = 0xB
    RESERVED_C = 0xC
    RESERVED_D = 0xD
    RESERVED_E = 0xE
    RESERVED_F = 0xF


class Association(IntEnum):
    """What a designator identifies (byte 1, bits 5-4)."""

    LOGICAL_UNIT = 0
    TARGET_PORT = 1
    TARGET_DEVICE = 2
    RESERVED = 3


class DesignatorType(IntEnum):
    """Designator type (byte 1, bits 3-0)."""

    VENDOR_SPECIFIC = 0
    T10_VENDOR_ID = 1
    EUI64 = 2
    NAA = 3
    RELATIVE_TARGET_PORT = 4
    TARGET_PORT_GROUP = 5
    LOGICAL_UNIT_GROUP = 6
    MD5_LOGICAL_UNIT = 7
    SCSI_NAME_STRING = 8
    PROTOCOL_SPECIFIC = 9
    UUID = 0xA
    RESERVED_B = 0xB
    RESERVED_C = 0xC
    RESERVED_D = 0xD
    RESERVED_E = 0xE
    RESERVED_F = 0xF


class ProtocolId(IntEnum):
    """SCSI transport protocol identifier (byte 0, bits 7-4)."""

    FC = 0
    SPI = 1
    SSA = 2
    SBP = 3
    SRP = 4
    ISCSI = 5
    SAS = 6
    ADT = 7
    ATA = 8
    UAS = 9
    SOP = 0xA
    PCIE = 0xB
    RESERVED_C = 0xC
    RESERVED_D = 0xD
    RESERVED_E = 0xE
    NONE = 0xF


_CODE_SETS = tuple(CodeSet)
_ASSOCIATIONS = tuple(Association)
_TYPES = tuple(DesignatorType)
_PROTOCOLS = tuple(ProtocolId)


class VpdProblem(StrEnum):
    """Kinds of problems found in a VPD page (:attr:`VpdWarning.code`)."""

    MISSING = "missing"
    """The page was not available at all."""
    SHORT_HEADER = "short-header"
    """Fewer than the 4 bytes of a page header."""
    WRONG_PAGE = "wrong-page"
    """Byte 1 is not the expected page code; the page was not decoded."""
    TRUNCATED = "truncated"
    """The stated page length runs past the bytes available."""
    TRAILING_BYTES = "trailing-bytes"
    """Bytes after the stated page length; ignored."""
    DESCRIPTOR_TRUNCATED = "descriptor-truncated"
    """Fewer than 4 bytes left for a designation descriptor header."""
    DESIGNATOR_OVERRUN = "designator-overrun"
    """A designator's stated length runs past the page end; it was dropped."""
    LEGACY_LAYOUT = "legacy-layout"
    """Pre-SPC-2 page 0x83: a bare identifier without descriptor header."""
    RESERVED_CODE_SET = "reserved-code-set"
    """A descriptor uses a reserved code set."""
    BAD_DESIGNATOR_LENGTH = "bad-designator-length"
    """A designator has a length its type does not allow (kept as is)."""
    NOT_ASCII = "not-ascii"
    """An ASCII field holds bytes outside printable ASCII (escaped)."""
    BAD_UTF8 = "bad-utf8"
    """A UTF-8 designator is not valid UTF-8 (escaped)."""
    EMPTY = "empty"
    """The page (or its serial number) is empty."""
    CODE_SET_MISMATCH = "code-set-mismatch"
    """A designator's code set contradicts its type (a relative target port in ASCII,
    an NAA name in UTF-8 ...): the designator is malformed, as ``sg_vpd`` says; its
    text is its bytes in hex, and it is never used as an identity or a number."""


@dataclass(frozen=True, slots=True)
class VpdWarning:
    """Something wrong in a VPD page, found while parsing it.

    :ivar page: page code (``0x80`` or ``0x83``).
    :ivar code: what kind of problem.
    :ivar reason: a human-readable explanation.
    :ivar offset: byte offset in the page where the problem is.
    """

    page: int
    code: VpdProblem
    reason: str
    offset: int

    def __str__(self) -> str:
        return f"VPD page {self.page:#04x} at offset {self.offset}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Designator:
    """One designation descriptor of VPD page 0x83.

    :ivar association: what it identifies (logical unit, target port, target device).
    :ivar designator_type: the designator type.
    :ivar code_set: binary, ASCII or UTF-8 (or a reserved value).
    :ivar piv: the PROTOCOL IDENTIFIER VALID bit.
    :ivar protocol_id: the raw protocol identifier field; see :attr:`protocol` for
        whether it means anything.
    :ivar raw: the designator bytes, without the 4-byte descriptor header.
    :ivar text: the normalized text form (see the module documentation).
    """

    association: Association
    designator_type: DesignatorType
    code_set: CodeSet
    piv: bool
    protocol_id: ProtocolId
    raw: bytes
    text: str

    @property
    def protocol(self) -> ProtocolId | None:
        """Return the protocol, or ``None`` when the field is not valid.

        SPC-4 makes the protocol identifier meaningful only when PIV is set and the
        designator is about a target port or target device. Never raises.
        """
        if self.piv and self.association in (Association.TARGET_PORT, Association.TARGET_DEVICE):
            return self.protocol_id
        return None

    @property
    def naa_type(self) -> int | None:
        """Return the NAA field (2, 3, 5, 6 ...) of a binary NAA designator, else ``None``.

        Never raises.
        """
        if self.designator_type is DesignatorType.NAA and self.code_set is CodeSet.BINARY:
            return self.raw[0] >> 4 if self.raw else None
        return None

    @property
    def number(self) -> int | None:
        """Return the number carried by a relative target port, target port group or
        logical unit group designator, else ``None``. Never raises.
        """
        if (
            self.designator_type in _NUMBERED
            and self.code_set is CodeSet.BINARY
            and len(self.raw) >= 4
        ):
            return int.from_bytes(self.raw[2:4], "big")
        return None


_NUMBERED = frozenset(
    (
        DesignatorType.RELATIVE_TARGET_PORT,
        DesignatorType.TARGET_PORT_GROUP,
        DesignatorType.LOGICAL_UNIT_GROUP,
    )
)


@dataclass(frozen=True, slots=True)
class UnitSerial:
    """The unit serial number of page 0x80.

    :ivar raw: the serial number field exactly as reported (within the stated length).
    :ivar text: the serial decoded as ASCII, trailing NULs and spaces removed, leading
        spaces kept, non-printable bytes escaped as ``\\xNN``.
    """

    raw: bytes
    text: str

    @property
    def trimmed(self) -> str:
        """Return :attr:`text` without leading whitespace either. Never raises."""
        return self.text.lstrip(" ")


@dataclass(frozen=True, slots=True)
class SerialPage:
    """Result of :func:`parse_pg80`.

    :ivar serial: the serial number, or ``None`` when none could be read.
    :ivar peripheral_type: peripheral device type from byte 0, when present.
    :ivar warnings: problems found.
    """

    serial: UnitSerial | None
    peripheral_type: int | None
    warnings: tuple[VpdWarning, ...]


@dataclass(frozen=True, slots=True)
class DeviceIdPage:
    """Result of :func:`parse_pg83`.

    :ivar designators: the well-formed descriptors, in page order.
    :ivar peripheral_type: peripheral device type from byte 0, when present.
    :ivar legacy_id: for a pre-SPC-2 page (no descriptor header), the bare identifier
        bytes that follow the page header; ``None`` otherwise.
    :ivar warnings: problems found.
    """

    designators: tuple[Designator, ...]
    peripheral_type: int | None
    legacy_id: bytes | None
    warnings: tuple[VpdWarning, ...]


# --- helpers -----------------------------------------------------------------


_NOT_PRINTABLE = re.compile(rb"[^\x20-\x7e]")


def _ascii_text(data: bytes) -> tuple[str, bool]:
    """Decode ASCII, escaping anything not printable; say whether anything was."""
    if _NOT_PRINTABLE.search(data) is None:
        return data.decode("ascii"), True
    return "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in data), False


def _utf8_text(data: bytes) -> tuple[str, bool]:
    """Decode UTF-8, escaping invalid sequences; say whether it was valid."""
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="backslashreplace"), False


def _header(data: bytes, page: int, warnings: list[VpdWarning]) -> tuple[int, int] | None:
    """Check a page header; return (peripheral type, end offset) or None."""
    if len(data) < 4:
        warnings.append(
            VpdWarning(
                page,
                VpdProblem.SHORT_HEADER,
                f"{len(data)} byte(s), a page header needs 4",
                0,
            )
        )
        return None
    if data[1] != page:
        warnings.append(
            VpdWarning(
                page, VpdProblem.WRONG_PAGE, f"page code is {data[1]:#04x}, not {page:#04x}", 1
            )
        )
        return None
    stated = int.from_bytes(data[2:4], "big")
    end = 4 + stated
    if end > len(data):
        warnings.append(
            VpdWarning(
                page,
                VpdProblem.TRUNCATED,
                f"page length says {stated} byte(s) but only {len(data) - 4} follow the header",
                len(data),
            )
        )
        end = len(data)
    elif end < len(data):
        warnings.append(
            VpdWarning(
                page,
                VpdProblem.TRAILING_BYTES,
                f"{len(data) - end} byte(s) after the stated page length ignored",
                end,
            )
        )
    return data[0] & 0x1F, end


# --- page 0x80 ------------------------------------------------------------------


def parse_pg80(data: bytes | None) -> SerialPage:
    """Parse a Unit Serial Number VPD page (0x80).

    :param data: the page (``vpd_pg80`` attribute), header included, or ``None`` when
        the device has none.
    :returns: the serial (``None`` when none could be read) and any warnings.
        Never raises.
    """
    warnings: list[VpdWarning] = []
    if data is None:
        warnings.append(VpdWarning(PAGE_SERIAL, VpdProblem.MISSING, "no page 0x80", 0))
        return SerialPage(None, None, tuple(warnings))
    header = _header(data, PAGE_SERIAL, warnings)
    if header is None:
        return SerialPage(None, None, tuple(warnings))
    peripheral, end = header
    raw = data[4:end]
    stripped = raw.rstrip(b"\x00 ")
    if not stripped.strip(b" "):
        warnings.append(VpdWarning(PAGE_SERIAL, VpdProblem.EMPTY, "serial number is blank", 4))
        return SerialPage(None, peripheral, tuple(warnings))
    text, clean = _ascii_text(stripped)
    if not clean:
        warnings.append(
            VpdWarning(
                PAGE_SERIAL,
                VpdProblem.NOT_ASCII,
                "serial number holds non-printable bytes (escaped)",
                4,
            )
        )
    return SerialPage(UnitSerial(raw, text), peripheral, tuple(warnings))


# --- page 0x83 ------------------------------------------------------------------

_NAA_LENGTHS = {2: 8, 3: 8, 5: 8, 6: 16}

# Enum member access goes through the enum metaclass; these aliases keep the hot
# loop cheap.
_LU = Association.LOGICAL_UNIT
_BINARY = CodeSet.BINARY
_ASCII = CodeSet.ASCII
_UTF8 = CodeSet.UTF8
_NAA = DesignatorType.NAA
_EUI64 = DesignatorType.EUI64
_T10 = DesignatorType.T10_VENDOR_ID
_NAME = DesignatorType.SCSI_NAME_STRING
_UUID = DesignatorType.UUID
_VENDOR = DesignatorType.VENDOR_SPECIFIC

# The code set SPC-4 requires of each designator type (sg_vpd checks the same);
# T10 vendor ID and vendor-specific designators may use any.
_REQUIRED_CODE_SET = {
    _NAA: _BINARY,
    _EUI64: _BINARY,
    DesignatorType.RELATIVE_TARGET_PORT: _BINARY,
    DesignatorType.TARGET_PORT_GROUP: _BINARY,
    DesignatorType.LOGICAL_UNIT_GROUP: _BINARY,
    DesignatorType.MD5_LOGICAL_UNIT: _BINARY,
    _UUID: _BINARY,
    _NAME: _UTF8,
}
_EUI_LENGTHS = frozenset((8, 12, 16))


def _designator_text(
    dtype: DesignatorType,
    code_set: CodeSet,
    raw: bytes,
    offset: int,
    warnings: list[VpdWarning],
) -> str:
    """Normalized text of one designator, with warnings for odd content."""
    textual = code_set is _ASCII or code_set is _UTF8
    required = _REQUIRED_CODE_SET.get(dtype)
    if required is not None and code_set is not required and (textual or code_set is _BINARY):
        warnings.append(
            VpdWarning(
                PAGE_DEVICE_ID,
                VpdProblem.CODE_SET_MISMATCH,
                f"{dtype.name.lower().replace('_', ' ')} designator in code set "
                f"{code_set.name} (expected {required.name}): malformed, not decoded",
                offset,
            )
        )
        return raw.hex()
    if dtype is _NAA:
        naa = raw[0] >> 4 if raw else None
        expected = _NAA_LENGTHS.get(naa) if naa is not None else None
        if expected is not None and expected != len(raw):
            warnings.append(
                VpdWarning(
                    PAGE_DEVICE_ID,
                    VpdProblem.BAD_DESIGNATOR_LENGTH,
                    f"NAA-{naa} designator of {len(raw)} byte(s), expected {expected}",
                    offset,
                )
            )
        return "naa." + raw.hex()
    if dtype is _EUI64:
        if len(raw) not in _EUI_LENGTHS:
            warnings.append(
                VpdWarning(
                    PAGE_DEVICE_ID,
                    VpdProblem.BAD_DESIGNATOR_LENGTH,
                    f"EUI-64 designator of {len(raw)} byte(s), expected 8, 12 or 16",
                    offset,
                )
            )
        return "eui." + raw.hex()
    if dtype is _T10:
        return "t10." + _decode(code_set, raw.rstrip(b"\x00"), offset, warnings)
    if dtype is _NAME:
        nul = raw.find(b"\x00")
        return _decode(code_set, raw if nul < 0 else raw[:nul], offset, warnings)
    if dtype in _NUMBERED:
        if len(raw) != 4:
            warnings.append(
                VpdWarning(
                    PAGE_DEVICE_ID,
                    VpdProblem.BAD_DESIGNATOR_LENGTH,
                    f"{dtype.name} designator of {len(raw)} byte(s), expected 4",
                    offset,
                )
            )
        if len(raw) >= 4:
            return f"{int.from_bytes(raw[2:4], 'big'):#x}"
        return raw.hex()
    if dtype is _UUID and len(raw) == 18 and raw[0] >> 4 == 1:
        return "uuid." + str(uuid.UUID(bytes=raw[2:18]))
    if dtype is _VENDOR and textual:
        return _decode(code_set, raw.rstrip(b"\x00"), offset, warnings)
    return raw.hex()


def _decode(code_set: CodeSet, raw: bytes, offset: int, warnings: list[VpdWarning]) -> str:
    if code_set is _UTF8:
        text, ok = _utf8_text(raw)
        if not ok:
            warnings.append(
                VpdWarning(
                    PAGE_DEVICE_ID,
                    VpdProblem.BAD_UTF8,
                    "designator is not valid UTF-8 (escaped)",
                    offset,
                )
            )
        return text
    text, ok = _ascii_text(raw)
    if not ok:
        warnings.append(
            VpdWarning(
                PAGE_DEVICE_ID,
                VpdProblem.NOT_ASCII,
                "designator holds non-printable bytes (escaped)",
                offset,
            )
        )
    return text


def _looks_legacy(data: bytes, end: int) -> bool:
    """Whether the payload is a bare pre-SPC-2 identifier rather than descriptors.

    An SPC-2+ first descriptor has a zero reserved byte (offset 6) and fits in the page;
    the old EMC Symmetrix layout puts NAA bytes there (the OUI 0x006048 makes byte 6
    non-zero) and its would-be designator length overruns the page.
    """
    if end - 4 < 8 or data[6] == 0:
        return False
    overruns = 8 + data[7] > end
    reserved_code_set = data[4] & 0x0F not in (1, 2, 3)
    return overruns or reserved_code_set


def parse_pg83(data: bytes | None) -> DeviceIdPage:
    """Parse a Device Identification VPD page (0x83).

    :param data: the page (``vpd_pg83`` attribute), header included, or ``None`` when
        the device has none.
    :returns: the well-formed designators in page order, the bare identifier of a
        pre-SPC-2 page if that is what it is, and warnings. Never raises, and never
        looks at bytes past the stated page length.
    """
    warnings: list[VpdWarning] = []
    if data is None:
        warnings.append(VpdWarning(PAGE_DEVICE_ID, VpdProblem.MISSING, "no page 0x83", 0))
        return DeviceIdPage((), None, None, tuple(warnings))
    header = _header(data, PAGE_DEVICE_ID, warnings)
    if header is None:
        return DeviceIdPage((), None, None, tuple(warnings))
    peripheral, end = header
    if end == 4:
        warnings.append(VpdWarning(PAGE_DEVICE_ID, VpdProblem.EMPTY, "no designators", 4))
        return DeviceIdPage((), peripheral, None, tuple(warnings))
    if _looks_legacy(data, end):
        legacy = bytes(data[4:end])
        warnings.append(
            VpdWarning(
                PAGE_DEVICE_ID,
                VpdProblem.LEGACY_LAYOUT,
                f"no designation descriptor header: pre-SPC-2 layout holding a bare "
                f"{len(legacy)}-byte identifier",
                4,
            )
        )
        return DeviceIdPage((), peripheral, legacy, tuple(warnings))

    designators: list[Designator] = []
    offset = 4
    while offset < end:
        if end - offset < 4:
            warnings.append(
                VpdWarning(
                    PAGE_DEVICE_ID,
                    VpdProblem.DESCRIPTOR_TRUNCATED,
                    f"{end - offset} byte(s) left, a descriptor header needs 4",
                    offset,
                )
            )
            break
        b0 = data[offset]
        b1 = data[offset + 1]
        length = data[offset + 3]
        start = offset + 4
        stop = start + length
        if stop > end:
            warnings.append(
                VpdWarning(
                    PAGE_DEVICE_ID,
                    VpdProblem.DESIGNATOR_OVERRUN,
                    f"designator length {length} runs {stop - end} byte(s) past the page end",
                    offset,
                )
            )
            break
        code_value = b0 & 0x0F
        code_set = _CODE_SETS[code_value]
        if not 1 <= code_value <= 3:
            warnings.append(
                VpdWarning(
                    PAGE_DEVICE_ID,
                    VpdProblem.RESERVED_CODE_SET,
                    f"reserved code set {int(code_set)}",
                    offset,
                )
            )
        dtype = _TYPES[b1 & 0x0F]
        raw = bytes(data[start:stop])
        designators.append(
            Designator(
                _ASSOCIATIONS[(b1 >> 4) & 0x03],
                dtype,
                code_set,
                b1 >= 0x80,
                _PROTOCOLS[b0 >> 4],
                raw,
                _designator_text(dtype, code_set, raw, offset, warnings),
            )
        )
        offset = stop
    return DeviceIdPage(tuple(designators), peripheral, None, tuple(warnings))


# --- identity ---------------------------------------------------------------------


_NAA_RANKS = {6: 1, 5: 2, 3: 3, 2: 4}
_EUI_RANKS = {16: 6, 12: 7, 8: 8}


def _wwn_rank(d: Designator) -> int | None:
    """Rank of an LU designator as a WWN (lower is better), None if not usable."""
    if d.association is not _LU or not d.raw:
        return None
    dtype = d.designator_type
    if d.code_set is not _REQUIRED_CODE_SET.get(dtype, d.code_set):
        return None  # malformed (CODE_SET_MISMATCH)
    if dtype is _NAA:
        naa = d.raw[0] >> 4
        if naa == 6 and len(d.raw) == 16:
            return 0
        return _NAA_RANKS.get(naa, 5)
    if dtype is _EUI64:
        return _EUI_RANKS.get(len(d.raw), 9)
    if dtype is _NAME:
        return 10 if d.text else None
    if dtype is _T10:
        return 11
    return None


def preferred_lu_designator(designators: tuple[Designator, ...]) -> Designator | None:
    """Pick the designator that best names the logical unit.

    Only designators associated with the logical unit count. Preference: NAA
    (IEEE registered extended NAA-6 of 16 bytes, other NAA-6, NAA-5, NAA-3, NAA-2,
    other NAA), then EUI-64 (16, 12, 8 bytes), then SCSI name string, then T10
    vendor ID; ties go to the first in page order.

    :returns: the chosen designator, or ``None`` if there is none. Never raises.
    """
    best: Designator | None = None
    best_rank = 99
    for d in designators:
        rank = _wwn_rank(d)
        if rank is not None and rank < best_rank:
            best, best_rank = d, rank
    return best


_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")
_UDEV_UNSAFE = re.compile(r"[^0-9A-Za-z#+\-.:=@_\x80-\U0010ffff]")


def udev_safe(text: str) -> str:
    """Apply udev's identifier clean-up, as done to ``ID_SERIAL``.

    Leading and trailing whitespace is removed, each run of inner whitespace becomes
    one ``_``, and ASCII characters outside ``[0-9A-Za-z#+-.:=@_]`` become ``_``
    (non-ASCII characters are kept, as udev keeps valid UTF-8).

    :returns: the cleaned text. Never raises.
    """
    return _UDEV_UNSAFE.sub("_", _WHITESPACE.sub("_", text.strip(" \t\n\v\f\r")))


# scsi_id's search order over LU designators: (type, NAA field or None for any).
_SCSI_ID_ORDER: tuple[tuple[DesignatorType, int | None], ...] = (
    (DesignatorType.NAA, 6),
    (DesignatorType.NAA, 5),
    (DesignatorType.NAA, None),
    (DesignatorType.EUI64, None),
    (DesignatorType.T10_VENDOR_ID, None),
    (DesignatorType.VENDOR_SPECIFIC, None),
)


def _udev_bytes(raw: bytes) -> str:
    """Bytes as udev treats them: UTF-8 where valid, ``_`` for invalid bytes."""
    return raw.decode("utf-8", errors="replace").replace("\ufffd", "_")


def _scsi_id_value(d: Designator) -> str:
    """The identifier part scsi_id writes: raw ASCII for ASCII, hex otherwise."""
    if d.code_set is _ASCII:
        return _udev_bytes(d.raw)
    return d.raw.hex()


def multipath_wwid(
    page: DeviceIdPage,
    serial: UnitSerial | None = None,
    *,
    vendor: str | None = None,
    model: str | None = None,
) -> str | None:
    """Compute the identifier udev's ``scsi_id`` derives (``ID_SERIAL``).

    That is the WWID dm-multipath uses by default, so a multipath map's dm uuid is
    ``mpath-`` + this value. The first character is the designator type in hex
    (``3`` NAA, ``2`` EUI-64, ``1`` T10 vendor ID, ``0`` vendor specific, prefixed
    with the 8-byte vendor and 16-byte model), binary designators follow as
    lowercase hex and ASCII ones as text, then :func:`udev_safe` is applied.
    Search order: NAA-6, NAA-5, any NAA, EUI-64, T10, vendor specific; binary
    before ASCII; logical-unit designators only. A pre-SPC-2 page gives ``3`` + hex
    of its bare identifier. Without page 0x83 identifiers it falls back to ``S`` +
    vendor + model + page 0x80 serial.

    :param page: the parsed page 0x83.
    :param serial: the page 0x80 serial, for the fallback.
    :param vendor: the standard INQUIRY vendor (sysfs ``vendor``, 8 characters padded),
        needed for vendor-specific designators and the serial fallback.
    :param model: the INQUIRY product (sysfs ``model``, 16 characters padded).
    :returns: the WWID, or ``None`` when scsi_id would find none. Never raises.
    """
    if page.legacy_id is not None:
        return "3" + page.legacy_id.hex()
    inquiry = None
    if vendor is not None and model is not None and len(vendor) == 8 and len(model) == 16:
        inquiry = vendor + model
    lu = [
        d
        for d in page.designators
        if d.association is _LU and d.raw and (d.code_set is _BINARY or d.code_set is _ASCII)
    ]
    if not lu:
        return None if serial is None or inquiry is None else _serial_wwid(inquiry, serial)
    # Common case first: a binary NAA-6 (scsi_id's first choice). Hex needs no clean-up.
    for d in lu:
        if d.designator_type is _NAA and d.code_set is _BINARY and d.raw[0] >> 4 == 6:
            return "3" + d.raw.hex()
    for dtype, naa in _SCSI_ID_ORDER:
        for code_set in (_BINARY, _ASCII):
            for d in lu:
                if d.designator_type is not dtype or d.code_set is not code_set:
                    continue
                if naa is not None and d.raw[0] >> 4 != naa:
                    continue
                if dtype is _VENDOR:
                    if inquiry is None:
                        continue
                    return udev_safe(f"0{inquiry}{_scsi_id_value(d)}")
                if code_set is _BINARY:
                    return f"{int(dtype):x}{d.raw.hex()}"
                return udev_safe(f"{int(dtype):x}{_scsi_id_value(d)}")
    if serial is not None and inquiry is not None:
        return _serial_wwid(inquiry, serial)
    return None


def _serial_wwid(inquiry: str, serial: UnitSerial) -> str:
    """scsi_id's page 0x80 fallback: ``S`` + vendor + model + serial."""
    return udev_safe(f"S{inquiry}{_udev_bytes(serial.raw)}")


_KERNEL_PREFIX = {"naa.": "3", "eui.": "2", "t10.": "1"}


def kernel_wwid_to_multipath(wwid: str) -> str | None:
    """Turn a kernel ``wwid`` attribute (``naa.…``, ``eui.…``, ``t10.…``) into the
    scsi_id-style WWID (``3…``, ``2…``, ``1…``).

    :returns: the WWID, or ``None`` for other forms (SCSI name strings), which
        scsi_id never produces. Never raises.
    """
    prefix = _KERNEL_PREFIX.get(wwid[:4])
    if prefix is None or len(wwid) <= 4:
        return None
    body = wwid[4:]
    return udev_safe(prefix + (body if prefix == "1" else body.lower()))


class IdentitySource(StrEnum):
    """Where :attr:`DeviceIdentity.wwn` came from."""

    VPD_PAGE_83 = "vpd_pg83"
    WWID_ATTRIBUTE = "wwid"
    LEGACY_PAGE_83 = "legacy_pg83"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class DeviceIdentity:
    """Who a SCSI logical unit is, from its VPD pages and ``wwid`` attribute.

    :ivar wwn: text of the preferred logical-unit designator (``naa.…`` etc., the
        kernel ``wwid`` attribute style), or the ``wwid`` attribute when page 0x83
        gives none; ``None`` when nothing identifies the unit.
    :ivar wwid: the scsi_id / dm-multipath style WWID (``3`` + NAA hex …), or ``None``.
    :ivar serial: the page 0x80 serial with leading and trailing blanks removed.
    :ivar unit_serial: the page 0x80 serial with its raw bytes.
    :ivar designators: every well-formed designator of page 0x83, in page order.
    :ivar source: where :attr:`wwn` (or, for legacy pages, :attr:`wwid`) came from.
    :ivar warnings: problems found in the pages.
    """

    wwn: str | None = None
    wwid: str | None = None
    serial: str | None = None
    unit_serial: UnitSerial | None = None
    designators: tuple[Designator, ...] = ()
    source: IdentitySource = IdentitySource.NONE
    warnings: tuple[VpdWarning, ...] = ()

    @property
    def known(self) -> bool:
        """Return whether anything identifies the unit (a WWN or WWID). Never raises."""
        return self.wwn is not None or self.wwid is not None


#: Problems that mean a page was cut short: it is not trusted for identity.
CUT_SHORT = frozenset(
    {VpdProblem.TRUNCATED, VpdProblem.DESCRIPTOR_TRUNCATED, VpdProblem.DESIGNATOR_OVERRUN}
)


def _was_cut(warnings: tuple[VpdWarning, ...]) -> bool:
    return any(w.code in CUT_SHORT for w in warnings)


def device_identity(
    pg80: bytes | None,
    pg83: bytes | None,
    wwid_attr: str | None,
    *,
    vendor: str | None = None,
    model: str | None = None,
) -> DeviceIdentity:
    """Work out a logical unit's identity from its VPD pages.

    The WWN is the preferred logical-unit designator of page 0x83 (see
    :func:`preferred_lu_designator`); the kernel's ``wwid`` sysfs attribute is the
    fallback. The WWID is :func:`multipath_wwid` of the page, falling back to the
    conversion of the ``wwid`` attribute. A missing page 0x80 is not a warning (many
    devices lack it); a missing page 0x83 is one only when the attribute cannot
    stand in for it.

    :param pg80: ``vpd_pg80`` bytes, or ``None``.
    :param pg83: ``vpd_pg83`` bytes, or ``None``.
    :param wwid_attr: the sysfs ``wwid`` attribute (newline already stripped), or ``None``.
    :param vendor: sysfs ``vendor`` as read (padding kept), for vendor-specific WWIDs.
    :param model: sysfs ``model`` as read (padding kept).
    :returns: the identity, with the warnings of both pages. Never raises.
    """
    serial_page = parse_pg80(pg80) if pg80 is not None else None
    id_page = parse_pg83(pg83)
    unit_serial = serial_page.serial if serial_page is not None else None
    attr = wwid_attr.strip(" \x00") if wwid_attr else ""
    warnings = list(serial_page.warnings) if serial_page is not None else []
    if pg83 is not None or not attr:
        warnings.extend(id_page.warnings)
    # A page cut short is not trusted for identity: what it lost may hold the
    # preferred designator (or the rest of the serial), and a wrong identity is
    # worse than none. Its complete designators stay visible for diagnosis.
    if serial_page is not None and _was_cut(serial_page.warnings):
        unit_serial = None
    full_page = id_page
    if _was_cut(id_page.warnings):
        id_page = DeviceIdPage((), id_page.peripheral_type, None, id_page.warnings)

    best = preferred_lu_designator(id_page.designators)
    wwid = multipath_wwid(id_page, vendor=vendor, model=model)
    if wwid is None and attr:
        wwid = kernel_wwid_to_multipath(attr)
    if wwid is None and unit_serial is not None:
        wwid = multipath_wwid(id_page, unit_serial, vendor=vendor, model=model)
    if best is not None:
        wwn: str | None = best.text
        source = IdentitySource.VPD_PAGE_83
    elif attr:
        wwn = attr
        source = IdentitySource.WWID_ATTRIBUTE
    elif id_page.legacy_id is not None:
        wwn = None
        source = IdentitySource.LEGACY_PAGE_83
    else:
        wwn = None
        source = IdentitySource.NONE
    return DeviceIdentity(
        wwn,
        wwid,
        unit_serial.trimmed if unit_serial is not None else None,
        unit_serial,
        full_page.designators,
        source,
        tuple(warnings),
    )
