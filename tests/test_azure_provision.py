"""Provisioning against the ARM emulator, through the real SDK clients and credential flow."""

from __future__ import annotations

import _thread
import json
import threading
import time
from pathlib import Path

import pytest
from azure_support import arm_writes, azure_project, make_project, share_writes_outside

from azinfer import (
    AzinferError,
    AzureError,
    AzurePermissionError,
    CredentialError,
    DeploymentFailedError,
    PlanBlockedError,
    PreviewOutdatedError,
)
from azinfer.azure import DeploymentInterrupted, Event, EventKind
from azinfer.plan import Action, ProblemCode, WarningCode
from azinfer.project import INFERENCE_CONFIG
from azinfer.resources import ResourceKind
from azinfer.local.emulator import ArmEmulator, FinetuningGroup, seed_finetuning_group

LOCATION = "westus3"


@pytest.fixture
def emu():
    with ArmEmulator.start() as emulator:
        yield emulator
        assert share_writes_outside(emulator) == []  # provision puts azinfer in .azinfer/ only


@pytest.fixture
def group(emu: ArmEmulator) -> FinetuningGroup:
    return seed_finetuning_group(emu, resource_group="rg-phi3-finetune", location=LOCATION)


def _config(root: Path) -> dict[str, str]:
    return json.loads((root / INFERENCE_CONFIG).read_text())


def test_empty_resource_group_gets_all_six(emu: ArmEmulator, tmp_path: Path) -> None:
    emu.add_resource_group(emu.subscription_id, "rg-empty", LOCATION)
    root = make_project(tmp_path, emu.subscription_id, "rg-empty")
    events: list[Event] = []
    result = azure_project(emu, root).provision(on_event=events.append)
    progress = [e for e in events if e.kind is EventKind.RESOURCE]
    assert result.plan.summary() == {"create": 6, "reuse": 0, "update": 0}
    rg_id = f"/subscriptions/{emu.subscription_id}/resourceGroups/rg-empty"
    for change in result.plan.changes:
        assert emu.state.get(f"{rg_id}/providers/{_id_path(change.resource_type, change.arm_name)}") is not None
    config = _config(root)
    assert config["ACA_APP_NAME"] == result.plan.inputs.name(ResourceKind.CONTAINER_APP)
    assert "https://" + config["ACA_APP_ENDPOINT"] == emu.apps.ingress_url(config["ACA_APP_NAME"])
    assert {p.state for p in progress} >= {"Succeeded"}
    assert {p.resource_type for p in progress} >= {"Microsoft.App/containerApps", "Microsoft.Storage/storageAccounts"}


def _id_path(resource_type: str, arm_name: str) -> str:
    namespace, *types = resource_type.split("/")
    names = arm_name.split("/")
    return namespace + "".join(f"/{t}/{n}" for t, n in zip(types, names))


def test_finetuning_group_reuses_five_and_never_writes_them(emu: ArmEmulator, group: FinetuningGroup,
                                                            tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    result = azure_project(emu, root).provision()
    assert {c.kind: c.action for c in result.plan.changes} == {
        kind: Action.CREATE if kind is ResourceKind.CONTAINER_APP else Action.REUSE for kind in ResourceKind
    }
    for resource_id in group.ids.values():
        assert emu.writes_to(resource_id) == [], resource_id
    app = emu.state.get(f"{group.rg_id}/providers/Microsoft.App/containerApps/aiacaapp{group.suffix}")
    assert app is not None
    assert app.input["properties"]["managedEnvironmentId"].lower() == group.id("environment").lower()
    assert app.input["properties"]["workloadProfileName"] == "GPU"
    assert _config(root)["STORAGE_ACCOUNT_NAME"] == group.storage_account


def test_custom_names_from_the_parameters_file(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    params = {"acaAppName": "phi3-chat", "acaEnvironmentName": "phi3-env", "acaEnvironmentStorageName": "phi3-mount",
              "acaLogAnalyticsName": "phi3-logs"}
    root = make_project(tmp_path, group.subscription_id, group.resource_group, params)
    result = azure_project(emu, root).provision()
    assert result.plan.action(ResourceKind.STORAGE_ACCOUNT) is Action.REUSE
    assert result.plan.action(ResourceKind.ENVIRONMENT) is Action.CREATE
    mount = emu.state.get(f"{group.rg_id}/providers/Microsoft.App/managedEnvironments/phi3-env/storages/phi3-mount")
    assert mount is not None
    assert mount.input["properties"]["azureFile"]["shareName"] == group.file_share
    assert _config(root)["ACA_APP_NAME"] == "phi3-chat"
    assert emu.writes_to(group.id("storage_account")) == []


def test_environment_without_a_gpu_profile_gets_the_serverless_one_and_keeps_its_own(
    emu: ArmEmulator, tmp_path: Path
) -> None:
    own = [{"name": "Consumption", "workloadProfileType": "Consumption"},
           {"name": "D4", "workloadProfileType": "D4", "minimumCount": 1, "maximumCount": 3}]
    group = seed_finetuning_group(emu, resource_group="rg-cpu", location=LOCATION, workload_profiles=own)
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    result = azure_project(emu, root).provision()
    assert result.plan.action(ResourceKind.ENVIRONMENT) is Action.UPDATE
    env = emu.state.get(f"/subscriptions/{group.subscription_id}/resourceGroups/rg-cpu/providers/"
                        f"Microsoft.App/managedEnvironments/{group.environment}")
    profiles = env.input["properties"]["workloadProfiles"]
    assert profiles == [*own, {"name": "NC24-A100", "workloadProfileType": "Consumption-GPU-NC24-A100"}]
    app = next(r for r in emu.state.list(f"/subscriptions/{group.subscription_id}/", "Microsoft.App/containerApps"))
    assert app.input["properties"]["workloadProfileName"] == "NC24-A100"
    # Updated, the fine-tuning environment keeps its own tags: teardown never takes it for azinfer's.
    assert "managed-by" not in (env.input.get("tags") or {})
    emu.state.delete(group.id("job"))  # even once the fine-tuning job is gone
    teardown = azure_project(emu, root).destroy_plan()
    assert ResourceKind.ENVIRONMENT not in {item.kind for item in teardown.deletes}


def test_an_environment_updated_for_a_gpu_profile_keeps_its_identity_vnet_and_settings(
    emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path
) -> None:
    """A deployment replaces a resource whole: what azinfer does not model is read and written back."""
    own = {
        "vnetConfiguration": {"infrastructureSubnetId": f"{group.rg_id}/providers/Microsoft.Network/virtualNetworks/"
                                                        "vnet/subnets/aca", "internal": True},
        "zoneRedundant": True,
        "peerTrafficConfiguration": {"encryption": {"enabled": True}},
        "customDomainConfiguration": {"dnsSuffix": "apps.contoso.com", "certificatePassword": "hunter2"},
    }
    env = emu.state.get(group.id("environment"))
    env.input["identity"] = {"type": "SystemAssigned"}
    env.input["properties"].update(own)
    root = make_project(tmp_path, group.subscription_id, group.resource_group,
                        {"gpuProfileType": "Consumption-GPU-NC8as-T4"})
    result = azure_project(emu, root).provision()
    assert result.plan.action(ResourceKind.ENVIRONMENT) is Action.UPDATE
    assert WarningCode.ENVIRONMENT_SECRET_NOT_CARRIED in {w.code for w in result.plan.warnings}
    written = emu.state.get(group.id("environment")).input
    assert written["identity"] == {"type": "SystemAssigned"}
    for key in ("vnetConfiguration", "zoneRedundant", "peerTrafficConfiguration"):
        assert written["properties"][key] == own[key], key
    assert written["properties"]["customDomainConfiguration"] == {"dnsSuffix": "apps.contoso.com"}
    assert [p["name"] for p in written["properties"]["workloadProfiles"]] == ["Consumption", "GPU", "NC8as-T4"]


def test_dedicated_profile_asked_of_an_environment_without_it_blocks_and_deploys_nothing(
    emu: ArmEmulator, tmp_path: Path
) -> None:
    group = seed_finetuning_group(emu, resource_group="rg-cpu", location=LOCATION,
                                  workload_profiles=[{"name": "Consumption", "workloadProfileType": "Consumption"}])
    root = make_project(tmp_path, group.subscription_id, group.resource_group, {"gpuProfileType": "NC24-A100"})
    with pytest.raises(PlanBlockedError) as info:
        azure_project(emu, root).provision()
    assert [p.code for p in info.value.problems] == [ProblemCode.GPU_PROFILE_MISSING]
    assert not emu.requests_matching("PUT", "*/deployments/*")
    assert not (root / INFERENCE_CONFIG).exists()


def test_no_dedicated_gpu_quota_blocks_counting_nodes(emu: ArmEmulator, tmp_path: Path) -> None:
    emu.add_resource_group(emu.subscription_id, "rg-empty", LOCATION)
    emu.set_usage(LOCATION, "SubscriptionDedicatedNCA100Gpus", current=0, limit=1)
    root = make_project(tmp_path, emu.subscription_id, "rg-empty",
                        {"gpuProfileType": "NC24-A100", "maximumInstanceCount": 2})
    plan = azure_project(emu, root).plan()
    assert [p.code for p in plan.problems] == [ProblemCode.GPU_QUOTA]
    message = plan.problems[0].message
    assert "SubscriptionDedicatedNCA100Gpus" in message and "1 of 1 GPUs left" in message
    assert "needs 2 (maximumInstanceCount)" in message and "Request more" in message
    assert not arm_writes(emu)


def test_serverless_quota_of_a_reused_environment_counts_replicas(
    emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path
) -> None:
    emu.set_usage(LOCATION, "ManagedEnvironmentConsumptionNCA100Gpus", current=1, limit=2)
    root = make_project(tmp_path, group.subscription_id, group.resource_group,
                        {"gpuProfileType": "Consumption-GPU-NC24-A100", "maxReplicas": 2})
    plan = azure_project(emu, root).plan()
    assert [p.code for p in plan.problems] == [ProblemCode.GPU_QUOTA]
    assert "ManagedEnvironmentConsumptionNCA100Gpus" in plan.problems[0].message
    assert "needs 2 (maxReplicas)" in plan.problems[0].message


@pytest.mark.parametrize("row", ["absent", "not applicable"])
def test_unknown_gpu_quota_is_a_warning_with_how_to_check(emu: ArmEmulator, tmp_path: Path, row: str) -> None:
    emu.add_resource_group(emu.subscription_id, "rg-empty", LOCATION)
    if row == "absent":
        emu.set_usage(LOCATION, "SubscriptionDedicatedNCA100Gpus", present=False)
    else:
        emu.set_usage(LOCATION, "SubscriptionDedicatedNCA100Gpus", current=0, limit=0, applicable=False)
    root = make_project(tmp_path, emu.subscription_id, "rg-empty", {"gpuProfileType": "NC24-A100"})
    plan = azure_project(emu, root).plan()
    assert not plan.blocked
    [warning] = [w for w in plan.warnings if w.code is WarningCode.GPU_QUOTA_UNKNOWN]
    assert "az containerapp env list-usages" in warning.message and "SubscriptionNCA100Gpus" in warning.message


def test_new_serverless_environment_has_no_region_quota_row_so_quota_is_unknown(
    emu: ArmEmulator, tmp_path: Path
) -> None:
    emu.add_resource_group(emu.subscription_id, "rg-empty", LOCATION)
    root = make_project(tmp_path, emu.subscription_id, "rg-empty")
    plan = azure_project(emu, root).plan()
    assert plan.gpu.serverless and not plan.blocked
    assert WarningCode.GPU_QUOTA_UNKNOWN in {w.code for w in plan.warnings}


def test_region_without_the_profile_type_and_a_taken_name(emu: ArmEmulator, tmp_path: Path) -> None:
    emu.add_resource_group(emu.subscription_id, "rg-empty", LOCATION)
    emu.location_profile_types[LOCATION] = {"Consumption", "NC24-A100"}
    root = make_project(tmp_path, emu.subscription_id, "rg-empty", {"gpuProfileType": "Consumption-GPU-NC8as-T4",
                                                                    "storageAccountName": "takenname"})
    emu.taken_storage_names.add("takenname")
    plan = azure_project(emu, root).plan()
    assert [p.code for p in plan.problems] == [ProblemCode.GPU_PROFILE_UNAVAILABLE, ProblemCode.NAME_TAKEN]
    assert "does not offer the Consumption-GPU-NC8as-T4 workload profile" in plan.problems[0].message
    assert "region table lists australiaeast" in plan.problems[0].message  # where it is offered


def test_second_run_changes_nothing(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    first = project.provision()
    key = project.api_key()
    emu.clear_requests()
    second = project.provision()
    assert second.deployment is None
    assert second.what_if.writes == ()
    assert arm_writes(emu) == []
    assert second.config == first.config
    assert project.api_key() == key, "the API key survives a second provision"


def test_public_endpoint_deploys_without_a_key(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    """The template's apiKey has no default; with authentication none azinfer passes an unused empty one."""
    root = make_project(tmp_path, group.subscription_id, group.resource_group, {"authentication": "none"})
    project = azure_project(emu, root)
    project.provision()
    app = emu.state.get(f"{group.rg_id}/providers/Microsoft.App/containerApps/aiacaapp{group.suffix}")
    assert app is not None
    assert app.input["properties"]["configuration"]["secrets"] == []
    env = app.input["properties"]["template"]["containers"][0]["env"]
    assert {"name": "AZINFER_INSECURE_NO_AUTH", "value": "true"} in env
    assert not any(e["name"] == "AZINFER_API_KEY" for e in env)


REGISTRY_PASSWORD = "dckr_pat_not-in-any-file-0123456789"


def test_registry_credentials_reach_the_app_and_the_password_no_file(emu: ArmEmulator, group: FinetuningGroup,
                                                                     tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Docker Hub with an account: server and user in the parameters file, the password from the environment."""
    root = make_project(tmp_path, group.subscription_id, group.resource_group,
                        {"registryServer": "docker.io", "registryUsername": "me"})
    project = azure_project(emu, root)
    monkeypatch.delenv("AZINFER_REGISTRY_PASSWORD", raising=False)
    with pytest.raises(AzureError, match="AZINFER_REGISTRY_PASSWORD"):
        project.preview()  # a new app has no password to keep: say where to put it
    monkeypatch.setenv("AZINFER_REGISTRY_PASSWORD", REGISTRY_PASSWORD)
    events: list[str] = []
    result = project.provision(on_event=lambda e: events.append(e.to_text()))
    app = emu.state.get(f"{group.rg_id}/providers/Microsoft.App/containerApps/aiacaapp{group.suffix}")
    assert app is not None
    configuration = app.input["properties"]["configuration"]
    assert configuration["registries"] == [
        {"server": "docker.io", "username": "me", "passwordSecretRef": "azinfer-registry-password"}]
    assert {"name": "azinfer-registry-password", "value": REGISTRY_PASSWORD} in configuration["secrets"]
    written = "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())
    assert REGISTRY_PASSWORD not in written + "".join(events) + result.plan.to_text() + json.dumps(result.plan.to_json())
    # A later run without the variable keeps the app's password (as the API key is kept).
    monkeypatch.delenv("AZINFER_REGISTRY_PASSWORD")
    parameters_file = root / "infra/provision/inference.parameters.json"
    data = json.loads(parameters_file.read_text())
    data["parameters"]["maxReplicas"] = {"value": 2}  # a change, so that the app is deployed again
    parameters_file.write_text(json.dumps(data))
    assert azure_project(emu, root).provision().deployment is not None
    app = emu.state.get(f"{group.rg_id}/providers/Microsoft.App/containerApps/aiacaapp{group.suffix}")
    assert app is not None
    assert {"name": "azinfer-registry-password", "value": REGISTRY_PASSWORD} in app.input["properties"][
        "configuration"]["secrets"]


def test_failed_resource_leaves_the_config_and_the_next_run_converges(emu: ArmEmulator, group: FinetuningGroup,
                                                                      tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    before = json.dumps({"SUBSCRIPTION_ID": group.subscription_id, "RESOURCE_GROUP_NAME": group.resource_group,
                         "STORAGE_ACCOUNT_NAME": group.storage_account, "FILE_SHARE_NAME": group.file_share,
                         "ACA_APP_NAME": "previousapp", "ACA_APP_ENDPOINT": "previousapp.example.io"})
    (root / INFERENCE_CONFIG).write_text(before)  # a config from before must survive a failure
    emu.faults.fail_deployment_resource("aiacaapp*", code="ContainerAppInvalidImage", message="image not found")
    with pytest.raises(DeploymentFailedError) as info:
        azure_project(emu, root).provision()
    assert [(f.resource_type, f.code, f.message) for f in info.value.failures] == [
        ("Microsoft.App/containerApps", "ContainerAppInvalidImage", "image not found")
    ]
    assert "ContainerAppInvalidImage" in str(info.value)
    assert (root / INFERENCE_CONFIG).read_text() == before
    result = azure_project(emu, root).provision()
    assert result.deployment is not None
    assert _config(root)["ACA_APP_NAME"] == f"aiacaapp{group.suffix}"


def test_attaches_to_a_running_deployment_of_the_same_name(emu: ArmEmulator, group: FinetuningGroup,
                                                           tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    held = emu.deployments.hold_running(group.subscription_id, group.resource_group, f"azinfer-aiacaapp{group.suffix}")
    timer = threading.Timer(0.5, lambda: setattr(held, "state", "Succeeded"))
    timer.start()
    try:
        result = azure_project(emu, root).provision()
    finally:
        timer.cancel()
    assert result.deployment == f"azinfer-aiacaapp{group.suffix}"
    deployment_gets = emu.requests_matching("GET", f"*/deployments/{result.deployment}")
    assert len(deployment_gets) >= 2, "it waited on the running deployment before starting its own"


@pytest.mark.usefixtures("sigint_raises")
def test_ctrl_c_leaves_arm_running_and_a_rerun_attaches(emu: ArmEmulator, group: FinetuningGroup,
                                                        tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    name = f"azinfer-aiacaapp{group.suffix}"
    held = emu.deployments.hold_running(group.subscription_id, group.resource_group, name)
    waiting = threading.Event()

    def ctrl_c_while_it_waits() -> None:
        """Ctrl-C once provision polls the held deployment (a fixed delay can land before it, under load)."""
        deadline = time.monotonic() + 30
        while not emu.requests_matching("GET", f"*/deployments/{name}"):
            if waiting.wait(0.02) or time.monotonic() > deadline:
                held.state = "Failed"  # provision never waited: it ends, and the test fails instead of hanging
                return
        _thread.interrupt_main()

    ctrl_c = threading.Thread(target=ctrl_c_while_it_waits, daemon=True)
    ctrl_c.start()
    try:
        with pytest.raises(DeploymentInterrupted) as info:
            azure_project(emu, root).provision()
    finally:
        waiting.set()
        ctrl_c.join(timeout=30)
    assert "Run 'azinfer provision' again to attach" in str(info.value)
    assert held.state == "Running" and not emu.requests_matching("POST", "*/cancel"), "ARM was left running"
    assert not (root / INFERENCE_CONFIG).exists()
    finish = threading.Timer(0.3, lambda: setattr(held, "state", "Succeeded"))
    finish.start()
    azure_project(emu, root).provision()
    assert _config(root)["ACA_APP_NAME"] == f"aiacaapp{group.suffix}"


def test_forbidden_names_the_role_and_scope(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    emu.faults.http_error(403, method="GET", path="*/providers/Microsoft.App/containerApps", count=None,
                          code="AuthorizationFailed")
    with pytest.raises(AzurePermissionError) as info:
        azure_project(emu, root).plan()
    assert info.value.role == "Reader"
    assert info.value.scope == group.rg_id
    assert "'Reader' role on " + group.rg_id in str(info.value)


SDK_FAILURES = {
    "a list keeps answering 500": (lambda emu: emu.faults.http_error(500, method="GET", path="*/managedEnvironments",
                                                                     count=None, code="InternalServerError"),
                                   AzureError, "cannot read the resource group: Azure answered 500"),
    "the connection keeps being reset": (lambda emu: emu.faults.reset(method="GET", path="*/storageAccounts",
                                                                      count=None),
                                         AzureError, "cannot read the resource group: no answer from Azure"),
    "ARM refuses the token": (lambda emu: emu.faults.http_error(401, method="GET", path="*/containerApps", count=None,
                                                                code="InvalidAuthenticationToken"),
                              CredentialError, "Azure did not accept the credential while trying to read the resource"),
}


@pytest.mark.parametrize("failure", SDK_FAILURES)
def test_an_azure_failure_is_one_line_of_our_error(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path,
                                                   failure: str) -> None:
    """Nothing from the Azure SDK escapes: what was being done and what Azure answered, in one line."""
    inject, error, start = SDK_FAILURES[failure]
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    inject(emu)
    with pytest.raises(AzinferError) as info:
        azure_project(emu, root).plan()
    assert type(info.value) is error
    assert str(info.value).startswith(start)
    assert "\n" not in str(info.value) and info.value.__cause__ is None


def test_preflight_that_cannot_read_quotas_says_so(emu: ArmEmulator, tmp_path: Path) -> None:
    emu.add_resource_group(emu.subscription_id, "rg-empty", LOCATION)
    root = make_project(tmp_path, emu.subscription_id, "rg-empty")
    emu.faults.http_error(503, method="GET", path="*/usages", count=None)
    with pytest.raises(AzureError) as info:
        azure_project(emu, root).plan()
    assert str(info.value).startswith("cannot read quotas and regions: Azure answered 503")


FAULTS = {
    "429 on reads": lambda emu: emu.faults.throttle(method="GET", path="*", count=3),
    "500 on the deployment PUT": lambda emu: emu.faults.http_error(500, method="PUT", path="*/deployments/*", count=1),
    "503 on a list": lambda emu: emu.faults.http_error(503, method="GET", path="*/managedEnvironments", count=2),
    "connection reset": lambda emu: emu.faults.reset(method="GET", path="*/storageAccounts", count=1),
    "slow deployment": lambda emu: emu.faults.slow_operation(5, method="PUT", path="*/deployments/*"),
    "slow app operation": lambda emu: emu.faults.slow_operation(5, method="PUT", path="*/containerApps/*"),
    "latency": lambda emu: emu.faults.latency(0.05, count=None),
    "500 on listSecrets": lambda emu: emu.faults.http_error(500, method="POST", path="*/listSecrets", count=1),
    "failed app operation": lambda emu: emu.faults.fail_operation(code="InternalServerError", message="boom",
                                                                   method="PUT", path="*/containerApps/*"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_every_fault_succeeds_or_fails_cleanly(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path,
                                               fault: str) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    FAULTS[fault](emu)
    app_id = f"{group.rg_id}/providers/Microsoft.App/containerApps/aiacaapp{group.suffix}"
    try:
        azure_project(emu, root).provision()
    except DeploymentFailedError as exc:
        assert exc.failures and not (root / INFERENCE_CONFIG).exists()
    else:
        assert _config(root)["ACA_APP_NAME"] == f"aiacaapp{group.suffix}"
    creates = [r for r in emu.requests_matching("PUT", "*/containerApps/*") if r.status in (200, 201)]
    assert len(creates) <= 1, "the app was created twice"
    for resource_id in group.ids.values():
        assert emu.writes_to(resource_id) == []
    emu.faults.clear()
    azure_project(emu, root).provision()
    assert _config(root)["ACA_APP_NAME"] == f"aiacaapp{group.suffix}"
    assert emu.state.get(app_id) is not None


def test_a_preview_is_deployed_as_it_is(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    preview = project.preview()
    assert not arm_writes(emu)
    emu.clear_requests()
    result = project.provision(preview)
    assert result.plan is preview.plan
    # Deploying a saved preview neither plans again nor asks what-if again.
    assert not emu.requests_matching("POST", "*/whatIf*")
    assert _config(root)["ACA_APP_NAME"] == preview.plan.inputs.name(ResourceKind.CONTAINER_APP)


def test_a_preview_of_a_resource_group_that_changed_is_refused(
    emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path
) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    project = azure_project(emu, root)
    preview = project.preview()
    # Someone creates the app meanwhile: the preview planned to create it.
    app = f"aiacaapp{group.suffix}"
    emu.seed({"id": f"{group.rg_id}/providers/Microsoft.App/containerApps/{app}", "location": LOCATION,
              "properties": {"managedEnvironmentId": group.id("environment")}})
    emu.clear_requests()
    with pytest.raises(PreviewOutdatedError) as info:
        project.provision(preview)
    assert info.value.differences == (f"Microsoft.App/containerApps {app!r} appeared",)
    assert "preview again" in str(info.value)
    assert not arm_writes(emu)
    assert not (root / INFERENCE_CONFIG).exists()


def test_an_image_in_your_registry_is_pulled_with_the_named_identity(emu: ArmEmulator, group: FinetuningGroup,
                                                                    tmp_path: Path) -> None:
    identity = (f"/subscriptions/{group.subscription_id}/resourceGroups/{group.resource_group}/providers/"
                "Microsoft.ManagedIdentity/userAssignedIdentities/azinfer-pull")
    root = make_project(tmp_path, group.subscription_id, group.resource_group, {
        "image": "myacr.azurecr.io/vllm/vllm-openai:v0.32.0-cu129", "registryServer": "myacr.azurecr.io",
        "registryIdentity": identity})
    azure_project(emu, root).provision()
    app = emu.state.get(f"{group.rg_id}/providers/Microsoft.App/containerApps/aiacaapp{group.suffix}")
    assert app is not None
    assert app.input["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {identity: {}}}
    configuration = app.input["properties"]["configuration"]
    assert configuration["registries"] == [{"server": "myacr.azurecr.io", "identity": identity}]
    assert [s["name"] for s in configuration["secrets"]] == ["azinfer-api-key"]
