"""The recorded AI Toolkit template history is complete and well-formed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from toolkit_history import DATA, PROJECT_PATHS, materialize, versions


def test_every_blob_named_by_the_manifest_exists_and_matches_its_id():
    named = {blob for v in versions() for blob in v.files.values() if blob is not None}
    stored = {p.stem for p in (DATA / "blobs").iterdir()}
    assert named == stored  # no missing blob, no stray one
    for blob in named:
        assert hashlib.sha1((DATA / "blobs" / f"{blob}.json").read_bytes()).hexdigest()[:12] == blob


def test_versions_are_distinct_and_each_deploys_inference():
    all_versions = versions()
    assert len({v.id for v in all_versions}) == len(all_versions)
    assert len({(v.model, v.layout, tuple(v.files.items())) for v in all_versions}) == len(all_versions)
    assert all(v.files["inference.parameters.json"] is not None for v in all_versions)
    assert all(set(v.files) == set(PROJECT_PATHS) for v in all_versions)


def test_every_inference_parameters_file_is_an_arm_parameters_file_with_a_start_command():
    for v in versions():
        parameters = json.loads(v.data("inference.parameters.json"))["parameters"]
        assert parameters["defaultCommands"]["value"], v.id


def test_history_covers_the_released_layout_of_every_model_on_main():
    models = {v.model for v in versions() if v.on_main and v.layout == "provision"}
    assert len(models) == 8
    assert sum(v.on_main and v.layout == "provision" for v in versions()) >= 97


@pytest.mark.parametrize("version", versions(), ids=lambda v: v.id)
def test_materialize_writes_the_exact_bytes_where_the_toolkit_keeps_them(version, tmp_path: Path):
    project = materialize(version, tmp_path)
    written = {p.relative_to(project) for p in project.rglob("*") if p.is_file()}
    assert written == {PROJECT_PATHS[n] for n, blob in version.files.items() if blob is not None}
    for name, rel in PROJECT_PATHS.items():
        if version.files[name] is not None:
            assert (project / rel).read_bytes() == version.data(name)
