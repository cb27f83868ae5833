"""Containers that really run (``emu.apps.containers``): a small server as the user's start command.

Provisioned in-process with azinfer (fast polling); the command is Python's
``http.server`` serving the share's folder, so each rule shows from outside:
the share as a folder, the port, the ingress, the console log, restart, delete
and a deployment that expires.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import psutil
import pytest
from azure.mgmt.appcontainers import ContainerAppsAPIClient

from azinfer.errors import AzureError
from tests.azure_support import azure_project, make_project
from azinfer.local.emulator import ArmEmulator, FinetuningGroup, seed_finetuning_group, seed_finetuning_share

SERVE_SHARE = ['cd "$AZINFER_MOUNT"', 'echo "serving $AZINFER_MOUNT with key $AZINFER_API_KEY"',
               'exec python3 -m http.server "$AZINFER_PORT"']


@pytest.fixture
def running(emu: ArmEmulator) -> ArmEmulator:
    emu.apps.containers.enabled = True
    emu.apps.containers.operation_expiry = 30
    return emu


@pytest.fixture
def group(running: ArmEmulator) -> FinetuningGroup:
    fg = seed_finetuning_group(running, resource_group="rg-phi3-finetune", location="westus3")
    seed_finetuning_share(running, fg)
    return fg


def _pids(emu: ArmEmulator, app: str) -> list[int]:
    return [run.process.pid for rev in emu.apps.find(app).revisions for rep in rev.replicas
            for run in rep.runners.values() if run.process.poll() is None]


def _wait(what: str, check, seconds: float = 30):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.1)
    return found


def test_the_container_serves_the_share_through_the_ingress_logs_restarts_and_stops(
        running: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    emu = running
    root = make_project(tmp_path, group.subscription_id, group.resource_group, {"defaultCommands": SERVE_SHARE})
    project = azure_project(emu, root)
    project.provision()
    app = f"aiacaapp{group.suffix}"
    url = emu.apps.ingress_url(app)
    answer = _wait("ready replica", lambda: (r := httpx.get(f"{url}/inference/requirements.txt",
                                                             verify=emu.ssl_context())).status_code == 200 and r)
    assert answer.text == "gradio\n"  # the share's file, read from its folder by the process
    emu.seed_files(group.storage_account, group.file_share, {"inference/new.txt": "written after the start"})
    assert httpx.get(f"{url}/inference/new.txt", verify=emu.ssl_context()).text == "written after the start"

    log = "\n".join(line for _, line in emu.apps.find(app).latest.replicas[0].logs["inference"])
    assert "with key " + project.api_key() in log  # the secret reached the container's environment
    assert '"GET /inference/requirements.txt HTTP/1.1" 200' in log  # its stderr is the console log

    [first] = _pids(emu, app)
    aca = ContainerAppsAPIClient(emu.credential(), emu.subscription_id, **emu.client_kwargs())
    revision = emu.apps.find(app).latest.name
    aca.container_apps_revisions.restart_revision(group.resource_group, app, revision)
    assert not psutil.pid_exists(first) or psutil.Process(first).status() == psutil.STATUS_ZOMBIE
    [second] = _wait("restarted process", lambda: _pids(emu, app))
    assert second != first

    aca.container_apps.begin_delete(group.resource_group, app).result()
    assert not psutil.pid_exists(second) or psutil.Process(second).status() == psutil.STATUS_ZOMBIE


def test_a_revision_that_never_answers_its_startup_probe_expires_the_deployment(
        running: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    emu = running
    emu.apps.containers.operation_expiry = 1.5
    root = make_project(tmp_path, group.subscription_id, group.resource_group,
                        {"defaultCommands": ["echo starting", "exec sleep 60"]})
    started = time.monotonic()
    with pytest.raises(AzureError) as failure:
        azure_project(emu, root).provision()
    assert time.monotonic() - started >= 1.5
    assert "ContainerAppOperationError" in str(failure.value)
    assert "Failed to provision revision for container app" in str(failure.value)
    assert "Operation expired" in str(failure.value)
