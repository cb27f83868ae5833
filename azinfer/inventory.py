"""Stage 2 input: a snapshot of what already exists in the resource group.

The planner never talks to Azure: it reads an :class:`Inventory`, a small
protocol. :class:`InMemoryInventory` implements it from plain values or a JSON
file (``schemas/inventory.schema.json``), so plans can be unit-tested and
previewed offline; ``azinfer.azure`` builds one from Azure with the official
SDK clients. An absent resource is a fact (``get`` returns ``None``), not an
error.

The JSON form::

    {
      "resourceGroupLocation": "eastus",
      "resources": [
        {"type": "Microsoft.App/managedEnvironments", "name": "aienvabcde", "location": "eastus",
         "workloadProfiles": [{"name": "GPU", "workloadProfileType": "NC24-A100"}]},
        {"type": "Microsoft.App/managedEnvironments/storages", "name": "aienvabcde/aienvstorageabcde",
         "accountName": "aistorageabcde", "shareName": "aifileshareabcde"},
        ...
      ]
    }

Child resources are named as ARM names them: ``parent/child``
(a file share: ``account/default/share``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from azinfer._jsonfile import read_json, validate
from azinfer.names import ResourceKind

__all__ = [
    "RESOURCE_TYPES",
    "JOB_TYPE",
    "WorkloadProfile",
    "ResourceFacts",
    "Inventory",
    "InMemoryInventory",
    "resource_name",
]

RESOURCE_TYPES: Mapping[ResourceKind, str] = {
    ResourceKind.STORAGE_ACCOUNT: "Microsoft.Storage/storageAccounts",
    ResourceKind.FILE_SHARE: "Microsoft.Storage/storageAccounts/fileServices/shares",
    ResourceKind.LOG_ANALYTICS: "Microsoft.OperationalInsights/workspaces",
    ResourceKind.ENVIRONMENT: "Microsoft.App/managedEnvironments",
    ResourceKind.ENVIRONMENT_STORAGE: "Microsoft.App/managedEnvironments/storages",
    ResourceKind.CONTAINER_APP: "Microsoft.App/containerApps",
}
JOB_TYPE = "Microsoft.App/jobs"


def resource_name(kind: ResourceKind, name: str, *, parent: str | None = None) -> str:
    """The ARM name of a resource: child resources carry their parent (``account/default/share``)."""
    if kind is ResourceKind.FILE_SHARE:
        return f"{parent}/default/{name}"
    if kind is ResourceKind.ENVIRONMENT_STORAGE:
        return f"{parent}/{name}"
    return name


@dataclass(frozen=True)
class WorkloadProfile:
    """A workload profile of a Container Apps environment (counts only for dedicated profiles)."""

    name: str
    workload_profile_type: str
    minimum_count: int | None = None
    maximum_count: int | None = None

    def to_json(self) -> dict[str, Any]:
        """``{"name", "workloadProfileType"[, "minimumCount", "maximumCount"]}``."""
        data: dict[str, Any] = {"name": self.name, "workloadProfileType": self.workload_profile_type}
        if self.minimum_count is not None:
            data["minimumCount"] = self.minimum_count
        if self.maximum_count is not None:
            data["maximumCount"] = self.maximum_count
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkloadProfile:
        """Build from the JSON form."""
        return cls(data["name"], data["workloadProfileType"], data.get("minimumCount"), data.get("maximumCount"))


@dataclass(frozen=True)
class ResourceFacts:
    """What the planner needs to know about one existing resource.

    Only the facts of the resource's own type are set; the others stay ``None``.
    """

    type: str
    name: str
    location: str | None = None
    workload_profiles: tuple[WorkloadProfile, ...] | None = None
    """Environment: its workload profiles."""
    log_analytics_customer_id: str | None = None
    """Environment: the customer id of the workspace its logs go to."""
    allow_shared_key_access: bool | None = None
    """Storage account: whether shared-key access is allowed (``None``: Azure's default, allowed)."""
    account_name: str | None = None
    """Environment storage: the storage account it mounts."""
    share_name: str | None = None
    """Environment storage: the file share it mounts."""
    customer_id: str | None = None
    """Log Analytics workspace: its customer id."""
    environment_id: str | None = None
    """Container app or job: the id of its environment."""
    fqdn: str | None = None
    """Container app: its ingress FQDN."""
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def short_name(self) -> str:
        """The last segment of the name (``share`` for ``account/default/share``)."""
        return self.name.rsplit("/", 1)[-1]

    @property
    def parent_name(self) -> str:
        """The first segment of the name (the account or the environment of a child)."""
        return self.name.split("/", 1)[0]

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``schemas/inventory.schema.json``), unset facts left out."""
        data: dict[str, Any] = {"type": self.type, "name": self.name}
        for key, attr in _FACTS.items():
            value = getattr(self, attr)
            if value is not None:
                data[key] = value
        if self.workload_profiles is not None:
            data["workloadProfiles"] = [p.to_json() for p in self.workload_profiles]
        if self.tags:
            data["tags"] = dict(self.tags)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResourceFacts:
        """Build from the JSON form."""
        profiles = data.get("workloadProfiles")
        return cls(
            type=data["type"],
            name=data["name"],
            workload_profiles=None
            if profiles is None
            else tuple(WorkloadProfile.from_json(p) for p in profiles),
            tags=dict(data.get("tags", {})),
            **{attr: data.get(key) for key, attr in _FACTS.items()},
        )


_FACTS = {
    "location": "location",
    "logAnalyticsCustomerId": "log_analytics_customer_id",
    "allowSharedKeyAccess": "allow_shared_key_access",
    "accountName": "account_name",
    "shareName": "share_name",
    "customerId": "customer_id",
    "environmentId": "environment_id",
    "fqdn": "fqdn",
}


@runtime_checkable
class Inventory(Protocol):
    """What exists in one resource group, as the planner reads it."""

    @property
    def resource_group_location(self) -> str | None:
        """The resource group's region, when known."""

    def get(self, resource_type: str, name: str) -> ResourceFacts | None:
        """The resource of that ARM type and name, or ``None`` when it does not exist."""

    def list(self, resource_type: str) -> Sequence[ResourceFacts]:
        """Every known resource of that ARM type."""

    @property
    def offline(self) -> bool:
        """Whether nothing was looked up (an offline plan): absent resources are then unknown, not missing."""


@dataclass(frozen=True)
class InMemoryInventory:
    """An :class:`Inventory` held in memory; build it directly or from JSON.

    ``InMemoryInventory()`` is an empty resource group;
    ``InMemoryInventory(offline=True)`` says nothing was looked up (an offline plan).
    """

    resources: tuple[ResourceFacts, ...] = ()
    resource_group_location: str | None = None
    offline: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "resources", tuple(self.resources))
        object.__setattr__(self, "_index", {(r.type.lower(), r.name.lower()): r for r in self.resources})

    def get(self, resource_type: str, name: str) -> ResourceFacts | None:
        index: dict[tuple[str, str], ResourceFacts] = self._index  # type: ignore[attr-defined]
        return index.get((resource_type.lower(), name.lower()))

    def list(self, resource_type: str) -> Sequence[ResourceFacts]:
        return tuple(r for r in self.resources if r.type.lower() == resource_type.lower())

    def with_resources(self, resources: Iterable[ResourceFacts]) -> InMemoryInventory:
        """A copy with more resources (same type and name replaces)."""
        added = {(r.type.lower(), r.name.lower()): r for r in resources}
        kept = [r for r in self.resources if (r.type.lower(), r.name.lower()) not in added]
        return InMemoryInventory((*kept, *added.values()), self.resource_group_location, self.offline)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``schemas/inventory.schema.json``)."""
        data: dict[str, Any] = {"resources": [r.to_json() for r in self.resources]}
        if self.resource_group_location is not None:
            data["resourceGroupLocation"] = self.resource_group_location
        return data

    @classmethod
    def from_json(cls, data: Any, *, display: str = "inventory") -> InMemoryInventory:
        """Build from the JSON form.

        :raises ProjectFileError: when ``data`` does not match ``schemas/inventory.schema.json``.
        """
        validate(data, "inventory.schema.json", display=display)
        return cls(
            tuple(ResourceFacts.from_json(r) for r in data.get("resources", [])),
            data.get("resourceGroupLocation"),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> InMemoryInventory:
        """Read an inventory JSON file.

        :raises ProjectFileError: when the file is missing, not JSON or invalid.
        """
        return cls.from_json(read_json(Path(path), display=str(path)), display=str(path))
