"""Turn a whole conversation into prompt token ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from azinfer.errors import ServeError

__all__ = ["PromptError", "Message", "prompt_token_ids"]

Message = dict[str, str]


class PromptError(ServeError):
    """The conversation cannot be turned into a prompt (a client's mistake)."""


def _with_template(messages: Sequence[Message], template: str) -> str:
    # The AI Toolkit's template wraps one user message; earlier turns are
    # replayed through it so the model still sees the whole conversation.
    parts: list[str] = []
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    pending_user = system
    for message in messages:
        if message["role"] == "user":
            pending_user = f"{pending_user}\n{message['content']}".strip("\n")
        elif message["role"] == "assistant":
            parts.append(template.replace("{}", pending_user) + message["content"] + "\n")
            pending_user = ""
    parts.append(template.replace("{}", pending_user))
    return "".join(parts)


def prompt_token_ids(tokenizer: Any, messages: Sequence[Message], fallback_template: str) -> list[int]:
    """Render *messages* with the tokenizer's chat template (or *fallback_template*) and tokenize.

    :raises PromptError: the chat template rejects the conversation.
    """
    if tokenizer.chat_template:
        from jinja2 import TemplateError

        try:
            text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
        except (TemplateError, ValueError) as error:
            raise PromptError(f"the model's chat template rejects this conversation: {error}") from error
    else:
        text = _with_template(messages, fallback_template)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
