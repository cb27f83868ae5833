"""Table-driven planner tests: (project, inventory) in, actions, reasons, provenance and problems out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from toolkit_projects import EXAMPLE

from azinfer import plan_project
from azinfer.inputs import Source
from azinfer.inventory import InMemoryInventory, ResourceFacts, WorkloadProfile
from azinfer.names import default_name
from azinfer.plan import Action, ProblemCode, Reason
from azinfer.resources import ResourceKind
from azinfer.testing import (
    EXAMPLE_RESOURCE_GROUP,
    EXAMPLE_SUBSCRIPTION,
    ProjectFactory,
    assert_plan,
    finetuning_inventory,
    write_project,
)

K = ResourceKind
RG_ID = f"/subscriptions/{EXAMPLE_SUBSCRIPTION}/resourceGroups/{EXAMPLE_RESOURCE_GROUP}"
ALL_CREATE = {kind: Action.CREATE for kind in ResourceKind}
REUSE_BUT_APP = {kind: Action.REUSE for kind in ResourceKind} | {K.CONTAINER_APP: Action.CREATE}
ONLY_CONSUMPTION = (WorkloadProfile("Consumption", "Consumption"),)


CASES = {
    "offline: everything is created": (
        {}, InMemoryInventory(), ALL_CREATE, []),
    "fine-tuning resource group: five reused, app created": (
        {}, finetuning_inventory(), REUSE_BUT_APP, []),
    "second run: the app is updated, the rest reused": (
        {}, finetuning_inventory(container_app=True),
        REUSE_BUT_APP | {K.CONTAINER_APP: Action.UPDATE}, []),
    "custom names: nothing exists under them": (
        {"acaEnvironmentName": "my-env", "acaAppName": "my-app", "acaEnvironmentStorageName": "my-mount",
         "acaLogAnalyticsName": "my-logs"},
        finetuning_inventory(),
        {K.STORAGE_ACCOUNT: Action.REUSE, K.FILE_SHARE: Action.REUSE, K.LOG_ANALYTICS: Action.CREATE,
         K.ENVIRONMENT: Action.CREATE, K.ENVIRONMENT_STORAGE: Action.CREATE, K.CONTAINER_APP: Action.CREATE},
        []),
    "reused environment without a GPU profile: the serverless one is added": (
        {}, finetuning_inventory(workload_profiles=ONLY_CONSUMPTION),
        REUSE_BUT_APP | {K.ENVIRONMENT: Action.UPDATE}, []),
    "serverless profile asked, dedicated one present: the serverless one is added": (
        {"gpuProfileType": "Consumption-GPU-NC8as-T4"}, finetuning_inventory(),
        REUSE_BUT_APP | {K.ENVIRONMENT: Action.UPDATE}, []),
    "dedicated profile asked, the reused environment lacks it": (
        {"gpuProfileType": "NC24-A100"}, finetuning_inventory(workload_profiles=ONLY_CONSUMPTION),
        REUSE_BUT_APP, [ProblemCode.GPU_PROFILE_MISSING]),
    "region mismatch with the reused environment": (
        {"location": "eastus"}, finetuning_inventory(), REUSE_BUT_APP, [ProblemCode.REGION_MISMATCH]),
    "storage account without shared-key access": (
        {}, finetuning_inventory(shared_key_access=False), REUSE_BUT_APP, [ProblemCode.SHARED_KEY_DISABLED]),
    "environment storage bound to another share": (
        {"fileShareName": "othershare"},
        finetuning_inventory(extra=[ResourceFacts(
            "Microsoft.Storage/storageAccounts/fileServices/shares",
            f"{default_name(K.STORAGE_ACCOUNT, RG_ID)}/default/othershare")]),
        REUSE_BUT_APP, [ProblemCode.STORAGE_BOUND_ELSEWHERE]),
    "existing app in another environment": (
        {}, finetuning_inventory(extra=[ResourceFacts(
            "Microsoft.App/containerApps", default_name(K.CONTAINER_APP, RG_ID), "westus3",
            environment_id=f"{RG_ID}/providers/Microsoft.App/managedEnvironments/elsewhere")]),
        REUSE_BUT_APP | {K.CONTAINER_APP: Action.UPDATE}, [ProblemCode.APP_IN_OTHER_ENVIRONMENT]),
    "every problem at once is collected": (
        {"location": "eastus", "gpuProfileType": "NC24-A100"},
        finetuning_inventory(workload_profiles=(), shared_key_access=False),
        REUSE_BUT_APP,
        [ProblemCode.GPU_PROFILE_MISSING, ProblemCode.REGION_MISMATCH, ProblemCode.SHARED_KEY_DISABLED]),
}


@pytest.fixture
def bare_project(tmp_path: Path) -> Path:
    """A project whose fine-tuning config names only subscription and group (names stay default)."""
    return write_project(tmp_path)


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_planner(tmp_path: Path, case: str) -> None:
    params, inventory, actions, problems = CASES[case]
    plan = plan_project(write_project(tmp_path, parameters=params), inventory=inventory)
    by_action = {a: {kind for kind, action in actions.items() if action is a} for a in Action}
    assert_plan(plan, creates=by_action[Action.CREATE], reuses=by_action[Action.REUSE],
                updates=by_action[Action.UPDATE], blocked_by=problems)
    assert plan.blocked == bool(problems)


def test_plan_is_pure_and_deterministic(bare_project: Path) -> None:
    first = plan_project(bare_project, inventory=finetuning_inventory())
    second = plan_project(bare_project, inventory=finetuning_inventory())
    assert first == second
    assert first.to_json_text() == second.to_json_text()


def test_reasons_explain_each_action(bare_project: Path) -> None:
    plan = plan_project(bare_project, inventory=finetuning_inventory(container_app=True))
    assert plan.change(K.STORAGE_ACCOUNT).reason is Reason.EXISTS
    assert plan.change(K.CONTAINER_APP).reason is Reason.OWNED_BY_INFERENCE
    offline = plan_project(bare_project)
    assert offline.change(K.STORAGE_ACCOUNT).reason is Reason.NOT_LOOKED_UP
    looked_up_empty = plan_project(bare_project, inventory=InMemoryInventory())
    assert looked_up_empty.change(K.STORAGE_ACCOUNT).reason is Reason.NOT_FOUND


def test_update_only_when_asked(bare_project: Path) -> None:
    plan = plan_project(bare_project, inventory=finetuning_inventory(), update=[K.LOG_ANALYTICS])
    assert plan.action(K.LOG_ANALYTICS) is Action.UPDATE
    assert plan.change(K.LOG_ANALYTICS).reason is Reason.UPDATE_REQUESTED
    assert plan.action(K.ENVIRONMENT) is Action.REUSE


def test_names_found_through_the_finetuning_job(bare_project: Path) -> None:
    """Customised fine-tuning names are discovered from the job, not guessed from the default rule."""
    custom = finetuning_inventory(
        names={K.ENVIRONMENT: "custom-env", K.ENVIRONMENT_STORAGE: "custom-mount", K.LOG_ANALYTICS: "custom-logs",
               K.STORAGE_ACCOUNT: "customstore", K.FILE_SHARE: "customshare"},
        workload_profiles=(WorkloadProfile("GPU", "NC24-A100"),),
    )
    plan = plan_project(bare_project, inventory=custom)
    got = {c.kind: (c.name.value, c.name.source, c.action) for c in plan.changes}
    assert got[K.ENVIRONMENT] == ("custom-env", Source.INVENTORY, Action.REUSE)
    assert got[K.ENVIRONMENT_STORAGE] == ("custom-mount", Source.INVENTORY, Action.REUSE)
    assert got[K.STORAGE_ACCOUNT] == ("customstore", Source.INVENTORY, Action.REUSE)
    assert got[K.FILE_SHARE] == ("customshare", Source.INVENTORY, Action.REUSE)
    assert got[K.LOG_ANALYTICS] == ("custom-logs", Source.INVENTORY, Action.REUSE)
    assert got[K.CONTAINER_APP][1] is Source.DEFAULT
    assert "fine-tuning job" in plan.change(K.ENVIRONMENT).name.detail
    assert plan.inputs.location.value == "westus3"


def test_provenance_order(azinfer_project: ProjectFactory) -> None:
    """Inference parameters win over the fine-tuning config, which wins over the default rule."""
    project = azinfer_project(EXAMPLE, parameters={"storageAccountName": "mine"})
    plan = plan_project(project)
    assert plan.change(K.STORAGE_ACCOUNT).name.source is Source.INFERENCE_PARAMETERS
    assert plan.change(K.FILE_SHARE).name.source is Source.FINETUNING_CONFIG
    assert plan.change(K.CONTAINER_APP).name.source is Source.DEFAULT
    assert plan.inputs.location.source is Source.FINETUNING_PARAMETERS
    assert plan.inputs.subscription_id.source is Source.FINETUNING_CONFIG
    overridden = plan_project(project, location="northeurope", resource_group="other")
    assert overridden.inputs.location.source is Source.ARGUMENT
    assert overridden.inputs.resource_group.value == "other"


def test_reused_gpu_profile_name_is_the_environments_own(bare_project: Path) -> None:
    inventory = finetuning_inventory(workload_profiles=(WorkloadProfile("my-a100s", "NC24-A100"),))
    plan = plan_project(bare_project, inventory=inventory)
    assert not plan.blocked
    assert plan.gpu_profile_name == "my-a100s"


def test_plan_json_form_is_stable(bare_project: Path) -> None:
    plan = plan_project(bare_project, inventory=finetuning_inventory())
    data = plan.to_json()
    assert data["formatVersion"] == "2"
    assert data["summary"] == {"create": 1, "reuse": 5, "update": 0}
    assert [r["resource"] for r in data["resources"]] == [k.value for k in ResourceKind]
    assert data["resources"][0]["nameSource"] == {
        "source": "inventory",
        "detail": f"storage mounted by environment {default_name(K.ENVIRONMENT, RG_ID)!r}",
    }
    assert data["resources"][-1]["nameSource"] == {
        "source": "default",
        "detail": "'aiacaapp' + first 5 characters of uniqueString(resourceGroup().id)",
    }


def test_plans_are_immutable(bare_project: Path) -> None:
    plan = plan_project(bare_project)
    with pytest.raises(AttributeError):
        plan.problems = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        plan.inputs.names[K.STORAGE_ACCOUNT] = None  # type: ignore[index]
    assert replace(plan, problems=()) == plan


def test_the_http_scale_rule_is_the_engines_batch_capacity_and_says_so(bare_project: Path) -> None:
    import json

    from azinfer.serve.settings import DEFAULT_BATCH_SIZE
    from azinfer.templates import render

    plan = plan_project(bare_project, inventory=finetuning_inventory())
    batch = DEFAULT_BATCH_SIZE
    scale = plan.to_json()["gpu"]["httpScale"]
    assert scale["concurrentRequests"] == batch and "--max-batch-size" in scale["source"]
    assert f"scale: a replica per {batch} concurrent requests" in plan.to_text()
    arm = json.loads(render(plan).arm)
    app = next(r for r in arm["resources"] if r["type"] == "Microsoft.App/containerApps")
    template = json.dumps(app["properties"]["template"])
    # The rule (an expression: only with azinfer's own start); the server's batch is its engine's own
    # (a pinned 16 held vLLM to 16 sequences on a GPU that runs many more).
    assert f"'concurrentRequests', '{batch}'" in template
    assert "AZINFER_MAX_BATCH_SIZE" not in template
