"""Stage 2 from Azure: an inventory snapshot of one resource group, read with the official clients.

Reads run concurrently in two rounds (the resource group and every resource
list, then the shares and environment storages below what the first round
found), so the snapshot costs about two round trips whatever the group
holds. The result is an :class:`~azinfer.inventory.InMemoryInventory`: the
planner stays pure. An absent resource is a fact; an absent resource group
is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from azinfer.azure.clients import AzureClients, permission_error
from azinfer.errors import AzureError
from azinfer.inventory import (
    JOB_TYPE,
    RESOURCE_TYPES,
    InMemoryInventory,
    ResourceFacts,
    WorkloadProfile,
)
from azinfer.names import ResourceKind

__all__ = ["read_inventory"]

T = TypeVar("T")
_WORKERS = 8


def _props(resource: Any) -> Any:
    """The resource's properties, whether the SDK model nests them or flattens them."""
    props = getattr(resource, "properties", None)
    return props if props is not None else resource


def _tags(resource: Any) -> dict[str, str]:
    return dict(getattr(resource, "tags", None) or {})


def _environment(env: Any) -> ResourceFacts:
    props = _props(env)
    logs = getattr(props, "app_logs_configuration", None)
    analytics = getattr(logs, "log_analytics_configuration", None) if logs else None
    profiles = getattr(props, "workload_profiles", None) or []
    return ResourceFacts(
        RESOURCE_TYPES[ResourceKind.ENVIRONMENT], env.name, env.location,
        workload_profiles=tuple(
            WorkloadProfile(p.name, p.workload_profile_type, p.minimum_count, p.maximum_count) for p in profiles
        ),
        log_analytics_customer_id=getattr(analytics, "customer_id", None) if analytics else None,
        tags=_tags(env),
    )


def _app(app: Any) -> ResourceFacts:
    props = _props(app)
    configuration = getattr(props, "configuration", None)
    ingress = getattr(configuration, "ingress", None) if configuration else None
    return ResourceFacts(
        RESOURCE_TYPES[ResourceKind.CONTAINER_APP], app.name, app.location,
        environment_id=getattr(props, "managed_environment_id", None) or getattr(props, "environment_id", None),
        fqdn=getattr(ingress, "fqdn", None) if ingress else None,
        tags=_tags(app),
    )


def _job(job: Any) -> ResourceFacts:
    props = _props(job)
    return ResourceFacts(JOB_TYPE, job.name, job.location, environment_id=getattr(props, "environment_id", None))


def _storage_account(account: Any) -> ResourceFacts:
    props = _props(account)
    return ResourceFacts(
        RESOURCE_TYPES[ResourceKind.STORAGE_ACCOUNT], account.name, account.location,
        allow_shared_key_access=getattr(props, "allow_shared_key_access", None),
        tags=_tags(account),
    )


def _workspace(workspace: Any) -> ResourceFacts:
    props = _props(workspace)
    return ResourceFacts(
        RESOURCE_TYPES[ResourceKind.LOG_ANALYTICS], workspace.name, workspace.location,
        customer_id=getattr(props, "customer_id", None), tags=_tags(workspace),
    )


def _env_storages(clients: AzureClients, group: str, env: str) -> list[ResourceFacts]:
    collection = clients.apps.managed_environments_storages.list(group, env)
    facts = []
    for storage in collection.value or []:
        props = storage.properties
        azure_file = getattr(props, "azure_file", None) if props else None
        facts.append(ResourceFacts(
            RESOURCE_TYPES[ResourceKind.ENVIRONMENT_STORAGE], f"{env}/{storage.name}",
            account_name=getattr(azure_file, "account_name", None),
            share_name=getattr(azure_file, "share_name", None),
        ))
    return facts


def _shares(clients: AzureClients, group: str, account: str) -> list[ResourceFacts]:
    return [
        ResourceFacts(RESOURCE_TYPES[ResourceKind.FILE_SHARE], f"{account}/default/{share.name}")
        for share in clients.storage.file_shares.list(group, account)
    ]


def read_inventory(clients: AzureClients, resource_group: str) -> InMemoryInventory:
    """Read what exists in ``resource_group``: the six resource types and the fine-tuning jobs.

    :raises AzureError: when the resource group does not exist.
    :raises AzurePermissionError: when the caller may not read it (the message names the role).
    :raises azure.core.exceptions.HttpResponseError: for other failures, after the SDK's retries.
    """
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    scope = f"/subscriptions/{clients.subscription_id}/resourceGroups/{resource_group}"
    clients.build()  # before the threads share them
    apps, storage, logs, resources = clients.apps, clients.storage, clients.logs, clients.resources

    def listed(call: Callable[[], Any], convert: Callable[[Any], ResourceFacts]) -> Callable[[], list[ResourceFacts]]:
        return lambda: [convert(item) for item in call()]

    try:
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            group_future = pool.submit(resources.resource_groups.get, resource_group)
            first_round = [
                pool.submit(listed(lambda: storage.storage_accounts.list_by_resource_group(resource_group),
                                   _storage_account)),
                pool.submit(listed(lambda: logs.workspaces.list_by_resource_group(resource_group), _workspace)),
                pool.submit(listed(lambda: apps.managed_environments.list_by_resource_group(resource_group),
                                   _environment)),
                pool.submit(listed(lambda: apps.container_apps.list_by_resource_group(resource_group), _app)),
                pool.submit(listed(lambda: apps.jobs.list_by_resource_group(resource_group), _job)),
            ]
            try:
                location = group_future.result().location
            except ResourceNotFoundError:
                raise AzureError(
                    f"resource group {resource_group!r} does not exist in subscription {clients.subscription_id}; "
                    "create it ('az group create') or pass another one (--resource-group)"
                ) from None
            found = [facts for future in first_round for facts in future.result()]
            second_round = [
                pool.submit(_env_storages, clients, resource_group, f.name)
                for f in found if f.type == RESOURCE_TYPES[ResourceKind.ENVIRONMENT]
            ] + [
                pool.submit(_shares, clients, resource_group, f.name)
                for f in found if f.type == RESOURCE_TYPES[ResourceKind.STORAGE_ACCOUNT]
            ]
            found += [facts for future in second_round for facts in future.result()]
    except HttpResponseError as exc:
        if exc.status_code == 403:
            raise permission_error(exc, role="Reader", scope=scope, doing="read the resource group") from None
        raise
    return InMemoryInventory(tuple(found), location)
