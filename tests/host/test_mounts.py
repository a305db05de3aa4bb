"""The mount table reader, per-connection mount points, and the mount/umount wrapper.

The mount tables are files below a temporary root (never the real /proc); the
commands run through the real :class:`SubprocessExecutor` with testfixtures'
``MockPopen`` in place of :class:`subprocess.Popen`, or through the recording
executor; no real mount ever runs.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from testfixtures import LogCapture
from testfixtures.popen import MockPopen, PopenBehaviour

from tracker.exceptions import ConnectorFailed, InvalidInput
from tracker.host.executor import CommandResult, SubprocessExecutor
from tracker.host.mounts import (
    MOUNT_ERRORS,
    UMOUNT_ERRORS,
    MountEntry,
    Mounter,
    mount_point_for,
    mounts_at,
    nfs_mounts,
    read_mountinfo,
)
from tracker.testing.fakes import RecordingExecutor

#: Seconds a read may take before it counts as blocked.
NO_BLOCK = 20.0

ROOT_LINE = b"1 0 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
TABLE = (
    ROOT_LINE
    + b"22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    + b"97 1 0:52 / /srv/tracker/c1 rw,relatime shared:50 master:3 - nfs4 "
    b"server.example:/export rw,vers=4.1,rsize=1048576,addr=192.0.2.20\n"
    + b"98 1 0:53 / /srv/tracker/with\\040space\\011tab\\012nl\\134bs rw - nfs "
    b"[2001:db8::20]:/exp\\040ort rw,vers=3\n"
    + b"99 97 0:54 /sub /srv/tracker/c1/inner ro - tmpfs tmpfs rw,size=1024k\n"
)


def write_table(root: Path, data: bytes) -> Path:
    path = root / "proc" / "self" / "mountinfo"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def in_thread(function: Callable[[], tuple[MountEntry, ...]]) -> tuple[MountEntry, ...]:
    """Run a read in a thread; fail (rather than hang the run) when it blocks."""
    found: list[tuple[MountEntry, ...]] = []
    thread = threading.Thread(target=lambda: found.append(function()), daemon=True)
    thread.start()
    thread.join(NO_BLOCK)
    assert not thread.is_alive(), f"the read blocked for more than {NO_BLOCK} s"
    return found[0]


# --- the mount table ----------------------------------------------------------------------


def test_mountinfo_is_parsed_with_escapes_and_optional_fields(tmp_path: Path) -> None:
    write_table(tmp_path, TABLE)
    entries = read_mountinfo(tmp_path)
    assert [e.mount_id for e in entries] == [1, 22, 97, 98, 99]
    assert entries[2] == MountEntry(
        mount_id=97,
        parent_id=1,
        source="server.example:/export",
        mount_point="/srv/tracker/c1",
        fstype="nfs4",
        options="rw,relatime",
        super_options="rw,vers=4.1,rsize=1048576,addr=192.0.2.20",
    )
    assert entries[3].mount_point == "/srv/tracker/with space\ttab\nnl\\bs"
    assert entries[3].source == "[2001:db8::20]:/exp ort"
    assert entries[4].parent_id == 97 and entries[4].fstype == "tmpfs"
    assert [e.mount_id for e in nfs_mounts(entries)] == [97, 98]
    assert mounts_at(entries, Path("/srv/tracker/c1/")) == (entries[2],)
    assert mounts_at(entries, "/srv/tracker/c1/../c1") == (entries[2],)


def test_a_missing_table_is_empty(tmp_path: Path) -> None:
    assert read_mountinfo(tmp_path) == ()


def test_malformed_lines_are_skipped_with_a_warning(tmp_path: Path) -> None:
    lines = [
        b"garbage",
        b"2 1 0:1 / /a rw shared:1 ext4 /dev/x rw",  # no separator
        b"x 1 0:1 / /b rw - ext4 /dev/x rw",  # id not a number
        b"3 1 zero / /c rw - ext4 /dev/x rw",  # no major:minor
        b"4 1 0:1 / relative rw - ext4 /dev/x rw",  # not an absolute mount point
        b"5 1 0:1 / /d rw - ext4 /dev/x",  # a field short
        b"6 1 0:1 / /e rw - ext4 /dev/x rw extra",  # a field too many
        b"7 1 0:1 / /f rw - ext4 /dev/x rw",
        b"8 1 0:1 / /g rw a:1 b:2 c - ext4 /dev/x rw",
        b"9 1 0:1 / /h rw - - - -",  # odd but well formed: fstype "-"
        b"",
    ]
    write_table(tmp_path, b"\n".join((ROOT_LINE.rstrip(), *lines)))
    with LogCapture("tracker.host.mounts", level=logging.WARNING) as log:
        entries = read_mountinfo(tmp_path)
    assert [e.mount_point for e in entries] == ["/", "/f", "/g", "/h"]
    assert [r.getMessage().split(" skipped")[0] for r in log.records] == [
        "mount table line 2",
        "mount table line 3",
        "mount table line 4",
        "mount table line 5",
        "mount table line 6",
        "mount table: 2 more lines",
    ]


def test_bytes_that_are_not_utf8_are_escaped(tmp_path: Path) -> None:
    write_table(tmp_path, b"5 1 0:1 / /mnt/caf\xe9\\040x rw - nfs4 srv:/\xff\xfe rw\n")
    (entry,) = read_mountinfo(tmp_path)
    assert entry.mount_point == "/mnt/caf\\xe9 x"
    assert entry.source == "srv:/\\xff\\xfe"
    entry.mount_point.encode("utf-8")


def test_an_octal_escape_past_a_byte_is_left_alone(tmp_path: Path) -> None:
    write_table(tmp_path, b"5 1 0:1 / /m\\400\\04 rw - nfs4 s:/e rw\n")
    (entry,) = read_mountinfo(tmp_path)
    assert entry.mount_point == "/m\\400\\04"


def test_a_huge_table_is_read_only_up_to_the_bound(tmp_path: Path) -> None:
    line = b"7 1 0:1 / /mnt/x rw - nfs4 s:/e rw\n"
    write_table(tmp_path, line * 100)
    with LogCapture("tracker.host.mounts", level=logging.WARNING) as log:
        entries = read_mountinfo(tmp_path, limit=len(line) * 10 + 5)
    assert len(entries) == 10  # the complete lines before the bound
    assert any("larger than" in r.getMessage() for r in log.records)


def test_a_sparse_gigabyte_table_is_capped(tmp_path: Path) -> None:
    path = write_table(tmp_path, ROOT_LINE)
    with path.open("r+b") as handle:
        handle.truncate(1024**3)  # sparse: NUL bytes after the first line
    with LogCapture("tracker.host.mounts", level=logging.WARNING) as log:
        entries = in_thread(lambda: read_mountinfo(tmp_path))
    assert [e.mount_point for e in entries] == ["/"]
    assert any("larger than 4194304 bytes" in r.getMessage() for r in log.records)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (os.mkfifo, "a FIFO"),
        (lambda path: path.symlink_to("/dev/zero"), "symbolic link"),
        (lambda path: path.symlink_to(path.parent / "real"), "symbolic link"),
        (lambda path: path.mkdir(), "a directory"),
    ],
    ids=["fifo", "link-to-dev-zero", "link-to-a-file", "directory"],
)
def test_a_table_that_is_not_a_file_never_blocks(
    tmp_path: Path, make: Callable[[Path], None], reason: str
) -> None:
    path = tmp_path / "proc" / "self" / "mountinfo"
    path.parent.mkdir(parents=True)
    (path.parent / "real").write_bytes(ROOT_LINE)
    make(path)
    with LogCapture("tracker.host.mounts", level=logging.WARNING) as log:
        entries = in_thread(lambda: read_mountinfo(tmp_path))
    assert entries == ()
    assert any(reason in r.getMessage() for r in log.records)


# --- mount points ------------------------------------------------------------------------------

BASE = Path("/srv/tracker")


@pytest.mark.parametrize(
    ("connection_id", "name"),
    [
        ("5f1e0c2a-5b4e-4d1b-9c66-4a4d0a3e8f10", "5f1e0c2a-5b4e-4d1b-9c66-4a4d0a3e8f10"),
        (".", "%2E"),
        ("..", "%2E."),
        (".hidden", "%2Ehidden"),
        ("a/../../etc", "a%2F..%2F..%2Fetc"),
        ("/", "%2F"),
        ("with space", "with%20space"),
        ("100%", "100%25"),
        ("%2E", "%252E"),
        ("tab\there", "tab%09here"),
        ("nl\n", "nl%0A"),
        ("café", "caf%C3%A9"),
        ("a~b_c.d", "a~b_c.d"),
    ],
)
def test_mount_points_stay_below_the_base(connection_id: str, name: str) -> None:
    point = mount_point_for(BASE, connection_id)
    assert point == BASE / name
    assert point.parent == BASE and point.name not in (".", "..")
    assert os.path.normpath(point) == str(point)
    point.name.encode("ascii")


def test_mount_points_are_one_to_one() -> None:
    ids = [".", "..", "%2E", "%2E.", "a b", "a%20b", "a/b", "a%2Fb", "é", "%C3%A9", "x", "X"]
    names = {mount_point_for(BASE, connection_id) for connection_id in ids}
    assert len(names) == len(ids)


@pytest.mark.parametrize(
    ("base", "connection_id", "field"),
    [
        (Path("relative"), "c1", "base"),
        (BASE, "", "connection_id"),
        (BASE, "\x00", "connection_id"),
        (BASE, "\udcff", "connection_id"),
        (BASE, "é" * 50, "connection_id"),  # 300 bytes escaped
    ],
)
def test_mount_points_that_cannot_be_named(base: Path, connection_id: str, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        mount_point_for(base, connection_id)
    assert caught.value.field == field


# --- mount ------------------------------------------------------------------------------------


@pytest.fixture
def popen(monkeypatch: pytest.MonkeyPatch) -> Iterator[MockPopen]:
    mock = MockPopen()
    monkeypatch.setattr(subprocess, "Popen", mock)
    yield mock


def commands(popen: MockPopen) -> list[tuple[str, ...]]:
    return [tuple(c.args[0]) for c in popen.all_calls if c[0] == "Popen"]


def result(argv: tuple[str, ...], code: int, stderr: str = "") -> CommandResult:
    return CommandResult(argv=argv, returncode=code, stdout="", stderr=stderr)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A root with a mount table holding only ``/``."""
    write_table(tmp_path, ROOT_LINE)
    return tmp_path


def test_mount_with_options(popen: MockPopen, root: Path) -> None:
    point = root / "base" / "c1"
    popen.set_default()
    Mounter(SubprocessExecutor(), root=root, timeout=60).mount_nfs(
        "server.example:/export", point, [("vers", "4.1"), ("proto", "tcp"), ("hard", "")]
    )
    assert commands(popen) == [
        (
            "mount",
            "-t",
            "nfs",
            "-o",
            "vers=4.1,proto=tcp,hard",
            "server.example:/export",
            str(point),
        )
    ]
    timeouts = [c.kwargs["timeout"] for c in popen.all_calls if c[0] == "Popen().communicate"]
    assert timeouts == [60]
    assert point.is_dir()  # the mount point (and its base) were made
    assert (point.stat().st_mode & 0o777) == 0o755


def test_mount_without_options_has_no_o(popen: MockPopen, root: Path) -> None:
    point = root / "c1"
    popen.set_default()
    Mounter(SubprocessExecutor(), root=root).mount_nfs("[2001:db8::20]:/export", point, ())
    assert commands(popen) == [("mount", "-t", "nfs", "[2001:db8::20]:/export", str(point))]


@pytest.mark.parametrize("status", sorted(MOUNT_ERRORS))
def test_every_mount_exit_status_is_mapped(root: Path, status: int) -> None:
    point = root / "c1"
    argv = ("mount", "-t", "nfs", "srv:/e", str(point))
    executor = RecordingExecutor(
        {argv: result(argv, status, "mount.nfs: access denied by server while mounting srv:/e\n")}
    )
    with pytest.raises(ConnectorFailed) as caught:
        Mounter(executor, root=root).mount_nfs("srv:/e", point, ())
    code, meaning = MOUNT_ERRORS[status]
    error = caught.value
    assert (error.code, error.returncode) == (code, status)
    assert error.message == f"NFS mount of srv:/e on {point} failed: {meaning}"
    assert error.command == f"mount -t nfs srv:/e {point}"
    assert error.stderr == "mount.nfs: access denied by server while mounting srv:/e"


def test_the_mount_tables_codes() -> None:
    assert MOUNT_ERRORS[32][0] == "MOUNT_FAILED"
    assert UMOUNT_ERRORS[32][0] == "UMOUNT_FAILED"
    assert sorted(MOUNT_ERRORS) == sorted(UMOUNT_ERRORS) == [1, 2, 4, 8, 16, 32, 64]


@pytest.mark.parametrize(
    ("status", "code"),
    [(33, "MOUNT_FAILED"), (96, "MOUNT_PARTIAL"), (128, "MOUNT_ERROR"), (-15, "KILLED")],
)
def test_statuses_outside_the_table(root: Path, status: int, code: str) -> None:
    argv = ("mount", "-t", "nfs", "srv:/e", str(root / "c1"))
    executor = RecordingExecutor({argv: result(argv, status)})
    with pytest.raises(ConnectorFailed) as caught:
        Mounter(executor, root=root).mount_nfs("srv:/e", root / "c1", ())
    assert caught.value.code == code


def test_already_mounted_runs_nothing(root: Path) -> None:
    point = root / "c1"
    write_table(root, ROOT_LINE + f"40 1 0:40 / {point} rw - nfs4 srv:/e/ rw\n".encode())
    executor = RecordingExecutor()
    with LogCapture("tracker.host.mounts") as log:
        Mounter(executor, root=root).mount_nfs("SRV:/e", point, ())
    assert executor.calls == []
    assert any("already mounted" in r.getMessage() for r in log.records)


def test_something_else_on_the_mount_point_is_refused(root: Path) -> None:
    point = root / "c1"
    write_table(root, ROOT_LINE + f"40 1 0:40 / {point} rw - nfs4 other:/x rw\n".encode())
    executor = RecordingExecutor()
    with pytest.raises(ConnectorFailed) as caught:
        Mounter(executor, root=root).mount_nfs("srv:/e", point, ())
    assert caught.value.code == "MOUNT_POINT_BUSY" and "other:/x" in caught.value.message
    assert executor.calls == []


@pytest.mark.parametrize("kind", ["symlink", "file"])
def test_a_mount_point_that_is_not_a_directory(root: Path, kind: str) -> None:
    point = root / "c1"
    if kind == "symlink":
        (root / "elsewhere").mkdir()
        point.symlink_to(root / "elsewhere")
    else:
        point.write_text("")
    executor = RecordingExecutor()
    with pytest.raises(ConnectorFailed) as caught:
        Mounter(executor, root=root).mount_nfs("srv:/e", point, ())
    assert caught.value.code == "MOUNT_POINT_INVALID"
    assert executor.calls == []


@pytest.mark.parametrize(
    ("source", "options", "point", "field"),
    [
        ("srv:/e", [("vers", "4.1,exec")], "/m", "option value"),
        ("srv:/e", [("vers", "4=1")], "/m", "option value"),
        ("srv:/e", [("ve rs", "4")], "/m", "option name"),
        ("srv:/e", [("vers", "4\n")], "/m", "option value"),
        ("srv:/e", ["vers=4"], "/m", "options"),
        ("-oremount", [], "/m", "source"),
        ("no-export-path", [], "/m", "source"),
        ("srv:/e x", [], "/m", "source"),
        ("srv:/e", [], "relative", "mount_point"),
        ("srv:/e", [], "/", "mount_point"),
        ("srv:/e", [], "/m\nx", "mount_point"),
    ],
)
def test_malformed_mount_arguments_run_nothing(
    root: Path, source: str, options: list[tuple[str, str]], point: str, field: str
) -> None:
    executor = RecordingExecutor()
    with pytest.raises(InvalidInput) as caught:
        Mounter(executor, root=root).mount_nfs(source, Path(point), options)
    assert caught.value.field == field
    assert executor.calls == []


# --- umount ----------------------------------------------------------------------------------


def mounted_table(root: Path, point: Path, count: int = 1) -> None:
    lines = [f"{40 + n} 1 0:{40 + n} / {point} rw - nfs4 srv:/e rw\n" for n in range(count)]
    write_table(root, ROOT_LINE + "".join(lines).encode())


def test_umount(popen: MockPopen, root: Path) -> None:
    point = root / "c1"
    point.mkdir()
    mounted_table(root, point)

    def unmounts(command: str, stdin: object) -> PopenBehaviour:
        write_table(root, ROOT_LINE)
        return PopenBehaviour()

    popen.set_command(("umount", str(point)), behaviour=unmounts)
    Mounter(SubprocessExecutor(), root=root).umount(point)
    assert commands(popen) == [("umount", str(point))]
    assert not point.exists()  # the empty directory went too


def test_lazy_forced_umount_of_stacked_mounts(root: Path) -> None:
    point = root / "c1"
    mounted_table(root, point, count=2)
    argv = ("umount", "-f", "-l", str(point))
    left = [2]

    def unmount(_argv: tuple[str, ...]) -> CommandResult:
        left[0] -= 1
        mounted_table(root, point, count=left[0])
        return result(argv, 0)

    executor = RecordingExecutor({argv: unmount})
    Mounter(executor, root=root).umount(point, lazy=True, force=True)
    assert executor.calls == [argv, argv]


def test_umount_of_what_is_not_mounted_runs_nothing(root: Path) -> None:
    point = root / "c1"
    point.mkdir()
    executor = RecordingExecutor()
    with LogCapture("tracker.host.mounts") as log:
        Mounter(executor, root=root).umount(point)
    assert executor.calls == []
    assert any("not mounted" in r.getMessage() for r in log.records)
    assert not point.exists()


@pytest.mark.parametrize("status", sorted(UMOUNT_ERRORS))
def test_every_umount_exit_status_is_mapped(root: Path, status: int) -> None:
    point = root / "c1"
    point.mkdir()
    mounted_table(root, point)
    argv = ("umount", str(point))
    executor = RecordingExecutor({argv: result(argv, status, f"umount: {point}: target is busy.")})
    with pytest.raises(ConnectorFailed) as caught:
        Mounter(executor, root=root).umount(point)
    code, meaning = UMOUNT_ERRORS[status]
    assert (caught.value.code, caught.value.returncode) == (code, status)
    assert caught.value.message == f"unmount of {point} failed: {meaning}"
    assert caught.value.stderr == f"umount: {point}: target is busy."
    assert point.is_dir()  # still mounted: left alone


def test_a_failed_umount_of_a_mount_that_went_away_is_success(root: Path) -> None:
    point = root / "c1"
    mounted_table(root, point)
    argv = ("umount", str(point))

    def raced(_argv: tuple[str, ...]) -> CommandResult:
        write_table(root, ROOT_LINE)  # someone else unmounted it first
        return result(argv, 32, f"umount: {point}: not mounted.")

    executor = RecordingExecutor({argv: raced})
    Mounter(executor, root=root).umount(point)
    assert executor.calls == [argv]


def test_an_umount_that_changes_nothing_is_a_failure(root: Path) -> None:
    point = root / "c1"
    mounted_table(root, point)
    executor = RecordingExecutor()  # exit 0, but the table keeps the mount
    with pytest.raises(ConnectorFailed) as caught:
        Mounter(executor, root=root).umount(point)
    assert caught.value.code == "UMOUNT_FAILED" and caught.value.returncode == 0
    assert len(executor.calls) == 1


# --- timeouts, missing programs -----------------------------------------------------------------


def _raise(error: BaseException) -> PopenBehaviour:
    raise error


def test_a_mount_timeout_is_mapped(popen: MockPopen, root: Path) -> None:
    popen.set_default(
        behaviour=lambda command, stdin: _raise(subprocess.TimeoutExpired(command, 3))
    )
    with pytest.raises(ConnectorFailed) as caught:
        Mounter(SubprocessExecutor(), root=root, timeout=3).mount_nfs("srv:/e", root / "c", ())
    error = caught.value
    assert (error.code, error.returncode) == ("TIMEOUT", None)
    assert error.message == f"NFS mount of srv:/e on {root / 'c'}: mount did not finish within 3 s"
    assert error.__context__ is None


def test_an_umount_timeout_is_mapped(popen: MockPopen, root: Path) -> None:
    point = root / "c1"
    mounted_table(root, point)
    popen.set_default(
        behaviour=lambda command, stdin: _raise(subprocess.TimeoutExpired(command, 3))
    )
    with pytest.raises(ConnectorFailed) as caught:
        Mounter(SubprocessExecutor(), root=root, timeout=3).umount(point)
    assert caught.value.code == "TIMEOUT"


@pytest.mark.parametrize("program", ["mount", "umount"])
def test_missing_programs_name_the_packages(popen: MockPopen, root: Path, program: str) -> None:
    point = root / "c1"
    if program == "umount":
        mounted_table(root, point)
    popen.set_default(
        behaviour=lambda command, stdin: _raise(FileNotFoundError(2, "No such file", program))
    )
    mounter = Mounter(SubprocessExecutor(), root=root)
    with pytest.raises(ConnectorFailed) as caught:
        if program == "mount":
            mounter.mount_nfs("srv:/e", point, ())
        else:
            mounter.umount(point)
    assert caught.value.code == "NOT_INSTALLED"
    assert f"{program} is not installed" in caught.value.message
    assert "nfs-common" in caught.value.message


def test_hostile_mount_stderr_is_escaped_and_cut(root: Path) -> None:
    argv = ("mount", "-t", "nfs", "srv:/e", str(root / "c1"))
    stderr = "x" * 9000 + "\x1b[2J\x00\udcff end\n"
    executor = RecordingExecutor({argv: result(argv, 32, stderr)})
    with pytest.raises(ConnectorFailed) as caught:
        Mounter(executor, root=root).mount_nfs("srv:/e", root / "c1", ())
    shown = caught.value.stderr
    assert len(shown) < 2020 and shown.endswith("\\x1b[2J\\x00\\xff end")
    shown.encode("utf-8")
