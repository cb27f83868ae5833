"""``azinfer plan`` / ``provision`` / ``key`` against the emulator, run as subprocesses with the real credential chain."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from azure_support import make_project, share_writes_outside
from azure_support import run_cli as run

from azinfer.project import INFERENCE_CONFIG
from azinfer.local.emulator import ArmEmulator, FinetuningGroup, seed_finetuning_group


@pytest.fixture
def emu():
    # A subprocess polls as ARM tells it (Retry-After); 0 would make the SDK fall back to 30 s.
    with ArmEmulator.start(retry_after=1) as emulator:
        yield emulator
        assert share_writes_outside(emulator) == []  # provision puts azinfer in .azinfer/ only


@pytest.fixture
def group(emu: ArmEmulator) -> FinetuningGroup:
    return seed_finetuning_group(emu, resource_group="rg-phi3-finetune", location="westus3")




def test_provision_yes_writes_the_config(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    result = run(["provision", str(root), "--yes", "--arm-endpoint", emu.url], emu.env())
    assert result.returncode == 0, result.stderr
    assert "+ container app" in result.stdout and "What-if: 1 to create" in result.stdout
    assert f"Deployment 'azinfer-aiacaapp{group.suffix}' succeeded." in result.stdout
    config = json.loads((root / INFERENCE_CONFIG).read_text())
    assert f"Endpoint: https://{config['ACA_APP_ENDPOINT']}" in result.stdout
    assert f"The endpoint answers /ready. Next: 'azinfer up {root}' asks the model once" in result.stdout
    key = run(["key", str(root), "--arm-endpoint", emu.url], emu.env())
    assert key.returncode == 0 and len(key.stdout.strip()) >= 32
    assert key.stdout.strip() not in (root / INFERENCE_CONFIG).read_text()
    again = run(["provision", str(root), "--yes", "--arm-endpoint", emu.url], emu.env())
    assert again.returncode == 0 and "No changes: nothing was deployed." in again.stdout


def test_preview_changes_nothing(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    result = run(["provision", str(root), "--preview", "--arm-endpoint", emu.url], emu.env())
    assert result.returncode == 0, result.stderr
    assert "ARM what-if:" in result.stdout and "(Create)" in result.stdout
    assert result.stdout.endswith(f"Next: 'azinfer provision {root}' applies this plan (it asks first), or "
                                  f"'azinfer up {root}' also waits for /ready and asks the model once.\n")
    assert not emu.requests_matching("PUT", "*/deployments/*")
    assert not (root / INFERENCE_CONFIG).exists()


def test_non_interactive_without_yes_refuses(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    result = run(["provision", str(root), "--arm-endpoint", emu.url], emu.env(), stdin="")
    assert result.returncode == 1
    assert "pass --yes" in result.stderr and "Traceback" not in result.stderr
    assert not emu.requests_matching("PUT", "*/deployments/*")


def test_plan_online_and_blocked(emu: ArmEmulator, tmp_path: Path) -> None:
    group = seed_finetuning_group(emu, resource_group="rg-cpu", location="westus3",
                                  workload_profiles=[{"name": "Consumption", "workloadProfileType": "Consumption"}])
    root = make_project(tmp_path, group.subscription_id, group.resource_group, {"gpuProfileType": "NC24-A100"})
    result = run(["plan", str(root), "--arm-endpoint", emu.url, "--json"], emu.env())
    assert result.returncode == 1
    assert [p["code"] for p in json.loads(result.stdout)["problems"]] == ["gpuProfileMissing"]


def test_no_credential_fails_fast_with_the_ways_to_sign_in(tmp_path: Path) -> None:
    root = make_project(tmp_path, "8a3f1d2e-4b5c-4d6e-9f70-1a2b3c4d5e6f", "rg")
    home = tmp_path / "home"
    home.mkdir()
    start = time.monotonic()
    result = run(["plan", str(root), "--arm-endpoint", "https://127.0.0.1:9"],
                 {"HOME": str(home), "PATH": "/usr/bin:/bin", "AZURE_AUTHORITY_HOST": "https://127.0.0.1:9"})
    elapsed = time.monotonic() - start
    assert result.returncode == 1
    assert "az login" in result.stderr and "AZURE_CLIENT_SECRET" in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr  # no SDK warnings before it
    assert elapsed < 30


@pytest.mark.parametrize(
    ("cloud", "arm", "authority"),
    [
        ("public", "https://management.azure.com", "https://login.microsoftonline.com"),
        ("china", "https://management.chinacloudapi.cn", "https://login.chinacloudapi.cn"),
        ("usgovernment", "https://management.usgovcloudapi.net", "https://login.microsoftonline.us"),
    ],
)
def test_clouds(cloud: str, arm: str, authority: str) -> None:
    from azinfer.azure import target_for

    target = target_for(cloud)
    assert (target.arm_endpoint, target.authority_host, target.scope) == (arm, authority, f"{arm}/.default")
    custom = target_for(cloud, arm_endpoint="https://arm.local:8443/")
    assert custom.arm_endpoint == "https://arm.local:8443" and custom.authority_host == authority


def test_provision_says_when_the_endpoint_is_not_ready_yet_and_what_waits_for_it(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    from azinfer.local.emulator import ReplicaStart

    emu.apps.default_start = ReplicaStart(ready_after=None)  # the replica starts and stays unready
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    result = run(["provision", str(root), "--yes"], emu.env())  # ARM's endpoint from the environment
    assert result.returncode == 0, result.stderr
    assert "The endpoint is not ready yet: /ready answered 503 no healthy upstream (revision " in result.stdout
    assert result.stdout.endswith(f"Next: 'azinfer up {root}' waits for it and asks the model once; "
                                  f"'azinfer status {root}' shows its state.\n")


def test_the_sdks_environment_variables_pick_the_cloud_and_the_subscription(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    bad = run(["plan", str(root)], {**emu.env(), "AZURE_SDK_CLOUD_CONF": "MARS"})
    assert bad.returncode == 1 and bad.stderr.strip() == (
        "azinfer: error: the environment variable AZURE_SDK_CLOUD_CONF='MARS': expected one of "
        "AZURE_PUBLIC_CLOUD, AZURE_CHINA_CLOUD, AZURE_US_GOVERNMENT")
    plain = run(["plan", str(root)], {**emu.env(), "AZURE_RESOURCE_MANAGER_ENDPOINT": "http://127.0.0.1:1"})
    assert "AZURE_RESOURCE_MANAGER_ENDPOINT='http://127.0.0.1:1': expected an https:// URL" in plain.stderr
    # A project that names no subscription: AZURE_SUBSCRIPTION_ID is the fallback (the project's own wins).
    config = root / "infra" / "finetuning.config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "SUBSCRIPTION_ID": None}))
    nameless = run(["plan", str(root)], {k: v for k, v in emu.env().items() if k != "AZURE_SUBSCRIPTION_ID"})
    assert nameless.returncode == 1 and "pass --subscription" in nameless.stderr
    named = run(["plan", str(root)], emu.env())
    assert named.returncode == 0, named.stderr
    assert f"subscription {group.subscription_id} (" in named.stdout
