"""The planner: for each resource, create, reuse or update; the GPU profile; the start command.

:func:`make_plan` is pure: the same inputs and inventory always give the same plan.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import date

from azinfer._arguments import check_members, check_type
from azinfer.errors import ArgumentError
from azinfer.inputs import Resolved, ResolvedInputs, Source
from azinfer.inventory import Inventory, ResourceFacts
from azinfer.plan.checks import PROBLEM_CHECKS, WARNING_CHECKS, fit_problems, region_key
from azinfer.plan.coldstart import estimate_cold_start
from azinfer.plan.cost import (
    DEFAULT_BUSY_HOURS,
    DEFAULT_BUSY_HOURS_WHY,
    HOURS_PER_MONTH,
    PriceTable,
    estimate_cost,
    shipped_prices,
)
from azinfer.plan.fit import estimate_fit
from azinfer.plan.model import Action, GpuChoice, Plan, Problem, ProblemCode, Reason, ResourceChange
from azinfer.plan.profiles import profile_facts, regions_offering
from azinfer.project import GPU_SPECS, INFERENCE_PARAMETERS, GpuProfileType
from azinfer.resources import ResourceKind, resource_name
from azinfer.start import decide_start

__all__ = ["make_plan"]


def _existing(inventory: Inventory, kind: ResourceKind, arm_name: str) -> ResourceFacts | None:
    return inventory.get(kind.arm_type, arm_name)


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
    "serverless A100 for a new GPU profile (dedicated GPU capacity is granted only after a support request)"
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


def _region_offers(gpu: GpuChoice, location: str | None) -> Problem | None:
    """An offline plan checks the region against azinfer's table (an online one asks Azure, in preflight)."""
    profile = gpu.profile_type.value
    if location is None or region_key(location) in profile_facts(profile).regions:
        return None
    facts = profile_facts(profile)
    return Problem(
        ProblemCode.GPU_PROFILE_UNAVAILABLE, ResourceKind.ENVIRONMENT,
        f"{location} does not offer the {profile.value} workload profile (azinfer's region table, "
        f"{facts.regions_date}: {facts.regions_source}); set location to one that does: "
        f"{', '.join(regions_offering(profile))}, or choose another gpuProfileType.",
    )


def make_plan(
    inputs: ResolvedInputs,
    inventory: Inventory,
    *,
    update: Collection[ResourceKind] = (),
    prices: PriceTable | None = None,
    busy_hours: float | None = None,
    today: date | None = None,
) -> Plan:
    """Decide, for each resource, whether to create, reuse or update it; the GPU profile; the start command;
    whether the base model fits the GPU and what the endpoint costs.

    Pure: the same inputs, inventory, prices and day always give the same plan.

    :param inputs: the resolved inputs (:func:`azinfer.inputs.resolve`).
    :param inventory: what exists in the resource group.
    :param update: reused resources whose template should be applied anyway.
    :param prices: the price table (default: the one shipped, :func:`azinfer.plan.cost.shipped_prices`).
    :param busy_hours: hours a month at maxReplicas (default :data:`~azinfer.plan.cost.DEFAULT_BUSY_HOURS`).
    :param today: the day the prices' age is counted to (default: today).
    :returns: the plan; check :attr:`Plan.blocked` before applying it.
    :raises ArgumentError: when an argument has the wrong type (``update`` must hold :class:`ResourceKind` values,
        ``busy_hours`` a number of hours from 0 to 730).
    """
    check_type("make_plan", "inputs", inputs, ResolvedInputs, "ResolvedInputs (azinfer.resolve)")
    check_type("make_plan", "inventory", inventory, Inventory, "an Inventory (e.g. InMemoryInventory)")
    update = check_members("make_plan", "update", update, ResourceKind)
    if prices is not None:
        check_type("make_plan", "prices", prices, PriceTable, "a PriceTable (azinfer.plan.cost.load_prices) or None")
    if busy_hours is not None and (isinstance(busy_hours, bool) or not isinstance(busy_hours, (int, float))
                                   or not 0 <= busy_hours <= HOURS_PER_MONTH):
        raise ArgumentError("make_plan", "busy_hours", f"a number of hours from 0 to {HOURS_PER_MONTH}", busy_hours)
    arm_names = _arm_names(inputs)
    facts = {kind: _existing(inventory, kind, arm_names[kind]) for kind in ResourceKind}
    offline = bool(inventory.offline)
    gpu, gpu_problem = _choose_gpu(inputs, facts[ResourceKind.ENVIRONMENT])
    changes = []
    for kind in ResourceKind:
        action, reason = _choose(kind, facts[kind], update, offline=offline)
        if kind is ResourceKind.ENVIRONMENT and gpu.add_to_environment:
            action, reason = Action.UPDATE, Reason.ADD_GPU_PROFILE
        existing = facts[kind]
        tags = None if existing is None else dict(existing.tags)
        unmodeled = {} if existing is None else dict(existing.unmodeled)
        changes.append(ResourceChange(kind, inputs.names[kind], action, reason, arm_names[kind], tags, unmodeled))
    problems = [gpu_problem] if gpu_problem else []
    problems += [problem for check in PROBLEM_CHECKS for problem in check(inputs, facts)]
    region_problem = _region_offers(gpu, inputs.location.value) if offline else None
    problems += [region_problem] if region_problem else []
    fit = estimate_fit(inputs.base_model, gpu.profile_type.value)
    start = decide_start(
        inputs.parameters.default_commands, source=f"{INFERENCE_PARAMETERS} /parameters/defaultCommands/value"
    )
    cold = estimate_cold_start(inputs.parameters.image, fit) if gpu.serverless else None
    plan = Plan(inputs, tuple(changes), tuple(problems), gpu, start, fit=fit, cold_start=cold)
    hours, why = (DEFAULT_BUSY_HOURS, DEFAULT_BUSY_HOURS_WHY) if busy_hours is None else (busy_hours, "argument")
    cost = estimate_cost(
        gpu.profile_type.value, prices or shipped_prices(), min_replicas=plan.min_replicas,
        max_replicas=_replicas_billed(plan), busy_hours=hours, busy_hours_why=why, today=today or date.today(),
    )
    plan = replace(plan, cost=cost, problems=(*plan.problems, *fit_problems(plan)))
    return replace(plan, warnings=tuple(warning for check in WARNING_CHECKS for warning in check(plan)))


def _replicas_billed(plan: Plan) -> int:
    """What runs when busy: maxReplicas (on a dedicated profile no more than its maximumInstanceCount nodes)."""
    params = plan.inputs.parameters
    return params.max_replicas if plan.gpu.serverless else min(params.max_replicas, params.maximum_instance_count)
