"""AI Toolkit projects and resource-group inventories for the core tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from azinfer.inventory import InMemoryInventory, ResourceFacts, WorkloadProfile
from azinfer.names import default_name, unique_string
from azinfer.resources import ResourceKind

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "phi3"
SUBSCRIPTION = "8a3f1d2e-4b5c-4d6e-9f70-1a2b3c4d5e6f"
RESOURCE_GROUP = "rg-phi3-finetune"
RG_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"


def write_parameters(path: Path, values: dict[str, Any]) -> None:
    """Write an ARM parameters file with ``values``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
                "contentVersion": "1.0.0.0",
                "parameters": {k: {"value": v} for k, v in values.items()},
            },
            indent=2,
        )
    )


def finetuning_inventory(
    rg_id: str = RG_ID,
    *,
    location: str = "westus3",
    profiles: tuple[WorkloadProfile, ...] = (WorkloadProfile("Consumption", "Consumption"), WorkloadProfile("GPU", "NC24-A100")),
    shared_key: bool | None = None,
) -> InMemoryInventory:
    """A resource group as the AI Toolkit's fine-tuning template leaves it."""
    name = {kind: default_name(kind, rg_id) for kind in ResourceKind}
    env = name[ResourceKind.ENVIRONMENT]
    env_id = f"{rg_id}/providers/Microsoft.App/managedEnvironments/{env}"
    return InMemoryInventory(
        (
            ResourceFacts("Microsoft.Storage/storageAccounts", name[ResourceKind.STORAGE_ACCOUNT], location,
                          allow_shared_key_access=shared_key),
            ResourceFacts("Microsoft.Storage/storageAccounts/fileServices/shares",
                          f"{name[ResourceKind.STORAGE_ACCOUNT]}/default/{name[ResourceKind.FILE_SHARE]}"),
            ResourceFacts("Microsoft.OperationalInsights/workspaces", name[ResourceKind.LOG_ANALYTICS], location,
                          customer_id="11111111-2222-3333-4444-555555555555"),
            ResourceFacts("Microsoft.App/managedEnvironments", env, location, workload_profiles=profiles,
                          log_analytics_customer_id="11111111-2222-3333-4444-555555555555"),
            ResourceFacts("Microsoft.App/managedEnvironments/storages", f"{env}/{name[ResourceKind.ENVIRONMENT_STORAGE]}",
                          account_name=name[ResourceKind.STORAGE_ACCOUNT], share_name=name[ResourceKind.FILE_SHARE]),
            ResourceFacts("Microsoft.App/jobs", "aiacajob" + unique_string(rg_id)[:5], location, environment_id=env_id),
        ),
        resource_group_location=location,
    )
