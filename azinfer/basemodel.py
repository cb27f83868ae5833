"""The base model a project fine-tunes: its path, and the figures a fit estimate needs.

The AI Toolkit names the base model in ``finetuning/olive-config.json``,
``input_model.model_path`` (older projects: ``input_model.config.hf_config.model_name``),
e.g. ``model-cache/meta-llama/Llama-v3-8b``. Its figures (parameters, layers,
heads, context length, dtype) come from the model folder when it is at hand
(``config.json`` and the safetensors headers), else from azinfer's table of
the models the toolkit's templates fine-tune (``azinfer/data/models.json``,
each row citing the model's ``config.json`` on the Hugging Face Hub).
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from math import prod
from pathlib import Path
from typing import Any

from azinfer._jsonfile import read_json
from azinfer.errors import ProjectFileError

__all__ = ["OLIVE_CONFIG", "ModelShape", "BaseModel", "read_base_model", "table_shape"]

OLIVE_CONFIG = "finetuning/olive-config.json"

_MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit for the JSON header
# The AI Toolkit ships olive-config.json as a template with <placeholders>; a project whose file still has them
# is not JSON, but its model path is plain text.
_MODEL_PATH = re.compile(r'"(?:model_path|model_name)"\s*:\s*"([^"]+)"')


@dataclass(frozen=True)
class ModelShape:
    """The figures of a model a fit estimate needs, and where they came from."""

    params: int
    layers: int
    kv_heads: int
    head_dim: int
    context_length: int
    dtype: str
    """``torch_dtype`` of ``config.json`` (``bfloat16``, ``float16``, ``float32``)."""
    source: str
    """Where the figures came from, in words (the model folder, or the table row and its citation)."""
    from_table: bool


@dataclass(frozen=True)
class BaseModel:
    """The base model the project names, and its figures (``shape`` ``None``: unknown, ``note`` says why)."""

    path: str
    path_source: str
    shape: ModelShape | None
    note: str = ""


def _key(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1].lower()


@cache
def _table() -> Mapping[str, Mapping[str, Any]]:
    text = resources.files("azinfer").joinpath("data/models.json").read_text(encoding="utf-8")
    rows: dict[str, Mapping[str, Any]] = {}
    for row in json.loads(text)["models"]:
        for alias in (_key(row["name"]), *row["aliases"]):
            rows[alias] = row
    return rows


def table_shape(model_path: str) -> ModelShape | None:
    """The table's figures for the model a path names (by its last part), or ``None``."""
    row = _table().get(_key(model_path))
    if row is None:
        return None
    return ModelShape(
        params=row["params"], layers=row["layers"], kv_heads=row["kvHeads"],
        head_dim=row["hiddenSize"] // row["heads"], context_length=row["contextLength"], dtype=row["dtype"],
        source=f"azinfer's model table: {row['name']} ({row['source']})", from_table=True,
    )


def _safetensors_params(path: Path) -> int:
    """The number of parameters in one safetensors file, from its header alone."""
    with path.open("rb") as file:
        (size,) = struct.unpack("<Q", file.read(8))
        if size > _MAX_HEADER_BYTES:
            raise ProjectFileError(str(path), "", f"expected a safetensors header under {_MAX_HEADER_BYTES} bytes")
        header = json.loads(file.read(size))
    return sum(prod(t["shape"]) for name, t in header.items() if name != "__metadata__")


def _int(config: Mapping[str, Any], shown: str, *keys: str) -> int:
    for key in keys:
        if isinstance(config.get(key), int):
            return int(config[key])
    raise ProjectFileError(shown, f"/{keys[0]}", "expected an integer (the model's config.json)")


def _folder_shape(folder: Path, shown: str) -> ModelShape | None:
    """The figures of a model folder: ``config.json`` plus the safetensors headers (``None`` without weights)."""
    config = read_json(folder / "config.json", display=f"{shown}/config.json")
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    try:
        params = sum(_safetensors_params(f) for f in files)
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        raise ProjectFileError(f"{shown}/{files[0].name}", "", f"expected a safetensors file ({exc})") from None
    cfg = f"{shown}/config.json"
    heads = _int(config, cfg, "num_attention_heads", "n_head")
    hidden = _int(config, cfg, "hidden_size", "n_embd")
    head_dim = config["head_dim"] if isinstance(config.get("head_dim"), int) else hidden // heads
    return ModelShape(
        params=params,
        layers=_int(config, cfg, "num_hidden_layers", "n_layer"),
        kv_heads=int(config.get("num_key_value_heads") or heads),
        head_dim=head_dim,
        context_length=_int(config, cfg, "max_position_embeddings", "n_positions"),
        dtype=str(config.get("torch_dtype") or "float16"),
        source=f"the model folder {shown}: config.json and {len(files)} safetensors header(s)",
        from_table=False,
    )


def _olive_model_path(root: Path) -> tuple[str, str] | None:
    """The model path ``finetuning/olive-config.json`` names, with its JSON pointer; ``None`` without the file."""
    path = root / OLIVE_CONFIG
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        found = _MODEL_PATH.search(text)
        return None if found is None else (found.group(1), f"{OLIVE_CONFIG} (input_model's model path)")
    model = data.get("input_model") if isinstance(data, dict) else None
    if not isinstance(model, dict):
        return None
    if isinstance(model.get("model_path"), str):
        return model["model_path"], f"{OLIVE_CONFIG} /input_model/model_path"
    config = model.get("config")
    hf_config = config.get("hf_config") if isinstance(config, dict) else None
    name = hf_config.get("model_name") if isinstance(hf_config, dict) else None
    return (name, f"{OLIVE_CONFIG} /input_model/config/hf_config/model_name") if isinstance(name, str) else None


def read_base_model(root: Path, model: str | None = None) -> BaseModel | None:
    """The base model ``model`` names (a path or a Hub name), else the project's olive config; ``None``: neither.

    :raises ProjectFileError: when the model folder is at hand but its ``config.json``
        or a safetensors header is invalid.
    """
    named = (model, "argument (--model)") if model is not None else _olive_model_path(root)
    if named is None:
        return None
    path, source = named
    folder = Path(path) if Path(path).is_absolute() else root / path
    if (folder / "config.json").is_file():
        shape = _folder_shape(folder, path)
        if shape is not None:
            return BaseModel(path, source, shape)
    shape = table_shape(path)
    if shape is not None:
        return BaseModel(path, source, shape)
    return BaseModel(path, source, None, f"the model folder {path} is not at hand and azinfer's table has no "
                                         f"{_key(path)!r}: give --model the folder holding its config.json")
