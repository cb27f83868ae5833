"""The inference server: a base model with its LoRA adapters behind an OpenAI-compatible API and a chat page.

Install with the ``serve`` extra. ``engine/`` holds the engines behind one
seam, ``http/`` the app that serves them, ``adapters.py`` the named adapters
a running server serves and the watch on the share's folder of them. Importing this package (and
its command, ``azinfer.cli.serve``) imports neither torch, transformers, starlette nor
uvicorn: the heavy modules are imported where the server starts.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["start_script"]


def start_script() -> str:
    """Return the container app's start command: a bash script to run with ``/bin/bash -c``.

    It installs azinfer from the wheel ``azinfer deploy`` put on the share,
    once for every replica (:mod:`azinfer.serve.bootstrap`), or uses the
    image's azinfer when the share has none, then runs ``azinfer serve``. The
    script is the same for every azinfer version, so upgrading azinfer changes
    the share, not the container app's template.
    """
    return resources.files(__package__).joinpath("start.sh").read_text(encoding="utf-8")
