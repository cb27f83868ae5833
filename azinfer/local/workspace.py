"""Where ``azinfer up DIR --local`` keeps a project's local endpoint: one state folder per project.

``$XDG_STATE_HOME/azinfer/local/<name>-<hash>/`` (else ``~/.local/state/...``),
``<hash>`` from the project folder's absolute path, holds:

==================  =============================================================================
``project/``        the project's working copy: the commands work on it, so its
                    ``infra/inference.config.json`` names the local app and the project's own
                    config (the one for Azure) is never written; refreshed from the project on
                    each command (``models/``, ``model-cache/``, ``.git``, environments left out)
``spec.json``       what the daemon seeds: subscription, groups, names, the model folder
``daemon.pid``      the daemon's process id (0600)
``endpoint.json``   where the daemon listens and its service principal's secret (0600, written
                    by the daemon once it serves; removed when it stops)
``ca.pem``          the emulator's CA certificate (what the clients trust)
``shares/``         the file shares as the containers see them (``AZINFER_MOUNT``)
``daemon.log``      the daemon's own lines (no secret: the containers' output is the log stream's)
==================  =============================================================================

The stand-in model (:func:`azinfer.local.tinymodel.build_stand_in`) is built
once for every project, in ``$XDG_STATE_HOME/azinfer/local/stand-in-model/``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from azinfer.project import EXAMPLE_MARKER, INFERENCE_CONFIG

__all__ = ["ModelSource", "Workspace", "local_state_root", "model_source"]

# Not part of the project as the container sees it (deploy leaves the same out of its mirror).
_NOT_COPIED = {".git", ".venv", "venv", "env", "__pycache__", ".mypy_cache", ".pytest_cache", "models",
               "model-cache", EXAMPLE_MARKER}


def local_state_root() -> Path:
    """``$XDG_STATE_HOME/azinfer/local``, else ``~/.local/state/azinfer/local``."""
    state = os.environ.get("XDG_STATE_HOME", "").strip()
    return (Path(state) if state else Path.home() / ".local" / "state") / "azinfer" / "local"


@dataclass(frozen=True)
class Workspace:
    """The state folder of one project's local endpoint, and the paths in it."""

    source: Path
    """The project folder as the user names it (resolved)."""
    root: Path

    @classmethod
    def of(cls, project_dir: str | os.PathLike[str]) -> Workspace:
        source = Path(project_dir).resolve()
        digest = hashlib.sha256(str(source).encode()).hexdigest()[:12]
        return cls(source, local_state_root() / f"{source.name}-{digest}")

    @property
    def project(self) -> Path:
        return self.root / "project"

    @property
    def spec(self) -> Path:
        return self.root / "spec.json"

    @property
    def pid_file(self) -> Path:
        return self.root / "daemon.pid"

    @property
    def endpoint_file(self) -> Path:
        return self.root / "endpoint.json"

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    @property
    def shares(self) -> Path:
        return self.root / "shares"

    @property
    def log(self) -> Path:
        return self.root / "daemon.log"

    def refresh_project(self) -> Path:
        """The working copy, made or refreshed from the project now; its own config file is kept."""
        source = self.source
        own_config = source / INFERENCE_CONFIG

        def ignored(folder: str, names: list[str]) -> list[str]:
            top = Path(folder) == source
            return [n for n in names if (top and n in _NOT_COPIED) or n == "__pycache__"
                    or Path(folder, n) == own_config]

        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copytree(source, self.project, dirs_exist_ok=True, symlinks=True, ignore=ignored)
        return self.project


@dataclass(frozen=True)
class ModelSource:
    """The folder in the toolkit's share layout the local share gets its model from, and what it is."""

    folder: Path
    label: str
    """In words, for ``up``'s output and ``status``."""
    stand_in: bool = False


def model_source(workspace: Workspace, share_from: str | os.PathLike[str] | None) -> ModelSource | None:
    """``--share-from DIR``, else the project's own ``models/``/``model-cache/``; ``None``: the stand-in is needed.

    :raises ValueError: when ``share_from`` has neither ``models/`` nor ``model-cache/``.
    """
    if share_from is not None:
        folder = Path(share_from).resolve()
        if not any((folder / top).is_dir() for top in ("models", "model-cache")):
            raise ValueError(f"--share-from {share_from}: expected a folder laid out as the AI Toolkit's share, "
                             "with model-cache/<org>/<name> and models/ folders")
        return ModelSource(folder, f"the model in {folder}")
    if any((workspace.source / top).is_dir() for top in ("models", "model-cache")):
        return ModelSource(workspace.source, f"the project's own model ({workspace.source}/model-cache, models)")
    return None
