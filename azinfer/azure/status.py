"""``azinfer status``: the app's state, its serving revision and replicas, GPU profile, and ``/ready``."""

from __future__ import annotations

from azinfer.azure.app import EndpointStatus, endpoint_status
from azinfer.azure.context import AzureContext
from azinfer.azure.key import request_key
from azinfer.azure.scope import ProjectScope

__all__ = ["status"]


def status(ctx: AzureContext, scope: ProjectScope, *, ask_ready: bool = True) -> EndpointStatus:
    """See :meth:`AzureProject.status`."""
    config = scope.provisioned()
    key = request_key(ctx, scope) if ask_ready else None
    return endpoint_status(ctx.clients, config.resource_group or scope.resource_group, config.app_name or "",
                           key, verify=ctx.verify, ask_ready=ask_ready)
