"""The whole life on the emulator with the container running for real (``emu.apps.containers``).

A tiny random-weight Phi-3 in the toolkit's share layout, the ``batched``
engine on CPU, this Python standing for the image (without azinfer, as
vLLM's image is). Every command runs as the user runs it (``python -m
azinfer.cli``); the chat goes through the app's HTTPS ingress with the
official ``openai`` client and the key from ``azinfer key``.
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from azure_support import cli_env, make_project, run_cli
from openai import OpenAI

from azinfer.local.emulator import ArmEmulator, FinetuningGroup, seed_finetuning_group, seed_finetuning_share, seed_share_from
from azinfer.local.tinymodel import ModelShape, MountLayout, build_adapter, build_mount

pytestmark = pytest.mark.slow

FRESH_GROUP = "rg-phi3-inference"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> MountLayout:
    return build_mount(tmp_path_factory.mktemp("toolkit-share"), ModelShape(family="phi3"))


@pytest.fixture
def image_python(tmp_path: Path) -> str:
    """This Python as vLLM's image has it: everything but azinfer (an ``azinfer`` that cannot be imported comes
    after ``PYTHONPATH``, so only a wheel on the share provides it)."""
    hidden = tmp_path / "image-hides" / "azinfer"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('azinfer is not in this image')\n")
    wrapper = tmp_path / "python3"
    wrapper.write_text(f'#!/bin/sh\nexport PYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{hidden.parent}"\n'
                       f'exec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.fixture
def emu(model: MountLayout, image_python: str) -> Iterator[ArmEmulator]:
    with ArmEmulator.start(retry_after=1) as emulator:
        emulator.apps.containers.enabled = True
        emulator.apps.containers.python = image_python
        emulator.apps.containers.operation_expiry = 120
        emulator.apps.containers.extra_env = {"PIP_NO_INDEX": "1"}  # the start needs no package index
        yield emulator


@pytest.fixture
def group(emu: ArmEmulator, model: MountLayout) -> FinetuningGroup:
    fg = seed_finetuning_group(emu, resource_group="rg-phi3-finetune", location="westus3")
    seed_finetuning_share(emu, fg)
    seed_share_from(emu, fg, model.root)
    return fg


def cli(emu: ArmEmulator, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = run_cli([*args, "--arm-endpoint", emu.url], emu.env(), timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    return result


def timed(emu: ArmEmulator, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = cli(emu, *args)
    return result, time.monotonic() - started


def processes(emu: ArmEmulator, app: str) -> list[psutil.Process]:
    """The running container processes of the app's replicas."""
    return [psutil.Process(run.process.pid) for rev in emu.apps.find(app).revisions for rep in rev.replicas
            for run in rep.runners.values() if run.process.poll() is None]


def console(emu: ArmEmulator, app: str) -> str:
    return "\n".join(line for rev in emu.apps.find(app).revisions for rep in rev.replicas
                     for lines in rep.logs.values() for _, line in lines)


def first_token(emu: ArmEmulator, root: Path, model_id: str, *where: str,
                adapters: tuple[str, ...] = ()) -> tuple[str, float]:
    """A greedy chat completion streamed through the ingress with the key: its text and seconds to the first token.

    ``adapters``: the named adapters the server lists after the base (those deploy published on the share).
    """
    config = json.loads((root / "infra" / "inference.config.json").read_text())
    key = cli(emu, "key", str(root), *where).stdout.strip()
    client = OpenAI(base_url=f"https://{config['ACA_APP_ENDPOINT']}/v1", api_key=key,
                    http_client=httpx.Client(verify=emu.ssl_context(), timeout=60))
    assert [m.id for m in client.models.list().data] == [model_id, *adapters]
    started = time.monotonic()
    stream = client.chat.completions.create(model=model_id, messages=[{"role": "user", "content": "hello"}],
                                            max_tokens=8, temperature=0, stream=True)
    text, ttft = "", None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            ttft = time.monotonic() - started if ttft is None else ttft
            text += chunk.choices[0].delta.content
    assert ttft is not None and text
    wrong = OpenAI(base_url=client.base_url, api_key="not-the-key", http_client=httpx.Client(verify=emu.ssl_context()))
    with pytest.raises(Exception, match="401"):
        wrong.models.list()
    return text, ttft


def test_dedicated_on_a_fresh_group_starts_before_the_wheel_and_serves_after_deploy(
        emu: ArmEmulator, group: FinetuningGroup, model: MountLayout, tmp_path: Path) -> None:
    # The deployment creates the share, so the app's first replica starts before provision can upload the
    # wheel; the deployment waits for its startup probe, which must not expire.
    emu.add_resource_group(group.subscription_id, FRESH_GROUP, "westus3")
    root = make_project(tmp_path / "project", group.subscription_id, group.resource_group,
                        {"gpuProfileType": "NC24-A100"})
    provisioned, provision_s = timed(emu, "provision", str(root), "--resource-group", FRESH_GROUP, "--yes")
    assert "succeeded" in provisioned.stdout
    config = json.loads((root / "infra" / "inference.config.json").read_text())
    app = config["ACA_APP_NAME"]
    assert emu.apps.template(app)["scale"]["minReplicas"] == 1 and "GPU" in json.dumps(emu.state.view(
        f"/subscriptions/{group.subscription_id}/resourceGroups/{FRESH_GROUP}/providers/Microsoft.App/"
        f"containerApps/{app}"))
    assert "azinfer: waiting up to" in console(emu, app)
    # The new share has no model: the user copies it (here, straight into the emulated share).
    emu.seed_files(config["STORAGE_ACCOUNT_NAME"], config["FILE_SHARE_NAME"], {p.relative_to(model.root).as_posix(): p.read_bytes()
                                        for p in model.root.rglob("*") if p.is_file()})

    where = ("--resource-group", FRESH_GROUP)  # every command names the group provision was told
    deployed, deploy_s = timed(emu, "deploy", str(root), *where, "--yes", "--restart")
    assert "azinfer: the endpoint answers /ready" in deployed.stdout
    text, ttft = first_token(emu, root, model.hub_id, *where)
    print(f"\nfresh group, dedicated: provision {provision_s:.1f} s, deploy {deploy_s:.1f} s, "
          f"first token {ttft:.2f} s ({text!r})")

    [running] = processes(emu, app)
    cli(emu, "destroy", str(root), *where, "--yes")
    with pytest.raises(psutil.NoSuchProcess):
        running.wait(timeout=30)
        psutil.Process(running.pid)
    assert processes_left(emu) == []


def processes_left(emu: ArmEmulator) -> list[int]:
    return [run.process.pid for rt in emu.apps._apps.values() for rev in rt.revisions for rep in rev.replicas
            for run in rep.runners.values() if run.process.poll() is None]


def test_serverless_on_the_finetuning_group_serves_a_new_adapter_and_follows_logs(
        emu: ArmEmulator, group: FinetuningGroup, model: MountLayout, tmp_path: Path) -> None:
    root = make_project(tmp_path / "project", group.subscription_id, group.resource_group,
                        {"gpuProfileType": "Consumption-GPU-NC8as-T4"})
    _, provision_s = timed(emu, "provision", str(root), "--yes")
    app = json.loads((root / "infra" / "inference.config.json").read_text())["ACA_APP_NAME"]
    _, deploy_s = timed(emu, "deploy", str(root), "--yes", "--restart")
    before, ttft = first_token(emu, root, model.hub_id)
    print(f"\nfine-tuning group, serverless: provision {provision_s:.1f} s, deploy {deploy_s:.1f} s, "
          f"first token {ttft:.2f} s ({before!r})")
    [first] = processes(emu, app)

    adapter = tmp_path / "adapter-v2"
    build_adapter(model.model_dir, adapter, model.hub_id, ModelShape(family="phi3"), seed=7)
    cli(emu, "deploy", str(root), "--yes", "--adapter", str(adapter))
    [second] = processes(emu, app)
    assert second.pid != first.pid  # the restart restarted the process
    assert "models/azinfer/adapter-v2" in console(emu, app)
    after, _ = first_token(emu, root, model.hub_id, adapters=("adapter-v2",))
    assert after != before  # the new adapter answers

    follow_logs_across_drops(emu, root, app)


def follow_logs_across_drops(emu: ArmEmulator, root: Path, app: str) -> None:
    """``logs --follow`` reconnects after the service drops the stream, with no line shown twice."""
    emu.apps.stream.max_seconds, emu.apps.stream.drop = 0.5, "abort"
    proc = subprocess.Popen([sys.executable, "-m", "azinfer.cli", "logs", str(root), "--follow", "--tail", "1",
                             "--arm-endpoint", emu.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(emu.env()))
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in proc.stdout or ()], daemon=True).start()
    endpoint = json.loads((root / "infra" / "inference.config.json").read_text())["ACA_APP_ENDPOINT"]
    seen: list[str] = []
    try:
        seen.append(lines.get(timeout=60))
        for i in range(12):  # each request is one access-log line of the server (paths are logged, queries not)
            httpx.get(f"https://{endpoint}/mark-{i}", verify=emu.ssl_context())
            time.sleep(0.15)
        deadline = time.monotonic() + 30
        while "/mark-11 " not in seen[-1]:
            assert time.monotonic() < deadline, seen
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=0.5))
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    marks = [line for line in seen if "/mark-" in line]
    assert [m.split("/mark-")[1].split()[0] for m in marks] == [str(i) for i in range(12)], seen
    assert len(set(seen)) == len(seen), seen  # stamped lines: one repeated would be a reconnect's reprint
    assert "reconnecting" in (proc.stderr.read() if proc.stderr else "")
