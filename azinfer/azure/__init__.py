"""Stage 5: azinfer against Azure, the only part of azinfer that imports ``azure.*`` (lazily).

- :class:`AzureProject`: plan against what exists, preview (ARM what-if),
  provision with progress, read the API key; then deploy (sync to the share,
  restart, wait for ``/ready``), status, logs, destroy.
- :func:`read_inventory`: a resource group as an :class:`~azinfer.inventory.InMemoryInventory`.
- :mod:`azinfer.azure.preflight`: GPU profile availability, GPU quota, storage name.
"""

from __future__ import annotations

from azinfer.azure.app import EndpointStatus, ReadyTimeout, ReplicaStatus, RevisionStatus
from azinfer.azure.clients import AzureClients, AzureTarget, Cloud, target_for
from azinfer.azure.deploy import DeploymentInterrupted, ResourceProgress, WhatIf, WhatIfChange
from azinfer.azure.inventory import read_inventory
from azinfer.azure.lifecycle import DeployResult, SyncSummary
from azinfer.azure.provision import AzureProject, DestroyResult, Preview, ProvisionResult
from azinfer.azure.share import SyncError, SyncInterrupted, SyncPlan, SyncResult
from azinfer.azure.teardown import TeardownAction, TeardownItem, TeardownPlan

__all__ = [
    "AzureProject",
    "DeployResult",
    "DestroyResult",
    "EndpointStatus",
    "ReadyTimeout",
    "ReplicaStatus",
    "RevisionStatus",
    "SyncError",
    "SyncInterrupted",
    "SyncPlan",
    "SyncResult",
    "SyncSummary",
    "TeardownAction",
    "TeardownItem",
    "TeardownPlan",
    "AzureClients",
    "AzureTarget",
    "Cloud",
    "DeploymentInterrupted",
    "Preview",
    "ProvisionResult",
    "ResourceProgress",
    "WhatIf",
    "WhatIfChange",
    "read_inventory",
    "target_for",
]
