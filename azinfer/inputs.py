"""Stage 2: resolved inputs, each value with where it came from.

Each resource name, the subscription, the resource group and the location is
taken from the first of these that has it:

1. an argument given to :func:`resolve` (the CLI's options);
2. ``infra/provision/inference.parameters.json``;
3. ``infra/provision/finetuning.parameters.json``;
4. ``infra/finetuning.config.json`` (the fine-tuning outputs);
5. facts in the inventory (the fine-tuning job's environment, the storage
   that environment mounts, the workspace its logs go to);
6. the AI Toolkit's default naming rule.

:func:`resolve` is pure: it reads the project and the inventory, never Azure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from azinfer.errors import ResolutionError
from azinfer.inventory import JOB_TYPE, RESOURCE_TYPES, InMemoryInventory, Inventory, ResourceFacts
from azinfer.names import ResourceKind, check_name, default_name, default_name_rule, resource_suffix
from azinfer.project import (
    FINETUNING_CONFIG,
    FINETUNING_PARAMETERS,
    INFERENCE_CONFIG,
    INFERENCE_PARAMETERS,
    InferenceParameters,
    Project,
)

__all__ = ["Source", "Resolved", "ResolvedInputs", "resolve", "resource_group_id"]

T = TypeVar("T")


class Source(str, Enum):
    """Where a resolved value came from, in the order they are tried."""

    ARGUMENT = "argument"
    """Given to the API call or on the command line."""
    INFERENCE_PARAMETERS = "inference parameters"
    """``infra/provision/inference.parameters.json``."""
    FINETUNING_PARAMETERS = "fine-tuning parameters"
    """``infra/provision/finetuning.parameters.json``."""
    FINETUNING_CONFIG = "fine-tuning config"
    """``infra/finetuning.config.json``."""
    INFERENCE_CONFIG = "inference config"
    """``infra/inference.config.json`` from an earlier provisioning."""
    INVENTORY = "inventory"
    """A fact about what exists in the resource group."""
    DEFAULT = "default"
    """The AI Toolkit's default rule."""


@dataclass(frozen=True)
class Resolved(Generic[T]):
    """A value and where it came from (``detail`` says exactly where, in words)."""

    value: T
    source: Source
    detail: str

    def to_json(self) -> dict[str, Any]:
        """``{"value", "source", "detail"}``."""
        return {"value": self.value, "source": self.source.value, "detail": self.detail}


def resource_group_id(subscription_id: str, resource_group: str) -> str:
    """The ARM id of a resource group, as ``resourceGroup().id`` returns it."""
    return f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"


@dataclass(frozen=True)
class ResolvedInputs:
    """Everything the planner needs, each value with its provenance.

    ``location`` is ``None`` when it is left to ARM (the resource group's region).
    """

    subscription_id: Resolved[str]
    resource_group: Resolved[str]
    location: Resolved[str | None]
    names: Mapping[ResourceKind, Resolved[str]]
    parameters: InferenceParameters
    finetuning_job: Resolved[str]
    project_root: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", MappingProxyType(dict(self.names)))

    @property
    def resource_group_id(self) -> str:
        """``resourceGroup().id`` of the target resource group."""
        return resource_group_id(self.subscription_id.value, self.resource_group.value)

    def name(self, kind: ResourceKind) -> str:
        """The resolved name of ``kind``."""
        return self.names[kind].value


def _first(*candidates: Resolved[str] | None) -> Resolved[str] | None:
    return next((c for c in candidates if c is not None), None)


def _from(value: str | None, source: Source, detail: str) -> Resolved[str] | None:
    return None if value is None else Resolved(value, source, detail)


def _job_environment(inventory: Inventory, job: str) -> ResourceFacts | None:
    facts = inventory.get(JOB_TYPE, job)
    if facts is None or not facts.environment_id:
        return None
    env_name = facts.environment_id.rstrip("/").rsplit("/", 1)[-1]
    return inventory.get(RESOURCE_TYPES[ResourceKind.ENVIRONMENT], env_name)


def _param_detail(relative: str, kind_param: str) -> str:
    return f"{relative} /parameters/{kind_param}/value"


def resolve(
    project: Project,
    inventory: Inventory | None = None,
    *,
    subscription_id: str | None = None,
    resource_group: str | None = None,
    location: str | None = None,
) -> ResolvedInputs:
    """Resolve the subscription, resource group, location and every resource name.

    :param project: the loaded project files.
    :param inventory: what exists in the resource group; ``None`` means nothing (offline).
    :param subscription_id: overrides the fine-tuning subscription.
    :param resource_group: overrides the fine-tuning resource group.
    :param location: overrides every file's location.
    :raises ResolutionError: when no subscription or resource group can be found.
    :raises NamingError: when a resolved name breaks Azure's naming rule for its type.
    """
    inv: Inventory = inventory if inventory is not None else InMemoryInventory(offline=True)
    params = project.inference_parameters
    ft_params = project.finetuning_parameters
    ft_config = project.finetuning_config
    inf_config = project.inference_config

    subscription = _first(
        _from(subscription_id, Source.ARGUMENT, "subscription option"),
        _from(ft_config.subscription_id if ft_config else None, Source.FINETUNING_CONFIG, f"{FINETUNING_CONFIG} SUBSCRIPTION_ID"),
        _from(inf_config.subscription_id if inf_config else None, Source.INFERENCE_CONFIG, f"{INFERENCE_CONFIG} SUBSCRIPTION_ID"),
    )
    group = _first(
        _from(resource_group, Source.ARGUMENT, "resource group option"),
        _from(ft_config.resource_group if ft_config else None, Source.FINETUNING_CONFIG, f"{FINETUNING_CONFIG} RESOURCE_GROUP_NAME"),
        _from(inf_config.resource_group if inf_config else None, Source.INFERENCE_CONFIG, f"{INFERENCE_CONFIG} RESOURCE_GROUP_NAME"),
    )
    if subscription is None or group is None:
        missing = "SUBSCRIPTION_ID" if subscription is None else "RESOURCE_GROUP_NAME"
        raise ResolutionError(
            "subscription" if subscription is None else "resource group",
            f"nothing provisioned names the {'subscription' if subscription is None else 'resource group'} "
            f"({FINETUNING_CONFIG} and {INFERENCE_CONFIG} have no {missing}): "
            "pass --subscription and --resource-group (subscription_id= and resource_group= in Python)",
        )
    rg_id = resource_group_id(subscription.value, group.value)
    job = _first(
        _from(ft_params.job_name if ft_params else None, Source.FINETUNING_PARAMETERS, _param_detail(FINETUNING_PARAMETERS, "acaJobName")),
        _from(ft_config.job_name if ft_config else None, Source.FINETUNING_CONFIG, f"{FINETUNING_CONFIG} ACA_JOB_NAME"),
        Resolved("aiacajob" + resource_suffix(rg_id), Source.DEFAULT, "'aiacajob' + first 5 characters of uniqueString(resourceGroup().id)"),
    )
    assert job is not None

    job_env = _job_environment(inv, job.value)
    names: dict[ResourceKind, Resolved[str]] = {}

    def from_files(kind: ResourceKind) -> Resolved[str] | None:
        config_value = None
        config_key = ""
        if ft_config is not None and kind is ResourceKind.STORAGE_ACCOUNT:
            config_value, config_key = ft_config.storage_account_name, "STORAGE_ACCOUNT_NAME"
        elif ft_config is not None and kind is ResourceKind.FILE_SHARE:
            config_value, config_key = ft_config.file_share_name, "FILE_SHARE_NAME"
        return _first(
            _from(params.names.get(kind), Source.INFERENCE_PARAMETERS, _param_detail(INFERENCE_PARAMETERS, kind.parameter)),
            _from(
                ft_params.names.get(kind) if ft_params else None,
                Source.FINETUNING_PARAMETERS,
                _param_detail(FINETUNING_PARAMETERS, kind.parameter),
            ),
            _from(config_value, Source.FINETUNING_CONFIG, f"{FINETUNING_CONFIG} {config_key}"),
        )

    def default(kind: ResourceKind) -> Resolved[str]:
        return Resolved(default_name(kind, rg_id), Source.DEFAULT, default_name_rule(kind))

    # The environment first: the storages and the workspace are found through it.
    env_fact = _from(job_env.name if job_env else None, Source.INVENTORY, f"environment of fine-tuning job {job.value!r}")
    names[ResourceKind.ENVIRONMENT] = _first(from_files(ResourceKind.ENVIRONMENT), env_fact) or default(
        ResourceKind.ENVIRONMENT
    )
    env_name = names[ResourceKind.ENVIRONMENT].value
    env = inv.get(RESOURCE_TYPES[ResourceKind.ENVIRONMENT], env_name)
    env_storages = [
        s for s in inv.list(RESOURCE_TYPES[ResourceKind.ENVIRONMENT_STORAGE]) if s.parent_name.lower() == env_name.lower()
    ]
    only_storage = env_storages[0] if len(env_storages) == 1 else None
    mounted = f"storage mounted by environment {env_name!r}"
    names[ResourceKind.STORAGE_ACCOUNT] = _first(
        from_files(ResourceKind.STORAGE_ACCOUNT),
        _from(only_storage.account_name if only_storage else None, Source.INVENTORY, mounted),
    ) or default(ResourceKind.STORAGE_ACCOUNT)
    names[ResourceKind.FILE_SHARE] = _first(
        from_files(ResourceKind.FILE_SHARE),
        _from(only_storage.share_name if only_storage else None, Source.INVENTORY, mounted),
    ) or default(ResourceKind.FILE_SHARE)
    account, share = names[ResourceKind.STORAGE_ACCOUNT].value, names[ResourceKind.FILE_SHARE].value
    bound = next(
        (
            s
            for s in env_storages
            if (s.account_name or "").lower() == account.lower() and (s.share_name or "").lower() == share.lower()
        ),
        None,
    )
    names[ResourceKind.ENVIRONMENT_STORAGE] = _first(
        from_files(ResourceKind.ENVIRONMENT_STORAGE),
        _from(bound.short_name if bound else None, Source.INVENTORY, f"environment storage of {env_name!r} bound to share {share!r}"),
    ) or default(ResourceKind.ENVIRONMENT_STORAGE)
    workspace = None
    if env is not None and env.log_analytics_customer_id:
        workspace = next(
            (
                w
                for w in inv.list(RESOURCE_TYPES[ResourceKind.LOG_ANALYTICS])
                if w.customer_id and w.customer_id.lower() == env.log_analytics_customer_id.lower()
            ),
            None,
        )
    names[ResourceKind.LOG_ANALYTICS] = _first(
        from_files(ResourceKind.LOG_ANALYTICS),
        _from(workspace.name if workspace else None, Source.INVENTORY, f"workspace that environment {env_name!r} logs to"),
    ) or default(ResourceKind.LOG_ANALYTICS)
    names[ResourceKind.CONTAINER_APP] = from_files(ResourceKind.CONTAINER_APP) or default(ResourceKind.CONTAINER_APP)

    for kind in ResourceKind:
        resolved = names[kind]
        check_name(kind, resolved.value, source=resolved.detail)

    where = _first(
        _from(location, Source.ARGUMENT, "location option"),
        _from(params.location, Source.INFERENCE_PARAMETERS, _param_detail(INFERENCE_PARAMETERS, "location")),
        _from(ft_params.location if ft_params else None, Source.FINETUNING_PARAMETERS, _param_detail(FINETUNING_PARAMETERS, "location")),
        _from(env.location if env else None, Source.INVENTORY, f"location of environment {env_name!r}"),
        _from(inv.resource_group_location, Source.INVENTORY, f"location of resource group {group.value!r}"),
    )
    resolved_location: Resolved[str | None] = (
        Resolved(where.value, where.source, where.detail)
        if where is not None
        else Resolved(None, Source.DEFAULT, "resourceGroup().location, decided by ARM")
    )
    return ResolvedInputs(
        subscription_id=subscription,
        resource_group=group,
        location=resolved_location,
        names=names,
        parameters=params,
        finetuning_job=job,
        project_root=str(project.root),
    )
