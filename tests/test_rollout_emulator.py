"""``deploy --canary`` and ``rollback`` end to end on the ARM emulator: multiple revision mode, traffic rules,
labels, the revision's own address, and requests under steady load while the traffic moves.

The emulator's stand-in app answers ``/ready``, ``/v1/models`` and one chat
completion whose id names the revision that answered (azinfer/local/emulator/traffic.py
routes each request by the app's traffic rules).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from azure_support import SteadyLoad, azure_project, make_project, run_cli

from azinfer.azure import AzureProject
from azinfer.errors import SmokeTestFailed
from azinfer.local.emulator import ArmEmulator, FinetuningGroup, seed_finetuning_group, seed_finetuning_share
from azinfer.local.emulator.containerapps import ReplicaStart
from azinfer.local.emulator.messages import Request, Response

CHAT = SteadyLoad.CHAT


@pytest.fixture
def emu() -> Iterator[ArmEmulator]:
    with ArmEmulator.start() as emulator:
        yield emulator


@pytest.fixture
def group(emu: ArmEmulator) -> FinetuningGroup:
    fg = seed_finetuning_group(emu, resource_group="rg-phi3-finetune", location="westus3")
    seed_finetuning_share(emu, fg)
    return fg


def _provisioned(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> tuple[AzureProject, str, str]:
    project = azure_project(emu, make_project(tmp_path, group.subscription_id, group.resource_group))
    project.provision()
    app = f"aiacaapp{group.suffix}"
    return project, app, emu.apps.find(app).revisions[-1].name


def _answered_by(emu: ArmEmulator, app: str, key: str, url: str | None = None, count: int = 20) -> Counter[str]:
    """Which revision answered each of ``count`` chat completions at the app's address (or ``url``)."""
    seen: Counter[str] = Counter()
    with httpx.Client(verify=emu.ssl_context(), timeout=10, headers={"Authorization": f"Bearer {key}"}) as client:
        for _ in range(count):
            response = client.post(f"{url or emu.apps.ingress_url(app)}/v1/chat/completions", json=CHAT)
            assert response.status_code == 200, response.text
            seen[response.json()["id"].removeprefix("chatcmpl-")] += 1
    return seen


def _rules(project: AzureProject, app: str) -> list[tuple[str | None, int | None, str | None]]:
    ingress = project.clients.apps.container_apps.get(project.resource_group, app).properties.configuration.ingress
    return [(t.revision_name, t.weight, t.label) for t in ingress.traffic or []]


def test_a_canary_is_smoke_tested_at_its_own_address_then_serves_and_rollback_returns(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    project, app, old = _provisioned(emu, group, tmp_path)
    key = project.api_key()
    result = project.deploy(canary=True, steps=2, step_wait=0.05)
    new = result.revision
    assert new is not None and new != old and result.previous == old and result.weights == (50, 100)
    assert _rules(project, app) == [(new, 100, "stable"), (old, 0, "previous")]
    revisions = {r.name: r.properties for r in project.clients.apps.container_apps_revisions.list_revisions(
        project.resource_group, app)}
    assert (revisions[new].traffic_weight, revisions[old].traffic_weight) == (100, 0)
    assert revisions[old].active  # kept running for a rollback without a cold start
    # The smoke test went to the new revision's own address (as ARM reports it), with the key, before any traffic.
    own = f"https://{revisions[new].fqdn}"
    chats = [r for r in emu.requests_matching("POST", "/v1/chat/completions", service="ingress")]
    assert chats and chats[0].headers.get("authorization") == f"Bearer {key}"
    assert _answered_by(emu, app, key) == Counter({new: 20})
    assert _answered_by(emu, app, key, url=own, count=2) == Counter({new: 2})
    assert _answered_by(emu, app, key, url=emu.apps.label_url(app, "previous"), count=2) == Counter({old: 2})

    back = project.rollback()
    assert (back.revision, back.replaced) == (old, new)
    assert _rules(project, app) == [(old, 100, "stable"), (new, 0, "previous")]
    assert _answered_by(emu, app, key) == Counter({old: 20})


def test_a_failing_smoke_test_leaves_every_request_on_the_serving_revision(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    project, app, old = _provisioned(emu, group, tmp_path)

    def broken_canary(app_name: str, revision: str, request: Request) -> Response | None:
        if revision != old and request.path == "/v1/chat/completions":
            return Response(500, {"error": {"message": "CUDA error: an illegal memory access was encountered"}})
        return None

    emu.apps.on_request = broken_canary
    with pytest.raises(SmokeTestFailed) as info:
        project.deploy(canary=True)
    assert "POST /v1/chat/completions answered 500" in str(info.value) and "illegal memory access" in str(info.value)
    new = info.value.revision
    assert _rules(project, app) == [(old, 100, "stable"), (new, 0, "canary")]
    assert _answered_by(emu, app, project.api_key()) == Counter({old: 20})


def test_no_request_fails_while_the_traffic_moves_under_steady_load(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project, app, old = _provisioned(emu, group, tmp_path)
    emu.apps.plan_starts(app, ReplicaStart(ready_after=0.5))  # the new revision takes a while to get ready
    with SteadyLoad(emu, emu.apps.ingress_url(app), project.api_key()) as load:
        time.sleep(0.3)
        started = time.monotonic()
        new = project.deploy(canary=True, steps=4, step_wait=0.3).revision
        took = time.monotonic() - started
        time.sleep(0.3)
    assert new is not None
    counts = Counter(load.answers)
    with capsys.disabled():
        print(f"\nrollout under load: {len(load.answers)} requests, {load.failed(old, new)} failed, {counts[old]} "
              f"answered by the old revision, {counts[new]} by the new; rollout took {took:.2f} s (4 steps)")
    assert load.failed(old, new) == 0, counts
    assert counts[old] > 0 and counts[new] > 0
    assert load.answers[-1] == new  # once all the traffic is on the new revision, the old one answers no more


def test_cli_canary_failing_smoke_test_is_one_line_and_non_zero(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    project, app, old = _provisioned(emu, group, tmp_path)
    emu.apps.on_request = lambda app_name, revision, request: (
        Response(404, {"detail": "Not Found"}) if revision != old and request.path == "/v1/models" else None)
    result = run_cli(["deploy", str(project.project.root), "--canary", "--yes",
                      "--arm-endpoint", emu.url], emu.env(), timeout=120)
    lines = result.stderr.splitlines()
    assert result.returncode != 0 and len(lines) == 1 and lines[0].startswith("azinfer: error: "), result.stderr
    assert "failed its smoke test" in lines[0] and "GET /v1/models answered 404" in lines[0]
    assert lines[0].endswith(f"the traffic stays on revision {old!r}")
    assert _rules(project, app)[0] == (old, 100, "stable")


def test_cli_canary_in_steps_then_rollback(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    project, app, old = _provisioned(emu, group, tmp_path)
    emu.retry_after = 1  # subprocesses poll as ARM says (Retry-After 0 makes the SDK wait 30 s)
    root = str(project.project.root)
    deployed = run_cli(["deploy", root, "--canary", "--steps", "2", "--step-wait", "0", "--yes",
                        "--arm-endpoint", emu.url], emu.env(), timeout=120)
    assert deployed.returncode == 0, deployed.stderr
    new = _rules(project, app)[0][0]
    assert f"50% of the traffic on revision {new!r}" in deployed.stdout
    assert deployed.stdout.splitlines()[-1] == (f"Revision {new!r} serves all the traffic at "
                                                f"{emu.apps.ingress_url(app)}; {old!r} is kept for 'azinfer rollback'.")
    back = run_cli(["rollback", root, "--arm-endpoint", emu.url], emu.env(), timeout=120)
    assert back.returncode == 0, back.stderr
    assert back.stdout.splitlines()[-1] == f"Revision {old!r} serves all the traffic again; {new!r} is kept with none."
    assert _rules(project, app) == [(old, 100, "stable"), (new, 0, "previous")]
