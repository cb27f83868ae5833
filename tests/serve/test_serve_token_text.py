"""Token texts in log probabilities, by vLLM's rules (no model: a tokenizer of byte pieces)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from azinfer.serve.engine.token_text import TokenTexts

# id -> the bytes it stands for: "é" is C3 A9, split over two tokens as a byte-level BPE splits it.
PIECES = {1: b"caf", 2: b"\xc3", 3: b"\xa9", 4: b" ok", 5: b"\xe2\x82", 6: b"\xac", 7: b"\xff"}


class ByteTokenizer:
    def decode(self, ids: Sequence[int]) -> str:
        return b"".join(PIECES[i] for i in ids).decode("utf-8", "replace")


class _Backend:
    def to_str(self) -> str:
        return json.dumps({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Metaspace", "replacement": "▁"}]}})


class SentencePieceTokenizer:
    """``decode`` drops the leading space of ``▁▁hi``, as SentencePiece's does at the start of a text."""

    backend_tokenizer = _Backend()

    def decode(self, ids: Sequence[int]) -> str:
        return {9: "hi", 10: "x"}[ids[0]]

    def convert_ids_to_tokens(self, token_id: int) -> str:
        return {9: "▁▁hi", 10: "x"}[token_id]


def test_a_character_split_over_tokens_is_the_text_of_the_token_that_completes_it() -> None:
    texts = TokenTexts(ByteTokenizer())
    assert texts.after(1, []) == "caf"
    assert texts.after(2, [1]) == ""  # unfinished: vLLM shows "" (bytes [])
    assert texts.after(3, [1, 2]) == "é"
    assert texts.after(6, [4, 5]) == "€"  # three bytes over two tokens
    assert texts.after(4, [2]) == " ok"  # a whole token is its own text whatever came before
    assert texts.after(7, [1, 4]) == ""  # a byte that never makes a character


def test_a_sentencepiece_tokens_leading_spaces_are_kept() -> None:
    texts = TokenTexts(SentencePieceTokenizer())
    assert texts.text(9) == "  hi"
    assert texts.text(10) == "x"
