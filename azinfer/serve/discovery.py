"""Find the base model and the LoRA adapter in the AI Toolkit's layout of the share.

The toolkit downloads the base model to ``<mount>/model-cache/<org>/<name>``
and writes adapters (folders with ``adapter_config.json``) under
``<mount>/models/``. ``azinfer deploy --adapter DIR --name NAME`` publishes
named adapters to ``<mount>/models/azinfer/NAME`` (:data:`ADAPTERS_DIR`); each is
served as model ``NAME`` beside the base. An adapter's ``base_model_name_or_path`` is a hub id; it
only helps choose among several cached base models, it is never downloaded.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from azinfer.errors import ServeError
from azinfer.serve.settings import ADAPTER_NAME, ServeSettings, named_adapters

__all__ = ["ADAPTERS_DIR", "ModelPaths", "resolve_model_paths", "share_adapters"]

ADAPTERS_DIR = "models/azinfer"
"""Where named adapters live on the share, relative to its root: one folder per name."""
# The weights PEFT saves; an adapter folder is complete (uploaded) once config and weights are there.
_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelPaths:
    """The folders to load and the name the API serves the model under."""

    model_dir: Path
    adapter_dir: Path | None
    model_name: str
    adapters: dict[str, Path] = field(default_factory=dict)
    """Named adapters at start (``--adapter`` and the share's), each served as model ``NAME``."""
    runtime_adapters: bool = False
    """Whether adapters load at run time: the base weights then stay unmerged, the default adapter too."""


def _check_model_dir(path: Path) -> Path:
    if not path.is_dir():
        raise ServeError(f"model folder {path} (--model-dir) does not exist")
    if not (path / "config.json").is_file():
        raise ServeError(f"{path}: not a model folder (no config.json)")
    return path


def _check_adapter_dir(path: Path) -> Path:
    if not path.is_dir():
        raise ServeError(f"adapter folder {path} (--adapter-dir) does not exist")
    if not (path / "adapter_config.json").is_file():
        raise ServeError(f"{path}: not an adapter folder (no adapter_config.json)")
    return path


def _adapter_base_id(adapter_dir: Path) -> str | None:
    try:
        config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ServeError(f"{adapter_dir / 'adapter_config.json'}: unreadable: {error}") from error
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    return base if isinstance(base, str) else None


def share_adapters(mount_root: Path) -> dict[str, Path]:
    """The complete named adapters under ``<mount>/models/azinfer``: folders with a valid name, config and weights."""
    folder = mount_root / ADAPTERS_DIR
    found = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if ADAPTER_NAME.fullmatch(path.name) and path.name != "default" and (path / "adapter_config.json").is_file() \
                and any((path / weights).is_file() for weights in _WEIGHTS):
            found[path.name] = path
    return found


def _newest_adapter(mount_root: Path) -> Path | None:
    models = mount_root / "models"
    configs = sorted(models.rglob("adapter_config.json"), key=lambda p: p.stat().st_mtime) if models.is_dir() else []
    return configs[-1].parent if configs else None


def _cached_base_model(mount_root: Path, wanted: str | None) -> Path:
    cache = mount_root / "model-cache"
    candidates = sorted(p.parent for p in cache.glob("*/*/config.json")) if cache.is_dir() else []
    if not candidates:
        raise ServeError(f"no base model under {cache} (expected {cache}/<org>/<name>/config.json); pass --model-dir")
    if len(candidates) == 1:
        return candidates[0]
    for candidate in candidates:
        if wanted and candidate.relative_to(cache).as_posix().lower() == wanted.lower():
            return candidate
    names = ", ".join(p.relative_to(cache).as_posix() for p in candidates)
    raise ServeError(f"several base models under {cache} ({names}) and none named by the adapter; pass --model-dir")


def _served_name(model_dir: Path, adapter_dir: Path | None) -> str:
    """The model id: ``<org>/<name>`` under a ``model-cache`` folder, else the adapter's hub id, else the folder name.

    The same folder gets the same id whether found under the mount or given with ``--model-dir``.
    """
    resolved = Path(os.path.abspath(model_dir))  # lexically: a symlinked layout keeps its names
    for parent in resolved.parents:
        if parent.name == "model-cache":
            return resolved.relative_to(parent).as_posix()
    hub_id = _adapter_base_id(adapter_dir) if adapter_dir is not None else None
    return hub_id or resolved.name


def resolve_model_paths(settings: ServeSettings) -> ModelPaths:
    """Find the model and adapter folders: the ones given, or the AI Toolkit's under the mount root.

    :raises ServeError: a folder given does not hold a model or an adapter, or none is found.
    """
    # Folders given explicitly are checked first, so a wrong one is reported as such.
    model_dir = _check_model_dir(settings.model_dir) if settings.model_dir is not None else None
    adapter_dir: Path | None = None
    if not settings.base_only:
        if settings.adapter_dir is not None:
            adapter_dir = _check_adapter_dir(settings.adapter_dir)
        else:
            adapter_dir = _newest_adapter(settings.mount_root)
            if adapter_dir is None:
                raise ServeError(
                    f"no adapter (folder with adapter_config.json) under {settings.mount_root / 'models'}; "
                    "pass --adapter-dir, or --base-only to serve the base model alone"
                )
    if model_dir is None:
        wanted = _adapter_base_id(adapter_dir) if adapter_dir is not None else None
        model_dir = _cached_base_model(settings.mount_root, wanted)
    name = settings.model_name or _served_name(model_dir, adapter_dir)
    # The share's first, so a flag's folder wins for the same name.
    adapters = {**share_adapters(settings.mount_root),
                **{n: _check_adapter_dir(d) for n, d in named_adapters(settings.adapters).items()}}
    if name in adapters:
        raise ServeError(f"adapter name {name!r} is the base model's id; rename the adapter or pass --model-name")
    log.info("model %s, adapter %s, served as %r; named adapters: %s", model_dir, adapter_dir or "none", name,
             ", ".join(adapters) or "none")
    return ModelPaths(model_dir=model_dir, adapter_dir=adapter_dir, model_name=name, adapters=adapters,
                      runtime_adapters=bool(adapters) or settings.adapter_poll > 0)
