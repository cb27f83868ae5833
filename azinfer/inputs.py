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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from azinfer._arguments import check_member, check_optional_text, check_type
from azinfer.basemodel import BaseModel
from azinfer.errors import ResolutionError
from azinfer.inventory import JOB_TYPE, InMemoryInventory, Inventory, ResourceFacts
from azinfer.names import check_name, default_name, default_name_rule, resource_suffix
from azinfer.project import (
    FINETUNING_CONFIG,
    FINETUNING_PARAMETERS,
    INFERENCE_CONFIG,
    INFERENCE_PARAMETERS,
    InferenceParameters,
    Project,
)
from azinfer.resources import ResourceKind

__all__ = ["Source", "Resolved", "ResolvedInputs", "resolve", "resource_group_id", "with_fallbacks", "RESOLVERS"]

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
    base_model: BaseModel | None = None
    """The base model the project fine-tunes (:attr:`azinfer.project.Project.base_model`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", MappingProxyType(dict(self.names)))

    @property
    def resource_group_id(self) -> str:
        """``resourceGroup().id`` of the target resource group."""
        return resource_group_id(self.subscription_id.value, self.resource_group.value)

    def name(self, kind: ResourceKind) -> str:
        """The resolved name of ``kind``.

        :raises ArgumentError: when ``kind`` is no :class:`ResourceKind` (or its value).
        """
        return self.names[check_member("ResolvedInputs.name", "kind", kind, ResourceKind)].value


# One resolver per value: a declared chain of sources, each a small function of what is known so far
# that gives the value (with where it came from) or None. The first source that gives a value wins.


@dataclass(frozen=True)
class _Known:
    """What the sources read: the project, the inventory, the options, and the values resolved so far."""

    project: Project
    inventory: Inventory
    options: Mapping[str, str | None]
    resolved: dict[str, Resolved[Any]]

    def value(self, key: str) -> Any:
        return self.resolved[key].value

    def environment(self) -> ResourceFacts | None:
        return self.inventory.get(ResourceKind.ENVIRONMENT.arm_type, self.value(ResourceKind.ENVIRONMENT.value))

    def environment_storages(self) -> list[ResourceFacts]:
        env = self.value(ResourceKind.ENVIRONMENT.value).lower()
        storages = self.inventory.list(ResourceKind.ENVIRONMENT_STORAGE.arm_type)
        return [s for s in storages if s.parent_name.lower() == env]


_SourceFn = Callable[[_Known], "Resolved[Any] | None"]


def _from(value: Any, source: Source, detail: str) -> Resolved[Any] | None:
    return None if value is None else Resolved(value, source, detail)


def _option(name: str, detail: str) -> _SourceFn:
    return lambda k: _from(k.options.get(name), Source.ARGUMENT, detail)


def _finetuning_config(attr: str, key: str) -> _SourceFn:
    def source(k: _Known) -> Resolved[Any] | None:
        config = k.project.finetuning_config
        return _from(getattr(config, attr) if config else None, Source.FINETUNING_CONFIG, f"{FINETUNING_CONFIG} {key}")

    return source


def _inference_config(attr: str, key: str) -> _SourceFn:
    def source(k: _Known) -> Resolved[Any] | None:
        config = k.project.inference_config
        return _from(getattr(config, attr) if config else None, Source.INFERENCE_CONFIG, f"{INFERENCE_CONFIG} {key}")

    return source


def _param_detail(relative: str, parameter: str) -> str:
    return f"{relative} /parameters/{parameter}/value"


def _inference_parameter(kind: ResourceKind) -> _SourceFn:
    return lambda k: _from(
        k.project.inference_parameters.names.get(kind), Source.INFERENCE_PARAMETERS,
        _param_detail(INFERENCE_PARAMETERS, kind.parameter),
    )


def _finetuning_parameter(kind: ResourceKind) -> _SourceFn:
    def source(k: _Known) -> Resolved[Any] | None:
        params = k.project.finetuning_parameters
        return _from(params.names.get(kind) if params else None, Source.FINETUNING_PARAMETERS,
                     _param_detail(FINETUNING_PARAMETERS, kind.parameter))

    return source


def _job_name_parameter(k: _Known) -> Resolved[Any] | None:
    params = k.project.finetuning_parameters
    return _from(params.job_name if params else None, Source.FINETUNING_PARAMETERS,
                 _param_detail(FINETUNING_PARAMETERS, "acaJobName"))


def _default_job(k: _Known) -> Resolved[Any] | None:
    return Resolved("aiacajob" + resource_suffix(_rg_id(k)), Source.DEFAULT,
                    "'aiacajob' + first 5 characters of uniqueString(resourceGroup().id)")


def _default_name(kind: ResourceKind) -> _SourceFn:
    return lambda k: Resolved(default_name(kind, _rg_id(k)), Source.DEFAULT, default_name_rule(kind))


def _rg_id(k: _Known) -> str:
    return resource_group_id(k.value("subscription"), k.value("resource group"))


def _job_environment(k: _Known) -> Resolved[Any] | None:
    job = k.value("job")
    facts = k.inventory.get(JOB_TYPE, job)
    if facts is None or not facts.environment_id:
        return None
    env_name = facts.environment_id.rstrip("/").rsplit("/", 1)[-1]
    env = k.inventory.get(ResourceKind.ENVIRONMENT.arm_type, env_name)
    return _from(env.name if env else None, Source.INVENTORY, f"environment of fine-tuning job {job!r}")


def _mounted(attr: str) -> _SourceFn:
    """The account or share of the environment's one storage (with several, the files must say)."""

    def source(k: _Known) -> Resolved[Any] | None:
        storages = k.environment_storages()
        only = storages[0] if len(storages) == 1 else None
        env = k.value(ResourceKind.ENVIRONMENT.value)
        return _from(getattr(only, attr) if only else None, Source.INVENTORY, f"storage mounted by environment {env!r}")

    return source


def _storage_bound_to_share(k: _Known) -> Resolved[Any] | None:
    account = k.value(ResourceKind.STORAGE_ACCOUNT.value).lower()
    share = k.value(ResourceKind.FILE_SHARE.value)
    bound = next((s for s in k.environment_storages()
                  if (s.account_name or "").lower() == account and (s.share_name or "").lower() == share.lower()), None)
    env = k.value(ResourceKind.ENVIRONMENT.value)
    return _from(bound.short_name if bound else None, Source.INVENTORY,
                 f"environment storage of {env!r} bound to share {share!r}")


def _workspace_of_environment(k: _Known) -> Resolved[Any] | None:
    env = k.environment()
    if env is None or not env.log_analytics_customer_id:
        return None
    customer = env.log_analytics_customer_id.lower()
    workspace = next((w for w in k.inventory.list(ResourceKind.LOG_ANALYTICS.arm_type)
                      if w.customer_id and w.customer_id.lower() == customer), None)
    return _from(workspace.name if workspace else None, Source.INVENTORY,
                 f"workspace that environment {env.name!r} logs to")


def _location_parameter(k: _Known) -> Resolved[Any] | None:
    return _from(k.project.inference_parameters.location, Source.INFERENCE_PARAMETERS,
                 _param_detail(INFERENCE_PARAMETERS, "location"))


def _finetuning_location(k: _Known) -> Resolved[Any] | None:
    params = k.project.finetuning_parameters
    return _from(params.location if params else None, Source.FINETUNING_PARAMETERS,
                 _param_detail(FINETUNING_PARAMETERS, "location"))


def _environment_location(k: _Known) -> Resolved[Any] | None:
    env = k.environment()
    return _from(env.location if env else None, Source.INVENTORY,
                 f"location of environment {k.value(ResourceKind.ENVIRONMENT.value)!r}")


def _group_location(k: _Known) -> Resolved[Any] | None:
    return _from(k.inventory.resource_group_location, Source.INVENTORY,
                 f"location of resource group {k.value('resource group')!r}")


def _left_to_arm(k: _Known) -> Resolved[Any] | None:
    return Resolved(None, Source.DEFAULT, "resourceGroup().location, decided by ARM")


def _names(kind: ResourceKind, *inventory: _SourceFn) -> tuple[_SourceFn, ...]:
    """A name's chain: the inference parameters, the fine-tuning parameters, [the fine-tuning config], the inventory, the default."""
    files: tuple[_SourceFn, ...] = (_inference_parameter(kind), _finetuning_parameter(kind))
    config = {ResourceKind.STORAGE_ACCOUNT: ("storage_account_name", "STORAGE_ACCOUNT_NAME"),
              ResourceKind.FILE_SHARE: ("file_share_name", "FILE_SHARE_NAME")}.get(kind)
    if config:
        files += (_finetuning_config(*config),)
    return (*files, *inventory, _default_name(kind))


# The resolvers, in the order they run: later chains read the values resolved before them
# (the environment first: its storages and its workspace are found through it).
RESOLVERS: tuple[tuple[str, tuple[_SourceFn, ...]], ...] = (
    ("subscription", (_option("subscription_id", "subscription option"),
                      _finetuning_config("subscription_id", "SUBSCRIPTION_ID"),
                      _inference_config("subscription_id", "SUBSCRIPTION_ID"))),
    ("resource group", (_option("resource_group", "resource group option"),
                        _finetuning_config("resource_group", "RESOURCE_GROUP_NAME"),
                        _inference_config("resource_group", "RESOURCE_GROUP_NAME"))),
    ("job", (_job_name_parameter, _finetuning_config("job_name", "ACA_JOB_NAME"), _default_job)),
    (ResourceKind.ENVIRONMENT.value, _names(ResourceKind.ENVIRONMENT, _job_environment)),
    (ResourceKind.STORAGE_ACCOUNT.value, _names(ResourceKind.STORAGE_ACCOUNT, _mounted("account_name"))),
    (ResourceKind.FILE_SHARE.value, _names(ResourceKind.FILE_SHARE, _mounted("share_name"))),
    (ResourceKind.ENVIRONMENT_STORAGE.value, _names(ResourceKind.ENVIRONMENT_STORAGE, _storage_bound_to_share)),
    (ResourceKind.LOG_ANALYTICS.value, _names(ResourceKind.LOG_ANALYTICS, _workspace_of_environment)),
    (ResourceKind.CONTAINER_APP.value, _names(ResourceKind.CONTAINER_APP)),
    ("location", (_option("location", "location option"), _location_parameter, _finetuning_location,
                  _environment_location, _group_location, _left_to_arm)),
)
"""Each value azinfer resolves and its chain of sources, tried in order."""


def _nothing_names(key: str) -> ResolutionError:
    missing = "SUBSCRIPTION_ID" if key == "subscription" else "RESOURCE_GROUP_NAME"
    return ResolutionError(
        key,
        f"nothing provisioned names the {key} ({FINETUNING_CONFIG} and {INFERENCE_CONFIG} have no {missing}): "
        "pass --subscription and --resource-group (subscription_id= and resource_group= in Python)",
    )


def resolve(
    project: Project,
    inventory: Inventory | None = None,
    *,
    subscription_id: str | None = None,
    resource_group: str | None = None,
    location: str | None = None,
) -> ResolvedInputs:
    """Resolve the subscription, resource group, location and every resource name.

    Each value runs its chain in :data:`RESOLVERS`; the first source that has it wins.

    :param project: the loaded project files.
    :param inventory: what exists in the resource group; ``None`` means nothing was looked up (offline).
    :param subscription_id: overrides the fine-tuning subscription.
    :param resource_group: overrides the fine-tuning resource group.
    :param location: overrides every file's location.
    :raises ResolutionError: when no subscription or resource group can be found.
    :raises NamingError: when a resolved name breaks Azure's naming rule for its type.
    :raises ArgumentError: when an argument has the wrong type (an option must be a non-empty string or None).
    """
    check_type("resolve", "project", project, Project, "a Project (azinfer.load_project)")
    if inventory is not None:
        check_type("resolve", "inventory", inventory, Inventory, "an Inventory (e.g. InMemoryInventory) or None")
    subscription_id = check_optional_text("resolve", "subscription_id", subscription_id)
    resource_group = check_optional_text("resolve", "resource_group", resource_group)
    location = check_optional_text("resolve", "location", location)
    known = _Known(
        project,
        inventory if inventory is not None else InMemoryInventory(offline=True),
        {"subscription_id": subscription_id, "resource_group": resource_group, "location": location},
        {},
    )
    for key, chain in RESOLVERS:
        found = next((value for source in chain if (value := source(known)) is not None), None)
        if found is None:
            raise _nothing_names(key)
        known.resolved[key] = found
    names = {kind: known.resolved[kind.value] for kind in ResourceKind}
    for kind, resolved in names.items():
        check_name(kind, resolved.value, source=resolved.detail)
    return ResolvedInputs(
        subscription_id=known.resolved["subscription"],
        resource_group=known.resolved["resource group"],
        location=known.resolved["location"],
        names=names,
        parameters=project.inference_parameters,
        finetuning_job=known.resolved["job"],
        project_root=str(project.root),
        base_model=project.base_model,
    )


def with_fallbacks(build: Callable[[dict[str, str | None]], T], options: dict[str, str | None],
                   fallbacks: Mapping[str, str]) -> T:
    """``build(options)``; where resolving finds no subscription (or resource group) and *options* name none,
    ``build`` again with the value *fallbacks* holds for it.

    *options* and *fallbacks* are keyed ``subscription_id`` and ``resource_group``, as :func:`resolve` takes
    them. A project as the AI Toolkit ships it names neither (its config files are ``null``): the command
    line's ``AZURE_SUBSCRIPTION_ID``, or the local emulator's defaults, stand in.

    :raises ResolutionError: a value is missing and *fallbacks* has none for it.
    """
    keys = {"subscription": "subscription_id", "resource group": "resource_group"}
    while True:
        try:
            return build(options)
        except ResolutionError as exc:
            key = keys.get(exc.field)
            if key is None or options.get(key) is not None or key not in fallbacks:
                raise
            options = {**options, key: fallbacks[key]}
