"""The testbed builder and the topology helpers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tracker.exceptions import PreloadLibraryMissing, TestbedError
from tracker.host.executor import CommandResult
from tracker.host.sources import SysfsTreeSource
from tracker.testing import umockdev as umockdev_module
from tracker.testing.testbed import (
    FcHbaSpec,
    Hctl,
    HostSpec,
    LunSpec,
    MultipathSpec,
    Testbed,
    find_preload_library,
    preload_environment,
    sd_devnum,
    sd_name,
)
from tracker.testing.topologies import (
    TOPOLOGIES,
    Designator,
    VpdVector,
    build_pg83,
    kernel_wwid,
    load_vpd_vectors,
    scale,
)


@pytest.mark.parametrize(
    ("index", "name", "devnum"),
    [
        (0, "sda", (8, 0)),
        (1, "sdb", (8, 16)),
        (15, "sdp", (8, 240)),
        (16, "sdq", (65, 0)),
        (25, "sdz", (65, 144)),
        (26, "sdaa", (65, 160)),
        (255, "sdiv", (135, 240)),
        (256, "sdiw", (8, 65536)),
        (701, "sdzz", (131, 131280)),
        (702, "sdaaa", (131, 131296)),
    ],
)
def test_sd_names_and_numbers_follow_the_kernel(
    index: int, name: str, devnum: tuple[int, int]
) -> None:
    assert sd_name(index) == name
    assert sd_devnum(index) == devnum


def test_builder_refuses_inconsistent_requests(testbed: Testbed) -> None:
    with pytest.raises(TestbedError, match="no host3"):
        testbed.add_lun(LunSpec(Hctl(3, 0, 0, 0), "A", "B"))
    testbed.add_fc_hba(FcHbaSpec(host=0, wwpn=1, wwnn=2))
    with pytest.raises(TestbedError, match="already used"):
        testbed.add_host(HostSpec(host=0))
    with pytest.raises(TestbedError, match="no remote port"):
        testbed.add_lun(LunSpec(Hctl(0, 0, 0, 0), "A", "B"))
    with pytest.raises(TestbedError, match="no disk sdx"):
        testbed.add_multipath(MultipathSpec(0, "m", "mpath-1", ("sdx",)))
    with pytest.raises(TestbedError, match="no such LUN"):
        testbed.remove_lun(Hctl(0, 0, 0, 0))


def test_layout_matches_umockdev(testbed: Testbed) -> None:
    TOPOLOGIES["fc_multipath"](testbed, None)
    sys_dir = testbed.sys_dir
    sda = sys_dir / testbed.disks["sda"].lstrip("/")
    assert (sda / "uevent").read_text().startswith("SUBSYSTEM=block\nDEVTYPE=disk\nDEVNAME=sda\n")
    assert (sda / "subsystem").resolve() == (sys_dir / "class" / "block").resolve()
    assert (sys_dir / "block" / "sda").resolve() == sda.resolve()
    assert (sys_dir / "dev" / "block" / "8:0").resolve() == sda.resolve()
    assert (sda / "device").resolve() == sda.parent.parent.resolve()
    assert (testbed.root / "dev" / ".node" / "sda").readlink() == Path("8:0")
    assert (testbed.root / "dev" / "sda").stat().st_mode & 0o1000
    device = sda.parent.parent
    assert (device / "subsystem").resolve() == (sys_dir / "bus" / "scsi").resolve()
    assert (sys_dir / "bus" / "scsi" / "devices" / "0:0:0:0").resolve() == device.resolve()
    assert (device.parent.parent / "uevent").read_bytes() == b""  # rport kobject


def test_preload_environment_prepends() -> None:
    env = preload_environment(Path("/x"), Path("/lib/p.so"), {"LD_PRELOAD": "a.so", "HOME": "/h"})
    assert env == {"LD_PRELOAD": "/lib/p.so a.so", "UMOCKDEV_DIR": "/x", "HOME": "/h"}


class _NoLdconfig:
    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        return CommandResult(tuple(argv), 0, "", "")


def test_missing_preload_library_names_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(umockdev_module, "_MULTIARCH_DIRS", (str(tmp_path),))
    with pytest.raises(PreloadLibraryMissing) as caught:
        find_preload_library(_NoLdconfig())
    assert caught.value.package == "umockdev"
    assert "umockdev" in str(caught.value)
    assert caught.value.searched == ("ldconfig -p", str(tmp_path))


def test_kernel_wwid_choices(vpd_vectors: Mapping[str, VpdVector]) -> None:
    def page(name: str) -> bytes:
        return vpd_vectors[name].data

    assert kernel_wwid(page("os-win-3par-pg83")) == "naa.60002ac00000000000000ea000008699"
    assert kernel_wwid(page("sg3utils-seagate-sas-pg83")) == "naa.5000c5003011cb2b"
    assert kernel_wwid(page("sg3utils-scsi_debug-pg83")) == "naa.33333330000007d0"
    assert kernel_wwid(page("util-linux-wd800jd-pg83")) == (
        "t10.ATA     WDC WD800JD-00MSA1                           WD-WMAM9XE78956"
    )
    assert kernel_wwid(page("sg3utils-emc-symmetrix-legacy-pg83")) is None
    assert kernel_wwid(page("os-win-3par-pg83")[:12]) is None
    assert kernel_wwid(None) is None
    eui = build_pg83([Designator(1, 0, 2, bytes.fromhex("0123456789abcdef"))])
    assert kernel_wwid(eui) == "eui.0123456789abcdef"


@pytest.mark.parametrize("name", sorted(TOPOLOGIES))
def test_identities_are_consistent(
    name: str, testbed: Testbed, vpd_vectors: Mapping[str, VpdVector]
) -> None:
    topology = TOPOLOGIES[name](testbed, vpd_vectors)
    for lun in topology.luns:
        assert lun.wwid == kernel_wwid(lun.vpd_pg83)
        assert lun.disk is not None
        properties = lun.disk.udev_properties
        if lun.wwid is not None and lun.wwid.startswith(("naa.", "eui.")):
            assert properties["ID_WWN_WITH_EXTENSION"] == "0x" + lun.wwid[4:]
            assert properties["ID_SERIAL"][1:] == lun.wwid[4:]
    serials = {
        lun.disk.name: lun.disk.udev_properties.get("ID_SERIAL")
        for lun in topology.luns
        if lun.disk
    }
    for mpath in topology.multipaths:
        assert {f"mpath-{serials[path]}" for path in mpath.paths} == {mpath.uuid}


def test_scale_counts(testbed: Testbed) -> None:
    topology = scale(testbed, hbas=2, luns=20)
    records = SysfsTreeSource(testbed.root).scan()
    assert sum(r.sys_name.startswith("sd") for r in records) == 40
    assert sum(r.sys_name.startswith("dm-") for r in records) == 20
    assert len(topology.multipaths) == 20


def test_vectors_missing_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TestbedError, match=r"pages\.json"):
        load_vpd_vectors(tmp_path)
