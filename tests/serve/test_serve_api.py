"""The OpenAI-compatible API, driven by the official ``openai`` client over loopback HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from conftest import API_KEY, RunningServer, running_server

MODEL = "microsoft/Phi-3-mini-4k-instruct"
HELLO = [{"role": "user", "content": "hello world"}]


def greedy(client: openai.OpenAI, messages: list[dict[str, str]], **options: Any) -> Any:
    return client.chat.completions.create(model=MODEL, messages=messages, temperature=0, **options)


def test_bad_sampling_values_are_400_and_fail_alone(phi_server: RunningServer, openai_client: openai.OpenAI) -> None:
    # Was: each of these made the shared batch step raise; every running request failed and the sender got 500.
    alone = greedy(openai_client, HELLO, max_tokens=200).choices[0].message.content
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 200, "temperature": 0, "stream": True}
    key = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(timeout=30) as http, http.stream("POST", f"{phi_server.base_url}/v1/chat/completions",
                                                       json=body, headers=key) as stream:
        events = (json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: {"))
        chunks = [next(events) for _ in range(3)]  # it is generating
        for bad, param in [({"temperature": 1e-39}, "temperature"), ({"top_p": 1e-46}, "top_p"),
                           ({"seed": 2**64}, "seed")]:
            response = httpx.post(f"{phi_server.base_url}/v1/chat/completions", headers=key,
                                  json={"model": MODEL, "messages": HELLO, "temperature": 1, **bad})
            assert response.status_code == 400
            assert response.json()["error"]["param"] == param
        chunks += list(events)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == alone
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"


def test_models_lists_the_served_model(openai_client: openai.OpenAI) -> None:
    assert [m.id for m in openai_client.models.list()] == [MODEL]


def test_completion_reports_text_usage_and_length_finish(openai_client: openai.OpenAI) -> None:
    reply = greedy(openai_client, HELLO, max_tokens=12)
    choice = reply.choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.role == "assistant" and choice.message.content
    assert reply.usage.completion_tokens == 12
    assert reply.usage.prompt_tokens > 2
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 12


def test_streamed_reply_equals_whole_reply(openai_client: openai.OpenAI) -> None:
    whole = greedy(openai_client, HELLO, max_tokens=16).choices[0].message.content
    stream = greedy(openai_client, HELLO, max_tokens=16, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert chunks[-1].usage.completion_tokens == 16
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1  # streamed, not one block


def test_stream_ends_with_done(phi_server: RunningServer) -> None:
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 4, "stream": True}
    response = httpx.post(f"{phi_server.base_url}/v1/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[0][6:])["object"] == "chat.completion.chunk"


def test_whole_conversation_reaches_the_model(openai_client: openai.OpenAI) -> None:
    last_only = greedy(openai_client, HELLO, max_tokens=12).choices[0].message.content
    conversation = [
        {"role": "system", "content": "answer about azure"},
        {"role": "user", "content": "the quick brown fox"},
        {"role": "assistant", "content": "jumps over the lazy dog"},
        *HELLO,
    ]
    assert greedy(openai_client, conversation, max_tokens=12).choices[0].message.content != last_only


def test_stop_string_cuts_the_reply(openai_client: openai.OpenAI) -> None:
    full = greedy(openai_client, HELLO, max_tokens=24).choices[0].message.content
    stop = full[8:11]
    cut = greedy(openai_client, HELLO, max_tokens=24, stop=[stop]).choices[0]
    assert cut.finish_reason == "stop"
    assert cut.message.content == full[: full.index(stop)]


def test_seed_makes_sampling_repeatable(openai_client: openai.OpenAI) -> None:
    def sample(seed: int) -> str:
        return openai_client.chat.completions.create(
            model=MODEL, messages=HELLO, temperature=1.0, top_p=0.9, seed=seed, max_tokens=16
        ).choices[0].message.content

    assert sample(7) == sample(7)
    assert len({sample(seed) for seed in (1, 2, 3)}) > 1


def test_adapter_changes_greedy_output(phi_mount: Any, openai_client: openai.OpenAI) -> None:
    tuned = greedy(openai_client, HELLO, max_tokens=16).choices[0].message.content
    with running_server(mount_root=phi_mount.root, base_only=True) as base:
        client = openai.OpenAI(base_url=f"{base.base_url}/v1", api_key="unused", max_retries=0)
        assert greedy(client, HELLO, max_tokens=16).choices[0].message.content != tuned


def test_openai_client_with_a_wrong_key_gets_401(phi_server: RunningServer) -> None:
    client = openai.OpenAI(base_url=f"{phi_server.base_url}/v1", api_key="wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        greedy(client, HELLO, max_tokens=2)
    assert raised.value.body["code"] == "invalid_api_key"
    assert "wrong-key" not in raised.value.body["message"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": f"Bearer {API_KEY}x"}, {"Authorization": f"Basic {API_KEY}"}],
    ids=["no-header", "wrong-key", "wrong-scheme"],
)
def test_v1_routes_need_the_key(phi_server: RunningServer, headers: dict[str, str]) -> None:
    for response in (
        httpx.get(f"{phi_server.base_url}/v1/models", headers=headers),
        httpx.post(f"{phi_server.base_url}/v1/chat/completions", headers=headers, json={}),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


def test_probes_are_open(phi_server: RunningServer) -> None:
    assert httpx.get(f"{phi_server.base_url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{phi_server.base_url}/ready").status_code == 200


def test_unknown_model_is_404(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        openai_client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert raised.value.body["code"] == "model_not_found"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"model": "m"}',
        json.dumps({"model": MODEL, "messages": HELLO, "temperature": 5}).encode(),
        json.dumps({"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}).encode(),
        json.dumps({"model": MODEL, "messages": HELLO, "max_tokens": 0}).encode(),
    ],
    ids=["malformed-json", "no-messages", "temperature-out-of-range", "unknown-role", "zero-max-tokens"],
)
def test_bad_request_is_400_with_openai_error(phi_server: RunningServer, body: bytes) -> None:
    response = httpx.post(f"{phi_server.base_url}/v1/chat/completions", content=body,
                          headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]


def test_prompt_longer_than_context_is_400_with_both_numbers(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        greedy(openai_client, [{"role": "user", "content": "lorem ipsum dolor " * 200}], max_tokens=4)
    message = raised.value.body["message"]
    assert "256" in message  # the context
    prompt_tokens = int(message.split("prompt is ")[1].split()[0])
    assert prompt_tokens > 256
    assert greedy(openai_client, HELLO, max_tokens=2).choices[0].message.content  # still serving


def test_max_tokens_is_clamped_to_the_context(openai_client: openai.OpenAI) -> None:
    reply = greedy(openai_client, [{"role": "user", "content": "lorem ipsum dolor " * 20}], max_tokens=5000)
    assert reply.usage.prompt_tokens + reply.usage.completion_tokens <= 256
    if reply.choices[0].finish_reason == "length":
        assert reply.usage.prompt_tokens + reply.usage.completion_tokens == 256


def test_unsupported_fields_are_400_naming_them(openai_client: openai.OpenAI) -> None:
    # Was: tools, logprobs (now served) and response_format were silently ignored.
    tool = {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
    for options, param in [({"tools": [tool]}, "tools"), ({"n": 2}, "n"),
                           ({"response_format": {"type": "json_object"}}, "response_format")]:
        with pytest.raises(openai.BadRequestError) as raised:
            greedy(openai_client, HELLO, max_tokens=2, **options)
        assert raised.value.body["param"] == param and param in raised.value.body["message"]
    # What common clients send by default is fine.
    reply = greedy(openai_client, HELLO, max_tokens=2, n=1, user="u-1", presence_penalty=0, logprobs=False)
    assert reply.usage.completion_tokens == 2


def test_a_lone_surrogate_is_400_not_500(phi_server: RunningServer) -> None:
    body = b'{"model": "%s", "messages": [{"role": "user", "content": "hi \\ud800"}]}' % MODEL.encode()
    response = httpx.post(f"{phi_server.base_url}/v1/chat/completions", content=body,
                          headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("GET", "/v1/nothing", 404, "not_found"), ("GET", "/v1/chat/completions", 405, "method_not_allowed"),
     ("DELETE", "/v1/models", 405, "method_not_allowed"), ("POST", "/health", 405, "method_not_allowed")],
)
def test_unknown_routes_and_methods_have_openai_errors(
    phi_server: RunningServer, method: str, path: str, status: int, code: str
) -> None:
    response = httpx.request(method, phi_server.base_url + path, headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    if status == 405:
        assert response.headers["allow"]


def test_no_route_open_without_the_key_takes_data(phi_server: RunningServer) -> None:
    # Was: Gradio's upload route stored a 50 MB file for anyone and served it back.
    from starlette.routing import Route

    from azinfer.serve.http.app import OPEN_PATHS

    routes = phi_server.server.config.app.routes
    assert {r.path for r in routes} >= OPEN_PATHS
    for route in routes:
        assert isinstance(route, Route)
        if route.path in OPEN_PATHS:
            assert route.methods <= {"GET", "HEAD"}, route.path
    for path in ["/", "/chat.js", "/upload", "/gradio_api/upload", "/v1/files", "/file=x"]:
        response = httpx.post(phi_server.base_url + path, files={"files": ("a.txt", b"x" * 1000)})
        assert response.status_code in (401, 405), path
    assert httpx.get(f"{phi_server.base_url}/upload").status_code == 401
