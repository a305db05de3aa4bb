"""CHAP secrets: read from a file only its owner can read, held in memory, never shown.

A storage connection that needs CHAP names a *secret file* in its options
(``secret_file=/etc/tracker/chap/array1``) or is given the credentials by the
caller at manage time. Either way the secret lives only in that file and in
the memory of the process using it: never in the URI, the store, the list
output or a log line (:class:`~tracker.host.iscsiadm.ChapCredentials` does
not show its password in its ``repr``).

The file holds ``username = ...`` and ``password = ...`` lines (``#``
comments and blank lines allowed). It is refused when group or others may
read it (mode ``0600`` or stricter, as an SSH key), when it is not a regular
file (a link, a FIFO), or when it is larger than :data:`MAX_BYTES`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tracker.exceptions import InvalidInput, SecretFileRefused
from tracker.host.iscsiadm import ChapCredentials

__all__ = ["MAX_BYTES", "SECRET_FILE_OPTION", "read_secret_file"]

#: The option of a storage connection naming its secret file.
SECRET_FILE_OPTION = "secret_file"  # noqa: S105 (the option's name, not a secret)
#: The largest secret file read.
MAX_BYTES = 4096
_KEYS = frozenset({"username", "password"})


def read_secret_file(path: str | Path) -> ChapCredentials:
    """Read CHAP credentials from a file that only its owner can read.

    :param path: the file (absolute).
    :returns: the credentials.
    :raises tracker.exceptions.SecretFileRefused: not absolute, missing or
        unreadable, not a regular file, readable by group or others, too
        large, or without both a username and a password. The message never
        shows the file's content.
    """
    name = os.fspath(path)
    if not os.path.isabs(name):
        raise SecretFileRefused(name, "not an absolute path")
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise SecretFileRefused(name, error.strerror or "cannot be opened") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SecretFileRefused(name, "not a regular file")
        if info.st_mode & 0o044:
            raise SecretFileRefused(
                name,
                f"readable by group or others (mode {stat.S_IMODE(info.st_mode):04o}); "
                "make it 0600",
            )
        data = os.read(fd, MAX_BYTES + 1)
    except OSError as error:
        raise SecretFileRefused(name, error.strerror or "cannot be read") from None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise SecretFileRefused(name, f"larger than {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretFileRefused(name, "not UTF-8 text") from None
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        key = key.strip().lower()
        if not sep or key not in _KEYS:
            raise SecretFileRefused(
                name, f"line {number} is not 'username = ...' or 'password = ...'"
            )
        if key in found:
            raise SecretFileRefused(name, f"line {number} repeats {key}")
        found[key] = value.strip()
    missing = sorted(_KEYS - {k for k, v in found.items() if v})
    if missing:
        raise SecretFileRefused(name, f"no {' and no '.join(missing)}")
    try:
        return ChapCredentials(found["username"], found["password"])
    except InvalidInput as error:  # its reason names the field, never the value
        raise SecretFileRefused(name, f"{error.field}: {error.reason}") from None
