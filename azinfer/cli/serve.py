"""``azinfer serve``: the server's options, each with an ``AZINFER_*`` environment variable (declared in :mod:`azinfer.serve.settings`).

A thin layer over :mod:`azinfer.serve`: nothing heavy is imported here;
torch, transformers, starlette and uvicorn load only once :func:`run`
starts the server. ``python -m azinfer.serve`` uses the same parser.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from azinfer.errors import ServeError
from azinfer.serve.settings import add_arguments, settings_from

__all__ = ["add_arguments", "run", "register"]


def run(args: argparse.Namespace) -> int:
    """Serve until stopped; a :class:`ServeError` is reported on stderr without a traceback.

    :returns: 0 after a clean shutdown, 1 when the server cannot start.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The adapter's config names a hub id; nothing may try to fetch it.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        settings = settings_from(args)
        from azinfer.serve.server import serve

        serve(settings)
    except ServeError as error:
        print(f"azinfer serve: error: {error}", file=sys.stderr)
        return 1
    return 0


def register(commands: Any) -> None:
    """Add ``serve`` to the CLI's subcommands."""
    serve = commands.add_parser("serve", help="run the inference server (needs azinfer[serve])")
    add_arguments(serve)
    serve.set_defaults(handler=run)
