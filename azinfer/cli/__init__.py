"""The ``azinfer`` command: a thin layer over the Python API.

One module per command group (:mod:`.plan`, :mod:`.prices`, :mod:`.provision`, :mod:`.up`,
:mod:`.lifecycle`, :mod:`.serve`),
the options they share (:mod:`.options`) and one console helper
(:mod:`.console`: one-line errors, exit codes, questions, progress).

Exit codes: 0 success, 1 invalid input, a blocked plan or a failed operation,
2 usage error, 3 the question was answered no (nothing changed), 130 interrupted. Errors are one message on stderr, never a
traceback, and the Azure SDK's own log stays off the terminal unless
``--verbose`` asks for it. Colour only on a terminal (and never with ``NO_COLOR`` set).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from azinfer import __version__
from azinfer.cli import lifecycle, plan, prices, provision, serve, up
from azinfer.cli.console import report_errors, sdk_logs
from azinfer.cli.parser import Parser, parse

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``azinfer`` command."""
    parser = Parser(
        prog="azinfer",
        description="From a VS Code AI Toolkit fine-tuning project to a GPU inference endpoint on Azure Container Apps.",
    )
    parser.add_argument("--version", action="version", version=f"azinfer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in (plan, prices, provision, up, lifecycle, serve):
        group.register(commands)
    for command in commands.choices.values():  # an unknown option is reported under its command's usage
        command.set_defaults(command_parser=command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``azinfer`` command; returns the exit code."""
    args = parse(build_parser(), argv)
    sdk_logs(getattr(args, "verbose", False))
    return report_errors(lambda: args.handler(args))
