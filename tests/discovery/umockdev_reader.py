"""Read a ``.umockdev`` text description into DeviceRecords (test helper).

Only what discovery tests need: ``P:`` paths, ``E:`` properties (``SUBSYSTEM``,
``DEVTYPE`` go to their own fields), ``A:`` text attributes (trailing newline
stripped; attributes that only create kernel objects, ``x/uevent``, dropped),
``H:`` binary attributes, and ``holders/``/``slaves/`` ``L:`` links resolved to
sys_paths. ``parent`` is the nearest ancestor that is itself a ``P:`` entry.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from tracker.host.records import DeviceRecord, FrozenBytesMap, FrozenMap


def _unescape(value: str) -> str:
    return value.encode("latin-1").decode("unicode_escape")


def read_umockdev(path: Path) -> list[DeviceRecord]:
    """Parse the file into records, in file order."""
    blocks: list[dict[str, dict[str, str] | str]] = []
    current: dict[str, dict[str, str] | str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        tag, _, rest = line.partition(": ")
        if tag == "P":
            current = {"path": rest, "E": {}, "A": {}, "H": {}, "L": {}}
            blocks.append(current)
            continue
        assert current is not None
        if tag in ("E", "A", "H", "L"):
            key, _, value = rest.partition("=")
            table = current[tag]
            assert isinstance(table, dict)
            table[key] = value
    paths = {str(b["path"]) for b in blocks}
    records = []
    for block in blocks:
        sys_path = str(block["path"])
        props = dict(block["E"])  # type: ignore[arg-type]
        subsystem = props.pop("SUBSYSTEM")
        devtype = props.pop("DEVTYPE", None)
        attrs = {
            k: _unescape(v).removesuffix("\n")
            for k, v in block["A"].items()  # type: ignore[union-attr]
            if not k.endswith("/uevent")
        }
        binary = {k: bytes.fromhex(v) for k, v in block["H"].items()}  # type: ignore[union-attr]
        links = {
            k: posixpath.normpath(posixpath.join(sys_path, posixpath.dirname(k), v))
            for k, v in block["L"].items()  # type: ignore[union-attr]
            if k.startswith(("holders/", "slaves/"))
        }
        parent = None
        candidate = posixpath.dirname(sys_path)
        while candidate not in ("/", "/devices"):
            if candidate in paths:
                parent = candidate
                break
            candidate = posixpath.dirname(candidate)
        records.append(
            DeviceRecord(
                sys_path=sys_path,
                subsystem=subsystem,
                devtype=devtype,
                sys_name=posixpath.basename(sys_path),
                properties=FrozenMap(props),
                attributes=FrozenMap(attrs),
                binary_attributes=FrozenBytesMap(binary),
                parent=parent,
                links=FrozenMap(links),
            )
        )
    return records
