"""What the engines on a ``transformers`` model share: the tokenizer's side and the stream their threads feed.

:class:`ChatTokenizer` renders a conversation and tokenises it in worker
threads; :class:`ThreadedGeneration` is a request's stream, fed token ids by
an engine thread and read as text on the event loop; :class:`TransformersEngine`
puts both behind the :class:`~azinfer.serve.engine.base.Engine` seam. Only
this package touches the tokenizer.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from azinfer.serve.engine.base import (
    ChatTurn,
    Engine,
    Finished,
    FinishReason,
    Generation,
    GenerationError,
    GenerationRequest,
    InvalidRequestError,
    PromptTooLongError,
    RequestCounter,
    TextDelta,
    TokenLogprob,
)
from azinfer.serve.engine.stream import TextStream
from azinfer.serve.engine.token_text import TokenTexts

__all__ = ["ChatTokenizer", "SampledLogprobs", "ThreadedGeneration", "TransformersEngine", "render_with_template"]

log = logging.getLogger(__name__)

# How many conversations are tokenised at once. The Rust tokenizer releases the
# GIL, so a long prompt in a worker leaves the event loop free.
_TOKENIZER_THREADS = 2


def render_with_template(messages: Sequence[ChatTurn], template: str) -> str:
    """Render *messages* through a one-placeholder prompt template (for a tokenizer without a chat template).

    The AI Toolkit's template wraps one user message; earlier turns are
    replayed through it so the model still sees the whole conversation.
    """
    parts: list[str] = []
    pending_user = "\n".join(m.content for m in messages if m.role == "system")
    for message in messages:
        if message.role == "user":
            pending_user = f"{pending_user}\n{message.content}".strip("\n")
        elif message.role == "assistant":
            parts.append(template.replace("{}", pending_user) + message.content + "\n")
            pending_user = ""
    parts.append(template.replace("{}", pending_user))
    return "".join(parts)


# Where a message's content stands in a template rendered for tokenising (private-use characters, no spaces to trim).
_MARK = re.compile("\ue000(\\d+)\ue001")


class ChatTokenizer:
    """A Hugging Face tokenizer as the engines use it: conversations to ids off the event loop, ids to text.

    A conversation whose characters could not fit the context is refused
    before tokenising: no token is longer than the longest vocabulary entry,
    so ``context * longest`` characters bound what can fit; the bound is
    doubled for normalisers that merge characters.

    A message's text is text: when a content holds a control token of the
    tokenizer (``<|end|>``, ``<|system|>``...), the template is rendered with
    a mark in place of each content, its own parts are tokenised with their
    control tokens, and each content with control tokens split into plain
    text, so a user cannot forge a turn. Other conversations are tokenised
    whole, as the model was trained.
    """

    def __init__(self, tokenizer: Any, context_length: int, fallback_template: str) -> None:
        self._tokenizer = tokenizer
        self._context_length = context_length
        self._fallback_template = fallback_template
        longest = max((len(token) for token in tokenizer.get_vocab()), default=1)
        self.max_prompt_chars = 2 * context_length * max(longest, 1)
        added = getattr(tokenizer, "added_tokens_decoder", {}).values()
        self.control_tokens = frozenset({*tokenizer.all_special_tokens, *(t.content for t in added if t.special)})
        self._workers = ThreadPoolExecutor(_TOKENIZER_THREADS, thread_name_prefix="azinfer-tokenize")

    def decode(self, ids: Sequence[int]) -> str:
        """Text of *ids*, special tokens left out."""
        text: str = self._tokenizer.decode(list(ids), skip_special_tokens=True)
        return text

    def _render(self, messages: Sequence[ChatTurn]) -> str:
        if not self._tokenizer.chat_template:
            return render_with_template(messages, self._fallback_template)
        from jinja2 import TemplateError

        turns = [{"role": m.role, "content": m.content} for m in messages]
        try:
            prompt: str = self._tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
            return prompt
        except (TemplateError, ValueError) as error:
            raise InvalidRequestError("messages", f"the model's chat template rejects this conversation: {error}") from error

    def encode_now(self, messages: Sequence[ChatTurn]) -> list[int]:
        """Render and tokenise in the calling thread (see :meth:`encode`)."""
        chars = sum(len(m.content) for m in messages)
        if chars > self.max_prompt_chars:
            raise PromptTooLongError(self._context_length, prompt_chars=chars)
        try:
            if any(token in m.content for m in messages for token in self.control_tokens):
                return self._encode_contents_as_text(messages)
            return self._ids(self._render(messages))
        except UnicodeError as error:
            raise InvalidRequestError("messages", f"the conversation is not valid Unicode text: {error}") from error

    def _ids(self, text: str, *, as_text: bool = False) -> list[int]:
        encoded = self._tokenizer(text, add_special_tokens=False, split_special_tokens=as_text)
        return list(encoded["input_ids"])

    def _encode_contents_as_text(self, messages: Sequence[ChatTurn]) -> list[int]:
        marked = self._render([ChatTurn(m.role, f"\ue000{i}\ue001") for i, m in enumerate(messages)])
        parts = _MARK.split(marked)  # template, index, template, index, ..., template
        ids: list[int] = []
        for i, part in enumerate(parts):
            ids += self._ids(messages[int(part)].content, as_text=True) if i % 2 else self._ids(part)
        return ids

    async def encode(self, messages: Sequence[ChatTurn]) -> list[int]:
        """Render *messages* with the chat template (or the fallback template) and tokenise, in a worker thread.

        :raises PromptTooLongError: the conversation has more characters than can fit the context.
        :raises InvalidRequestError: the chat template rejects the conversation.
        """
        return await asyncio.get_running_loop().run_in_executor(self._workers, self.encode_now, list(messages))

    def close(self) -> None:
        """Stop the worker threads once their current work is done."""
        self._workers.shutdown(wait=False, cancel_futures=True)


class SampledLogprobs(NamedTuple):
    """A sampled token's log probability and the most likely tokens' (ids and log probabilities, most likely first)."""

    logprob: float
    top_ids: list[int]
    top_logprobs: list[float]


class ThreadedGeneration(Generation):
    """One request's generation: fed token ids by an engine thread, read as text on the event loop."""

    def __init__(
        self,
        request: GenerationRequest,
        text: TextStream,
        eos_token_ids: frozenset[int],
        loop: asyncio.AbstractEventLoop,
        on_end: Callable[[ThreadedGeneration], None],
        token_texts: TokenTexts,
    ) -> None:
        self.request = request
        self._text = text
        self._token_texts = token_texts
        self._eos = eos_token_ids
        self._loop = loop
        self._on_end = on_end
        self._events: asyncio.Queue[TextDelta | Finished | BaseException] = asyncio.Queue()
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._generated = 0
        self.output_ids: list[int] = []  # what the penalties of the request's sampling count
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

    def _emit(self, text: str) -> None:
        if text:
            self._send(TextDelta(text))

    def push_token(self, token_id: int, logprobs: SampledLogprobs | None = None) -> bool:
        """Take the next generated token (engine thread); return whether the generation is over.

        *logprobs*: the token's, for a request that asks for them (sent with its text, even empty).
        """
        if self.done:
            return True
        params = self.request.params
        if (token_id in self._eos and not params.ignore_eos) or token_id in params.stop_token_ids:
            return self.finish("stop")
        self.output_ids.append(token_id)
        self._generated += 1
        text, stopped = self._text.push(token_id)
        if logprobs is not None:
            self._send(TextDelta(text, (self._token_logprob(token_id, logprobs),)))
        else:
            self._emit(text)
        if stopped:
            return self.finish("stop")
        if self._generated >= params.max_tokens:
            return self.finish("length")
        return False

    def _token_logprob(self, token_id: int, logprobs: SampledLogprobs) -> TokenLogprob:
        """vLLM's report of a token (the last of ``output_ids``): its text and log probability, and the
        alternatives asked for, itself first."""
        texts = self._token_texts
        before = self.output_ids[-5:-1]  # the ids before it that TokenTexts.after reads at most
        chosen = (token_id, logprobs.logprob)
        others = [(i, p) for i, p in zip(logprobs.top_ids, logprobs.top_logprobs) if i != token_id]
        top = [chosen, *others][: self.request.params.logprobs or 0]
        return TokenLogprob(texts.after(token_id, before), logprobs.logprob,
                            tuple((texts.after(i, before), p) for i, p in top))

    def finish(self, reason: FinishReason, error: BaseException | None = None) -> bool:
        """End the generation (engine thread) and free its slot; the first call wins. Returns True."""
        with self._lock:
            if self.finish_reason is not None:
                return True
            if self.cancelled and error is None:
                reason = "cancelled"
            elif reason in ("stop", "length"):
                text, stopped = self._text.finish()
                self._emit(text)
                reason = "stop" if stopped else reason
            self.finish_reason = "error" if error is not None else reason
        self._on_end(self)  # the slot is free before the stream can end
        if error is not None:
            self._send(error)
        else:
            self._send(Finished(self.finish_reason, len(self.request.prompt_ids), self._generated))
        return True

    async def stream(self) -> AsyncIterator[TextDelta | Finished]:
        """Yield text deltas, then one :class:`Finished`.

        :raises GenerationError: the engine failed while generating this request.
        """
        while True:
            event = await self._events.get()
            if isinstance(event, BaseException):
                raise GenerationError(f"generation failed: {event}") from event
            yield event
            if isinstance(event, Finished):
                return


class TransformersEngine(Engine):
    """The shared half of the engines that run a ``transformers`` model in their own threads.

    :param loaded: the model, its tokenizer and what is known of them.
    :param capacity: requests admitted at once (running and waiting).
    :param prompt_template: one-``{}`` template for a tokenizer without a chat template.
    """

    def __init__(self, loaded: Any, *, capacity: int, prompt_template: str) -> None:
        self.loaded = loaded
        self.tokenizer = ChatTokenizer(loaded.tokenizer, loaded.context_length, prompt_template)
        self._token_texts = TokenTexts(loaded.tokenizer)
        self._counter = RequestCounter(capacity)

    @property
    def context_length(self) -> int:
        """The model's context, in tokens."""
        return int(self.loaded.context_length)

    async def encode_chat(self, messages: Sequence[ChatTurn]) -> list[int]:
        """See :meth:`Engine.encode_chat`.

        :raises PromptTooLongError: the conversation has more characters than can fit the context.
        :raises InvalidRequestError: the chat template rejects the conversation.
        """
        return await self.tokenizer.encode(messages)

    def _admit(self, request: GenerationRequest) -> ThreadedGeneration:
        """A generation for *request*, counted against the capacity until it ends.

        :raises QueueFullError: the engine is at capacity.
        """
        generation = ThreadedGeneration(
            request,
            TextStream(self.tokenizer.decode, request.params.stop),
            self.loaded.eos_token_ids,
            asyncio.get_running_loop(),
            self._ended,
            self._token_texts,
        )
        self._counter.admit(generation)
        return generation

    def _ended(self, generation: ThreadedGeneration) -> None:
        self._counter.release(generation, generation.finish_reason or "cancelled")
