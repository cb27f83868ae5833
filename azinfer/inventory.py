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
from typing import Any, Protocol, runtime_checkable

from azinfer._arguments import (
    check_mapping,
    check_optional_text,
    check_path,
    check_text,
    check_type,
)
from azinfer._jsonfile import read_json, validate
from azinfer.errors import ArgumentError

__all__ = [
    "CARRIED_ENVIRONMENT_PROPERTIES",
    "carried_environment_properties",
    "JOB_TYPE",
    "WorkloadProfile",
    "ResourceFacts",
    "Inventory",
    "InMemoryInventory",
    "inventory_differences",
]

JOB_TYPE = "Microsoft.App/jobs"

CARRIED_ENVIRONMENT_PROPERTIES = frozenset({
    "customDomainConfiguration", "daprConfiguration", "infrastructureResourceGroup", "ingressConfiguration",
    "kedaConfiguration", "peerAuthentication", "peerTrafficConfiguration", "publicNetworkAccess",
    "vnetConfiguration", "zoneRedundant",
})
"""The writable properties of an environment (ARM's 2026-01-01 schema) that azinfer does not model and
writes back unchanged when it updates one. The rest: ``appLogsConfiguration`` and ``workloadProfiles``
are azinfer's; ``daprAIConnectionString`` and ``daprAIInstrumentationKey`` are secrets Azure never returns
(an update leaves them out, and Azure keeps or drops them as it does for any deployment without them)."""

# Secrets inside a carried property: Azure does not return them, and no template may hold them.
_SECRET_SUBPROPERTIES = {"customDomainConfiguration": ("certificatePassword", "certificateValue")}


def carried_environment_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an environment's ARM ``properties`` that an update must write back, secrets left out."""
    carried = {}
    for key, value in properties.items():
        if key not in CARRIED_ENVIRONMENT_PROPERTIES or value is None or value == {}:
            continue
        secrets = _SECRET_SUBPROPERTIES.get(key, ())
        carried[key] = {k: v for k, v in value.items() if k not in secrets} if secrets and isinstance(value, Mapping) else value
    return carried


@dataclass(frozen=True)
class WorkloadProfile:
    """A workload profile of a Container Apps environment (counts only for dedicated profiles)."""

    name: str
    workload_profile_type: str
    minimum_count: int | None = None
    maximum_count: int | None = None

    def __post_init__(self) -> None:
        check_text("WorkloadProfile", "name", self.name)
        check_text("WorkloadProfile", "workload_profile_type", self.workload_profile_type)
        for argument in ("minimum_count", "maximum_count"):
            if getattr(self, argument) is not None:
                check_type("WorkloadProfile", argument, getattr(self, argument), int, "an int or None")

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
        """Build from the JSON form.

        :raises ArgumentError: when ``data`` is no mapping with ``name`` and ``workloadProfileType``.
        """
        data = _json_object("WorkloadProfile.from_json", data, ("name", "workloadProfileType"))
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
    unmodeled: Mapping[str, Any] = field(default_factory=dict)
    """Environment: what it has beyond what azinfer models, in ARM's JSON form (``identity``, and
    ``properties`` such as ``vnetConfiguration`` or ``zoneRedundant``). A deployment replaces a
    resource whole, so an update writes these back as they are (see :data:`CARRIED_ENVIRONMENT_PROPERTIES`)."""

    def __post_init__(self) -> None:
        check_text("ResourceFacts", "type", self.type)
        check_text("ResourceFacts", "name", self.name)
        check_mapping("ResourceFacts", "tags", self.tags)
        check_mapping("ResourceFacts", "unmodeled", self.unmodeled)

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
        if self.unmodeled:
            data["unmodeled"] = dict(self.unmodeled)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResourceFacts:
        """Build from the JSON form.

        :raises ArgumentError: when ``data`` is no mapping with ``type`` and ``name``.
        """
        data = _json_object("ResourceFacts.from_json", data, ("type", "name"))
        profiles = data.get("workloadProfiles")
        return cls(
            type=data["type"],
            name=data["name"],
            workload_profiles=None
            if profiles is None
            else tuple(WorkloadProfile.from_json(p) for p in profiles),
            tags=dict(data.get("tags", {})),
            unmodeled=dict(data.get("unmodeled", {})),
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
        object.__setattr__(self, "resources", _facts("InMemoryInventory", "resources", self.resources))
        check_optional_text("InMemoryInventory", "resource_group_location", self.resource_group_location)
        check_type("InMemoryInventory", "offline", self.offline, bool, "a bool")
        object.__setattr__(self, "_index", {(r.type.lower(), r.name.lower()): r for r in self.resources})

    def get(self, resource_type: str, name: str) -> ResourceFacts | None:
        index: dict[tuple[str, str], ResourceFacts] = self._index  # type: ignore[attr-defined]
        return index.get((resource_type.lower(), name.lower()))

    def list(self, resource_type: str) -> Sequence[ResourceFacts]:
        return tuple(r for r in self.resources if r.type.lower() == resource_type.lower())

    def with_resources(self, resources: Iterable[ResourceFacts]) -> InMemoryInventory:
        """A copy with more resources (same type and name replaces).

        :raises ArgumentError: when ``resources`` is no iterable of :class:`ResourceFacts`.
        """
        resources = _facts("InMemoryInventory.with_resources", "resources", resources)
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
        :raises ArgumentError: when ``display`` is no string.
        """
        display = check_text("InMemoryInventory.from_json", "display", display)
        validate(data, "inventory.schema.json", display=display)
        return cls(
            tuple(ResourceFacts.from_json(r) for r in data.get("resources", [])),
            data.get("resourceGroupLocation"),
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> InMemoryInventory:
        """Read an inventory JSON file.

        :raises ProjectFileError: when the file is missing, not JSON or invalid.
        :raises ArgumentError: when ``path`` is no path.
        """
        path = check_path("InMemoryInventory.load", "path", path)
        return cls.from_json(read_json(path, display=str(path)), display=str(path))


def _json_object(function: str, data: object, keys: tuple[str, ...]) -> Mapping[str, Any]:
    mapping = check_mapping(function, "data", data)
    missing = [key for key in keys if key not in mapping]
    if missing:
        raise ArgumentError(function, "data", "a JSON object with " + " and ".join(repr(k) for k in keys), data)
    return mapping


def _facts(function: str, argument: str, value: object) -> tuple[ResourceFacts, ...]:
    """``value``, an iterable of :class:`ResourceFacts`, as a tuple."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ArgumentError(function, argument, "an iterable of ResourceFacts", value)
    items = tuple(value)
    for index, item in enumerate(items):
        check_type(function, f"{argument}[{index}]", item, ResourceFacts, "a ResourceFacts")
    return items


def inventory_differences(before: Inventory, after: Inventory, types: Iterable[str]) -> tuple[str, ...]:
    """What changed between two snapshots, for the resource types listed, in words (empty: nothing).

    A saved preview is deployed only when this is empty (the plan was made for ``before``).
    """
    changes = []
    for resource_type in types:
        old = {r.name.lower(): r for r in before.list(resource_type)}
        new = {r.name.lower(): r for r in after.list(resource_type)}
        for key in sorted(old.keys() - new.keys()):
            changes.append(f"{resource_type} {old[key].name!r} is gone")
        for key in sorted(new.keys() - old.keys()):
            changes.append(f"{resource_type} {new[key].name!r} appeared")
        for key in sorted(old.keys() & new.keys()):
            was, now = old[key].to_json(), new[key].to_json()
            fields = sorted(k for k in was.keys() | now.keys() if was.get(k) != now.get(k))
            if fields:
                changes.append(f"{resource_type} {new[key].name!r} changed ({', '.join(fields)})")
    return tuple(changes)
