"""Projects wired to the ARM emulator, for the tests of azinfer.azure."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from azinfer.azure import AzureProject
from azinfer.testing import write_project
from azinfer.local.emulator import ArmEmulator

_REPO = Path(__file__).resolve().parent.parent


def make_project(root: Path, subscription: str, resource_group: str, params: dict[str, Any] | None = None) -> Path:
    """An AI Toolkit project whose fine-tuning config points at ``resource_group``."""
    return write_project(root, subscription_id=subscription, resource_group=resource_group, parameters=params)


def azure_project(emu: ArmEmulator, root: Path, **options: Any) -> AzureProject:
    """``AzureProject`` talking to the emulator with the real credential flow, fast retries and polling."""
    return AzureProject(root, credential=emu.credential(), arm_endpoint=emu.url, poll_interval=0.01,
                        **options, **emu.client_kwargs())


def arm_writes(emu: ArmEmulator) -> list[Any]:
    """Requests that wrote to ARM (the token endpoint's POSTs are sign-ins, not writes)."""
    return [r for r in emu.requests if r.is_write and r.path.lower().startswith("/subscriptions/")]


DEPLOY_OWNED = (".azinfer", "models/azinfer")
"""What deploy may write on a share whatever the project: its own folder and ``--adapter``'s."""


def share_writes_outside(emu: ArmEmulator, owned: tuple[str, ...] = DEPLOY_OWNED) -> list[str]:
    """Data-plane writes and deletes (``account/share/path``) outside ``owned`` folders of any share.

    Creating a folder that holds an owned one (``models`` for ``models/azinfer``) is allowed.
    """
    outside = []
    for record in emu.requests:
        if record.service != "file" or not record.is_write:
            continue
        parts = record.path.strip("/").split("/", 2)
        path = parts[2] if len(parts) == 3 else ""
        inside = any(path == root or path.startswith(root + "/") for root in owned)
        holder = record.method == "PUT" and record.query.get("restype") == "directory" \
            and any(root.startswith(path + "/") for root in owned)
        if not (path and (inside or holder)):
            outside.append(f"{record.method} {record.path}")
    return outside


def cli_env(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without any Azure sign-in of its own, plus ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "MSI_", "IDENTITY_"))}
    clean.pop("NO_COLOR", None)
    return {**clean, **env}


def run_cli(args: list[str], env: dict[str, str], stdin: str | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m azinfer.cli ARGS`` with ``env`` (e.g. ``emu.env()``) and no other Azure sign-in."""
    return subprocess.run([sys.executable, "-m", "azinfer.cli", *args], capture_output=True, text=True,
                          env=cli_env(env), input=stdin, timeout=timeout)


def peak_rss_mib(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> float:
    """Run ``python -m azinfer.cli ARGS``; its peak RSS in MiB (``wait4``'s ``ru_maxrss``)."""
    with tempfile.TemporaryFile() as out:
        # This checkout's azinfer, not an installed one.
        child_env = {**cli_env(env), "PYTHONPATH": os.pathsep.join([str(_REPO), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.Popen([sys.executable, "-m", "azinfer.cli", *args], env=child_env, cwd=cwd,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise TimeoutError(f"azinfer {' '.join(args)} still running after {timeout} s")
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
        out.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"azinfer {' '.join(args)} exited {proc.returncode}: {out.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024


class SteadyLoad:
    """Chat completions to an app's address, one after another on a thread, until stopped: each answer is the
    revision that answered (the emulator's stand-in names it in the completion's id) or what failed."""

    CHAT = {"model": "emulated", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}

    def __init__(self, emu: ArmEmulator, url: str, key: str) -> None:
        import threading

        self.answers: list[str] = []
        self._emu, self._url, self._key = emu, url, key
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import httpx

        with httpx.Client(verify=self._emu.ssl_context(), timeout=10,
                          headers={"Authorization": f"Bearer {self._key}"}) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(f"{self._url}/v1/chat/completions", json=self.CHAT)
                    self.answers.append(response.json()["id"].removeprefix("chatcmpl-")
                                        if response.status_code == 200 else f"HTTP {response.status_code}")
                except httpx.HTTPError as error:
                    self.answers.append(type(error).__name__)

    def __enter__(self) -> SteadyLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "the load did not stop within 15 s"

    def failed(self, *revisions: str) -> int:
        """Answers from none of ``revisions``: errors and refusals."""
        return sum(1 for answer in self.answers if answer not in revisions)
