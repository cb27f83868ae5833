"""The inference server: a base model with its LoRA adapter behind an OpenAI-compatible API and a chat page.

Install with the ``serve`` extra. ``engine/`` holds the engines behind one
seam, ``http/`` the app that serves them. Importing this package (and
``azinfer.serve.cli``) imports neither torch, transformers, starlette nor
uvicorn: the heavy modules are imported where the server starts.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["start_script"]


def start_script() -> str:
    """Return the container app's start command: a bash script to run with ``/bin/bash -c``.

    It installs ``azinfer[serve]`` of this version into a cache on the share
    once, unless the image already has it, then runs ``azinfer serve``.
    """
    from azinfer import __version__

    text = resources.files(__package__).joinpath("start.sh").read_text(encoding="utf-8")
    return text.replace("__AZINFER_VERSION__", __version__)
