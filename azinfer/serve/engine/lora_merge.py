"""Merge a PEFT LoRA adapter into a copy of a model's safetensors weights, one shard at a time.

``W' = W + scale * B @ A`` for every module the adapter targets, with
``scale = lora_alpha / r`` (``/ sqrt(r)`` with rsLoRA), computed in float32
and stored in the weight's dtype: what PEFT's ``merge_and_unload`` does, without
PEFT or ``transformers`` and without holding more than one shard in memory
(vLLM's image has neither PEFT nor room for a second copy of the model in RAM).
Shards the adapter does not touch are linked, not copied.

An adapter this does not handle (DoRA, per-module ranks or alphas, extra
trained modules, biases, fan-in-fan-out layers, a ``.bin`` file) raises
:class:`MergeUnsupported`; the caller then serves it as a LoRA.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from azinfer.errors import MergeUnsupported, ServeError

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor

__all__ = ["MergeUnsupported", "merge_adapter"]

_PREFIX = "base_model.model."
_A, _B = ".lora_A.weight", ".lora_B.weight"


def _config(adapter_dir: Path) -> dict[str, object]:
    config: dict[str, object] = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    unsupported = [
        name for name, present in (
            ("DoRA", config.get("use_dora")),
            ("per-module ranks", config.get("rank_pattern")),
            ("per-module alphas", config.get("alpha_pattern")),
            ("modules_to_save", config.get("modules_to_save")),
            ("trained biases", config.get("bias", "none") != "none"),
            ("fan_in_fan_out", config.get("fan_in_fan_out")),
            ("a non-LoRA adapter", config.get("peft_type", "LORA") != "LORA"),
        ) if present
    ]
    if unsupported:
        raise MergeUnsupported(f"{adapter_dir}: the adapter uses {', '.join(unsupported)}")
    return config


def _deltas(adapter_dir: Path, config: dict[str, object]) -> dict[str, tuple[Tensor, Tensor, float]]:
    """Base weight name -> (A, B, scale)."""
    from safetensors.torch import load_file

    path = adapter_dir / "adapter_model.safetensors"
    if not path.is_file():
        raise MergeUnsupported(f"{adapter_dir}: no adapter_model.safetensors")
    tensors = load_file(path)
    rank, alpha = config.get("r"), config.get("lora_alpha", config.get("r"))
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1 or isinstance(alpha, bool) \
            or not isinstance(alpha, (int, float)):
        raise MergeUnsupported(f"{adapter_dir}: adapter_config.json has no positive integer r and numeric lora_alpha")
    scale = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
    deltas = {}
    for name, a in tensors.items():
        if name.endswith(_A):
            module = name.removeprefix(_PREFIX).removesuffix(_A)
            deltas[f"{module}.weight"] = (a, tensors[name.removesuffix(_A) + _B], scale)
        elif not name.endswith(_B):
            raise MergeUnsupported(f"{path}: unexpected tensor {name}")
    return deltas


def _shards(model_dir: Path) -> list[Path]:
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return [model_dir / name for name in sorted(set(weight_map.values()))]
    single = model_dir / "model.safetensors"
    if not single.is_file():
        raise ServeError(f"{model_dir}: no safetensors weights (model.safetensors or its index)")
    return [single]


def merge_adapter(model_dir: Path, adapter_dir: Path, out_dir: Path) -> int:
    """Write the model of *model_dir* with the adapter of *adapter_dir* merged into *out_dir* (an empty folder).

    Every other file of the model folder (config, tokenizer, generation config) is copied.

    :returns: how many weights changed.
    :raises MergeUnsupported: the adapter uses a feature this merge does not handle.
    :raises ServeError: the model has no safetensors weights, or a targeted weight is missing or of another shape.
    :raises OSError: a file cannot be read or written (a full disk).
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    deltas = _deltas(adapter_dir, _config(adapter_dir))
    shards = {shard: _names(shard) for shard in _shards(model_dir)}
    missing = set(deltas).difference(*shards.values())
    if missing:
        raise ServeError(f"{adapter_dir}: the adapter updates weights the model does not have: {sorted(missing)[:3]}")
    for path in model_dir.iterdir():
        if path.is_file() and path not in shards:
            shutil.copy2(path, out_dir / path.name)
    for shard, names in shards.items():
        if not deltas.keys() & set(names):
            os.symlink(shard.resolve(), out_dir / shard.name)
            continue
        with safe_open(shard, framework="pt") as reader:
            tensors = {name: reader.get_tensor(name) for name in names}
            metadata = reader.metadata()
        for name in deltas.keys() & set(names):
            a, b, scale = deltas[name]
            weight = tensors[name]
            delta = (b.float() @ a.float()) * scale
            if delta.shape != weight.shape:
                raise ServeError(f"{adapter_dir}: the update of {name} is {tuple(delta.shape)}, the weight {tuple(weight.shape)}")
            tensors[name] = (weight.float() + delta).to(weight.dtype)
        save_file(tensors, out_dir / shard.name, metadata=metadata or {"format": "pt"})
        del tensors
    return len(deltas)


def _names(shard: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(shard, framework="pt") as reader:
        return list(reader.keys())
