"""Reading a chat-completions body: every field checked, unsupported ones refused by name (no server)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from azinfer.serve.engine.base import ChatTurn, InvalidRequestError, SamplingParams
from azinfer.serve.engine.base import TokenLogprob
from azinfer.serve.http.wire import chunk_body, completion_body, parse_chat_request

HELLO = [{"role": "user", "content": "hello"}]


def parse(**fields: Any) -> Any:
    return parse_chat_request(json.dumps({"model": "m", "messages": HELLO, **fields}).encode(), 256)


def refused(body: bytes | dict[str, Any]) -> InvalidRequestError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(InvalidRequestError) as raised:
        parse_chat_request(raw, 256)
    return raised.value


def test_a_full_request_is_read() -> None:
    request = parse(
        messages=[
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}]},
            {"role": "assistant", "content": "hello", "refusal": None, "tool_calls": None, "annotations": []},
            {"role": "user", "content": "again", "name": "ann"},
        ],
        stream=True, stream_options={"include_usage": True}, max_completion_tokens=9, max_tokens=3,
        temperature=0, top_p=0.5, seed=-7, stop="\n",
    )
    assert request.messages == (ChatTurn("system", "be brief"), ChatTurn("user", "hi there"),
                                ChatTurn("assistant", "hello"), ChatTurn("user", "again"))
    assert request.params == SamplingParams(max_tokens=9, temperature=0, top_p=0.5, seed=-7, stop=("\n",))
    assert request.stream and request.include_usage


def test_defaults() -> None:
    request = parse()
    assert request.params == SamplingParams(max_tokens=256, temperature=1.0, top_p=1.0)
    assert not request.stream and not request.include_usage


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": 1e-39}, "temperature"),  # made the shared batch step raise
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": 1e-46}, "top_p"),
        ({"top_p": 0}, "top_p"),
        ({"seed": 2**64}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"stop": ["a"] * 5}, "stop"),
        ({"stop": ["x" * 100_000] * 4}, "stop"),  # held the shared engine for 13.6 s
        ({"stop": 3}, "stop"),
        ({"stream": "yes"}, "stream"),
        ({"model": ""}, "model"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages"),
        ({"messages": [{"role": "tool", "content": "x", "tool_call_id": "1"}]}, "messages"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, "messages"),
        ({"messages": [{"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]}]}, "messages"),
        ({"messages": [{"role": "user"}]}, "messages"),
    ],
)
def test_out_of_range_or_wrong_type_is_refused_naming_the_field(fields: dict[str, Any], param: str) -> None:
    error = refused({"model": "m", "messages": HELLO, **fields})
    assert error.param == param
    assert param.split("_")[0] in str(error)


@pytest.mark.parametrize(
    "fields",
    [
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        {"tool_choice": "required"},
        {"response_format": {"type": "json_object"}},
        {"logit_bias": {"42": 10}},
        {"n": 2},
        {"audio": {"voice": "x"}},
        {"store": True},
        {"best_of": 2},
        {"stream_options": {"include_usage": True, "include_obfuscation": True}},
    ],
    ids=lambda fields: next(iter(fields)),
)
def test_unsupported_fields_are_refused_by_name(fields: dict[str, Any]) -> None:
    error = refused({"model": "m", "messages": HELLO, **fields})
    name = next(iter(fields))
    assert error.param == name and name in str(error)
    assert error.code == "unsupported_parameter"


def test_neutral_values_of_unsupported_fields_are_accepted() -> None:
    parse(tools=[], tool_choice="none", parallel_tool_calls=True, logprobs=False, top_logprobs=0,
          response_format={"type": "text"}, frequency_penalty=0, presence_penalty=0.0, logit_bias={}, n=1,
          user="u-1", metadata={"a": "b"}, store=False, modalities=["text"], service_tier="auto")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}]}', "messages"),
        (b'{"model": "\\udfff", "messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": ["\\ud83d"]}', "stop"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": NaN}', "body"),
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "\xff"}]}', "body"),
        (b"[" * 100_000 + b"]" * 100_000, "body"),
    ],
    ids=["lone-surrogate", "surrogate-in-model", "surrogate-in-stop", "nan", "malformed", "not-an-object",
         "invalid-utf8", "deep-nesting"],
)
def test_bodies_that_are_not_valid_json_text_are_refused(body: bytes, param: str) -> None:
    error = refused(body)
    assert error.param == param
    assert "\ud800" not in str(error)


def test_vllms_sampling_extensions_are_read_as_its_server_reads_them() -> None:
    params = parse(top_k=5, min_p=0.1, repetition_penalty=1.2, presence_penalty=-1, frequency_penalty=0.5,
                   min_tokens=2, ignore_eos=True, stop_token_ids=[7, 8], max_tokens=10).params
    assert (params.top_k, params.min_p, params.repetition_penalty, params.presence_penalty, params.frequency_penalty,
            params.min_tokens, params.ignore_eos, params.stop_token_ids) == (5, 0.1, 1.2, -1, 0.5, 2, True, (7, 8))
    assert parse(top_k=-1).params.extensions_in_use() == []  # -1 is vLLM's old "off"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"top_k": -2}, "top_k must be 0 (disable), or at least 1"),
        ({"min_p": 1.5}, "min_p must be in [0, 1]"),
        ({"repetition_penalty": 0}, "repetition_penalty must be a finite number above 0"),
        ({"presence_penalty": 2.5}, "presence_penalty must be in [-2, 2]"),
        ({"frequency_penalty": -3}, "frequency_penalty must be in [-2, 2]"),
        ({"min_tokens": 11, "max_tokens": 10}, "min_tokens must be between 0 and max_tokens (10)"),
        ({"ignore_eos": "yes"}, "ignore_eos must be true or false"),
        ({"stop_token_ids": [1, "2"]}, "stop_token_ids must be a list of token ids"),
        ({"stop_token_ids": [-1]}, "stop_token_ids must be at most 64 token ids"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else "",
)
def test_vllms_extensions_out_of_range_are_refused_by_name(fields: dict[str, Any], message: str) -> None:
    error = refused({"model": "m", "messages": HELLO, **fields})
    assert error.param == next(iter(fields)) and message in str(error)


def test_too_many_messages_or_values_are_refused_before_they_are_built() -> None:
    from azinfer.serve.http.wire import MAX_MESSAGES, MAX_SEPARATORS

    error = refused({"model": "m", "messages": [{"role": "user", "content": ""}] * (MAX_MESSAGES + 1)})
    assert error.code == "too_many_messages"
    error = refused({"model": "m", "messages": HELLO, "metadata": [0] * (MAX_SEPARATORS + 1)})
    assert error.code == "body_too_complex"


def test_logprobs_and_top_logprobs_are_read_as_vllms_server_reads_them() -> None:
    assert parse(logprobs=True, top_logprobs=5).params.logprobs == 5
    assert parse(logprobs=True).params.logprobs == parse(logprobs=True, top_logprobs=None).params.logprobs == 0
    assert parse(logprobs=False, top_logprobs=0).params.logprobs is None
    assert parse(logprobs=True, top_logprobs=20).params.logprobs == 20


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"top_logprobs": 3}, "when using `top_logprobs`, `logprobs` must be set to true."),
        ({"logprobs": False, "top_logprobs": 1}, "when using `top_logprobs`, `logprobs` must be set to true."),
        ({"logprobs": True, "top_logprobs": 21}, "Requested sample logprobs of 21, which is greater than max allowed: 20"),
        ({"logprobs": True, "top_logprobs": -1}, "which is greater than max allowed: 20"),
        ({"logprobs": True, "top_logprobs": -2}, "`top_logprobs` must be a positive value or -1."),
        ({"logprobs": True, "top_logprobs": "3"}, "`top_logprobs` must be an integer."),
        ({"logprobs": True, "top_logprobs": 2.5}, "`top_logprobs` must be an integer."),
    ],
    ids=["without-logprobs", "logprobs-false", "above-20", "whole-vocabulary", "negative", "string", "fraction"],
)
def test_bad_top_logprobs_are_refused_with_vllms_messages(fields: dict[str, Any], message: str) -> None:
    error = refused({"model": "m", "messages": HELLO, **fields})
    assert error.param == "top_logprobs" and message in str(error)
    assert error.code == "invalid_value"


def test_logprobs_must_be_true_or_false() -> None:
    error = refused({"model": "m", "messages": HELLO, "logprobs": 1})
    assert error.param == "logprobs" and "logprobs must be true or false" in str(error)


def test_log_probabilities_have_openais_shape() -> None:
    tokens = [TokenLogprob("hé", -0.5, (("hé", -0.5), ("x", -1.25))), TokenLogprob("", float("-inf"), ()),
              TokenLogprob("\ufffd", -2.0, ())]
    choice = completion_body("c", "m", "hé", "stop", 3, 3, tokens)["choices"][0]
    assert choice["logprobs"] == {"content": [
        {"token": "hé", "logprob": -0.5, "bytes": [104, 195, 169],
         "top_logprobs": [{"token": "hé", "logprob": -0.5, "bytes": [104, 195, 169]},
                          {"token": "x", "logprob": -1.25, "bytes": [120]}]},
        # vLLM's server: -inf is clamped to -9999, an unfinished character's bytes are U+FFFD's
        {"token": "", "logprob": -9999.0, "bytes": [], "top_logprobs": []},
        {"token": "\ufffd", "logprob": -2.0, "bytes": [239, 191, 189], "top_logprobs": []},
    ]}
    assert json.dumps(choice)  # plain JSON (no -Infinity)
    assert completion_body("c", "m", "hi", "stop", 3, 1)["choices"][0]["logprobs"] is None
    chunk = chunk_body("c", "m", {"content": "hé"}, logprobs=tokens[:1])["choices"][0]
    assert chunk["logprobs"]["content"][0]["token"] == "hé"
    assert chunk_body("c", "m", {"content": "hé"})["choices"][0]["logprobs"] is None
