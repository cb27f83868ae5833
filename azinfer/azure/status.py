"""``azinfer status``: the app's state, its serving revision and replicas, GPU profile, ``/ready``, and a diagnosis."""

from __future__ import annotations

from dataclasses import replace

from azinfer.azure.app import EndpointStatus, endpoint_status
from azinfer.azure.context import AzureContext
from azinfer.azure.diagnosis import SYSTEM_TAIL, diagnose
from azinfer.azure.key import request_key
from azinfer.azure.logs import last_logs
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
    # Not serving: what Container Apps says about it, read only now (each stream is a round trip).
    system = last_logs(ctx, group, app, SYSTEM_TAIL, system=True)
    console = last_logs(ctx, group, app, 5) if result.revision is not None and result.revision.replicas else ()
    found = diagnose(result.revision, system, console_lines=console, environment_state=result.environment_state)
    return replace(result, diagnosis=found.to_text() if found is not None else None)
