"""``azinfer provision``: plan against what exists, preview (ARM what-if), deploy, write the config file.

The steps: attach to an earlier run's deployment still running, read the
inventory, plan (with preflight's findings), render and validate the
templates, ARM's what-if, ask, put azinfer's server on the share, run the
deployment (each resource's state an event), write ``infra/inference.config.json``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from azinfer.azure import deploy
from azinfer.azure.arm import (
    WhatIf,
    attach,
    deployment_name,
    existing_api_key,
    existing_secret,
    run_deployment,
    validate_deployment,
    what_if,
)
from azinfer.azure.context import AzureContext
from azinfer.azure.events import ConfirmCallback, Emitter, EventCallback, Operation, Question
from azinfer.azure.preflight import preflight_findings, read_preflight_facts
from azinfer.azure.scope import ProjectScope
from azinfer.azure.share import SyncResult
from azinfer.config import config_from_outputs, write_config
from azinfer.errors import AzureError, PlanBlockedError, PreviewOutdatedError
from azinfer.inventory import JOB_TYPE, InMemoryInventory, inventory_differences
from azinfer.plan import Action, Plan, make_plan
from azinfer.project import INFERENCE_CONFIG, INFERENCE_PARAMETERS, Authentication, InferenceConfig
from azinfer.resources import ResourceKind
from azinfer.templates import RenderedTemplates, render, rendered_parameters
from azinfer.templates.inference import REGISTRY_PASSWORD_SECRET

__all__ = ["Preview", "ProvisionResult", "REGISTRY_PASSWORD_ENV", "plan", "preview", "provision"]

REGISTRY_PASSWORD_ENV = "AZINFER_REGISTRY_PASSWORD"
"""Where provision reads the registry's password when the project sets ``registryUsername``."""

# What a plan depends on: the six kinds and the fine-tuning job (its environment names the reused one).
_PLANNED_TYPES = (*(kind.arm_type for kind in ResourceKind), JOB_TYPE)


@dataclass(frozen=True)
class Preview:
    """What a provision would do: the plan, ARM's what-if, and the resource group they were made for.

    Pass it to :meth:`AzureProject.provision` to deploy exactly this plan (as
    Terraform applies a saved plan): it is refused when the resource group no
    longer matches ``inventory``. Holds no secret.
    """

    plan: Plan
    what_if: WhatIf
    inventory: InMemoryInventory

    def to_text(self, *, color: bool = False) -> str:
        """The plan (``color``: with ANSI colours) and ARM's what-if, as ``azinfer provision --preview`` shows them."""
        return self.plan.to_text(color=color) + self.what_if.to_text()


@dataclass(frozen=True)
class ProvisionResult:
    """What a provision did."""

    plan: Plan
    what_if: WhatIf
    deployment: str | None
    """The deployment name, or ``None`` when what-if showed nothing to change and nothing was deployed."""
    config: InferenceConfig
    config_path: Path
    declined: bool = False
    """``confirm`` answered no: nothing was written (``config`` is the file as it was, and was not written)."""
    sync: SyncResult | None = None
    """What the upload of azinfer's server (and a user's start-command project) to the share did."""


def plan(ctx: AzureContext, scope: ProjectScope, inventory: InMemoryInventory) -> Plan:
    """The plan against ``inventory``, with the problems preflight finds."""
    result = make_plan(scope.resolve(inventory), inventory, update=scope.update)
    if result.blocked:
        return result
    problems, warnings = preflight_findings(result, read_preflight_facts(ctx.clients, result))
    return result.with_findings(problems, warnings)


def _prepare(ctx: AzureContext, scope: ProjectScope, plan: Plan) -> tuple[RenderedTemplates, dict[str, Any], str]:
    """The templates, their parameters (with the API key) and the deployment's name, validated by ARM."""
    if plan.blocked:
        raise PlanBlockedError(plan)
    rendered = render(plan)
    parameters = rendered_parameters(plan)["parameters"]
    # The template's apiKey has no default, so that no deployment can rotate it by leaving it out.
    if plan.inputs.parameters.authentication is Authentication.API_KEY:
        # Keep the key clients already use; a new app gets a fresh one.
        parameters["apiKey"] = {"value": existing_api_key(ctx.clients, plan.inputs) or secrets.token_urlsafe(32)}
    else:
        parameters["apiKey"] = {"value": ""}  # authentication none: the template does not use it
    if plan.parameters.registry_username is not None:
        parameters["registryPassword"] = {"value": _registry_password(ctx, plan)}
    name = deployment_name(plan.inputs)
    validate_deployment(ctx.clients, scope.resource_group, name, rendered.template, parameters)
    return rendered, parameters, name


def preview(ctx: AzureContext, scope: ProjectScope, inventory: InMemoryInventory | None) -> Preview:
    """The plan and ARM's what-if for it, and the snapshot they were made for. See :meth:`AzureProject.preview`."""
    inventory = inventory if inventory is not None else ctx.inventory(scope.resource_group)
    planned = plan(ctx, scope, inventory)
    rendered, parameters, name = _prepare(ctx, scope, planned)
    return Preview(planned, what_if(ctx.clients, scope.resource_group, name, rendered.template, parameters), inventory)


def provision(ctx: AzureContext, scope: ProjectScope, preview: Preview | None = None, *,
              confirm: ConfirmCallback | None = None, on_event: EventCallback | None = None) -> ProvisionResult:
    """Deploy a preview (a fresh one when none is given), then write the config. See :meth:`AzureProject.provision`."""
    emit = Emitter(Operation.PROVISION, on_event)
    group = scope.resource_group
    # An earlier run's deployment may still be running (Ctrl-C leaves ARM working): wait for it first.
    attach(ctx, group, deployment_name(scope.base), emit)
    inventory = ctx.inventory(group)
    if preview is None:
        planned = plan(ctx, scope, inventory)
        rendered, parameters, name = _prepare(ctx, scope, planned)
        preview = Preview(planned, what_if(ctx.clients, group, name, rendered.template, parameters), inventory)
    else:
        differences = inventory_differences(preview.inventory, inventory, _PLANNED_TYPES)
        if differences:
            raise PreviewOutdatedError(differences)
        rendered, parameters, name = _prepare(ctx, scope, preview.plan)
    planned, changes = preview.plan, preview.what_if
    if confirm is not None and not confirm(Question(Operation.PROVISION, "Provision these changes?",
                                                    preview.to_text(), preview)):
        return ProvisionResult(planned, changes, None, scope.config(), scope.project.root / INFERENCE_CONFIG,
                               declined=True)
    # azinfer's server goes onto the share before the app exists, so its first start finds it.
    # A share the deployment creates gets it right after (the replica's restarts then find it).
    uploaded = _share_exists(planned)
    sync = deploy.upload(ctx, scope, _planned_config(planned), emit) if uploaded else None
    if changes.writes:
        config = config_from_outputs(run_deployment(ctx, group, name, rendered.template, parameters, emit))
        deployed: str | None = name
    else:
        config = _config_from(planned, inventory)
        deployed = None
    if not uploaded:
        sync = deploy.upload(ctx, scope, config, emit)
    path = write_config(scope.project.root, config)
    return ProvisionResult(planned, changes, deployed, config, path, sync=sync)


def _registry_password(ctx: AzureContext, plan: Plan) -> str:
    """The registry's password: ``AZINFER_REGISTRY_PASSWORD``, else the one the app already holds.

    It goes to ARM as a secure parameter only: never into a file, the plan or an event.

    :raises AzureError: when neither has one (the message says where to put it).
    """
    password = os.environ.get(REGISTRY_PASSWORD_ENV) or existing_secret(ctx.clients, plan.inputs,
                                                                         REGISTRY_PASSWORD_SECRET)
    if not password:
        raise AzureError(f"registryUsername is set in {INFERENCE_PARAMETERS}: put the registry's password or token in "
                         f"the environment variable {REGISTRY_PASSWORD_ENV} (it goes to ARM as a secure parameter, "
                         "never into a file)")
    return password


def _share_exists(plan: Plan) -> bool:
    return all(plan.action(kind) is not Action.CREATE for kind in (ResourceKind.STORAGE_ACCOUNT, ResourceKind.FILE_SHARE))


def _planned_config(plan: Plan) -> InferenceConfig:
    return InferenceConfig(
        subscription_id=plan.inputs.subscription_id.value,
        resource_group=plan.inputs.resource_group.value,
        storage_account_name=plan.inputs.name(ResourceKind.STORAGE_ACCOUNT),
        file_share_name=plan.inputs.name(ResourceKind.FILE_SHARE),
        app_name=plan.inputs.name(ResourceKind.CONTAINER_APP),
    )


def _config_from(plan: Plan, inventory: InMemoryInventory) -> InferenceConfig:
    app = inventory.get(ResourceKind.CONTAINER_APP.arm_type, plan.inputs.name(ResourceKind.CONTAINER_APP))
    if app is None or not app.fqdn:
        raise AzureError("the container app has no ingress FQDN yet; provision again")
    return replace(_planned_config(plan), app_endpoint=app.fqdn)
