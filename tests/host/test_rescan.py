"""The rescanner: scan requests to a testbed's ``scan`` files, iSCSI rescans, FIFOs.

No test writes to the real ``/sys`` or runs ``iscsiadm``: the root is a
testbed, the executor records command lines.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker.exceptions import (
    CommandFailed,
    CommandNotFound,
    InvalidInput,
    RescanFailed,
    ScanFileMissing,
)
from tracker.host.executor import CommandResult, SubprocessExecutor
from tracker.host.rescan import (
    ISCSI_RESCAN,
    ISCSIADM_NO_SESSIONS,
    WRITE_ATTEMPTS,
    WRITE_RETRY_WAIT,
    Rescanner,
    RescanResult,
)
from tracker.testing.fakes import FakeClock, RecordingExecutor
from tracker.testing.testbed import FcHbaSpec, HostSpec, IscsiHostSpec, IscsiSessionSpec, Testbed
from tracker.testing.topologies import mixed_fc_iscsi


def _scan_file(testbed: Testbed, host: int) -> Path:
    return testbed.sys_dir / "class" / "scsi_host" / f"host{host}" / "scan"


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every regular file below root (without following links) and its bytes."""
    files = {}
    for directory, _dirs, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                files[os.fspath(path.relative_to(root))] = path.read_bytes()
    return files


@pytest.fixture
def fc_and_plain(testbed: Testbed) -> Testbed:
    testbed.add_fc_hba(FcHbaSpec(host=0, wwpn=0x2100001B32000000, wwnn=0x2000001B32000000))
    testbed.add_host(HostSpec(host=3))
    testbed.add_fc_hba(FcHbaSpec(host=12, wwpn=0x2100001B32000001, wwnn=0x2000001B32000001))
    return testbed


def test_scan_all_writes_wildcards_to_every_host_and_nothing_else(testbed: Testbed) -> None:
    mixed_fc_iscsi(testbed)
    # issue_lip exists on a real FC host: a rescan must never write it.
    for host in (0, 1):
        fc_host = testbed.sys_dir / "class" / "fc_host" / f"host{host}"
        (fc_host / "issue_lip").write_bytes(b"")
    before = _snapshot(testbed.root)
    executor = RecordingExecutor()

    result = Rescanner(testbed.root, executor, FakeClock()).scan_all()

    assert result == RescanResult(hosts=(0, 1, 2, 3), iscsi=True)
    after = _snapshot(testbed.root)
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    scan_files = {
        os.fspath(_scan_file(testbed, host).resolve().relative_to(testbed.root.resolve()))
        for host in (0, 1, 2, 3)
    }
    assert changed == scan_files  # no file deleted, issue_lip untouched
    assert all(after[path] == b"- - -" for path in scan_files)
    assert executor.calls == [ISCSI_RESCAN]


def test_no_iscsiadm_without_iscsi_sessions(fc_and_plain: Testbed) -> None:
    executor = RecordingExecutor(missing=("iscsiadm",))
    result = Rescanner(fc_and_plain.root, executor, FakeClock()).scan_all()
    assert result == RescanResult(hosts=(0, 3, 12), iscsi=False)
    assert executor.calls == []


def test_a_host_without_scsi_hosts_scans_nothing(testbed: Testbed) -> None:
    assert Rescanner(testbed.root, RecordingExecutor()).scan_all() == RescanResult((), False)


@pytest.fixture
def iscsi(testbed: Testbed) -> Testbed:
    testbed.add_iscsi_host(IscsiHostSpec(host=5))
    testbed.add_iscsi_session(
        IscsiSessionSpec(
            host=5, session=1, target_iqn="iqn.2010-10.org:t", portal_address="1.2.3.4"
        )
    )
    return testbed


def test_iscsiadm_finding_no_session_is_not_an_error(iscsi: Testbed) -> None:
    none_found = CommandResult(ISCSI_RESCAN, ISCSIADM_NO_SESSIONS, "", "No session found.")
    executor = RecordingExecutor({ISCSI_RESCAN: none_found})
    assert Rescanner(iscsi.root, executor).scan_all() == RescanResult((5,), False)


def test_a_failing_iscsiadm_is_a_typed_error(iscsi: Testbed) -> None:
    failed = CommandResult(ISCSI_RESCAN, 8, "", "iscsiadm: connection timed out")
    with pytest.raises(CommandFailed, match="timed out"):
        Rescanner(iscsi.root, RecordingExecutor({ISCSI_RESCAN: failed})).scan_all()
    with pytest.raises(CommandNotFound):
        Rescanner(iscsi.root, RecordingExecutor(missing=("iscsiadm",))).scan_all()


@pytest.mark.parametrize(
    ("address", "written"),
    [
        ((0, 1, 2), b"0 1 2"),
        ((None, None, 7), b"- - 7"),
        ((0, None, None), b"0 - -"),
        ((None, None, None), b"- - -"),
        ((0, 0, 2**31 - 1), b"0 0 2147483647"),
    ],
)
def test_targeted_scan_writes_one_address(
    fc_and_plain: Testbed, address: tuple[int | None, ...], written: bytes
) -> None:
    executor = RecordingExecutor()
    result = Rescanner(fc_and_plain.root, executor).scan(12, *address)
    assert result == RescanResult((12,), False)
    assert _scan_file(fc_and_plain, 12).read_bytes() == written
    assert _scan_file(fc_and_plain, 0).read_bytes() == b""
    assert executor.calls == []


@pytest.mark.parametrize(
    ("args", "field"),
    [((-1,), "host"), ((0, -1), "channel"), ((0, 0, 2**31), "target"), ((0, 0, 0, True), "lun")],
)
def test_targeted_scan_refuses_bad_numbers(
    fc_and_plain: Testbed, args: tuple[int, ...], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        Rescanner(fc_and_plain.root).scan(*args)
    assert raised.value.field == field
    assert _scan_file(fc_and_plain, 0).read_bytes() == b""


def test_scanning_a_missing_host_is_a_typed_error(fc_and_plain: Testbed) -> None:
    with pytest.raises(ScanFileMissing) as raised:
        Rescanner(fc_and_plain.root).scan(4)
    assert raised.value.host == 4


def _fifo(testbed: Testbed, host: int) -> Path:
    path = _scan_file(testbed, host)
    path.unlink()
    os.mkfifo(path)
    return path


def test_a_fifo_without_reader_fails_at_once_and_other_hosts_are_still_scanned(
    fc_and_plain: Testbed,
) -> None:
    _fifo(fc_and_plain, 3)
    with pytest.raises(RescanFailed) as raised:
        Rescanner(fc_and_plain.root, RecordingExecutor()).scan_all()
    (failure,) = raised.value.failures
    assert failure.startswith("host3: ") and "ENXIO" in failure
    assert _scan_file(fc_and_plain, 0).read_bytes() == b"- - -"
    assert _scan_file(fc_and_plain, 12).read_bytes() == b"- - -"


@pytest.fixture
def reader(fc_and_plain: Testbed) -> Iterator[int]:
    fd = os.open(_fifo(fc_and_plain, 3), os.O_RDONLY | os.O_NONBLOCK)
    yield fd
    os.close(fd)


def test_a_fifo_with_a_reader_receives_the_request(fc_and_plain: Testbed, reader: int) -> None:
    Rescanner(fc_and_plain.root).scan(3, 0, 2, 5)
    assert os.read(reader, 100) == b"0 2 5"


def test_a_full_fifo_is_retried_through_the_clock_then_reported(
    fc_and_plain: Testbed, reader: int
) -> None:
    writer = os.open(_scan_file(fc_and_plain, 3), os.O_WRONLY | os.O_NONBLOCK)
    try:
        while True:
            try:
                os.write(writer, b"x" * 4096)
            except BlockingIOError:
                break
        clock = FakeClock()
        with pytest.raises(RescanFailed, match="EAGAIN"):
            Rescanner(fc_and_plain.root, clock=clock).scan(3)
        assert clock.sleeps == [WRITE_RETRY_WAIT] * (WRITE_ATTEMPTS - 1)
    finally:
        os.close(writer)


def _drain(fd: int) -> bytes:
    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            data += chunk
    return data


def test_a_fifo_drained_between_tries_gets_the_request(fc_and_plain: Testbed, reader: int) -> None:
    writer = os.open(_scan_file(fc_and_plain, 3), os.O_WRONLY | os.O_NONBLOCK)
    try:
        with contextlib.suppress(BlockingIOError):
            while True:
                os.write(writer, b"x" * 4096)
    finally:
        os.close(writer)

    class DrainingClock(FakeClock):
        def sleep(self, seconds: float) -> None:
            super().sleep(seconds)
            _drain(reader)  # the responder reads while the rescanner waits

    clock = DrainingClock()
    Rescanner(fc_and_plain.root, clock=clock).scan(3)
    assert clock.sleeps == [WRITE_RETRY_WAIT]
    assert _drain(reader) == b"- - -"


def test_fake_clock_moves_only_forward() -> None:
    clock = FakeClock(start=5.0)
    clock.sleep(2.5)
    clock.sleep(-1)
    clock.advance(0.5)
    assert clock.monotonic() == 8.0
    assert clock.sleeps == [2.5, -1]
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_a_missing_iscsiadm_names_the_package_that_provides_it(tmp_path: Path) -> None:
    """The real executor, with a PATH where nothing is installed: no iscsiadm runs."""
    with pytest.raises(CommandNotFound) as caught:
        SubprocessExecutor().run(["iscsiadm", "-m", "session"], env={"PATH": str(tmp_path)})
    assert caught.value.package == "open-iscsi"
