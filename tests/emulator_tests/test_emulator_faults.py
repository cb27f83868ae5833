"""Faults on demand, as the SDK's retry and polling policies see them; the environment for subprocesses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import httpx
import pytest
from azure.core.exceptions import HttpResponseError


def _statuses(emu, method, path):
    return [r.status for r in emu.requests_matching(method, path)]


def test_429_with_retry_after_is_retried_by_the_sdk(emu, fg, aca):
    emu.faults.throttle(method="GET", path="*/managedEnvironments/*", count=2, retry_after=0)
    env = aca.managed_environments.get(fg.resource_group, fg.environment)
    assert env.name == fg.environment
    assert _statuses(emu, "GET", "*/managedEnvironments/*") == [429, 429, 200]


def test_retry_after_header_is_sent(emu, fg, cred):
    emu.faults.throttle(path="*/jobs/*", retry_after=7)
    token = cred.get_token("https://management.azure.com/.default").token
    r = httpx.get(emu.url + fg.id("job"), params={"api-version": "2024-03-01"}, verify=emu.ssl_context(),
                  headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert r.json()["error"]["code"] == "TooManyRequests"


def test_500_and_503_are_retried(emu, fg, aca, storage):
    emu.faults.http_error(500, method="GET", path="*/jobs/*", count=1)
    assert aca.jobs.get(fg.resource_group, fg.job).name == fg.job
    assert _statuses(emu, "GET", "*/jobs/*") == [500, 200]
    emu.faults.http_error(503, method="PUT", path="*/shares/*", count=2)
    storage.file_shares.create(fg.resource_group, fg.storage_account, "retried", {"properties": {}})
    assert _statuses(emu, "PUT", "*/shares/retried") == [503, 503, 201]


def test_persistent_500_surfaces_an_arm_error(emu, fg, aca):
    emu.faults.http_error(500, method="GET", path="*/jobs/*", count=None, code="InternalServerError",
                          message="Something broke.")
    with pytest.raises(HttpResponseError) as info:
        aca.jobs.get(fg.resource_group, fg.job)
    assert info.value.status_code == 500 and info.value.error.code == "InternalServerError"
    assert len(_statuses(emu, "GET", "*/jobs/*")) == 4  # 1 + the client's 3 retries


def test_connection_reset_is_retried(emu, fg, aca):
    emu.faults.reset(method="GET", path="*/managedEnvironments/*", count=1)
    assert aca.managed_environments.get(fg.resource_group, fg.environment).name == fg.environment
    assert _statuses(emu, "GET", "*/managedEnvironments/*") == [0, 200]  # 0: reset, no answer


def test_latency(emu, fg, aca):
    emu.faults.latency(0.2, method="GET", path="*/jobs/*")
    t0 = time.perf_counter()
    aca.jobs.get(fg.resource_group, fg.job)
    assert time.perf_counter() - t0 >= 0.2
    t0 = time.perf_counter()
    aca.managed_environments.get(fg.resource_group, fg.environment)
    assert time.perf_counter() - t0 < 0.2


def test_fault_matching_method_regex_and_count(emu, fg, aca):
    fault = emu.faults.http_error(409, method="DELETE", path=re.compile(r"/jobs/"), count=1)
    aca.jobs.get(fg.resource_group, fg.job)  # GET does not match
    assert fault.hits == 0
    with pytest.raises(HttpResponseError):
        aca.jobs.begin_delete(fg.resource_group, fg.job).result()
    assert fault.hits == 1 and fault.exhausted
    aca.jobs.begin_delete(fg.resource_group, fg.job).result()
    assert emu.state.get(fg.id("job")) is None


def test_slow_operation_stays_in_progress(emu, fg, aca):
    emu.faults.slow_operation(4, method="PUT", path="*/containerApps/slow")
    body = {"location": "eastus", "properties": {"managedEnvironmentId": fg.id("environment"),
                                                  "template": {"containers": [{"name": "c", "image": "i"}]}}}
    poller = aca.container_apps.begin_create_or_update(fg.resource_group, "slow", body)
    assert emu.state.get(fg.rg_id + "/providers/Microsoft.App/containerApps/slow").provisioning_state == "InProgress"
    assert poller.result().properties.provisioning_state == "Succeeded"
    statuses = emu.requests_matching("GET", "*/operationStatuses/*")
    assert len(statuses) == 5  # 4 x InProgress, then Succeeded


def test_failed_operation(emu, fg, aca):
    emu.faults.fail_operation(code="ContainerAppOperationError", message="Failed to provision revision.",
                              path="*/containerApps/broken")
    body = {"location": "eastus", "properties": {"managedEnvironmentId": fg.id("environment"),
                                                  "template": {"containers": [{"name": "c", "image": "i"}]}}}
    with pytest.raises(HttpResponseError) as info:
        aca.container_apps.begin_create_or_update(fg.resource_group, "broken", body).result()
    assert "ContainerAppOperationError" in str(info.value)
    assert emu.state.get(fg.rg_id + "/providers/Microsoft.App/containerApps/broken").provisioning_state == "Failed"


def test_admin_endpoint(emu, fg, aca):
    r = httpx.post(f"{emu.url}/_emulator/faults", verify=emu.ssl_context(),
                   json={"kind": "http", "status": 503, "method": "GET", "path": "*/jobs/*", "count": 1,
                         "retry_after": 0})
    assert r.status_code == 201
    aca.jobs.get(fg.resource_group, fg.job)
    assert _statuses(emu, "GET", "*/jobs/*") == [503, 200]
    log = httpx.get(f"{emu.url}/_emulator/requests", verify=emu.ssl_context()).json()["value"]
    assert any(entry["status"] == 503 for entry in log)
    assert httpx.delete(f"{emu.url}/_emulator/faults", verify=emu.ssl_context()).status_code == 204
    assert len(emu.faults) == 0


def test_global_latency_option():
    from azinfer.local.emulator import ArmEmulator

    with ArmEmulator.start(latency=0.1) as emu:
        t0 = time.perf_counter()
        httpx.get(f"{emu.url}/{emu.tenant_id}/v2.0/.well-known/openid-configuration", verify=emu.ssl_context())
        assert time.perf_counter() - t0 >= 0.1


def test_env_for_a_subprocess(emu, fg):
    script = (
        "import os, json\n"
        "from azure.identity import DefaultAzureCredential\n"
        "from azure.mgmt.resource.resources import ResourceManagementClient\n"
        # MSAL asks login.microsoftonline.com about unknown authorities unless told not to
        "cred = DefaultAzureCredential(authority=os.environ['AZURE_AUTHORITY_HOST'],"
        " disable_instance_discovery=True, exclude_interactive_browser_credential=True)\n"
        "c = ResourceManagementClient(cred, os.environ['AZURE_SUBSCRIPTION_ID'],"
        " base_url=os.environ['AZURE_RESOURCE_MANAGER_ENDPOINT'],"
        " credential_scopes=[os.environ['AZURE_RESOURCE_MANAGER_ENDPOINT'] + '/.default'])\n"
        f"print(json.dumps(c.resource_groups.get({fg.resource_group!r}).location))\n"
    )
    env = {**os.environ, **emu.env()}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == "eastus"
    assert emu.identity.token_requests >= 1
