"""Fixtures for the ARM emulator's own tests."""

from __future__ import annotations

import pytest

from azinfer.local.emulator import ArmEmulator, seed_finetuning_group


@pytest.fixture
def emu():
    with ArmEmulator.start() as emulator:
        yield emulator


@pytest.fixture
def fg(emu):
    return seed_finetuning_group(emu, resource_group="rg-ft", location="eastus")


@pytest.fixture
def cred(emu):
    return emu.credential()


def _client(cls, emu, cred, sub):
    return cls(cred, sub, **emu.client_kwargs())


@pytest.fixture
def aca(emu, cred):
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

    return _client(ContainerAppsAPIClient, emu, cred, emu.subscription_id)


@pytest.fixture
def storage(emu, cred):
    from azure.mgmt.storage import StorageManagementClient

    return _client(StorageManagementClient, emu, cred, emu.subscription_id)


@pytest.fixture
def logs(emu, cred):
    from azure.mgmt.loganalytics import LogAnalyticsManagementClient

    return _client(LogAnalyticsManagementClient, emu, cred, emu.subscription_id)


@pytest.fixture
def rm(emu, cred):
    from azure.mgmt.resource.resources import ResourceManagementClient

    return _client(ResourceManagementClient, emu, cred, emu.subscription_id)


@pytest.fixture
def deployments(emu, cred):
    from azure.mgmt.resource.deployments import DeploymentsMgmtClient

    return _client(DeploymentsMgmtClient, emu, cred, emu.subscription_id)


@pytest.fixture
def share(emu, fg, storage):
    """The fine-tuning share as a client reaches it: the account's file endpoint and a key, both read from ARM."""
    from azure.storage.fileshare import ShareClient

    account = storage.storage_accounts.get_properties(fg.resource_group, fg.storage_account)
    key = storage.storage_accounts.list_keys(fg.resource_group, fg.storage_account).keys_property[0].value
    return ShareClient(account.primary_endpoints.file, fg.file_share, credential=key, **emu.storage_client_kwargs())
