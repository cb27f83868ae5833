"""Preflight: the problems only Azure can tell, found before anything is written.

:func:`preflight_findings` is pure (plan and facts in, problems and warnings
out); :func:`read_preflight_facts` reads the facts with the official clients:
which GPU workload profile types the region offers, the GPU quota left there,
and whether a new storage account name is free.

GPU quota rows, as Microsoft.App's usages API really reports them: the
region's list (``locations/{region}/usages``) carries
``SubscriptionDedicatedNCA100Gpus`` for dedicated A100 nodes, sometimes
with ``isQuotaApplicable: false``, and no row for serverless GPUs; an
environment's list carries ``ManagedEnvironmentConsumptionNCA100Gpus`` /
``...T4Gpus``. A row that is absent or not applicable means "unknown": the
plan warns and says how to check, it never passes silently.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from azinfer.azure.clients import AzureClients, enum_text
from azinfer.azure.failures import translated
from azinfer.plan import Action, Plan, PlanWarning, Problem, ProblemCode, WarningCode
from azinfer.plan.profiles import regions_offering
from azinfer.project import GpuProfileType
from azinfer.resources import ResourceKind

__all__ = ["QUOTA_NAMES", "Quota", "NameAvailability", "PreflightFacts", "preflight_findings", "read_preflight_facts"]

# The usage rows that may hold each GPU profile type's quota, most specific first (names as the
# usages API returns them, then the quota-request type names Microsoft's material uses).
QUOTA_NAMES: dict[GpuProfileType, tuple[str, ...]] = {
    GpuProfileType.NC24_A100: ("SubscriptionDedicatedNCA100Gpus", "SubscriptionNCA100Gpus"),
    GpuProfileType.CONSUMPTION_NC24_A100: (
        "ManagedEnvironmentConsumptionNCA100Gpus", "SubscriptionConsumptionNCA100Gpus",
    ),
    GpuProfileType.CONSUMPTION_NC8AS_T4: ("ManagedEnvironmentConsumptionT4Gpus", "SubscriptionConsumptionT4Gpus"),
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
    quota_checked: bool = False
    """Whether the GPU quota needed checking (``quota`` is then ``None`` when Azure reports no usable row)."""
    quota: Quota | None = None
    storage_name: NameAvailability | None = None


def _gpus_needed(plan: Plan) -> tuple[int, str]:
    """The GPUs the plan may hold, and the parameter that says so.

    A dedicated profile counts nodes (one A100 each) up to ``maximumInstanceCount``;
    a serverless one counts replicas, one GPU each, up to ``maxReplicas``.
    """
    params = plan.inputs.parameters
    if plan.gpu.serverless:
        return params.max_replicas, "maxReplicas"
    return params.maximum_instance_count, "maximumInstanceCount"


def _request_path(plan: Plan, quota_type: str, where: str) -> str:
    """Where to ask: serverless GPUs are granted per environment, dedicated A100s per subscription and region."""
    if plan.gpu.serverless:
        env = plan.inputs.name(ResourceKind.ENVIRONMENT)
        return (f"on environment {env!r}'s Quotas page in the Azure portal, or with a support request (quota type "
                f"{quota_type}, region {where})")
    return f"in the Azure portal (Quotas > Azure Container Apps > {quota_type}, region {where}) or with a support request"


def preflight_findings(plan: Plan, facts: PreflightFacts) -> tuple[tuple[Problem, ...], tuple[PlanWarning, ...]]:
    """The problems and warnings the facts reveal in the plan."""
    profile = plan.gpu.profile_type.value
    where = facts.location or "the resource group's region"
    problems = []
    warnings = []
    if facts.profile_types is not None and profile.value.lower() not in {t.lower() for t in facts.profile_types}:
        problems.append(Problem(
            ProblemCode.GPU_PROFILE_UNAVAILABLE, ResourceKind.ENVIRONMENT,
            f"{where} does not offer the {profile.value} workload profile (it offers: "
            f"{', '.join(sorted(facts.profile_types)) or 'none'}); set location to a region that does (azinfer's "
            f"region table lists {', '.join(regions_offering(profile))}), or choose another gpuProfileType.",
        ))
    needed, counted_by = _gpus_needed(plan)
    names = QUOTA_NAMES[profile]
    if facts.quota is not None and facts.quota.left < needed:
        q = facts.quota
        problems.append(Problem(
            ProblemCode.GPU_QUOTA, ResourceKind.CONTAINER_APP,
            f"GPU quota {q.name} in {where}: {q.left:g} of {q.limit:g} GPUs left, the plan needs {needed} "
            f"({counted_by}); a limit of {q.current + needed:g} is the smallest that works. Request more "
            f"{_request_path(plan, names[-1], where)}, lower {counted_by}, or choose another location or gpuProfileType.",
        ))
    elif facts.quota_checked and facts.quota is None:
        env = plan.inputs.name(ResourceKind.ENVIRONMENT)
        warnings.append(PlanWarning(
            WarningCode.GPU_QUOTA_UNKNOWN,
            f"GPU quota unknown: Azure reports no applicable {' or '.join(names)} usage in {where}, so azinfer "
            f"cannot tell whether {needed} {profile.value} GPU(s) ({counted_by}) fit; the deployment fails if they "
            f"do not. Check with 'az containerapp env list-usages -n {env} -g {plan.inputs.resource_group.value}' "
            f"or in the portal (Quotas > Azure Container Apps, region {where}); request {names[-1]} there.",
        ))
    if facts.storage_name is not None and not facts.storage_name.available:
        name = plan.inputs.name(ResourceKind.STORAGE_ACCOUNT)
        problems.append(Problem(
            ProblemCode.NAME_TAKEN, ResourceKind.STORAGE_ACCOUNT,
            f"storage account name {name!r} is not available ({facts.storage_name.reason or 'taken'}): "
            f"{facts.storage_name.message or 'names are unique across Azure'}. Set storageAccountName to another name.",
        ))
    return tuple(problems), tuple(warnings)


def read_preflight_facts(clients: AzureClients, plan: Plan) -> PreflightFacts:
    """Read, concurrently, what preflight needs for this plan.

    :raises AzurePermissionError: when the caller may not read the subscription's quotas.
    :raises AzureError: when Azure fails to answer (after the SDK's retries).
    """
    location = plan.inputs.location.value
    if location is None:
        return PreflightFacts(None)
    profile = plan.gpu.profile_type.value
    env_action = plan.action(ResourceKind.ENVIRONMENT)
    # A reused dedicated profile already holds its nodes: no new quota is needed.
    check_quota = profile.serverless or env_action is Action.CREATE
    apps, storage = clients.apps, clients.storage
    group, env_name = plan.inputs.resource_group.value, plan.inputs.name(ResourceKind.ENVIRONMENT)

    def profile_types() -> frozenset[str]:
        return frozenset(p.name for p in apps.available_workload_profiles.get(location) if p.name)

    def quota() -> Quota | None:
        rows = list(apps.usages.list(location))
        if env_action is not Action.CREATE:
            rows += list(apps.managed_environment_usages.list(group, env_name))
        by_name = {
            (row.name.value or "").lower(): row
            for row in rows
            # isQuotaApplicable is Microsoft.Quota's flag; some usage rows carry it too.
            if row.name is not None and row.get("isQuotaApplicable") is not False
        }
        for name in QUOTA_NAMES[profile]:
            row = by_name.get(name.lower())
            if row is not None and row.limit is not None and row.current_value is not None:
                return Quota(row.name.value or name, float(row.current_value), float(row.limit))
        return None

    def storage_name() -> NameAvailability:
        result = storage.storage_accounts.check_name_availability(
            {"name": plan.inputs.name(ResourceKind.STORAGE_ACCOUNT), "type": "Microsoft.Storage/storageAccounts"}
        )
        return NameAvailability(bool(result.name_available), enum_text(result.reason), result.message)

    with translated("read quotas and regions", role="Reader", scope=clients.scope()):
        with ThreadPoolExecutor(max_workers=3) as pool:
            adds_profile = env_action is Action.CREATE or plan.gpu.add_to_environment
            types = pool.submit(profile_types) if adds_profile else None
            usage = pool.submit(quota) if check_quota else None
            name = pool.submit(storage_name) if plan.action(ResourceKind.STORAGE_ACCOUNT) is Action.CREATE else None
            return PreflightFacts(
                location,
                profile_types=types.result() if types else None,
                quota_checked=check_quota,
                quota=usage.result() if usage else None,
                storage_name=name.result() if name else None,
            )
