"""What cinderlib users write works the way they expect (see docs/cinderlib.rst)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

import tracker
from tracker import exceptions
from tracker.db.store import Store
from tracker.resources import Backend
from tracker.serialization import dumps

LVM = "cinder.volume.drivers.lvm.LVMVolumeDriver"


def test_volume_driver_is_cinderlibs_spelling_of_driver(
    store: Store, reopen: Callable[[], Store]
) -> None:
    lvm = Backend(
        volume_backend_name="lvm",
        volume_driver=LVM,
        store=store,
        volume_group="cinder-volumes",
        target_helper="lioadm",
    )
    assert lvm.driver == LVM
    assert lvm.config == {"volume_group": "cinder-volumes", "target_helper": "lioadm"}
    assert str(lvm).splitlines()[0] == f"Backend lvm ({LVM}): 0 volumes"
    # the same call again is the same backend; so is the driver= spelling
    assert Backend("lvm", store=store, volume_driver=LVM, **lvm.config) is lvm
    assert Backend("lvm", store=store, driver=LVM, **lvm.config) is lvm
    assert Backend("lvm", store=store, driver=LVM, volume_driver=LVM, **lvm.config) is lvm
    assert Backend.load(reopen(), "lvm").driver == LVM


def test_driver_and_volume_driver_must_agree(store: Store) -> None:
    before = dumps(store)
    with pytest.raises(exceptions.InvalidInput) as raised:
        Backend("lvm", store=store, driver="A", volume_driver="B")
    assert raised.value.field == "volume_driver"
    assert "differs from driver='A'" in str(raised.value)
    assert "lvm" not in Backend.backends
    assert dumps(store) == before


def test_create_volume_takes_cinderlibs_arguments(
    store: Store, reopen: Callable[[], Store]
) -> None:
    lvm = Backend("lvm", store=store, volume_driver=LVM)
    volume = lvm.create_volume(2, "boot", "the root disk", True, image_id="abc", tier=1)
    assert (volume.name, volume.description, volume.bootable) == ("boot", "the root disk", True)
    assert volume.metadata == {"image_id": "abc", "tier": 1}
    plain = lvm.create_volume(1, name="data", metadata={"a": 1}, b=2, status="available")
    assert (plain.description, plain.bootable, plain.metadata) == (None, False, {"a": 1, "b": 2})
    plain.description = "scratch"
    plain.bootable = True
    plain.save()
    again = Backend.load(reopen(), "lvm")
    loaded = {v.id: v for v in again.volumes}
    assert (loaded[volume.id].description, loaded[volume.id].bootable) == ("the root disk", True)
    assert (loaded[plain.id].description, loaded[plain.id].bootable) == ("scratch", True)
    assert loaded[plain.id].metadata == {"a": 1, "b": 2}


def test_a_metadata_key_given_twice_is_refused(store: Store) -> None:
    lvm = Backend("lvm", store=store)
    with pytest.raises(exceptions.InvalidInput, match="given both in metadata= and as keyword"):
        lvm.create_volume(1, metadata={"tier": 1}, tier=2)
    with pytest.raises(exceptions.InvalidInput, match="True or False"):
        lvm.create_volume(1, bootable=1)  # type: ignore[arg-type]
    assert lvm.volumes == ()


def test_backend_conflict_says_what_differs_without_config_values(store: Store) -> None:
    Backend("lvm", store=store, driver="A", volume_group="vg", san_password="s3cret", old=1)
    with pytest.raises(exceptions.BackendConflict) as raised:
        Backend("lvm", store=store, driver="B", volume_group="other", san_password="guess", new=2)
    message = str(raised.value)
    assert raised.value.differences == (
        "driver ('A' registered, 'B' asked for)",
        "configuration (keys added: new; removed: old; changed: san_password, volume_group)",
    )
    assert "s3cret" not in message and "guess" not in message and "other" not in message
    assert "destroy()" in message
    other = Store(store.url, auto_upgrade="never")  # another Store object, the same database
    with pytest.raises(exceptions.BackendConflict) as raised:
        Backend("lvm", store=other, driver="A", volume_group="vg", san_password="s3cret", old=1)
    assert raised.value.differences == (
        f"store (registered with {store.display_url}, asked for {other.display_url})",
    )
    with pytest.raises(exceptions.BackendConflict, match="store"):
        Backend.load(other, "lvm")


def test_destroy_forgets_the_backend_in_this_process_only(
    store: Store, reopen: Callable[[], Store]
) -> None:
    lvm = Backend("lvm", store=store, driver="A", volume_group="vg")
    volume = lvm.create_volume(1, "kept", status="available")
    before = dumps(store)
    lvm.destroy()
    assert "lvm" not in Backend.backends
    assert dumps(store) == before  # stored rows stay
    assert tracker.status().backends == ()
    lvm.destroy()  # a second time does nothing
    # a new registration, even with another configuration, adopts the stored volumes
    again = Backend("lvm", store=store, driver="B", volume_group="vg2")
    assert again is not lvm
    assert [v.id for v in again.volumes] == [volume.id]
    assert again.volumes[0] is not volume
    lvm.destroy()  # destroying the old instance leaves the new registration alone
    assert Backend.backends["lvm"] is again
    assert Backend.load(reopen(), "lvm").driver == "B"


def test_a_bad_value_in_the_registry_does_not_break_status(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    lvm = Backend("lvm", store=store)
    lvm.create_volume(1, "v")
    Backend.backends["junk"] = 42  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="tracker.report"):
        report = tracker.status()
    assert [b.name for b in report.backends] == ["lvm"]
    assert "skipping Backend.backends['junk'], which is a int" in caplog.text
    # registering the name replaces the bad value
    junk = Backend("junk", store=store)
    assert Backend.backends["junk"] is junk
    assert Backend.load(store, "junk") is junk
