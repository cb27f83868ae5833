"""The container app's start command, run for real against folders laid out like /mount (the share)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from conftest import API_KEY, free_port, wait_ready
from packaging.utils import canonicalize_name

from azinfer.serve import start_script
from azinfer.serve.bundle import DIST_DIR, IMAGE_LACKS, server_bundle

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


def _azinfer_wheel(share: Path) -> Path:
    return share / DIST_DIR / (share / DIST_DIR / "CURRENT").read_text().strip()


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
        site = share / ".azinfer" / "env" / env_dir / "azinfer-wheel"  # azinfer's wheel, unpacked
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
    # One line naming the package and the fix, not pip's output.
    assert ("azinfer: error: the image lacks bitsandbytes and the share has no wheel of it" in result.stderr
            and "run 'azinfer deploy'" in result.stderr), result.stderr
    assert "Traceback" not in result.stderr + result.stdout and "ERROR:" not in result.stdout
    assert _env_dirs(share) == []  # no environment, no lock, no build folder
    from azinfer.serve.bootstrap import ensure_environment

    wheel = _azinfer_wheel(share)
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

    wheel = _azinfer_wheel(share)
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


def test_the_wheels_are_the_same_bytes_for_the_same_code() -> None:
    import io
    import zipfile

    first, second = server_bundle(), server_bundle()
    assert first.files == second.files  # deploy's sync by content then uploads nothing
    names = zipfile.ZipFile(io.BytesIO(first.files[f"{DIST_DIR}/{first.wheel_name}"])).namelist()
    assert "azinfer/serve/bootstrap.py" in names and "azinfer/schemas/inference.config.schema.json" in names
    assert not [n for n in names if "__pycache__" in n]
    assert first.files[f"{DIST_DIR}/CURRENT"].decode().strip() == first.wheel_name
    # What the image lacks travels as pure-Python wheels of the installed versions, pinned at those versions.
    pins = first.files[f"{DIST_DIR}/constraints.txt"].decode().splitlines()
    for name in IMAGE_LACKS:
        version = metadata.version(name)
        wheel = zipfile.ZipFile(io.BytesIO(first.files[f"{DIST_DIR}/{name}-{version}-py3-none-any.whl"]))
        assert wheel.testzip() is None and {entry.date_time for entry in wheel.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert f"{name}/__init__.py" in wheel.namelist() and not [n for n in wheel.namelist() if n.endswith(".pyc")]
        assert f"{name}=={version}" in pins


def test_the_image_lacks_what_vllm_does_not_require() -> None:
    pytest.importorskip("vllm")
    from tests.freeze_constraints import image_lacks

    assert list(IMAGE_LACKS) == image_lacks()


def test_a_wheel_neither_installed_nor_downloadable_is_one_clear_error(monkeypatch: pytest.MonkeyPatch,
                                                                       index: tuple[str, list[str]]) -> None:
    from azinfer.errors import AzinferError
    from azinfer.serve import bundle

    def not_installed(name: str) -> metadata.Distribution:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(bundle.metadata, "distribution", not_installed)
    monkeypatch.setenv("PIP_INDEX_URL", f"{index[0]}/simple")  # an index that has nothing, and nothing else
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    with pytest.raises(AzinferError, match=r"peft is not installed here .*'pip download peft==0\.21\.2' failed "
                                           r".*install it here \('pip install peft==0\.21\.2'\)"):
        bundle.dependency_wheel("peft", "0.21.2")
    assert any("/simple/peft/" in request for request in index[1])


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


@pytest.fixture(scope="module")
def vllm_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python that mimics vLLM's image: this environment's packages (torch, vLLM's CPU build...) without
    azinfer and what the image lacks (peft, accelerate); returns its interpreter.

    A virtual environment whose site-packages holds links to this one's files (hard links, or symbolic
    ones across file systems) in folders of its own: pip sees exactly the image's distributions, and
    anything pip removed there would remove a link and leave this environment intact.
    """
    pytest.importorskip("vllm")
    root = tmp_path_factory.mktemp("vllm-image")
    system = Path(sysconfig.get_paths()["purelib"])
    link = "--link" if os.stat(system).st_dev == os.stat(root).st_dev else "--symbolic-link"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    site = Path(sysconfig.get_paths(vars={"base": str(root), "platbase": str(root)})["purelib"])
    # The distributions as installed in site-packages (a checkout's azinfer.egg-info on sys.path lists other files).
    installed = {d.metadata["Name"].lower(): d for d in metadata.distributions(path=[str(system)])}
    hidden = {path.parts[0] for name in ("azinfer", *IMAGE_LACKS) for path in installed[name].files or []
              if path.parts[0] not in ("..", "__pycache__")}
    entries = sorted(str(entry) for entry in system.iterdir() if entry.name not in hidden)
    subprocess.run(["cp", "-a", link, "-t", str(site), *entries], check=True, timeout=300)
    python = root / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import importlib.util as u; print([bool(u.find_spec(m)) for m in "
                            "('torch', 'vllm', 'transformers', 'azinfer', 'peft', 'accelerate')])"],
                           capture_output=True, text=True, timeout=120, env=_environment(root, 0), cwd=root)
    assert probe.stdout.strip() == "[True, True, True, False, False, False]", probe
    return python


class _IndexCounter(BaseHTTPRequestHandler):
    """A package index (and proxy) that has nothing and counts every request."""

    requests: list[str] = []

    def _count(self) -> None:
        self.requests.append(f"{self.command} {self.path}")
        self.send_error(404)

    do_GET = do_HEAD = do_POST = do_CONNECT = _count

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def index() -> Iterator[tuple[str, list[str]]]:
    """A loopback URL set as the package index and the proxy, and the requests it received."""
    _IndexCounter.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _IndexCounter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _IndexCounter.requests
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _freeze(python: Path) -> list[str]:
    result = subprocess.run([str(python), "-m", "pip", "freeze", "--all", "--disable-pip-version-check"],
                            capture_output=True, text=True, timeout=120, check=True, cwd=python.parent,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    return result.stdout.splitlines()


def test_the_start_on_vllms_image_replaces_nothing_and_asks_no_index(
        share: Path, vllm_image: Path, index: tuple[str, list[str]], tmp_path: Path) -> None:
    url, requests = index
    before = _freeze(vllm_image)
    port = free_port()
    # Every index and proxy setting pip reads points at the counter: one request would be seen. No pip
    # configuration of this machine (its find-links, extra indexes) is seen, as in a container.
    env = _environment(share, port, AZINFER_PYTHON=str(vllm_image), PIP_CONFIG_FILE=os.devnull,
                       PIP_INDEX_URL=f"{url}/simple",
                       PIP_EXTRA_INDEX_URL=f"{url}/extra", HTTP_PROXY=url, HTTPS_PROXY=url, http_proxy=url,
                       https_proxy=url)
    for name in ("PIP_NO_INDEX", "PIP_FIND_LINKS", "NO_PROXY", "no_proxy"):
        env.pop(name, None)
    ready_after = []
    for run in ("first", "restart"):  # the first start installs, the restart finds the environment
        log = tmp_path / f"image-{run}.log"
        started = time.monotonic()
        process = _start(env, log, cwd=tmp_path)  # not the checkout: the server must import azinfer from the share
        try:
            wait_ready(f"http://127.0.0.1:{port}", timeout=240)
            ready_after.append(time.monotonic() - started)
        finally:
            _stop(process)
    after = _freeze(vllm_image)
    assert requests == [], requests
    assert after == before, sorted(set(before) ^ set(after))
    # Only what the image lacks was installed, from the share's wheels, and the server ran from there.
    (env_dir,) = (share / ".azinfer" / "env").iterdir()
    assert (env_dir / "azinfer-wheel" / "azinfer" / "serve" / "bootstrap.py").is_file()
    site = next(env_dir.glob("lib/python*/site-packages"))
    installed = sorted(p.name.split("-")[0] for p in site.glob("*.dist-info"))
    assert installed == sorted(IMAGE_LACKS), installed
    assert "(installed before)" in log.read_text()
    first = (tmp_path / "image-first.log").read_text()
    assert "Successfully installed accelerate-" in first and "Looking in links: " + str(share / DIST_DIR) in first
    # The start pinned every image package at the image's version (pip's resolver could pick no other).
    pins = dict(line.split("==", 1) for line in (env_dir / "constraints.txt").read_text().split())
    pins = {canonicalize_name(name): version for name, version in pins.items()}
    assert all(pins[canonicalize_name(name)] == version
               for name, version in (line.split("==", 1) for line in before if "==" in line)), pins
    print(f"\nvLLM image mimic: {len(before)} packages, 0 changed, {len(requests)} index requests; /ready "
          f"{ready_after[0]:.1f} s after the first start (install included), {ready_after[1]:.1f} s after a restart")
