"""Every public function rejects a wrong type or value with azinfer's own error, naming the argument.

One row per (function, wrong argument): the call, the argument the message
must name, and the error expected (:class:`ArgumentError` unless said). No
call reaches Azure: the credential fails the test if anything asks it for a
token, so a missing check shows up as that failure, not as a pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import azinfer
from azinfer import (
    ArgumentError,
    AzinferError,
    InferenceConfig,
    InMemoryInventory,
    ProjectFileError,
    ResourceFacts,
    WorkloadProfile,
    config_from_outputs,
    load_inference_config,
    load_project,
    make_plan,
    plan_project,
    render,
    resolve,
    unique_string,
    write_config,
)
from azinfer.azure import AzureClients, AzureProject, read_inventory, target_for
from azinfer.testing import finetuning_inventory, write_project


class _NoTokens:
    """A ``TokenCredential`` that fails the test when asked for a token: no row may reach Azure."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        pytest.fail(f"an argument check is missing: Azure was asked for a token ({scopes})")


@dataclass(frozen=True)
class World:
    """What the rows call functions on: a project, its plan and the values around it."""

    root: Path
    inventory: InMemoryInventory
    project: AzureProject
    clients: AzureClients

    @property
    def inputs(self) -> azinfer.ResolvedInputs:
        return resolve(load_project(self.root), self.inventory)

    @property
    def plan(self) -> azinfer.Plan:
        return plan_project(self.root, inventory=self.inventory)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = write_project(tmp_path_factory.mktemp("project"))
    target = target_for(arm_endpoint="https://127.0.0.1:9")  # nothing listens there
    return World(
        root,
        finetuning_inventory(),
        AzureProject(root, credential=_NoTokens(), arm_endpoint="https://127.0.0.1:9"),
        AzureClients(_NoTokens(), "00000000-0000-0000-0000-000000000000", target),
    )


@dataclass(frozen=True)
class Row:
    call: Callable[[World], object]
    argument: str
    error: type[AzinferError] = ArgumentError


ROWS: dict[str, Row] = {
    # azinfer
    "unique_string no part": Row(lambda w: unique_string(), "parts"),
    "unique_string int part": Row(lambda w: unique_string("a", 1), "parts[1]"),  # type: ignore[arg-type]
    "load_project int": Row(lambda w: load_project(42), "root"),  # type: ignore[arg-type]
    "load_project empty": Row(lambda w: load_project(""), "root"),
    "load_project not a project": Row(lambda w: load_project(w.root / "infra" / "nowhere"), "nowhere",
                                      ProjectFileError),
    "load_inference_config None": Row(lambda w: load_inference_config(None), "path"),  # type: ignore[arg-type]
    "load_inference_config display": Row(lambda w: load_inference_config(w.root, display=3), "display"),  # type: ignore[arg-type]
    "resolve project": Row(lambda w: resolve(str(w.root)), "project"),  # type: ignore[arg-type]
    "resolve inventory": Row(lambda w: resolve(load_project(w.root), {}), "inventory"),  # type: ignore[arg-type]
    "resolve subscription_id": Row(lambda w: resolve(load_project(w.root), subscription_id=5), "subscription_id"),  # type: ignore[arg-type]
    "resolve resource_group": Row(lambda w: resolve(load_project(w.root), resource_group=" "), "resource_group"),
    "resolve location": Row(lambda w: resolve(load_project(w.root), location=["westus3"]), "location"),  # type: ignore[arg-type]
    "make_plan inputs": Row(lambda w: make_plan(w.root, w.inventory), "inputs"),  # type: ignore[arg-type]
    "make_plan inventory": Row(lambda w: make_plan(w.inputs, w.inventory.to_json()), "inventory"),  # type: ignore[arg-type]
    "make_plan update str": Row(lambda w: make_plan(w.inputs, w.inventory, update="containerApp"), "update"),  # type: ignore[arg-type]
    "make_plan update item": Row(lambda w: make_plan(w.inputs, w.inventory, update=["app"]), "update item"),  # type: ignore[list-item]
    "render plan": Row(lambda w: render(w.plan.to_json()), "plan"),  # type: ignore[arg-type]
    "RenderedTemplates.write folder": Row(lambda w: render(w.plan).write(3), "folder"),  # type: ignore[arg-type]
    "write_config project_root": Row(lambda w: write_config(None, InferenceConfig()), "project_root"),  # type: ignore[arg-type]
    "write_config config": Row(lambda w: write_config(w.root, {"ACA_APP_NAME": "x"}), "config"),  # type: ignore[arg-type]
    "config_from_outputs outputs": Row(lambda w: config_from_outputs([("ACA_APP_NAME", "x")]), "outputs"),  # type: ignore[arg-type]
    "plan_project project_dir": Row(lambda w: plan_project(3), "project_dir"),  # type: ignore[arg-type]
    "plan_project inventory": Row(lambda w: plan_project(w.root, inventory=[]), "inventory"),  # type: ignore[arg-type]
    "plan_project update": Row(lambda w: plan_project(w.root, update=[1]), "update item"),  # type: ignore[list-item]
    "plan_project subscription_id": Row(lambda w: plan_project(w.root, subscription_id=""), "subscription_id"),
    "plan_project location": Row(lambda w: plan_project(w.root, location=3), "location"),  # type: ignore[arg-type]
    "Plan.action kind": Row(lambda w: w.plan.action("app"), "kind"),  # type: ignore[arg-type]
    "Plan.change kind": Row(lambda w: w.plan.change(3), "kind"),  # type: ignore[arg-type]
    "ResolvedInputs.name kind": Row(lambda w: w.inputs.name(None), "kind"),  # type: ignore[arg-type]
    "InMemoryInventory resources str": Row(lambda w: InMemoryInventory("abc"), "resources"),  # type: ignore[arg-type]
    "InMemoryInventory resources item": Row(lambda w: InMemoryInventory(({"type": "t"},)), "resources[0]"),  # type: ignore[arg-type]
    "InMemoryInventory location": Row(lambda w: InMemoryInventory((), 5), "resource_group_location"),  # type: ignore[arg-type]
    "InMemoryInventory offline": Row(lambda w: InMemoryInventory(offline="yes"), "offline"),  # type: ignore[arg-type]
    "InMemoryInventory.load path": Row(lambda w: InMemoryInventory.load(None), "path"),  # type: ignore[arg-type]
    "InMemoryInventory.from_json display": Row(lambda w: InMemoryInventory.from_json({}, display=3), "display"),  # type: ignore[arg-type]
    "InMemoryInventory.from_json data": Row(lambda w: InMemoryInventory.from_json(42), "inventory", ProjectFileError),
    "InMemoryInventory.with_resources": Row(lambda w: w.inventory.with_resources([w.root]), "resources[0]"),  # type: ignore[list-item]
    "ResourceFacts type": Row(lambda w: ResourceFacts(1, "x"), "type"),  # type: ignore[arg-type]
    "ResourceFacts name": Row(lambda w: ResourceFacts("Microsoft.App/containerApps", ""), "name"),
    "ResourceFacts tags": Row(lambda w: ResourceFacts("t", "n", tags=["a"]), "tags"),  # type: ignore[arg-type]
    "ResourceFacts.from_json data": Row(lambda w: ResourceFacts.from_json({"name": "x"}), "data"),
    "WorkloadProfile name": Row(lambda w: WorkloadProfile(None, "Consumption"), "name"),  # type: ignore[arg-type]
    "WorkloadProfile minimum_count": Row(lambda w: WorkloadProfile("a", "D4", "1"), "minimum_count"),  # type: ignore[arg-type]
    "WorkloadProfile.from_json data": Row(lambda w: WorkloadProfile.from_json([]), "data"),  # type: ignore[arg-type]
    # azinfer.azure
    "target_for cloud": Row(lambda w: target_for("mars"), "cloud"),
    "target_for arm_endpoint": Row(lambda w: target_for(arm_endpoint="http://127.0.0.1:9"), "arm_endpoint"),
    "target_for authority_host": Row(lambda w: target_for(authority_host=3), "authority_host"),  # type: ignore[arg-type]
    "AzureClients credential": Row(lambda w: AzureClients("secret", "sub", w.clients.target), "credential"),  # type: ignore[arg-type]
    "AzureClients subscription_id": Row(lambda w: AzureClients(_NoTokens(), "", w.clients.target), "subscription_id"),  # type: ignore[arg-type]
    "AzureClients target": Row(lambda w: AzureClients(_NoTokens(), "sub", "public"), "target"),  # type: ignore[arg-type]
    "read_inventory clients": Row(lambda w: read_inventory(w.project, "rg"), "clients"),  # type: ignore[arg-type]
    "read_inventory resource_group": Row(lambda w: read_inventory(w.clients, ""), "resource_group"),
    "AzureProject project_dir": Row(lambda w: AzureProject(3), "project_dir"),  # type: ignore[arg-type]
    "AzureProject credential": Row(lambda w: AzureProject(w.root, credential="key"), "credential"),  # type: ignore[arg-type]
    "AzureProject cloud": Row(lambda w: AzureProject(w.root, cloud="azure"), "cloud"),
    "AzureProject arm_endpoint": Row(lambda w: AzureProject(w.root, arm_endpoint="http://x"), "arm_endpoint"),
    "AzureProject subscription_id": Row(lambda w: AzureProject(w.root, subscription_id=3), "subscription_id"),  # type: ignore[arg-type]
    "AzureProject update": Row(lambda w: AzureProject(w.root, update=["app"]), "update item"),  # type: ignore[list-item]
    "AzureProject poll_interval": Row(lambda w: AzureProject(w.root, poll_interval=-1), "poll_interval"),
    "AzureProject credential_timeout": Row(lambda w: AzureProject(w.root, credential_timeout="30"),  # type: ignore[arg-type]
                                           "credential_timeout"),
    "AzureProject.plan inventory": Row(lambda w: w.project.plan({}), "inventory"),  # type: ignore[arg-type]
    "AzureProject.preview inventory": Row(lambda w: w.project.preview("inventory.json"), "inventory"),  # type: ignore[arg-type]
    "AzureProject.provision preview": Row(lambda w: w.project.provision(w.plan), "preview"),  # type: ignore[arg-type]
    "AzureProject.provision confirm": Row(lambda w: w.project.provision(confirm=True), "confirm"),  # type: ignore[arg-type]
    "AzureProject.provision on_event": Row(lambda w: w.project.provision(on_event="print"), "on_event"),  # type: ignore[arg-type]
    "AzureProject.deploy adapter": Row(lambda w: w.project.deploy(adapter=3), "adapter"),  # type: ignore[arg-type]
    "AzureProject.deploy delete": Row(lambda w: w.project.deploy(delete="yes"), "delete"),  # type: ignore[arg-type]
    "AzureProject.deploy restart": Row(lambda w: w.project.deploy(restart=1), "restart"),  # type: ignore[arg-type]
    "AzureProject.deploy timeout": Row(lambda w: w.project.deploy(timeout=-1), "timeout"),
    "AzureProject.deploy on_event": Row(lambda w: w.project.deploy(on_event="print"), "on_event"),  # type: ignore[arg-type]
    "AzureProject.deploy canary": Row(lambda w: w.project.deploy(canary="yes"), "canary"),  # type: ignore[call-overload]
    "AzureProject.deploy steps": Row(lambda w: w.project.deploy(canary=True, steps=0), "steps"),
    "AzureProject.deploy step_wait": Row(lambda w: w.project.deploy(canary=True, step_wait=-1), "step_wait"),
    "AzureProject.deploy canary no wait": Row(lambda w: w.project.deploy(canary=True, wait=False), "wait"),
    "AzureProject.rollback timeout": Row(lambda w: w.project.rollback(timeout=-1), "timeout"),
    "AzureProject.rollback on_event": Row(lambda w: w.project.rollback(on_event="print"), "on_event"),  # type: ignore[arg-type]
    "AzureProject.deploy_preview delete": Row(lambda w: w.project.deploy_preview(delete=None), "delete"),  # type: ignore[arg-type]
    "AzureProject.status ask_ready": Row(lambda w: w.project.status(ask_ready="no"), "ask_ready"),  # type: ignore[arg-type]
    "AzureProject.logs tail too many": Row(lambda w: w.project.logs(tail=301), "tail"),
    "AzureProject.logs tail float": Row(lambda w: w.project.logs(tail=2.5), "tail"),  # type: ignore[arg-type]
    "AzureProject.logs follow": Row(lambda w: w.project.logs(follow=1), "follow"),  # type: ignore[arg-type]
    "AzureProject.destroy confirm": Row(lambda w: w.project.destroy(confirm="y"), "confirm"),  # type: ignore[arg-type]
    "AzureProject.up timeout": Row(lambda w: w.project.up(timeout=-1), "timeout"),
    "AzureProject.up confirm": Row(lambda w: w.project.up(confirm="y"), "confirm"),  # type: ignore[arg-type]
    "AzureProject.up on_event": Row(lambda w: w.project.up(on_event="print"), "on_event"),  # type: ignore[arg-type]
    "AzureProject.wait_ready timeout": Row(lambda w: w.project.wait_ready(timeout=float("nan")), "timeout"),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_a_wrong_argument_is_our_error_naming_it(world: World, row: Row) -> None:
    with pytest.raises(AzinferError) as info:
        row.call(world)
    error = info.value
    assert type(error) is row.error, f"{type(error).__name__}: {error}"
    message = str(error)
    assert row.argument in message
    assert "\n" not in message
    if isinstance(error, ArgumentError):
        assert error.argument == row.argument
        assert message.startswith(f"{error.function}(): {row.argument}: expected ")


def test_an_argument_error_is_also_a_type_and_value_error(world: World) -> None:
    """Code that caught TypeError or ValueError before keeps working."""
    with pytest.raises(TypeError):
        unique_string(1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        target_for("mars")


def test_every_public_function_has_a_row() -> None:
    """A public function added later gets a row here (values, enums and errors need none)."""
    import inspect

    import azinfer.azure

    functions = {
        name for module in (azinfer, azinfer.azure) for name in module.__all__
        if inspect.isfunction(getattr(module, name))
    }
    covered = {key.split(" ")[0] for key in ROWS}
    assert functions - covered == set()
