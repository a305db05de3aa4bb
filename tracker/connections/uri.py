"""The URIs that name managed storage connections: parsed, checked, normalised.

A caller hands :func:`parse_uri` one of these forms (the scheme and host in any
case)::

    nfs://SERVER/EXPORT[?vers=V&proto=P&timeo=N&retrans=N]
    nfs://SERVER:/EXPORT[?...]                    (mount(8)'s SERVER:/EXPORT, as a URI)
    iscsi://PORTAL[:PORT]/IQN[?lun=N&iface=NAME&tpgt=N]
    iscsi://PORTAL[:PORT]/IQN;portal=TPGT         (the RFC spelling of the portal group tag)

with an IPv6 SERVER or PORTAL in brackets (``nfs://[2001:db8::1]/srv``,
``iscsi://[2001:db8::1]:3260/iqn...``). It returns a frozen
:class:`IscsiTarget` or :class:`NfsExport` (a :data:`StorageTarget`), which is
what the store holds (as :meth:`~IscsiTarget.as_dict`, read back with
:func:`target_from_dict`). Anything else raises
:class:`~tracker.exceptions.InvalidStorageUri` (or its
:class:`~tracker.exceptions.UnsupportedScheme`), whose message says precisely
what is wrong and lists the accepted forms.

The URI library is the standard library's: :func:`urllib.parse.urlsplit`
splits the components, :func:`urllib.parse.parse_qsl` (``strict_parsing``,
``max_num_fields``) reads the query, :func:`urllib.parse.unquote` decodes
(strict UTF-8), :mod:`ipaddress` reads and normalises addresses. No regular
expressions: what ``urlsplit`` leaves lenient (``[::1]x``, an empty query,
``#`` with nothing after it) is checked with plain string operations. The
rules shared with the rest of tracker are :mod:`tracker.validation`'s
(``text``, ``integer``, ``lun``, ``portal``, ``ISCSI_PORT``); the portal text
of a target is :func:`tracker.validation.portal`'s normal form.

Normal form
-----------

* scheme, host names and IQNs in lowercase; an IPv4 address as
  :mod:`ipaddress` writes it; an IPv6 address without brackets in the fields,
  compressed and lowercase (``2001:db8::1``), in brackets in URIs, portals,
  keys and mount sources;
* the iSCSI port always present (3260 when none was given), leading zeros of
  numbers dropped (``lun=007`` is ``lun=7``, ``:03260`` is ``:3260``);
* the query's options sorted by name; the RFC's ``;portal=N`` written as
  ``?tpgt=N``; nothing written for an option not given;
* an NFS export as an absolute path without ``//``, ``.`` components or a
  trailing ``/`` (except the root, ``/``), percent-encoded in URIs where RFC
  3986 requires it (and ``@`` and ``;``, see below).

:attr:`IscsiTarget.uri` and :attr:`NfsExport.uri` are that form, and
``parse_uri(t.uri) == t`` for every target. The dataclasses normalise their
fields when built (``IscsiTarget("HOST", 3260, "IQN.2010-10.ORG.X:Y")`` holds
``host`` and ``iqn.2010-10.org.x:y``) and refuse what :func:`parse_uri` would
refuse, raising :class:`~tracker.exceptions.InvalidInput` naming the field.

Interpretation decisions (where the issue is silent)
----------------------------------------------------

Input as a whole:

* A URI is a ``str`` of 1 to :data:`MAX_URI_LENGTH` (2048) characters, all
  ASCII characters that RFC 3986 allows: a blank, a control character, a
  non-ASCII character (percent-encode it in UTF-8; a host name in its
  ``xn--`` form) or ``"<>\\^`{|}`` is refused with its position, and so is a
  ``%`` not followed by two hex digits.
* A raw ``@`` anywhere is taken as credentials (``user:password@host``, or
  a password with ``/`` in it that ``urlsplit`` would split elsewhere) and
  refused before anything else is looked at, so no character of it ever
  appears in a reason: "credentials do not belong in a URI: use the
  secret_file option". None of the accepted forms has an ``@``; one in an
  export path is written ``%40``. The URI an error shows (its ``uri``
  attribute and its message) never has user information: everything from
  ``//`` to the last ``@`` is removed, and the values of query options and
  path parameters that are not known options are shown as ``***``.
* A fragment (``#`` anywhere, even with nothing after it) is refused.
* ``[`` and ``]`` only enclose an IPv6 address, first in the authority.
* Option names are exact and lowercase, as nfs(5) and iscsiadm spell them
  (``LUN=1`` is an unknown option); a query field must be ``NAME=VALUE``;
  an option given twice in the query is refused even with one value; ``+``
  means a space in a query value, as ``parse_qsl`` reads it (and a space is
  never part of a value). Names that look like credentials (``password``,
  ``username``, ``chap_...``, ``auth...``, ``secret...``, ``token``) get the
  credentials reason; ``secret_file`` in the query gets "give it in options".

Hosts:

* A host is a host name (RFC 1123: labels of 1 to 63 letters, digits and
  ``-``, not beginning or ending with ``-``, at most 253 characters, no
  trailing ``.``), an IPv4 address, or an IPv6 address in brackets. A host
  whose last label is all digits must be an IPv4 address in dotted-quad form
  (``192.0.2.1``; ``192.0.2``, ``300.1.1.1`` and leading zeros are refused).
  Percent-encoding in a host is refused.
* IPv6 zone ids (``[fe80::1%25eth0]``) are refused: they name an interface
  of one host, so a stored target would not mean the same on another and two
  spellings of one portal would not compare equal. ``IPvFuture`` literals
  (``[v1.x]``) and IPv4-mapped IPv6 addresses (``[::ffff:192.0.2.1]``: write
  the IPv4 address, which gives one spelling and one key) are refused too.
* An empty port (``host:``) is allowed for both schemes (RFC 3986 §6.2.3: it
  means the default). For NFS it is the ``nfs://server:/export`` form.
* NFS takes no port: ``nfs://server:2049/export`` is refused. The NFS port is
  a mount option that this grammar does not carry; mount(8) finds it through
  rpcbind or uses 2049.

iSCSI:

* The path is exactly one segment, the target name: ``iscsi://h/iqn/`` and
  ``iscsi://h/a/b`` are refused. Percent-encoding in it is decoded (strict
  UTF-8) and then checked, so ``%2F`` or ``%00`` in an IQN are refused by the
  name's character set.
* A target name is lowercased (RFC 3722 folds case) and must be an
  ``iqn.YYYY-MM.AUTHORITY[:ID]`` name (month 01 to 12, a non-empty naming
  authority), ``eui.`` + 16 hex digits, or ``naa.`` + 16 or 32 hex digits; at
  most :data:`MAX_IQN_LENGTH` (223) characters of ``a-z 0-9 - . :``. The
  non-ASCII names RFC 3722's stringprep allows are refused: tracker does not
  implement stringprep, and Linux targets use ASCII names.
* ``;portal=N`` (the only path parameter) is the target portal group tag:
  ``tpgt=N``. Given both ways (or in ``options``) with one value it is
  accepted, with two values refused.
* ``lun`` is 0 to 2^64-1 (:func:`tracker.validation.lun`), ``tpgt`` 0 to
  65535; ``iface`` (an open-iscsi interface name, a file name under
  ``/etc/iscsi/ifaces``) is 1 to 64 of ``A-Z a-z 0-9 - _ . :``, not beginning
  with ``.`` or ``-``, kept in its case. ``iface=default`` is kept as given,
  not turned into "no iface".
* :attr:`IscsiTarget.key` is ``iscsi:<iqn>@<portal>``: the LUN, the iface and
  the portal group tag do not make another target.

NFS:

* The export is decoded and normalised as a file path: ``%2F`` is a ``/``,
  ``//`` and ``.`` components are dropped, a trailing ``/`` is dropped (except
  the root, NFSv4's pseudo-root ``/``), and a ``..`` component is refused
  (also written ``%2E%2E``). Blanks and control characters are refused after
  decoding as well (an export with a space cannot go in fstab or a mount
  unit unescaped). At most :data:`MAX_EXPORT_LENGTH` (1024, NFS's
  ``MNTPATHLEN``) characters. Non-ASCII characters are allowed, percent-encoded
  in UTF-8 in the URI (an :class:`NfsExport` whose URI would so be longer than
  :data:`MAX_URI_LENGTH` is refused, as :func:`parse_uri` would refuse it).
* ``;`` in an NFS path is refused (write ``%3B``): path parameters are the
  iSCSI RFC form, and one in an export would be ambiguous.
* Options: ``vers`` is one of :data:`NFS_VERSIONS` (``4`` and ``4.0`` stay
  different: ``4`` lets the client negotiate the minor version); ``proto`` one
  of :data:`NFS_PROTOCOLS`, lowercase; ``retrans`` 1 to 64 and ``timeo`` 1 to
  6000 deciseconds (the kernel caps a timeout at 600 s). NFSv4 over
  ``udp``/``udp6`` is refused (the kernel does not mount it).
* :attr:`NfsExport.key` is ``nfs:<server>:<export>``: options do not make
  another export.

Options beside the URI (:func:`parse_uri`'s ``options``):

* They merge with the query; a key in both (or, for ``tpgt``, also in
  ``;portal=``) must have the same value once normalised (``timeo=0600`` and
  ``600`` agree); otherwise the reason names both values.
* Keys in :data:`NON_URI_OPTIONS` (``secret_file``) are ignored here: they are
  the caller's business, which splits them off with the same constant. Any
  other key that is not an option of the URI's scheme is refused.
* Values are ``str``, or ``int`` (not ``bool``) for convenience of JSON
  callers; anything else is refused. At most 255 characters each.

:func:`target_from_dict` takes exactly the keys :meth:`~IscsiTarget.as_dict`
writes (``lun``/``iface``/``tpgt`` and ``options`` may be missing), validates
and normalises again, and raises :class:`~tracker.exceptions.InvalidInput`
(not ``InvalidStorageUri``: there is no URI) naming the key; unknown keys are
named, never their values.

Nothing here holds, shows or logs a secret: the dataclasses have no field for
one, and this module does not log.
"""

from __future__ import annotations

import ipaddress
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias, TypeVar, cast
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from tracker import validation
from tracker.exceptions import InvalidInput, InvalidStorageUri, UnsupportedScheme

__all__ = [
    "ISCSI_OPTIONS",
    "MAX_EXPORT_LENGTH",
    "MAX_IFACE_LENGTH",
    "MAX_IQN_LENGTH",
    "MAX_URI_LENGTH",
    "NFS_OPTIONS",
    "NFS_PROTOCOLS",
    "NFS_RETRANS_RANGE",
    "NFS_TIMEO_RANGE",
    "NFS_VERSIONS",
    "NON_URI_OPTIONS",
    "IscsiTarget",
    "NfsExport",
    "StorageTarget",
    "parse_uri",
    "target_from_dict",
]

#: The longest URI accepted, in characters.
MAX_URI_LENGTH: Final = 2048
#: The longest iSCSI name (RFC 3720 §3.2.6.1: 223 bytes).
MAX_IQN_LENGTH: Final = 223
#: The longest NFS export path (``MNTPATHLEN``).
MAX_EXPORT_LENGTH: Final = 1024
#: The longest open-iscsi interface name (``ISCSI_MAX_IFACE_LEN`` less its NUL).
MAX_IFACE_LENGTH: Final = 64
#: The longest host name (RFC 1123 / RFC 1035).
MAX_HOST_LENGTH: Final = 253
#: The largest target portal group tag (16 bits, RFC 7143).
MAX_TPGT: Final = 65535
#: The longest value of an option given beside the URI.
MAX_OPTION_LENGTH: Final = 255

#: Keys of the caller's ``options`` that are not URI options: :func:`parse_uri`
#: ignores them (the caller handles them, and never puts them in a URI).
NON_URI_OPTIONS: Final = frozenset({"secret_file"})
#: The options of ``iscsi`` URIs, in their normal order.
ISCSI_OPTIONS: Final = ("iface", "lun", "tpgt")
#: The options of ``nfs`` URIs, in their normal order.
NFS_OPTIONS: Final = ("proto", "retrans", "timeo", "vers")
#: Accepted values of the NFS ``vers`` option.
NFS_VERSIONS: Final = ("3", "4", "4.0", "4.1", "4.2")
#: Accepted values of the NFS ``proto`` option.
NFS_PROTOCOLS: Final = ("rdma", "tcp", "tcp6", "udp", "udp6")
#: Accepted ``retrans`` values (retransmissions before a major timeout).
NFS_RETRANS_RANGE: Final = (1, 64)
#: Accepted ``timeo`` values (deciseconds).
NFS_TIMEO_RANGE: Final = (1, 6000)

_SCHEMES: Final = ("iscsi", "nfs")
_OPTIONS: Final[dict[str, tuple[str, ...]]] = {"iscsi": ISCSI_OPTIONS, "nfs": NFS_OPTIONS}
_ALL_OPTIONS: Final = frozenset(ISCSI_OPTIONS + NFS_OPTIONS)
#: Query fields read at most (more is refused before the fields are looked at).
_MAX_QUERY_FIELDS: Final = 16
#: Words in an option name that mean it is a credential.
_SECRET_WORDS: Final = ("user", "pass", "secret", "chap", "auth", "cred", "token")

_DIGITS: Final = frozenset(string.digits)
_HEX: Final = frozenset(string.hexdigits)
_LOWER_HEX: Final = frozenset("0123456789abcdef")
#: What a URI may hold (RFC 3986 §2: unreserved, reserved and ``%``).
_URI_CHARACTERS: Final = frozenset(
    string.ascii_letters + string.digits + "-._~" + ":/?#[]@" + "!$&'()*+,;=" + "%"
)
_HOST_CHARACTERS: Final = frozenset(string.ascii_lowercase + string.digits + "-")
_ISCSI_NAME_CHARACTERS: Final = frozenset(string.ascii_lowercase + string.digits + "-.:")
_IFACE_CHARACTERS: Final = frozenset(string.ascii_letters + string.digits + "-_.:")
#: What the normal form leaves unencoded in an export path (``quote`` adds
#: letters, digits and ``_.-~``): RFC 3986's pchar less ``@`` and ``;``.
_PATH_SAFE: Final = "/!$&'()*+,=:"

_T = TypeVar("_T")


class _Refused(Exception):
    """A rule of this module refused a value; :attr:`reason` says why (no secret in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Unsupported(Exception):
    def __init__(self, scheme: str) -> None:
        super().__init__(scheme)
        self.scheme = scheme


# --- the targets ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IscsiTarget:
    """An iSCSI target on one portal, as an ``iscsi://`` URI names it.

    The fields are normalised when the object is built (see the module's
    normal form), so two targets that mean the same compare equal.

    :ivar address: the portal's host name (lowercase) or IP address (an IPv6
        address without brackets, compressed).
    :ivar port: the portal's TCP port (3260 when the URI gave none).
    :ivar iqn: the target name, lowercase (``iqn.``, ``eui.`` or ``naa.``).
    :ivar lun: the LUN the caller wants, or ``None``.
    :ivar iface: the open-iscsi interface to log in through, or ``None``.
    :ivar tpgt: the target portal group tag, or ``None``.
    :raises tracker.exceptions.InvalidInput: a field that is not acceptable
        (the error names it).
    """

    address: str
    port: int
    iqn: str
    lun: int | None = None
    iface: str | None = None
    tpgt: int | None = None

    def __post_init__(self) -> None:
        kind = "iSCSI target"
        address = _checked(kind, "address", _address, self.address)
        port = _checked(kind, "port", _port_number, self.port)
        # the portal text is validation.portal's: refuse what it refuses
        _checked(kind, "portal", _portal_text, _join(address, port))
        object.__setattr__(self, "address", address)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "iqn", _checked(kind, "iqn", _iqn, self.iqn))
        if self.lun is not None:
            object.__setattr__(self, "lun", _checked(kind, "lun", _lun, self.lun))
        if self.iface is not None:
            object.__setattr__(self, "iface", _checked(kind, "iface", _iface, self.iface))
        if self.tpgt is not None:
            object.__setattr__(self, "tpgt", _checked(kind, "tpgt", _tpgt, self.tpgt))

    @property
    def scheme(self) -> str:
        """``"iscsi"``."""
        return "iscsi"

    @property
    def portal(self) -> str:
        """The portal as :func:`tracker.validation.portal` writes it.

        :returns: ``"192.0.2.10:3260"``, ``"[2001:db8::1]:3260"``, ``"san.example:3260"``.
        """
        return _portal_text(_join(self.address, self.port))

    @property
    def key(self) -> str:
        """What reference counting compares: ``iscsi:<iqn>@<portal>``.

        The LUN, the iface and the portal group tag do not make another target.
        """
        return f"iscsi:{self.iqn}@{self.portal}"

    @property
    def options(self) -> tuple[tuple[str, str], ...]:
        """The query options of the normal form, sorted by name (those that are set)."""
        values = {"iface": self.iface, "lun": self.lun, "tpgt": self.tpgt}
        return tuple(
            (name, str(values[name])) for name in ISCSI_OPTIONS if values[name] is not None
        )

    @property
    def uri(self) -> str:
        """The normal form: ``iscsi://192.0.2.10:3260/iqn.2010-10.org.openstack:vol?lun=1&tpgt=1``."""
        return f"iscsi://{self.portal}/{self.iqn}{_query(self.options)}"

    def as_dict(self) -> dict[str, object]:
        """Give the target as connection info.

        :returns: the connection info, JSON-ready and without secrets:
            ``{"type": "iscsi", "portal": ..., "target": iqn, "lun": ..., "iface": ...,
            "tpgt": ...}`` (``None`` for what is not set). :func:`target_from_dict` reads
            it back.
        """
        return {
            "type": "iscsi",
            "portal": self.portal,
            "target": self.iqn,
            "lun": self.lun,
            "iface": self.iface,
            "tpgt": self.tpgt,
        }


@dataclass(frozen=True, slots=True)
class NfsExport:
    """An NFS export, as an ``nfs://`` URI names it.

    The fields are normalised when the object is built (see the module's
    normal form), so two exports that mean the same compare equal.

    :ivar server: the server's host name (lowercase) or IP address (an IPv6
        address without brackets, compressed).
    :ivar export: the exported path, absolute and normalised.
    :ivar options: ``(name, value)`` pairs sorted by name, from ``vers``,
        ``proto``, ``retrans`` and ``timeo``.
    :raises tracker.exceptions.InvalidInput: a field that is not acceptable
        (the error names it).
    """

    server: str
    export: str
    options: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        kind = "NFS export"
        object.__setattr__(self, "server", _checked(kind, "server", _address, self.server))
        object.__setattr__(self, "export", _checked(kind, "export", _export, self.export))
        object.__setattr__(self, "options", _checked(kind, "options", _nfs_options, self.options))
        if len(self.uri) > MAX_URI_LENGTH:  # parse_uri(self.uri) would refuse it
            raise InvalidInput(
                f"{kind} export",
                self.export,
                f"its URI, percent-encoded, is longer than {MAX_URI_LENGTH} characters",
            )

    @property
    def scheme(self) -> str:
        """``"nfs"``."""
        return "nfs"

    def mount_source(self) -> str:
        """:returns: what mount(8) takes: ``"server:/export"``, ``"[2001:db8::1]:/export"``."""
        return f"{_bracketed(self.server)}:{self.export}"

    @property
    def key(self) -> str:
        """What reference counting compares: ``nfs:<server>:<export>`` (options do not count)."""
        return f"nfs:{self.mount_source()}"

    @property
    def uri(self) -> str:
        """The normal form: ``nfs://server/export?proto=tcp&vers=4.1``."""
        path = quote(self.export, safe=_PATH_SAFE)
        return f"nfs://{_bracketed(self.server)}{path}{_query(self.options)}"

    def as_dict(self) -> dict[str, object]:
        """Give the export as connection info.

        :returns: the connection info, JSON-ready and without secrets:
            ``{"type": "nfs", "server": ..., "export": ..., "options": {name: value}}``.
            :func:`target_from_dict` reads it back.
        """
        return {
            "type": "nfs",
            "server": self.server,
            "export": self.export,
            "options": dict(self.options),
        }


StorageTarget: TypeAlias = IscsiTarget | NfsExport


# --- parsing ---------------------------------------------------------------------------------


def parse_uri(uri: str, options: Mapping[str, str | int] | None = None) -> StorageTarget:
    """Parse a storage connection URI, with the options given beside it.

    :param uri: ``nfs://SERVER/EXPORT``, ``nfs://SERVER:/EXPORT``,
        ``iscsi://PORTAL[:PORT]/IQN[?lun=N&iface=NAME&tpgt=N]`` or
        ``iscsi://PORTAL[:PORT]/IQN;portal=TPGT`` (see the module).
    :param options: options given beside the URI; they merge with the
        query's (the same key in both must agree). Keys in
        :data:`NON_URI_OPTIONS` are ignored: they are the caller's.
    :returns: the normalised target.
    :raises tracker.exceptions.UnsupportedScheme: a scheme other than
        ``iscsi`` and ``nfs``.
    :raises tracker.exceptions.InvalidStorageUri: anything else that is not
        acceptable; ``reason`` says what, and the URI it shows holds no
        credentials.
    """
    if not isinstance(uri, str):
        kind = type(uri).__name__
        raise InvalidStorageUri(f"<{kind}>", f"a storage URI is text (str), not {kind}")
    try:
        return _parse(uri, options)
    except _Unsupported as exc:
        raise UnsupportedScheme(_shown(uri), exc.scheme) from None
    except _Refused as exc:
        raise InvalidStorageUri(_shown(uri), exc.reason) from None
    except InvalidInput as exc:  # a field the dataclass refused
        raise InvalidStorageUri(_shown(uri), exc.reason) from None


def _parse(uri: str, options: Mapping[str, str | int] | None) -> StorageTarget:
    if not uri:
        raise _Refused("the URI is empty")
    if len(uri) > MAX_URI_LENGTH:
        raise _Refused(f"{len(uri)} characters long; at most {MAX_URI_LENGTH}")
    if "@" in uri:
        raise _Refused(
            "credentials do not belong in a URI: use the secret_file option "
            "(a user name or password before '@' was removed from the URI shown)"
        )
    _check_characters(uri)
    if "#" in uri:
        raise _Refused("a fragment ('#...') has no meaning in a storage URI")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        _explain_authority(uri)  # the reason of the checks below, when they have one
        raise _Refused(f"not a URI ({exc})") from None
    if not parts.scheme:
        raise _Refused("no scheme: a storage URI starts with iscsi:// or nfs://")
    written_scheme = uri[: len(parts.scheme)]
    if parts.scheme not in _SCHEMES:
        raise _Unsupported(written_scheme)
    if not uri[len(parts.scheme) + 1 :].startswith("//"):
        raise _Refused(f"no host: write {parts.scheme}://HOST/...")
    if not parts.netloc:
        raise _Refused("no host between '//' and the path")
    for component in (parts.path, parts.query):
        if "[" in component or "]" in component:
            raise _Refused("'[' and ']' may only enclose an IPv6 address, as the host")
    host_text, bracketed, port_text = _split_authority(parts.netloc)
    address = _address(host_text, bracketed=bracketed)
    query: list[tuple[str, object]] = list(_query_fields(parts.query, parts.scheme))
    given = _given_options(options, parts.scheme)
    sources: list[tuple[str, Sequence[tuple[str, object]]]] = [
        ("the query", query),
        ("options", given),
    ]
    if parts.scheme == "nfs":
        if port_text:
            raise _Refused(
                f"':{_short(port_text)}' after the server: an nfs URI has no port "
                "(nfs://SERVER/EXPORT or nfs://SERVER:/EXPORT)"
            )
        export = _nfs_path(parts.path)
        nfs_options = _merge(sources, _nfs_option)
        return NfsExport(address, export, tuple(sorted(nfs_options.items())))
    port = validation.ISCSI_PORT if not port_text else _port_text(port_text)
    iqn, path_tpgt = _iscsi_path(parts.path)
    if path_tpgt is not None:
        sources.insert(0, (";portal=", [("tpgt", path_tpgt)]))
    merged = _merge(sources, _iscsi_option)
    return IscsiTarget(
        address,
        port,
        iqn,
        lun=cast("int | None", merged.get("lun")),
        iface=cast("str | None", merged.get("iface")),
        tpgt=cast("int | None", merged.get("tpgt")),
    )


def _check_characters(uri: str) -> None:
    """Refuse characters that RFC 3986 does not allow, and malformed percent-encoding."""
    for position, char in enumerate(uri):
        if char in _URI_CHARACTERS:
            continue
        code = f"U+{ord(char):04X}"
        odd = _odd_character(char)
        if odd is not None:
            raise _Refused(f"{odd} ({code}) at position {position}: a URI has none")
        if not char.isascii():
            raise _Refused(
                f"a non-ASCII character ({code}) at position {position}: percent-encode it "
                "in UTF-8 (or write a host name in its xn-- form)"
            )
        raise _Refused(
            f"the character {char!r} at position {position} is not allowed in a URI: "
            "percent-encode it"
        )
    position = uri.find("%")
    while position >= 0:
        escape = uri[position + 1 : position + 3]
        if len(escape) != 2 or not _HEX.issuperset(escape):
            raise _Refused(f"'%' at position {position} is not followed by two hex digits")
        position = uri.find("%", position + 3)


def _explain_authority(uri: str) -> None:
    """Check the authority that ``urlsplit`` refused, to give this module's precise reason."""
    after = uri.partition("//")[2]
    ends = [index for index in (after.find(char) for char in "/?#") if index >= 0]
    host, bracketed, _ = _split_authority(after[: min(ends, default=len(after))])
    _address(host, bracketed=bracketed)


def _split_authority(netloc: str) -> tuple[str, bool, str | None]:
    """Split the authority (no ``@`` in it) as RFC 3986 §3.2.2 does.

    :returns: the host text (without brackets), whether it was in brackets,
        and the port text (``None`` without ``:``, ``""`` for an empty port).
    """
    if netloc.startswith("["):
        inside, bracket, after = netloc[1:].partition("]")
        if not bracket:
            raise _Refused("'[' without ']' around the IPv6 address")
        if "[" in inside or "[" in after or "]" in after:
            raise _Refused("'[' and ']' may only enclose an IPv6 address, once")
        if after and not after.startswith(":"):
            raise _Refused(f"{_short(after)!r} after ']': only ':PORT' may follow an IPv6 address")
        return inside, True, after[1:] if after else None
    if "[" in netloc or "]" in netloc:
        raise _Refused(
            "'[' and ']' may only enclose an IPv6 address at the start of the host, "
            "e.g. iscsi://[2001:db8::1]:3260/IQN"
        )
    if netloc.count(":") > 1:
        raise _Refused(
            "an IPv6 address must be in brackets, e.g. iscsi://[2001:db8::1]:3260/IQN "
            "or nfs://[2001:db8::1]/EXPORT"
        )
    host, colon, port = netloc.partition(":")
    if not host:
        raise _Refused("no host before the port")
    return host, False, port if colon else None


def _iscsi_path(path: str) -> tuple[str, str | None]:
    """:returns: the decoded target name and the text of ``;portal=``, if any."""
    segment = path[1:]
    if not segment or segment.startswith(";"):
        raise _Refused("no target name: write iscsi://PORTAL/IQN")
    if "/" in segment:
        raise _Refused("the path is one segment, the target name: a '/' follows or splits it")
    name, _, parameters = segment.partition(";")
    tpgt: str | None = None
    if parameters or segment.endswith(";"):
        for parameter in parameters.split(";"):
            key, equals, value = parameter.partition("=")
            if not equals or not key:
                raise _Refused(f"path parameter {_short(parameter)!r} is not NAME=VALUE")
            if _decode(key, "a path parameter") != "portal":
                raise _Refused(
                    f"unknown path parameter {_short(key)!r}: only ;portal=TPGT "
                    "(the target portal group tag)"
                )
            if tpgt is not None:
                raise _Refused("the path parameter portal is repeated")
            tpgt = _decode(value, "the path parameter portal")
    return _decode(name, "the target name"), tpgt


def _nfs_path(path: str) -> str:
    """:returns: the decoded export path (normalised later, by :func:`_export`)."""
    if not path:
        raise _Refused("no export path: write nfs://SERVER/EXPORT")
    if ";" in path:
        raise _Refused(
            "';' in an nfs path: path parameters are only for iscsi (;portal=); "
            "write %3B for a ';' in an export path"
        )
    return _decode(path, "the export path")


def _decode(text: str, what: str) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise _Refused(f"the percent-encoding of {what} is not UTF-8") from None


def _query_fields(query: str, scheme: str) -> list[tuple[str, str]]:
    """:returns: the query's fields, each name an option of ``scheme``, none repeated."""
    if not query:
        return []
    if query.count("&") >= _MAX_QUERY_FIELDS:
        raise _Refused(f"more than {_MAX_QUERY_FIELDS} query fields")
    try:
        fields = parse_qsl(
            query,
            keep_blank_values=True,
            strict_parsing=True,
            max_num_fields=_MAX_QUERY_FIELDS,
            errors="strict",
        )
    except UnicodeDecodeError:
        raise _Refused("the percent-encoding of the query is not UTF-8") from None
    except ValueError:
        raise _Refused(
            "the query is NAME=VALUE fields joined by '&', with nothing empty between them"
        ) from None
    seen: set[str] = set()
    for name, _value in fields:
        if name not in _OPTIONS[scheme]:
            raise _Refused(_unknown_option(name, scheme, in_uri=True))
        if name in seen:
            raise _Refused(f"the option {name} is repeated in the query")
        seen.add(name)
    return fields


def _given_options(options: object, scheme: str) -> list[tuple[str, object]]:
    """:returns: the caller's options that are URI options (others refused, or ignored)."""
    if options is None:
        return []
    if not isinstance(options, Mapping):
        raise _Refused(f"options are a mapping of names to values, not {type(options).__name__}")
    given: list[tuple[str, object]] = []
    for name, value in options.items():
        if not isinstance(name, str):
            raise _Refused(f"option names are text, not {type(name).__name__}")
        if name in NON_URI_OPTIONS:
            continue
        if name not in _OPTIONS[scheme]:
            raise _Refused(_unknown_option(name, scheme, in_uri=False))
        given.append((name, value))
    return given


def _unknown_option(name: str, scheme: str, *, in_uri: bool) -> str:
    """:returns: why ``name`` is not an option of ``scheme`` URIs (never showing a value)."""
    lowered = name.lower()
    if name in NON_URI_OPTIONS:
        return f"{name} is not a URI option: give it beside the URI, in options"
    if any(word in lowered for word in _SECRET_WORDS):
        where = "a URI" if in_uri else "a URI or its options"
        return f"credentials do not belong in {where}: use the secret_file option"
    accepted = ", ".join(_OPTIONS[scheme])
    if name in _ALL_OPTIONS:
        return f"{name} is not an option of {scheme} URIs (they take {accepted})"
    return f"unknown option {_short(name)!r} ({scheme} URIs take {accepted})"


def _merge(
    sources: Sequence[tuple[str, Sequence[tuple[str, object]]]],
    normalise: Callable[[str, object], _T],
) -> dict[str, _T]:
    """Merge options from several sources, normalised; one key must agree everywhere."""
    merged: dict[str, _T] = {}
    where: dict[str, str] = {}
    for source, fields in sources:
        for name, value in fields:
            normal = normalise(name, value)
            if name in merged and merged[name] != normal:
                raise _Refused(
                    f"{name} is {merged[name]} in {where[name]} but {normal} in {source}: "
                    "give one value"
                )
            merged[name] = normal
            where.setdefault(name, source)
    return merged


def _option_text(name: str, value: object) -> str:
    """:returns: an option's value as text (``int`` values, not ``bool``, are written out)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**70) < value < 2**70:
            raise _Refused(f"the option {name} is out of range")
        return str(value)
    if not isinstance(value, str):
        raise _Refused(f"the option {name} is a {type(value).__name__}, not text")
    if not value:
        raise _Refused(f"the option {name} has no value")
    if len(value) > MAX_OPTION_LENGTH:
        raise _Refused(f"the option {name} is longer than {MAX_OPTION_LENGTH} characters")
    return value


def _whole_number(name: str, text: str) -> int:
    """:returns: ``text`` (decimal digits, leading zeros allowed) as an ``int``."""
    if not (text.isascii() and text.isdigit()):
        raise _Refused(f"{name}={_short(text)!r} is not a whole number")
    digits = text.lstrip("0") or "0"
    if len(digits) > 30:  # beyond every range here; int() of it would be slow
        raise _Refused(f"{name}={_short(text)!r} is out of range")
    return int(digits)


def _iscsi_option(name: str, value: object) -> int | str:
    text = _option_text(name, value)
    if name == "iface":
        return _iface(text)
    number = _whole_number(name, text)
    return _lun(number) if name == "lun" else _tpgt(number)


def _nfs_option(name: str, value: object) -> str:
    text = _option_text(name, value)
    if name == "vers":
        if text not in NFS_VERSIONS:
            raise _Refused(
                f"vers={_short(text)!r}: the NFS version is one of {', '.join(NFS_VERSIONS)}"
            )
        return text
    if name == "proto":
        if text not in NFS_PROTOCOLS:
            raise _Refused(
                f"proto={_short(text)!r}: the transport is one of {', '.join(NFS_PROTOCOLS)}"
            )
        return text
    if name in ("retrans", "timeo"):
        low, high = NFS_RETRANS_RANGE if name == "retrans" else NFS_TIMEO_RANGE
        number = _whole_number(name, text)
        try:
            validation.integer(name, number, low, high)
        except InvalidInput:
            raise _Refused(f"{name}={number} is not from {low} to {high}") from None
        return str(number)
    raise _Refused(_unknown_option(name, "nfs", in_uri=False))


# --- the field rules (shared by the URI, the dataclasses and target_from_dict) -------------


def _checked(kind: str, name: str, rule: Callable[[object], _T], value: object) -> _T:
    """Apply a field rule, as :class:`~tracker.exceptions.InvalidInput` naming the field."""
    try:
        return rule(value)
    except _Refused as exc:
        raise InvalidInput(f"{kind} {name}", value, exc.reason) from None


def _text(what: str, value: object, max_length: int) -> str:
    """:returns: ``value`` when it is non-empty text without blanks or control characters."""
    if not isinstance(value, str):
        raise _Refused(f"{what} is a {type(value).__name__}, not text")
    if not value:
        raise _Refused(f"{what} is empty")
    try:
        checked = validation.text(what, value, max_length)
    except InvalidInput as exc:
        raise _Refused(f"{what}: {exc.reason}") from None
    for position, char in enumerate(checked):
        odd = _odd_character(char)
        if odd is not None:
            raise _Refused(f"{what} has {odd} (U+{ord(char):04X}) at position {position}")
    return checked


def _odd_character(char: str) -> str | None:
    """:returns: what ``char`` is when it is a control character, a blank or unprintable."""
    code = ord(char)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return "a control character"
    if char.isspace():
        return "a blank"
    if not char.isprintable():
        return "an unprintable character"
    return None


def _address(value: object, *, bracketed: bool | None = None) -> str:
    """:returns: the normal form of a host: a lowercase host name, an IPv4 or an IPv6 address.

    :param bracketed: whether the URI had it in brackets; ``None`` (a field,
        never in brackets) decides by the presence of ``:``.
    """
    text = _text("the host", value, MAX_HOST_LENGTH)
    if bracketed is None:
        if text.startswith("["):
            raise _Refused("the address is written without brackets")
        bracketed = ":" in text
    if bracketed:
        return _ipv6(text)
    return _host_name(text)


def _ipv6(text: str) -> str:
    if "%" in text:
        raise _Refused(
            f"[{_short(text)}] has an IPv6 zone id: give an address that is the same on every host"
        )
    if text[:1] in ("v", "V"):
        raise _Refused(f"[{_short(text)}] is an IPvFuture literal: only IPv6 goes in brackets")
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise _Refused(
            f"[{_short(text)}] is not an IPv6 address (brackets are for IPv6 addresses only)"
        ) from None
    if address.ipv4_mapped is not None:
        raise _Refused(
            f"[{_short(text)}] is an IPv4-mapped IPv6 address: write {address.ipv4_mapped}"
        )
    return address.compressed


def _host_name(text: str) -> str:
    # before lowercasing, which folds some non-ASCII letters to ASCII ones
    bad = next((char for char in text if not char.isascii()), None)
    if bad is not None:
        raise _Refused(
            f"the character {bad!r} is not allowed in a host name (letters, digits, '-' "
            "and '.'; a host name in its xn-- form)"
        )
    name = text.lower()
    labels = name.split(".")
    if labels[-1] and _DIGITS.issuperset(labels[-1]):
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError:
            raise _Refused(
                f"{_short(text)!r} is not an IPv4 address (four numbers from 0 to 255, without "
                "leading zeros), nor a host name (whose last label is not all digits)"
            ) from None
    if len(name) > MAX_HOST_LENGTH:
        raise _Refused(f"the host name is longer than {MAX_HOST_LENGTH} characters")
    for label in labels:
        if not label:
            raise _Refused(
                f"the host name {_short(text)!r} has an empty label (a leading, trailing or "
                "doubled '.')"
            )
        bad = next((char for char in label if char not in _HOST_CHARACTERS), None)
        if bad is not None:
            raise _Refused(
                f"the character {bad!r} is not allowed in a host name (letters, digits, '-' "
                "and '.'; an IPv6 address goes in brackets)"
            )
        if len(label) > 63:
            raise _Refused("a label of the host name is longer than 63 characters")
        if label.startswith("-") or label.endswith("-"):
            raise _Refused(f"the host name label {label!r} begins or ends with '-'")
    return name


def _port_text(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise _Refused(f"the port {_short(text)!r} is not a number")
    digits = text.lstrip("0") or "0"
    if len(digits) > 5 or not 1 <= int(digits) <= 65535:
        raise _Refused(f"the port {_short(text)} is not from 1 to 65535")
    return int(digits)


def _port_number(value: object) -> int:
    try:
        return validation.integer("port", value, 1, 65535)
    except InvalidInput as exc:
        raise _Refused(f"the port is {exc.reason}") from None


def _portal_text(value: object) -> str:
    try:
        return validation.portal("portal", value)
    except InvalidInput as exc:
        raise _Refused(f"the portal: {exc.reason}") from None


def _iqn(value: object) -> str:
    """:returns: the target name, lowercase, when it is an iSCSI name (see the module)."""
    text = _text("the target name", value, MAX_IQN_LENGTH)
    # checked before lowercasing: str.lower folds some non-ASCII letters (U+212A
    # KELVIN SIGN) to ASCII ones, which would let a non-ASCII name through
    bad = next((char for char in text if char.lower() not in _ISCSI_NAME_CHARACTERS), None)
    if bad is not None or not text.isascii():
        bad = bad if bad is not None else next(char for char in text if not char.isascii())
        raise _Refused(
            f"the character {bad!r} is not allowed in an iSCSI name "
            "(letters, digits, '-', '.' and ':')"
        )
    name = text.lower()
    prefix, body = name[:4], name[4:]
    if prefix == "iqn.":
        date, dot, authority = body.partition(".")
        year, dash, month = date.partition("-")
        if not (
            dot
            and dash
            and len(year) == 4
            and _DIGITS.issuperset(year)
            and len(month) == 2
            and _DIGITS.issuperset(month)
            and 1 <= int(month) <= 12
            and authority
            and authority[0] not in ".:-"
        ):
            raise _Refused(
                f"{_short(name)!r} is not an iqn. name: iqn.YYYY-MM.AUTHORITY[:ID], "
                "e.g. iqn.2010-10.org.openstack:volume-1"
            )
        return name
    if prefix in ("eui.", "naa."):
        lengths = (16,) if prefix == "eui." else (16, 32)
        if len(body) not in lengths or not _LOWER_HEX.issuperset(body):
            digits = " or ".join(str(length) for length in lengths)
            raise _Refused(f"an {prefix} name is {prefix} followed by {digits} hex digits")
        return name
    raise _Refused(f"{_short(name)!r} is not an iSCSI name: it starts with iqn., eui. or naa.")


def _lun(value: object) -> int:
    return _number_field("lun", value, validation.MAX_LUN, lambda: validation.lun("lun", value))


def _tpgt(value: object) -> int:
    return _number_field(
        "tpgt", value, MAX_TPGT, lambda: validation.integer("tpgt", value, 0, MAX_TPGT)
    )


def _number_field(name: str, value: object, maximum: int, rule: Callable[[], int]) -> int:
    """Apply a :mod:`tracker.validation` number rule, with this module's reasons."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Refused(f"{name} is a {type(value).__name__}, not a whole number")
    try:
        return rule()
    except InvalidInput:
        shown = value if value.bit_length() <= 128 else "a number that large"
        raise _Refused(f"{name}={shown} is not from 0 to {maximum}") from None


def _iface(value: object) -> str:
    name = _text("the iface", value, MAX_IFACE_LENGTH)
    bad = next((char for char in name if char not in _IFACE_CHARACTERS), None)
    if bad is not None:
        raise _Refused(
            f"the character {bad!r} is not allowed in an iface name (letters, digits, '-', '_', "
            "'.' and ':')"
        )
    if name[0] in ".-":
        raise _Refused(f"the iface name {name!r} begins with {name[0]!r}")
    return name


def _export(value: object) -> str:
    """:returns: the export as a normalised absolute path (see the module)."""
    path = _text("the export path", value, MAX_URI_LENGTH)
    if not path.startswith("/"):
        raise _Refused("the export is an absolute path (it starts with '/')")
    components = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in components:
        raise _Refused("the export path has a '..' component")
    normal = "/" + "/".join(components)
    if len(normal) > MAX_EXPORT_LENGTH:
        raise _Refused(f"the export path is longer than {MAX_EXPORT_LENGTH} characters")
    return normal


def _nfs_options(value: object) -> tuple[tuple[str, str], ...]:
    """:returns: NFS options as sorted ``(name, value)`` pairs, each checked and normalised."""
    pairs: Iterable[object]
    if isinstance(value, Mapping):
        pairs = value.items()
    elif isinstance(value, tuple | list):
        pairs = value
    else:
        raise _Refused(f"the options are (name, value) pairs, not a {type(value).__name__}")
    options: dict[str, str] = {}
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise _Refused("the options are (name, value) pairs")
        name, text = pair
        if not isinstance(name, str):
            raise _Refused(f"option names are text, not {type(name).__name__}")
        if name not in NFS_OPTIONS:
            raise _Refused(_unknown_option(name, "nfs", in_uri=False))
        if name in options:
            raise _Refused(f"the option {name} is repeated")
        options[name] = _nfs_option(name, text)
    if options.get("vers", "").startswith("4") and options.get("proto") in ("udp", "udp6"):
        raise _Refused(f"NFSv4 does not run over {options['proto']}: use tcp, tcp6 or rdma")
    return tuple(sorted(options.items()))


# --- writing ---------------------------------------------------------------------------------


def _bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _join(address: str, port: int) -> str:
    return f"{_bracketed(address)}:{port}"


def _query(options: tuple[tuple[str, str], ...]) -> str:
    if not options:
        return ""
    return "?" + "&".join(f"{name}={quote(value, safe=':')}" for name, value in options)


def _short(value: object, limit: int = 40) -> str:
    """:returns: ``value`` as text cut to ``limit`` characters, for a reason."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else f"{text[:limit]}..."


def _shown(uri: str) -> str:
    """:returns: ``uri`` as an error may show it: without user information, and with the
    values of unknown options (query fields and path parameters) replaced by ``***``.

    The values are looked for both in ``uri`` as given and in it without the user
    information, so a secret with ``@`` in it (``?password=p@ss``) shows no part of it.
    """
    removed = range(0)
    at = uri.rfind("@")
    if at >= 0:
        start = uri.find("//")
        removed = range(start + 2 if 0 <= start < at else 0, at + 1)
    # the position in ``uri`` of each position of the text without user information
    origin = [*range(removed.start), *range(removed.stop, len(uri) + 1)]
    stripped = uri[: removed.start] + uri[removed.stop :]
    hidden = [False] * len(uri)
    starts: set[int] = set()  # where an (empty or hidden) value begins: "***" is written
    for text, where in ((uri, list(range(len(uri) + 1))), (stripped, origin)):
        for begin, end in _unknown_values(text):
            starts.add(where[begin])
            for position in range(begin, end):
                hidden[where[position]] = True
    shown: list[str] = []
    for position in range(len(uri) + 1):
        if position in removed:
            continue
        previous = bool(shown) and shown[-1] == "***"
        if (position in starts or (position < len(uri) and hidden[position])) and not previous:
            shown.append("***")
        if position < len(uri) and not hidden[position]:
            shown.append(uri[position])
    return "".join(shown)


def _unknown_values(text: str) -> list[tuple[int, int]]:
    """:returns: the spans of ``text`` that hold the values of path parameters (but
    ``portal``) and of query fields that are not known options.
    """
    question = text.find("?")
    base_end = len(text) if question < 0 else question
    spans: list[tuple[int, int]] = []
    semicolon = text.find(";", 0, base_end)
    if semicolon >= 0:
        for name, begin, end in _named_values(text, semicolon + 1, base_end, ";"):
            if unquote(name) != "portal":
                spans.append((begin, end))
    if question >= 0:
        query_end = text.find("#", question + 1)
        query_end = len(text) if query_end < 0 else query_end
        for name, begin, end in _named_values(text, question + 1, query_end, "&"):
            if unquote(name.replace("+", " ")) not in _ALL_OPTIONS:
                spans.append((begin, end))
    return spans


def _named_values(text: str, start: int, end: int, separator: str) -> list[tuple[str, int, int]]:
    """:returns: ``(name, value start, value end)`` of each ``NAME=VALUE`` piece of
    ``text[start:end]`` split at ``separator`` (pieces without ``=`` are left out).
    """
    named: list[tuple[str, int, int]] = []
    position = start
    while True:
        stop = text.find(separator, position, end)
        stop = end if stop < 0 else stop
        equals = text.find("=", position, stop)
        if equals >= 0:
            named.append((text[position:equals], equals + 1, stop))
        if stop >= end:
            return named
        position = stop + 1


# --- reading back what the store holds ---------------------------------------------------------

_DICT_KEYS: Final[dict[str, tuple[frozenset[str], frozenset[str]]]] = {
    # type: (required keys, optional keys)
    "iscsi": (frozenset({"type", "portal", "target"}), frozenset({"lun", "iface", "tpgt"})),
    "nfs": (frozenset({"type", "server", "export"}), frozenset({"options"})),
}


def target_from_dict(data: Mapping[str, object]) -> StorageTarget:
    """Build a target again from what :meth:`IscsiTarget.as_dict` / :meth:`NfsExport.as_dict`
    returned (what the store holds), validating and normalising every value again.

    :param data: ``{"type": "iscsi", "portal": ..., "target": ..., "lun": ..., "iface": ...,
        "tpgt": ...}`` or ``{"type": "nfs", "server": ..., "export": ..., "options": {...}}``;
        the optional keys may be missing.
    :returns: the target.
    :raises tracker.exceptions.InvalidInput: not such a mapping: an unknown
        type, a missing or unknown key (named, its value never shown), or a
        value a target refuses (named).
    """
    field = "storage target"
    if not isinstance(data, Mapping):
        raise InvalidInput(field, f"<{type(data).__name__}>", "a mapping, as as_dict() returns")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _DICT_KEYS:
        shown = kind if isinstance(kind, str) else f"<{type(kind).__name__}>"
        raise InvalidInput(f"{field} type", shown, "iscsi or nfs")
    required, optional = _DICT_KEYS[kind]
    unknown = sorted(_short(key) for key in data if key not in required | optional)
    if unknown:
        raise InvalidInput(field, unknown, f"unknown keys for an {kind} target")
    missing = sorted(required - set(data))
    if missing:
        raise InvalidInput(field, missing, f"missing keys of an {kind} target")
    if kind == "nfs":
        options = data.get("options", {})
        if not isinstance(options, Mapping):
            raise InvalidInput(f"{field} options", f"<{type(options).__name__}>", "a mapping")
        return NfsExport(
            cast(str, data["server"]),
            cast(str, data["export"]),
            cast("tuple[tuple[str, str], ...]", tuple(options.items())),
        )
    address, port = _checked(field, "portal", _split_portal, data["portal"])
    return IscsiTarget(
        address,
        port,
        cast(str, data["target"]),
        lun=cast("int | None", data.get("lun")),
        iface=cast("str | None", data.get("iface")),
        tpgt=cast("int | None", data.get("tpgt")),
    )


def _split_portal(value: object) -> tuple[str, int]:
    """:returns: the address (without brackets) and port of a portal text."""
    portal = _portal_text(value)
    host, _, port = portal.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), int(port)
