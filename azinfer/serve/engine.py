"""What every engine offers the API and the UI, and the per-request stream they share.

An engine takes prompt token ids and sampling parameters and returns a
:class:`GenerationHandle`; its own thread pushes tokens into the handle, the
event loop reads text deltas from it. A faster engine (vLLM on GPUs) only has
to implement :class:`Engine`.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from azinfer.errors import ServeError

__all__ = [
    "Engine",
    "EngineStats",
    "Finished",
    "GenerationHandle",
    "QueueFullError",
    "SamplingParams",
    "TextDelta",
]

FinishReason = Literal["stop", "length", "cancelled", "error"]


class QueueFullError(ServeError):
    """The engine holds as many requests as it may; the client should retry later.

    :ivar retry_after: seconds to wait before retrying.
    """

    def __init__(self, capacity: int, retry_after: int = 1) -> None:
        self.retry_after = retry_after
        super().__init__(f"the server is busy ({capacity} requests in progress); retry in {retry_after} s")


@dataclass(frozen=True)
class SamplingParams:
    """How to generate one completion; ``temperature`` 0 means greedy."""

    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class TextDelta:
    """New text of a completion."""

    text: str


@dataclass(frozen=True)
class Finished:
    """The completion ended; ``reason`` is ``stop`` (EOS or a stop string) or ``length``."""

    reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class EngineStats:
    """In-flight requests and how finished ones ended."""

    running: int
    waiting: int
    finished: dict[str, int]


class GenerationHandle:
    """One request's generation: fed with token ids by an engine thread, read as text by the event loop.

    The text is decoded from all generated ids at each token, so a character
    split over several byte-level tokens comes out whole, and text that may be
    the start of a stop string is held back until it is known not to be.
    """

    def __init__(
        self,
        prompt_ids: Sequence[int],
        params: SamplingParams,
        tokenizer: Any,
        eos_token_ids: frozenset[int],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.prompt_ids = list(prompt_ids)
        self.params = params
        self._tokenizer = tokenizer
        self._eos = eos_token_ids
        self._loop = loop
        self._events: asyncio.Queue[TextDelta | Finished | BaseException] = asyncio.Queue()
        self._cancelled = threading.Event()
        self._generated: list[int] = []
        self._emitted = 0
        self.finish_reason: FinishReason | None = None

    @property
    def cancelled(self) -> bool:
        """Whether the client went away (checked by the engine between steps)."""
        return self._cancelled.is_set()

    @property
    def done(self) -> bool:
        """Whether the engine should stop generating for this request."""
        return self.finish_reason is not None or self.cancelled

    def cancel(self) -> None:
        """Ask the engine to stop generating; safe from any thread, idempotent."""
        self._cancelled.set()

    def _send(self, event: TextDelta | Finished | BaseException) -> None:
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:  # the event loop is closed: the server is shutting down
            self._cancelled.set()

    def _held_back(self, text: str) -> int:
        if text.endswith("\ufffd"):  # an incomplete UTF-8 sequence: wait for its next byte
            return len(text) - len(text.rstrip("\ufffd"))
        return max((n for stop in self.params.stop for n in range(len(stop) - 1, 0, -1) if text.endswith(stop[:n])), default=0)

    def push_token(self, token_id: int) -> bool:
        """Take the next generated token (engine thread); return whether the generation is over."""
        if self.done:
            return True
        if token_id in self._eos:
            return self.finish("stop")
        self._generated.append(token_id)
        text = self._tokenizer.decode(self._generated, skip_special_tokens=True)
        stops = [i for i in (text.find(stop, max(self._emitted - len(stop), 0)) for stop in self.params.stop) if i >= 0]
        if stops:
            self._emit(text[: min(stops)])
            return self.finish("stop")
        if len(self._generated) >= self.params.max_new_tokens:
            self._emit(text)
            return self.finish("length")
        self._emit(text[: len(text) - self._held_back(text)])
        return False

    def _emit(self, text: str) -> None:
        if len(text) > self._emitted:
            self._send(TextDelta(text[self._emitted :]))
            self._emitted = len(text)

    def finish(self, reason: FinishReason, error: BaseException | None = None) -> bool:
        """End the generation (engine thread); the first call wins. Returns True."""
        if self.finish_reason is None:
            self.finish_reason = "cancelled" if self.cancelled and reason != "error" else reason
            if error is not None:
                self._send(error)
            self._send(Finished(self.finish_reason, len(self.prompt_ids), len(self._generated)))
        return True

    async def events(self) -> AsyncIterator[TextDelta | Finished]:
        """Yield text deltas, then one :class:`Finished`.

        :raises ServeError: the engine failed while generating.
        """
        while True:
            event = await self._events.get()
            if isinstance(event, BaseException):
                raise ServeError(f"generation failed: {event}") from event
            yield event
            if isinstance(event, Finished):
                return


class Engine(Protocol):
    """A generation engine shared by the API and the UI."""

    loaded: Any  # the LoadedModel it serves

    def submit(self, prompt_ids: Sequence[int], params: SamplingParams) -> GenerationHandle:
        """Queue a generation; call from the event loop.

        :raises QueueFullError: the engine already holds as many requests as it may.
        """
        ...

    def stats(self) -> EngineStats:
        """In-flight and finished requests."""
        ...

    def close(self) -> None:
        """Stop the engine's threads; pending generations end as cancelled."""
        ...


class RequestCounter:
    """Thread-safe bookkeeping of in-flight requests against the engine's capacity."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._in_flight: set[int] = set()
        self._finished: Counter[str] = Counter()

    def admit(self, handle: GenerationHandle) -> None:
        """Count one more request.

        :raises QueueFullError: the engine is at capacity.
        """
        with self._lock:
            if len(self._in_flight) >= self.capacity:
                raise QueueFullError(self.capacity)
            self._in_flight.add(id(handle))

    def release(self, handle: GenerationHandle) -> None:
        """Count a finished request by how it ended; a second call for the same request does nothing."""
        with self._lock:
            if id(handle) in self._in_flight:
                self._in_flight.remove(id(handle))
                self._finished[handle.finish_reason or "cancelled"] += 1

    def finished(self) -> dict[str, int]:
        """How many requests ended, by reason."""
        with self._lock:
            return dict(self._finished)
