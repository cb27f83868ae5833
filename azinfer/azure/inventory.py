"""Stage 2 from Azure: an inventory snapshot of one resource group, read with the official clients.

Reads run concurrently in two rounds (the resource group and every resource
list, then the shares and environment storages below what the first round
found), so the snapshot costs about two round trips whatever the group
holds. The result is an :class:`~azinfer.inventory.InMemoryInventory`: the
planner stays pure. An absent resource is a fact; an absent resource group
is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from azinfer._arguments import check_text, check_type
from azinfer.azure.clients import AzureClients
from azinfer.azure.failures import translated
from azinfer.errors import AzureError
from azinfer.inventory import (
    JOB_TYPE,
    InMemoryInventory,
    ResourceFacts,
    WorkloadProfile,
    carried_environment_properties,
)
from azinfer.resources import ResourceKind

if TYPE_CHECKING:  # pragma: no cover
    from azure.mgmt.appcontainers.models import ContainerApp, Job, ManagedEnvironment
    from azure.mgmt.loganalytics.models import Workspace
    from azure.mgmt.storage.models import StorageAccount

__all__ = ["read_inventory"]

T = TypeVar("T")
_WORKERS = 8


class _Listed(Protocol):
    """What every listed ARM resource has (the SDKs type ``name`` optional: it is read-only)."""

    @property
    def id(self) -> str | None: ...

    @property
    def name(self) -> str | None: ...


def _name(resource: _Listed) -> str:
    if not resource.name:
        raise AzureError(f"Azure listed a resource without a name ({resource.id or 'no id either'})")
    return resource.name


def _environment(env: ManagedEnvironment) -> ResourceFacts:
    props = env.properties
    logs = props.app_logs_configuration if props is not None else None
    analytics = logs.log_analytics_configuration if logs is not None else None
    profiles = (props.workload_profiles if props is not None else None) or []
    return ResourceFacts(
        ResourceKind.ENVIRONMENT.arm_type, _name(env), env.location,
        workload_profiles=tuple(
            WorkloadProfile(p.name, p.workload_profile_type, p.minimum_count, p.maximum_count) for p in profiles
        ),
        log_analytics_customer_id=analytics.customer_id if analytics is not None else None,
        tags=dict(env.tags or {}),
        unmodeled=_environment_unmodeled(env),
    )


def _environment_unmodeled(env: ManagedEnvironment) -> dict[str, Any]:
    """What an update of *env* must write back: its identity and the properties azinfer does not model."""
    unmodeled: dict[str, Any] = {}
    if env.identity is not None and (env.identity.type or "None") != "None":
        unmodeled["identity"] = env.identity.as_dict(exclude_readonly=True)
    carried = carried_environment_properties(env.properties.as_dict(exclude_readonly=True) if env.properties else {})
    if carried:
        unmodeled["properties"] = carried
    return unmodeled


def _app(app: ContainerApp) -> ResourceFacts:
    props = app.properties
    ingress = props.configuration.ingress if props is not None and props.configuration is not None else None
    return ResourceFacts(
        ResourceKind.CONTAINER_APP.arm_type, _name(app), app.location,
        environment_id=(props.managed_environment_id or props.environment_id) if props is not None else None,
        fqdn=ingress.fqdn if ingress is not None else None,
        tags=dict(app.tags or {}),
    )


def _job(job: Job) -> ResourceFacts:
    props = job.properties
    return ResourceFacts(JOB_TYPE, _name(job), job.location,
                         environment_id=props.environment_id if props is not None else None)


def _storage_account(account: StorageAccount) -> ResourceFacts:
    props = account.properties
    return ResourceFacts(
        ResourceKind.STORAGE_ACCOUNT.arm_type, _name(account), account.location,
        allow_shared_key_access=props.allow_shared_key_access if props is not None else None,
        tags=dict(account.tags or {}),
    )


def _workspace(workspace: Workspace) -> ResourceFacts:
    props = workspace.properties
    return ResourceFacts(
        ResourceKind.LOG_ANALYTICS.arm_type, _name(workspace), workspace.location,
        customer_id=props.customer_id if props is not None else None, tags=dict(workspace.tags or {}),
    )


def _env_storages(clients: AzureClients, group: str, env: str) -> list[ResourceFacts]:
    collection = clients.apps.managed_environments_storages.list(group, env)
    facts = []
    for storage in collection.value or []:
        props = storage.properties
        azure_file = props.azure_file if props is not None else None
        facts.append(ResourceFacts(
            ResourceKind.ENVIRONMENT_STORAGE.arm_type, f"{env}/{_name(storage)}",
            account_name=azure_file.account_name if azure_file is not None else None,
            share_name=azure_file.share_name if azure_file is not None else None,
        ))
    return facts


def _shares(clients: AzureClients, group: str, account: str) -> list[ResourceFacts]:
    return [
        ResourceFacts(ResourceKind.FILE_SHARE.arm_type, f"{account}/default/{share.name}")
        for share in clients.storage.file_shares.list(group, account)
    ]


def read_inventory(clients: AzureClients, resource_group: str) -> InMemoryInventory:
    """Read what exists in ``resource_group``: the six resource types and the fine-tuning jobs.

    :raises AzureError: when the resource group does not exist, or Azure fails to answer (after the SDK's retries).
    :raises AzurePermissionError: when the caller may not read it (the message names the role).
    :raises CredentialError: when Azure does not accept the credential.
    :raises ArgumentError: when ``clients`` is no :class:`AzureClients` or ``resource_group`` no non-empty string.
    """
    from azure.core.exceptions import ResourceNotFoundError

    check_type("read_inventory", "clients", clients, AzureClients, "AzureClients")
    check_text("read_inventory", "resource_group", resource_group)

    clients.build()  # before the threads share them
    apps, storage, logs, resources = clients.apps, clients.storage, clients.logs, clients.resources

    def listed(call: Callable[[], Iterable[T]], convert: Callable[[T], ResourceFacts]
               ) -> Callable[[], list[ResourceFacts]]:
        return lambda: [convert(item) for item in call()]

    with translated("read the resource group", role="Reader", scope=clients.scope(resource_group)):
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
                for f in found if f.type == ResourceKind.ENVIRONMENT.arm_type
            ] + [
                pool.submit(_shares, clients, resource_group, f.name)
                for f in found if f.type == ResourceKind.STORAGE_ACCOUNT.arm_type
            ]
            found += [facts for future in second_round for facts in future.result()]
    return InMemoryInventory(tuple(found), location)
