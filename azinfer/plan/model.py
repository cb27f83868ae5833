"""The plan's values: actions, reasons, problems, warnings, the GPU choice, and the plan itself.

The plan is an immutable value with a stable JSON form (:meth:`Plan.to_json`);
its text and HTML forms are rendered from that JSON form (:mod:`azinfer.plan.view`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from azinfer._arguments import check_member
from azinfer.inputs import Resolved, ResolvedInputs
from azinfer.inventory import WorkloadProfile
from azinfer.plan.coldstart import ColdStart
from azinfer.plan.cost import Cost
from azinfer.plan.fit import Fit
from azinfer.project import GpuProfileType, InferenceParameters
from azinfer.resources import ResourceKind
from azinfer.serve.settings import DEFAULT_BATCH_SIZE, env_var
from azinfer.start import StartCommand

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
    MODEL_DOES_NOT_FIT = "modelDoesNotFit"
    """The base model's weights and one full-context sequence do not fit the GPU's memory (:mod:`azinfer.plan.fit`)."""


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
    MODEL_FIT_TIGHT = "modelFitTight"
    """The base model fits the GPU with room for fewer full-context sequences than :data:`azinfer.plan.fit.SEQUENCES`."""
    ENVIRONMENT_SECRET_NOT_CARRIED = "environmentSecretNotCarried"
    """An updated environment has a custom domain whose certificate Azure never returns, so the update cannot write it back."""


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
    existing_tags: Mapping[str, str] | None = None
    """The tags of the resource as it exists (``None``: it does not exist)."""
    existing_unmodeled: Mapping[str, Any] = field(default_factory=dict)
    """What the existing resource has beyond what azinfer models (``ResourceFacts.unmodeled``): an update writes it back."""

    @property
    def kept(self) -> tuple[str, ...]:
        """What an update writes back unchanged: ``identity`` and the names of the carried properties."""
        if self.action is not Action.UPDATE:
            return ()
        return (*(["identity"] if "identity" in self.existing_unmodeled else []),
                *sorted(self.existing_unmodeled.get("properties", {})))

    @property
    def resource_type(self) -> str:
        """The ARM resource type."""
        return self.kind.arm_type

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
            **({"keeps": list(self.kept)} if self.kept else {}),
        }


@dataclass(frozen=True)
class HttpScale:
    """The app's HTTP scale rule: ACA adds a replica per ``concurrent_requests`` requests in flight (up to maxReplicas)."""

    concurrent_requests: int
    source: str
    """Where the number came from, for a person."""

    def to_json(self) -> dict[str, Any]:
        """The rule's JSON form."""
        return {"concurrentRequests": self.concurrent_requests, "source": self.source}


@dataclass(frozen=True)
class Plan:
    """What a deployment will do, resource by resource, and what blocks it."""

    inputs: ResolvedInputs
    changes: tuple[ResourceChange, ...]
    problems: tuple[Problem, ...]
    gpu: GpuChoice
    start: StartCommand
    warnings: tuple[PlanWarning, ...] = ()
    fit: Fit | None = None
    """Whether the base model fits the GPU (:mod:`azinfer.plan.fit`)."""
    cost: Cost | None = None
    """What the endpoint costs (:mod:`azinfer.plan.cost`); ``None``: the price table lacks a figure for the profile."""
    cold_start: ColdStart | None = None
    """How long a serverless replica takes to start (:mod:`azinfer.plan.coldstart`); ``None`` on a dedicated profile."""

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
    def http_scale(self) -> HttpScale | None:
        """The HTTP scale rule: a replica per batch of the server's engine; ``None`` when the start is the user's."""
        if not self.start.serves_azinfer:
            return None
        batch = DEFAULT_BATCH_SIZE
        return HttpScale(batch, f"the batched engine's batch (--max-batch-size, default {batch}): a replica is added "
                                "before requests wait for a slot; vLLM on a GPU runs more at once (sized from its KV "
                                "cache), so a replica takes the overflow while the next one starts")

    @property
    def blocked(self) -> bool:
        """Whether problems stop the plan from being applied."""
        return bool(self.problems)

    def change(self, kind: ResourceKind) -> ResourceChange:
        """The change planned for ``kind``.

        :raises ArgumentError: when ``kind`` is no :class:`ResourceKind` (or its value).
        """
        kind = check_member("Plan.change", "kind", kind, ResourceKind)
        return next(c for c in self.changes if c.kind is kind)

    def action(self, kind: ResourceKind) -> Action:
        """The action planned for ``kind``.

        :raises ArgumentError: when ``kind`` is no :class:`ResourceKind` (or its value).
        """
        return self.change(check_member("Plan.action", "kind", kind, ResourceKind)).action

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
                "httpScale": None if self.http_scale is None else self.http_scale.to_json(),
            },
            "start": self.start.to_json(),
            "authentication": params.authentication.value,
            "resources": [c.to_json() for c in self.changes],
            "problems": [p.to_json() for p in self.problems],
            "warnings": [w.to_json() for w in self.warnings],
            "fit": None if self.fit is None else self.fit.to_json(),
            "cost": None if self.cost is None else self.cost.to_json(),
            "coldStart": None if self.cold_start is None else self.cold_start.to_json(),
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
        from azinfer.plan.view import format_text

        return format_text(self.to_json(), color=color)

    def _repr_html_(self) -> str:
        from azinfer.plan.view import format_html

        return format_html(self.to_json())

    def __str__(self) -> str:
        return self.to_text()
