"""The endpoint's API key, read from the container app's secret (never written anywhere)."""

from __future__ import annotations

from azinfer.azure.arm import app_secret
from azinfer.azure.context import AzureContext
from azinfer.azure.scope import ProjectScope
from azinfer.errors import AzureError
from azinfer.project import Authentication
from azinfer.resources import ResourceKind
from azinfer.templates.inference import API_KEY_SECRET

__all__ = ["api_key", "request_key"]


def api_key(ctx: AzureContext, scope: ProjectScope) -> str:
    """The key the app holds.

    :raises AzureError: when nothing is provisioned (the config file says so), the app does not exist, or it has
        no key (authentication none).
    """
    config = scope.provisioned()  # after destroy, as every command: "nothing is provisioned", not a missing secret
    # The app the config names, where provision put it (the resource group may differ from the fine-tuning one).
    group = config.resource_group or scope.resource_group
    app = config.app_name or scope.base.name(ResourceKind.CONTAINER_APP)
    key = app_secret(ctx.clients, group, app, API_KEY_SECRET)
    if key is None:
        raise AzureError(f"container app {app!r} has no API key "
                         "(not provisioned yet, or authentication is 'none')")
    return key


def request_key(ctx: AzureContext, scope: ProjectScope) -> str | None:
    """The key a request to the endpoint carries: ``None`` when the project's authentication is ``none``."""
    if scope.project.inference_parameters.authentication is Authentication.NONE:
        return None
    return api_key(ctx, scope)
