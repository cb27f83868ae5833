"""``azinfer deploy``, ``status``, ``logs``, ``destroy`` as subprocesses against the emulator, real credential chain.

The endpoint is provisioned in-process (fast polling); every command then runs
as the user runs it. Each fault ends with one line on stderr (no traceback,
no Azure SDK log) and a non-zero exit. Every test ends by checking that
nothing outside ``.azinfer/`` and the folders deploy owns was written on a share.
"""

from __future__ import annotations

import json
import os
import pty
import queue
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure_support import (
    DEPLOY_OWNED,
    azure_project,
    cli_env,
    make_project,
    peak_rss_mib,
    run_cli,
    share_writes_outside,
)
from toolkit_projects import EXAMPLE, REPO

from azinfer.project import INFERENCE_CONFIG
from azinfer.testing import EXAMPLE_LOCATION, EXAMPLE_RESOURCE_GROUP, EXAMPLE_SUBSCRIPTION
from azinfer.local.emulator import (
    ArmEmulator,
    FinetuningGroup,
    ReplicaStart,
    seed_finetuning_group,
    seed_finetuning_share,
)

USER_COMMANDS = ["cd /mount/inference", "python3 ./my_server.py --port 7860"]


@pytest.fixture
def emu() -> Iterator[ArmEmulator]:
    with ArmEmulator.start() as emulator:
        yield emulator
        assert share_writes_outside(emulator, (*DEPLOY_OWNED, "inference")) == []


@pytest.fixture
def group(emu: ArmEmulator) -> FinetuningGroup:
    fg = seed_finetuning_group(emu, resource_group="rg-phi3-finetune", location="westus3")
    seed_finetuning_share(emu, fg)
    return fg


def _provisioned(emu: ArmEmulator, group: FinetuningGroup, root: Path) -> str:
    """Provision in-process, then let subprocesses poll as ARM says (Retry-After 0 makes the SDK wait 30 s)."""
    azure_project(emu, root).provision()
    emu.retry_after = 1
    return f"aiacaapp{group.suffix}"


def cli(emu: ArmEmulator, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli([*args, "--arm-endpoint", emu.url], emu.env(), stdin=stdin, timeout=120)


def one_line_error(result: subprocess.CompletedProcess[str], *parts: str) -> str:
    """The command failed with exactly one line on stderr, an azinfer error naming ``parts``."""
    lines = result.stderr.splitlines()
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert lines[0].startswith("azinfer: error: ") and all(p in lines[0] for p in parts), lines[0]
    return lines[0]


def _user_project(root: Path, group: FinetuningGroup, files: int = 6, size: int = 10) -> Path:
    make_project(root, group.subscription_id, group.resource_group, {"defaultCommands": USER_COMMANDS})
    (root / "inference").mkdir()
    for i in range(files):
        (root / "inference" / f"m{i:02d}.py").write_text(f"# {i}\n" + "x" * size)
    return root


def test_deploy_status_logs(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    app = _provisioned(emu, group, root)
    silent = cli(emu, "logs", str(root))
    assert silent.returncode == 0 and silent.stdout == ""
    assert silent.stderr == ("azinfer: the container has written no log lines yet (--system shows the app's "
                             "events: revisions, replicas, restarts)\n")
    emu.apps.log(app, "model loaded", "serving on 7860")

    status = cli(emu, "status", str(root))
    assert status.returncode == 0 and status.stderr == "", status.stderr
    rows = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in status.stdout.splitlines()
            if not line.startswith(" ")}
    assert rows["ready"] == "yes (200)" and rows["provisioning"] == "Succeeded"
    assert rows["app"] == f"{app} (resource group {group.resource_group})"
    assert rows["endpoint"].startswith("https://127.0.0.1:") and "Running" in rows["revision"]
    assert "  replica" in status.stdout

    data = json.loads(cli(emu, "status", str(root), "--json").stdout)
    assert data["app"] == app and data["ready"] is True and data["workload_profile"] == "GPU"
    assert data["revision"]["replicas"][0]["running_state"] == "Running"

    logs = cli(emu, "logs", str(root), "--tail", "2")
    assert logs.returncode == 0 and logs.stderr == ""
    assert [line.split(" ", 1)[1] for line in logs.stdout.splitlines()] == ["model loaded", "serving on 7860"]

    unchanged = cli(emu, "deploy", str(root))
    assert unchanged.returncode == 0 and unchanged.stderr == "", unchanged.stderr
    assert "azinfer: uploaded 0 file(s) (0 bytes), deleted 0" in unchanged.stdout
    assert "No changes on the share: nothing restarted (pass --restart to restart anyway)." in unchanged.stdout
    assert not emu.requests_matching("POST", "*/restart")

    restarted = cli(emu, "deploy", str(root), "--restart")
    assert restarted.returncode == 0 and restarted.stderr == "", restarted.stderr
    stages = [line for line in restarted.stdout.splitlines() if line.startswith("azinfer: ")]
    assert stages[0].startswith("azinfer: syncing to file share") and stages[2].startswith("azinfer: restarting")
    assert stages[-1] == "azinfer: the endpoint answers /ready"
    assert f"Ready: {data['endpoint']}" in restarted.stdout


def test_deploy_shows_commands_and_file_names_with_their_control_characters_escaped(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    hidden = "rm -rf /mount/models\x1b[2K\rpython3 ./my_server.py"  # raw, a terminal shows only the server
    root = make_project(tmp_path, group.subscription_id, group.resource_group,
                        {"defaultCommands": ["cd /mount/inference", hidden]})
    _provisioned(emu, group, root)
    (root / "inference").mkdir(exist_ok=True)
    (root / "inference" / "a\u202etxt.py").write_text("# new\n")
    shown = cli(emu, "deploy", str(root), "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert "  $ rm -rf /mount/models\\x1b[2K\\rpython3 ./my_server.py\n" in shown.stdout
    assert "  + inference/a\\u202etxt.py\n" in shown.stdout
    assert not {"\x1b", "\r", "\u202e"} & set(shown.stdout)


def test_deploy_streams_a_large_file_in_ranges(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = _user_project(tmp_path, group, files=1)
    _provisioned(emu, group, root)
    arm = ["--arm-endpoint", emu.url]
    (root / "inference" / "m00.py").write_text("# changed\n")
    baseline = peak_rss_mib(["deploy", str(root), "--yes", "--no-wait", *arm], emu.env(), root)
    size = 192 << 20
    with (root / "inference" / "weights.bin").open("wb") as handle:
        handle.truncate(size)  # sparse: no disk
    peak = peak_rss_mib(["deploy", str(root), "--yes", "--no-wait", *arm], emu.env(), root)
    assert peak - baseline < 48, (peak, baseline)  # ranges in flight, not the file (it read 192 MiB whole)
    assert len(emu.files(group.storage_account, group.file_share)["inference/weights.bin"]) == size


def test_destroy_shows_the_plan_asks_and_clears_only_its_keys(emu: ArmEmulator, group: FinetuningGroup,
                                                              tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    app = _provisioned(emu, group, root)
    config_path = root / INFERENCE_CONFIG
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "COMMANDS": ["keep me"]}))

    refused = cli(emu, "destroy", str(root), stdin="")
    one_line_error(refused, "not asking on a non-interactive input: pass --yes")
    assert f"- container app '{app}' will be deleted" in refused.stdout
    assert f"= file share '{group.file_share}' will be kept" in refused.stdout
    assert not emu.requests_matching("DELETE", "*")
    down = cli(emu, "down", str(root), stdin="")  # on Azure, down is destroy
    assert (down.returncode, down.stdout, down.stderr) == (refused.returncode, refused.stdout, refused.stderr)

    done = cli(emu, "destroy", str(root), "--yes")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "Deleted 1 resource(s)." in done.stdout and "Cleared azinfer's keys in" in done.stdout
    config = json.loads(config_path.read_text())
    assert config["COMMANDS"] == ["keep me"] and config["ACA_APP_NAME"] is None
    for resource_id in group.ids.values():
        assert emu.writes_to(resource_id) == [], resource_id

    again = cli(emu, "destroy", str(root), "--yes")
    assert again.returncode == 0 and again.stderr == ""
    for command in ("key", "status", "logs", "deploy"):  # after destroy, every command says the same
        one_line_error(cli(emu, command, str(root)), "not set: nothing is provisioned yet (run 'azinfer up'")
    assert "Nothing to delete." in again.stdout and "Deleted 0 resource(s)." in again.stdout
    assert "Cleared" not in again.stdout


def test_no_credential_is_one_line_for_every_command(tmp_path: Path) -> None:
    root = make_project(tmp_path / "project", "8a3f1d2e-4b5c-4d6e-9f70-1a2b3c4d5e6f", "rg")
    config = {"SUBSCRIPTION_ID": "8a3f1d2e-4b5c-4d6e-9f70-1a2b3c4d5e6f", "RESOURCE_GROUP_NAME": "rg",
              "STORAGE_ACCOUNT_NAME": "aistorageabcde", "FILE_SHARE_NAME": "aifileshareabcde",
              "ACA_APP_NAME": "aiacaappabcde", "ACA_APP_ENDPOINT": "aiacaappabcde.example.net"}
    (root / INFERENCE_CONFIG).write_text(json.dumps(config))
    home = tmp_path / "home"
    home.mkdir()
    nowhere = {"HOME": str(home), "PATH": "/usr/bin:/bin", "AZURE_AUTHORITY_HOST": "https://127.0.0.1:9"}
    for command in ("deploy", "status", "logs", "destroy"):
        result = run_cli([command, str(root), "--arm-endpoint", "https://127.0.0.1:9"], nowhere, timeout=60)
        one_line_error(result, "no usable Azure credential", "az login")
    verbose = run_cli(["status", str(root), "--verbose", "--arm-endpoint", "https://127.0.0.1:9"], nowhere,
                      timeout=60)
    assert "azure.identity" in verbose.stderr and verbose.stderr.splitlines()[-1].startswith("azinfer: error: ")


def test_faults_end_with_one_line(emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    app = _provisioned(emu, group, root)
    config_path = root / INFERENCE_CONFIG
    config = json.loads(config_path.read_text())

    config_path.write_text(json.dumps({**config, "ACA_APP_NAME": "nope"}))
    one_line_error(cli(emu, "deploy", str(root)), "container app 'nope' does not exist", "run 'azinfer provision'")
    config_path.write_text(json.dumps(config))

    emu.faults.http_error(403, path=f"/{group.storage_account}/*", code="AuthenticationFailed", count=None)
    one_line_error(cli(emu, "deploy", str(root), "--restart"), "refused the storage account key")
    emu.faults.clear()
    assert not emu.requests_matching("POST", "*/restart")

    emu.faults.http_error(400, method="GET", path=f"*/containerApps/{app}", message="Injected fault.", count=None)
    one_line_error(cli(emu, "status", str(root)), "cannot read the endpoint's status: Azure answered 400",
                   "Injected fault.")
    emu.faults.clear()

    emu.apps.plan_starts(app, ReplicaStart(ready_after=None, logs=("loading model", "CUDA out of memory")))
    never = cli(emu, "deploy", str(root), "--restart", "--timeout", "1")
    one_line_error(never, "did not get ready within 1 s", "revision", "its last log line:", "CUDA out of memory")
    shown = never.stdout.split("The container's last log lines:\n", 1)[1].splitlines()
    assert [line.strip().split(" ", 1)[1] for line in shown] == ["loading model", "CUDA out of memory"]

    emu.apps.set_ready(app)
    converged = cli(emu, "deploy", str(root), "--restart")
    assert converged.returncode == 0 and "Ready: https://" in converged.stdout, converged.stderr


def _read_until(fd: int, marker: bytes | None, seconds: float) -> bytes:
    """Bytes from a pty until ``marker`` appears (``None``: until the other side closes), at most ``seconds``."""
    out = b""
    deadline = time.monotonic() + seconds
    while marker is None or marker not in out:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} within {seconds} s; got {out[-500:]!r}"
        if not select.select([fd], [], [], left)[0]:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the command exited and closed the terminal
            chunk = b""
        if not chunk:
            assert marker is None, f"ended before {marker!r}; got {out[-500:]!r}"
            return out
        out += chunk
    return out


def test_deploy_on_a_terminal_asks_draws_progress_and_a_file_vanishing_is_one_line(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = _user_project(tmp_path / "project", group)
    _provisioned(emu, group, root)
    for path in (root / "inference").iterdir():
        path.write_text(path.read_text() + "# v2\n")
    main, terminal = pty.openpty()
    stderr = tmp_path / "stderr"
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "azinfer.cli", "deploy", str(root), "--no-wait", "--arm-endpoint", emu.url],
            stdin=terminal, stdout=terminal, stderr=err, env={**cli_env(emu.env()), "COLUMNS": "120"})
    os.close(terminal)
    try:
        asked = _read_until(main, b"Go ahead? [y/N]", 60).decode(errors="replace")
        (root / "inference" / "m03.py").unlink()  # gone between the plan and its upload
        os.write(main, b"y\n")
        rest = _read_until(main, None, 60).decode(errors="replace")
        assert proc.wait(timeout=30) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    assert "share: 6 file(s) to upload" in asked and "  + inference/m03.py" in asked
    assert "the container runs your start command (/bin/bash -c):" in asked and "$ cd /mount/inference" in asked
    assert "uploading 6 file(s)" in rest and "\x1b[" in rest  # rich's progress bar, on a terminal only
    error = stderr.read_text().splitlines()
    assert len(error) == 1 and "m03.py: No such file or directory" in error[0] and "run deploy again" in error[0]

    (root / "inference" / "m00.py").write_text("# v3\n")
    again = cli(emu, "deploy", str(root), "--yes", "--no-wait")  # the next run converges
    assert again.returncode == 0 and again.stderr == "", again.stderr
    assert "\x1b[" not in again.stdout and "  uploading inference/m00.py" in again.stdout.splitlines()
    files = emu.files(group.storage_account, group.file_share)
    assert files["inference/m00.py"] == b"# v3\n"
    assert all(files[f"inference/m{i:02d}.py"].endswith(b"# v2\n") for i in (1, 2, 4, 5))


@pytest.mark.usefixtures("sigint_raises")
def test_ctrl_c_mid_upload_exits_130_and_the_next_run_uploads_the_rest(emu: ArmEmulator, group: FinetuningGroup,
                                                                      tmp_path: Path) -> None:
    root = _user_project(tmp_path / "project", group, files=24, size=1000)
    _provisioned(emu, group, root)
    for path in (root / "inference").iterdir():
        path.write_text(path.read_text() + "# v2\n")
    emu.faults.latency(0.15, method="PUT", path=f"/{group.storage_account}/*/inference/*")
    emu.clear_requests()
    stderr = tmp_path / "stderr"
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "azinfer.cli", "deploy", str(root), "--yes", "--arm-endpoint", emu.url],
            stdout=subprocess.DEVNULL, stderr=err, env=cli_env(emu.env()))
    try:
        deadline = time.monotonic() + 60
        while not emu.requests_matching("PUT", "*/inference/m*"):
            assert time.monotonic() < deadline and proc.poll() is None, "the upload never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    error = stderr.read_text().splitlines()
    assert len(error) == 1 and error[0].startswith("azinfer: stopped after uploading ") \
        and error[0].endswith("run deploy again to upload the rest"), error
    emu.faults.clear()

    rest = cli(emu, "deploy", str(root), "--yes", "--no-wait")
    assert rest.returncode == 0 and rest.stderr == "", rest.stderr
    files = emu.files(group.storage_account, group.file_share)
    assert all(files[f"inference/m{i:02d}.py"].endswith(b"# v2\n") for i in range(24))


@pytest.mark.usefixtures("sigint_raises")
def test_logs_follow_across_dropped_streams_then_ctrl_c(emu: ArmEmulator, group: FinetuningGroup,
                                                        tmp_path: Path) -> None:
    root = make_project(tmp_path, group.subscription_id, group.resource_group)
    app = _provisioned(emu, group, root)
    emu.apps.log(app, "old", "loaded")
    emu.apps.stream.max_seconds, emu.apps.stream.drop = 0.4, "abort"
    emu.faults.latency(0.2, path="*/logstream")  # lines are logged while it reconnects
    stderr = tmp_path / "stderr"
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "azinfer.cli", "logs", str(root), "--follow", "--tail", "1",
             "--arm-endpoint", emu.url],
            stdout=subprocess.PIPE, stderr=err, text=True, env=cli_env(emu.env()))
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in proc.stdout], daemon=True).start()
    wanted = [f"line {i}" for i in range(25)]
    seen: list[str] = []
    try:
        seen.append(lines.get(timeout=60).split(" ", 1)[1])
        for text in wanted:
            emu.apps.log(app, text)
            time.sleep(0.05)
        deadline = time.monotonic() + 30
        while seen[-1] != wanted[-1]:
            seen.append(lines.get(timeout=max(deadline - time.monotonic(), 0.01)).split(" ", 1)[1])
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    assert seen == ["loaded", *wanted]  # nothing lost while reconnecting, nothing shown twice
    error = stderr.read_text().splitlines()
    assert error[-1] == "azinfer: interrupted" and "Traceback" not in stderr.read_text()
    assert "azinfer: the stream dropped (RemoteProtocolError); reconnecting" in error[:-1]
    assert set(error[:-1]) <= {"azinfer: the stream dropped (RemoteProtocolError); reconnecting",
                               "azinfer: the stream ended; reconnecting"}


# -- azinfer up: as a user runs it, with only the environment the emulator prints -------------------------------
def up_cli(emu: ArmEmulator, *args: str) -> subprocess.CompletedProcess[str]:
    """``azinfer up ARGS`` with no --arm-endpoint: ARM and the subscription come from the emulator's variables."""
    return run_cli(["up", *args], emu.env(), timeout=180)


def _snippet(text: str, first: str, last: str) -> str:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(last))
    return "\n".join(lines[start:end + 1]) + "\n"


def test_up_ends_with_an_answer_and_snippets_that_work_as_printed(emu: ArmEmulator, group: FinetuningGroup,
                                                                   tmp_path: Path) -> None:
    from azinfer.local.emulator.containerapps import STAND_IN_ANSWER

    root = make_project(tmp_path / "project", group.subscription_id, group.resource_group)
    emu.retry_after = 1  # Retry-After 0 makes the SDK wait 30 s
    first = up_cli(emu, str(root), "--yes")
    assert first.returncode == 0 and first.stderr == "", first.stderr
    out = first.stdout
    stages = [line.split(":", 2)[1].strip() for line in out.splitlines() if line.startswith("azinfer: ")
              and line.split(":", 2)[1].strip() in ("plan", "provision", "ready", "smoke test")]
    assert stages[:2] == ["plan", "plan"] and stages[-1] == "smoke test"  # each stage begins and ends, in order
    assert "smoke test: model 'emulated' answered in" in out and "(first token after " in out
    assert f"{STAND_IN_ANSWER!r}" in out  # the answer's first words
    table = out.split("\nUp in ", 1)[1].splitlines()[1:6]
    timed = [re.match(r"  (\w+(?: test)?) +\d+\.\d\d s", line) for line in table]
    assert [m.group(1) if m else None for m in timed] == ["plan", "provision", "ready", "smoke test", "total"]
    assert "Endpoint: https://127.0.0.1:" in out and "Status: azinfer status" in out
    assert "Delete: azinfer destroy" in out and "azinfer logs" in out
    key = run_cli(["key", str(root)], emu.env()).stdout.strip()
    assert key and key not in out  # the key is never printed: the snippets read it from the variable

    # The curl snippet, as printed, in a shell with the emulator's variables (curl trusts its CA by CURL_CA_BUNDLE).
    shell = {**cli_env(emu.env()), "CURL_CA_BUNDLE": emu.ca_path}
    curl = subprocess.run(["bash", "-c", _snippet(out, "export AZINFER_API_KEY=", "  -d ")], env=shell,
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert curl.returncode == 0, curl.stderr
    assert json.loads(curl.stdout)["choices"][0]["message"]["content"] == STAND_IN_ANSWER
    python = subprocess.run(["bash", "-c", _snippet(out, "export AZINFER_API_KEY=", "  -d ").splitlines()[0]
                             + "\n" + _snippet(out, "python - <<'EOF'", "EOF")],
                            env=shell, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert python.returncode == 0 and python.stdout.strip() == STAND_IN_ANSWER, python.stderr

    emu.clear_requests()
    again = up_cli(emu, str(root), "--yes")
    assert again.returncode == 0 and again.stderr == "", again.stderr
    assert "plan: nothing to change in Azure" in again.stdout
    assert "provision: nothing deployed; share up to date" in again.stdout
    writes = [r for r in emu.requests if r.is_write and r.path.lower().startswith("/subscriptions/")
              or r.service == "file" and r.method != "GET"]
    assert writes == [] and not emu.requests_matching("POST", "*/restart")  # a rerun redoes nothing


@pytest.mark.usefixtures("sigint_raises")
def test_up_ctrl_c_while_a_deployment_runs_exits_130_and_a_rerun_attaches(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path / "project", group.subscription_id, group.resource_group)
    emu.retry_after = 1
    name = f"azinfer-aiacaapp{group.suffix}"
    held = emu.deployments.hold_running(group.subscription_id, group.resource_group, name)
    stderr = tmp_path / "stderr"
    with stderr.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "azinfer.cli", "up", str(root), "--yes"],
                                stdout=subprocess.DEVNULL, stderr=err, env=cli_env(emu.env()))
    try:
        deadline = time.monotonic() + 60
        while not emu.requests_matching("GET", f"*/deployments/{name}"):
            assert time.monotonic() < deadline and proc.poll() is None, "up never attached to the deployment"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    (line,) = stderr.read_text().splitlines()
    assert line.startswith("azinfer: interrupted during plan (ARM deployment ") and "goes on in Azure" in line
    assert "Run 'azinfer up' again to continue" in line
    assert held.state == "Running" and not (root / INFERENCE_CONFIG).exists()  # nothing local written

    emu.clear_requests()
    stop = threading.Event()

    def finish_once_attached() -> None:
        """ARM finishes the deployment only after the rerun has found it running and waited on it."""
        deadline = time.monotonic() + 60
        while not emu.requests_matching("GET", f"*/deployments/{name}") and time.monotonic() < deadline:
            if stop.wait(0.02):
                break
        held.state = "Succeeded"

    finisher = threading.Thread(target=finish_once_attached, daemon=True)
    finisher.start()
    try:
        rerun = up_cli(emu, str(root), "--yes")
    finally:
        stop.set()
        finisher.join(timeout=30)
    assert rerun.returncode == 0 and rerun.stderr == "", rerun.stderr
    assert len(emu.requests_matching("GET", f"*/deployments/{name}")) >= 2  # attached, then its own deployment
    assert "'Hello from the emulated endpoint!'" in rerun.stdout and (root / INFERENCE_CONFIG).exists()


def test_the_life_of_the_bundled_example_leaves_the_checkout_as_it_is(emu: ArmEmulator, tmp_path: Path) -> None:
    seed_finetuning_share(emu, seed_finetuning_group(emu, subscription_id=EXAMPLE_SUBSCRIPTION,
                                                     resource_group=EXAMPLE_RESOURCE_GROUP, location=EXAMPLE_LOCATION))
    emu.retry_after = 1
    before = {p: p.read_bytes() for p in EXAMPLE.rglob("*") if p.is_file()}
    env = {**emu.env(), "XDG_STATE_HOME": str(tmp_path / "state")}
    copy = tmp_path / "state" / "azinfer" / "examples" / "phi3"
    for args in (["up", "examples/phi3", "--yes"], ["status", "examples/phi3"], ["destroy", "examples/phi3", "--yes"]):
        result = subprocess.run([sys.executable, "-m", "azinfer.cli", *args], capture_output=True, text=True,
                                env=cli_env(env), cwd=REPO, timeout=180)
        assert result.returncode == 0, result.stderr
        assert result.stderr == (f"azinfer: examples/phi3 is azinfer's bundled example: working on its copy {copy} "
                                 "(the checkout stays as it is)\n")
        if args[0] == "up":
            assert "'Hello from the emulated endpoint!'" in result.stdout
            assert json.loads((copy / INFERENCE_CONFIG).read_text())["ACA_APP_NAME"] == "aiacaapp27vsy"
    assert "Deleted 1 resource(s)." in result.stdout  # the copy's config found what up created
    assert {p: p.read_bytes() for p in EXAMPLE.rglob("*") if p.is_file()} == before
    assert not (copy / ".azinfer-example").exists()


def test_up_on_a_terminal_asks_once_and_draws_one_live_table_at_a_time(
        emu: ArmEmulator, group: FinetuningGroup, tmp_path: Path) -> None:
    root = make_project(tmp_path / "project", group.subscription_id, group.resource_group)
    emu.retry_after = 1
    main, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "azinfer.cli", "up", str(root)], stdin=terminal, stdout=terminal,
                            stderr=terminal, env={**cli_env(emu.env()), "COLUMNS": "150"})
    os.close(terminal)
    try:
        asked = _read_until(main, b"Provision, deploy and test the endpoint? [y/N]", 60).decode(errors="replace")
        os.write(main, b"y\n")
        rest = _read_until(main, None, 90).decode(errors="replace")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    assert "+ container app" in asked and "What-if: 1 to create" in asked
    # provision's table (rich, on a terminal) is finished before the next stage's lines; the upload is unshown
    table, after = rest.split("azinfer: provision: deployment ", 1)
    assert "\x1b[32mSucceeded\x1b[0m  Microsoft.App/containerApps" in table and "uploading" not in table
    assert "\x1b[?25l" not in after.split("Up in ", 1)[0]  # no live display left drawing under the stages
    assert "'Hello from the emulated endpoint!'" in after
