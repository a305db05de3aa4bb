"""``tracker.get_storage_model()``: built from tracker's configuration, once per configuration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import tracker
from tracker.exceptions import ConfigError
from tracker.testing.live import LiveTestbed
from tracker.testing.topologies import fc_multipath
from tracker.waiting import StorageModel, WaitSettings
from tracker.waiting import model as waiting_model


@pytest.fixture
def configured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, live: LiveTestbed
) -> Iterator[Path]:
    fc_multipath(live, luns=1)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no ~/.tracker/tracker.conf of the user
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("OS_DATABASE__CONNECTION", f"sqlite:///{tmp_path}/t.sqlite")
    monkeypatch.setenv("OS_DISCOVERY__ROOT", str(live.root))
    monkeypatch.setenv("OS_DISCOVERY__HOST_NAME", "compute-7")
    monkeypatch.setenv("OS_WAITING__QUIET_PERIOD", "2.5")
    saved = dict(waiting_model._MODELS)
    waiting_model._MODELS.clear()
    yield tmp_path
    for built in waiting_model._MODELS.values():
        built.close()
        built.store.dispose()
    waiting_model._MODELS.clear()
    waiting_model._MODELS.update(saved)


def test_the_model_comes_from_the_environment_and_is_built_once(
    configured: Path, live: LiveTestbed, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tracker.get_storage_model()
    assert isinstance(model, StorageModel)
    assert model.host_name == "compute-7"
    assert model.root == live.root
    assert model.settings == WaitSettings(quiet_period=2.5)
    assert model.store.sqlite_path == configured / "t.sqlite"
    assert tracker.get_storage_model() is model
    # another configuration, another model
    monkeypatch.setenv("OS_DISCOVERY__HOST_NAME", "compute-8")
    other = tracker.get_storage_model()
    assert other is not model and other.host_name == "compute-8"
    monkeypatch.setenv("OS_DISCOVERY__HOST_NAME", "compute-7")
    assert tracker.get_storage_model() is model


def test_a_configuration_file_is_read_too(
    configured: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OS_DISCOVERY__HOST_NAME")
    conf = configured / "tracker.conf"
    conf.write_text("[discovery]\nhost_name = from-file\n[waiting]\npoll_interval = 0.5\n")
    model = tracker.get_storage_model(config_files=[str(conf)])
    assert model.host_name == "from-file"
    assert model.settings.poll_interval == 0.5


def test_a_bad_option_is_a_config_error(configured: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OS_WAITING__QUIET_PERIOD", "soon")
    with pytest.raises(ConfigError):
        tracker.get_storage_model()


def test_the_predicates_module_is_an_attribute_of_the_package() -> None:
    assert tracker.predicates.DiskExists("x") == tracker.predicates.DiskExists(" x ")
    assert "predicates" in dir(tracker) and "get_storage_model" in dir(tracker)
