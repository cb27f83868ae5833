"""OpenAI's chat-completions wire format: a request body read strictly, and the bodies we answer with.

vLLM's sampling extensions (``top_k``, ``min_p``, ``repetition_penalty``,
``min_tokens``, ``ignore_eos``, ``stop_token_ids``) and ``logprobs`` with
``top_logprobs`` are read as its server reads them, with its messages; log
probabilities are answered in OpenAI's shape (``choices[].logprobs.content``).
A field we do not support is refused with 400 naming it, rather than ignored:
a client asking for tools or a JSON response would
otherwise get an answer that silently lacks them. Fields that only carry
their neutral value (``"tools": []``, ``"n": 1``...)
and metadata fields (``user``, ``metadata``...) are accepted, since common
clients send them by default.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from azinfer.serve.engine.base import ChatTurn, InvalidRequestError, Role, SamplingParams, TokenLogprob

__all__ = [
    "ChatRequest",
    "MAX_MESSAGES",
    "MAX_SEPARATORS",
    "chunk_body",
    "completion_body",
    "error_body",
    "logprobs_body",
    "new_completion_id",
    "parse_chat_request",
]


def _none(value: Any) -> bool:
    return value is None


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def _one_of(*allowed: Any) -> Callable[[Any], bool]:
    return lambda value: any(value is a or (type(value) is type(a) and value == a) for a in allowed)


def _anything(value: Any) -> bool:
    return True


# Request fields we do not implement: accepted only with the value that asks for nothing.
_NEUTRAL_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "tools": (_empty, "tool calls are not supported"),
    "functions": (_empty, "function calls are not supported"),
    "tool_choice": (_one_of(None, "none", "auto"), "tool calls are not supported"),
    "function_call": (_one_of(None, "none", "auto"), "function calls are not supported"),
    "parallel_tool_calls": (_anything, ""),
    "response_format": (lambda v: v is None or v == {"type": "text"}, "only text responses are supported (type 'text')"),
    "logit_bias": (_empty, "logit_bias is not supported"),
    "n": (_one_of(None, 1), "only one choice per request is supported (n=1)"),
    "modalities": (lambda v: v is None or v == ["text"], "only the text modality is supported"),
    "audio": (_none, "audio output is not supported"),
    "prediction": (_none, "predicted outputs are not supported"),
    "web_search_options": (_none, "web search is not supported"),
    "reasoning_effort": (_none, "reasoning_effort is not supported"),
    "verbosity": (_none, "verbosity is not supported"),
    "store": (_one_of(None, False), "stored completions are not supported"),
    "service_tier": (_one_of(None, "auto", "default"), "service tiers are not supported"),
    # Metadata about the caller; nothing to do with the answer.
    "user": (_anything, ""),
    "metadata": (_anything, ""),
    "safety_identifier": (_anything, ""),
    "prompt_cache_key": (_anything, ""),
}
_FIELDS = {"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
           "temperature", "top_p", "seed", "stop", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs",
           # vLLM's extensions (its server takes them in the same body)
           "top_k", "min_p", "repetition_penalty", "min_tokens", "ignore_eos", "stop_token_ids"}
# Keys a client may echo back in an assistant message it got from us (all empty then).
_NEUTRAL_MESSAGE_KEYS = {"tool_calls": _empty, "function_call": _none, "refusal": _none, "audio": _none,
                         "annotations": _empty}
_ROLES: dict[str, Role] = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


@dataclass(frozen=True)
class ChatRequest:
    """A checked ``POST /v1/chat/completions`` body."""

    model: str
    messages: tuple[ChatTurn, ...]
    params: SamplingParams
    stream: bool
    include_usage: bool


# Bounds on what a body may make the parser build, checked before parsing (see _load).
# A conversation that fits a 128k-token context holds far fewer of either.
MAX_SEPARATORS = 131_072
MAX_MESSAGES = 4096
# A lone surrogate can only come from a \\u escape (UTF-8 cannot encode one): look for it only then.
_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _check_unicode(data: Any) -> None:
    """Refuse strings that are not valid Unicode (a lone surrogate such as ``\\ud800`` parses but cannot be encoded)."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError as error:
                    where = path.encode("utf-8", "backslashreplace").decode("ascii", "replace") or "the body"
                    raise InvalidRequestError(
                        where.split(".")[0].split("[")[0] if path else "body",
                        f"{where}: not valid Unicode text (lone surrogate at character {error.start})",
                    ) from None
        elif isinstance(value, dict):
            for key, item in value.items():
                stack.append((f"{path}.{key}" if path else str(key), key))
                stack.append((f"{path}.{key}" if path else str(key), item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))


def _load(body: bytes) -> dict[str, Any]:
    separators = body.count(b",") + body.count(b":")
    if separators > MAX_SEPARATORS:
        raise InvalidRequestError("body", f"the body has {separators} ',' and ':' (at most {MAX_SEPARATORS}): "
                                  "more values than a request that fits a model's context", "body_too_complex")
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise InvalidRequestError("body", f"the body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidRequestError("body", "the body must be a JSON object")
    if _SURROGATE_ESCAPE.search(body):
        _check_unicode(data)
    return data


def _number(data: dict[str, Any], name: str, default: float) -> float:
    value = data.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(name, f"{name} must be a number, not {json.dumps(value)[:40]}")
    return value


def _whole(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidRequestError(name, f"{name} must be a whole number, not {json.dumps(value)[:40]}")
    return value


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name)
    if value is not None and not isinstance(value, bool):
        raise InvalidRequestError(name, f"{name} must be true or false")
    return bool(value)


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequestError("messages", f"{where}.content must be a string or a list of text parts")
    parts: list[str] = []
    for i, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise InvalidRequestError("messages", f"{where}.content[{i}]: only text parts ({{\"type\": \"text\", \"text\": ...}}) are supported")
        parts.append(part["text"])
    return "".join(parts)


def _messages(value: Any) -> tuple[ChatTurn, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidRequestError("messages", "messages must be a non-empty list of messages")
    if len(value) > MAX_MESSAGES:
        raise InvalidRequestError("messages", f"{len(value)} messages: at most {MAX_MESSAGES} are allowed", "too_many_messages")
    turns: list[ChatTurn] = []
    for i, message in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequestError("messages", f"{where} must be an object with 'role' and 'content'")
        role = message.get("role")
        if role not in _ROLES:
            raise InvalidRequestError("messages", f"{where}.role: {json.dumps(role)[:40]} is not supported; expected system, developer, user or assistant")
        for key, item in message.items():
            if key in ("role", "content", "name"):
                continue
            if key not in _NEUTRAL_MESSAGE_KEYS:
                raise InvalidRequestError("messages", f"{where}.{key}: unsupported field", "unsupported_parameter")
            if not _NEUTRAL_MESSAGE_KEYS[key](item):
                raise InvalidRequestError("messages", f"{where}.{key}: tool calls, audio and refusals are not supported", "unsupported_parameter")
        content = message.get("content")
        if content is None and role != "assistant":
            raise InvalidRequestError("messages", f"{where}.content is missing")
        turns.append(ChatTurn(_ROLES[role], "" if content is None else _text(content, where)))
    return tuple(turns)


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise InvalidRequestError("stop", "stop must be a string or a list of strings")
    return tuple(s for s in stops if s)


def _token_ids(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        raise InvalidRequestError("stop_token_ids", "stop_token_ids must be a list of token ids (whole numbers)")
    return tuple(value)


def _logprobs(data: dict[str, Any]) -> int | None:
    """Alternatives per token that ``logprobs`` and ``top_logprobs`` ask for; ``None``: no log probabilities.

    vLLM's server's checks, in its order and with its messages (``null`` is 0).
    """
    wanted = _flag(data, "logprobs")
    top = data.get("top_logprobs")
    if top is not None and (isinstance(top, bool) or not isinstance(top, int)):
        raise InvalidRequestError("top_logprobs", "`top_logprobs` must be an integer.")
    if top and top < -1:
        raise InvalidRequestError("top_logprobs", "`top_logprobs` must be a positive value or -1.")
    if top and not wanted:
        raise InvalidRequestError("top_logprobs", "when using `top_logprobs`, `logprobs` must be set to true.")
    return (top or 0) if wanted else None


def parse_chat_request(body: bytes, default_max_tokens: int) -> ChatRequest:
    """Read and check a chat-completions body.

    :param default_max_tokens: the completion's length limit when the body names none.
    :raises InvalidRequestError: the body is not JSON, a field has the wrong type or
        range, or asks for something this server does not support (``param`` names it).
    """
    data = _load(body)
    for name, value in data.items():
        if name in _FIELDS:
            continue
        if name not in _NEUTRAL_FIELDS:
            raise InvalidRequestError(name, f"unsupported field {name!r}", "unsupported_parameter")
        accepts, why = _NEUTRAL_FIELDS[name]
        if not accepts(value):
            raise InvalidRequestError(name, f"{name}: {why}", "unsupported_parameter")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError("model", "model must be the served model's id (see GET /v1/models)")
    messages = _messages(data.get("messages"))
    stream_options = data.get("stream_options")
    if stream_options is not None and (not isinstance(stream_options, dict) or set(stream_options) - {"include_usage"}):
        raise InvalidRequestError("stream_options", "stream_options may only hold include_usage", "unsupported_parameter")
    include_usage = _flag(stream_options or {}, "include_usage")
    max_tokens = _whole(data, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = _whole(data, "max_tokens")
    try:
        params = SamplingParams(
            max_tokens=default_max_tokens if max_tokens is None else max_tokens,
            temperature=_number(data, "temperature", 1.0),
            top_p=_number(data, "top_p", 1.0),
            seed=_whole(data, "seed"),
            stop=_stop(data.get("stop")),
            top_k=_whole(data, "top_k") or 0,
            min_p=_number(data, "min_p", 0.0),
            repetition_penalty=_number(data, "repetition_penalty", 1.0),
            presence_penalty=_number(data, "presence_penalty", 0.0),
            frequency_penalty=_number(data, "frequency_penalty", 0.0),
            min_tokens=_whole(data, "min_tokens") or 0,
            ignore_eos=_flag(data, "ignore_eos"),
            stop_token_ids=_token_ids(data.get("stop_token_ids")),
            logprobs=_logprobs(data),
        )
    except InvalidRequestError as error:
        if error.param == "max_tokens" and data.get("max_completion_tokens") is not None:
            raise InvalidRequestError("max_completion_tokens", str(error).replace("max_tokens", "max_completion_tokens")) from None
        raise
    return ChatRequest(model, messages, params, stream=_flag(data, "stream"), include_usage=include_usage)


def new_completion_id() -> str:
    """An id in OpenAI's ``chatcmpl-...`` form."""
    return f"chatcmpl-{uuid.uuid4().hex}"


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _logprob(text: str, logprob: float) -> dict[str, Any]:
    # vLLM's server: -inf (a token the model rules out) is clamped, bytes of unfinished UTF-8 are U+FFFD's.
    return {"token": text, "logprob": max(logprob, -9999.0), "bytes": list(text.encode("utf-8", "replace"))}


def logprobs_body(tokens: Sequence[TokenLogprob]) -> dict[str, Any]:
    """A choice's ``logprobs``: ``{"content": [{token, logprob, bytes, top_logprobs}...]}``."""
    return {"content": [{**_logprob(t.token, t.logprob), "top_logprobs": [_logprob(*top) for top in t.top]}
                        for t in tokens]}


def completion_body(
    completion_id: str, model: str, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int,
    logprobs: Sequence[TokenLogprob] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` object; *logprobs* for a request that asked for them."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text},
             "logprobs": None if logprobs is None else logprobs_body(logprobs), "finish_reason": finish_reason}
        ],
        "usage": _usage(prompt_tokens, completion_tokens),
    }


def chunk_body(
    completion_id: str,
    model: str,
    delta: dict[str, str] | None,
    finish_reason: str | None = None,
    usage: tuple[int, int] | None = None,
    logprobs: Sequence[TokenLogprob] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` object; without *delta*, the final usage-only chunk.

    *logprobs*: those of the tokens this chunk's text came from, for a request that asked for them.
    """
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                                              "logprobs": None if logprobs is None else logprobs_body(logprobs)}],
    }
    if usage is not None:
        body["usage"] = _usage(*usage)
    return body


def error_body(message: str, error_type: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}
