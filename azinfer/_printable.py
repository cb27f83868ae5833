"""Strings from files or the share, made safe to show on a terminal.

A file name or a start command can hold control characters: an escape
sequence can move the cursor or clear a line, a carriage return can hide what
came before, a right-to-left override can reverse text. Shown raw, a command
could hide from the question that approves it. :func:`printable` writes each
such character as a Python escape (``\\x1b``, ``\\r``, ``\\u202e``), so what is
shown is what is there.
"""

from __future__ import annotations

import unicodedata

__all__ = ["printable"]

# Cc: C0/C1 controls and DEL; Cf: format characters (bidi overrides, zero-width joiners);
# Cs: lone surrogates; Zl/Zp: line and paragraph separators.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control, format and separator character written as its escape.

    :param keep_newlines: leave ``\\n`` as it is (for a message of several lines that azinfer wrote).
    """
    if text.isprintable() and text.isascii():
        return text
    return "".join(
        char if (keep_newlines and char == "\n") or unicodedata.category(char) not in _HIDDEN else _escape(char)
        for char in text
    )
