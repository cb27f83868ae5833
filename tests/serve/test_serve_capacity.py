"""A bounded queue (429 with Retry-After) and cancellation of a disconnected client's generation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from conftest import RunningServer, running_server

MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
LONG = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4000, "stream": True,
        "temperature": 0}  # greedy: this model then runs the full 4000 tokens (about 4 s) unless cancelled


@pytest.fixture(scope="module")
def one_slot_server(llama_mount: Any) -> Iterator[RunningServer]:
    """Room for exactly one request: a batch of one and no queue."""
    with running_server(mount_root=llama_mount.root, max_batch_size=1, max_queue=0) as server:
        yield server


def wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_full_queue_is_429_and_disconnect_cancels(one_slot_server: RunningServer) -> None:
    engine = one_slot_server.engine
    before = engine.stats().finished.get("cancelled", 0)
    client = openai.OpenAI(base_url=f"{one_slot_server.base_url}/v1", api_key="unused", max_retries=0)
    with httpx.Client(timeout=30) as http, http.stream("POST", f"{one_slot_server.base_url}/v1/chat/completions", json=LONG) as stream:
        lines = stream.iter_lines()
        assert sum(1 for _, line in zip(range(4), lines) if line.startswith("data: ")) >= 2  # generating
        with pytest.raises(openai.RateLimitError) as raised:
            client.chat.completions.create(model=MODEL, messages=LONG["messages"], max_tokens=2)
        assert raised.value.response.headers["retry-after"] == "1"
        assert raised.value.body["code"] == "rate_limit_exceeded"
    # The stream is closed before its 4000 tokens: the engine stops generating it.
    wait_for(lambda: engine.stats().finished.get("cancelled", 0) == before + 1 and engine.stats().running == 0)
    assert "length" not in engine.stats().finished
    reply = client.chat.completions.create(model=MODEL, messages=LONG["messages"], max_tokens=3, temperature=0)
    assert reply.usage.completion_tokens == 3  # the slot is free again


def test_disconnect_cancels_a_whole_reply(one_slot_server: RunningServer) -> None:
    engine = one_slot_server.engine
    before = engine.stats().finished.get("cancelled", 0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{one_slot_server.base_url}/v1/chat/completions", json={**LONG, "stream": False}, timeout=1.0)
    wait_for(lambda: engine.stats().finished.get("cancelled", 0) == before + 1 and engine.stats().running == 0)
