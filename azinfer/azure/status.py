"""``azinfer status``: the app's state, its serving revision and replicas, GPU profile, ``/ready``, and a diagnosis."""

from __future__ import annotations

from dataclasses import replace

from azinfer.azure.app import EndpointStatus, endpoint_status
from azinfer.azure.context import AzureContext
from azinfer.azure.key import request_key
from azinfer.azure.logs import diagnosis
from azinfer.azure.scope import ProjectScope

__all__ = ["status"]


def status(ctx: AzureContext, scope: ProjectScope, *, ask_ready: bool = True) -> EndpointStatus:
    """See :meth:`AzureProject.status`."""
    config = scope.provisioned()
    key = request_key(ctx, scope) if ask_ready else None
    group, app = config.resource_group or scope.resource_group, config.app_name or ""
    result = endpoint_status(ctx.clients, group, app, key, verify=ctx.verify, ask_ready=ask_ready)
    if result.ready:
        return result
    # Not serving (or not asked): what Container Apps says about it.
    return replace(result, diagnosis=diagnosis(ctx, group, app, result))
