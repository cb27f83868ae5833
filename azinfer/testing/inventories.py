"""Inventories the way an AI Toolkit fine-tuning run leaves a resource group, with overrides per resource."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from azinfer._arguments import check_mapping, check_member, check_members, check_path, check_type
from azinfer.errors import ArgumentError
from azinfer.inputs import resource_group_id
from azinfer.inventory import JOB_TYPE, InMemoryInventory, ResourceFacts, WorkloadProfile
from azinfer.names import check_name, default_name, resource_suffix
from azinfer.project import load_project
from azinfer.resources import ResourceKind, resource_name

__all__ = [
    "EXAMPLE_SUBSCRIPTION",
    "EXAMPLE_RESOURCE_GROUP",
    "EXAMPLE_LOCATION",
    "FINETUNING_WORKLOAD_PROFILES",
    "finetuning_inventory",
]

EXAMPLE_SUBSCRIPTION = "8a3f1d2e-4b5c-4d6e-9f70-1a2b3c4d5e6f"
"""The subscription of the bundled example project (``examples/phi3``)."""
EXAMPLE_RESOURCE_GROUP = "rg-phi3-finetune"
"""The resource group the bundled example project was fine-tuned in."""
EXAMPLE_LOCATION = "westus3"
"""The region the bundled example project was fine-tuned in."""

FINETUNING_WORKLOAD_PROFILES: tuple[WorkloadProfile, ...] = (
    WorkloadProfile("Consumption", "Consumption"),
    WorkloadProfile("GPU", "NC24-A100"),
)
"""The workload profiles the AI Toolkit's fine-tuning template gives the environment."""

# A Log Analytics customer id is a GUID Azure assigns; the environment points at its workspace by it.
_CUSTOMER_ID = "11111111-2222-3333-4444-555555555555"
_FN = "finetuning_inventory"


def finetuning_inventory(
    project: str | os.PathLike[str] | None = None,
    *,
    subscription_id: str | None = None,
    resource_group: str | None = None,
    location: str | None = None,
    names: Mapping[ResourceKind, str] | None = None,
    locations: Mapping[ResourceKind, str] | None = None,
    workload_profiles: Sequence[WorkloadProfile] = FINETUNING_WORKLOAD_PROFILES,
    shared_key_access: bool | None = None,
    job_name: str | None = None,
    container_app: bool = False,
    without: Collection[ResourceKind] = (),
    extra: Iterable[ResourceFacts] = (),
) -> InMemoryInventory:
    """A resource group as the AI Toolkit's fine-tuning template leaves it.

    Five resources (storage account, file share, Log Analytics workspace,
    Container Apps environment with a dedicated A100 profile, environment
    storage mounting the share) and the fine-tuning job, named by the same
    rule as the templates (:func:`azinfer.names.default_name`: prefix + the
    first five characters of ``uniqueString(resourceGroup().id)``).

    For example, the example's storage account and share::

        names = [r.name for r in finetuning_inventory().resources]
        assert names[:2] == ["aistorage27vsy", "aistorage27vsy/default/aifileshare27vsy"]

    :param project: an AI Toolkit project folder whose fine-tuning this
        inventory stands for: its subscription and resource group (from
        ``infra/finetuning.config.json``), its names and location (from
        ``infra/provision/finetuning.parameters.json`` and the config) are
        used unless given here. Without it, the bundled example's
        (:data:`EXAMPLE_SUBSCRIPTION`, :data:`EXAMPLE_RESOURCE_GROUP`,
        :data:`EXAMPLE_LOCATION`).
    :param subscription_id: the subscription the names derive from.
    :param resource_group: the resource group the names derive from.
    :param location: the region of the group and of every resource.
    :param names: a name per :class:`~azinfer.ResourceKind`, instead of the default rule's.
    :param locations: a region per kind, where one resource is elsewhere.
    :param workload_profiles: the environment's workload profiles.
    :param shared_key_access: the storage account's ``allowSharedKeyAccess``
        (``None``: not set, Azure's default, allowed).
    :param job_name: the fine-tuning job's name (default ``aiacajob`` + suffix).
    :param container_app: add the inference container app too, in the
        environment (the group after an earlier ``azinfer provision``).
    :param without: kinds the group lacks (deleted after fine-tuning).
    :param extra: more resources; one with the same type and name replaces the built one.
    :returns: the inventory, with ``resource_group_location`` set.
    :raises ArgumentError: when an argument has the wrong type or value, or
        ``project`` names no subscription or resource group and none is given.
    :raises NamingError: when a name breaks Azure's naming rule for its kind.
    :raises ProjectFileError: when a file of ``project`` is invalid.
    """
    if project is None:
        known: dict[str, Any] = {"subscription_id": EXAMPLE_SUBSCRIPTION, "resource_group": EXAMPLE_RESOURCE_GROUP}
    else:
        known = _from_project(project)
    subscription_id = _text("subscription_id", subscription_id, known.get("subscription_id"))
    resource_group = _text("resource_group", resource_group, known.get("resource_group"))
    if subscription_id is None or resource_group is None:
        key = "SUBSCRIPTION_ID" if subscription_id is None else "RESOURCE_GROUP_NAME"
        argument = "subscription_id" if subscription_id is None else "resource_group"
        raise ArgumentError(
            _FN, "project", f"a project whose infra/finetuning.config.json names {key} (or pass {argument}=)",
            os.fspath(project),  # type: ignore[arg-type]
        )
    location = _text("location", location, known.get("location") or EXAMPLE_LOCATION)
    job_name = _text("job_name", job_name, known.get("job_name") or None)
    chosen = {**known.get("names", {}), **_kinds("names", names, check=True)}
    where = _kinds("locations", locations, check=False)
    profiles = _profiles(workload_profiles)
    if shared_key_access is not None:
        check_type(_FN, "shared_key_access", shared_key_access, bool, "a bool or None")
    check_type(_FN, "container_app", container_app, bool, "a bool")
    absent = check_members(_FN, "without", without, ResourceKind)
    added = _extra(extra)

    rg_id = resource_group_id(subscription_id, resource_group)
    name = {kind: chosen.get(kind) or default_name(kind, rg_id) for kind in ResourceKind}
    region = {kind: where.get(kind, location) for kind in ResourceKind}
    account, env = name[ResourceKind.STORAGE_ACCOUNT], name[ResourceKind.ENVIRONMENT]
    env_id = f"{rg_id}/providers/{ResourceKind.ENVIRONMENT.arm_type}/{env}"

    def facts(kind: ResourceKind, parent: str | None = None, **values: Any) -> ResourceFacts:
        return ResourceFacts(kind.arm_type, resource_name(kind, name[kind], parent=parent), **values)

    built = {
        ResourceKind.STORAGE_ACCOUNT: facts(ResourceKind.STORAGE_ACCOUNT, location=region[ResourceKind.STORAGE_ACCOUNT],
                                            allow_shared_key_access=shared_key_access),
        ResourceKind.FILE_SHARE: facts(ResourceKind.FILE_SHARE, account),
        ResourceKind.LOG_ANALYTICS: facts(ResourceKind.LOG_ANALYTICS, location=region[ResourceKind.LOG_ANALYTICS],
                                          customer_id=_CUSTOMER_ID),
        ResourceKind.ENVIRONMENT: facts(ResourceKind.ENVIRONMENT, location=region[ResourceKind.ENVIRONMENT],
                                        workload_profiles=profiles, log_analytics_customer_id=_CUSTOMER_ID),
        ResourceKind.ENVIRONMENT_STORAGE: facts(ResourceKind.ENVIRONMENT_STORAGE, env, account_name=account,
                                                share_name=name[ResourceKind.FILE_SHARE]),
    }
    resources = [resource for kind, resource in built.items() if kind not in absent]
    job = job_name or "aiacajob" + resource_suffix(rg_id)
    resources.append(ResourceFacts(JOB_TYPE, job, location, environment_id=env_id))
    if container_app and ResourceKind.CONTAINER_APP not in absent:
        app, app_region = name[ResourceKind.CONTAINER_APP], region[ResourceKind.CONTAINER_APP]
        resources.append(facts(
            ResourceKind.CONTAINER_APP, location=app_region, environment_id=env_id,
            fqdn=f"{app}.{resource_suffix(env_id)}.{app_region}.azurecontainerapps.io",
        ))
    return InMemoryInventory(tuple(resources), resource_group_location=location).with_resources(added)


def _text(argument: str, given: Any, fallback: str | None) -> Any:
    if given is None:
        return fallback
    check_type(_FN, argument, given, str, "a string or None")
    if not given:
        raise ArgumentError(_FN, argument, "a non-empty string", given)
    return given


def _kinds(argument: str, value: Any, *, check: bool) -> dict[ResourceKind, str]:
    if value is None:
        return {}
    result = {}
    for key, item in check_mapping(_FN, argument, value).items():
        kind = check_member(_FN, f"{argument} key", key, ResourceKind)
        check_type(_FN, f"{argument}[{kind.value}]", item, str, "a string")
        result[kind] = _text(f"{argument}[{kind.value}]", item, None)
        if check:
            check_name(kind, result[kind], source=f"{_FN}() {argument}[{kind.value}]")
    return result


def _profiles(value: Any) -> tuple[WorkloadProfile, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ArgumentError(_FN, "workload_profiles", "a sequence of WorkloadProfile", value)
    for index, profile in enumerate(value):
        check_type(_FN, f"workload_profiles[{index}]", profile, WorkloadProfile, "a WorkloadProfile")
    return tuple(value)


def _extra(value: Any) -> tuple[ResourceFacts, ...]:
    if isinstance(value, (str, bytes, Mapping, ResourceFacts)) or not isinstance(value, Iterable):
        raise ArgumentError(_FN, "extra", "an iterable of ResourceFacts", value)
    items = tuple(value)
    for index, item in enumerate(items):
        check_type(_FN, f"extra[{index}]", item, ResourceFacts, "a ResourceFacts")
    return items


def _from_project(project: Any) -> dict[str, Any]:
    """What a project's files say about the fine-tuning run: subscription, group, names, location, job."""
    root = check_path(_FN, "project", project)
    if not (root / "infra").is_dir():
        raise ArgumentError(_FN, "project", "an AI Toolkit project folder (with infra/)", str(root))
    loaded = load_project(root)
    params, config = loaded.finetuning_parameters, loaded.finetuning_config
    names: dict[ResourceKind, str] = dict(params.names) if params else {}
    if config is not None:
        for kind, value in ((ResourceKind.STORAGE_ACCOUNT, config.storage_account_name),
                            (ResourceKind.FILE_SHARE, config.file_share_name)):
            if value is not None:
                names.setdefault(kind, value)
    subscription = config.subscription_id if config else None
    group = config.resource_group if config else None
    if subscription is None or group is None:
        inference = loaded.inference_config
        subscription = subscription or (inference.subscription_id if inference else None)
        group = group or (inference.resource_group if inference else None)
    facts: dict[str, Any] = {
        "names": names,
        "location": params.location if params else None,
        "job_name": (params.job_name if params else None) or (config.job_name if config else None),
    }
    if subscription is not None:
        facts["subscription_id"] = subscription
    if group is not None:
        facts["resource_group"] = group
    return facts
