"""infi.storagemodel's rescan guide, run as written with only the import path changed.

The guide's examples run line by line in a child process under umockdev's
preload, configured by environment variables only (no file, no argument), so
that ``get_storage_model()`` with no arguments is what builds the model: the
store of ``OS_DATABASE__CONNECTION``, the testbed of ``OS_DISCOVERY__ROOT``
(whose ``sys/`` libudev also sees, through the preload), and udev's netlink
monitor, whose socket the parent's :class:`~tracker.testing.live.LiveTestbed`
sends its events to. The parent's :class:`~tracker.testing.scanfifo.ScanResponder`
makes the disks the examples name appear when the child rescans: ``"123456"``,
an FC mapping on LUN 0 of a target, then ``"123"``; no disk ``"456"`` ever exists.

The child runs one line per request on its standard input and prints one JSON
report per line (its value, or the exception it raised), so the parent can
set up what the next example waits for, once the previous one has returned.
"""

from __future__ import annotations

import ast
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from tracker.db import observed
from tracker.db.store import Store
from tracker.exceptions import InvalidInput
from tracker.predicates import FiberChannelMappingExists
from tracker.testing.live import LiveTestbed
from tracker.testing.scanfifo import ScanRequest, ScanResponder
from tracker.testing.specs import FcRemotePortSpec, Hctl, LunSpec
from tracker.testing.topologies import (
    Designator,
    LunIdentity,
    _Allocator,
    _lun,
    build_pg80,
    build_pg83,
    fc_multipath,
    identity_from_pages,
    synthetic_identity,
)
from tracker.testing.umockdev import preload_environment, require_no_udevd

pytestmark = pytest.mark.slow

# The examples of infi.storagemodel's rescan guide, verbatim: doc/rescan.rst of
# https://github.com/Infinidat/infi.storagemodel (Infinidat). Only these doctest
# lines are quoted; nothing else of that project is used here.
GUIDE = """
   >>> from infi.storagemodel import get_storage_model()
   >>> from infi.storagemodel.predicates import DiskExists
   >>> get_storage_model().rescan_and_wait_for(DiskExists("123456"))

   >>> from infi.storagemodel.predicates import FiberChannelMappingExists
   >>> predicate = FiberChannelMappingExists("01020304060708", "0a:0b:0c:0d:0e:0f:0g:0h", lun_number=0)
   >>> get_storage_model().rescan_and_wait_for(predicate)

   >>> from infi.storagemodel.predicates import DiskExists, DiskNotExists, PredicateList
   >>> get_storage_model().rescan_and_wait_for([DiskExists("123"), DiskNotExists("456")])
"""  # noqa: E501  (verbatim)

GUIDE_LINES = [line.strip()[4:] for line in GUIDE.splitlines() if line.strip().startswith(">>> ")]

HOST = "h"
#: The longest one line of the guide may take in the child (a wait returns in < 1 s).
STEP_LIMIT = 20.0

#: Runs one line of Python per JSON line read, in one namespace, and prints a report.
HARNESS = r"""
import json, sys
from oslo_config import cfg

namespace = {"__name__": "__guide__"}
files = cfg.find_config_files(project="tracker")
print(json.dumps({"ready": True, "config_files": files}), flush=True)
for line in sys.stdin:
    source = json.loads(line)
    report = {"source": source, "result": None, "error": None}
    try:
        try:
            code = compile(source, "<guide>", "eval")
        except SyntaxError:
            exec(compile(source, "<guide>", "exec"), namespace)
        else:
            value = eval(code, namespace)
            report["result"] = value.as_dict() if hasattr(value, "as_dict") else repr(value)
    except Exception as error:
        report["error"] = {
            "type": type(error).__name__,
            "module": type(error).__module__,
            "value_error": isinstance(error, ValueError),
            "message": str(error),
        }
    print(json.dumps(report), flush=True)
"""


def port(line: str) -> str:
    """The guide's line with the import path changed, ``infi.storagemodel`` -> ``tracker``.

    The guide's first line, ``from infi.storagemodel import get_storage_model()``, is
    a SyntaxError in any Python (a name is imported, not called): porting it must
    drop that ``()`` too. Nothing else changes.
    """
    source = line.replace("infi.storagemodel.predicates", "tracker.predicates")
    source = source.replace("infi.storagemodel", "tracker")
    if source == "from tracker import get_storage_model()":
        source = "from tracker import get_storage_model"
    return source


def colons(wwpn: int) -> str:
    """A WWPN as the guide writes one: 8 lowercase hex pairs joined by ``:``."""
    digits = f"{wwpn:016x}"
    return ":".join(digits[i : i + 2] for i in range(0, 16, 2))


def serial_identity(serial: bytes, oui: str = "00a098") -> LunIdentity:
    """A NetApp-like LUN whose page 0x80 carries ``serial``, blank-padded to 16 bytes
    as arrays pad it (the serial predicates match is the page's, trimmed)."""
    naa = bytes.fromhex(f"6{oui}0{serial.hex()}".ljust(32, "0"))
    pg83 = build_pg83([Designator(1, 0, 3, naa), Designator(2, 0, 1, b"NETAPP  " + serial)])
    return identity_from_pages("NETAPP", "LUN C-Mode", "9800", build_pg80(serial.ljust(16)), pg83)


class Guide:
    """The child running the guide's lines; killed and reaped when its ``with`` ends."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HARNESS],
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True),
            threading.Thread(target=self._drain, args=(self.process.stderr,), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def _drain(self, stream: Any) -> None:
        for line in stream:
            self.err.append(line)

    def __enter__(self) -> Guide:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        for reader in self.readers:
            reader.join(10)

    def report(self, timeout: float = STEP_LIMIT) -> dict[str, Any]:
        """The next JSON line the child prints."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"the child printed nothing for {timeout} s: {''.join(self.err)}"
            ) from None
        if line is None:
            self.process.wait(timeout=30)
            raise AssertionError(
                f"the child exited ({self.process.returncode}): {''.join(self.err)}"
            )
        document: dict[str, Any] = json.loads(line)
        return document

    def run(self, source: str) -> dict[str, Any]:
        """Run one line in the child; :returns: its report, once the line returned."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(source) + "\n")
        self.process.stdin.flush()
        report = self.report()
        assert report["source"] == source
        return report

    def ok(self, source: str) -> Any:
        """Run one line that must not raise; :returns: its value (``None`` for a statement)."""
        report = self.run(source)
        assert report["error"] is None, (report, "".join(self.err))
        return report["result"]

    def end(self, timeout: float = 10.0) -> int:
        """Close the child's input: it has nothing left to run and exits."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the child still ran {timeout} s after its last line") from None


class Bed:
    """An FC host (fc_multipath, plus a third target port on host 0 with no LUN yet)
    whose rescans make the guide's disks appear."""

    def __init__(self, root: Path, tmp: Path, library: Path) -> None:
        self.live = LiveTestbed(root, deliver=True)
        fc_multipath(self.live, luns=1)
        self.target = FcRemotePortSpec(
            host=0, number=2, wwpn=0x500A098000000002, wwnn=0x500A098000000100, port_id=0x020002
        )
        self.live.add_fc_remote_port(self.target)
        self.initiator = 0x2100001B32000000  # host 0's port name in fc_multipath
        self.allocator = _Allocator(self.live)
        self.responder = ScanResponder(self.live, delay=0.03)
        self.tmp = tmp
        self.library = library
        self.url = f"sqlite:///{tmp / 't.sqlite'}"

    def lun(self, hctl: Hctl, identity: LunIdentity) -> LunSpec:
        return _lun(hctl, identity, self.allocator.disk(identity))

    def environment(self) -> dict[str, str]:
        """Only environment variables configure the child: no tracker option set
        here leaks in, and HOME / XDG_STATE_HOME are private (no config file)."""
        home = self.tmp / "home"
        home.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(
            HOME=str(home),
            XDG_STATE_HOME=str(self.tmp / "state"),
            OS_DATABASE__CONNECTION=self.url,
            OS_DISCOVERY__ROOT=str(self.live.root),
            OS_DISCOVERY__HOST_NAME=HOST,
            # no second rescan inside one example: each example's rescan is counted
            OS_WAITING__QUIET_PERIOD="30",
        )
        return preload_environment(self.live.root, self.library, env)

    def guide(self) -> Guide:
        require_no_udevd()
        return Guide(self.environment(), self.tmp / "home")


@pytest.fixture
def bed(bed_dir: Path, tmp_path: Path, preload_library: Path) -> Iterator[Bed]:
    made = Bed(bed_dir, tmp_path, preload_library)
    with made.responder:
        yield made


def holds(result: Any) -> dict[str, Any]:
    """A wait's result, checked to be one that held, on events (not polling)."""
    assert isinstance(result, dict), result
    assert result["holds"] is True
    assert result["mode"] == "events"
    assert result["rescans"] == 1
    assert result["events"] > 0
    return result


def requests_answered(responder: ScanResponder, count: int) -> Sequence[ScanRequest]:
    """Every request written so far, once ``count`` have been answered (a wait returns
    as soon as its disk is there, maybe before the rescan's last host was answered)."""
    assert responder.wait_for_requests(count, timeout=10), responder.requests
    assert len(responder.requests) == count, responder.requests
    return list(responder.requests)


def test_the_guide_has_the_examples_quoted_and_its_first_line_cannot_run() -> None:
    assert len(GUIDE_LINES) == 8
    with pytest.raises(SyntaxError):
        compile(GUIDE_LINES[0], "<guide>", "exec")
    ported = [port(line) for line in GUIDE_LINES]
    assert ported[0] == "from tracker import get_storage_model"
    # apart from the "()", only the import path differs
    for line, source in zip(GUIDE_LINES[1:], ported[1:], strict=True):
        assert source.replace("tracker", "infi.storagemodel") == line
    for source in ported:
        compile(source, "<guide>", "exec")


def test_the_guides_wwns_are_refused_when_the_predicate_is_built() -> None:
    # 14 hex digits for the initiator; 'g' and 'h' are no hex digits for the target
    with pytest.raises(InvalidInput) as caught:
        FiberChannelMappingExists("01020304060708", "0a:0b:0c:0d:0e:0f:0g:0h", lun_number=0)
    assert isinstance(caught.value, ValueError)
    assert caught.value.field == "initiator_wwn"
    with pytest.raises(InvalidInput) as caught:
        FiberChannelMappingExists("0102030405060708", "0a:0b:0c:0d:0e:0f:0g:0h", lun_number=0)
    assert caught.value.field == "target_wwn"


def test_the_rescan_guide_runs_as_written(bed: Bed) -> None:
    first, fc_example, last = GUIDE_LINES[:3], GUIDE_LINES[3:6], GUIDE_LINES[6:]
    disk_123456 = bed.lun(Hctl(0, 0, 0, 1), serial_identity(b"123456"))
    fc_lun0 = bed.lun(Hctl(0, 0, bed.target.target_id, 0), synthetic_identity(95))
    disk_123 = bed.lun(Hctl(1, 0, 1, 1), serial_identity(b"123"))
    assert disk_123456.vpd_pg80 == b"\x00\x80\x00\x10" + b"123456          "
    assert disk_123456.disk and fc_lun0.disk and disk_123.disk
    with bed.guide() as guide:
        ready = guide.report()
        assert ready == {"ready": True, "config_files": []}

        # 1. waiting for a new disk
        assert guide.ok(port(first[0])) is None
        assert guide.ok(port(first[1])) is None
        bed.responder.schedule(0, disk_123456)
        result = holds(guide.ok(port(first[2])))
        assert result["predicate"] == "DiskExists('123456')"
        assert result["state"] == f"present: /dev/{disk_123456.disk.name} (0:0:0:1)"
        # every FC host was asked to scan everything
        assert requests_answered(bed.responder, 2) == [
            ScanRequest(0, None, None, None),
            ScanRequest(1, None, None, None),
        ]

        # 2. Fiber Channel mappings: the guide's WWNs are no WWNs ...
        assert guide.ok(port(fc_example[0])) is None
        refused = guide.run(port(fc_example[1]))
        assert refused["error"]["type"] == "InvalidInput"
        assert refused["error"]["module"] == "tracker.exceptions"
        assert refused["error"]["value_error"] is True
        assert refused["error"]["message"].startswith("invalid initiator_wwn: '01020304060708'")
        # ... so the same example runs with the testbed's, ':'-separated as in the guide
        initiator, target = colons(bed.initiator), colons(bed.target.wwpn)
        assert (initiator, target) == ("21:00:00:1b:32:00:00:00", "50:0a:09:80:00:00:00:02")
        real = port(fc_example[1]).replace('"01020304060708"', repr(initiator))
        real = real.replace('"0a:0b:0c:0d:0e:0f:0g:0h"', repr(target))
        assert real == (
            f"predicate = FiberChannelMappingExists({initiator!r}, {target!r}, lun_number=0)"
        )
        assert guide.ok(real) is None
        bed.responder.schedule(0, fc_lun0)
        result = holds(guide.ok(port(fc_example[2])))
        assert result["predicate"] == (
            "FiberChannelMappingExists('0x2100001b32000000', '0x500a098000000002', 0)"
        )
        assert result["state"] == f"mapped: /dev/{fc_lun0.disk.name} (0:0:2:0)"
        # targeted: the target behind that remote port only
        assert requests_answered(bed.responder, 3)[2] == ScanRequest(0, 0, 2, None)

        # 3. several conditions together ("456" is no serial here: "123456" only
        # contains it, and serials match whole)
        assert guide.ok(port(last[0])) is None
        bed.responder.schedule(1, disk_123)
        result = holds(guide.ok(port(last[1])))
        assert result["predicate"] == "PredicateList([DiskExists('123'), DiskNotExists('456')])"
        assert result["state"] == "all 2 hold"
        assert requests_answered(bed.responder, 5)[3:] == [
            ScanRequest(0, None, None, None),
            ScanRequest(1, None, None, None),
        ]

        # one model per configuration per process: every example used the same
        assert guide.ok("get_storage_model() is get_storage_model()") == "True"
        configured = guide.ok(
            "(lambda m: (m.host_name, str(m.root), m.engine.polling, "
            "m.settings.quiet_period, m.store.display_url))(get_storage_model())"
        )
        assert ast.literal_eval(configured) == (HOST, str(bed.live.root), False, 30.0, bed.url)
        assert guide.end() == 0, "".join(guide.err)
    assert bed.responder.pending == ()
    # what the examples waited for is in the store of OS_DATABASE__CONNECTION, and the
    # default store (in XDG_STATE_HOME) was never made
    assert not (bed.tmp / "state" / "tracker").exists()
    store = Store(bed.url, auto_upgrade="never")
    try:
        for serial, spec in (("123456", disk_123456), ("123", disk_123)):
            units = observed.by_serial(store, serial, HOST)
            assert [d.hctl for d in units.devices] == [str(spec.hctl)]
        assert observed.by_serial(store, "456", HOST).devices == ()
    finally:
        store.dispose()
