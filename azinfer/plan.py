"""Stage 3: the plan, a pure function of the resolved inputs and the inventory.

For each of the six resources the plan says what will happen and why:

- ``CREATE``: it does not exist; the deployment creates it.
- ``REUSE``: it exists; the deployment refers to it as ``existing`` and never writes it.
- ``UPDATE``: it exists and the deployment applies its template: always for the
  container app (it belongs to inference), for another resource only when asked.

Problems that make the plan unusable (a reused environment without the GPU
profile, a region mismatch, a storage account without shared-key access, an
environment storage bound to another share...) are collected in
``Plan.problems``, all of them, rather than raised one at a time. A plan with
problems is *blocked*.

The plan is an immutable value with a stable JSON form (:meth:`Plan.to_json`);
its text and HTML forms are rendered from that JSON form (see
:mod:`azinfer.plan_view`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from azinfer.inputs import Resolved, ResolvedInputs, resource_group_id
from azinfer.inventory import Inventory, ResourceFacts
from azinfer.project import GPU_SPECS
from azinfer.resources import RESOURCE_TYPES, ResourceKind, resource_name

__all__ = [
    "Action",
    "Reason",
    "ProblemCode",
    "Problem",
    "ResourceChange",
    "Plan",
    "make_plan",
    "PLAN_FORMAT_VERSION",
]

PLAN_FORMAT_VERSION = "1"


class Action(str, Enum):
    """What the deployment does to a resource (maps onto ARM what-if's ChangeType)."""

    CREATE = "create"
    """The resource does not exist; it is created (what-if: Create)."""
    REUSE = "reuse"
    """The resource exists and is referenced as existing, never written (what-if: Ignore)."""
    UPDATE = "update"
    """The resource exists and its template is applied (what-if: Modify or NoChange)."""


class Reason(str, Enum):
    """Why the planner chose an action; exists only to explain the plan."""

    NOT_FOUND = "it was not found in the resource group"
    EXISTS = "it exists: it is referenced as existing and never written"
    OWNED_BY_INFERENCE = "it exists and belongs to inference: its template is applied"
    UPDATE_REQUESTED = "it exists and you asked to update it"


class ProblemCode(str, Enum):
    """Why a plan is blocked."""

    GPU_PROFILE_MISSING = "gpuProfileMissing"
    """The reused environment has no workload profile of the GPU type asked for."""
    REGION_MISMATCH = "regionMismatch"
    """An existing resource the plan depends on is in another region than asked for."""
    SHARED_KEY_DISABLED = "sharedKeyDisabled"
    """The storage account forbids shared-key access, which an Azure Files mount needs."""
    STORAGE_BOUND_ELSEWHERE = "storageBoundElsewhere"
    """The reused environment storage mounts another share than the plan's."""
    APP_IN_OTHER_ENVIRONMENT = "appInOtherEnvironment"
    """The existing container app lives in another environment (an app cannot move)."""
    GPU_PROFILE_UNAVAILABLE = "gpuProfileUnavailable"
    """Preflight: the region does not offer the GPU workload profile type."""
    GPU_QUOTA = "gpuQuota"
    """Preflight: the GPU quota left in the region does not cover the plan."""
    NAME_TAKEN = "nameTaken"
    """Preflight: a globally unique name (the storage account's) is taken elsewhere."""


@dataclass(frozen=True)
class Problem:
    """One thing that stops the plan from being applied."""

    code: ProblemCode
    kind: ResourceKind
    message: str

    def to_json(self) -> dict[str, str]:
        """``{"code", "resource", "message"}``."""
        return {"code": self.code.value, "resource": self.kind.value, "message": self.message}


@dataclass(frozen=True)
class ResourceChange:
    """The plan for one resource: action, reason, name and where the name came from."""

    kind: ResourceKind
    name: Resolved[str]
    action: Action
    reason: Reason
    arm_name: str
    """The ARM name (a child carries its parent: ``account/default/share``)."""

    @property
    def resource_type(self) -> str:
        """The ARM resource type."""
        return RESOURCE_TYPES[self.kind]

    @property
    def written(self) -> bool:
        """Whether the deployment writes this resource."""
        return self.action is not Action.REUSE

    def to_json(self) -> dict[str, Any]:
        """The change's JSON form."""
        return {
            "resource": self.kind.value,
            "title": self.kind.label,
            "type": self.resource_type,
            "name": self.name.value,
            "armName": self.arm_name,
            "action": self.action.value,
            "reason": self.reason.value,
            "nameSource": {"source": self.name.source.value, "detail": self.name.detail},
        }


@dataclass(frozen=True)
class Plan:
    """What a deployment will do, resource by resource, and what blocks it."""

    inputs: ResolvedInputs
    changes: tuple[ResourceChange, ...]
    problems: tuple[Problem, ...]
    gpu_profile_name: str
    """The workload profile the app runs on: the reused environment's, or the one created."""

    @property
    def blocked(self) -> bool:
        """Whether problems stop the plan from being applied."""
        return bool(self.problems)

    def change(self, kind: ResourceKind) -> ResourceChange:
        """The change planned for ``kind``."""
        return next(c for c in self.changes if c.kind is kind)

    def action(self, kind: ResourceKind) -> Action:
        """The action planned for ``kind``."""
        return self.change(kind).action

    def summary(self) -> dict[str, int]:
        """How many resources each action touches: ``{"create": n, "reuse": n, "update": n}``."""
        return {action.value: sum(c.action is action for c in self.changes) for action in Action}

    def to_json(self) -> dict[str, Any]:
        """The plan's stable JSON form (``formatVersion`` "1")."""
        inputs = self.inputs
        params = inputs.parameters
        return {
            "formatVersion": PLAN_FORMAT_VERSION,
            "subscriptionId": inputs.subscription_id.to_json(),
            "resourceGroup": inputs.resource_group.to_json(),
            "location": inputs.location.to_json(),
            "finetuningJob": inputs.finetuning_job.to_json(),
            "gpu": {
                "profileType": params.gpu_profile_type.value,
                "profileName": self.gpu_profile_name,
                "serverless": params.gpu_profile_type.serverless,
                "minReplicas": params.effective_min_replicas,
                "maxReplicas": params.max_replicas,
            },
            "authentication": params.authentication.value,
            "resources": [c.to_json() for c in self.changes],
            "problems": [p.to_json() for p in self.problems],
            "summary": self.summary(),
            "blocked": self.blocked,
        }

    def with_problems(self, problems: Sequence[Problem]) -> Plan:
        """A copy of the plan with more problems (preflight adds the ones only Azure can tell)."""
        return replace(self, problems=(*self.problems, *problems))

    def to_json_text(self) -> str:
        """:meth:`to_json` as indented, key-sorted JSON text."""
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    def to_text(self, *, color: bool = False) -> str:
        """The plan for a person, like a Terraform plan (ANSI colours when ``color``)."""
        from azinfer.plan_view import format_text

        return format_text(self.to_json(), color=color)

    def _repr_html_(self) -> str:
        from azinfer.plan_view import format_html

        return format_html(self.to_json())

    def __str__(self) -> str:
        return self.to_text()


def _existing(inventory: Inventory, kind: ResourceKind, arm_name: str) -> ResourceFacts | None:
    return inventory.get(RESOURCE_TYPES[kind], arm_name)


def _arm_names(inputs: ResolvedInputs) -> dict[ResourceKind, str]:
    account = inputs.name(ResourceKind.STORAGE_ACCOUNT)
    env = inputs.name(ResourceKind.ENVIRONMENT)
    parents = {ResourceKind.FILE_SHARE: account, ResourceKind.ENVIRONMENT_STORAGE: env}
    return {kind: resource_name(kind, inputs.name(kind), parent=parents.get(kind)) for kind in ResourceKind}


def _choose(kind: ResourceKind, facts: ResourceFacts | None, update: Collection[ResourceKind]) -> tuple[Action, Reason]:
    """The action for one resource: Terraform's getAction, for our three actions."""
    if facts is None:
        return Action.CREATE, Reason.NOT_FOUND
    if kind is ResourceKind.CONTAINER_APP:
        return Action.UPDATE, Reason.OWNED_BY_INFERENCE
    if kind in update:
        return Action.UPDATE, Reason.UPDATE_REQUESTED
    return Action.REUSE, Reason.EXISTS


def make_plan(
    inputs: ResolvedInputs,
    inventory: Inventory,
    *,
    update: Collection[ResourceKind] = (),
) -> Plan:
    """Decide, for each resource, whether to create, reuse or update it.

    Pure: the same inputs and inventory always give the same plan.

    :param inputs: the resolved inputs (:func:`azinfer.inputs.resolve`).
    :param inventory: what exists in the resource group.
    :param update: reused resources whose template should be applied anyway.
    :returns: the plan; check :attr:`Plan.blocked` before applying it.
    """
    arm_names = _arm_names(inputs)
    facts = {kind: _existing(inventory, kind, arm_names[kind]) for kind in ResourceKind}
    changes = []
    for kind in ResourceKind:
        action, reason = _choose(kind, facts[kind], update)
        changes.append(ResourceChange(kind, inputs.names[kind], action, reason, arm_names[kind]))
    problems: list[Problem] = []
    params = inputs.parameters
    wanted_type = params.gpu_profile_type

    gpu_profile_name = GPU_SPECS[wanted_type].profile_name
    env = facts[ResourceKind.ENVIRONMENT]
    env_name = inputs.name(ResourceKind.ENVIRONMENT)
    if env is not None:
        match = next(
            (p for p in env.workload_profiles or () if p.workload_profile_type.lower() == wanted_type.value.lower()),
            None,
        )
        if match is not None:
            gpu_profile_name = match.name
        else:
            have = ", ".join(f"{p.name} ({p.workload_profile_type})" for p in env.workload_profiles or ()) or "none"
            how = (
                "dedicated GPU profiles can only be added when an environment is created"
                if not wanted_type.serverless
                else "azinfer does not modify a reused environment"
            )
            problems.append(
                Problem(
                    ProblemCode.GPU_PROFILE_MISSING,
                    ResourceKind.ENVIRONMENT,
                    f"environment {env_name!r} has no {wanted_type.value} workload profile (it has: {have}); {how}. "
                    f"Set gpuProfileType to a type it has, or set acaEnvironmentName to a new environment.",
                )
            )

    location = inputs.location.value
    if location is not None:
        for kind in (ResourceKind.ENVIRONMENT, ResourceKind.CONTAINER_APP):
            existing = facts[kind]
            if existing is not None and existing.location and _region(existing.location) != _region(location):
                problems.append(
                    Problem(
                        ProblemCode.REGION_MISMATCH,
                        kind,
                        f"{kind.label} {inputs.name(kind)!r} is in {existing.location}, but the plan's location is "
                        f"{location} (from {inputs.location.detail}); a container app must be in its environment's "
                        "region. Remove the location or use the existing resource's region.",
                    )
                )

    account = facts[ResourceKind.STORAGE_ACCOUNT]
    if account is not None and account.allow_shared_key_access is False:
        problems.append(
            Problem(
                ProblemCode.SHARED_KEY_DISABLED,
                ResourceKind.STORAGE_ACCOUNT,
                f"storage account {inputs.name(ResourceKind.STORAGE_ACCOUNT)!r} has shared-key access disabled; "
                "an Azure Files mount in Container Apps needs the account key. Enable 'Allow storage account key "
                "access' on the account, or name another storage account.",
            )
        )

    env_storage = facts[ResourceKind.ENVIRONMENT_STORAGE]
    want_account = inputs.name(ResourceKind.STORAGE_ACCOUNT)
    want_share = inputs.name(ResourceKind.FILE_SHARE)
    if env_storage is not None and (
        (env_storage.account_name or "").lower() != want_account.lower()
        or (env_storage.share_name or "").lower() != want_share.lower()
    ):
        problems.append(
            Problem(
                ProblemCode.STORAGE_BOUND_ELSEWHERE,
                ResourceKind.ENVIRONMENT_STORAGE,
                f"environment storage {inputs.name(ResourceKind.ENVIRONMENT_STORAGE)!r} mounts share "
                f"{env_storage.share_name!r} of account {env_storage.account_name!r}, not {want_share!r} of "
                f"{want_account!r}; set acaEnvironmentStorageName to another name.",
            )
        )

    app = facts[ResourceKind.CONTAINER_APP]
    if app is not None and app.environment_id:
        want_env_id = (
            resource_group_id(inputs.subscription_id.value, inputs.resource_group.value)
            + f"/providers/Microsoft.App/managedEnvironments/{env_name}"
        )
        if app.environment_id.lower() != want_env_id.lower():
            problems.append(
                Problem(
                    ProblemCode.APP_IN_OTHER_ENVIRONMENT,
                    ResourceKind.CONTAINER_APP,
                    f"container app {inputs.name(ResourceKind.CONTAINER_APP)!r} runs in {app.environment_id}, "
                    f"not in environment {env_name!r}; an app cannot move. Set acaAppName to another name.",
                )
            )
    return Plan(inputs, tuple(changes), tuple(problems), gpu_profile_name)


def _region(location: str) -> str:
    """ARM compares regions without case or spaces ("East US" == "eastus")."""
    return location.replace(" ", "").lower()
