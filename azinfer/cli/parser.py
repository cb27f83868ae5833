"""The argument parser's usage errors: under the subcommand's usage, with the close match of a mistyped word."""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["Parser", "parse"]


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors suggest the close match (``did you mean 'provision'?``)."""

    def error(self, message: str) -> NoReturn:
        """Print this parser's usage and the error (with a suggestion when one is close), exit 2."""
        super().error(message + _suggestion(self, message))


def _suggestion(parser: argparse.ArgumentParser, message: str) -> str:
    """``; did you mean ...?`` for an invalid choice or an unknown option close to a known one."""
    choice = re.search(r"invalid choice: '([^']*)'", message)
    if choice:
        word = choice.group(1)
        candidates = [str(c) for action in parser._actions for c in (action.choices or ())]
    else:
        unknown = re.match(r"unrecognized arguments: (\S+)", message)
        if not unknown or not unknown.group(1).startswith("-"):
            return ""
        word = unknown.group(1).split("=", 1)[0]
        candidates = [option for action in parser._actions for option in action.option_strings]
    # Compared without the dashes, which every option shares.
    names = {candidate.lstrip("-"): candidate for candidate in candidates}
    matches = difflib.get_close_matches(word.lstrip("-"), list(names), n=1, cutoff=0.6)
    return f"; did you mean {names[matches[0]]!r}?" if matches else ""


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; an unknown argument is reported by the subcommand's parser (its usage, its options)."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        getattr(args, "command_parser", parser).error(f"unrecognized arguments: {' '.join(extras)}")
    return args
