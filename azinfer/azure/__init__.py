"""Stage 5: azinfer against Azure, the only part of azinfer that imports ``azure.*`` (lazily).

- :class:`AzureProject` (:mod:`.project`): a facade that checks its arguments
  and calls one module per operation: :mod:`.provision` (plan, preview (ARM
  what-if), deploy the templates, write the config), :mod:`.deploy` (sync to
  the share, restart, wait for ``/ready``), :mod:`.rollout` (``deploy(canary=True)``,
  ``rollback``), :mod:`.status`, :mod:`.logs`, :mod:`.destroy`, and :mod:`.up` (provision, wait for
  ``/ready``, a smoke test: one command). Each takes one :class:`AzureContext` (:mod:`.context`).
- :mod:`.events`: one :class:`Event` for every operation's progress, one :class:`Question` before a write.
- :mod:`.arm`: ARM deployments (validate, what-if, run, attach).
- :func:`read_inventory`: a resource group as an :class:`~azinfer.inventory.InMemoryInventory`.
- :mod:`azinfer.azure.preflight`: GPU profile availability, GPU quota, storage name.
"""

from __future__ import annotations

from azinfer.azure.app import EndpointStatus, ReplicaStatus, RevisionStatus
from azinfer.azure.arm import WhatIf, WhatIfChange
from azinfer.azure.clients import AzureClients, AzureTarget, Cloud, target_for
from azinfer.azure.context import AzureContext
from azinfer.azure.deploy import DeployResult, SyncSummary
from azinfer.azure.destroy import DestroyResult
from azinfer.azure.events import Event, EventKind, Operation, Question
from azinfer.azure.inventory import read_inventory
from azinfer.azure.project import AzureProject
from azinfer.azure.provision import Preview, ProvisionResult
from azinfer.azure.rollout import RollbackResult, RolloutResult
from azinfer.azure.share import SyncPlan, SyncResult
from azinfer.azure.smoke import SmokeTest
from azinfer.azure.teardown import TeardownAction, TeardownItem, TeardownPlan
from azinfer.azure.up import UpResult, UpStage
from azinfer.errors import DeploymentInterrupted, ReadyTimeout, SmokeTestFailed, SyncError, SyncInterrupted, UpInterrupted

__all__ = [
    "AzureProject",
    "AzureContext",
    "Event",
    "EventKind",
    "Operation",
    "Question",
    "DeployResult",
    "DestroyResult",
    "EndpointStatus",
    "ReadyTimeout",
    "RollbackResult",
    "RolloutResult",
    "SmokeTestFailed",
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
    "WhatIf",
    "WhatIfChange",
    "read_inventory",
    "target_for",
    "SmokeTest",
    "UpInterrupted",
    "UpResult",
    "UpStage",
]
