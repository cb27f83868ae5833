"""From a conversation and sampling options to a running generation: shared by the API and the UI."""

from __future__ import annotations

from collections.abc import Sequence

from azinfer.serve.engine import Engine, GenerationHandle, SamplingParams
from azinfer.serve.prompting import Message, PromptError, prompt_token_ids

__all__ = ["PromptTooLongError", "start_generation"]


class PromptTooLongError(PromptError):
    """The prompt leaves no room in the model's context for a single new token."""

    def __init__(self, prompt_tokens: int, context_length: int) -> None:
        self.prompt_tokens = prompt_tokens
        self.context_length = context_length
        super().__init__(
            f"the prompt is {prompt_tokens} tokens long but the model's context is {context_length} tokens; "
            "shorten the conversation"
        )


def start_generation(
    engine: Engine,
    messages: Sequence[Message],
    *,
    max_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int | None = None,
    stop: tuple[str, ...] = (),
    prompt_template: str,
) -> GenerationHandle:
    """Render the conversation, clamp *max_tokens* to what fits in the context, and submit it.

    :raises PromptError: the chat template rejects the conversation, or it fills the context.
    :raises QueueFullError: the engine is at capacity.
    """
    loaded = engine.loaded
    prompt = prompt_token_ids(loaded.tokenizer, messages, prompt_template)
    room = loaded.context_length - len(prompt)
    if room < 1:
        raise PromptTooLongError(len(prompt), loaded.context_length)
    params = SamplingParams(
        max_new_tokens=min(max_tokens, room), temperature=temperature, top_p=top_p, seed=seed, stop=stop
    )
    return engine.submit(prompt, params)
