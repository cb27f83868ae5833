"""The container app's start command, run for real against folders laid out like /mount (the share)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from conftest import API_KEY, free_port, wait_ready

from azinfer.serve import start_script
from azinfer.serve.bundle import DIST_DIR, server_bundle

REPO = Path(__file__).resolve().parents[2]


def _environment(mount: Path, port: int, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**clean, "AZINFER_PYTHON": sys.executable, "AZINFER_MOUNT": str(mount), "AZINFER_PORT": str(port),
            "AZINFER_API_KEY": API_KEY, **extra}


def _start(env: dict[str, str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    with log.open("w") as output:
        return subprocess.Popen(["/bin/bash", "-c", start_script()], env=env, stdout=output, stderr=subprocess.STDOUT,
                                cwd=cwd)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def share(phi_mount: Any, tmp_path: Path) -> Path:
    """A share as deploy leaves it: the fine-tuning outputs and azinfer's wheel and constraints."""
    root = tmp_path / "share"
    root.mkdir()
    (root / "model-cache").symlink_to(phi_mount.root / "model-cache")
    (root / "models").symlink_to(phi_mount.root / "models")
    for path, data in server_bundle().files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


@pytest.mark.slow
def test_image_azinfer_serves_when_the_share_has_none(phi_mount: Any, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    process = _start(_environment(phi_mount.root, port, PYTHONPATH=str(REPO)), log)
    try:
        base = f"http://127.0.0.1:{port}"  # with a key it listens on every interface, loopback included
        wait_ready(base, timeout=90)
        models = httpx.get(f"{base}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}).json()
        assert [m["id"] for m in models["data"]] == [phi_mount.hub_id]
        assert httpx.get(f"{base}/v1/models").status_code == 401
    finally:
        _stop(process)
    text = log.read_text()
    assert "serving with the image's azinfer" in text and "installing" not in text
    assert API_KEY not in text
    assert not (phi_mount.root / ".azinfer").exists()


def _env_dirs(share: Path) -> list[str]:
    return sorted(p.name for p in (share / ".azinfer" / "env").iterdir())


@pytest.mark.slow
def test_two_replicas_build_once_and_a_restart_reuses_it(share: Path, tmp_path: Path) -> None:
    # No index at all: azinfer comes from the wheel, every serving dependency is already in the "image".
    ports = [free_port(), free_port()]
    logs = [tmp_path / "replica-a.log", tmp_path / "replica-b.log"]
    replicas = [_start(_environment(share, port, PIP_NO_INDEX="1", AZINFER_BUILD_POLL_SECONDS="0.2"), log)
                for port, log in zip(ports, logs)]
    try:
        for port in ports:
            wait_ready(f"http://127.0.0.1:{port}", timeout=180)
        (env_dir,) = _env_dirs(share)  # one environment; no lock, no build folder left behind
        texts = [log.read_text() for log in logs]
        assert sum("installing azinfer from" in t for t in texts) == 1, texts
        assert sum("installed by another replica" in t for t in texts) == 1, texts
        assert env_dir.startswith("0.1.0-")
        site = next((share / ".azinfer" / "env" / env_dir).glob("lib/python*/site-packages"))
        assert (site / "azinfer" / "serve" / "bootstrap.py").is_file()
        # The server runs from the share's environment, not from whatever the image has.
        for replica in replicas:
            server = psutil.Process(replica.pid)  # bash exec'd python, which exec'd the server
            assert str(site) in server.environ()["PYTHONPATH"]
    finally:
        for replica in replicas:
            _stop(replica)
    port = free_port()
    restart_log = tmp_path / "restart.log"
    started = time.monotonic()
    restarted = _start(_environment(share, port, PIP_NO_INDEX="1"), restart_log)
    try:
        wait_ready(f"http://127.0.0.1:{port}", timeout=120)
    finally:
        _stop(restarted)
    text = restart_log.read_text()
    assert "(installed before)" in text and "installing" not in text, text
    assert _env_dirs(share) == [env_dir]
    assert time.monotonic() - started < 120


@pytest.mark.slow
def test_failed_install_leaves_nothing_and_the_next_start_builds(share: Path, tmp_path: Path) -> None:
    # bitsandbytes (the serve-4bit extra) is not installed and no index is reachable: pip fails.
    env = _environment(share, free_port(), PIP_NO_INDEX="1", AZINFER_EXTRAS="serve-4bit")
    result = subprocess.run(["/bin/bash", "-c", start_script()], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode != 0
    assert "azinfer: error: pip failed" in result.stderr
    assert _env_dirs(share) == []  # no environment, no lock, no build folder
    from azinfer.serve.bootstrap import ensure_environment

    wheel = next((share / DIST_DIR).glob("*.whl"))
    os.environ["PIP_NO_INDEX"] = "1"
    try:
        env_dir = ensure_environment(share, wheel, {"serve"})
    finally:
        del os.environ["PIP_NO_INDEX"]
    assert (env_dir / ".complete").is_file() and _env_dirs(share) == [env_dir.name]


@pytest.mark.slow
def test_a_dead_builders_lock_is_broken(share: Path, monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    from azinfer.serve import bootstrap

    wheel = next((share / DIST_DIR).glob("*.whl"))
    env_root = share / ".azinfer" / "env"
    env_root.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("AZINFER_BUILD_STALE_SECONDS", "1")
    monkeypatch.setenv("AZINFER_BUILD_POLL_SECONDS", "0.1")
    # The lock a replica that died mid-build left: its owner file stopped being refreshed long ago.
    image = bootstrap._image_distributions(wheel)
    key = bootstrap._key(wheel, wheel.parent / "constraints.txt", {"serve"}, image)
    lock = env_root / f"0.1.0-{key}.lock"
    lock.mkdir()
    (lock / "owner").write_text("replica-that-died-1234")
    os.utime(lock / "owner", (time.time() - 60, time.time() - 60))
    with caplog.at_level(logging.INFO, logger="azinfer.serve.bootstrap"):
        env_dir = bootstrap.ensure_environment(share, wheel, {"serve"})
    assert "breaking the install lock of replica-that-died-1234" in caplog.text
    assert _env_dirs(share) == [env_dir.name]


def _bare_python(tmp_path: Path) -> Path:
    """The image's Python without azinfer (no site-packages)."""
    bare_python = tmp_path / "python"
    bare_python.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    bare_python.chmod(0o755)
    return bare_python


def test_no_wheel_and_no_azinfer_in_the_image_says_what_to_do(tmp_path: Path) -> None:
    env = _environment(tmp_path, free_port(), AZINFER_PYTHON=str(_bare_python(tmp_path)),
                       AZINFER_WHEEL_WAIT_SECONDS="0")
    result = subprocess.run(["/bin/bash", "-c", start_script()], env=env, capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 1
    assert "azinfer is neither on the share" in result.stderr and "azinfer deploy" in result.stderr


def test_a_new_share_keeps_health_answering_until_the_wheel_arrives(tmp_path: Path) -> None:
    # The ARM deployment that creates the share waits for this replica's startup probe (/health) before
    # deploy can upload the wheel: the start must answer it meanwhile, and give up at its deadline.
    port = free_port()
    env = _environment(tmp_path, port, AZINFER_PYTHON=str(_bare_python(tmp_path)), AZINFER_WHEEL_WAIT_SECONDS="4")
    log = tmp_path / "start.log"
    started = time.monotonic()
    process = _start(env, log, cwd=tmp_path)  # not the repository: its azinfer is not the image's
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 3
        while True:
            try:
                health = httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
        assert health.status_code == 200
        assert httpx.get(f"{base}/ready", timeout=1).status_code == 503
        assert process.wait(timeout=30) == 1
    finally:
        if process.poll() is None:
            _stop(process)
    assert time.monotonic() - started >= 4
    text = log.read_text()
    assert "waiting up to 4 s for azinfer deploy" in text
    assert "azinfer is neither on the share" in text


def test_the_wheel_is_the_same_bytes_for_the_same_code() -> None:
    import io
    import zipfile

    first, second = server_bundle(), server_bundle()
    assert first.files == second.files
    names = zipfile.ZipFile(io.BytesIO(first.files[f"{DIST_DIR}/{first.wheel_name}"])).namelist()
    assert "azinfer/serve/bootstrap.py" in names and "azinfer/schemas/inference.config.schema.json" in names
    assert not [n for n in names if "__pycache__" in n]
    assert first.files[f"{DIST_DIR}/CURRENT"].decode().strip() == first.wheel_name


def test_constraints_pin_every_serving_requirement_within_its_range() -> None:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from tests.freeze_constraints import serving_requirements

    pins = {}
    for line in server_bundle().files[f"{DIST_DIR}/constraints.txt"].decode().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    for requirement in serving_requirements():
        assert isinstance(requirement, Requirement)
        version = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version, prereleases=True), (requirement, version)
