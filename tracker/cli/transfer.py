"""``tracker dump`` and ``tracker load``: the tracked state as a JSON document."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from oslo_config import cfg

from tracker.cli import common
from tracker.progress import ProgressLine


def register(subparsers: Any) -> None:
    """Add ``tracker dump`` and ``tracker load``.

    :returns: nothing.
    """
    dump = common.add_command(
        subparsers,
        "dump",
        run_dump,
        help="write the tracked state as JSON",
        description=(
            "Write every tracked record (ids, versions and timestamps included) as a "
            "JSON document, on standard output or into FILE."
        ),
    )
    dump.add_argument("--backend", metavar="NAME", default=None, help="only this backend")
    dump.add_argument(
        "-o", "--output", metavar="FILE", default=None, help="write into FILE (replaced whole)"
    )
    load = common.add_command(
        subparsers,
        "load",
        run_load,
        help="load a dump into the store",
        description=(
            "Load a dump written by `tracker dump` into the store, in one transaction: "
            "a bad dump, or one clashing with what is stored, writes nothing."
        ),
    )
    load.add_argument("file", metavar="FILE", help="the dump ('-' for standard input)")
    common.add_json(load)


def _counts(document: dict[str, Any]) -> dict[str, int]:
    volumes = [v for b in document["backends"] for v in b["volumes"]]
    return {
        "backends": len(document["backends"]),
        "volumes": len(volumes),
        "snapshots": sum(len(v["snapshots"]) for v in volumes),
        "connections": sum(len(v["connections"]) for v in volumes),
        "key_values": len(document.get("key_values", {})),
    }


def _describe(counts: dict[str, int]) -> str:
    return ", ".join(
        [
            common.plural(counts["backends"], "backend"),
            common.plural(counts["volumes"], "volume"),
            common.plural(counts["snapshots"], "snapshot"),
            common.plural(counts["connections"], "connection"),
            common.plural(counts["key_values"], "key-value pair"),
        ]
    )


def _write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run_dump(conf: cfg.ConfigOpts) -> int:
    """Write the dump on standard output or into the file.

    :returns: 0.
    :raises tracker.exceptions.NotFound: the backend asked for is not stored.
    :raises tracker.exceptions.StoreError: the store cannot be opened or read.
    :raises tracker.cli.common.CommandError: the file cannot be written.
    """
    from tracker import serialization

    backend: str | None = common.arg(conf, "backend")
    output: str | None = common.arg(conf, "output")
    with common.opened_store(conf, create=False) as store:
        document = serialization.dump(store, backend)
        url = store.display_url
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if output is None or output == "-":
        sys.stdout.write(text)
        return 0
    try:
        _write_atomically(Path(output), text)
    except OSError as exc:
        raise common.CommandError(f"cannot write {output}: {exc.strerror or exc}") from exc
    print(f"dumped {_describe(_counts(document))} from {url} into {output}")
    return 0


def run_load(conf: cfg.ConfigOpts) -> int:
    """Load the dump file into the store, with progress on a terminal.

    :returns: 0.
    :raises tracker.exceptions.DumpFormatError: the file is not a valid dump.
    :raises tracker.exceptions.AlreadyExists: a record of the dump is stored already.
    :raises tracker.exceptions.StoreError: the store cannot be opened or written.
    :raises tracker.cli.common.CommandError: the file cannot be read.
    """
    from tracker import serialization

    source: str = common.arg(conf, "file")
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise common.CommandError(f"cannot read {source}: {exc.strerror or exc}") from exc
    with common.opened_store(conf) as store, ProgressLine(f"loading {source}") as progress:
        summary = serialization.load(store, data, progress=progress)
        url = store.display_url
    counts = asdict(summary)
    if common.arg(conf, "json"):
        common.print_json({"store": url, "source": source, **counts})
    else:
        print(f"loaded {_describe(counts)} from {source} into {url}")
    return 0
