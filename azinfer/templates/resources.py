"""The resource table both renderers share: ARM types, api-versions, symbols and fixed settings.

One place says which api-version each resource type is deployed with and
what the GPU workload profile types need, so the ARM JSON and the Bicep
renderings cannot disagree on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from azinfer.names import ResourceKind
from azinfer.project import GPU_SPECS, GpuSpec

__all__ = ["ResourceSpec", "SPECS", "FILE_SERVICE", "GpuSpec", "GPU_SPECS", "API_KEY_SECRET", "SHARE_VOLUME", "TAGS", "Probe", "PROBES", "PORT_PROBES", "probes_for"]


@dataclass(frozen=True)
class ResourceSpec:
    """One resource type as the templates declare it."""

    type: str
    api_version: str
    symbol: str
    """Bicep symbol of the resource."""
    name_var: str
    """Template variable holding the resource's (leaf) name."""


# Current GA api-versions (checked against Microsoft's ARM schemas in tests/arm_schemas).
_STORAGE_API = "2025-08-01"
_APP_API = "2026-01-01"
_LOGS_API = "2025-07-01"

SPECS: Mapping[ResourceKind, ResourceSpec] = {
    ResourceKind.STORAGE_ACCOUNT: ResourceSpec("Microsoft.Storage/storageAccounts", _STORAGE_API, "storage", "storageName"),
    ResourceKind.FILE_SHARE: ResourceSpec(
        "Microsoft.Storage/storageAccounts/fileServices/shares", _STORAGE_API, "fileShare", "shareName"
    ),
    ResourceKind.LOG_ANALYTICS: ResourceSpec(
        "Microsoft.OperationalInsights/workspaces", _LOGS_API, "logAnalytics", "logAnalyticsName"
    ),
    ResourceKind.ENVIRONMENT: ResourceSpec("Microsoft.App/managedEnvironments", _APP_API, "environment", "environmentName"),
    ResourceKind.ENVIRONMENT_STORAGE: ResourceSpec(
        "Microsoft.App/managedEnvironments/storages", _APP_API, "environmentStorage", "environmentStorageName"
    ),
    ResourceKind.CONTAINER_APP: ResourceSpec("Microsoft.App/containerApps", _APP_API, "app", "appName"),
}

FILE_SERVICE = ResourceSpec("Microsoft.Storage/storageAccounts/fileServices", _STORAGE_API, "fileService", "")


API_KEY_SECRET = "azinfer-api-key"
SHARE_VOLUME = "model-share"
TAGS: Mapping[str, str] = {"managed-by": "azinfer", "azinfer-role": "inference"}


@dataclass(frozen=True)
class Probe:
    """A container probe on the server's port: an HTTP GET of ``path``, or a TCP connect when ``path`` is ``None``."""

    type: str
    path: str | None
    timing: Mapping[str, int]


# Liveness and startup watch the process (/health answers as soon as it runs);
# readiness waits for the model (/ready), so a slow model load never gets the
# replica killed. Startup allows 10 minutes for a first start that installs
# the serving stack into the share's cache.
PROBES: tuple[Probe, ...] = (
    Probe("Startup", "/health", {"initialDelaySeconds": 10, "periodSeconds": 60, "failureThreshold": 10}),
    Probe("Liveness", "/health", {"periodSeconds": 30, "failureThreshold": 3}),
    Probe("Readiness", "/ready", {"periodSeconds": 10, "failureThreshold": 3}),
)

# A start command the user wrote: azinfer knows only its port. Startup allows 40 minutes
# (ACA's largest period and threshold) because such commands often install packages first.
PORT_PROBES: tuple[Probe, ...] = (
    Probe("Startup", None, {"initialDelaySeconds": 10, "periodSeconds": 240, "failureThreshold": 10}),
    Probe("Liveness", None, {"periodSeconds": 30, "failureThreshold": 3}),
    Probe("Readiness", None, {"periodSeconds": 10, "failureThreshold": 3}),
)


def probes_for(serves_azinfer: bool) -> tuple[Probe, ...]:
    """The probes that fit the start command: azinfer's routes, or the port of the user's server."""
    return PROBES if serves_azinfer else PORT_PROBES
