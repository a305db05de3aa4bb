"""Captures replay to identical records; unsafe archives are refused."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import time
import tracemalloc
from collections.abc import Mapping
from pathlib import Path

import pytest

from tracker.exceptions import CaptureLimitExceeded, UnsafeCapture
from tracker.host.capture import capture, extract_capture, open_capture
from tracker.host.sources import SysfsTreeSource
from tracker.testing.testbed import Testbed
from tracker.testing.topologies import TOPOLOGIES, VpdVector, fc_multipath


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_capture_replays_to_identical_records(
    name: str, testbed: Testbed, vpd_vectors: Mapping[str, VpdVector], tmp_path: Path
) -> None:
    TOPOLOGIES[name](testbed, vpd_vectors)
    archive = tmp_path / "host.tar.gz"
    summary = capture(testbed.root, archive)
    original = SysfsTreeSource(testbed.root).scan()
    replayed = open_capture(archive, tmp_path / "replay")
    assert summary.devices == len(original)
    assert replayed.scan() == original
    assert replayed.root == tmp_path / "replay"


def test_capture_leaves_out_irrelevant_devices(testbed: Testbed, tmp_path: Path) -> None:
    fc_multipath(testbed, luns=1)
    archive = tmp_path / "host.tar.gz"
    capture(testbed.root, archive)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert not any("/scsi_disk/" in n for n in names)
    assert not any(n.endswith(("/scan", "/range", "/supported_classes")) for n in names)
    assert any(n.endswith("/vpd_pg83") for n in names)


def test_capture_does_not_follow_links_out_of_the_tree(testbed: Testbed, tmp_path: Path) -> None:
    fc_multipath(testbed, luns=1)
    secret = tmp_path / "secret"
    secret.write_text("do not copy\n")
    device = testbed.sys_dir / testbed.disks["sda"].lstrip("/")
    (device / "size").unlink()
    (device / "size").symlink_to(secret)
    os.symlink(tmp_path, testbed.sys_dir / "class" / "fc_host" / "evil")
    os.symlink(secret, testbed.root / "dev" / "disk" / "by-id" / "evil-secret")
    os.symlink("../../../../evil", testbed.root / "dev" / "disk" / "by-path" / "evil-up")
    archive = tmp_path / "host.tar.gz"
    capture(testbed.root, archive)
    with tarfile.open(archive) as tar:
        for member in tar:
            assert member.name.startswith(
                ("sys/", "run/udev/data/", "dev/disk/by-id/", "dev/disk/by-path/")
            )
            if member.name.startswith("dev/"):  # udev links to captured disks only
                assert member.issym() and member.linkname in {f"../../{d}" for d in testbed.disks}
            if member.isfile():
                data = tar.extractfile(member)
                assert data is not None and b"do not copy" not in data.read()
            assert "evil" not in member.name


def test_capture_bounded_in_size(testbed: Testbed, tmp_path: Path) -> None:
    fc_multipath(testbed)
    archive = tmp_path / "host.tar.gz"
    with pytest.raises(CaptureLimitExceeded) as caught:
        capture(testbed.root, archive, max_bytes=10_000)
    assert caught.value.limit == "bytes"
    assert caught.value.maximum == 10_000
    assert list(tmp_path.iterdir()) == []


def test_capture_bounded_in_time(testbed: Testbed, tmp_path: Path) -> None:
    fc_multipath(testbed)
    with pytest.raises(CaptureLimitExceeded) as caught:
        capture(testbed.root, tmp_path / "host.tar.gz", max_seconds=0.0)
    assert caught.value.limit == "seconds"
    assert list(tmp_path.iterdir()) == []


def _archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _file(name: str, data: bytes = b"x\n") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _dir(name: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info, b""


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, b""


def _device(name: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.BLKTYPE
    return info, b""


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([_file("/etc/evil")], "absolute"),
        ([_file("sys/../../evil")], "'..'"),
        ([_link("sys/escape", "../../../etc")], "leaves root"),
        ([_link("sys/abs", "/etc/passwd")], "leaves root"),
        ([_link("sys/here", "."), _link("sys/out", "here/../../..")], "leaves root"),
        ([_link("q", "."), _link("p", "q/../etc")], "outside the root"),
        ([_link("sys/dir", "."), _file("sys/dir/x")], "through a link"),
        ([_link("sys/hard", "sys/x", tarfile.LNKTYPE)], "not a file"),
        ([_device("sys/sda")], "not a file"),
    ],
)
def test_malicious_archives_are_refused(
    members: list[tuple[tarfile.TarInfo, bytes]], reason: str, tmp_path: Path
) -> None:
    archive = _archive(tmp_path / "evil.tar.gz", members)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeCapture) as caught:
        extract_capture(archive, dest)
    assert reason in caught.value.reason
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path.parent / "evil").exists()


def test_oversize_archive_is_refused(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "big.tar.gz", [_file("sys/a"), _file("sys/b")])
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeCapture):
        extract_capture(archive, dest, max_bytes=3)
    (tmp_path / "dest2").mkdir()
    with pytest.raises(UnsafeCapture):
        extract_capture(archive, tmp_path / "dest2", max_members=1)


def test_duplicate_members_are_refused(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "dup.tar.gz", [_file("sys/a"), _file("sys/a")])
    (tmp_path / "dest").mkdir()
    with pytest.raises(UnsafeCapture) as caught:
        extract_capture(archive, tmp_path / "dest")
    assert caught.value.reason == "duplicate member"


# --- bounds checked before anything is unpacked --------------------------------


def _pax_header(size: int, name: bytes = b"PaxHeader/x") -> bytes:
    """The raw 512-byte header block of a pax extended header of ``size`` bytes."""
    block = bytearray(512)
    block[: len(name)] = name
    block[100:108] = b"0000644\0"
    block[124:136] = f"{size:011o}\0".encode()
    block[136:148] = b"00000000000\0"
    block[156:157] = b"x"
    block[257:263] = b"ustar\0"
    block[263:265] = b"00"
    block[148:156] = b" " * 8
    block[148:156] = f"{sum(block):06o}\0 ".encode()
    return bytes(block)


def _write_pax_bomb(path: Path, header_size: int) -> None:
    """A gzip'ed tar whose first member is a pax header of ``header_size`` bytes of
    zeros: a small file on disk, a huge one for tarfile to read into memory."""
    chunk = bytes(1024 * 1024)
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(_pax_header(header_size))
        left = -(-header_size // 512) * 512
        while left > 0:
            out.write(chunk[: min(left, len(chunk))])
            left -= min(left, len(chunk))
        out.write(bytes(1024))


def test_an_oversize_pax_header_is_refused_before_it_is_read(tmp_path: Path) -> None:
    archive = tmp_path / "pax.tar.gz"
    _write_pax_bomb(archive, 4096)
    (tmp_path / "dest").mkdir()
    with pytest.raises(UnsafeCapture) as caught:
        extract_capture(archive, tmp_path / "dest", max_header_bytes=1024)
    assert "extended header of 4096 bytes" in caught.value.reason
    assert not any((tmp_path / "dest").iterdir())


@pytest.mark.slow
def test_a_600_mb_pax_header_is_refused_fast_and_small(tmp_path: Path) -> None:
    archive = tmp_path / "pax.tar.gz"
    _write_pax_bomb(archive, 600 * 1024 * 1024)
    assert archive.stat().st_size < 4 * 1024 * 1024  # a few MB on disk
    (tmp_path / "dest").mkdir()
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(UnsafeCapture) as caught:
            extract_capture(archive, tmp_path / "dest")
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "extended header" in caught.value.reason
    assert elapsed < 5.0
    assert peak < 16 * 1024 * 1024
    assert not any((tmp_path / "dest").iterdir())


def test_too_many_directories_are_refused_before_any_is_made(tmp_path: Path) -> None:
    members = [_dir(f"sys/d{i}") for i in range(50)]
    archive = _archive(tmp_path / "dirs.tar.gz", members)
    (tmp_path / "dest").mkdir()
    with pytest.raises(UnsafeCapture) as caught:
        extract_capture(archive, tmp_path / "dest", max_members=20)
    assert "more than 20 members" in caught.value.reason
    assert not any((tmp_path / "dest").iterdir())


def test_too_many_bytes_are_refused_before_any_is_written(tmp_path: Path) -> None:
    members = [_file(f"sys/f{i}", b"x" * 100) for i in range(10)]
    archive = _archive(tmp_path / "bytes.tar.gz", members)
    (tmp_path / "dest").mkdir()
    with pytest.raises(UnsafeCapture) as caught:
        extract_capture(archive, tmp_path / "dest", max_bytes=550)
    assert "over 550 bytes" in caught.value.reason
    assert not any((tmp_path / "dest").iterdir())


def test_a_member_under_a_file_member_is_named_as_such(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "under.tar.gz", [_file("sys/a"), _file("sys/a/b")])
    (tmp_path / "dest").mkdir()
    with pytest.raises(UnsafeCapture) as caught:
        extract_capture(archive, tmp_path / "dest")
    assert caught.value.member == "sys/a/b"
    assert caught.value.reason == "it is under the file member 'sys/a'"


@pytest.mark.parametrize("name", ["sys/" + "n" * 300, "sys/" + "d/" * 2100 + "f"])
def test_a_name_too_long_is_named_as_such(tmp_path: Path, name: str) -> None:
    archive = _archive(tmp_path / "long.tar.gz", [_file(name)])
    (tmp_path / "dest").mkdir()
    with pytest.raises(UnsafeCapture) as caught:
        extract_capture(archive, tmp_path / "dest")
    assert "member name too long" in caught.value.reason


def test_a_file_that_is_not_gzip_is_a_tar_error(tmp_path: Path) -> None:
    archive = tmp_path / "plain.txt"
    archive.write_text("not an archive\n")
    (tmp_path / "dest").mkdir()
    with pytest.raises(tarfile.TarError):
        extract_capture(archive, tmp_path / "dest")
