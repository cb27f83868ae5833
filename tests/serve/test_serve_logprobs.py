"""``logprobs`` and ``top_logprobs`` on the batched engine, driven by the official ``openai`` client over loopback.

The vLLM engine's answers are checked against these in ``test_vllm_engine.py``.
"""

from __future__ import annotations

import threading
from typing import Any

import openai
import pytest
from conftest import API_KEY, RunningServer, running_server

MODEL = "microsoft/Phi-3-mini-4k-instruct"
HELLO = [{"role": "user", "content": "hello world"}]


def ask(client: openai.OpenAI, **options: Any) -> Any:
    return client.chat.completions.create(model=MODEL, messages=HELLO, **options)


def check_shape(content: list[Any], top: int) -> None:
    """Each token: text, bytes, a log probability <= 0, and *top* alternatives with the token itself first (vLLM's order)."""
    for token in content:
        assert token.bytes == list(token.token.encode("utf-8", "replace"))
        assert token.logprob <= 0
        assert len(token.top_logprobs) == top
        if top:
            first = token.top_logprobs[0]
            assert (first.token, first.logprob, first.bytes) == (token.token, token.logprob, token.bytes)
            others = [t.logprob for t in token.top_logprobs[1:]]
            assert others == sorted(others, reverse=True) and all(p <= 0 for p in others)


def test_greedy_tokens_come_with_their_log_probabilities_and_are_the_most_likely(openai_client: openai.OpenAI) -> None:
    plain = ask(openai_client, max_tokens=10, temperature=0)
    reply = ask(openai_client, max_tokens=10, temperature=0, logprobs=True, top_logprobs=5)
    choice = reply.choices[0]
    assert choice.message.content == plain.choices[0].message.content  # asking for them changes nothing else
    content = choice.logprobs.content
    assert len(content) == reply.usage.completion_tokens == 10
    check_shape(content, 5)
    for token in content:
        assert token.logprob >= max(t.logprob for t in token.top_logprobs)  # greedy picks the top-1
    complete = [t.token for t in content]
    if "" not in complete:  # no token is a byte of an unfinished character: the tokens spell the text
        assert "".join(complete) == choice.message.content
    assert plain.choices[0].logprobs is None


def test_sampled_tokens_report_the_raw_distribution(openai_client: openai.OpenAI) -> None:
    greedy = ask(openai_client, max_tokens=1, temperature=0, logprobs=True, top_logprobs=20).choices[0]
    for options in ({"temperature": 1.5, "seed": 3}, {"temperature": 0.3, "repetition_penalty": 1.8, "seed": 4}):
        sampled = ask(openai_client, max_tokens=12, logprobs=True, top_logprobs=3, extra_body=options).choices[0]
        check_shape(sampled.logprobs.content, 3)
        # vLLM's default (raw_logprobs): the model's own distribution, before temperature and penalties.
        # (Bytes of unfinished characters all show as "": only whole tokens are compared.)
        first = {t.token: t.logprob for t in greedy.logprobs.content[0].top_logprobs if t.token}
        for alternative in sampled.logprobs.content[0].top_logprobs:
            if alternative.token in first:
                assert alternative.logprob == pytest.approx(first[alternative.token], abs=1e-4)


def test_logprobs_without_top_logprobs_give_the_tokens_alone(openai_client: openai.OpenAI) -> None:
    reply = ask(openai_client, max_tokens=4, temperature=0, logprobs=True)
    assert len(reply.choices[0].logprobs.content) == 4
    check_shape(reply.choices[0].logprobs.content, 0)


def test_streamed_log_probabilities_equal_the_whole_replys(openai_client: openai.OpenAI) -> None:
    whole = ask(openai_client, max_tokens=12, temperature=0, logprobs=True, top_logprobs=2).choices[0]
    chunks = list(ask(openai_client, max_tokens=12, temperature=0, logprobs=True, top_logprobs=2, stream=True))
    streamed = [token for c in chunks if c.choices and c.choices[0].logprobs for token in c.choices[0].logprobs.content]
    assert [t.token for t in streamed] == [t.token for t in whole.logprobs.content]
    assert [t.logprob for t in streamed] == pytest.approx([t.logprob for t in whole.logprobs.content], abs=1e-4)
    assert [[a.token for a in t.top_logprobs] for t in streamed] == [
        [a.token for a in t.top_logprobs] for t in whole.logprobs.content]
    # One token per chunk, each with the text it completes, as vLLM streams them.
    assert all(len(c.choices[0].logprobs.content) == 1 for c in chunks if c.choices and c.choices[0].logprobs)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.message.content


@pytest.mark.parametrize(
    ("options", "param", "message"),
    [
        ({"top_logprobs": 2}, "top_logprobs", "when using `top_logprobs`, `logprobs` must be set to true."),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs",
         "Requested sample logprobs of 21, which is greater than max allowed: 20"),
        ({"logprobs": True, "top_logprobs": -1}, "top_logprobs", "which is greater than max allowed: 20"),
        ({"logprobs": "yes"}, "logprobs", "logprobs must be true or false"),
    ],
    ids=["without-logprobs", "above-20", "whole-vocabulary", "not-a-flag"],
)
def test_bad_log_probability_requests_are_400_naming_the_field(
    openai_client: openai.OpenAI, options: dict[str, Any], param: str, message: str
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        ask(openai_client, max_tokens=2, extra_body=options)
    assert raised.value.body["param"] == param and message in raised.value.body["message"]
    assert raised.value.body["type"] == "invalid_request_error"


def test_the_baseline_engine_refuses_them_by_name(phi_mount: Any) -> None:
    with running_server(mount_root=phi_mount.root, api_key=API_KEY, engine="baseline") as server:
        client = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=API_KEY, max_retries=0, timeout=60)
        with pytest.raises(openai.BadRequestError) as raised:
            ask(client, max_tokens=2, logprobs=True)
        assert raised.value.body["param"] == "logprobs"
        assert "logprobs is not supported by the baseline engine" in raised.value.body["message"]
        assert ask(client, max_tokens=2, logprobs=False).choices[0].logprobs is None


def test_a_server_answers_logprobs_for_one_request_and_not_its_neighbours(phi_server: RunningServer) -> None:
    client = openai.OpenAI(base_url=f"{phi_server.base_url}/v1", api_key=API_KEY, max_retries=0, timeout=60)
    replies: dict[int, Any] = {}

    def one(i: int) -> None:
        replies[i] = ask(client, max_tokens=16, temperature=0, logprobs=bool(i % 2), top_logprobs=i % 2 * 3)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(replies) == [0, 1, 2, 3]  # batched together: the rows that ask get them, the others do not
    texts = {r.choices[0].message.content for r in replies.values()}
    assert len(texts) == 1
    for i, reply in replies.items():
        assert (reply.choices[0].logprobs is None) == (i % 2 == 0)
