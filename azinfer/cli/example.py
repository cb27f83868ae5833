"""The bundled example's working copy: Azure commands on ``examples/phi3`` leave the checkout as it is.

A folder with an ``.azinfer-example`` file is azinfer's own example. ``provision``
and ``up`` write ``infra/inference.config.json`` into the project they get, so
the commands that talk to Azure work on a copy in azinfer's state folder
(``$XDG_STATE_HOME/azinfer/examples/<name>``, else ``~/.local/state/...``),
refreshed from the example on each run; the copy's own config file is kept,
so ``status``, ``key``, ``logs``, ``destroy`` find what ``up`` created.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from azinfer.project import EXAMPLE_MARKER, INFERENCE_CONFIG

__all__ = ["working_folder"]


def _state_folder() -> Path:
    state = os.environ.get("XDG_STATE_HOME", "").strip()
    return (Path(state) if state else Path.home() / ".local" / "state") / "azinfer" / "examples"


def working_folder(project_dir: str) -> str:
    """``project_dir``, or for azinfer's bundled example its working copy (made or refreshed now, and said on stderr)."""
    source = Path(project_dir)
    if not (source / EXAMPLE_MARKER).is_file():
        return project_dir
    copy = _state_folder() / source.resolve().name
    # The example's files, refreshed; the copy's config file (what was provisioned) stays.
    shutil.copytree(source, copy, dirs_exist_ok=True, symlinks=True,
                    ignore=lambda folder, names: [n for n in names if n == EXAMPLE_MARKER or
                                                  Path(folder, n) == source / INFERENCE_CONFIG])
    print(f"azinfer: {project_dir} is azinfer's bundled example: working on its copy {copy} "
          "(the checkout stays as it is)", file=sys.stderr)
    return str(copy)
