"""The text stream: incremental decoding and stop strings, pure and fast (no model)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from azinfer.serve.engine.stream import IncrementalDecoder, StopMatcher, TextStream


# A toy byte-level vocabulary: token i is one byte, so a character may span tokens.
def decode(ids: list[int]) -> str:
    return bytes(ids).decode("utf-8", errors="replace")


def tokens(text: str) -> list[int]:
    return list(text.encode("utf-8"))


def run(text: str, stops: list[str]) -> tuple[list[str], bool]:
    stream = TextStream(decode, stops)
    pieces: list[str] = []
    for token in tokens(text):
        piece, stopped = stream.push(token)
        pieces.append(piece)
        if stopped:
            return pieces, True
    piece, stopped = stream.finish()
    return [*pieces, piece], stopped


def test_multibyte_characters_come_out_whole() -> None:
    decoder = IncrementalDecoder(decode)
    pieces = [decoder.push(t) for t in tokens("aé€😀b")]
    assert "\ufffd" not in "".join(pieces)
    assert "".join(pieces) == "aé€😀b"
    assert pieces[1] == "" and pieces[2] == "é"  # é's first byte waits for its second


def test_an_incomplete_character_at_the_end_is_flushed_as_a_replacement() -> None:
    decoder = IncrementalDecoder(decode)
    assert decoder.push(0xE2) == ""
    assert decoder.flush() == "\ufffd"


def test_text_is_cut_before_the_stop_string_and_its_prefix_held_back() -> None:
    pieces, stopped = run("hello world. END of it", ["END"])
    assert stopped and "".join(pieces) == "hello world. "
    held, _ = StopMatcher(["END"]).feed("abc EN")
    assert held == "abc "  # "EN" may start the stop string


def test_a_false_start_is_sent_once_it_cannot_be_a_stop() -> None:
    matcher = StopMatcher(["abcd"])
    assert matcher.feed("xab") == ("x", False)
    assert matcher.feed("cx") == ("abcx", False)
    assert matcher.flush() == ""


def test_overlapping_prefixes_are_found() -> None:
    assert "".join(run("aaab and more", ["aab"])[0]) == "a"
    assert "".join(run("abababc", ["ababc"])[0]) == "ab"


def test_of_stops_ending_together_the_longest_wins() -> None:
    assert "".join(run("xx abcd yy", ["bcd", "abcd"])[0]) == "xx "


def test_no_stop_sends_everything() -> None:
    pieces, stopped = run("ab\ncd", [])
    assert not stopped and "".join(pieces) == "ab\ncd"


@given(st.text(alphabet="ab\n", max_size=40), st.lists(st.text(alphabet="ab\n", min_size=1, max_size=5), max_size=4))
def test_agrees_with_checking_every_end_of_the_text(text: str, stops: list[str]) -> None:
    expected, expected_stop = text, False
    for end in range(1, len(text) + 1):  # the first stop string to appear in full ends it, cut at its start
        starts = [end - len(s) for s in stops if text[:end].endswith(s)]
        if starts:
            expected, expected_stop = text[: min(starts)], True
            break
    pieces, stopped = run(text, stops)
    assert ("".join(pieces), stopped) == (expected, expected_stop)


class CountingStr(str):
    """A stop string that counts how often the matcher looks at one of its characters."""

    reads = 0

    def __getitem__(self, index: object) -> str:
        CountingStr.reads += 1
        return str.__getitem__(self, index)


@pytest.mark.parametrize("length", [1_000, 4_000])
def test_matching_work_is_linear_in_the_text(length: int) -> None:
    # The attack: a long stop string that almost matches at every character.
    stop = CountingStr("a" * length + "b")
    matcher = StopMatcher([stop])
    CountingStr.reads = 0
    for _ in range(length * 2):
        matcher.feed("a")
    assert matcher.feed("b")[1]
    assert CountingStr.reads <= 3 * (length * 2 + 1)  # amortised constant per character


@pytest.mark.parametrize(("ignore_eos", "reason", "generated"), [(False, "stop", 1), (True, "length", 3)])
def test_ignore_eos_lets_the_end_of_sequence_pass(ignore_eos: bool, reason: str, generated: int) -> None:
    import asyncio

    from azinfer.serve.engine.base import GenerationRequest, SamplingParams
    from azinfer.serve.engine.hf import ThreadedGeneration
    from azinfer.serve.engine.token_text import TokenTexts

    eos = 0
    loop = asyncio.new_event_loop()
    try:
        request = GenerationRequest((5,), SamplingParams(max_tokens=3, ignore_eos=ignore_eos))
        generation = ThreadedGeneration(request, TextStream(lambda ids: "x" * len(ids)), frozenset({eos}), loop,
                                        lambda g: None, TokenTexts(None))  # no logprobs asked: no tokenizer needed
        for token in (7, eos, 8):
            if generation.push_token(token):
                break
        assert (generation.finish_reason, len(generation.output_ids)) == (reason, generated)
    finally:
        loop.close()
