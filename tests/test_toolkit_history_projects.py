"""Every version of every AI Toolkit template's infra files, as users have them: plan, render, start.

The data is every distinct version in microsoft/windows-ai-studio-templates'
history (tests/data/toolkit_history). Each must plan as shipped (configs full
of nulls), render templates Microsoft's schemas accept, and render a container
app whose start command and probes fit each other: the toolkit's stock start
(gradio_chat.py, answering only ``/``) is replaced by azinfer's server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from arm_schema_check import assert_valid_arm
from toolkit_history import Version, materialize, versions

from azinfer import ResolutionError, load_project, plan_project, render, write_config
from azinfer.config import config_from_outputs
from azinfer.plan import WarningCode
from azinfer.project import CONFIG_KEYS, INFERENCE_CONFIG
from azinfer.start import StartOrigin, azinfer_commands

SUBSCRIPTION = "8a3f1d2e-4b5c-4d6e-9f70-1a2b3c4d5e6f"
VERSIONS = versions()


def _container(template: dict) -> dict:
    app = next(r for r in template["resources"] if r["type"] == "Microsoft.App/containerApps")
    return app["properties"]["template"]["containers"][0]


@pytest.mark.parametrize("version", VERSIONS, ids=[v.id for v in VERSIONS])
def test_version_plans_renders_valid_arm_and_would_start(version: Version, tmp_path: Path) -> None:
    root = materialize(version, tmp_path)
    shipped = json.loads(version.data("inference.parameters.json"))["parameters"]["defaultCommands"]["value"]
    plan = plan_project(root, subscription_id=SUBSCRIPTION, resource_group="rg-finetune")
    assert not plan.blocked, plan.to_text()
    # The toolkit's stock start is recognised and replaced, and the plan says so.
    assert plan.start.origin is StartOrigin.AZINFER
    assert plan.start.replaced == tuple(shipped)
    assert WarningCode.START_COMMAND_REPLACED in {w.code for w in plan.warnings}
    # A new environment gets the serverless A100 profile, which scales to zero: the plan warns.
    assert plan.gpu.profile_type.value.value == "Consumption-GPU-NC24-A100"
    assert WarningCode.COLD_START in {w.code for w in plan.warnings}

    rendered = render(plan)
    assert_valid_arm(rendered)
    container = _container(rendered.template)
    # The command the parameters file passes is the one whose routes the probes call.
    assert rendered.parameter_values["defaultCommands"]["value"] == list(azinfer_commands())
    assert {p["httpGet"]["path"] for p in container["probes"]} == {"/health", "/ready"}
    assert "gradio_chat.py" not in rendered.parameters + rendered.arm + rendered.bicep


@pytest.mark.parametrize("version", VERSIONS, ids=[v.id for v in VERSIONS])
def test_version_without_subscription_or_group_names_the_options(version: Version, tmp_path: Path) -> None:
    root = materialize(version, tmp_path)
    loaded = load_project(root)
    assert loaded.inference_config is not None and not loaded.inference_config.provisioned
    with pytest.raises(ResolutionError) as info:
        plan_project(root)
    message = str(info.value)
    assert "\n" not in message
    assert "--subscription" in message and "--resource-group" in message


@pytest.mark.parametrize(
    "version", [v for v in VERSIONS if "COMMANDS" in json.loads(v.data("inference.config.json") or b"{}")],
    ids=lambda v: v.id,
)
def test_writing_the_config_keeps_the_toolkits_keys(version: Version, tmp_path: Path) -> None:
    root = materialize(version, tmp_path)
    shipped = json.loads((root / INFERENCE_CONFIG).read_text())
    outputs = {
        "SUBSCRIPTION_ID": SUBSCRIPTION, "RESOURCE_GROUP_NAME": "rg", "STORAGE_ACCOUNT_NAME": "aistorageabcde",
        "FILE_SHARE_NAME": "aifileshareabcde", "ACA_APP_NAME": "aiacaappabcde",
        "ACA_APP_ENDPOINT": "aiacaappabcde.nicebeach-1.westus3.azurecontainerapps.io",
    }
    write_config(root, config_from_outputs(outputs))
    written = json.loads((root / INFERENCE_CONFIG).read_text())
    assert written == shipped | outputs
    assert list(written) == list(shipped)
    assert set(written) - set(CONFIG_KEYS) == {"COMMANDS"}


def test_the_history_holds_every_stock_shape() -> None:
    shapes = {
        tuple(json.loads(v.data("inference.parameters.json"))["parameters"]["defaultCommands"]["value"])
        for v in VERSIONS
    }
    assert len(VERSIONS) >= 97 and len(shapes) >= 5
