"""The resource table: one row per Azure resource kind an inference deployment is made of.

Every fact about a kind lives in its row: the ARM type and the api-version
the templates deploy it with, its parent, its label in messages, the
inference parameter that names it, the AI Toolkit's default name prefix,
Azure's naming rule and the Bicep symbol. The planner, the inventory, the
name checks and both template printers read them from here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

__all__ = [
    "ResourceKind",
    "NamingRule",
    "ResourceType",
    "RESOURCES",
    "FILE_SERVICE",
    "resource_name",
]


class ResourceKind(str, Enum):
    """The Azure resources an inference deployment is made of."""

    STORAGE_ACCOUNT = "storageAccount"
    """Microsoft.Storage/storageAccounts: holds the file share."""
    FILE_SHARE = "fileShare"
    """Microsoft.Storage/storageAccounts/fileServices/shares: model cache, adapter, code."""
    LOG_ANALYTICS = "logAnalytics"
    """Microsoft.OperationalInsights/workspaces: the environment's logs."""
    ENVIRONMENT = "environment"
    """Microsoft.App/managedEnvironments: the Container Apps environment with the GPU profile."""
    ENVIRONMENT_STORAGE = "environmentStorage"
    """Microsoft.App/managedEnvironments/storages: the share, as the environment mounts it."""
    CONTAINER_APP = "containerApp"
    """Microsoft.App/containerApps: the inference server."""

    @property
    def spec(self) -> ResourceType:
        """This kind's row of the resource table."""
        return RESOURCES[self]

    @property
    def label(self) -> str:
        """The kind in words, e.g. ``"storage account"``."""
        return RESOURCES[self].label

    @property
    def parameter(self) -> str:
        """The inference parameter that names this resource, e.g. ``"storageAccountName"``."""
        parameter = RESOURCES[self].parameter
        assert parameter is not None  # every kind is named by a parameter
        return parameter

    @property
    def arm_type(self) -> str:
        """The ARM resource type, e.g. ``"Microsoft.Storage/storageAccounts"``."""
        return RESOURCES[self].type


@dataclass(frozen=True)
class NamingRule:
    """Azure's naming rule for one resource type ("Naming rules and restrictions for Azure resources")."""

    min_length: int
    max_length: int
    pattern: str
    """What the whole name must match (a Python regular expression), length aside."""
    text: str
    """The rule in words, lengths included."""

    def matches(self, name: str) -> bool:
        """Whether ``name`` keeps the rule."""
        return self.min_length <= len(name) <= self.max_length and re.fullmatch(self.pattern, name) is not None


@dataclass(frozen=True)
class ResourceType:
    """One row of the resource table."""

    type: str
    """The ARM resource type."""
    api_version: str
    """The api-version the templates deploy it with."""
    label: str
    """The kind in words, for messages."""
    symbol: str
    """Its Bicep symbol; the ARM printer names its variables after it (``<symbol>Name``)."""
    parent: ResourceType | None = None
    """The resource it is a child of (its ARM name starts with the parent's)."""
    parameter: str | None = None
    """The inference parameter that names it (``None``: its name is fixed)."""
    default_prefix: str | None = None
    """The AI Toolkit's name prefix; the suffix comes from the resource group id."""
    naming: NamingRule | None = None
    """Azure's naming rule (``None``: its name is fixed)."""
    fixed_name: str | None = None
    """The only name it can have (a storage account's file service is ``default``)."""


# Current GA api-versions (checked against Microsoft's ARM schemas in tests/arm_schemas).
_STORAGE_API = "2025-08-01"
_APP_API = "2026-01-01"
_LOGS_API = "2025-07-01"

# Lowercase letters, digits and single hyphens, starting and ending with a letter or digit.
_HYPHENATED = r"[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]"
# The same, starting with a letter (Container Apps).
_APP_NAME = r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*"

_STORAGE_ACCOUNT = ResourceType(
    "Microsoft.Storage/storageAccounts", _STORAGE_API, "storage account", "storage",
    parameter="storageAccountName", default_prefix="aistorage",
    naming=NamingRule(3, 24, r"[a-z0-9]+",
                      "3 to 24 characters, lowercase letters and digits only (and unique across Azure)"),
)
FILE_SERVICE = ResourceType(
    "Microsoft.Storage/storageAccounts/fileServices", _STORAGE_API, "file service", "fileService",
    parent=_STORAGE_ACCOUNT, fixed_name="default",
)
"""A storage account's file service: the parent of its shares, not a kind of its own."""
_ENVIRONMENT = ResourceType(
    "Microsoft.App/managedEnvironments", _APP_API, "Container Apps environment", "environment",
    parameter="acaEnvironmentName", default_prefix="aienv",
    naming=NamingRule(2, 60, _APP_NAME, "2 to 60 characters, lowercase letters, digits and single hyphens, "
                      "starting with a letter and ending with a letter or digit"),
)

RESOURCES: Mapping[ResourceKind, ResourceType] = MappingProxyType({
    ResourceKind.STORAGE_ACCOUNT: _STORAGE_ACCOUNT,
    ResourceKind.FILE_SHARE: ResourceType(
        "Microsoft.Storage/storageAccounts/fileServices/shares", _STORAGE_API, "file share", "share",
        parent=FILE_SERVICE, parameter="fileShareName", default_prefix="aifileshare",
        naming=NamingRule(3, 63, _HYPHENATED, "3 to 63 characters, lowercase letters, digits and single hyphens, "
                          "starting and ending with a letter or digit"),
    ),
    ResourceKind.LOG_ANALYTICS: ResourceType(
        "Microsoft.OperationalInsights/workspaces", _LOGS_API, "Log Analytics workspace", "logAnalytics",
        parameter="acaLogAnalyticsName", default_prefix="ailog",
        naming=NamingRule(4, 63, r"[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]", "4 to 63 characters, letters, digits "
                          "and hyphens, starting and ending with a letter or digit"),
    ),
    ResourceKind.ENVIRONMENT: _ENVIRONMENT,
    ResourceKind.ENVIRONMENT_STORAGE: ResourceType(
        "Microsoft.App/managedEnvironments/storages", _APP_API, "environment storage", "environmentStorage",
        parent=_ENVIRONMENT, parameter="acaEnvironmentStorageName", default_prefix="aienvstorage",
        naming=NamingRule(2, 32, _HYPHENATED, "2 to 32 characters, lowercase letters, digits and single hyphens, "
                          "starting and ending with a letter or digit"),
    ),
    ResourceKind.CONTAINER_APP: ResourceType(
        "Microsoft.App/containerApps", _APP_API, "container app", "app",
        parameter="acaAppName", default_prefix="aiacaapp",
        naming=NamingRule(2, 32, _APP_NAME, "2 to 32 characters, lowercase letters, digits and single hyphens, "
                          "starting with a letter and ending with a letter or digit"),
    ),
})
"""The resource table, in deployment order."""


def resource_name(kind: ResourceKind, name: str, *, parent: str | None = None) -> str:
    """The ARM name of a resource: a child carries its named parent and fixed ones (``account/default/share``).

    :param parent: the name of the nearest named parent (the account of a share); unused for top-level kinds.
    """
    segments = [name]
    row = RESOURCES[kind].parent
    while row is not None:
        segments.insert(0, row.fixed_name if row.fixed_name is not None else str(parent))
        row = row.parent
    return "/".join(segments)
