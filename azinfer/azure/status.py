"""``azinfer status``: the app's state, its serving revision and replicas, GPU profile, ``/ready``, and a diagnosis."""

from __future__ import annotations

from dataclasses import replace

from azinfer.azure.app import EndpointStatus, endpoint_status
from azinfer.azure.arm import deployment_name, in_flight
from azinfer.azure.context import AzureContext
from azinfer.azure.key import request_key
from azinfer.azure.logs import diagnosis
from azinfer.azure.scope import ProjectScope
from azinfer.errors import AzureError

__all__ = ["status"]


def status(ctx: AzureContext, scope: ProjectScope, *, ask_ready: bool = True) -> EndpointStatus:
    """See :meth:`AzureProject.status`."""
    try:
        config = scope.provisioned()
    except AzureError as exc:
        # The config is written when provision ends: while a first one runs, say so rather than "run provision".
        running = in_flight(ctx, scope.resource_group, deployment_name(scope.base))
        if running is None:
            raise
        raise AzureError(f"{exc}: provisioning is under way, {running}; creating a GPU environment can take most "
                         "of an hour, 'azinfer provision' attaches to it and shows each resource's progress") from None
    key = request_key(ctx, scope) if ask_ready else None
    group, app = config.resource_group or scope.resource_group, config.app_name or ""
    result = endpoint_status(ctx.clients, group, app, key, verify=ctx.verify, ask_ready=ask_ready)
    if result.ready:
        return result
    # Not serving (or not asked): what Container Apps says about it.
    return replace(result, diagnosis=diagnosis(ctx, group, app, result))
