"""``azinfer up DIR --local`` and the commands on its daemon, run as the user runs them (``python -m azinfer.cli``).

The README's main-job command on the bundled example: the daemon starts
detached, the stand-in model is built, the container runs as a local process
and answers the smoke test; then ``key``, ``status``, a chat with the official
``openai`` client, a rerun that resumes, a daemon killed and replaced, and
``down`` that leaves no process and a clean checkout.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from azure_support import make_project, run_cli
from openai import OpenAI
from toolkit_projects import EXAMPLE, REPO

from azinfer.local.endpoint import container_pids, stop
from azinfer.local.tinymodel import STAND_IN_ID, STAND_IN_LABEL, ModelShape, build_mount
from azinfer.local.workspace import Workspace
from azinfer.testing import write_project

STATE = "XDG_STATE_HOME"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _wait_gone(pids: list[int], timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True,
                          timeout=30).stdout


def _readme_up_command() -> list[str]:
    """The README's main-job command, the last step of its first ``bash`` block."""
    first = re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S)[0].strip()
    return first.split(" && ")[-1].split()


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """A state folder of the test's own, for the CLI and for this process's look-ups; a daemon a failed test
    left for the example is stopped."""
    monkeypatch.setenv(STATE, str(tmp_path / "state"))
    yield {STATE: str(tmp_path / "state")}
    stop(EXAMPLE)


def _cli(state: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    result = run_cli(list(args), state, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_readme_up_local_answers_then_key_status_chat_resume_replace_and_down(state: dict[str, str]) -> None:
    before = _git_status()
    command = _readme_up_command()
    assert command == ["azinfer", "up", "examples/phi3", "--local"]
    example = str(EXAMPLE)

    up = _cli(state, "up", example, "--local", "--yes")
    assert re.search(r"smoke test: model 'stand-in/tiny-random-weights-answers-are-noise' answered in", up.stdout)
    assert f"model: {STAND_IN_LABEL}" in up.stdout and f"model: {STAND_IN_LABEL}" in up.stderr
    assert f"azinfer down {example} --local" in up.stdout
    workspace = Workspace.of(EXAMPLE)
    daemon = int(workspace.pid_file.read_text())
    [container] = container_pids(workspace)

    key = _cli(state, "key", example, "--local").stdout.strip()
    assert re.fullmatch(r"\S{16,}", key)
    endpoint = json.loads(workspace.endpoint_file.read_text())
    secrets_ = (key, endpoint["client_secret"])
    # Secrets: in the 0600 state file only (its folder 0700), never in a log line or the command's output.
    assert stat.S_IMODE(workspace.endpoint_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(workspace.root.stat().st_mode) == 0o700
    holding = [p for p in Path(state[STATE]).rglob("*") if p.is_file() and any(
        s.encode() in p.read_bytes() for s in secrets_)]
    assert holding == [workspace.endpoint_file]
    assert not any(s in up.stdout + up.stderr for s in secrets_)

    status = json.loads(_cli(state, "status", example, "--local", "--json").stdout)
    assert status["ready"] is True
    assert status["local"]["model"] == STAND_IN_LABEL and status["local"]["pid"] == daemon
    assert f"model: {STAND_IN_LABEL}" in _cli(state, "status", example, "--local").stdout

    config = json.loads((workspace.project / "infra" / "inference.config.json").read_text())
    client = OpenAI(base_url=f"https://{config['ACA_APP_ENDPOINT']}/v1", api_key=key,
                    http_client=httpx.Client(verify=ssl.create_default_context(cafile=workspace.ca), timeout=60))
    assert [m.id for m in client.models.list().data] == [STAND_IN_ID]
    answer = client.chat.completions.create(model=STAND_IN_ID, messages=[{"role": "user", "content": "hello"}],
                                            max_tokens=8)
    assert answer.choices[0].message.content
    # The openai snippet up printed works as printed (it trusts the daemon's CA, reads the key from the variable).
    snippet = up.stdout.split("python - <<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    printed = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "AZINFER_API_KEY": key})
    assert printed.returncode == 0 and printed.stdout.strip(), printed.stderr

    resumed = _cli(state, "up", example, "--local", "--yes")
    assert f"the local endpoint runs already (daemon pid {daemon}): resuming with it" in resumed.stderr
    assert "plan: nothing to change in Azure" in resumed.stdout and "answered in" in resumed.stdout
    assert container_pids(workspace) == [container]  # nothing restarted

    os.kill(daemon, signal.SIGKILL)  # the daemon dies; its container is left running
    assert _wait_gone([daemon]) == []
    replaced = _cli(state, "up", example, "--local", "--yes")
    assert f"the local endpoint's daemon (pid {daemon}) is no longer running" in replaced.stderr
    assert _wait_gone([container]) == []  # the orphan was stopped
    new_daemon = int(workspace.pid_file.read_text())
    assert new_daemon != daemon and "answered in" in replaced.stdout
    [new_container] = container_pids(workspace)

    down = _cli(state, "down", example, "--local")
    assert "Deleted 1 resource(s)." in down.stdout and f"daemon pid {new_daemon}" in down.stdout
    assert _wait_gone([new_daemon, new_container]) == []
    assert container_pids(workspace) == [] and not workspace.pid_file.exists()
    assert _git_status() == before


def test_key_local_with_nothing_running_says_how_to_start_one(state: dict[str, str], tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", "00000000-0000-4000-8000-00000000000a", "rg-ft")
    result = run_cli(["key", str(root), "--local"], state, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == f"azinfer: error: no local endpoint for {root}; run `azinfer up {root} --local`"
    down = run_cli(["down", str(root), "--local"], state, timeout=60)
    assert down.returncode == 0 and down.stdout.strip() == f"No local endpoint for {root}: nothing to stop."


def test_a_stale_pid_is_cleared_with_the_containers_it_left(state: dict[str, str], tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", "00000000-0000-4000-8000-00000000000a", "rg-ft")
    workspace = Workspace.of(root)
    workspace.root.mkdir(parents=True)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    workspace.pid_file.write_text(f"{gone.pid}\n")
    workspace.endpoint_file.write_text("{}")
    mount = workspace.shares / "account" / "share"
    mount.mkdir(parents=True)
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True,
                              env={**os.environ, "AZINFER_MOUNT": str(mount)})
    try:
        assert container_pids(workspace) == [orphan.pid]
        result = run_cli(["status", str(root), "--local"], state, timeout=60)
        assert result.returncode == 1
        assert result.stderr.splitlines() == [
            f"azinfer: the local endpoint's daemon (pid {gone.pid}) is no longer running: cleared what it left",
            f"azinfer: error: no local endpoint for {root}; run `azinfer up {root} --local`"]
        assert orphan.wait(timeout=30) == -signal.SIGKILL
        assert not workspace.pid_file.exists() and not workspace.endpoint_file.exists()
        assert not workspace.shares.exists()
    finally:
        if orphan.poll() is None:
            orphan.kill()


def test_share_from_must_be_a_share_layout_and_goes_with_local(state: dict[str, str], tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", "00000000-0000-4000-8000-00000000000a", "rg-ft")
    (tmp_path / "empty").mkdir()
    wrong = run_cli(["up", str(root), "--local", "--share-from", str(tmp_path / "empty")], state, timeout=60)
    assert wrong.returncode == 1
    assert wrong.stderr.strip().endswith(f"--share-from {tmp_path / 'empty'}: expected a folder laid out as the "
                                         "AI Toolkit's share, with model-cache/<org>/<name> and models/ folders")
    alone = run_cli(["up", str(root), "--share-from", str(tmp_path / "empty")], state, timeout=60)
    assert alone.returncode == 1 and "--share-from goes with --local" in alone.stderr
    assert not Workspace.of(root).pid_file.exists()  # no daemon was started


@pytest.mark.slow
def test_a_project_as_the_toolkit_ships_it_serves_its_own_model(state: dict[str, str], tmp_path: Path) -> None:
    # Its config files name no subscription or group (nothing provisioned): the emulator's defaults stand in.
    root = write_project(tmp_path / "proj", subscription_id=None, resource_group=None)
    layout = build_mount(root, ModelShape(family="phi3"))  # the project's own model-cache/ and models/
    try:
        up = _cli(state, "up", str(root), "--local", "--yes")
        assert f"smoke test: model '{layout.hub_id}' answered in" in up.stdout
        assert f"model: the project's own model ({root}/model-cache, models)" in up.stdout
        assert STAND_IN_LABEL not in up.stdout + up.stderr
        status = _cli(state, "status", str(root), "--local").stdout
        assert "resource group rg-finetune" in status and "ready         yes" in status
        assert not (root / "infra" / "inference.config.json").exists()  # the project's own config is not written
    finally:
        down = _cli(state, "down", str(root), "--local")
    assert "Deleted 1 resource(s)." in down.stdout and container_pids(Workspace.of(root)) == []


@pytest.mark.slow
def test_the_docs_python_example_runs_as_written(state: dict[str, str]) -> None:
    # docs/local.md "From Python": the same life from a notebook, run from the checkout's root as written.
    page = (REPO / "docs" / "local.md").read_text()
    code = re.findall(r"## From Python.*?```python\n(.*?)```", page, re.S)[0]
    before = _git_status()
    ran = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=os.environ | state, capture_output=True,
                         text=True, timeout=240)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    endpoint_line, smoke_line = ran.stdout.splitlines()[:2]
    assert endpoint_line.startswith("https://127.0.0.1:") and endpoint_line.endswith(STAND_IN_LABEL)
    assert smoke_line.startswith(f"model '{STAND_IN_ID}' answered in")
    workspace = Workspace.of(EXAMPLE)
    assert not workspace.pid_file.exists() and container_pids(workspace) == []
    assert _git_status() == before
