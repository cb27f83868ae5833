"""A completion's text as it grows: incremental detokenising and stop strings, in linear time.

Pure Python, no torch and no tokenizer: the decoder takes the tokenizer's
``decode`` as a function. An engine that produces token ids feeds them to a
:class:`TextStream` one at a time and sends on the text it returns.

Why not decode all generated ids at every token: that is quadratic in the
completion's length. Why not search every stop string's every prefix at the
end of the text: with a 100 KB stop string that is quadratic too, and one such
request held a shared engine for seconds. Here each token costs time in
proportion to its own text (times the number of stop strings).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["IncrementalDecoder", "StopMatcher", "TextStream"]

_INCOMPLETE = "\ufffd"  # what a decoder gives for a UTF-8 sequence cut short


class IncrementalDecoder:
    """Token ids in, text out, decoding only a short window of recent ids per token.

    Each step decodes the ids since the last emitted text together with the
    ids just before it (so a tokenizer that drops a leading space at the start
    of a sequence still gets it right) and emits what is new. Text that ends
    in an incomplete character waits for the next token.
    """

    def __init__(self, decode: Callable[[Sequence[int]], str]) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._prefix = 0  # ids before this index are only context, already emitted
        self._read = 0  # ids before this index are emitted

    def push(self, token_id: int) -> str:
        """Take one token id; return the text it completes (possibly empty)."""
        self._ids.append(token_id)
        before = self._decode(self._ids[self._prefix : self._read])
        now = self._decode(self._ids[self._prefix :])
        if len(now) > len(before) and not now.endswith(_INCOMPLETE):
            self._prefix, self._read = self._read, len(self._ids)
            return now[len(before) :]
        return ""

    def flush(self) -> str:
        """The text still held back (an incomplete character comes out as U+FFFD)."""
        before = self._decode(self._ids[self._prefix : self._read])
        now = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        return now[len(before) :]


def _failure(pattern: str) -> list[int]:
    """Knuth-Morris-Pratt: for each prefix, the length of its longest proper border."""
    table = [0] * len(pattern)
    k = 0
    for i in range(1, len(pattern)):
        while k and pattern[i] != pattern[k]:
            k = table[k - 1]
        if pattern[i] == pattern[k]:
            k += 1
        table[i] = k
    return table


class StopMatcher:
    """Finds the first stop string in a text that arrives in pieces, and holds back what may start one.

    Each stop string has a Knuth-Morris-Pratt automaton whose state is the
    length of the longest end of the text so far that begins the stop string:
    every character costs amortised constant time per stop string, and the
    text held back is at most the longest of those states.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._tables = [_failure(s) for s in self._stops]
        self._states = [0] * len(self._stops)
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Take the next piece of text; return the text safe to send, and whether a stop string appeared.

        When one appeared, the text returned ends just before it (of several
        stop strings ending at the same character, the longest wins) and the
        generation should end.
        """
        if not self._stops:
            return text, False
        buffer = self._held + text
        offset = len(self._held)
        states, stops, tables = self._states, self._stops, self._tables
        for i, char in enumerate(text):
            cut = -1
            for j, stop in enumerate(stops):
                k = states[j]
                while k and char != stop[k]:
                    k = tables[j][k - 1]
                if char == stop[k]:
                    k += 1
                if k == len(stop):
                    start = offset + i + 1 - k
                    cut = start if cut < 0 else min(cut, start)
                    k = tables[j][k - 1]
                states[j] = k
            if cut >= 0:
                self._held = ""
                return buffer[:cut], True
        hold = max(states)
        self._held = buffer[len(buffer) - hold :] if hold else ""
        return buffer[: len(buffer) - hold], False

    def flush(self) -> str:
        """The text held back, at the end of a generation that met no stop string."""
        held, self._held = self._held, ""
        return held


class TextStream:
    """One completion's text: token ids in, text to send out, with stop strings applied."""

    def __init__(self, decode: Callable[[Sequence[int]], str], stops: Sequence[str] = ()) -> None:
        self._decoder = IncrementalDecoder(decode)
        self._stops = StopMatcher(stops)

    def push(self, token_id: int) -> tuple[str, bool]:
        """Take one generated token id; return the text to send, and whether a stop string ended it."""
        return self._stops.feed(self._decoder.push(token_id))

    def finish(self) -> tuple[str, bool]:
        """The rest of the text at the end of a generation (length limit or end of sequence).

        :returns: the text to send, and whether a stop string appeared in it after all.
        """
        text, stopped = self._stops.feed(self._decoder.flush())
        return (text, True) if stopped else (text + self._stops.flush(), False)
