"""azinfer.testing as a user's test suite uses it: builders, one-line plan assertions, the pytest plugin."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from toolkit_projects import EXAMPLE, REPO

from azinfer import (
    ArgumentError,
    InMemoryInventory,
    NamingError,
    ResourceFacts,
    ResourceKind,
    WorkloadProfile,
    load_project,
    plan_project,
)
from azinfer.names import default_name
from azinfer.plan import Action, ProblemCode, WarningCode
from azinfer.project import FINETUNING_CONFIG, INFERENCE_CONFIG, INFERENCE_PARAMETERS
from azinfer.testing import (
    EXAMPLE_RESOURCE_GROUP,
    EXAMPLE_SUBSCRIPTION,
    SHIPPED_FINETUNING_CONFIG,
    SHIPPED_INFERENCE_CONFIG,
    ProjectFactory,
    assert_plan,
    copy_project,
    finetuning_inventory,
    write_project,
)

pytest_plugins = ["pytester"]

K = ResourceKind
RG_ID = f"/subscriptions/{EXAMPLE_SUBSCRIPTION}/resourceGroups/{EXAMPLE_RESOURCE_GROUP}"


def test_the_inventory_is_what_the_examples_finetuning_left() -> None:
    """The bundled example's snapshot of its fine-tuning group is exactly what the builder makes of the project."""
    snapshot = InMemoryInventory.load(EXAMPLE / "inventory.json")
    assert finetuning_inventory(project=EXAMPLE) == snapshot
    assert finetuning_inventory() == snapshot  # the defaults are the example's
    names = {r.type: r.name for r in snapshot.resources}
    assert names["Microsoft.Storage/storageAccounts"] == default_name(K.STORAGE_ACCOUNT, RG_ID)


def test_every_override_reaches_the_plan(tmp_path: Path) -> None:
    project = write_project(tmp_path, parameters={"location": "westus3"})
    inventory = finetuning_inventory(
        names={K.ENVIRONMENT: "team-env", K.STORAGE_ACCOUNT: "teamstore", "fileShare": "models"},
        locations={K.ENVIRONMENT: "eastus"},
        workload_profiles=(WorkloadProfile("Consumption", "Consumption"),),
        shared_key_access=False,
        container_app=True,
        without={K.LOG_ANALYTICS},
        extra=[ResourceFacts("Microsoft.Storage/storageAccounts", "another", "westus3")],
    )
    plan = plan_project(project, inventory=inventory)
    # Names found through the fine-tuning job's environment, as with a real customised fine-tuning run.
    assert plan.inputs.name(K.ENVIRONMENT) == "team-env"
    assert (plan.inputs.name(K.STORAGE_ACCOUNT), plan.inputs.name(K.FILE_SHARE)) == ("teamstore", "models")
    assert_plan(
        plan,
        creates={K.LOG_ANALYTICS},
        reuses={K.STORAGE_ACCOUNT, K.FILE_SHARE, K.ENVIRONMENT_STORAGE},
        updates={K.ENVIRONMENT, K.CONTAINER_APP},  # the serverless GPU profile is added; the app exists
        blocked_by={ProblemCode.REGION_MISMATCH, ProblemCode.SHARED_KEY_DISABLED},
    )
    assert inventory.get("Microsoft.Storage/storageAccounts", "another") is not None


def test_the_inventory_follows_a_projects_own_finetuning(tmp_path: Path) -> None:
    project = write_project(
        tmp_path, subscription_id="11111111-1111-1111-1111-111111111111", resource_group="rg-team-a",
        finetuning_parameters={"acaEnvironmentName": "team-a-env", "location": "swedencentral", "acaJobName": "tune"},
        finetuning_config={"STORAGE_ACCOUNT_NAME": "teamastore"},
    )
    inventory = finetuning_inventory(project=project)
    assert inventory.resource_group_location == "swedencentral"
    assert inventory.get("Microsoft.App/jobs", "tune") is not None
    plan = plan_project(project, inventory=inventory)
    assert plan.inputs.name(K.STORAGE_ACCOUNT) == "teamastore"
    assert_plan(plan, creates={K.CONTAINER_APP}, blocked_by=())


def test_a_project_that_names_no_subscription_needs_one(tmp_path: Path) -> None:
    project = write_project(tmp_path, subscription_id=None)
    with pytest.raises(ArgumentError, match=r"finetuning_inventory\(\): project: .*SUBSCRIPTION_ID"):
        finetuning_inventory(project=project)
    assert finetuning_inventory(project=project, subscription_id=EXAMPLE_SUBSCRIPTION) == finetuning_inventory()


def test_written_project_loads_as_the_toolkit_lays_it_out(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", parameters={"acaAppName": "my-app", "location": None},
                         inference_config=SHIPPED_INFERENCE_CONFIG)
    data = json.loads((root / INFERENCE_PARAMETERS).read_text())
    assert data["parameters"] == {"acaAppName": {"value": "my-app"}, "location": {"value": None}}
    assert data["contentVersion"] == "1.0.0.0"
    loaded = load_project(root)
    assert loaded.inference_parameters.names[K.CONTAINER_APP] == "my-app"
    assert loaded.finetuning_config is not None
    assert (loaded.finetuning_config.subscription_id, loaded.finetuning_config.resource_group) == (
        EXAMPLE_SUBSCRIPTION, EXAMPLE_RESOURCE_GROUP)
    assert loaded.inference_config is not None and not loaded.inference_config.provisioned


def test_shipped_configs_plan_only_with_subscription_and_group_given(tmp_path: Path) -> None:
    root = write_project(tmp_path, finetuning_config=SHIPPED_FINETUNING_CONFIG, inference_config=SHIPPED_INFERENCE_CONFIG)
    assert json.loads((root / FINETUNING_CONFIG).read_text()) == dict(SHIPPED_FINETUNING_CONFIG)
    plan = plan_project(root, subscription_id=EXAMPLE_SUBSCRIPTION, resource_group=EXAMPLE_RESOURCE_GROUP)
    assert_plan(plan, creates=set(K), blocked_by=())


def test_text_and_bytes_are_written_exactly(tmp_path: Path) -> None:
    root = write_project(tmp_path, subscription_id=None, resource_group=None, parameters=b"{\r\n}",
                         inference_config='{"COMMANDS": []}')
    assert (root / INFERENCE_PARAMETERS).read_bytes() == b"{\r\n}"
    assert (root / INFERENCE_CONFIG).read_text() == '{"COMMANDS": []}'
    assert not (root / FINETUNING_CONFIG).exists()


def test_copy_changes_only_what_is_given_and_never_the_original(tmp_path: Path) -> None:
    before = {p: p.read_bytes() for p in EXAMPLE.rglob("*") if p.is_file()}
    root = copy_project(EXAMPLE, tmp_path / "copy", parameters={"gpuProfileType": "Consumption-GPU-NC8as-T4"})
    assert {p: p.read_bytes() for p in EXAMPLE.rglob("*") if p.is_file()} == before
    params = json.loads((root / INFERENCE_PARAMETERS).read_text())["parameters"]
    original = json.loads((EXAMPLE / INFERENCE_PARAMETERS).read_text())["parameters"]
    assert params == original | {"gpuProfileType": {"value": "Consumption-GPU-NC8as-T4"}}
    assert (root / FINETUNING_CONFIG).read_bytes() == (EXAMPLE / FINETUNING_CONFIG).read_bytes()
    with pytest.raises(ArgumentError, match=r"copy_project\(\): root: expected a folder that does not exist yet or is empty"):
        copy_project(EXAMPLE, root)


def test_a_mapping_cannot_update_a_file_that_holds_no_object(tmp_path: Path) -> None:
    root = write_project(tmp_path, parameters="[]")
    with pytest.raises(ArgumentError, match=r"write_project\(\): parameters: expected text or bytes to replace"):
        write_project(root, parameters={"acaAppName": "x"})


def _blocked_plan(tmp_path: Path) -> Any:
    return plan_project(write_project(tmp_path), inventory=finetuning_inventory(shared_key_access=False))


def test_assert_plan_passes_when_the_plan_matches(tmp_path: Path) -> None:
    plan = _blocked_plan(tmp_path)
    assert_plan(plan, creates={K.CONTAINER_APP}, reuses=set(K) - {K.CONTAINER_APP}, updates=(),
                blocked_by={ProblemCode.SHARED_KEY_DISABLED}, warns=())
    assert_plan(plan, actions={K.STORAGE_ACCOUNT: Action.REUSE, "containerApp": {"create", Action.UPDATE}})
    assert_plan(plan)  # nothing asked, nothing checked


def test_assert_plan_names_every_difference_and_shows_the_plan(tmp_path: Path) -> None:
    plan = _blocked_plan(tmp_path)
    with pytest.raises(AssertionError) as info:
        assert_plan(plan, creates={K.STORAGE_ACCOUNT, K.CONTAINER_APP}, blocked_by=(),
                    actions={K.ENVIRONMENT: Action.UPDATE}, warns={WarningCode.COLD_START})
    message = str(info.value)
    assert "- creates: expected {STORAGE_ACCOUNT, CONTAINER_APP}, got {CONTAINER_APP} (missing {STORAGE_ACCOUNT})" in message
    assert "- blocked_by: expected nothing, got {SHARED_KEY_DISABLED}" in message
    assert "- actions[ENVIRONMENT]: expected update, got reuse (Container Apps environment 'aienv27vsy': it exists" in message
    assert "- warns: expected {COLD_START}, got nothing" in message
    assert message.endswith(plan.to_text())


BAD_CALLS = {
    "finetuning_inventory project": (lambda: finetuning_inventory(project=3), "finetuning_inventory(): project: expected a path"),
    "finetuning_inventory no project": (lambda: finetuning_inventory(project="/nonexistent"), "project: expected an AI Toolkit project folder"),
    "finetuning_inventory subscription": (lambda: finetuning_inventory(subscription_id=5), "subscription_id: expected a string or None, got int 5"),
    "finetuning_inventory empty group": (lambda: finetuning_inventory(resource_group=""), "resource_group: expected a non-empty string"),
    "finetuning_inventory location": (lambda: finetuning_inventory(location=["westus3"]), "location: expected a string or None"),
    "finetuning_inventory names": (lambda: finetuning_inventory(names=["aienv"]), "names: expected a mapping"),
    "finetuning_inventory names key": (lambda: finetuning_inventory(names={"env": "x"}), "names key: expected a ResourceKind (one of 'storageAccount'"),
    "finetuning_inventory name value": (lambda: finetuning_inventory(names={K.ENVIRONMENT: None}), "names[environment]: expected a string, got NoneType None"),
    "finetuning_inventory locations": (lambda: finetuning_inventory(locations={K.ENVIRONMENT: 1}), "locations[environment]: expected a string"),
    "finetuning_inventory profiles": (lambda: finetuning_inventory(workload_profiles="GPU"), "workload_profiles: expected a sequence of WorkloadProfile"),
    "finetuning_inventory profile": (lambda: finetuning_inventory(workload_profiles=[{"name": "GPU"}]), "workload_profiles[0]: expected a WorkloadProfile"),
    "finetuning_inventory shared key": (lambda: finetuning_inventory(shared_key_access="no"), "shared_key_access: expected a bool or None"),
    "finetuning_inventory job": (lambda: finetuning_inventory(job_name=1), "job_name: expected a string or None"),
    "finetuning_inventory app": (lambda: finetuning_inventory(container_app=1), "container_app: expected a bool, got int 1"),
    "finetuning_inventory without": (lambda: finetuning_inventory(without="environment"), "without: expected a collection of ResourceKind"),
    "finetuning_inventory extra": (lambda: finetuning_inventory(extra=[{"type": "x"}]), "extra[0]: expected a ResourceFacts"),
    "finetuning_inventory one extra": (lambda: finetuning_inventory(extra=ResourceFacts("t", "n")), "extra: expected an iterable of ResourceFacts"),
    "write_project root": (lambda: write_project(None), "write_project(): root: expected a path"),
    "write_project subscription": (lambda: write_project("x", subscription_id=1), "subscription_id: expected a string or None"),
    "write_project parameters": (lambda: write_project("x", parameters=[1]), "parameters: expected a mapping, str, bytes or None"),
    "write_project parameter name": (lambda: write_project("x", parameters={1: 2}), "parameters key: expected a string, got int 1"),
    "write_project config": (lambda: write_project("x", inference_config=3), "inference_config: expected a mapping, str, bytes or None"),
    "copy_project source": (lambda: copy_project(b"x", "y"), "copy_project(): source: expected a path"),
    "copy_project no project": (lambda: copy_project(REPO / "docs", "y"), "source: expected an AI Toolkit project folder"),
    "copy_project root": (lambda: copy_project(EXAMPLE, 7), "root: expected a path"),
    "copy_project into itself": (lambda: copy_project(EXAMPLE, EXAMPLE / "copy"), "root: expected a folder outside"),
    "copy_project file": (lambda: copy_project(EXAMPLE, "y", finetuning_config=1), "finetuning_config: expected a mapping"),
    "ProjectFactory base": (lambda: ProjectFactory(3), "ProjectFactory(): base: expected a path"),
    "ProjectFactory keyword": (lambda: ProjectFactory("f")(paramters={}), "ProjectFactory(): paramters: expected one of the keywords"),
    "ProjectFactory copy keyword": (lambda: ProjectFactory("f")(EXAMPLE, resource_group="rg"),
                                    "resource_group: expected one of the keywords parameters, finetuning_parameters"),
    "assert_plan plan": (lambda: assert_plan({"summary": {}}), "assert_plan(): plan: expected a Plan"),
    "assert_plan creates": (lambda: assert_plan(PLAN, creates=K.CONTAINER_APP), "creates: expected a collection of ResourceKind"),
    "assert_plan kind": (lambda: assert_plan(PLAN, reuses={"storage"}), "reuses item: expected a ResourceKind"),
    "assert_plan two actions": (lambda: assert_plan(PLAN, creates={K.CONTAINER_APP}, updates={K.CONTAINER_APP}),
                                "updates: expected kinds no other action names (CONTAINER_APP is also in creates)"),
    "assert_plan actions": (lambda: assert_plan(PLAN, actions=[K.CONTAINER_APP]), "actions: expected a mapping"),
    "assert_plan action": (lambda: assert_plan(PLAN, actions={K.CONTAINER_APP: "deploy"}), "actions[CONTAINER_APP]: expected an Action"),
    "assert_plan problem": (lambda: assert_plan(PLAN, blocked_by={K.CONTAINER_APP}), "blocked_by item: expected a ProblemCode"),
    "assert_plan warning": (lambda: assert_plan(PLAN, warns={"cold"}), "warns item: expected a WarningCode"),
}
PLAN = plan_project(EXAMPLE)


@pytest.mark.parametrize("case", BAD_CALLS, ids=list(BAD_CALLS))
def test_bad_arguments_name_the_function_and_argument(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative roots land here, never in the repository
    call, message = BAD_CALLS[case]
    with pytest.raises(ArgumentError) as info:
        call()
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)
    assert not list(tmp_path.iterdir()), "nothing is written when an argument is wrong"


def test_a_name_breaking_azures_rule_is_a_naming_error() -> None:
    with pytest.raises(NamingError, match=r"invalid storage account name 'Team_Store' \(from finetuning_inventory\(\) names\[storageAccount\]\)"):
        finetuning_inventory(names={K.STORAGE_ACCOUNT: "Team_Store"})


def _modules_after(code: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", code + "; import json, sys; print(json.dumps(sorted(sys.modules)))"],
                            capture_output=True, text=True, check=True, cwd=REPO, timeout=60)
    return json.loads(result.stdout)


def test_imports_stay_apart() -> None:
    assert "pytest" not in _modules_after("import azinfer.testing")
    assert "azinfer.testing" not in _modules_after("import azinfer; azinfer.plan_project")


def test_the_plugin_is_registered_for_pytest() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["pytest11"] == {"azinfer": "azinfer.testing.plugin"}
    assert "azinfer.testing" in pyproject["tool"]["setuptools"]["packages"]


USER_TESTS = '''
from azinfer import ResourceKind, plan_project
from azinfer.testing import assert_plan


def test_example_copy(azinfer_project, finetuning_inventory):
    first = azinfer_project(EXAMPLE, parameters={"acaAppName": "team-a-phi3"})
    second = azinfer_project()
    assert first != second and first.parent == second.parent
    plan = plan_project(first, inventory=finetuning_inventory(project=first))
    assert_plan(plan, creates={ResourceKind.CONTAINER_APP}, blocked_by=())


def test_fails_with_the_plan(azinfer_project, finetuning_inventory):
    plan = plan_project(azinfer_project(), inventory=finetuning_inventory(shared_key_access=False))
    assert_plan(plan, blocked_by=())
'''


def test_the_plugin_gives_a_users_tests_their_fixtures(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # Load the plugin by module, as an uninstalled copy would (an installed one registers it by entry point).
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_user=f"EXAMPLE = {str(EXAMPLE)!r}\n" + USER_TESTS)
    result = pytester.runpytest("-p", "azinfer.testing.plugin", "-q")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*- blocked_by: expected nothing, got {SHARED_KEY_DISABLED}*",
        "*x storageAccount: storage account 'aistorage27vsy' has shared-key access disabled*",
    ])
    assert "assertions.py" not in result.stdout.str(), "the failure points at the user's line"


def test_a_copy_never_writes_through_a_link_into_the_original(tmp_path: Path) -> None:
    shared = tmp_path / "shared.parameters.json"
    shared.write_text(json.dumps({"parameters": {"acaAppName": {"value": "team-app"}}}))
    source = write_project(tmp_path / "source")
    (source / INFERENCE_PARAMETERS).parent.mkdir(parents=True)
    (source / INFERENCE_PARAMETERS).symlink_to(shared)
    copy = copy_project(source, tmp_path / "copy", parameters={"maxReplicas": 2})
    assert json.loads(shared.read_text()) == {"parameters": {"acaAppName": {"value": "team-app"}}}
    assert not (copy / INFERENCE_PARAMETERS).is_symlink()
    assert load_project(copy).inference_parameters.names[K.CONTAINER_APP] == "team-app"
    linked_folder = write_project(tmp_path / "linked", subscription_id=None, resource_group=None)
    (linked_folder / "infra" / "provision").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ArgumentError, match=r"parameters: expected a file inside the project \(.*links out of it\)"):
        write_project(linked_folder, parameters={"maxReplicas": 2})
    assert not (tmp_path / "elsewhere").exists()


def test_a_wrong_file_leaves_the_project_as_it_was(tmp_path: Path) -> None:
    root = write_project(tmp_path, inference_config="[]")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    with pytest.raises(ArgumentError, match="inference_config: expected text or bytes to replace"):
        write_project(root, parameters={"acaAppName": "x"}, inference_config={"ACA_APP_NAME": "x"})
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
