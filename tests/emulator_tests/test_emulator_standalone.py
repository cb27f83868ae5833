"""``python -m azinfer.local.emulator``: the emulator on its own, for people and scripts."""

from __future__ import annotations

import os
import shlex
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

from azinfer.testing import EXAMPLE_SUBSCRIPTION

ROOT = Path(__file__).resolve().parents[2]


def _start(env_file: Path, *options: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "azinfer.local.emulator", "--env-file", str(env_file),
                             "--resource-group", "rg-alone", *options],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(path: Path, proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return path.read_text()


def test_runs_seeded_until_ctrl_c_or_sigterm(tmp_path, monkeypatch):
    from azure.identity import ClientSecretCredential
    from azure.mgmt.storage import StorageManagementClient
    from azure.storage.fileshare import ShareClient

    procs = {signal.SIGTERM: _start(tmp_path / "term.env"),
             signal.SIGINT: _start(tmp_path / "int.env", "--subscription", EXAMPLE_SUBSCRIPTION)}
    try:
        exports = _wait_for(tmp_path / "term.env", procs[signal.SIGTERM])
        # a project's own subscription (the notebook's example): the group is seeded there
        assert f"export AZURE_SUBSCRIPTION_ID={EXAMPLE_SUBSCRIPTION}\n" in _wait_for(tmp_path / "int.env",
                                                                                   procs[signal.SIGINT])
        env = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in exports.splitlines())
        assert set(env) >= {"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_AUTHORITY_HOST",
                            "AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_MANAGER_ENDPOINT", "SSL_CERT_FILE"}
        cred = ClientSecretCredential(env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"],
                                      authority=env["AZURE_AUTHORITY_HOST"], disable_instance_discovery=True,
                                      connection_verify=env["SSL_CERT_FILE"])
        storage = StorageManagementClient(cred, env["AZURE_SUBSCRIPTION_ID"],
                                          base_url=env["AZURE_RESOURCE_MANAGER_ENDPOINT"],
                                          connection_verify=env["SSL_CERT_FILE"])
        (account,) = storage.storage_accounts.list_by_resource_group("rg-alone")
        (share,) = storage.file_shares.list("rg-alone", account.name)
        key = storage.storage_accounts.list_keys("rg-alone", account.name).keys_property[0].value
        # the printed environment is all a client needs: requests (the SDKs) and httpx read the CA from it
        for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
            monkeypatch.setenv(name, env[name])
        client = ShareClient(account.primary_endpoints.file, share.name, credential=key)
        adapter = [f.name for f in client.list_directories_and_files("models/qlora/qlora/gpu_model/adapter")]
        assert sorted(adapter) == ["adapter_config.json", "adapter_model.safetensors"]
        assert httpx.get(env["AZURE_AUTHORITY_HOST"] + f"/{env['AZURE_TENANT_ID']}/v2.0/.well-known/"
                         "openid-configuration").status_code == 200
    finally:
        for signum, proc in procs.items():
            proc.send_signal(signum)
    for proc in procs.values():
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "stopped" in err
    assert out.count("export ") == len(env)
    assert not (tmp_path / "term.env").exists()  # the variables would point at nothing now


def test_runs_containers_on_a_share_seeded_from_a_folder(tmp_path):
    from azure.identity import ClientSecretCredential
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

    share = tmp_path / "share"
    (share / "models" / "run1" / "adapter").mkdir(parents=True)
    (share / "models" / "run1" / "adapter" / "adapter_config.json").write_text('{"r": 4}')
    (share / "model-cache" / "org" / "tiny").mkdir(parents=True)
    (share / "model-cache" / "org" / "tiny" / "config.json").write_text("{}")
    proc = _start(tmp_path / "run.env", "--run-containers", "--share-from", str(share))
    try:
        exports = _wait_for(tmp_path / "run.env", proc)
        env = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in exports.splitlines())
        cred = ClientSecretCredential(env["AZURE_TENANT_ID"], env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"],
                                      authority=env["AZURE_AUTHORITY_HOST"], disable_instance_discovery=True,
                                      connection_verify=env["SSL_CERT_FILE"])
        aca = ContainerAppsAPIClient(cred, env["AZURE_SUBSCRIPTION_ID"], base_url=env["AZURE_RESOURCE_MANAGER_ENDPOINT"],
                                     connection_verify=env["SSL_CERT_FILE"], polling_interval=0.05)
        (environment,) = aca.managed_environments.list_by_resource_group("rg-alone")
        (storage,) = aca.managed_environments_storages.list("rg-alone", environment.name).value
        app = aca.container_apps.begin_create_or_update("rg-alone", "files", {  # the REST shape, as a template has it
            "location": environment.location, "properties": {
                "environmentId": environment.id, "configuration": {"ingress": {"external": True, "targetPort": 7860}},
                "template": {"containers": [{"name": "files", "image": "python:3.11", "command": [
                    "/bin/sh", "-c", 'cd "$AZINFER_MOUNT" && exec python3 -m http.server $AZINFER_PORT'],
                    "volumeMounts": [{"volumeName": "share", "mountPath": "/mount"}]}],
                    "volumes": [{"name": "share", "storageType": "AzureFile", "storageName": storage.name}]}}}).result()
        url = f"https://{app.configuration.ingress.fqdn}/models/run1/adapter/adapter_config.json"
        verify = ssl.create_default_context(cafile=env["SSL_CERT_FILE"])
        deadline = time.monotonic() + 30
        while (answer := httpx.get(url, verify=verify)).status_code != 200:
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.1)
        assert answer.text == '{"r": 4}'  # the folder's file, on the share, served by the running container
        stale = httpx.get(url.replace("run1/adapter/adapter_config.json", "qlora/qlora/gpu_model/adapter/"),
                          verify=verify)
        assert stale.status_code == 404  # the stand-in models/ was replaced
    finally:
        proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_a_share_folder_without_the_toolkit_layout_is_one_line(tmp_path):
    proc = _start(tmp_path / "bad.env", "--share-from", str(tmp_path))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines()[-1] == (f"python -m azinfer.local.emulator: error: --share-from: {tmp_path}: expected a "
                                           "share layout with model-cache/ and models/ folders")
