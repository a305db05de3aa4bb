"""The fake mount/umount behaves like util-linux's with mount.nfs, as tracker relies on.

:class:`~tracker.testing.mounts.FakeMount` is driven through the real wrapper,
:class:`~tracker.host.mounts.Mounter`, and its mount table is read back with
:func:`~tracker.host.mounts.read_mountinfo`, as tracker reads the real one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tracker.exceptions import CommandNotFound, ConnectorFailed, TestbedError
from tracker.host.mounts import (
    MOUNT_ERRORS,
    NFS_TYPES,
    UMOUNT_ERRORS,
    MountEntry,
    Mounter,
    nfs_mounts,
    read_mountinfo,
)
from tracker.testing.mounts import FakeMount

EXPORT = "nfs.example:/export/volumes"
V6_EXPORT = "[2001:db8::20]:/exp"
ROOT = MountEntry(1, 0, "/dev/vda1", "/", "ext4", "rw,relatime", "rw")
#: proc(5): id, parent, major:minor, root, mount point, options, optional fields, -, type,
#: source, super options.
MOUNTINFO_LINE = re.compile(r"\d+ \d+ \d+:\d+ / (\S+) (\S+)(?: \S+:\S+)* - (\S+) (\S+) (\S+)")


@pytest.fixture
def fake(tmp_path: Path) -> FakeMount:
    return FakeMount(tmp_path, exports={EXPORT, V6_EXPORT})


@pytest.fixture
def mounter(fake: FakeMount, tmp_path: Path) -> Mounter:
    return Mounter(fake, root=tmp_path, timeout=5)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return tmp_path / "mnt"


def table(fake: FakeMount) -> tuple[MountEntry, ...]:
    return read_mountinfo(fake.root)


def test_the_table_starts_with_the_root_file_system(fake: FakeMount, tmp_path: Path) -> None:
    assert fake.mountinfo == tmp_path / "proc" / "self" / "mountinfo"
    assert table(fake) == (ROOT,) == fake.entries
    assert nfs_mounts(table(fake)) == ()


@pytest.mark.parametrize(
    ("options", "fstype", "super_options"),
    [
        ([("vers", "4.1"), ("proto", "tcp"), ("hard", "")], "nfs4", "rw,vers=4.1,proto=tcp,hard"),
        ([("vers", "3"), ("timeo", "600")], "nfs", "rw,vers=3,timeo=600"),
        ([("nfsvers", "3")], "nfs", "rw,vers=3"),
        ([], "nfs4", "rw,vers=4.2"),  # what mount.nfs negotiates by default
    ],
)
def test_mount_of_an_offered_export_writes_a_mountinfo_line(
    fake: FakeMount,
    mounter: Mounter,
    base: Path,
    options: list[tuple[str, str]],
    fstype: str,
    super_options: str,
) -> None:
    point = base / "c1"
    mounter.mount_nfs(EXPORT, point, options)
    joined = ",".join(f"{name}={value}" if value else name for name, value in options)
    assert fake.calls == [
        ("mount", "-t", "nfs", *(("-o", joined) if options else ()), EXPORT, str(point))
    ]
    assert point.is_dir() and fake.mounts == 1 and fake.mounted(point)

    root, entry = table(fake)
    assert root == ROOT
    assert (entry.source, entry.mount_point, entry.fstype) == (EXPORT, str(point), fstype)
    assert entry.fstype in NFS_TYPES and entry.parent_id == ROOT.mount_id
    assert (entry.options, entry.super_options) == ("rw,relatime", super_options)
    assert nfs_mounts(table(fake)) == (entry,) == mounter.mounted(point)
    assert entry == fake.entries[-1]
    # the file is in the kernel's format, line for line
    lines = fake.mountinfo.read_text().splitlines()
    assert len(lines) == 2 and all(MOUNTINFO_LINE.fullmatch(line) for line in lines)


def test_the_same_export_on_the_same_point_again(
    fake: FakeMount, mounter: Mounter, base: Path
) -> None:
    point = base / "c1"
    mounter.mount_nfs(EXPORT, point, [("vers", "4.1")])
    mounter.mount_nfs(EXPORT + "/", point, [("vers", "4.1")])  # the table says it is there
    assert len(fake.calls) == 1 and fake.mounts == 1
    # and mount itself refuses to mount it twice, as mount.nfs does
    again = fake.run(("mount", "-t", "nfs", EXPORT, str(point)))
    assert (again.returncode, again.stderr) == (
        32,
        f"mount: {point}: {EXPORT} already mounted on {point}.\n",
    )
    assert len(nfs_mounts(table(fake))) == 1


def test_server_names_are_not_case_sensitive(fake: FakeMount, mounter: Mounter, base: Path) -> None:
    """A host name resolves whatever its case: the server sees the same export."""
    point = base / "c1"
    mounter.mount_nfs("NFS.Example:/export//volumes/", point)
    (entry,) = nfs_mounts(table(fake))
    assert entry.source == "NFS.Example:/export//volumes/"  # shown as given, as the kernel does
    mounter.mount_nfs("[2001:DB8:0::20]:/exp", base / "c2")  # the same address
    assert len(nfs_mounts(table(fake))) == 2


def test_an_export_the_server_does_not_offer_is_refused_with_32(
    fake: FakeMount, mounter: Mounter, base: Path
) -> None:
    other = "nfs.example:/export/other"
    with pytest.raises(ConnectorFailed) as caught:
        mounter.mount_nfs(other, base / "c1", [("vers", "4.1")])
    error = caught.value
    assert (error.code, error.returncode) == ("MOUNT_FAILED", 32)
    assert MOUNT_ERRORS[32][0] == error.code
    assert error.stderr == f"mount.nfs: access denied by server while mounting {other}"
    assert error.command == f"mount -t nfs -o vers=4.1 {other} {base / 'c1'}"
    assert table(fake) == (ROOT,) and fake.mounts == 0


def test_what_mount_refuses_before_asking_the_server(fake: FakeMount, tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    result = fake.run(("mount", "-t", "nfs", EXPORT, str(missing)))
    assert (result.returncode, result.stderr) == (
        32,
        f"mount: {missing}: mount point does not exist.\n",
    )
    result = fake.run(("mount", "-t", "ext4", EXPORT, str(tmp_path)))
    assert result.returncode == 32 and "unknown filesystem type 'ext4'" in result.stderr
    for argv in (("mount", "-t"), ("mount", "-x", EXPORT, str(tmp_path)), ("mount", EXPORT)):
        assert fake.run(argv).returncode == 1
    assert fake.run(("umount", "-R", str(tmp_path))).returncode == 1
    assert table(fake) == (ROOT,) and len(fake.calls) == 6


def test_umount_removes_the_entry_and_the_wrapper_the_directory(
    fake: FakeMount, mounter: Mounter, base: Path
) -> None:
    point = base / "c1"
    mounter.mount_nfs(EXPORT, point)
    mounter.umount(point)
    assert fake.calls[-1] == ("umount", str(point))
    assert table(fake) == (ROOT,) and fake.umounts == 1 and not fake.mounted(point)
    assert not point.exists()
    mounter.umount(point)  # not mounted: nothing runs
    assert len(fake.calls) == 2
    result = fake.run(("umount", str(point)))
    assert (result.returncode, result.stderr) == (32, f"umount: {point}: not mounted.\n")


def test_lazy_forced_umount_of_stacked_mounts(
    fake: FakeMount, mounter: Mounter, base: Path
) -> None:
    point = base / "c1"
    mounter.mount_nfs(EXPORT, point)
    fake.add_mount(V6_EXPORT, point)  # someone mounted over it
    mounter.umount(point, lazy=True, force=True)
    assert fake.calls[-2:] == [("umount", "-f", "-l", str(point))] * 2
    assert table(fake) == (ROOT,) and fake.umounts == 2


def test_a_mount_point_with_spaces_and_backslashes_round_trips(
    fake: FakeMount, mounter: Mounter, base: Path
) -> None:
    point = base / "with space\\and backslash"
    mounter.mount_nfs(V6_EXPORT, point, [("vers", "3")])
    assert "with\\040space\\134and\\040backslash" in fake.mountinfo.read_text()
    (entry,) = nfs_mounts(table(fake))
    assert (entry.mount_point, entry.source, entry.fstype) == (str(point), V6_EXPORT, "nfs")
    mounter.umount(point)
    assert table(fake) == (ROOT,)


def test_something_else_on_the_mount_point_is_busy(
    fake: FakeMount, mounter: Mounter, base: Path
) -> None:
    point = base / "c1"
    point.mkdir(parents=True)
    other = fake.add_mount("other.example:/x", point, "nfs4")
    assert other.parent_id == ROOT.mount_id and table(fake)[-1] == other
    with pytest.raises(ConnectorFailed) as caught:
        mounter.mount_nfs(EXPORT, point)
    assert caught.value.code == "MOUNT_POINT_BUSY"
    assert fake.calls == []
    inner = fake.add_mount("tmpfs", point / "inner", "tmpfs")
    assert inner.parent_id == other.mount_id


def test_vanish_takes_the_mount_away_without_any_command(
    fake: FakeMount, mounter: Mounter, base: Path
) -> None:
    point = base / "c1"
    mounter.mount_nfs(EXPORT, point)
    fake.vanish(point)
    assert table(fake) == (ROOT,) and mounter.mounted(point) == ()
    assert len(fake.calls) == 1 and fake.umounts == 0
    mounter.umount(point)  # the table says it is gone: nothing runs, the directory goes
    assert len(fake.calls) == 1 and not point.exists()
    with pytest.raises(TestbedError, match="nothing is mounted there"):
        fake.vanish(point)
    mounter.mount_nfs(EXPORT, point)  # and it can be mounted again
    assert len(nfs_mounts(table(fake))) == 1


@pytest.mark.parametrize(("status", "stderr"), [(32, None), (16, "mount: cannot lock mtab\n")])
def test_fail_mounts_fails_the_next_n_mounts_with_the_status_chosen(
    fake: FakeMount, mounter: Mounter, base: Path, status: int, stderr: str | None
) -> None:
    fake.fail_mounts(status, times=2, stderr=stderr)
    for _ in range(2):
        with pytest.raises(ConnectorFailed) as caught:
            mounter.mount_nfs(EXPORT, base / "c1")
        assert (caught.value.code, caught.value.returncode) == (MOUNT_ERRORS[status][0], status)
        assert caught.value.stderr == (stderr or "mount.nfs: Connection timed out\n").strip()
        assert table(fake) == (ROOT,)
    mounter.mount_nfs(EXPORT, base / "c1")
    assert fake.mounts == 1 and len(fake.calls) == 3


def test_fail_mounts_until_cleared_or_timing_out(
    fake: FakeMount, mounter: Mounter, base: Path
) -> None:
    fake.fail_mounts()
    for _ in range(3):
        with pytest.raises(ConnectorFailed) as caught:
            mounter.mount_nfs(EXPORT, base / "c1")
        assert caught.value.code == "MOUNT_FAILED"
    fake.fail_mounts(None, times=1)
    with pytest.raises(ConnectorFailed) as caught:
        mounter.mount_nfs(EXPORT, base / "c1")
    assert (caught.value.code, caught.value.returncode) == ("TIMEOUT", None)
    assert "did not finish within 5 s" in caught.value.message
    mounter.mount_nfs(EXPORT, base / "c1")
    fake.fail_mounts()
    fake.fail_mounts(times=0)
    mounter.mount_nfs(EXPORT, base / "c2")
    assert fake.mounts == 2
    with pytest.raises(ValueError, match="times"):
        fake.fail_mounts(times=-1)


def test_fail_umounts_keeps_the_mount(fake: FakeMount, mounter: Mounter, base: Path) -> None:
    point = base / "c1"
    mounter.mount_nfs(EXPORT, point)
    fake.fail_umounts()
    for _ in range(2):
        with pytest.raises(ConnectorFailed) as caught:
            mounter.umount(point)
        assert (caught.value.code, caught.value.returncode) == ("UMOUNT_FAILED", 32)
        assert caught.value.stderr == f"umount: {point}: target is busy."
        assert fake.mounted(point) and point.is_dir()
    fake.fail_umounts(2, times=1, stderr="umount: out of memory\n")
    with pytest.raises(ConnectorFailed) as caught:
        mounter.umount(point)
    assert caught.value.code == UMOUNT_ERRORS[2][0] == "UMOUNT_SYSTEM_ERROR"
    assert caught.value.stderr == "umount: out of memory"
    fake.fail_umounts(None, times=1)
    with pytest.raises(ConnectorFailed) as caught:
        mounter.umount(point)
    assert caught.value.code == "TIMEOUT"
    mounter.umount(point)
    assert table(fake) == (ROOT,) and fake.umounts == 1 and len(fake.calls) == 6


def test_read_only_and_other_options_are_passed_and_recorded(
    fake: FakeMount, mounter: Mounter, base: Path
) -> None:
    point = base / "c1"
    options = [("vers", "4.1"), ("ro", ""), ("rsize", "1048576"), ("sec", "krb5")]
    mounter.mount_nfs(EXPORT, point, options)
    assert fake.calls == [
        ("mount", "-t", "nfs", "-o", "vers=4.1,ro,rsize=1048576,sec=krb5", EXPORT, str(point))
    ]
    (entry,) = nfs_mounts(table(fake))
    assert entry.options == "ro,relatime"
    assert entry.super_options == "ro,vers=4.1,rsize=1048576,sec=krb5"


def test_other_programs_are_not_installed(fake: FakeMount) -> None:
    with pytest.raises(CommandNotFound):
        fake.run(("iscsiadm", "-m", "session"))
    assert fake.calls == []
