from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from azinfer import ConfigWriteError, ProjectFileError, config_from_outputs, write_config
from azinfer.project import INFERENCE_CONFIG, InferenceConfig, load_inference_config

OUTPUTS = {
    "SUBSCRIPTION_ID": {"type": "String", "value": "8a3f1d2e-4b5c-4d6e-9f70-1a2b3c4d5e6f"},
    "RESOURCE_GROUP_NAME": {"type": "String", "value": "rg"},
    "STORAGE_ACCOUNT_NAME": {"type": "String", "value": "aistorage27vsy"},
    "FILE_SHARE_NAME": {"type": "String", "value": "aifileshare27vsy"},
    "ACA_APP_NAME": {"type": "String", "value": "aiacaapp27vsy"},
    "ACA_APP_ENDPOINT": {"type": "String", "value": "aiacaapp27vsy.happyrock-12.westus3.azurecontainerapps.io"},
}


def test_outputs_become_the_config_file(tmp_path: Path) -> None:
    config = config_from_outputs(OUTPUTS)
    path = write_config(tmp_path, config)
    assert path == tmp_path / INFERENCE_CONFIG
    assert json.loads(path.read_text()) == {k: v["value"] for k, v in OUTPUTS.items()}
    assert load_inference_config(path) == config
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "no temporary file is left"


def test_missing_output_is_an_error() -> None:
    outputs = dict(OUTPUTS)
    del outputs["ACA_APP_ENDPOINT"]
    with pytest.raises(ProjectFileError, match="ACA_APP_ENDPOINT: a value"):
        config_from_outputs(outputs)


def test_invalid_config_is_not_written_and_the_old_file_stays(tmp_path: Path) -> None:
    path = write_config(tmp_path, config_from_outputs(OUTPUTS))
    before = path.read_text()
    bad = InferenceConfig("not-a-guid", "rg", "aistorage27vsy", "share", "app", "app.example.io")
    with pytest.raises(ConfigWriteError) as info:
        write_config(tmp_path, bad)
    assert info.value.path == str(path)
    assert path.read_text() == before


def test_failed_replace_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, config_from_outputs(OUTPUTS))
    before = path.read_text()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    changed = dict(OUTPUTS, ACA_APP_NAME={"value": "otherapp"})
    with pytest.raises(ConfigWriteError, match="No space left on device"):
        write_config(tmp_path, config_from_outputs(changed))
    assert path.read_text() == before
    assert [p.name for p in path.parent.iterdir()] == ["inference.config.json"]


def test_foreign_keys_and_their_order_are_kept(tmp_path: Path) -> None:
    path = tmp_path / INFERENCE_CONFIG
    path.parent.mkdir(parents=True)
    shipped = {"SUBSCRIPTION_ID": None, "COMMANDS": ["cd /mount"], "RESOURCE_GROUP_NAME": None,
               "STORAGE_ACCOUNT_NAME": None, "FILE_SHARE_NAME": None, "ACA_APP_NAME": None,
               "ACA_APP_ENDPOINT": None, "MY_NOTE": {"owner": "team-a"}}
    path.write_text(json.dumps(shipped))
    write_config(tmp_path, config_from_outputs(OUTPUTS))
    written = json.loads(path.read_text())
    assert list(written) == list(shipped)
    assert written["COMMANDS"] == ["cd /mount"] and written["MY_NOTE"] == {"owner": "team-a"}
    assert written["ACA_APP_NAME"] == OUTPUTS["ACA_APP_NAME"]["value"]
    # Teardown clears only the owned keys.
    write_config(tmp_path, load_inference_config(path).cleared())
    assert json.loads(path.read_text()) == shipped


def test_unreadable_config_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / INFERENCE_CONFIG
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(ConfigWriteError, match="fix or remove it, nothing was written"):
        write_config(tmp_path, config_from_outputs(OUTPUTS))
    assert path.read_text() == "{not json"
