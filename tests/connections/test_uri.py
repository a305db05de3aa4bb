"""The storage connection URIs: accepted forms and their normal form, refusals and their
reasons, secrets kept out of errors, and property-based round trips."""

from __future__ import annotations

import ipaddress
import string
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tracker.connections.uri import (
    IscsiTarget,
    NfsExport,
    StorageTarget,
    parse_uri,
    target_from_dict,
)
from tracker.exceptions import InvalidInput, InvalidStorageUri, UnsupportedScheme

IQN = "iqn.2010-10.org.openstack:volume-1"
ISCSI = f"iscsi://192.0.2.10/{IQN}"
IQN_X = "iqn.2010-10.org.x:y"
BASE = f"iscsi://h/{IQN_X}"  # short base for refusals that are about the query or parameters


def _parse(uri: object, options: object = None) -> StorageTarget:
    """``parse_uri`` without the static types, for the inputs that are wrong on purpose."""
    untyped: Any = parse_uri
    target: StorageTarget = untyped(uri, options)
    return target


def _nfs_dict(server: str, export: str, options: dict[str, str] | None = None) -> dict[str, Any]:
    return {"type": "nfs", "server": server, "export": export, "options": options or {}}


def _iscsi_dict(
    portal: str,
    target: str,
    lun: int | None = None,
    iface: str | None = None,
    tpgt: int | None = None,
) -> dict[str, Any]:
    return {
        "type": "iscsi",
        "portal": portal,
        "target": target,
        "lun": lun,
        "iface": iface,
        "tpgt": tpgt,
    }


# --- 1. accepted forms ---------------------------------------------------------------------

ACCEPTED = [
    pytest.param(
        "nfs://server/export",
        None,
        "nfs://server/export",
        "nfs:server:/export",
        _nfs_dict("server", "/export"),
        id="nfs-plain",
    ),
    pytest.param(
        "nfs://server:/export",
        None,
        "nfs://server/export",
        "nfs:server:/export",
        _nfs_dict("server", "/export"),
        id="nfs-mount-colon-form",
    ),
    pytest.param(
        "NFS://Filer-1.Example//srv/./vol/",
        None,
        "nfs://filer-1.example/srv/vol",
        "nfs:filer-1.example:/srv/vol",
        _nfs_dict("filer-1.example", "/srv/vol"),
        id="nfs-case-double-slash-dot-trailing-slash",
    ),
    pytest.param(
        "nfs://server/",
        None,
        "nfs://server/",
        "nfs:server:/",
        _nfs_dict("server", "/"),
        id="nfs-pseudo-root",
    ),
    pytest.param(
        "nfs://server:/",
        None,
        "nfs://server/",
        "nfs:server:/",
        _nfs_dict("server", "/"),
        id="nfs-pseudo-root-colon",
    ),
    pytest.param(
        "nfs://192.0.2.5/exports/a?vers=4.1&proto=tcp&timeo=0600&retrans=2",
        None,
        "nfs://192.0.2.5/exports/a?proto=tcp&retrans=2&timeo=600&vers=4.1",
        "nfs:192.0.2.5:/exports/a",
        _nfs_dict(
            "192.0.2.5",
            "/exports/a",
            {"proto": "tcp", "retrans": "2", "timeo": "600", "vers": "4.1"},
        ),
        id="nfs-options-sorted-leading-zeros-dropped",
    ),
    pytest.param(
        "nfs://server/x?vers=4.0",
        None,
        "nfs://server/x?vers=4.0",
        "nfs:server:/x",
        _nfs_dict("server", "/x", {"vers": "4.0"}),
        id="nfs-vers-4.0-kept",
    ),
    pytest.param(
        "nfs://[2001:DB8:0:0::1]/srv",
        None,
        "nfs://[2001:db8::1]/srv",
        "nfs:[2001:db8::1]:/srv",
        _nfs_dict("2001:db8::1", "/srv"),
        id="nfs-ipv6-compressed-lowercase",
    ),
    pytest.param(
        "nfs://[2001:db8::1]:/srv?vers=3&proto=udp",
        None,
        "nfs://[2001:db8::1]/srv?proto=udp&vers=3",
        "nfs:[2001:db8::1]:/srv",
        _nfs_dict("2001:db8::1", "/srv", {"proto": "udp", "vers": "3"}),
        id="nfs-ipv6-colon-form-v3-udp",
    ),
    pytest.param(
        "nfs://h/a%2Fb/%C3%A9t%C3%A9/c%40d/e%3Bf/%7e/g+h/%41",
        None,
        "nfs://h/a/b/%C3%A9t%C3%A9/c%40d/e%3Bf/~/g+h/A",
        "nfs:h:/a/b/été/c@d/e;f/~/g+h/A",
        _nfs_dict("h", "/a/b/été/c@d/e;f/~/g+h/A"),
        id="nfs-percent-encoding-decoded-and-renormalised",
    ),
    pytest.param(
        "nfs://h/x",
        {"vers": "4.2", "timeo": 600},
        "nfs://h/x?timeo=600&vers=4.2",
        "nfs:h:/x",
        _nfs_dict("h", "/x", {"timeo": "600", "vers": "4.2"}),
        id="nfs-options-mapping-int-value",
    ),
    pytest.param(
        "nfs://h/x?timeo=0600&vers=4",
        {"timeo": "600", "proto": "tcp6", "secret_file": "/etc/tracker/nfs"},
        "nfs://h/x?proto=tcp6&timeo=600&vers=4",
        "nfs:h:/x",
        _nfs_dict("h", "/x", {"proto": "tcp6", "timeo": "600", "vers": "4"}),
        id="nfs-options-merged-agreeing-secret-file-ignored",
    ),
    pytest.param(
        ISCSI,
        None,
        f"iscsi://192.0.2.10:3260/{IQN}",
        f"iscsi:{IQN}@192.0.2.10:3260",
        _iscsi_dict("192.0.2.10:3260", IQN),
        id="iscsi-default-port-written",
    ),
    pytest.param(
        "ISCSI://SAN-01.Example:03260/IQN.2010-10.ORG.OpenStack:Volume-1",
        None,
        f"iscsi://san-01.example:3260/{IQN}",
        f"iscsi:{IQN}@san-01.example:3260",
        _iscsi_dict("san-01.example:3260", IQN),
        id="iscsi-uppercase-scheme-host-iqn-port-zeros",
    ),
    pytest.param(
        f"iscsi://san.example:/{IQN}",
        None,
        f"iscsi://san.example:3260/{IQN}",
        f"iscsi:{IQN}@san.example:3260",
        _iscsi_dict("san.example:3260", IQN),
        id="iscsi-empty-port-means-default",
    ),
    pytest.param(
        f"iscsi://10.0.0.1:65535/{IQN}",
        None,
        f"iscsi://10.0.0.1:65535/{IQN}",
        f"iscsi:{IQN}@10.0.0.1:65535",
        _iscsi_dict("10.0.0.1:65535", IQN),
        id="iscsi-highest-port",
    ),
    pytest.param(
        f"{ISCSI}?tpgt=01&lun=007&iface=Eth0.100",
        None,
        f"iscsi://192.0.2.10:3260/{IQN}?iface=Eth0.100&lun=7&tpgt=1",
        f"iscsi:{IQN}@192.0.2.10:3260",
        _iscsi_dict("192.0.2.10:3260", IQN, lun=7, iface="Eth0.100", tpgt=1),
        id="iscsi-options-sorted-iface-case-kept",
    ),
    pytest.param(
        f"{ISCSI};portal=2",
        None,
        f"iscsi://192.0.2.10:3260/{IQN}?tpgt=2",
        f"iscsi:{IQN}@192.0.2.10:3260",
        _iscsi_dict("192.0.2.10:3260", IQN, tpgt=2),
        id="iscsi-rfc-portal-parameter-is-tpgt",
    ),
    pytest.param(
        f"{ISCSI};portal=2?tpgt=02&lun=0",
        None,
        f"iscsi://192.0.2.10:3260/{IQN}?lun=0&tpgt=2",
        f"iscsi:{IQN}@192.0.2.10:3260",
        _iscsi_dict("192.0.2.10:3260", IQN, lun=0, tpgt=2),
        id="iscsi-portal-parameter-and-query-agree",
    ),
    pytest.param(
        f"iscsi://[2001:DB8::A]:3260/{IQN}",
        None,
        f"iscsi://[2001:db8::a]:3260/{IQN}",
        f"iscsi:{IQN}@[2001:db8::a]:3260",
        _iscsi_dict("[2001:db8::a]:3260", IQN),
        id="iscsi-ipv6-portal",
    ),
    pytest.param(
        f"iscsi://[::1]/{IQN}",
        None,
        f"iscsi://[::1]:3260/{IQN}",
        f"iscsi:{IQN}@[::1]:3260",
        _iscsi_dict("[::1]:3260", IQN),
        id="iscsi-ipv6-default-port",
    ),
    pytest.param(
        f"iscsi://[::1]:/{IQN}",
        None,
        f"iscsi://[::1]:3260/{IQN}",
        f"iscsi:{IQN}@[::1]:3260",
        _iscsi_dict("[::1]:3260", IQN),
        id="iscsi-ipv6-empty-port",
    ),
    pytest.param(
        "iscsi://h/eui.02004567A425678D",
        None,
        "iscsi://h:3260/eui.02004567a425678d",
        "iscsi:eui.02004567a425678d@h:3260",
        _iscsi_dict("h:3260", "eui.02004567a425678d"),
        id="iscsi-eui-name",
    ),
    pytest.param(
        "iscsi://h/naa.52004567BA64678D",
        None,
        "iscsi://h:3260/naa.52004567ba64678d",
        "iscsi:naa.52004567ba64678d@h:3260",
        _iscsi_dict("h:3260", "naa.52004567ba64678d"),
        id="iscsi-naa-16",
    ),
    pytest.param(
        "iscsi://h/naa.60012345678901234567890123456789",
        None,
        "iscsi://h:3260/naa.60012345678901234567890123456789",
        "iscsi:naa.60012345678901234567890123456789@h:3260",
        _iscsi_dict("h:3260", "naa.60012345678901234567890123456789"),
        id="iscsi-naa-32",
    ),
    pytest.param(
        "iscsi://h/iqn.2010-10.org.x%3Ay",
        None,
        f"iscsi://h:3260/{IQN_X}",
        f"iscsi:{IQN_X}@h:3260",
        _iscsi_dict("h:3260", IQN_X),
        id="iscsi-percent-encoded-iqn",
    ),
    pytest.param(
        f"{BASE}?lun=18446744073709551615&iface=default",
        None,
        f"iscsi://h:3260/{IQN_X}?iface=default&lun=18446744073709551615",
        f"iscsi:{IQN_X}@h:3260",
        _iscsi_dict("h:3260", IQN_X, lun=2**64 - 1, iface="default"),
        id="iscsi-highest-lun-iface-default-kept",
    ),
    pytest.param(
        BASE,
        {"lun": 3, "iface": "iser", "tpgt": "5", "secret_file": "/etc/tracker/chap"},
        f"iscsi://h:3260/{IQN_X}?iface=iser&lun=3&tpgt=5",
        f"iscsi:{IQN_X}@h:3260",
        _iscsi_dict("h:3260", IQN_X, lun=3, iface="iser", tpgt=5),
        id="iscsi-options-mapping",
    ),
    pytest.param(
        f"{BASE};portal=7?lun=1",
        {"tpgt": 7, "lun": "01"},
        f"iscsi://h:3260/{IQN_X}?lun=1&tpgt=7",
        f"iscsi:{IQN_X}@h:3260",
        _iscsi_dict("h:3260", IQN_X, lun=1, tpgt=7),
        id="iscsi-three-sources-agree",
    ),
]


@pytest.mark.parametrize(("uri", "options", "normal", "key", "as_dict"), ACCEPTED)
def test_accepted_form_normalises(
    uri: str, options: Any, normal: str, key: str, as_dict: dict[str, Any]
) -> None:
    target = parse_uri(uri, options)
    assert target.uri == normal
    assert target.key == key
    assert target.as_dict() == as_dict
    assert type(target) is (NfsExport if normal.startswith("nfs:") else IscsiTarget)
    again = parse_uri(target.uri)
    assert again == target
    assert again.uri == target.uri
    assert target_from_dict(target.as_dict()) == target
    assert hash(again) == hash(target)


def test_nfs_mount_source_brackets_ipv6() -> None:
    nfs = parse_uri("nfs://[2001:db8::1]:/srv/a")
    assert isinstance(nfs, NfsExport)
    assert nfs.mount_source() == "[2001:db8::1]:/srv/a"
    assert nfs.server == "2001:db8::1"


EQUIVALENT = [
    pytest.param("nfs://server/export", "nfs://server:/export", id="nfs-colon"),
    pytest.param("nfs://Server/export/", "NFS://SERVER//export/.", id="nfs-case-slashes-dots"),
    pytest.param("nfs://h/a%2Fb", "nfs://h/a/b", id="nfs-encoded-slash"),
    pytest.param("nfs://h/x?vers=4&timeo=600", "nfs://h/x?timeo=0600&vers=4", id="nfs-order"),
    pytest.param("nfs://[2001:db8:0::1]/x", "nfs://[2001:DB8::1]:/x", id="nfs-ipv6-spellings"),
    pytest.param(f"iscsi://h/{IQN}", f"iscsi://H:3260/{IQN.upper()}", id="iscsi-default-port"),
    pytest.param(f"iscsi://h:/{IQN}", f"iscsi://h:03260/{IQN}", id="iscsi-empty-port"),
    pytest.param(f"{BASE};portal=3", f"{BASE}?tpgt=3", id="iscsi-portal-parameter-is-tpgt"),
    pytest.param(f"{BASE}?lun=1&tpgt=2", f"{BASE}?tpgt=02&lun=001", id="iscsi-order-zeros"),
    pytest.param(
        f"iscsi://[2001:db8::0:1]/{IQN}", f"iscsi://[2001:DB8::1]:3260/{IQN}", id="iscsi-ipv6"
    ),
]


@pytest.mark.parametrize(("first", "second"), EQUIVALENT)
def test_two_spellings_give_one_target(first: str, second: str) -> None:
    one, other = parse_uri(first), parse_uri(second)
    assert one == other
    assert one.key == other.key
    assert one.uri == other.uri
    assert one.as_dict() == other.as_dict()


SAME_KEY_OTHER_TARGET = [
    pytest.param(BASE, f"{BASE}?lun=4", id="lun"),
    pytest.param(BASE, f"{BASE}?iface=iser", id="iface"),
    pytest.param(BASE, f"{BASE};portal=2", id="tpgt"),
    pytest.param(
        f"{BASE}?lun=1&iface=a&tpgt=1", f"{BASE}?lun=2&iface=b&tpgt=2", id="all-iscsi-options"
    ),
    pytest.param("nfs://h/x", "nfs://h/x?vers=4.1", id="nfs-vers"),
    pytest.param("nfs://h/x?vers=4", "nfs://h/x?vers=4.0", id="nfs-vers-4-is-not-4.0"),
    pytest.param("nfs://h/x?proto=tcp", "nfs://h/x?proto=rdma&timeo=10", id="nfs-options"),
]


@pytest.mark.parametrize(("first", "second"), SAME_KEY_OTHER_TARGET)
def test_options_do_not_change_the_key(first: str, second: str) -> None:
    one, other = parse_uri(first), parse_uri(second)
    assert one != other
    assert one.uri != other.uri
    assert one.key == other.key


OTHER_KEY = [
    pytest.param(f"iscsi://h/{IQN}", f"iscsi://h:3261/{IQN}", id="iscsi-port"),
    pytest.param(f"iscsi://h/{IQN}", f"iscsi://h2/{IQN}", id="iscsi-host"),
    pytest.param(f"iscsi://h/{IQN}", f"iscsi://h/{IQN}2", id="iscsi-iqn"),
    pytest.param("nfs://h/x", "nfs://h/x/y", id="nfs-export"),
    pytest.param("nfs://h/x", "nfs://h2/x", id="nfs-server"),
]


@pytest.mark.parametrize(("first", "second"), OTHER_KEY)
def test_what_makes_another_target(first: str, second: str) -> None:
    one, other = parse_uri(first), parse_uri(second)
    assert one != other
    assert one.key != other.key


def test_plus_in_an_export_is_a_plus() -> None:
    # '+' means a space only in a query value; in a path it is a '+' (as %2B is)
    one, other = parse_uri("nfs://h/a+b"), parse_uri("nfs://h/a%2Bb")
    assert one == other
    assert isinstance(one, NfsExport)
    assert one.export == "/a+b"


CONFLICTS = [
    pytest.param(
        "nfs://h/x?timeo=600",
        {"timeo": "60"},
        "timeo is 600 in the query but 60 in options: give one value",
        id="nfs-query-vs-options",
    ),
    pytest.param(
        "nfs://h/x?vers=4",
        {"vers": "4.0"},
        "vers is 4 in the query but 4.0 in options",
        id="nfs-vers-4-vs-4.0",
    ),
    pytest.param(
        f"{BASE}?lun=1", {"lun": 2}, "lun is 1 in the query but 2 in options", id="iscsi-lun"
    ),
    pytest.param(
        f"{BASE};portal=1?tpgt=2",
        None,
        "tpgt is 1 in ;portal= but 2 in the query",
        id="iscsi-portal-vs-query",
    ),
    pytest.param(
        f"{BASE};portal=1",
        {"tpgt": "2"},
        "tpgt is 1 in ;portal= but 2 in options",
        id="iscsi-portal-vs-options",
    ),
    pytest.param(
        f"{BASE}?iface=a",
        {"iface": "A"},
        "iface is a in the query but A in options",
        id="iface-case",
    ),
]


@pytest.mark.parametrize(("uri", "options", "fragment"), CONFLICTS)
def test_options_that_disagree_are_refused(uri: str, options: Any, fragment: str) -> None:
    with pytest.raises(InvalidStorageUri) as raised:
        parse_uri(uri, options)
    assert type(raised.value) is InvalidStorageUri
    assert fragment in raised.value.reason


# --- 2. refusals ---------------------------------------------------------------------------

LONG_LABEL = "a" * 63
HOST_253 = ".".join([LONG_LABEL] * 3 + ["b" * 61])

MALFORMED = [
    # the input as a whole
    ("empty", "", "the URI is empty"),
    ("too-long", "nfs://h/" + "a" * 2041, "2049 characters long; at most 2048"),
    ("blank-inside", "nfs://h/a b", "a blank (U+0020) at position 9"),
    ("blank-leading", " nfs://h/x", "a blank (U+0020) at position 0"),
    ("no-break-space", "nfs://h/a\u00a0", "a blank (U+00A0) at position 9"),
    ("newline-trailing", "nfs://h/x\n", "a control character (U+000A) at position 9"),
    ("tab", "nfs://h/a\tb", "a control character (U+0009) at position 9"),
    ("nul", "nfs://h/x\x00", "a control character (U+0000) at position 9"),
    ("delete", "nfs://h/\x7f", "a control character (U+007F) at position 8"),
    ("c1-control", "nfs://h/\x85", "a control character (U+0085) at position 8"),
    ("zero-width-space", "nfs://h/\u200b", "an unprintable character (U+200B) at position 8"),
    ("non-ascii-path", "nfs://h/été", "a non-ASCII character (U+00E9) at position 8"),
    (
        "non-ascii-host",
        f"iscsi://bücher.example/{IQN}",
        "a non-ASCII character (U+00FC) at position 9",
    ),
    ("backslash", "nfs://h/a\\b", "the character '\\\\' at position 9 is not allowed in a URI"),
    ("angle-bracket", "nfs://h/a<b", "the character '<' at position 9 is not allowed in a URI"),
    ("double-quote", 'nfs://h/"a"', "the character '\"' at position 8 is not allowed"),
    ("brace", "nfs://h/{a}", "the character '{' at position 8 is not allowed"),
    ("pipe", "nfs://h/a|b", "the character '|' at position 9 is not allowed"),
    ("caret", "nfs://h/a^b", "the character '^' at position 9 is not allowed"),
    ("backtick", "nfs://h/a`b", "the character '`' at position 9 is not allowed"),
    # percent-encoding
    ("percent-truncated", "nfs://h/a%2", "'%' at position 9 is not followed by two hex digits"),
    ("percent-not-hex", "nfs://h/a%zz", "'%' at position 9 is not followed by two hex digits"),
    ("percent-at-end", "nfs://h/x%", "'%' at position 9 is not followed by two hex digits"),
    ("percent-in-query", "nfs://h/x?vers=%G1", "'%' at position 15 is not followed by two hex"),
    ("percent-not-utf8-export", "nfs://h/%FF", "the percent-encoding of the export path is not"),
    ("percent-surrogate-export", "nfs://h/%ED%A0%80", "the percent-encoding of the export path"),
    ("percent-not-utf8-iqn", f"{BASE}%C3", "the percent-encoding of the target name is not UTF-8"),
    ("percent-not-utf8-query", "nfs://h/x?vers=%FF", "the percent-encoding of the query is not"),
    ("percent-nul-export", "nfs://h/a%00b", "NUL character"),
    ("percent-newline-export", "nfs://h/a%0Ab", "the export path has a control character (U+000A)"),
    ("percent-space-export", "nfs://h/a%20b", "the export path has a blank (U+0020)"),
    ("percent-in-host", f"iscsi://h%41/{IQN}", "the character '%' is not allowed in a host name"),
    ("plus-is-space-in-iface", f"{BASE}?iface=a+b", "the iface has a blank (U+0020)"),
    # credentials and fragments
    ("credentials", f"iscsi://admin:pw@h/{IQN}", "credentials do not belong in a URI"),
    ("user-only", "nfs://root@h/x", "use the secret_file option"),
    ("at-in-export", "nfs://h/a@b", "credentials do not belong in a URI"),
    ("fragment", f"{BASE}#frag", "a fragment ('#...') has no meaning in a storage URI"),
    ("fragment-empty", "nfs://h/x#", "a fragment ('#...') has no meaning"),
    ("fragment-after-query", f"{BASE}?lun=1#", "a fragment ('#...') has no meaning"),
    # scheme, host and path present
    ("no-scheme", "//h/x", "no scheme: a storage URI starts with iscsi:// or nfs://"),
    ("no-scheme-relative", "h/export", "no scheme"),
    ("no-slashes", "nfs:/x", "no host: write nfs://HOST/..."),
    ("nfs-relative", "nfs:relative/export", "no host: write nfs://HOST/..."),
    ("iscsi-no-slashes", "iscsi:h/iqn", "no host: write iscsi://HOST/..."),
    ("no-host", "nfs:///x", "no host between '//' and the path"),
    ("no-host-iscsi", f"iscsi:///{IQN}", "no host between '//' and the path"),
    ("port-without-host", f"iscsi://:3260/{IQN}", "no host before the port"),
    ("nfs-no-export", "nfs://h", "no export path: write nfs://SERVER/EXPORT"),
    ("nfs-no-export-colon", "nfs://h:", "no export path"),
    ("nfs-no-export-query", "nfs://h?vers=4", "no export path"),
    ("iscsi-no-iqn", "iscsi://h", "no target name: write iscsi://PORTAL/IQN"),
    ("iscsi-no-iqn-slash", "iscsi://h/", "no target name"),
    ("iscsi-no-iqn-parameter", "iscsi://h/;portal=1", "no target name"),
    # ports
    ("port-zero", f"iscsi://h:0/{IQN}", "the port 0 is not from 1 to 65535"),
    ("port-65536", f"iscsi://h:65536/{IQN}", "the port 65536 is not from 1 to 65535"),
    ("port-huge", f"iscsi://h:99999999999/{IQN}", "the port 99999999999 is not from 1 to"),
    ("port-letters", f"iscsi://h:abc/{IQN}", "the port 'abc' is not a number"),
    ("port-negative", f"iscsi://h:-1/{IQN}", "the port '-1' is not a number"),
    ("port-plus", f"iscsi://h:+1/{IQN}", "the port '+1' is not a number"),
    ("nfs-port", "nfs://h:2049/x", "':2049' after the server: an nfs URI has no port"),
    # target names
    ("iqn-no-prefix", "iscsi://h/target1", "'target1' is not an iSCSI name: it starts with iqn."),
    ("iqn-month-13", "iscsi://h/iqn.2010-13.org.x", "is not an iqn. name: iqn.YYYY-MM.AUTHORITY"),
    ("iqn-month-00", "iscsi://h/iqn.2010-00.org.x", "'iqn.2010-00.org.x' is not an iqn. name"),
    ("iqn-month-one-digit", "iscsi://h/iqn.2010-1.org.x", "'iqn.2010-1.org.x' is not an iqn."),
    ("iqn-two-digit-year", "iscsi://h/iqn.10-10.org.x", "'iqn.10-10.org.x' is not an iqn. name"),
    ("iqn-no-authority", "iscsi://h/iqn.2010-10", "'iqn.2010-10' is not an iqn. name"),
    ("iqn-empty-authority", "iscsi://h/iqn.2010-10.", "'iqn.2010-10.' is not an iqn. name"),
    ("iqn-authority-colon", "iscsi://h/iqn.2010-10.:x", "'iqn.2010-10.:x' is not an iqn. name"),
    ("iqn-underscore", f"{BASE}_z", "the character '_' is not allowed in an iSCSI name"),
    ("iqn-encoded-slash", f"{BASE}%2Fz", "the character '/' is not allowed in an iSCSI name"),
    ("iqn-encoded-nul", f"{BASE}%00", "NUL character"),
    ("iqn-encoded-non-ascii", f"{BASE}%C3%A9", "the character 'é' is not allowed in an iSCSI name"),
    # U+212A KELVIN SIGN lowercases to an ASCII 'k': it must not slip through
    ("iqn-kelvin-sign", f"{BASE}%E2%84%AA", "the character '\u212a' is not allowed in an iSCSI"),
    ("iqn-too-long", f"iscsi://h/iqn.2010-10.org.{'x' * 220}", "target name: at most 223"),
    ("iqn-two-segments", f"{BASE}/extra", "the path is one segment, the target name"),
    ("iqn-trailing-slash", f"{BASE}/", "the path is one segment, the target name"),
    ("eui-too-short", "iscsi://h/eui.0123", "an eui. name is eui. followed by 16 hex digits"),
    ("eui-not-hex", "iscsi://h/eui.0123456789abcdeg", "eui. followed by 16 hex digits"),
    ("naa-20-digits", "iscsi://h/naa.0123456789abcdef0123", "naa. followed by 16 or 32 hex"),
    # lun, tpgt, iface
    ("lun-negative", f"{BASE}?lun=-1", "lun='-1' is not a whole number"),
    ("lun-2-to-the-64", f"{BASE}?lun=18446744073709551616", "not from 0 to 18446744073709551615"),
    ("lun-letters", f"{BASE}?lun=abc", "lun='abc' is not a whole number"),
    ("lun-decimal", f"{BASE}?lun=1.5", "lun='1.5' is not a whole number"),
    ("lun-fullwidth-digit", f"{BASE}?lun=%EF%BC%91", "is not a whole number"),
    ("lun-40-digits", f"{BASE}?lun={'9' * 40}", "is out of range"),
    ("lun-empty", f"{BASE}?lun=", "the option lun has no value"),
    ("tpgt-65536", f"{BASE}?tpgt=65536", "tpgt=65536 is not from 0 to 65535"),
    ("portal-parameter-not-number", f"{BASE};portal=x", "tpgt='x' is not a whole number"),
    ("portal-parameter-empty", f"{BASE};portal=", "the option tpgt has no value"),
    ("iface-leading-dot", f"{BASE}?iface=.hidden", "the iface name '.hidden' begins with '.'"),
    ("iface-leading-dash", f"{BASE}?iface=-x", "the iface name '-x' begins with '-'"),
    ("iface-too-long", f"{BASE}?iface={'a' * 65}", "the iface: at most 64 characters"),
    ("iface-slash", f"{BASE}?iface=a/b", "the character '/' is not allowed in an iface name"),
    # options: repeated, unknown, wrong case, credentials
    ("lun-repeated-same", f"{BASE}?lun=1&lun=1", "the option lun is repeated in the query"),
    ("lun-repeated", f"{BASE}?lun=1&lun=2", "the option lun is repeated in the query"),
    ("vers-repeated", "nfs://h/x?vers=4&vers=4", "the option vers is repeated in the query"),
    ("portal-parameter-repeated", f"{BASE};portal=1;portal=1", "the path parameter portal is"),
    (
        "unknown-option",
        f"{BASE}?foo=bar",
        "unknown option 'foo' (iscsi URIs take iface, lun, tpgt)",
    ),
    ("unknown-nfs-option", "nfs://h/x?port=2049", "unknown option 'port' (nfs URIs take proto,"),
    ("nfs-option-on-iscsi", f"{BASE}?vers=4", "vers is not an option of iscsi URIs"),
    ("iscsi-option-on-nfs", "nfs://h/x?lun=1", "lun is not an option of nfs URIs"),
    ("option-uppercase", f"{BASE}?LUN=1", "unknown option 'LUN'"),
    ("option-capitalised", "nfs://h/x?Vers=4", "unknown option 'Vers'"),
    ("option-empty-name", "nfs://h/x?=4", "unknown option ''"),
    ("unknown-path-parameter", f"{BASE};lun=1", "unknown path parameter 'lun': only ;portal=TPGT"),
    ("path-parameter-no-value", f"{BASE};portal", "path parameter 'portal' is not NAME=VALUE"),
    ("path-parameter-empty", f"{BASE};", "path parameter '' is not NAME=VALUE"),
    ("option-password", f"{BASE}?password=x", "credentials do not belong in a URI: use the secret"),
    ("option-username", f"{BASE}?username=bob", "credentials do not belong in a URI"),
    ("option-chap", f"{BASE}?chap_secret=x", "credentials do not belong in a URI"),
    ("option-auth", f"{BASE}?authmethod=CHAP", "credentials do not belong in a URI"),
    ("option-token", "nfs://h/x?token=abc", "credentials do not belong in a URI"),
    ("option-secret", "nfs://h/x?Secret=abc", "credentials do not belong in a URI"),
    ("secret-file-in-query", f"{BASE}?secret_file=/etc/x", "secret_file is not a URI option: give"),
    # query syntax
    ("query-field-no-value", f"{BASE}?lun", "the query is NAME=VALUE fields joined by '&'"),
    ("query-leading-ampersand", f"{BASE}?&lun=1", "the query is NAME=VALUE fields joined by '&'"),
    ("query-trailing-ampersand", f"{BASE}?lun=1&", "the query is NAME=VALUE fields joined by '&'"),
    ("query-double-ampersand", f"{BASE}?lun=1&&tpgt=1", "with nothing empty between them"),
    ("query-17-fields", "nfs://h/x?" + "&".join(["vers=4"] * 17), "more than 16 query fields"),
    # NFS exports and options
    ("export-dotdot", "nfs://h/../x", "the export path has a '..' component"),
    ("export-inner-dotdot", "nfs://h/a/../b", "the export path has a '..' component"),
    ("export-encoded-dotdot", "nfs://h/a/%2E%2e/b", "the export path has a '..' component"),
    ("export-semicolon", "nfs://h/a;b", "';' in an nfs path: path parameters are only for iscsi"),
    ("export-too-long", "nfs://h/" + "a" * 1024, "the export path is longer than 1024 characters"),
    ("nfs-vers-5", "nfs://h/x?vers=5", "vers='5': the NFS version is one of 3, 4, 4.0, 4.1, 4.2"),
    ("nfs-vers-v4", "nfs://h/x?vers=v4", "vers='v4': the NFS version is one of"),
    ("nfs-proto-uppercase", "nfs://h/x?proto=TCP", "proto='TCP': the transport is one of rdma,"),
    ("nfs-v4-udp", "nfs://h/x?vers=4.1&proto=udp", "NFSv4 does not run over udp"),
    ("nfs-v4-udp6", "nfs://h/x?proto=udp6&vers=4", "NFSv4 does not run over udp6"),
    ("nfs-timeo-0", "nfs://h/x?timeo=0", "timeo=0 is not from 1 to 6000"),
    ("nfs-timeo-6001", "nfs://h/x?timeo=6001", "timeo=6001 is not from 1 to 6000"),
    ("nfs-retrans-0", "nfs://h/x?retrans=0", "retrans=0 is not from 1 to 64"),
    ("nfs-retrans-65", "nfs://h/x?retrans=65", "retrans=65 is not from 1 to 64"),
    ("nfs-timeo-letters", "nfs://h/x?timeo=ten", "timeo='ten' is not a whole number"),
    # host names and IPv4
    ("host-underscore", f"iscsi://san_1/{IQN}", "the character '_' is not allowed in a host name"),
    ("host-leading-dash", f"iscsi://-san/{IQN}", "the host name label '-san' begins or ends"),
    ("host-trailing-dash", "nfs://san-/x", "the host name label 'san-' begins or ends with '-'"),
    ("host-empty-label", "nfs://a..b/x", "the host name 'a..b' has an empty label"),
    ("host-trailing-dot", "nfs://san.example./x", "has an empty label"),
    ("host-label-64", f"nfs://{'a' * 64}/x", "a label of the host name is longer than 63"),
    ("host-254", f"nfs://{HOST_253}c/x", "the host: at most 253 characters"),
    ("iscsi-host-portal-too-long", f"iscsi://{HOST_253}/{IQN}", "the portal: at most 255"),
    ("ipv4-three-parts", "nfs://192.0.2/x", "'192.0.2' is not an IPv4 address"),
    ("ipv4-300", "nfs://300.1.1.1/x", "'300.1.1.1' is not an IPv4 address"),
    ("ipv4-leading-zero", "nfs://192.0.2.01/x", "'192.0.2.01' is not an IPv4 address"),
    ("ipv4-five-parts", "nfs://1.2.3.4.5/x", "'1.2.3.4.5' is not an IPv4 address"),
    ("digits-last-label", "nfs://san.1/x", "'san.1' is not an IPv4 address"),
    # IPv6 and brackets
    ("ipv6-unbracketed", f"iscsi://2001:db8::1/{IQN}", "an IPv6 address must be in brackets"),
    ("ipv6-unclosed", f"iscsi://[::1/{IQN}", "'[' without ']' around the IPv6 address"),
    ("ipv6-stray-close", f"iscsi://::1]/{IQN}", "may only enclose an IPv6 address at the start"),
    ("bracket-after-host", "nfs://h]/x", "may only enclose an IPv6 address at the start of"),
    ("ipv6-junk-after", f"iscsi://[::1]x/{IQN}", "'x' after ']': only ':PORT' may follow"),
    ("ipv6-twice", f"iscsi://[::1]][::1]/{IQN}", "may only enclose an IPv6 address, once"),
    ("ipv6-empty", f"iscsi://[]/{IQN}", "the host is empty"),
    ("ipv6-not-hex", "nfs://[::g]/x", "[::g] is not an IPv6 address"),
    ("ipv4-in-brackets", "nfs://[192.0.2.1]/x", "[192.0.2.1] is not an IPv6 address"),
    ("ipv6-zone-id", f"iscsi://[fe80::1%25eth0]/{IQN}", "has an IPv6 zone id"),
    ("ipvfuture", f"iscsi://[v1.x]/{IQN}", "[v1.x] is an IPvFuture literal"),
    ("ipv4-mapped", "nfs://[::ffff:192.0.2.1]/x", "IPv4-mapped IPv6 address: write 192.0.2.1"),
    ("brackets-in-export", "nfs://h/a[1]", "'[' and ']' may only enclose an IPv6 address, as"),
    ("brackets-in-query", f"{BASE}?iface=[a]", "'[' and ']' may only enclose an IPv6 address, as"),
]


@pytest.mark.parametrize(("uri", "fragment"), [pytest.param(u, f, id=i) for i, u, f in MALFORMED])
def test_malformed_uri_is_refused_with_its_reason(uri: str, fragment: str) -> None:
    with pytest.raises(InvalidStorageUri) as raised:
        parse_uri(uri)
    error = raised.value
    assert type(error) is InvalidStorageUri
    assert fragment in error.reason
    assert fragment in str(error)
    assert error.field == "uri"


def test_malformed_ids_and_uris_are_distinct() -> None:
    assert len(MALFORMED) >= 45
    assert len({i for i, _, _ in MALFORMED}) == len(MALFORMED)
    assert len({u for _, u, _ in MALFORMED}) == len(MALFORMED)


BAD_OPTIONS = [
    pytest.param("nfs://h/x", ["vers"], "options are a mapping of names to values, not list"),
    pytest.param("nfs://h/x", {1: "4"}, "option names are text, not int", id="name-not-text"),
    pytest.param("nfs://h/x", {"foo": "1"}, "unknown option 'foo'", id="unknown"),
    pytest.param("nfs://h/x", {"VERS": "4"}, "unknown option 'VERS'", id="uppercase-name"),
    pytest.param("nfs://h/x", {"lun": 1}, "lun is not an option of nfs URIs", id="wrong-scheme"),
    pytest.param(
        BASE,
        {"chap_password": "x"},
        "credentials do not belong in a URI or its options: use the secret_file option",
        id="credentials",
    ),
    pytest.param(BASE, {"lun": True}, "the option lun is a bool, not text", id="bool"),
    pytest.param("nfs://h/x", {"timeo": 1.5}, "the option timeo is a float, not text", id="float"),
    pytest.param(BASE, {"lun": None}, "the option lun is a NoneType, not text", id="none"),
    pytest.param("nfs://h/x", {"vers": ""}, "the option vers has no value", id="empty"),
    pytest.param(BASE, {"iface": "a" * 256}, "the option iface is longer than 255", id="too-long"),
    pytest.param(BASE, {"lun": 2**80}, "the option lun is out of range", id="huge-int"),
    pytest.param(BASE, {"lun": -1}, "lun='-1' is not a whole number", id="negative-int"),
    pytest.param("nfs://h/x", {"proto": "udp", "vers": "4"}, "NFSv4 does not run over udp"),
]


@pytest.mark.parametrize(("uri", "options", "fragment"), BAD_OPTIONS)
def test_bad_options_are_refused(uri: str, options: Any, fragment: str) -> None:
    with pytest.raises(InvalidStorageUri) as raised:
        _parse(uri, options)
    assert type(raised.value) is InvalidStorageUri
    assert fragment in raised.value.reason


UNSUPPORTED = [
    pytest.param("http://h/x", "http", id="http"),
    pytest.param("https://h/x", "https", id="https"),
    pytest.param("file:///etc/passwd", "file", id="file"),
    pytest.param("nvme://h/nqn.2014-08.org.nvmexpress:uuid", "nvme", id="nvme"),
    pytest.param("NVMe://h/x", "NVMe", id="scheme-shown-as-written"),
    pytest.param("iscsi+tcp://h/x", "iscsi+tcp", id="iscsi-plus-tcp"),
    pytest.param("smb://h/share", "smb", id="smb"),
    pytest.param("rbd:pool/image", "rbd", id="no-authority"),
]


@pytest.mark.parametrize(("uri", "scheme"), UNSUPPORTED)
def test_unsupported_scheme(uri: str, scheme: str) -> None:
    with pytest.raises(UnsupportedScheme) as raised:
        parse_uri(uri)
    error = raised.value
    assert isinstance(error, InvalidStorageUri)
    assert error.scheme == scheme
    assert error.reason == f"unsupported scheme {scheme!r} (iscsi and nfs are)"
    assert error.uri == uri


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        pytest.param(b"nfs://h/x", "bytes", id="bytes"),
        pytest.param(None, "NoneType", id="none"),
        pytest.param(42, "int", id="int"),
        pytest.param(["nfs://h/x"], "list", id="list"),
    ],
)
def test_a_uri_is_a_str(value: object, kind: str) -> None:
    with pytest.raises(InvalidStorageUri) as raised:
        _parse(value)
    assert type(raised.value) is InvalidStorageUri
    assert raised.value.reason == f"a storage URI is text (str), not {kind}"
    assert raised.value.uri == f"<{kind}>"


# --- credentials never shown -----------------------------------------------------------------

SECRET_PIECES = ("zq9Kx", "Wv7Rt")

CREDENTIALS = [
    pytest.param(f"iscsi://admin:zq9Kx@h/{IQN}", None, id="userinfo"),
    pytest.param("nfs://zq9Kx@h/x", None, id="user-only"),
    pytest.param(f"iscsi://admin:zq9Kx/Wv7Rt@h/{IQN}", None, id="password-with-slash"),
    pytest.param(f"iscsi://admin:zq9Kx?Wv7Rt@h/{IQN}", None, id="password-with-question-mark"),
    pytest.param(f"iscsi://admin:zq9Kx#Wv7Rt@h/{IQN}", None, id="password-with-hash"),
    pytest.param(f"iscsi://zq9Kx:Wv7Rt@[::1]:3260/{IQN}", None, id="userinfo-ipv6"),
    pytest.param(f"{BASE}?password=zq9Kx", None, id="query-password"),
    pytest.param(f"{BASE}?lun=1&chap_secret=zq9Kx&iface=a", None, id="query-chap-secret"),
    pytest.param(f"{BASE}?password=zq9Kx@Wv7Rt", None, id="query-password-with-at"),
    pytest.param(f"{BASE}?chap=zq9Kx@Wv7Rt&lun=1", None, id="query-secret-with-at-then-option"),
    pytest.param("nfs://h/x?password=a@zq9Kx&secret=Wv7Rt", None, id="query-two-secrets-at"),
    pytest.param("nfs://zq9Kx?lun=1@h/x;secret=Wv7Rt", None, id="userinfo-then-parameter"),
    pytest.param(f"{BASE};secret=zq9Kx", None, id="path-parameter"),
    pytest.param(f"{BASE}?mystery=zq9Kx&lun=1", None, id="unknown-option-value"),
    pytest.param(BASE, {"password": "zq9Kx"}, id="options-password"),
    pytest.param(BASE, {"chap_username": "zq9Kx", "chap_password": "Wv7Rt"}, id="options-chap"),
]


@pytest.mark.parametrize(("uri", "options"), CREDENTIALS)
def test_credentials_never_appear_in_the_error(uri: str, options: Any) -> None:
    with pytest.raises(InvalidStorageUri) as raised:
        parse_uri(uri, options)
    error = raised.value
    shown = [str(error), error.uri, repr(error), error.reason, repr(error.args), repr(vars(error))]
    for piece in SECRET_PIECES:
        for text in shown:
            assert piece not in text


def test_userinfo_is_removed_and_the_rest_kept() -> None:
    with pytest.raises(InvalidStorageUri) as raised:
        parse_uri(f"iscsi://admin:zq9Kx@san:3260/{IQN}?lun=1&foo=bar")
    assert raised.value.uri == f"iscsi://san:3260/{IQN}?lun=1&foo=***"
    assert "credentials do not belong in a URI: use the secret_file option" in raised.value.reason


def test_unknown_option_values_are_masked_known_ones_kept() -> None:
    with pytest.raises(InvalidStorageUri) as raised:
        parse_uri(f"{BASE};portal=2;x=1?lun=3&tpgt=2&token=abc&y=")
    assert raised.value.uri == f"{BASE};portal=2;x=***?lun=3&tpgt=2&token=***&y=***"


# --- the dataclasses and target_from_dict -----------------------------------------------------


def test_dataclasses_normalise_their_fields() -> None:
    target = IscsiTarget("SAN.Example", 3260, "IQN.2010-10.ORG.X:Y", lun=0, iface="Eth0")
    assert target.address == "san.example"
    assert target.iqn == IQN_X
    assert target.portal == "san.example:3260"
    assert target.uri == f"iscsi://san.example:3260/{IQN_X}?iface=Eth0&lun=0"
    assert IscsiTarget("2001:DB8:0::1", 3260, IQN_X).portal == "[2001:db8::1]:3260"
    export = NfsExport("Filer", "//a/./b/", (("vers", "4.1"), ("proto", "tcp")))
    assert export == NfsExport("filer", "/a/b", (("proto", "tcp"), ("vers", "4.1")))
    assert export.options == (("proto", "tcp"), ("vers", "4.1"))


@pytest.mark.parametrize(
    ("build", "field", "fragment"),
    [
        pytest.param(
            lambda: IscsiTarget("h", 0, IQN_X), "port", "the port is", id="iscsi-port-zero"
        ),
        pytest.param(
            lambda: IscsiTarget("[::1]", 3260, IQN_X),
            "address",
            "written without brackets",
            id="iscsi-bracketed-address",
        ),
        pytest.param(
            lambda: IscsiTarget("h", 3260, "iqn.2010-10.org.\u212a"),
            "iqn",
            "the character '\u212a' is not allowed in an iSCSI name",
            id="iqn-kelvin-sign",
        ),
        pytest.param(
            lambda: IscsiTarget("\u212a.example", 3260, IQN_X),
            "address",
            "the character '\u212a' is not allowed in a host name",
            id="host-kelvin-sign",
        ),
        pytest.param(
            lambda: IscsiTarget("h", 3260, IQN_X, lun=True),
            "lun",
            "lun is a bool, not a whole number",
            id="lun-bool",
        ),
        pytest.param(
            lambda: IscsiTarget("h", 3260, IQN_X, tpgt=65536),
            "tpgt",
            "tpgt=65536 is not from 0 to 65535",
            id="tpgt-too-big",
        ),
        pytest.param(
            lambda: NfsExport("h", "x"), "export", "an absolute path", id="nfs-relative-export"
        ),
        pytest.param(
            lambda: NfsExport("h", "/a/../b"), "export", "'..' component", id="nfs-dotdot"
        ),
        pytest.param(
            # 1000 characters, each 6 in the URI: parse_uri could not read its URI back
            lambda: NfsExport("h", "/" + "é" * 1000),
            "export",
            "its URI, percent-encoded, is longer than 2048 characters",
            id="nfs-uri-too-long",
        ),
        pytest.param(
            lambda: NfsExport("h", "/x", (("vers", "9"),)),
            "options",
            "the NFS version is one of",
            id="nfs-bad-vers",
        ),
    ],
)
def test_dataclasses_refuse_what_parse_uri_refuses(build: Any, field: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        build()
    assert not isinstance(raised.value, InvalidStorageUri)
    assert raised.value.field.endswith(field)
    assert fragment in raised.value.reason


def test_longest_export_round_trips() -> None:
    export = NfsExport("h", "/" + "a" * 1023)
    assert parse_uri(export.uri) == export
    encoded = NfsExport("h", "/" + "é" * 339)  # 8 + 6 * 339 = 2042 characters
    assert len(encoded.uri) <= 2048
    assert parse_uri(encoded.uri) == encoded


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        pytest.param({"type": "smb"}, "iscsi or nfs", id="unknown-type"),
        pytest.param(["iscsi"], "a mapping", id="not-a-mapping"),
        pytest.param(
            {**_iscsi_dict("h:3260", IQN_X), "password": "zq9Kx"},
            "unknown keys for an iscsi target",
            id="unknown-key",
        ),
        pytest.param({"type": "nfs", "server": "h"}, "missing keys of an nfs target", id="missing"),
        pytest.param(
            _iscsi_dict("h:0", IQN_X), "an iSCSI portal is address[:port]", id="bad-portal"
        ),
        pytest.param(
            {**_nfs_dict("h", "/x"), "options": [("vers", "4")]}, "a mapping", id="options-list"
        ),
    ],
)
def test_target_from_dict_refuses(data: Any, fragment: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        target_from_dict(data)
    assert not isinstance(raised.value, InvalidStorageUri)
    assert fragment in raised.value.reason
    assert "zq9Kx" not in str(raised.value)


def test_target_from_dict_normalises_and_takes_missing_optional_keys() -> None:
    read = target_from_dict({"type": "iscsi", "portal": "SAN:03260", "target": IQN_X.upper()})
    assert read == IscsiTarget("san", 3260, IQN_X)
    assert target_from_dict({"type": "nfs", "server": "h", "export": "/x/"}) == NfsExport("h", "/x")


# --- 4. the message lists the accepted forms ---------------------------------------------------

FORMS = (
    "nfs://SERVER/EXPORT",
    "nfs://SERVER:/EXPORT",
    "vers=4.1&proto=tcp&timeo=600&retrans=2",
    "iscsi://PORTAL[:PORT]/IQN[?lun=N&iface=NAME&tpgt=N]",
    "iscsi://PORTAL/IQN;portal=TPGT",
    "iscsi://[2001:db8::1]:3260/IQN",
)


@pytest.mark.parametrize(
    ("uri", "options"),
    [
        pytest.param("", None, id="empty"),
        pytest.param("http://h/x", None, id="unsupported-scheme"),
        pytest.param(f"iscsi://a:zq9Kx@h/{IQN}", None, id="credentials"),
        pytest.param("nfs://h/x", {"vers": "5"}, id="options"),
        pytest.param(b"nfs://h/x", None, id="not-text"),
    ],
)
def test_message_shows_the_accepted_forms(uri: object, options: Any) -> None:
    with pytest.raises(InvalidStorageUri) as raised:
        _parse(uri, options)
    message = str(raised.value)
    for form in FORMS:
        assert form in message
    assert message.startswith("invalid storage URI ")
    assert raised.value.reason in message


# --- 3. properties -------------------------------------------------------------------------


def _parses_or_refuses(uri: object, options: object = None) -> None:
    """``parse_uri`` returns a target that reads back as itself, or raises InvalidStorageUri."""
    try:
        target = _parse(uri, options)
    except InvalidStorageUri as error:
        assert isinstance(error.reason, str)
        assert error.reason
        return
    again = parse_uri(target.uri)
    assert again == target
    assert again.uri == target.uri
    assert again.key == target.key
    assert target_from_dict(target.as_dict()) == target


FAST = settings(max_examples=400, deadline=None)

#: pieces of URIs, to build text that gets deep into the parser (and a blank and a tab)
URI_PIECES_TEXT = """
iscsi:// nfs:// ISCSI:// Nfs:// http:// nfs: // / [ ] ::1 2001:db8::1 : :3260 :0 :65536
% %2F %2e %2E%2E %00 %C3%A9 %FF %3B %E2%84%AA ? & = lun tpgt iface vers proto timeo
retrans secret_file password ;portal= ; iqn.2010-10.org.x:y eui.0123456789abcdef naa.
iqn.2010-10. h san.example 192.0.2.1 300.1.1.1 1 007 4 4.1 udp tcp + @ . .. - a X v1.x
%25eth0 ::ffff:192.0.2.1 # é 0 * ~
"""
URI_PIECES = st.sampled_from([*URI_PIECES_TEXT.split(), " ", "\t"])
URI_ISH = st.lists(URI_PIECES, max_size=16).map("".join)
ISCSI_ISH = st.lists(URI_PIECES, max_size=8).map(lambda pieces: f"{BASE}{''.join(pieces)}")
NFS_ISH = st.lists(URI_PIECES, max_size=8).map(lambda pieces: "nfs://h/" + "".join(pieces))


@FAST
@given(st.text(max_size=80))
def test_arbitrary_text_parses_or_is_refused(text: str) -> None:
    _parses_or_refuses(text)


@FAST
@given(st.one_of(URI_ISH, ISCSI_ISH, NFS_ISH))
def test_uri_like_text_parses_or_is_refused(text: str) -> None:
    _parses_or_refuses(text)


OPTION_NAMES = st.sampled_from(
    ["lun", "tpgt", "iface", "vers", "proto", "timeo", "retrans", "secret_file", "LUN", "x"]
)
OPTION_VALUES = st.one_of(
    st.integers(min_value=-10, max_value=2**65),
    st.sampled_from(["0", "07", "4", "4.1", "tcp", "udp", "600", "default", "", "a b", "%41"]),
    st.text(max_size=6),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False),
)


@FAST
@given(
    st.one_of(ISCSI_ISH, NFS_ISH, st.sampled_from([BASE, f"{BASE};portal=1", "nfs://h/x?vers=4"])),
    st.dictionaries(OPTION_NAMES, OPTION_VALUES, max_size=4),
)
def test_uri_with_options_parses_or_is_refused(uri: str, options: dict[str, Any]) -> None:
    _parses_or_refuses(uri, options)


@FAST
@given(st.text(max_size=40), st.text(max_size=40))
def test_exports_built_from_fields_read_back_or_are_refused(server: str, export: str) -> None:
    try:
        target = NfsExport(server or "h", "/" + export)
    except InvalidInput as error:
        assert not isinstance(error, InvalidStorageUri)
        return
    assert parse_uri(target.uri) == target


# valid targets built from their components, each written in one of its spellings


def _cased(text: str) -> st.SearchStrategy[str]:
    """:returns: ``text`` in lowercase, uppercase or swapped case."""
    return st.sampled_from([text, text.upper(), text.swapcase()])


@st.composite
def hosts(draw: st.DrawFn) -> tuple[str, str, str]:
    """:returns: the host as written in the URI, the address it is, and as the normal URI has it."""
    kind = draw(st.sampled_from(["name", "ipv4", "ipv6"]))
    if kind == "ipv4":
        address = str(draw(st.ip_addresses(v=4)))
        return address, address, address
    if kind == "ipv6":
        ip = ipaddress.IPv6Address(int(draw(st.ip_addresses(v=6))))
        assume(ip.ipv4_mapped is None)  # refused: the IPv4 address is the spelling
        written = draw(_cased(draw(st.sampled_from([ip.compressed, ip.exploded]))))
        return f"[{written}]", ip.compressed, f"[{ip.compressed}]"
    label = st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=10).filter(
        lambda text: not text.startswith("-") and not text.endswith("-")
    )
    last = st.builds(lambda a, b: a + b, st.sampled_from(string.ascii_lowercase), label)
    labels = [*draw(st.lists(label, max_size=3)), draw(last)]
    name = ".".join(labels)
    return draw(_cased(name)), name, name


@st.composite
def iqns(draw: st.DrawFn) -> str:
    """:returns: a target name in its normal (lowercase) form."""
    kind = draw(st.sampled_from(["iqn", "eui", "naa"]))
    hex_digits = st.text("0123456789abcdef", min_size=16, max_size=16)
    if kind == "eui":
        return "eui." + draw(hex_digits)
    if kind == "naa":
        return "naa." + "".join(draw(st.lists(hex_digits, min_size=1, max_size=2)))
    year = draw(st.integers(0, 9999))
    month = draw(st.integers(1, 12))
    authority = draw(st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=20))
    rest = draw(st.text(string.ascii_lowercase + string.digits + "-.:", max_size=40))
    return f"iqn.{year:04d}-{month:02d}.{authority}{rest}"


def _number(value: int) -> st.SearchStrategy[str]:
    """:returns: ``value`` written with 0 to 3 leading zeros."""
    return st.integers(0, 3).map(lambda zeros: "0" * zeros + str(value))


@FAST
@given(st.data())
def test_iscsi_targets_from_components(data: st.DataObject) -> None:
    draw = data.draw
    written_host, address, normal_host = draw(hosts())
    port = draw(st.none() | st.integers(1, 65535))
    iqn = draw(iqns())
    lun = draw(st.none() | st.integers(0, 2**64 - 1))
    first = st.sampled_from(string.ascii_letters + string.digits + "_:")
    rest = st.text(string.ascii_letters + string.digits + "-_.:", max_size=63)
    iface = draw(st.none() | st.builds(lambda a, b: a + b, first, rest))
    tpgt = draw(st.none() | st.integers(0, 65535))

    port_text = f":{draw(_number(port))}" if port else draw(st.sampled_from(["", ":"]))
    written_iqn = draw(_cased(iqn))
    if draw(st.booleans()):
        written_iqn = quote(written_iqn, safe="")
    fields = []
    if lun is not None:
        fields.append(f"lun={draw(_number(lun))}")
    if iface is not None:
        fields.append(f"iface={quote(iface, safe=draw(st.sampled_from(['', ':'])))}")
    parameter = ""
    if tpgt is not None:
        if draw(st.booleans()):
            parameter = f";portal={draw(_number(tpgt))}"
        else:
            fields.append(f"tpgt={draw(_number(tpgt))}")
    fields = draw(st.permutations(fields))
    query = "?" + "&".join(fields) if fields else ""
    uri = f"{draw(_cased('iscsi'))}://{written_host}{port_text}/{written_iqn}{parameter}{query}"

    target = parse_uri(uri)
    assert isinstance(target, IscsiTarget)
    assert (target.address, target.port, target.iqn) == (address, port or 3260, iqn)
    assert (target.lun, target.iface, target.tpgt) == (lun, iface, tpgt)
    options = [(n, v) for n, v in (("iface", iface), ("lun", lun), ("tpgt", tpgt)) if v is not None]
    normal_query = "&".join(f"{name}={value}" for name, value in options)
    portal = f"{normal_host}:{port or 3260}"
    assert target.uri == f"iscsi://{portal}/{iqn}" + (f"?{normal_query}" if options else "")
    assert target.key == f"iscsi:{iqn}@{portal}"
    assert parse_uri(target.uri) == target
    assert target_from_dict(target.as_dict()) == target
    assert target == IscsiTarget(address, port or 3260, iqn, lun=lun, iface=iface, tpgt=tpgt)


EXPORT_CHARACTERS = string.ascii_letters + string.digits + "-._~!$&'()*+,=:%?#@;[]\"<>é中ß"
NFS_OPTION_VALUES = {
    "vers": st.sampled_from(["3", "4", "4.0", "4.1", "4.2"]),
    "proto": st.sampled_from(["rdma", "tcp", "tcp6", "udp", "udp6"]),
    "retrans": st.integers(1, 64).map(str),
    "timeo": st.integers(1, 6000).map(str),
}


@FAST
@given(st.data())
def test_nfs_exports_from_components(data: st.DataObject) -> None:
    draw = data.draw
    written_host, address, normal_host = draw(hosts())
    component = st.text(EXPORT_CHARACTERS, min_size=1, max_size=8).filter(
        lambda text: text not in (".", "..")
    )
    components = draw(st.lists(component, max_size=5))
    export = "/" + "/".join(components)
    written_path = ""
    for part in components:
        separator = draw(st.sampled_from(["/", "//", "/./"]))
        written_path += separator + quote(part, safe=draw(st.sampled_from(["", "!$&'()*+,=:"])))
    written_path += draw(st.sampled_from(["/", ""])) if components else "/"

    names = draw(st.lists(st.sampled_from(sorted(NFS_OPTION_VALUES)), unique=True))
    options = {name: draw(NFS_OPTION_VALUES[name]) for name in names}
    if options.get("vers", "").startswith("4") and options.get("proto", "").startswith("udp"):
        del options["proto"]
    in_query = {name: value for name, value in options.items() if draw(st.booleans())}
    beside = {name: value for name, value in options.items() if name not in in_query}
    fields = [
        f"{name}={draw(_number(int(v))) if name in ('retrans', 'timeo') else v}"
        for name, v in in_query.items()
    ]
    query = "?" + "&".join(draw(st.permutations(fields))) if fields else ""
    colon = draw(st.sampled_from(["", ":"]))
    uri = f"{draw(_cased('nfs'))}://{written_host}{colon}{written_path}{query}"

    target = parse_uri(uri, beside)
    assert isinstance(target, NfsExport)
    assert (target.server, target.export) == (address, export)
    assert dict(target.options) == options
    normal_query = "&".join(f"{name}={options[name]}" for name in sorted(options))
    path = quote(export, safe="/!$&'()*+,=:")
    assert target.uri == f"nfs://{normal_host}{path}" + (f"?{normal_query}" if options else "")
    assert target.key == f"nfs:{normal_host}:{export}"
    assert parse_uri(target.uri) == target
    assert target_from_dict(target.as_dict()) == target
