"""Rendering: golden files per plan variant, Microsoft's ARM schemas, no drift (Bicep = ARM: test_template_equality)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from arm_schema_check import assert_valid_arm
from rendered_app import deployed_container
from toolkit_projects import REPO

from azinfer import PlanBlockedError, ProjectFileError, plan_project, render
from azinfer.inventory import InMemoryInventory, WorkloadProfile, carried_environment_properties
from azinfer.plan import Plan
from azinfer.project import INFERENCE_PARAMETERS
from azinfer.resources import ResourceKind
from azinfer.testing import EXAMPLE_SUBSCRIPTION, finetuning_inventory, write_project

GOLDEN = Path(__file__).parent / "golden"
PULL_IDENTITY = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pull"
UPDATE_GOLDEN = os.environ.get("AZINFER_UPDATE_GOLDEN") == "1"

# What a customised environment has beyond azinfer's model, as the inventory reader keeps it.
ENVIRONMENT_OWN_SETTINGS = {
    "identity": {"type": "UserAssigned", "userAssignedIdentities": {
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/env-id": {}}},
    "properties": carried_environment_properties({
        "vnetConfiguration": {"infrastructureSubnetId": "/subscriptions/s/resourceGroups/rg/providers/"
                                                        "Microsoft.Network/virtualNetworks/vnet/subnets/aca",
                              "internal": True},
        "zoneRedundant": True,
        "peerAuthentication": {"mtls": {"enabled": True}},
        "customDomainConfiguration": {"dnsSuffix": "apps.contoso.com", "certificatePassword": "hunter2"},
        "daprAIInstrumentationKey": "also-secret",
    }),
}


def _customised_environment() -> InMemoryInventory:
    """The fine-tuning group, its environment in a VNet, zone-redundant, with an identity and a custom domain."""
    inventory = finetuning_inventory()
    [env] = inventory.list(ResourceKind.ENVIRONMENT.arm_type)
    return inventory.with_resources([replace(env, unmodeled=ENVIRONMENT_OWN_SETTINGS)])


VARIANTS: dict[str, tuple[dict[str, Any], InMemoryInventory]] = {
    "all-new": ({}, InMemoryInventory()),
    "reuse-all-but-app": ({}, finetuning_inventory()),
    "custom-names": (
        {"acaEnvironmentName": "my-env", "acaAppName": "my-app", "acaEnvironmentStorageName": "my-mount",
         "acaLogAnalyticsName": "my-logs", "storageAccountName": "mystore", "fileShareName": "myshare",
         "location": "westus3"},
        InMemoryInventory(),
    ),
    "serverless-t4": ({"gpuProfileType": "Consumption-GPU-NC8as-T4", "maxReplicas": 2}, InMemoryInventory()),
    "serverless-reused-env": (
        {"gpuProfileType": "Consumption-GPU-NC24-A100", "authentication": "none"},
        finetuning_inventory(workload_profiles=(WorkloadProfile("Consumption", "Consumption"),
                                       WorkloadProfile("a100", "Consumption-GPU-NC24-A100"))),
    ),
    "dedicated-new-share": ({"fileShareName": "newshare", "acaEnvironmentStorageName": "newmount"}, finetuning_inventory()),
    # The reused environment gets a serverless profile added and keeps its own: it is updated.
    "serverless-added-to-env": ({"gpuProfileType": "Consumption-GPU-NC8as-T4"}, finetuning_inventory()),
    # The same, to an environment with settings of its own: the update writes them back.
    "serverless-added-to-customised-env": ({"gpuProfileType": "Consumption-GPU-NC8as-T4"}, _customised_environment()),
    # A start command the user wrote: probes on its port.
    "user-start-command": ({"defaultCommands": ["cd /mount/app", "python3 -m http.server 7860"]}, InMemoryInventory()),
    # The image imported into the user's registry, pulled with a managed identity (docs/parameters.md#images).
    "registry-identity": ({"image": "myacr.azurecr.io/vllm/vllm-openai:v0.32.0-cu129",
                           "registryServer": "myacr.azurecr.io", "registryIdentity": PULL_IDENTITY},
                          finetuning_inventory()),
    # Docker Hub with an account: the password is a secure parameter, never in the parameters file.
    "registry-password": ({"registryServer": "docker.io", "registryUsername": "me"}, InMemoryInventory()),
}


def _plan(tmp_path: Path, variant: str) -> Plan:
    params, inventory = VARIANTS[variant]
    return plan_project(write_project(tmp_path, parameters=params or None), inventory=inventory)


@pytest.mark.parametrize("variant", VARIANTS)
def test_golden(tmp_path: Path, variant: str) -> None:
    rendered = render(_plan(tmp_path, variant))
    folder = GOLDEN / variant
    if UPDATE_GOLDEN:
        rendered.write(folder)
    for name, text in rendered.files().items():
        assert (folder / name).read_text() == text, f"{variant}/{name} differs from the golden file"


@pytest.mark.parametrize("variant", VARIANTS)
def test_arm_template_matches_microsofts_schemas(tmp_path: Path, variant: str) -> None:
    assert_valid_arm(render(_plan(tmp_path, variant)))


def test_reused_resources_are_never_declared(tmp_path: Path) -> None:
    template = render(_plan(tmp_path, "reuse-all-but-app")).template
    assert [r["type"] for r in template["resources"]] == ["Microsoft.App/containerApps"]
    existing = {r["type"] for r in template["metadata"]["azinfer"]["existing"]}
    assert existing == {"Microsoft.App/managedEnvironments"}
    app = template["resources"][0]
    assert "dependsOn" not in app
    assert app["properties"]["workloadProfileName"] == "GPU"  # the reused environment's own profile


def test_outputs_are_exactly_the_config_keys_and_secrets_stay_in_arm(tmp_path: Path) -> None:
    rendered = render(_plan(tmp_path, "all-new"))
    template = rendered.template
    assert sorted(template["outputs"]) == sorted(
        ["SUBSCRIPTION_ID", "RESOURCE_GROUP_NAME", "STORAGE_ACCOUNT_NAME", "FILE_SHARE_NAME", "ACA_APP_NAME",
         "ACA_APP_ENDPOINT"]
    )
    # The key has no default: every deployment passes it, none can rotate it by leaving it out.
    assert template["parameters"]["apiKey"] == {
        "type": "securestring", "metadata": template["parameters"]["apiKey"]["metadata"]}
    assert "apiKey" not in rendered.parameter_values
    text = rendered.arm
    assert "listKeys(resourceId('Microsoft.Storage/storageAccounts'" in text
    assert "primarySharedKey" in text
    env = next(r for r in template["resources"] if r["type"] == "Microsoft.App/managedEnvironments")
    assert env["properties"]["appLogsConfiguration"]["logAnalyticsConfiguration"]["sharedKey"].startswith("[listKeys(")


def test_probes_use_health_endpoints(tmp_path: Path) -> None:
    container = deployed_container(render(_plan(tmp_path, "all-new")))
    probes = {p["type"]: p["httpGet"]["path"] for p in container["probes"]}
    assert probes == {"Startup": "/health", "Liveness": "/health", "Readiness": "/ready"}


def test_a_hand_deployment_with_other_commands_gets_probes_that_fit_them(tmp_path: Path) -> None:
    stock = ["cd /mount", "pip install -r ./setup/requirements.txt", "cd /mount/inference", "python3 ./gradio_chat.py"]
    container = deployed_container(render(_plan(tmp_path, "all-new")), defaultCommands=stock)
    assert container["command"] == ["/bin/bash", "-c", "; ".join(stock)]
    assert all("tcpSocket" in p and "httpGet" not in p for p in container["probes"])


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    first = render(_plan(tmp_path, "custom-names"))
    second = render(_plan(tmp_path, "custom-names"))
    assert first == second


def test_blocked_plan_is_not_rendered(tmp_path: Path) -> None:
    plan = plan_project(write_project(tmp_path), inventory=finetuning_inventory(shared_key_access=False))
    with pytest.raises(PlanBlockedError) as info:
        render(plan)
    assert info.value.problems == plan.problems


def test_rendered_parameters_round_trip_as_project_parameters(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "custom-names")
    rendered = render(plan)
    out = tmp_path / "out"
    rendered.write(out)
    (tmp_path / INFERENCE_PARAMETERS).write_text((out / "inference.parameters.json").read_text())
    again = plan_project(tmp_path, inventory=InMemoryInventory())
    assert {k: v.value for k, v in again.inputs.names.items()} == {k: v.value for k, v in plan.inputs.names.items()}
    assert render(again) == rendered


def test_repository_infra_is_the_default_plan(tmp_path: Path) -> None:
    """infra/provision/ in the repository is the rendering of the default plan; this fails when they drift."""
    (tmp_path / "infra").mkdir()
    plan = plan_project(tmp_path, subscription_id=EXAMPLE_SUBSCRIPTION, resource_group="any")
    rendered = render(plan)
    provision = REPO / "infra" / "provision"
    if UPDATE_GOLDEN:
        (provision / "inference.bicep").write_text(rendered.bicep)
        (provision / "inference.parameters.json").write_text(rendered.parameters)
    assert (provision / "inference.bicep").read_text() == rendered.bicep
    assert (provision / "inference.parameters.json").read_text() == rendered.parameters


def test_an_updated_environment_keeps_its_own_settings_and_no_secret(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "serverless-added-to-customised-env")
    [env] = [r for r in render(plan).template["resources"]
             if r["type"] == ResourceKind.ENVIRONMENT.arm_type]
    assert env["identity"] == ENVIRONMENT_OWN_SETTINGS["identity"]
    properties = env["properties"]
    for key in ("vnetConfiguration", "zoneRedundant", "peerAuthentication"):
        assert properties[key] == ENVIRONMENT_OWN_SETTINGS["properties"][key]
    assert properties["customDomainConfiguration"] == {"dnsSuffix": "apps.contoso.com"}
    assert [p["name"] for p in properties["workloadProfiles"]] == ["Consumption", "GPU", "NC8as-T4"]
    files = "".join(render(plan).files().values())
    assert "hunter2" not in files and "also-secret" not in files
    assert plan.change(ResourceKind.ENVIRONMENT).kept == (
        "identity", "customDomainConfiguration", "peerAuthentication", "vnetConfiguration", "zoneRedundant")


def test_an_inventory_file_with_a_value_no_template_can_hold_is_refused(tmp_path: Path) -> None:
    data = finetuning_inventory().to_json()
    env = next(r for r in data["resources"] if r["type"] == ResourceKind.ENVIRONMENT.arm_type)
    env["unmodeled"] = {"properties": {"zoneRedundant": 1.5}}
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ProjectFileError) as caught:
        InMemoryInventory.load(path)
    assert str(path) in str(caught.value) and "zoneRedundant" in str(caught.value)
