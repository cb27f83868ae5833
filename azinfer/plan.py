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

from azinfer.inputs import Resolved, ResolvedInputs, Source, resource_group_id
from azinfer.inventory import (
    RESOURCE_TYPES,
    Inventory,
    ResourceFacts,
    WorkloadProfile,
    resource_name,
)
from azinfer.names import ResourceKind
from azinfer.project import (
    GPU_SPECS,
    INFERENCE_PARAMETERS,
    Authentication,
    GpuProfileType,
    InferenceParameters,
)
from azinfer.start import StartCommand, decide_start

__all__ = [
    "Action",
    "Reason",
    "ProblemCode",
    "Problem",
    "WarningCode",
    "PlanWarning",
    "GpuChoice",
    "ResourceChange",
    "Plan",
    "make_plan",
    "PLAN_FORMAT_VERSION",
]

PLAN_FORMAT_VERSION = "2"


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
    NOT_LOOKED_UP = "nothing was looked up (offline plan): planned as new"
    ADD_GPU_PROFILE = "it exists without the GPU profile: the serverless GPU profile is added, its profiles kept"
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


class WarningCode(str, Enum):
    """What a plan warns about: it can be applied, but read this first."""

    START_COMMAND_REPLACED = "startCommandReplaced"
    """The AI Toolkit's stock start command is replaced by azinfer's server."""
    USER_START_COMMAND = "userStartCommand"
    """A start command the user wrote runs: authentication and routes are up to that code."""
    COLD_START = "coldStart"
    """A serverless app scales to zero: the first request waits for image pull and model load."""
    NO_AUTHENTICATION = "noAuthentication"
    """The endpoint is public."""
    GPU_QUOTA_UNKNOWN = "gpuQuotaUnknown"
    """Preflight: Azure reports no usable GPU quota row; the deployment may still fail on quota."""


@dataclass(frozen=True)
class PlanWarning:
    """Something the plan can do but the user should know first."""

    code: WarningCode
    message: str

    def to_json(self) -> dict[str, str]:
        """``{"code", "message"}``."""
        return {"code": self.code.value, "message": self.message}


@dataclass(frozen=True)
class GpuChoice:
    """The GPU workload profile the app runs on, and where the choice came from."""

    profile_type: Resolved[GpuProfileType]
    profile_name: str
    add_to_environment: bool = False
    """Whether the (serverless) profile is added to a reused environment."""
    kept_profiles: tuple[WorkloadProfile, ...] = ()
    """An existing environment's profiles: any update of the environment keeps them as they are."""

    def environment_profiles(self) -> tuple[WorkloadProfile, ...]:
        """The workload profiles an update of the existing environment declares: its own, plus the added one."""
        if not self.add_to_environment:
            return self.kept_profiles
        return (*self.kept_profiles, WorkloadProfile(self.profile_name, self.profile_type.value.value))

    @property
    def serverless(self) -> bool:
        """Whether the profile is serverless (scales to zero, billed per second)."""
        return self.profile_type.value.serverless


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
    gpu: GpuChoice
    start: StartCommand
    warnings: tuple[PlanWarning, ...] = ()

    @property
    def gpu_profile_name(self) -> str:
        """The workload profile the app runs on: the reused environment's, or the one created."""
        return self.gpu.profile_name

    @property
    def parameters(self) -> InferenceParameters:
        """The inference parameters with the plan's decisions filled in (start command, GPU profile type).

        The rendered template's defaults and parameters file hold these values.
        """
        params = self.inputs.parameters
        return replace(params, default_commands=self.start.commands, gpu_profile_type=self.gpu.profile_type.value)

    @property
    def min_replicas(self) -> int:
        """``minReplicas``, or its default: 1 on a dedicated profile, 0 (scale to zero) on a serverless one."""
        given = self.inputs.parameters.min_replicas
        if given is not None:
            return given
        return 0 if self.gpu.serverless else 1

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
        """The plan's stable JSON form (``formatVersion`` "2")."""
        inputs = self.inputs
        params = inputs.parameters
        return {
            "formatVersion": PLAN_FORMAT_VERSION,
            "subscriptionId": inputs.subscription_id.to_json(),
            "resourceGroup": inputs.resource_group.to_json(),
            "location": inputs.location.to_json(),
            "finetuningJob": inputs.finetuning_job.to_json(),
            "gpu": {
                "profileType": self.gpu.profile_type.value.value,
                "profileTypeSource": {"source": self.gpu.profile_type.source.value, "detail": self.gpu.profile_type.detail},
                "profileName": self.gpu.profile_name,
                "serverless": self.gpu.serverless,
                "addedToEnvironment": self.gpu.add_to_environment,
                "minReplicas": self.min_replicas,
                "maxReplicas": params.max_replicas,
            },
            "start": self.start.to_json(),
            "authentication": params.authentication.value,
            "resources": [c.to_json() for c in self.changes],
            "problems": [p.to_json() for p in self.problems],
            "warnings": [w.to_json() for w in self.warnings],
            "summary": self.summary(),
            "blocked": self.blocked,
        }

    def with_findings(self, problems: Sequence[Problem] = (), warnings: Sequence[PlanWarning] = ()) -> Plan:
        """A copy of the plan with more problems and warnings (preflight adds the ones only Azure can tell)."""
        return replace(self, problems=(*self.problems, *problems), warnings=(*self.warnings, *warnings))

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


def _choose(
    kind: ResourceKind, facts: ResourceFacts | None, update: Collection[ResourceKind], *, offline: bool
) -> tuple[Action, Reason]:
    """The action for one resource: Terraform's getAction, for our three actions."""
    if facts is None:
        return Action.CREATE, Reason.NOT_LOOKED_UP if offline else Reason.NOT_FOUND
    if kind is ResourceKind.CONTAINER_APP:
        return Action.UPDATE, Reason.OWNED_BY_INFERENCE
    if kind in update:
        return Action.UPDATE, Reason.UPDATE_REQUESTED
    return Action.REUSE, Reason.EXISTS


_GPU_TYPES = {t.value.lower(): t for t in GpuProfileType}
_DEFAULT_GPU = GpuProfileType.CONSUMPTION_NC24_A100
_DEFAULT_GPU_WHY = (
    "default for a new GPU profile: serverless A100 (dedicated GPU capacity is granted only after a support request)"
)


def _choose_gpu(inputs: ResolvedInputs, env: ResourceFacts | None) -> tuple[GpuChoice, Problem | None]:
    """The GPU profile: the one asked for, else the reused environment's, else serverless A100.

    A reused environment lacking a serverless profile gets it added (its other
    profiles kept); a dedicated profile can only come with a new environment.
    """
    wanted = inputs.parameters.gpu_profile_type
    param = f"{INFERENCE_PARAMETERS} /parameters/gpuProfileType/value"
    asked = None if wanted is None else Resolved(wanted, Source.INFERENCE_PARAMETERS, param)
    if env is None:
        chosen = asked or Resolved(_DEFAULT_GPU, Source.DEFAULT, _DEFAULT_GPU_WHY)
        return GpuChoice(chosen, GPU_SPECS[chosen.value].profile_name), None
    profiles = env.workload_profiles or ()
    gpu_profiles = [(p, _GPU_TYPES[p.workload_profile_type.lower()]) for p in profiles
                    if p.workload_profile_type.lower() in _GPU_TYPES]
    env_name = env.name
    if asked is None and gpu_profiles:
        profile, kind = gpu_profiles[0]
        where = f"GPU profile {profile.name!r} of environment {env_name!r}"
        return GpuChoice(Resolved(kind, Source.INVENTORY, where), profile.name, kept_profiles=tuple(profiles)), None
    chosen = asked or Resolved(_DEFAULT_GPU, Source.DEFAULT, _DEFAULT_GPU_WHY)
    match = next((p for p, kind in gpu_profiles if kind is chosen.value), None)
    if match is not None:
        return GpuChoice(chosen, match.name, kept_profiles=tuple(profiles)), None
    name = GPU_SPECS[chosen.value].profile_name
    if chosen.value.serverless and all(p.name.lower() != name.lower() for p in profiles):
        return GpuChoice(chosen, name, add_to_environment=True, kept_profiles=tuple(profiles)), None
    have = ", ".join(f"{p.name} ({p.workload_profile_type})" for p in profiles) or "none"
    how = (
        "dedicated GPU profiles can only be added when an environment is created"
        if not chosen.value.serverless
        else f"a profile named {name!r} of another type is in the way"
    )
    problem = Problem(
        ProblemCode.GPU_PROFILE_MISSING,
        ResourceKind.ENVIRONMENT,
        f"environment {env_name!r} has no {chosen.value.value} workload profile (it has: {have}); {how}. "
        "Set gpuProfileType to a type it has or a serverless one, or set acaEnvironmentName to a new environment.",
    )
    return GpuChoice(chosen, name), problem


def _start_warnings(start: StartCommand) -> list[PlanWarning]:
    if start.replaced is not None:
        return [PlanWarning(WarningCode.START_COMMAND_REPLACED, start.reason)]
    if not start.serves_azinfer:
        return [PlanWarning(
            WarningCode.USER_START_COMMAND,
            "your start command runs instead of azinfer's server: authentication (the API key in the "
            "AZINFER_API_KEY environment variable) and health routes are up to that code; the probes only "
            "check that its port answers",
        )]
    return []


def make_plan(
    inputs: ResolvedInputs,
    inventory: Inventory,
    *,
    update: Collection[ResourceKind] = (),
) -> Plan:
    """Decide, for each resource, whether to create, reuse or update it; the GPU profile; the start command.

    Pure: the same inputs and inventory always give the same plan.

    :param inputs: the resolved inputs (:func:`azinfer.inputs.resolve`).
    :param inventory: what exists in the resource group.
    :param update: reused resources whose template should be applied anyway.
    :returns: the plan; check :attr:`Plan.blocked` before applying it.
    """
    arm_names = _arm_names(inputs)
    facts = {kind: _existing(inventory, kind, arm_names[kind]) for kind in ResourceKind}
    offline = bool(getattr(inventory, "offline", False))
    gpu, gpu_problem = _choose_gpu(inputs, facts[ResourceKind.ENVIRONMENT])
    changes = []
    for kind in ResourceKind:
        action, reason = _choose(kind, facts[kind], update, offline=offline)
        if kind is ResourceKind.ENVIRONMENT and gpu.add_to_environment:
            action, reason = Action.UPDATE, Reason.ADD_GPU_PROFILE
        changes.append(ResourceChange(kind, inputs.names[kind], action, reason, arm_names[kind]))
    problems: list[Problem] = [gpu_problem] if gpu_problem else []
    params = inputs.parameters
    env_name = inputs.name(ResourceKind.ENVIRONMENT)
    start = decide_start(
        params.default_commands, source=f"{INFERENCE_PARAMETERS} /parameters/defaultCommands/value"
    )
    warnings = _start_warnings(start)

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
    plan = Plan(inputs, tuple(changes), tuple(problems), gpu, start)
    return replace(plan, warnings=(*warnings, *_exposure_warnings(plan)))


def _exposure_warnings(plan: Plan) -> list[PlanWarning]:
    """What users of the endpoint meet: cold starts of a scaled-to-zero app, a public endpoint."""
    warnings = []
    if plan.gpu.serverless and plan.min_replicas == 0:
        warnings.append(PlanWarning(
            WarningCode.COLD_START,
            "the app scales to zero (serverless GPU, minReplicas 0): the first request after an idle period "
            "waits for a replica to start (image pull and model load, often minutes), and Container Apps "
            "ingress ends a request after about 240 s, so it may time out; set minReplicas to 1 to keep one "
            "replica warm (billed while it runs)",
        ))
    if plan.inputs.parameters.authentication is Authentication.NONE:
        warnings.append(PlanWarning(
            WarningCode.NO_AUTHENTICATION,
            "authentication is 'none': anyone who knows the URL can use the GPU",
        ))
    return warnings


def _region(location: str) -> str:
    """ARM compares regions without case or spaces ("East US" == "eastus")."""
    return location.replace(" ", "").lower()
