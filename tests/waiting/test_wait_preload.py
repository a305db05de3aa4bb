"""``tracker wait`` in a child process whose events come from a real ``pyudev.Monitor``.

The child runs ``python -m tracker wait ...`` under umockdev's preload
(loaded at process start), so ``PyudevEventSource`` opens a real libudev
netlink monitor, which the preload turns into the socket ``<testbed>/event<N>``.
The parent holds the :class:`~tracker.testing.live.LiveTestbed` (built with
``deliver=True``) and a :class:`~tracker.testing.scanfifo.ScanResponder`: when
the child writes its rescan to ``<testbed>/sys/class/scsi_host/hostN/scan``
(a FIFO), the responder plugs the scheduled LUNs and their kernel-order
uevents are sent to the child's monitor socket. Nothing else tells the child
about them: no events file, no polling (``"mode": "events"`` is asserted).

What the child reports is checked against the testbed itself -- the device
node and H:C:T:L of the plugged LUN, the events its plug sent through the
monitor's subsystem filter -- and against ``lsscsi -t -k`` reading the same
``sys/`` tree, so a wait that returned before the device existed (or for
another device) fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from tracker.db import observed
from tracker.db.store import Store
from tracker.host.events import EVENT_SUBSYSTEMS
from tracker.host.executor import SubprocessExecutor
from tracker.testing.live import LiveTestbed
from tracker.testing.scanfifo import ScanRequest, ScanResponder
from tracker.testing.specs import Hctl, LunSpec, MultipathSpec
from tracker.testing.topologies import _Allocator, _lun, fc_multipath, synthetic_identity
from tracker.testing.uevents import Uevent
from tracker.testing.umockdev import (
    LsscsiRow,
    preload_environment,
    require_lsscsi,
    require_no_udevd,
    run_lsscsi,
)

pytestmark = pytest.mark.slow

HOST = "h"
#: How much a wait may overrun its timeout (the issue's bound), by the child's clock.
SLACK = 0.1
#: The longest a child may run: it normally exits in about a second.
CHILD_LIMIT = 30.0
#: Host 0's FC port (WWPN) and its second target port, as the testbed writes them.
INITIATOR0 = 0x2100001B32000000
TARGET01 = 0x500A098000000001


def serial(index: int) -> str:
    """The unit serial of the ``index``-th synthetic LUN (page 0x80)."""
    return f"80AB{index:08X}"


def clean_environment(home: Path) -> dict[str, str]:
    """This process's environment without tracker options, with a private home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["HOME"] = str(home)
    env["XDG_STATE_HOME"] = str(home / "state")
    return env


class Child:
    """A ``tracker wait`` process; killed and reaped when its ``with`` block ends."""

    def __init__(self, argv: Sequence[str], env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            list(argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out = ""
        self.err = ""
        self.took: float | None = None

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        """Kill the child if it still runs, and reap it. Idempotent."""
        if self.took is not None:
            return
        if self.running:
            self.process.kill()
        out, err = self.process.communicate(timeout=CHILD_LIMIT)
        self.out, self.err = self.out + out, self.err + err
        self.took = time.monotonic() - self.started

    def finish(self, timeout: float = CHILD_LIMIT) -> Child:
        """Wait for the child to exit on its own (killed and failed after ``timeout``)."""
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.close()
            raise AssertionError(f"the child still ran after {timeout} s: {self.err}") from None
        self.took = time.monotonic() - self.started
        self.out, self.err = out, err
        return self

    @property
    def code(self) -> int:
        assert self.took is not None, "the child has not finished"
        return self.process.returncode

    def result(self) -> dict[str, Any]:
        """The JSON document ``--json`` prints on standard output once the condition holds."""
        assert self.code == 0, (self.code, self.out, self.err)
        lines = self.out.splitlines()
        assert len(lines) == 1, self.out
        document: dict[str, Any] = json.loads(lines[0])
        return document

    def error(self) -> dict[str, Any]:
        """The JSON error document ``--json`` prints on standard error."""
        lines = [line for line in self.err.splitlines() if line.startswith("{")]
        assert len(lines) == 1, self.err
        document: dict[str, Any] = json.loads(lines[0])["error"]
        return document


def wait_until(
    condition: Callable[[], bool], what: str, child: Child, timeout: float = 15.0
) -> None:
    """Poll ``condition`` until it holds; fail when the child exits or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if not child.running:
            child.close()
            raise AssertionError(f"the child exited ({child.code}) before {what}: {child.err}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.01)


class Bed:
    """A live FC testbed (fc_multipath: 2 HBAs x 2 target ports, LUN 0 on 4 paths)
    that sends its events to the monitors, and the responder answering its rescans."""

    def __init__(self, root: Path, home: Path, library: Path) -> None:
        self.live = LiveTestbed(root, deliver=True)
        self.topology = fc_multipath(self.live, luns=1)
        self.allocator = _Allocator(self.live)
        self.home = home
        self.library = library
        self.url = f"sqlite:///{home / 't.sqlite'}"
        self.executor = SubprocessExecutor()
        #: the monitors each plugged LUN's events were sent to, one count per plug
        self.reached: list[int] = []
        self.responder = ScanResponder(self.live, delay=0.03, listener=self._plugged)

    def _plugged(self, events: Sequence[Uevent]) -> None:
        self.reached.append(len(self.live.sender.sockets()))

    def lun(self, hctl: Hctl, index: int) -> LunSpec:
        """A LUN with the ``index``-th synthetic identity and an sd name not used yet."""
        identity = synthetic_identity(index)
        return _lun(hctl, identity, self.allocator.disk(identity))

    def wait(self, *args: str) -> Child:
        """Start ``tracker wait ARGS --json`` under the preload, on this testbed."""
        require_no_udevd()
        argv = [
            sys.executable, "-m", "tracker", "--database-url", self.url,
            "wait", *args, "--root", str(self.live.root), "--host-name", HOST, "--json",
        ]  # fmt: skip
        env = preload_environment(self.live.root, self.library, clean_environment(self.home))
        return Child(argv, env)

    def lsscsi(self) -> dict[Hctl, LsscsiRow]:
        """``lsscsi -t -k`` on the testbed's ``sys/``: transport ids and kernel device names."""
        return {row.hctl: row for row in run_lsscsi(self.live.sys_dir, ["-t", "-k"], self.executor)}

    def filtered(self, events: Sequence[Uevent]) -> list[Uevent]:
        """The events a monitor filtered on the storage subsystems receives."""
        return [e for e in events if e.subsystem in EVENT_SUBSYSTEMS]


@pytest.fixture
def bed(bed_dir: Path, tmp_path: Path, preload_library: Path) -> Iterator[Bed]:
    require_lsscsi()
    made = Bed(bed_dir, tmp_path, preload_library)
    with made.responder:
        yield made


def port_name(bed: Bed, kind: str, name: str) -> str:
    return (bed.live.sys_dir / "class" / kind / name / "port_name").read_text().strip()


# --- devices appear ------------------------------------------------------------------


def test_a_single_path_disk_appears_through_the_monitor(bed: Bed) -> None:
    lun = bed.lun(Hctl(0, 0, 1, 5), 77)
    assert lun.disk is not None
    assert lun.hctl not in bed.lsscsi()
    bed.responder.schedule(0, lun)
    with bed.wait("disk-exists", serial(77), "--timeout", "10") as child:
        document = child.finish().result()
    assert document["holds"] is True
    assert document["predicate"] == f"DiskExists({serial(77)!r})"
    assert document["state"] == f"present: /dev/{lun.disk.name} (0:0:1:5)"
    assert document["mode"] == "events"
    assert document["rescans"] == 1
    assert bed.responder.wait_for_requests(2, timeout=10)  # host 1's may come last
    # the LUN was plugged in answer to the child's rescan of every FC host, and its
    # events went to exactly one monitor: the child's. Nothing else could tell the
    # child of a new device (no polling, and a re-read only refreshes devices it
    # holds). Not every event sent need be applied by then: a plug writes the whole
    # tree before its events go out, so the first event's re-read may already see
    # the disk complete; and "events" also counts re-reads. Hence only "> 0".
    assert bed.responder.requests == [
        ScanRequest(0, None, None, None),
        ScanRequest(1, None, None, None),
    ]
    assert bed.responder.pending == ()
    assert bed.reached == [1]
    assert document["events"] > 0
    # lsscsi, reading the same sys/ tree, sees the LUN the wait reported
    row = bed.lsscsi()[lun.hctl]
    assert (row.kind, row.device) == ("disk", f"/dev/{lun.disk.name}")
    assert row.detail == f"fc:0x{TARGET01:016x},0x020001"


def test_a_multipath_lun_appears_on_four_paths(bed: Bed) -> None:
    identity = synthetic_identity(40)
    hctls = [Hctl(host, 0, target, 3) for host in (0, 1) for target in (0, 1)]
    paths = [bed.lun(hctl, 40) for hctl in hctls]
    index = bed.allocator.dm()
    for spec in paths:
        assert spec.disk is not None
        # whichever path the responder plugs first creates the map, the others join it
        mpath = MultipathSpec(index, "mpathz", f"mpath-{identity.id_serial}", (spec.disk.name,))
        bed.responder.schedule(spec.hctl.host, spec, multipath=mpath)
    with bed.wait("paths-at-least", serial(40), "4", "--timeout", "10") as child:
        document = child.finish().result()
    assert document["holds"] is True
    assert document["predicate"] == f"MultipathPathsAtLeast({serial(40)!r}, 4)"
    assert document["state"] == "mpathz: 4 of 4 paths active"
    assert document["mode"] == "events"
    assert document["rescans"] == 1
    assert bed.responder.pending == ()
    assert bed.reached == [1, 1, 1, 1]
    assert document["events"] > 0
    # the map the testbed holds is the one reported: four slaves, the disks plugged
    slaves = bed.live.sys_dir / "devices" / "virtual" / "block" / f"dm-{index}" / "slaves"
    disks = sorted(spec.disk.name for spec in paths if spec.disk is not None)
    assert sorted(p.name for p in slaves.iterdir()) == disks
    rows = bed.lsscsi()
    assert sorted(rows[hctl].device for hctl in hctls) == [f"/dev/{name}" for name in disks]


def test_an_fc_mapping_appears_behind_ports_spelled_otherwise(bed: Bed) -> None:
    lun = bed.lun(Hctl(0, 0, 1, 9), 90)
    decoy = bed.lun(Hctl(1, 0, 1, 9), 91)  # same LUN number, another initiator port
    assert lun.disk is not None
    bed.responder.schedule(0, lun)
    bed.responder.schedule(1, decoy)
    initiator, target = "21:00:00:1B:32:00:00:00", "50-0a-09-80-00-00-00-01"
    # the testbed spells them 0x + 16 lowercase digits; the command takes any spelling
    assert port_name(bed, "fc_host", "host0") == f"0x{INITIATOR0:016x}" != initiator
    assert port_name(bed, "fc_remote_ports", "rport-0:0-1") == f"0x{TARGET01:016x}" != target
    with bed.wait("fc-mapping-exists", initiator, target, "9", "--timeout", "10") as child:
        document = child.finish().result()
    assert document["holds"] is True
    assert document["predicate"] == (
        f"FiberChannelMappingExists('0x{INITIATOR0:016x}', '0x{TARGET01:016x}', 9)"
    )
    assert document["state"] == f"mapped: /dev/{lun.disk.name} (0:0:1:9)"
    assert document["mode"] == "events"
    assert bed.reached == [1]
    assert document["events"] > 0
    # targeted: only the target behind that remote port of that HBA was scanned,
    # so the LUN of the same number behind host 1 never came
    assert bed.responder.requests == [ScanRequest(0, 0, 1, None)]
    assert bed.responder.pending == (decoy,)
    rows = bed.lsscsi()
    assert rows[lun.hctl].device == f"/dev/{lun.disk.name}"
    assert rows[lun.hctl].detail.startswith(f"fc:0x{TARGET01:016x},")
    assert decoy.hctl not in rows


# --- devices go -----------------------------------------------------------------------


def test_a_multipath_disk_is_gone_once_its_last_path_is_unplugged(bed: Bed) -> None:
    paths = [lun.hctl for lun in bed.topology.luns]
    assert len(paths) == 4
    Store(bed.url, auto_upgrade="always").dispose()  # the child's store, readable from here
    store = Store(bed.url, auto_upgrade="never")
    try:

        def devices() -> int:
            return len(observed.by_serial(store, serial(0), HOST).devices)

        assert bed.live.sender.sockets() == ()
        with bed.wait("disk-not-exists", serial(0), "--timeout", "20") as child:
            # the child subscribed, then scanned and reconciled the 4 paths: it waits
            wait_until(lambda: len(bed.live.sender.sockets()) == 1, "monitor socket", child)
            wait_until(lambda: devices() == 4, "first reconcile of the host", child)
            for hctl in paths[:3]:
                assert bed.filtered(bed.live.unplug_lun(hctl))
            # the child applied the three removals (the store says so) and goes on waiting
            wait_until(lambda: devices() == 1, "removal of three paths", child)
            time.sleep(0.2)
            assert child.running, child.err
            bed.live.unplug_lun(paths[3])
            document = child.finish().result()
    finally:
        store.dispose()
    assert document["holds"] is True
    assert document["state"] == f"gone: no device with serial {serial(0)!r}"
    assert document["mode"] == "events"
    assert document["events"] > 0
    # a rescan never removes a device: none was written
    assert document["rescans"] == 0
    assert bed.responder.requests == []
    assert not set(paths) & set(bed.lsscsi())


# --- deadlines ------------------------------------------------------------------------


def test_a_timeout_exits_124_within_the_deadline(bed: Bed) -> None:
    # the rescan does plug a LUN (events arrive), just not the one waited for
    bed.responder.schedule(0, bed.lun(Hctl(0, 0, 0, 8), 78))
    with bed.wait("disk-exists", "NOSUCH", "--timeout", "0.5") as child:
        wait_until(lambda: len(bed.responder.requests) == 2, "rescan request", child)
        rescanned = time.monotonic()
        child.finish(timeout=10)
        exited = time.monotonic()
    assert child.code == 124, (child.out, child.err)
    assert child.out == ""
    error = child.error()
    assert error["type"] == "WaitTimeout"
    assert error["timeout"] == 0.5
    # the child's own measure of the deadline, from the call to the raise
    assert 0.5 <= error["elapsed"] <= 0.5 + SLACK
    assert error["last_state"] == f"no disk with serial 'NOSUCH' on {HOST}"
    assert error["rescans"] == 1
    # the condition never saw a device, so nothing was re-read: only monitor events count
    assert 0 < error["events"] <= len(bed.filtered(bed.responder.events))
    assert error["message"].startswith("timed out after 0.5 s (timeout 0.5 s) waiting for ")
    # and the process itself ends promptly: no thread (engine, rescans) holds it up
    assert exited - rescanned < 0.5 + 1.0
