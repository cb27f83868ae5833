"""Resources, LROs, auth and shapes, through the real Azure SDK clients."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)

from azinfer.local.emulator import ArmEmulator


def test_starts_fast_and_stops_cleanly():
    t0 = time.perf_counter()
    with ArmEmulator.start() as emu:
        started = time.perf_counter() - t0
        port = int(emu.url.rsplit(":", 1)[1])
        assert emu.url.startswith("https://127.0.0.1:")
        r = httpx.get(f"{emu.url}/{emu.tenant_id}/v2.0/.well-known/openid-configuration", verify=emu.ssl_context())
        assert r.json()["token_endpoint"].startswith(emu.url)
    assert started < 1.0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


def test_arm_requires_a_bearer_token(emu, fg):
    r = httpx.get(f"{emu.url}/subscriptions/{fg.subscription_id}/resourcegroups/{fg.resource_group}",
                  params={"api-version": "2021-04-01"}, verify=emu.ssl_context())
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "AuthenticationFailed"
    assert "Bearer" in r.headers["WWW-Authenticate"]


def test_wrong_client_secret_fails_in_the_credential(emu):
    from azure.identity import ClientSecretCredential

    bad = ClientSecretCredential(emu.tenant_id, emu.identity.client_id, "wrong", authority=emu.url,
                                 disable_instance_discovery=True, connection_verify=emu.ca_path)
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        bad.get_token("https://management.azure.com/.default")
    token = emu.credential().get_token("https://management.azure.com/.default")
    assert token.token and token.expires_on > time.time()


def test_absent_resources_raise_resource_not_found(emu, fg, aca, rm):
    with pytest.raises(ResourceNotFoundError) as info:
        aca.container_apps.get(fg.resource_group, "absent")
    assert info.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        aca.container_apps.get("no-such-rg", "absent")
    assert info.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError):
        rm.resource_groups.get("no-such-rg")
    assert rm.resource_groups.check_existence("no-such-rg") is False
    assert rm.resource_groups.check_existence(fg.resource_group) is True


def test_seeded_finetuning_group(emu, fg, aca, storage, logs, rm):
    group = rm.resource_groups.get(fg.resource_group)
    assert (group.location, group.id) == ("eastus", fg.rg_id)
    env = aca.managed_environments.get(fg.resource_group, fg.environment)
    profiles = {p.name: p.workload_profile_type for p in env.properties.workload_profiles}
    assert profiles == {"Consumption": "Consumption", "GPU": "NC24-A100"}
    assert env.properties.app_logs_configuration.log_analytics_configuration.shared_key is None  # write-only
    job = aca.jobs.get(fg.resource_group, fg.job)
    assert job.properties.environment_id == fg.id("environment")
    account = storage.storage_accounts.get_properties(fg.resource_group, fg.storage_account)
    assert account.properties.allow_shared_key_access is True
    # the file endpoint is the emulator's own (path-style on loopback), the others keep Azure's shape
    assert account.properties.primary_endpoints.file == f"{emu.file_url}/{fg.storage_account}/"
    assert account.properties.primary_endpoints.blob == f"https://{fg.storage_account}.blob.core.windows.net/"
    share = storage.file_shares.get(fg.resource_group, fg.storage_account, fg.file_share)
    assert share.share_quota == 1024
    env_storage = aca.managed_environments_storages.get(fg.resource_group, fg.environment, fg.environment_storage)
    assert env_storage.properties.azure_file.share_name == fg.file_share
    assert env_storage.properties.azure_file.account_key is None
    ws = logs.workspaces.get(fg.resource_group, fg.log_analytics)
    keys = logs.shared_keys.get_shared_keys(fg.resource_group, fg.log_analytics)
    assert ws.properties.customer_id == env.properties.app_logs_configuration.log_analytics_configuration.customer_id
    assert keys.primary_shared_key
    names = sorted(r.name for r in rm.resources.list_by_resource_group(fg.resource_group))
    assert names == sorted([fg.storage_account, fg.log_analytics, fg.environment, fg.job])


def test_storage_account_create_is_a_location_lro(emu, storage):
    emu.add_resource_group(None, "rg-new", "westus3")
    poller = storage.storage_accounts.begin_create("rg-new", "stnew1", {
        "location": "westus3", "kind": "StorageV2", "sku": {"name": "Standard_LRS"},
        "properties": {"allowSharedKeyAccess": True}})
    account = poller.result()
    assert account.properties.provisioning_state == "Succeeded"
    assert account.name == "stnew1" and account.location == "westus3"
    put = emu.requests_matching("PUT", "*/storageAccounts/stnew1")[0]
    assert put.status == 202 and put.api_version
    assert emu.requests_matching("GET", "*/operationResults/*")
    keys = storage.storage_accounts.list_keys("rg-new", "stnew1")["keys"]
    assert [k["keyName"] for k in keys] == ["key1", "key2"] and all(k["permissions"] == "FULL" for k in keys)
    avail = storage.storage_accounts.check_name_availability({"name": "stnew1", "type": "Microsoft.Storage/storageAccounts"})
    assert (avail.name_available, avail.reason) == (False, "AlreadyExists")
    avail = storage.storage_accounts.check_name_availability({"name": "Bad_Name", "type": "Microsoft.Storage/storageAccounts"})
    assert (avail.name_available, avail.reason) == (False, "AccountNameInvalid")
    assert storage.storage_accounts.check_name_availability(
        {"name": "freename123", "type": "Microsoft.Storage/storageAccounts"}).name_available is True
    share = storage.file_shares.create("rg-new", "stnew1", "share1", {"properties": {"shareQuota": 100}})
    assert share.name == "share1"
    assert share.type == "Microsoft.Storage/storageAccounts/fileServices/shares"
    # a PUT of an existing account answers synchronously
    account = storage.storage_accounts.begin_create("rg-new", "stnew1", {
        "location": "westus3", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}).result()
    assert emu.requests_matching("PUT", "*/storageAccounts/stnew1")[-1].status == 200


def test_storage_name_taken_elsewhere(emu, storage):
    emu.add_resource_group(None, "rg-new", "eastus")
    emu.taken_storage_names.add("takenname")
    with pytest.raises(HttpResponseError) as info:
        storage.storage_accounts.begin_create("rg-new", "takenname", {
            "location": "eastus", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}).result()
    assert info.value.status_code == 409
    assert info.value.error.code == "StorageAccountAlreadyTaken"


def _app_body(fg, **overrides):
    body = {
        "location": "eastus",
        "properties": {
            "managedEnvironmentId": fg.id("environment"),
            "workloadProfileName": "GPU",
            "configuration": {"activeRevisionsMode": "Single",
                              "ingress": {"external": True, "targetPort": 7860},
                              "secrets": [{"name": "api-key", "value": "s3cret"}]},
            "template": {"containers": [{"name": "app", "image": "img:1", "resources": {"cpu": 24, "memory": "220Gi"}}],
                         "scale": {"minReplicas": 1, "maxReplicas": 1}},
        },
    }
    body["properties"].update(overrides)
    return body


def test_container_app_lifecycle(emu, fg, aca):
    poller = aca.container_apps.begin_create_or_update(fg.resource_group, "app1", _app_body(fg))
    app = poller.result()
    assert app.properties.provisioning_state == "Succeeded"
    assert "https://" + app.properties.configuration.ingress.fqdn == emu.apps.ingress_url("app1")
    assert app.properties.latest_revision_fqdn.startswith(app.properties.latest_revision_name + ".aienv")
    assert app.properties.configuration.secrets[0].value is None  # GET hides secret values
    put = emu.requests_matching("PUT", "*/containerApps/app1")[0]
    assert put.status == 201
    status_polls = emu.requests_matching("GET", "*/operationStatuses/*")
    assert len(status_polls) == 2  # InProgress, then Succeeded
    assert emu.state.get(app.id).provisioning_state == "Succeeded"

    secrets = aca.container_apps.list_secrets(fg.resource_group, "app1")
    assert [(s.name, s.value) for s in secrets.value] == [("api-key", "s3cret")]

    revisions = list(aca.container_apps_revisions.list_revisions(fg.resource_group, "app1"))
    assert len(revisions) == 1 and revisions[0].properties.active
    first = revisions[0].name
    aca.container_apps_revisions.restart_revision(fg.resource_group, "app1", first)
    assert emu.revisions(app.id)[0]["restarts"] == 1
    assert aca.container_apps_revisions.get_revision(fg.resource_group, "app1", first).name == first

    body = _app_body(fg)
    body["properties"]["template"]["containers"][0]["image"] = "img:2"
    updated = aca.container_apps.begin_update(fg.resource_group, "app1", body).result()
    assert updated.properties.latest_revision_name != first
    assert emu.requests_matching("PATCH", "*/containerApps/app1")[0].status == 202
    assert len(list(aca.container_apps_revisions.list_revisions(fg.resource_group, "app1"))) == 2

    aca.container_apps.begin_delete(fg.resource_group, "app1").result()
    with pytest.raises(ResourceNotFoundError):
        aca.container_apps.get(fg.resource_group, "app1")


def test_container_app_validation(emu, fg, aca):
    with pytest.raises(HttpResponseError) as info:
        aca.container_apps.begin_create_or_update(fg.resource_group, "app2",
                                                  _app_body(fg, workloadProfileName="NoSuch")).result()
    assert info.value.error.code == "WorkloadProfileNotFound"
    with pytest.raises(HttpResponseError) as info:
        aca.container_apps.begin_create_or_update(fg.resource_group, "app2",
                                                  {"properties": _app_body(fg)["properties"]}).result()
    assert info.value.error.code == "LocationRequired"


def test_environment_storage_and_environment_create(emu, fg, aca, storage):
    key = storage.storage_accounts.list_keys(fg.resource_group, fg.storage_account)["keys"][0]["value"]
    created = aca.managed_environments_storages.create_or_update(fg.resource_group, fg.environment, "extra", {
        "properties": {"azureFile": {"accountName": fg.storage_account, "accountKey": key,
                                     "shareName": fg.file_share, "accessMode": "ReadOnly"}}})
    assert created.properties.azure_file.access_mode == "ReadOnly"
    listed = aca.managed_environments_storages.list(fg.resource_group, fg.environment)
    assert sorted(s.name for s in listed.value) == sorted([fg.environment_storage, "extra"])
    env = aca.managed_environments.begin_create_or_update(fg.resource_group, "env2", {
        "location": "eastus", "properties": {"workloadProfiles": [
            {"name": "Consumption", "workloadProfileType": "Consumption"}]}}).result()
    assert env.properties.provisioning_state == "Succeeded"
    assert env.properties.default_domain.endswith(".eastus.azurecontainerapps.io")


def test_workspace_create(emu, fg, logs):
    ws = logs.workspaces.begin_create_or_update(fg.resource_group, "ws2", {
        "location": "eastus", "properties": {"sku": {"name": "PerGB2018"}, "retentionInDays": 30}}).result()
    assert ws.properties.provisioning_state == "Succeeded"
    assert ws.properties.customer_id


def test_workload_profiles_and_usages(emu, fg, aca):
    profiles = {p.name: p for p in aca.available_workload_profiles.get("eastus")}
    assert profiles["NC24-A100"].properties.gpus == 1
    assert profiles["NC24-A100"].properties.category == "GPU"
    usages = {u.name.value: u for u in aca.usages.list("eastus")}
    assert usages["ManagedEnvironmentCount"].current_value == 1
    # As field reports show: the region lists dedicated A100s only; serverless GPU rows are the environment's.
    assert "SubscriptionDedicatedNCA100Gpus" in usages
    assert not [name for name in usages if "Consumption" in name and "Gpus" in name]
    env_usages = {u.name.value for u in aca.managed_environment_usages.list(fg.resource_group, fg.environment)}
    assert {"ManagedEnvironmentConsumptionNCA100Gpus", "ManagedEnvironmentConsumptionT4Gpus"} <= env_usages
    emu.set_usage("eastus", "SubscriptionDedicatedNCA100Gpus", current=4, limit=4, applicable=False)
    usages = {u.name.value: u for u in aca.usages.list("eastus")}
    row = usages["SubscriptionDedicatedNCA100Gpus"]
    assert row.current_value == row.limit == 4 and row.get("isQuotaApplicable") is False


def test_paths_are_case_insensitive(emu, fg, cred):
    token = cred.get_token("https://management.azure.com/.default").token
    path = fg.id("environment").upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")
    r = httpx.get(emu.url + path, params={"api-version": "2024-03-01"}, verify=emu.ssl_context(),
                  headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert r.json()["id"] == fg.id("environment")  # the casing it was created with
    assert r.json()["type"] == "Microsoft.App/managedEnvironments"


def test_missing_api_version(emu, fg, cred):
    token = cred.get_token("https://management.azure.com/.default").token
    r = httpx.get(emu.url + fg.id("environment"), verify=emu.ssl_context(), headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "MissingApiVersionParameter"


def test_request_log_and_writes_to(emu, fg, aca, storage):
    aca.managed_environments.get(fg.resource_group, fg.environment)
    storage.storage_accounts.list_keys(fg.resource_group, fg.storage_account)
    assert emu.writes_to(fg.id("storage_account")) == []
    assert emu.writes_to(fg.id("environment")) == []
    aca.container_apps.begin_create_or_update(fg.resource_group, "app3", _app_body(fg)).result()
    writes = emu.writes_to(fg.rg_id + "/providers/Microsoft.App/containerApps/app3")
    assert [(w.method, w.source) for w in writes] == [("PUT", "http")]
    assert writes[0].body["properties"]["workloadProfileName"] == "GPU"
    assert writes[0].api_version == aca._config.api_version


def test_list_endpoints(emu, fg, aca, storage, logs):
    other = "rg-other"
    emu.add_resource_group(None, other, "eastus")
    emu.seed({"id": f"/subscriptions/{emu.subscription_id}/resourceGroups/{other}/providers/Microsoft.App/jobs/elsewhere",
              "properties": {}})
    rg = fg.resource_group
    assert [e.name for e in aca.managed_environments.list_by_resource_group(rg)] == [fg.environment]
    assert [j.name for j in aca.jobs.list_by_resource_group(rg)] == [fg.job]
    assert [j.name for j in aca.jobs.list_by_subscription()] == [fg.job, "elsewhere"]
    assert list(aca.container_apps.list_by_resource_group(rg)) == []
    assert [s.name for s in storage.storage_accounts.list_by_resource_group(rg)] == [fg.storage_account]
    assert [w.name for w in logs.workspaces.list_by_resource_group(rg)] == [fg.log_analytics]
    assert [s.name for s in storage.file_shares.list(rg, fg.storage_account)] == [fg.file_share]
    assert [s.name for s in aca.managed_environments_storages.list(rg, fg.environment).value] == [fg.environment_storage]


def test_concurrent_requests(emu, fg, aca):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        names = list(pool.map(lambda _: aca.managed_environments.get(fg.resource_group, fg.environment).name, range(32)))
    assert names == [fg.environment] * 32


def test_subscription_and_resource_group_lifecycle(emu, rm, storage, cred):
    token = cred.get_token("https://management.azure.com/.default").token
    r = httpx.get(f"{emu.url}/subscriptions/{emu.subscription_id}", params={"api-version": "2022-12-01"},
                  verify=emu.ssl_context(), headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "SubscriptionNotFound"
    emu.add_resource_group(None, "seed", "eastus")
    r = httpx.get(f"{emu.url}/subscriptions/{emu.subscription_id}", params={"api-version": "2022-12-01"},
                  verify=emu.ssl_context(), headers={"Authorization": f"Bearer {token}"})
    assert r.json()["subscriptionId"] == emu.subscription_id and r.json()["state"] == "Enabled"
    group = rm.resource_groups.create_or_update("rg-made", {"location": "swedencentral", "tags": {"a": "b"}})
    assert (group.name, group.location, group.tags) == ("rg-made", "swedencentral", {"a": "b"})
    assert group.properties.provisioning_state == "Succeeded"
    storage.storage_accounts.begin_create("rg-made", "stpatch", {
        "location": "swedencentral", "kind": "StorageV2", "sku": {"name": "Standard_LRS"},
        "properties": {"allowSharedKeyAccess": False}}).result()
    patched = storage.storage_accounts.update("rg-made", "stpatch", {"properties": {"allowSharedKeyAccess": True}})
    assert patched.properties.allow_shared_key_access is True and patched.kind == "StorageV2"
    rm.resource_groups.begin_delete("rg-made").result()
    assert rm.resource_groups.check_existence("rg-made") is False
    assert emu.state.get(patched.id) is None
