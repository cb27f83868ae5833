"""The seam between the HTTP layer and an engine: what every engine offers and promises.

The HTTP layer (``azinfer.serve.http``) knows only the names in this module.
An engine turns a conversation into prompt token ids (:meth:`Engine.encode_chat`),
admits or refuses a :class:`GenerationRequest` (:meth:`Engine.submit`), and
streams its text as a :class:`Generation`. Nothing here imports torch or a
tokenizer, so an engine built on another library (vLLM's ``AsyncLLM``) plugs
in by subclassing :class:`Engine` and :class:`Generation`.

The contract, which the HTTP layer relies on and the tests check for every engine:

- **Validation.** :class:`SamplingParams` and :class:`GenerationRequest` check
  their values when built and raise :class:`InvalidRequestError` naming the
  field, so a request an engine receives is always in range; an engine does not
  repeat these checks. What it cannot check up front (a prompt id its model
  does not know, a failure in its own step) must fail *that* request alone.
- **Backpressure.** :meth:`Engine.submit` either admits the request at once or
  raises :class:`QueueFullError`; it never waits for room. Capacity counts
  every admitted request until its generation ends (finished, cancelled or
  failed), whether or not anyone reads its stream, and is free again by the
  time the stream ends; :class:`RequestCounter` does that bookkeeping.
- **Streaming.** :meth:`Generation.stream` yields non-empty :class:`TextDelta`
  values and then exactly one :class:`Finished`, or raises
  :class:`GenerationError` when the engine failed this request. The text is
  already cut at a stop string (the stop string itself is never sent) and
  holds no incomplete character; :mod:`azinfer.serve.engine.stream` does
  this for engines that produce token ids. A request that asks for log
  probabilities (``SamplingParams.logprobs``) gets one :class:`TokenLogprob`
  per token counted in ``completion_tokens``, in order, each in the delta of
  the text it came from (whose text may then be empty: held back, or cut);
  the batched engine sends one token per delta, an engine that merges the
  deltas of a slow reader merges their log probabilities too. Text still
  held back when the completion ends may follow in a delta of its own.
- **Cancellation.** :meth:`Generation.cancel` may be called from any thread,
  any number of times, before or while streaming; the engine then stops
  generating for it within about one step, frees its capacity, and the
  stream ends with ``Finished("cancelled")``.
- **Adapters.** A request names its adapter (``GenerationRequest.adapter``,
  ``None`` for the default model). An engine started with ``runtime_adapters``
  serves requests for different adapters in the same batch, and loads or
  unloads one by name while it runs (:meth:`Engine.load_adapter`,
  :meth:`Engine.unload_adapter`); an unloaded adapter's requests in flight
  finish first. An engine that cannot raises :class:`AdapterError`.
- **Off the event loop.** The HTTP layer runs every method on its event loop:
  nothing may block it for longer than a few milliseconds. Tokenising and
  chat templates run in a worker thread (:meth:`Engine.encode_chat` is async
  for that reason), and a conversation too large to fit the context is
  refused by its size before it is tokenised.
"""

from __future__ import annotations

import threading
import uuid
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import AsyncIterator, Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from azinfer.errors import AdapterError, GenerationError, InvalidRequestError, PromptTooLongError, QueueFullError

__all__ = [
    "AdapterError",
    "ChatTurn",
    "Engine",
    "EngineStats",
    "Finished",
    "FinishReason",
    "Generation",
    "GenerationError",
    "GenerationRequest",
    "InvalidRequestError",
    "MAX_LOGPROBS",
    "MAX_SEED",
    "MAX_STOP_CHARS",
    "MAX_STOP_STRINGS",
    "MAX_STOP_TOKEN_IDS",
    "NEUTRAL_EXTENSIONS",
    "MIN_SEED",
    "MIN_TEMPERATURE",
    "MIN_TOP_P",
    "PromptTooLongError",
    "QueueFullError",
    "RequestCounter",
    "Role",
    "SamplingParams",
    "TextDelta",
    "TokenLogprob",
]

FinishReason = Literal["stop", "length", "cancelled", "error"]
Role = Literal["system", "user", "assistant"]
"""A chat turn's role as engines take it (the API's ``developer`` is ``system``)."""

# Below these, float32 sampling underflows (1e-39 is subnormal, 1e-46 is 0):
# tiny values are refused rather than silently rounded to greedy.
MIN_TEMPERATURE = 1e-5
MAX_TEMPERATURE = 2.0
MIN_TOP_P = 1e-5
# A seed is a 64-bit signed integer, as vLLM's API takes it.
MIN_SEED = -(2**63)
MAX_SEED = 2**63 - 1
# OpenAI's limit on the number of stop strings; the length cap keeps the
# matching state per request small (matching is linear in any case).
MAX_STOP_STRINGS = 4
MAX_STOP_CHARS = 256
MAX_STOP_TOKEN_IDS = 64
# Alternatives per token: OpenAI's limit on top_logprobs, and vLLM's default max_logprobs.
MAX_LOGPROBS = 20
# vLLM's sampling extensions and log probabilities, with the value that leaves the request as it is (vLLM's defaults).
NEUTRAL_EXTENSIONS: dict[str, object] = {
    "top_k": 0, "min_p": 0.0, "repetition_penalty": 1.0, "presence_penalty": 0.0, "frequency_penalty": 0.0,
    "min_tokens": 0, "ignore_eos": False, "stop_token_ids": (), "logprobs": None,
}


@dataclass(frozen=True)
class ChatTurn:
    """One message of a conversation, as an engine's chat template takes it.

    ``role`` is ``system``, ``user`` or ``assistant``.
    """

    role: Role
    content: str


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class SamplingParams:
    """How to generate one completion; checked when built.

    ``temperature`` 0 is greedy (``top_p``, ``top_k``, ``min_p`` and ``seed``
    then do not matter); otherwise it is at least :data:`MIN_TEMPERATURE`.
    ``stop`` holds at most :data:`MAX_STOP_STRINGS` non-empty strings of at
    most :data:`MAX_STOP_CHARS` characters; generation ends when one appears,
    and the text is cut before it.

    The rest are vLLM's extensions, with its ranges and meaning: ``top_k`` (0
    or -1: off), ``min_p`` in [0, 1] (tokens below ``min_p`` times the most
    likely one's probability are dropped), ``repetition_penalty`` > 0 (on
    tokens of the prompt and the output: a positive logit divided by it, a
    negative one multiplied), ``presence_penalty`` and ``frequency_penalty``
    in [-2, 2] (subtracted once per output token seen, or per time seen),
    ``min_tokens`` (end of sequence and ``stop_token_ids`` are blocked until
    that many tokens are out), ``ignore_eos`` (the end-of-sequence token does
    not end the completion) and ``stop_token_ids`` (at most
    :data:`MAX_STOP_TOKEN_IDS` more tokens that end it, not sent).

    ``logprobs`` asks for each generated token's log probability and, when
    above 0, that many alternatives (at most :data:`MAX_LOGPROBS`), as vLLM's
    ``SamplingParams.logprobs``; ``None``: none.

    :raises InvalidRequestError: a value is out of range; ``param`` names its OpenAI field.
    """

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    min_tokens: int = 0
    ignore_eos: bool = False
    stop_token_ids: tuple[int, ...] = ()
    logprobs: int | None = None

    def __post_init__(self) -> None:
        if not _whole(self.max_tokens) or self.max_tokens < 1:
            raise InvalidRequestError("max_tokens", f"max_tokens must be a whole number of at least 1, not {self.max_tokens!r}")
        temperature = self.temperature
        if not _number(temperature) or not (temperature == 0 or MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE):
            raise InvalidRequestError(
                "temperature",
                f"temperature must be 0 (greedy) or between {MIN_TEMPERATURE:g} and {MAX_TEMPERATURE:g}, not {temperature!r}",
            )
        if not _number(self.top_p) or not MIN_TOP_P <= self.top_p <= 1:
            raise InvalidRequestError("top_p", f"top_p must be between {MIN_TOP_P:g} and 1, not {self.top_p!r}")
        if self.seed is not None and (not _whole(self.seed) or not MIN_SEED <= self.seed <= MAX_SEED):
            raise InvalidRequestError("seed", f"seed must be a whole number between -2**63 and 2**63-1, not {self.seed!r}")
        if len(self.stop) > MAX_STOP_STRINGS:
            raise InvalidRequestError("stop", f"at most {MAX_STOP_STRINGS} stop strings are allowed, not {len(self.stop)}")
        for stop in self.stop:
            if not isinstance(stop, str) or not 0 < len(stop) <= MAX_STOP_CHARS:
                raise InvalidRequestError(
                    "stop", f"each stop string must have 1 to {MAX_STOP_CHARS} characters, not {len(stop) if isinstance(stop, str) else stop!r}"
                )
        self._check_extensions()

    def _check_extensions(self) -> None:
        """vLLM's checks of its extensions (``vllm.SamplingParams._verify_args``), with its messages."""
        if not _whole(self.top_k) or self.top_k < -1:
            raise InvalidRequestError("top_k", f"top_k must be 0 (disable), or at least 1, not {self.top_k!r}")
        if not _number(self.min_p) or not 0 <= self.min_p <= 1:
            raise InvalidRequestError("min_p", f"min_p must be in [0, 1], not {self.min_p!r}")
        if not _number(self.repetition_penalty) or not 0 < self.repetition_penalty < float("inf"):
            raise InvalidRequestError("repetition_penalty",
                                      f"repetition_penalty must be a finite number above 0, not {self.repetition_penalty!r}")
        for name in ("presence_penalty", "frequency_penalty"):
            value = getattr(self, name)
            if not _number(value) or not -2 <= value <= 2:
                raise InvalidRequestError(name, f"{name} must be in [-2, 2], not {value!r}")
        if not _whole(self.min_tokens) or not 0 <= self.min_tokens <= self.max_tokens:
            raise InvalidRequestError("min_tokens", f"min_tokens must be between 0 and max_tokens ({self.max_tokens}), "
                                      f"not {self.min_tokens!r}")
        if not isinstance(self.ignore_eos, bool):
            raise InvalidRequestError("ignore_eos", "ignore_eos must be true or false")
        if len(self.stop_token_ids) > MAX_STOP_TOKEN_IDS or not all(_whole(t) and t >= 0 for t in self.stop_token_ids):
            raise InvalidRequestError("stop_token_ids", f"stop_token_ids must be at most {MAX_STOP_TOKEN_IDS} token ids "
                                      "(whole numbers from 0)")
        self._check_logprobs()

    def _check_logprobs(self) -> None:
        """vLLM's server's checks of ``top_logprobs`` (-1 asks for the whole vocabulary), with its messages."""
        if self.logprobs is None:
            return
        if not _whole(self.logprobs) or self.logprobs < -1:
            raise InvalidRequestError("top_logprobs", "`top_logprobs` must be a positive value or -1.")
        if self.logprobs == -1 or self.logprobs > MAX_LOGPROBS:
            asked = "the whole vocabulary (-1)" if self.logprobs == -1 else str(self.logprobs)
            raise InvalidRequestError("top_logprobs", f"Requested sample logprobs of {asked}, "
                                      f"which is greater than max allowed: {MAX_LOGPROBS}")

    def extensions_in_use(self) -> list[str]:
        """The vLLM extensions set to something else than their neutral value."""
        return [name for name, neutral in NEUTRAL_EXTENSIONS.items() if getattr(self, name) != neutral
                and not (name == "top_k" and self.top_k == -1)]

    @property
    def shapes_logits(self) -> bool:
        """Whether a token's choice needs more than the temperature and ``top_p`` (penalties, ``top_k``, ``min_p``, ``min_tokens``)."""
        return bool(set(self.extensions_in_use()) - {"ignore_eos", "stop_token_ids", "logprobs"})

    @property
    def greedy(self) -> bool:
        """Whether to pick the most likely token at each step."""
        return self.temperature == 0


def _request_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class GenerationRequest:
    """One completion to generate: prompt token ids and checked sampling parameters.

    Build it with :meth:`fit`, which also makes ``max_tokens`` fit the context.
    ``request_id`` is unique per request (an engine may use it as its own id);
    ``adapter`` names a loaded adapter, ``None`` is the default model.
    """

    prompt_ids: tuple[int, ...]
    params: SamplingParams
    request_id: str = field(default_factory=_request_id)
    adapter: str | None = None

    def __post_init__(self) -> None:
        if not self.prompt_ids:
            raise InvalidRequestError("messages", "the prompt is empty")

    @classmethod
    def fit(cls, prompt_ids: Sequence[int], params: SamplingParams, context_length: int,
            adapter: str | None = None) -> GenerationRequest:
        """The request with ``max_tokens`` lowered to what the context leaves after the prompt.

        :raises PromptTooLongError: the prompt leaves no room for one new token.
        """
        room = context_length - len(prompt_ids)
        if room < 1:
            raise PromptTooLongError(context_length, prompt_tokens=len(prompt_ids))
        if params.max_tokens > room:
            params = replace(params, max_tokens=room, min_tokens=min(params.min_tokens, room))
        return cls(tuple(prompt_ids), params, adapter=adapter)


@dataclass(frozen=True)
class TokenLogprob:
    """A generated token's log probability, as vLLM's server reports it.

    ``token`` is the token's text as vLLM shows it (its own decoding, a byte
    of an unfinished character completed from the tokens before it, else
    ``""``); ``top`` holds ``(text, logprob)`` of as many alternatives as the
    request asked for, in vLLM's order: the generated token first, then the
    most likely others.
    """

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class TextDelta:
    """New text of a completion, never empty unless it carries a token's log probability (see the module docstring)."""

    text: str
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True)
class Finished:
    """The completion ended: ``stop`` (end of sequence or a stop string), ``length`` or ``cancelled``."""

    reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class EngineStats:
    """Admitted requests (running and waiting for a slot), how finished ones ended (by reason), and the batch size.

    ``batch_size`` is how many requests the engine runs at once (``/metrics``
    gives ``running`` over it as the occupancy).
    """

    running: int
    waiting: int
    finished: dict[str, int]
    batch_size: int


class Generation(ABC):
    """One admitted request's generation, as the HTTP layer sees it."""

    request: GenerationRequest

    @abstractmethod
    def stream(self) -> AsyncIterator[TextDelta | Finished]:
        """Yield text deltas, then one :class:`Finished`; iterate once, on the event loop.

        :raises GenerationError: the engine failed while generating this request.
        """

    @abstractmethod
    def cancel(self) -> None:
        """Stop generating (any thread, idempotent); the stream then ends with ``Finished("cancelled")``."""


class Engine(ABC):
    """A model behind a scheduler, shared by every request of the server.

    ``unsupported`` names the sampling extensions (:data:`NEUTRAL_EXTENSIONS`)
    this engine cannot honour; a request that sets one is refused by
    :meth:`start_chat` naming it and the engine.
    """

    name: str = "this"
    unsupported: frozenset[str] = frozenset()

    @property
    @abstractmethod
    def context_length(self) -> int:
        """Tokens the model attends to: prompt plus completion."""

    @abstractmethod
    async def encode_chat(self, messages: Sequence[ChatTurn]) -> list[int]:
        """Render the conversation with the model's chat template and tokenise it, off the event loop.

        The returned ids end with the assistant's turn opened, ready to generate.

        :raises PromptTooLongError: the conversation cannot fit the context
            (refused by its size before tokenising when it is far too long).
        :raises InvalidRequestError: the chat template rejects the conversation.
        """

    @abstractmethod
    async def submit(self, request: GenerationRequest) -> Generation:
        """Admit *request* at once or refuse it; never wait for room.

        :raises QueueFullError: the engine already holds as many requests as it may.
        """

    @abstractmethod
    def stats(self) -> EngineStats:
        """Admitted and finished requests."""

    async def load_adapter(self, name: str, path: str) -> None:
        """Load the adapter in folder *path* as *name* (a name in use is replaced), between steps.

        :raises AdapterError: the engine does not load adapters at run time, or the folder is not a LoRA it can serve.
        """
        raise AdapterError(f"the {self.name} engine was started without run-time adapters "
                           "(start it with --adapter NAME=DIR or --adapter-poll)")

    async def unload_adapter(self, name: str) -> None:
        """Stop serving *name*; its requests in flight finish first.

        :raises AdapterError: the engine does not load adapters at run time.
        """
        raise AdapterError(f"the {self.name} engine was started without run-time adapters")

    async def start_chat(self, messages: Sequence[ChatTurn], params: SamplingParams,
                         adapter: str | None = None) -> Generation:
        """Encode the conversation, lower ``max_tokens`` to what fits the context, and submit for *adapter*.

        :raises PromptTooLongError: the conversation leaves no room for one new token.
        :raises InvalidRequestError: the chat template rejects the conversation, or the
            request uses a sampling extension this engine cannot honour.
        :raises QueueFullError: the engine is at capacity.
        """
        for name in params.extensions_in_use():
            if name in self.unsupported:
                raise InvalidRequestError(name, f"{name} is not supported by the {self.name} engine", "unsupported_parameter")
        prompt = await self.encode_chat(messages)
        return await self.submit(GenerationRequest.fit(prompt, params, self.context_length, adapter))

    @abstractmethod
    def close(self) -> None:
        """Stop the engine (any thread); pending generations end as cancelled."""


class RequestCounter:
    """Thread-safe admission of requests against a capacity, and counts of how they ended."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._in_flight: set[Hashable] = set()
        self._finished: Counter[str] = Counter()

    def admit(self, key: Hashable) -> None:
        """Count one more request.

        :raises QueueFullError: the engine is at capacity.
        """
        with self._lock:
            if len(self._in_flight) >= self.capacity:
                raise QueueFullError(self.capacity)
            self._in_flight.add(key)

    def release(self, key: Hashable, reason: str) -> None:
        """Count a request as ended by *reason*; a second call for the same request does nothing."""
        with self._lock:
            if key in self._in_flight:
                self._in_flight.remove(key)
                self._finished[reason] += 1

    @property
    def in_flight(self) -> int:
        """Admitted requests that have not ended (an engine's stats use it)."""
        with self._lock:
            return len(self._in_flight)

    def finished(self) -> dict[str, int]:
        """How many requests ended, by reason."""
        with self._lock:
            return dict(self._finished)
