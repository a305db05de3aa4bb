"""``tracker status`` against every database, via --database-url and a config file."""

from __future__ import annotations

from pathlib import Path

from tracker.db.store import Store
from tracker.discovery.discover import discover
from tracker.host.sources import SysfsTreeSource
from tracker.reconcile import reconcile
from tracker.resources import Backend
from tracker.testing import topologies
from tracker.testing.testbed import Testbed

from .helpers import Cli, Tracked


def test_status_json_matches_what_was_tracked(cli: Cli, url: str, tracked: Tracked) -> None:
    run = cli("status", "--json", "--database-url", url)
    assert run.code == 0, run.err
    document = run.json()
    [backend] = document["backends"]
    assert backend["name"] == tracked.backend.name
    assert backend["id"] == tracked.backend.id
    assert backend["driver"] == "LVMVolumeDriver"
    volumes = {v["id"]: v for v in backend["volumes"]}
    assert set(volumes) == set(tracked.volumes)
    for volume_id, volume in tracked.volumes.items():
        shown = volumes[volume_id]
        assert (shown["name"], shown["size"], shown["serial"]) == (
            volume.name,
            volume.size,
            volume.serial,
        )
        assert shown["status"] == volume.status
        assert {s["id"] for s in shown["snapshots"]} == {
            s.id for s in tracked.snapshots.values() if s.volume_id == volume_id
        }
        assert {
            (c["id"], c["host"], c["protocol"], c["attach_mode"], c["status"])
            for c in shown["connections"]
        } == {
            (c.id, c.host, c.protocol, c.attach_mode, c.status)
            for c in tracked.connections.values()
            if c.volume_id == volume_id
        }
    # connecting made the volumes in-use (attached) or left them available (attaching)
    statuses = sorted(v["status"] for v in backend["volumes"])
    assert statuses == ["available", "creating", "in-use"]


def test_status_text_lists_the_tree(cli: Cli, url: str, tracked: Tracked) -> None:
    run = cli("--database-url", url, "status")  # the global option, before the command
    assert run.code == 0, run.err
    assert run.out.startswith(f"Backend {tracked.backend.name} (LVMVolumeDriver): 3 volumes")
    for volume_id in tracked.volumes:
        assert f"Volume {volume_id}" in run.out
    for snapshot_id in tracked.snapshots:
        assert f"Snapshot {snapshot_id}" in run.out
    assert "-> node-1 (rw) [attached]" in run.out
    assert "-> node-2 (ro) [attaching]" in run.out


def test_status_of_an_empty_store(cli: Cli, url: str) -> None:
    run = cli("status", "--database-url", url)
    assert (run.code, run.out.strip()) == (0, "(no backends tracked)")
    assert cli("status", "--json", "--database-url", url).json()["backends"] == []


def test_status_backend_filter(cli: Cli, url: str, tracked: Tracked, store: Store) -> None:
    other = Backend("other", store=store, driver="NFS")
    other.create_volume(3, "nfs-vol", status="available")
    both = cli("status", "--json", "--database-url", url).json()
    assert [b["name"] for b in both["backends"]] == ["lvm-1", "other"]
    only = cli("status", "--json", "--backend", "other", "--database-url", url).json()
    assert [b["name"] for b in only["backends"]] == ["other"]
    assert [v["name"] for v in only["backends"][0]["volumes"]] == ["nfs-vol"]


def test_status_unknown_backend_fails(cli: Cli, url: str, tracked: Tracked) -> None:
    run = cli("status", "--backend", "nope", "--database-url", url)
    assert run.code == 1
    assert run.out == ""
    assert run.err == "error: backend nope not found\n"


def test_status_reads_the_config_file(cli: Cli, url: str, tracked: Tracked, tmp_path: Path) -> None:
    conf = tmp_path / "tracker.conf"
    conf.write_text(f"[database]\nconnection = {url}\nauto_upgrade = never\n")
    run = cli("--config-file", str(conf), "status", "--json")
    assert run.code == 0, run.err
    assert {v["id"] for v in run.json()["backends"][0]["volumes"]} == set(tracked.volumes)


def test_database_url_overrides_the_config_file(
    cli: Cli, url: str, tracked: Tracked, tmp_path: Path
) -> None:
    conf = tmp_path / "tracker.conf"
    conf.write_text("[database]\nconnection = postgresql+psycopg://nobody@127.0.0.1:1/none\n")
    broken = cli("--config-file", str(conf), "status")
    assert broken.code == 1
    assert broken.err.startswith("error: cannot open store postgresql+psycopg://nobody@")
    run = cli("--config-file", str(conf), "status", "--json", "--database-url", url)
    assert run.code == 0, run.err
    assert run.json()["backends"][0]["name"] == tracked.backend.name


def test_status_shows_where_volumes_are_on_hosts(
    cli: Cli, url: str, store: Store, tmp_path: Path
) -> None:
    """A volume a reconcile linked shows its map and paths, per host, in text and JSON."""
    bed = Testbed.create(tmp_path, prefix="cli-status-")
    topologies.failed_path(bed)
    state = discover(SysfsTreeSource(bed.root).scan(), "compute-7")
    [mpath] = state.multipath_maps
    devices = state.devices_for_wwid(mpath.wwid)
    lvm = Backend("lvm", store=store, driver="LVM")
    volume = lvm.create_volume(4, "db", status="available", wwn=devices[0].identity.wwn)
    lvm.create_volume(1, "elsewhere", status="available")
    reconcile(store, state)

    run = cli("status", "--database-url", url)
    assert run.code == 0, run.err
    via = ", ".join(f"{d.block_name} {d.state}" for d in devices)
    line = f"└── on compute-7: {mpath.name} (/dev/mapper/{mpath.name}) via {via}"
    assert [row for row in run.out.splitlines() if "on compute-7" in row] == [f"│   {line}"]
    assert f"Volume {volume.id} db 4GiB [available] wwn={volume.wwn}" in run.out

    document = cli("status", "--json", "--database-url", url).json()
    shown = {v["name"]: v for v in document["backends"][0]["volumes"]}
    assert shown["elsewhere"]["hosts"] == []
    [presence] = shown["db"]["hosts"]
    assert presence["host"] == "compute-7"
    assert presence["multipath"]["device"] == f"/dev/mapper/{mpath.name}"
    assert [(p["hctl"], p["device"], p["state"]) for p in presence["paths"]] == [
        (str(d.hctl), f"/dev/{d.block_name}", d.state) for d in devices
    ]
