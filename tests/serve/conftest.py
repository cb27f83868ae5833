"""Fixtures of the serve tests: tiny models in the AI Toolkit layout, and servers on loopback."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from serve_model_factory import ModelShape, MountLayout, build_mount  # noqa: E402

os.environ["HF_HUB_OFFLINE"] = "1"

API_KEY = "test-key-not-a-secret-3f9a"


@pytest.fixture(scope="session")
def phi_mount(tmp_path_factory: pytest.TempPathFactory) -> MountLayout:
    """A Phi-3 shaped model and its adapter laid out like /mount."""
    return build_mount(tmp_path_factory.mktemp("phi-mount"), ModelShape(family="phi3"))


@pytest.fixture(scope="session")
def llama_mount(tmp_path_factory: pytest.TempPathFactory) -> MountLayout:
    """A Llama shaped model with a long context, so a generation can run long enough to be cancelled."""
    return build_mount(tmp_path_factory.mktemp("llama-mount"), ModelShape(family="llama", context=4096))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{base_url} not ready after {timeout} s")


class RunningServer:
    """A server running in a thread of the test process, reachable at ``base_url``."""

    def __init__(self, server: Any, base_url: str) -> None:
        self.server = server
        self.base_url = base_url

    @property
    def engine(self) -> Any:
        return self.server.config.app.state.engine


@contextmanager
def running_server(ready_timeout: float = 60.0, **settings: Any) -> Iterator[RunningServer]:
    """Serve with these :class:`ServeSettings` on a free loopback port until the block ends."""
    from azinfer.serve.server import build_server
    from azinfer.serve.settings import ServeSettings

    port = free_port()
    server = build_server(ServeSettings(host="127.0.0.1", port=port, **settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, ready_timeout)
        yield RunningServer(server, base_url)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def phi_server(phi_mount: MountLayout) -> Iterator[RunningServer]:
    """The Phi-3 model with its merged adapter, found under the mount, behind an API key."""
    with running_server(mount_root=phi_mount.root, api_key=API_KEY) as server:
        yield server


CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def page() -> Iterator[Any]:
    """A page in Debian's chromium, headless."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser.new_page()
        browser.close()



@pytest.fixture(scope="session")
def openai_client(phi_server: RunningServer) -> Any:
    import openai

    return openai.OpenAI(base_url=f"{phi_server.base_url}/v1", api_key=API_KEY, max_retries=0, timeout=60)
