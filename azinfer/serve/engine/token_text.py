"""Token ids as the text vLLM's server shows for them in log probabilities, for the engines that run a tokenizer.

vLLM's rules (``convert_ids_list_to_tokens`` and the logprobs processor's
``_correct_decoded_token`` in ``vllm/v1/engine/logprobs.py``): a token is
decoded alone, special tokens included; a SentencePiece tokenizer's leading
space, which ``decode`` drops, is put back; and a token whose text ends in
an unfinished UTF-8 character (U+FFFD) is decoded after up to four of the
generated tokens before it: the text it completes, or ``""`` while the
character is still unfinished.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = ["TokenTexts"]

_INCOMPLETE = "\ufffd"
_CONTEXT = 4  # tokens enough for any UTF-8 character


def _space_marker(tokenizer: Any) -> str | None:
    """The Metaspace pre-tokenizer's replacement character (``▁``), whose leading instance ``decode`` strips."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    pre = json.loads(backend.to_str()).get("pre_tokenizer") or {}
    for step in [pre, *pre.get("pretokenizers", [])]:
        if step.get("type") == "Metaspace":
            marker: str = step.get("replacement", "\u2581")
            return marker
    return None


class TokenTexts:
    """A tokenizer's token texts (cached per id); used by one engine thread at a time."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._marker = _space_marker(tokenizer)
        self._texts: dict[int, str] = {}

    def text(self, token_id: int) -> str:
        """The token decoded alone, with the leading spaces its vocabulary piece has."""
        text = self._texts.get(token_id)
        if text is None:
            text = self._tokenizer.decode([token_id]) or ""
            if self._marker is not None:
                piece = self._tokenizer.convert_ids_to_tokens(token_id) or ""
                spaces = len(piece) - len(piece.lstrip(self._marker))
                missing = spaces - (len(text) - len(text.lstrip(" ")))
                text = " " * missing + text if missing > 0 else text
            self._texts[token_id] = text
        return text

    def after(self, token_id: int, before: Sequence[int]) -> str:
        """The token's text where it follows the generated tokens *before* (oldest first)."""
        text = self.text(token_id)
        if not text.endswith(_INCOMPLETE):
            return text
        decode = self._tokenizer.decode
        for count in range(1, min(len(before), _CONTEXT) + 1):
            context = list(before[-count:])
            whole: str = decode([*context, token_id])
            if whole.endswith(_INCOMPLETE):
                continue
            # Context tokens that were bytes of this character showed as "": their text is this token's.
            clean = len(context)
            while clean and self.text(context[clean - 1]).endswith(_INCOMPLETE):
                clean -= 1
            prefix: str = decode(context[:clean]) if clean else ""
            if whole.startswith(prefix):
                return whole[len(prefix):]
            common = next((i for i, (a, b) in enumerate(zip(prefix, whole)) if a != b), min(len(prefix), len(whole)))
            return whole[common:]
        return ""
