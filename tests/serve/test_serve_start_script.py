"""The container app's start command, run for real against a folder laid out like /mount."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from conftest import API_KEY, free_port, wait_ready

from azinfer.serve import start_script

REPO = Path(__file__).resolve().parents[2]


def test_start_script_serves_the_mounted_model(phi_mount: Any, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "AZINFER_PYTHON": sys.executable,  # the image's python, with azinfer importable: no install
        "AZINFER_MOUNT": str(phi_mount.root),
        "AZINFER_PORT": str(port),
        "AZINFER_API_KEY": API_KEY,
    }
    with log.open("w") as output:
        process = subprocess.Popen(["/bin/bash", "-c", start_script()], env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"  # with a key it listens on every interface, loopback included
        wait_ready(base, timeout=90)
        assert httpx.get(f"{base}/health").status_code == 200
        models = httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}).json()
        assert [m["id"] for m in models["data"]] == [phi_mount.hub_id]
        assert httpx.get(f"{base}/v1/models").status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = log.read_text()
    assert "installing" not in text
    assert "0.0.0.0" in text
    assert API_KEY not in text
    assert not (phi_mount.root / ".azinfer").exists()
