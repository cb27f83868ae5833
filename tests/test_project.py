from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toolkit_projects import EXAMPLE

from azinfer import ProjectFileError, load_project
from azinfer.project import (
    CONFIG_KEYS,
    INFERENCE_PARAMETERS,
    Authentication,
    GpuProfileType,
    load_inference_config,
    load_inference_parameters,
)
from azinfer.resources import ResourceKind
from azinfer.testing import ProjectFactory


def test_example_project_loads_with_every_file(project: Path) -> None:
    loaded = load_project(project)
    params = loaded.inference_parameters
    assert params.default_commands is None  # not set: the plan runs azinfer's server
    assert params.maximum_instance_count == 2
    assert dict(params.names) == {}
    assert params.gpu_profile_type is None  # not set: the plan follows the environment
    assert params.authentication is Authentication.API_KEY
    assert loaded.finetuning_parameters is not None and loaded.finetuning_parameters.location == "westus3"
    assert loaded.finetuning_config is not None and loaded.finetuning_config.job_name == "aiacajob27vsy"
    assert loaded.inference_config is None


def test_new_parameters_are_read(azinfer_project: ProjectFactory) -> None:
    project = azinfer_project(EXAMPLE, parameters={
        "gpuProfileType": "Consumption-GPU-NC8as-T4", "maxReplicas": 3, "acaAppName": "my-app",
        "authentication": "none", "targetPort": 8000, "image": "example.azurecr.io/azinfer:1"})
    params = load_project(project).inference_parameters
    assert params.gpu_profile_type is GpuProfileType.CONSUMPTION_NC8AS_T4
    assert params.max_replicas == 3
    assert params.names[ResourceKind.CONTAINER_APP] == "my-app"
    assert params.authentication is Authentication.NONE
    assert params.target_port == 8000


IDENTITY = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pull"


def test_registry_parameters_are_read(azinfer_project: ProjectFactory) -> None:
    project = azinfer_project(EXAMPLE, parameters={
        "image": "myacr.azurecr.io/vllm/vllm-openai:v0.32.0-cu129", "registryServer": "myacr.azurecr.io",
        "registryIdentity": IDENTITY})
    params = load_project(project).inference_parameters
    assert (params.registry_server, params.registry_username, params.registry_identity) == (
        "myacr.azurecr.io", None, IDENTITY)
    assert params.to_parameters()["registryIdentity"] == {"value": IDENTITY}


@pytest.mark.parametrize(
    ("values", "pointer", "expected"),
    [
        ({"maximumInstanceCount": "two"}, "/parameters/maximumInstanceCount/value", "expected an integer, got a string"),
        ({"maximumInstanceCount": 0}, "/parameters/maximumInstanceCount/value", "expected a number >= 1"),
        ({"defaultCommands": "cd /mount"}, "/parameters/defaultCommands/value", "expected an array"),
        ({"gpuProfileType": "H100"}, "/parameters/gpuProfileType/value", 'expected one of "NC24-A100"'),
        ({"acaAppName": 5}, "/parameters/acaAppName/value", "expected a string or null, got an integer"),
        ({"registryUsername": "me"}, "/parameters/registryUsername", "registryServer is needed as well"),
        ({"registryServer": "myacr.azurecr.io"}, "/parameters/registryServer",
         "the image 'docker.io/vllm/vllm-openai:v0.32.0-cu129' is not on 'myacr.azurecr.io'"),
        ({"registryServer": "docker.io", "registryUsername": "me", "registryIdentity": IDENTITY},
         "/parameters/registryIdentity", "either registryUsername (with a password) or registryIdentity, not both"),
        ({"registryServer": "docker.io", "registryIdentity": "system"}, "/parameters/registryIdentity/value",
         "\"system\" does not have the expected form"),
    ],
)
def test_bad_values_name_file_pointer_and_expectation(
    azinfer_project: ProjectFactory, values: dict[str, object], pointer: str, expected: str
) -> None:
    project = azinfer_project(EXAMPLE, parameters=values)
    with pytest.raises(ProjectFileError) as info:
        load_project(project)
    assert info.value.path == INFERENCE_PARAMETERS
    assert info.value.pointer == pointer
    assert expected in info.value.expected
    assert str(info.value).startswith(f"{INFERENCE_PARAMETERS}: {pointer}: ")


def test_unknown_parameter_names_the_closest_valid_one(azinfer_project: ProjectFactory) -> None:
    project = azinfer_project(EXAMPLE, parameters={"acaAppNmae": "x"})
    with pytest.raises(ProjectFileError) as info:
        load_project(project)
    assert info.value.pointer == "/parameters"
    assert "unknown field 'acaAppNmae'" in str(info.value)
    assert "did you mean 'acaAppName'?" in str(info.value)


def test_missing_value_key(azinfer_project: ProjectFactory) -> None:
    project = azinfer_project(EXAMPLE, parameters='{"parameters": {"acaAppName": {"val": "x"}}}')
    with pytest.raises(ProjectFileError) as info:
        load_project(project)
    assert info.value.pointer == "/parameters/acaAppName"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{", "expected JSON: Expecting property name enclosed in double quotes at line 1, column 2"),
        (b'{"parameters": {}, "parameters": {}}', "duplicate key 'parameters'"),
        (b'{"parameters": {"maximumInstanceCount": {"value": NaN}}}', "NaN is not valid JSON"),
        (b"\xff\xfe", "expected UTF-8 text"),
        (b"[]", "expected an object, got an array"),
    ],
)
def test_malformed_files(azinfer_project: ProjectFactory, content: bytes, expected: str) -> None:
    project = azinfer_project(EXAMPLE, parameters=content)
    with pytest.raises(ProjectFileError) as info:
        load_project(project)
    assert expected in str(info.value)


def test_not_a_project(tmp_path: Path) -> None:
    with pytest.raises(ProjectFileError, match="expected an AI Toolkit project folder"):
        load_project(tmp_path)


def test_absent_files_are_fine(tmp_path: Path) -> None:
    (tmp_path / "infra").mkdir()
    loaded = load_project(tmp_path)
    assert loaded.finetuning_config is None and loaded.finetuning_parameters is None
    assert loaded.inference_parameters.maximum_instance_count == 2


def test_hand_filled_config_loads(tmp_path: Path) -> None:
    path = tmp_path / "inference.config.json"
    path.write_text(json.dumps({
        "SUBSCRIPTION_ID": "8a3f1d2e-4b5c-4d6e-9f70-1a2b3c4d5e6f", "RESOURCE_GROUP_NAME": "rg",
        "STORAGE_ACCOUNT_NAME": "mystorage", "FILE_SHARE_NAME": "myshare", "ACA_APP_NAME": "myapp",
        "ACA_APP_ENDPOINT": "https://myapp.nicebeach-1234.westus3.azurecontainerapps.io",
    }))
    config = load_inference_config(path)
    assert config.url == "https://myapp.nicebeach-1234.westus3.azurecontainerapps.io"


def test_config_as_shipped_loads_as_not_provisioned_and_keeps_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "inference.config.json"
    commands = ["cd /mount", "python3 ./inference/gradio_chat.py"]
    path.write_text(json.dumps({key: None for key in CONFIG_KEYS} | {"COMMANDS": commands}))
    config = load_inference_config(path)
    assert not config.provisioned and config.missing == CONFIG_KEYS
    assert dict(config.extra) == {"COMMANDS": commands}
    with pytest.raises(ProjectFileError, match="ACA_APP_ENDPOINT: is null: nothing is provisioned yet"):
        _ = config.url


def test_config_with_a_wrong_owned_value_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "inference.config.json"
    path.write_text(json.dumps({"SUBSCRIPTION_ID": "not-a-guid", "API_KEY": "hunter2"}))
    with pytest.raises(ProjectFileError) as info:
        load_inference_config(path)
    assert "/SUBSCRIPTION_ID" in str(info.value)
    assert "hunter2" not in str(info.value)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=20,
)
_names = st.sampled_from(
    ["defaultCommands", "maximumInstanceCount", "location", "acaAppName", "gpuProfileType", "minReplicas",
     "authentication", "targetPort", "image", "storageAccountName", "bogus"]
)
_parameter_files = st.one_of(
    _json,
    st.fixed_dictionaries({"parameters": st.dictionaries(_names, st.fixed_dictionaries({"value": _json}), max_size=6)}),
    st.fixed_dictionaries({"parameters": st.dictionaries(_names, _json, max_size=6)}),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=_parameter_files)
def test_fuzz_only_project_errors_escape(tmp_path: Path, content: object) -> None:
    path = tmp_path / "inference.parameters.json"
    path.write_text(json.dumps(content))
    try:
        load_inference_parameters(path)
    except ProjectFileError as exc:
        assert str(path) in str(exc)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=200))
def test_fuzz_bytes_only_project_errors_escape(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "inference.parameters.json"
    path.write_bytes(content)
    with pytest.raises(ProjectFileError):
        load_inference_parameters(path)


def _infra(tmp_path: Path) -> Path:
    (tmp_path / "infra" / "provision").mkdir(parents=True)
    return tmp_path / INFERENCE_PARAMETERS


def test_a_fifo_in_place_of_a_file_is_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(_infra(tmp_path))
    with pytest.raises(ProjectFileError, match="expected a regular file, found not a regular file"):
        load_project(tmp_path)


def test_a_device_in_place_of_a_file_is_refused(tmp_path: Path) -> None:
    _infra(tmp_path).symlink_to("/dev/zero")
    with pytest.raises(ProjectFileError, match="expected a regular file"):
        load_project(tmp_path)


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    with _infra(tmp_path).open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)  # sparse: 64 MiB claimed, no disk used
    with pytest.raises(ProjectFileError, match="expected at most 4096 KiB"):
        load_project(tmp_path)


def test_dangling_and_looping_links_are_named(tmp_path: Path) -> None:
    path = _infra(tmp_path)
    path.symlink_to(tmp_path / "gone.json")
    with pytest.raises(ProjectFileError, match="is a dangling link"):
        load_project(tmp_path)
    path.unlink()
    path.symlink_to(path)
    with pytest.raises(ProjectFileError, match="is a link that loops"):
        load_project(tmp_path)


def test_a_missing_folder_a_file_and_a_folder_inside_a_project_each_say_so(
        project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project.parent)
    cases = {
        "project/nope": "expected an AI Toolkit project folder: it does not exist",
        "project/infra/finetuning.config.json": "expected an AI Toolkit project folder: it is a file",
        "project/infra": "expected an AI Toolkit project folder with an infra/ folder "
                         "(it is inside the project project: pass project)",
        "project/infra/provision": "expected an AI Toolkit project folder with an infra/ folder "
                                   "(it is inside the project project: pass project)",
    }
    for folder, expected in cases.items():
        with pytest.raises(ProjectFileError) as info:
            load_project(folder)
        assert str(info.value) == f"{folder}: {expected}"
