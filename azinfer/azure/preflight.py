"""Preflight: the problems only Azure can tell, found before anything is written.

:func:`preflight_problems` is pure (plan and facts in, problems out);
:func:`read_preflight_facts` reads the facts with the official clients:
which GPU workload profile types the region offers, the GPU quota left there,
and whether a new storage account name is free.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from azinfer.azure.clients import AzureClients, permission_error
from azinfer.plan import Action, Plan, Problem, ProblemCode
from azinfer.project import GpuProfileType
from azinfer.resources import ResourceKind

__all__ = ["QUOTA_NAMES", "Quota", "NameAvailability", "PreflightFacts", "preflight_problems", "read_preflight_facts"]

# Microsoft.App's subscription quota behind each GPU profile type (counted in GPUs).
QUOTA_NAMES = {
    GpuProfileType.NC24_A100: "SubscriptionNCA100Gpus",
    GpuProfileType.CONSUMPTION_NC24_A100: "SubscriptionConsumptionNCA100Gpus",
    GpuProfileType.CONSUMPTION_NC8AS_T4: "SubscriptionConsumptionT4Gpus",
}


@dataclass(frozen=True)
class Quota:
    """One usage row: how much of a quota is used and its limit."""

    name: str
    current: float
    limit: float

    @property
    def left(self) -> float:
        """What is left."""
        return self.limit - self.current


@dataclass(frozen=True)
class NameAvailability:
    """Whether a globally unique name is free, and why not."""

    available: bool
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class PreflightFacts:
    """What preflight read; ``None`` where nothing needed checking."""

    location: str | None
    profile_types: frozenset[str] | None = None
    quota: Quota | None = None
    storage_name: NameAvailability | None = None


def _gpus_needed(plan: Plan) -> int:
    """Each replica of the app takes one GPU of the profile."""
    return plan.inputs.parameters.max_replicas


def preflight_problems(plan: Plan, facts: PreflightFacts) -> tuple[Problem, ...]:
    """The problems the facts reveal in the plan."""
    profile = plan.inputs.parameters.gpu_profile_type
    where = facts.location or "the resource group's region"
    problems = []
    if facts.profile_types is not None and profile.value.lower() not in {t.lower() for t in facts.profile_types}:
        problems.append(Problem(
            ProblemCode.GPU_PROFILE_UNAVAILABLE, ResourceKind.ENVIRONMENT,
            f"{where} does not offer the {profile.value} workload profile; set location to a region that does "
            f"(it offers: {', '.join(sorted(facts.profile_types)) or 'none'}), or choose another gpuProfileType.",
        ))
    needed = _gpus_needed(plan)
    if facts.quota is not None and facts.quota.left < needed:
        q = facts.quota
        problems.append(Problem(
            ProblemCode.GPU_QUOTA, ResourceKind.CONTAINER_APP,
            f"GPU quota {q.name} in {where}: {q.left:g} of {q.limit:g} GPUs left, the plan needs {needed} "
            f"(maxReplicas). Request more in the Azure portal (Quotas > Azure Container Apps > {q.name}, region "
            f"{where}), lower maxReplicas, or choose another location or gpuProfileType.",
        ))
    if facts.storage_name is not None and not facts.storage_name.available:
        name = plan.inputs.name(ResourceKind.STORAGE_ACCOUNT)
        problems.append(Problem(
            ProblemCode.NAME_TAKEN, ResourceKind.STORAGE_ACCOUNT,
            f"storage account name {name!r} is not available ({facts.storage_name.reason or 'taken'}): "
            f"{facts.storage_name.message or 'names are unique across Azure'}. Set storageAccountName to another name.",
        ))
    return tuple(problems)


def read_preflight_facts(clients: AzureClients, plan: Plan) -> PreflightFacts:
    """Read, concurrently, what preflight needs for this plan.

    :raises AzurePermissionError: when the caller may not read the subscription's quotas.
    """
    from azure.core.exceptions import HttpResponseError

    location = plan.inputs.location.value
    if location is None:
        return PreflightFacts(None)
    profile = plan.inputs.parameters.gpu_profile_type
    new_env = plan.action(ResourceKind.ENVIRONMENT) is Action.CREATE
    dedicated_reused = not new_env and not profile.serverless
    apps, storage = clients.apps, clients.storage

    def profile_types() -> frozenset[str]:
        return frozenset(p.name for p in apps.available_workload_profiles.get(location))

    def quota() -> Quota | None:
        wanted = QUOTA_NAMES[profile].lower()
        for usage in apps.usages.list(location):
            if usage.name and (usage.name.value or "").lower() == wanted:
                return Quota(usage.name.value, float(usage.current_value), float(usage.limit))
        return None

    def storage_name() -> NameAvailability:
        result = storage.storage_accounts.check_name_availability(
            {"name": plan.inputs.name(ResourceKind.STORAGE_ACCOUNT), "type": "Microsoft.Storage/storageAccounts"}
        )
        return NameAvailability(bool(result.name_available), result.reason, result.message)

    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            types = pool.submit(profile_types) if new_env else None
            # A reused dedicated profile already holds its nodes: no new quota is needed.
            usage = None if dedicated_reused else pool.submit(quota)
            name = pool.submit(storage_name) if plan.action(ResourceKind.STORAGE_ACCOUNT) is Action.CREATE else None
            return PreflightFacts(
                location,
                profile_types=types.result() if types else None,
                quota=usage.result() if usage else None,
                storage_name=name.result() if name else None,
            )
    except HttpResponseError as exc:
        if exc.status_code == 403:
            scope = f"/subscriptions/{clients.subscription_id}"
            raise permission_error(exc, role="Reader", scope=scope, doing="read quotas and regions") from None
        raise
