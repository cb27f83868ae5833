"""Load the base model and its adapter from local folders: safetensors, no model hub."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azinfer.errors import ServeError
from azinfer.serve.discovery import ModelPaths

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

__all__ = ["LoadedModel", "choose_device_and_dtype", "load_model"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to generate, with what the engines and the API need to know of it."""

    model: Any
    tokenizer: Any
    name: str
    device: torch.device
    context_length: int
    eos_token_ids: frozenset[int]
    adapter_merged: bool


def choose_device_and_dtype() -> tuple[torch.device, torch.dtype]:
    """Pick the device and the weights' dtype: bf16 on a GPU with it, fp16 on one without (T4), fp32 on CPU."""
    import torch

    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.device("cuda"), dtype
    return torch.device("cpu"), torch.float32


def _quantization_config(load_in_4bit: bool, device: torch.device) -> Any:
    if not load_in_4bit:
        return None
    if device.type != "cuda":
        raise ServeError("4-bit loading needs a CUDA GPU; drop --load-in-4bit on this machine")
    try:
        import bitsandbytes  # noqa: F401  # only checks that it is installed
    except ImportError as error:
        raise ServeError("4-bit loading needs bitsandbytes: pip install bitsandbytes") from error
    import torch
    from transformers import BitsAndBytesConfig

    # transformers leaves BitsAndBytesConfig.__init__ unannotated.
    return BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
    )


def _eos_token_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    configured = model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured])
    ids.add(tokenizer.eos_token_id)
    return frozenset(i for i in ids if i is not None)


def load_model(paths: ModelPaths, *, merge: bool = True, load_in_4bit: bool = False) -> LoadedModel:
    """Load the tokenizer, the base model and the adapter (merged into the weights when *merge*).

    A 4-bit model keeps its adapter unmerged: merging into quantised weights loses precision.

    :raises ServeError: the folders cannot be loaded, or 4-bit is asked for without CUDA and bitsandbytes.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    device, dtype = choose_device_and_dtype()
    if device.type == "cuda":
        import torch

        # PyTorch's SDPA picks cuDNN's attention on an H100 when a padding mask is given, and cuDNN
        # compiles (NVRTC) a graph for every new key length: a decode step grows it by one, so every
        # step paid a compile (about 50 ms, measured with py-spy). Flash and memory-efficient
        # attention compile nothing.
        torch.backends.cuda.enable_cudnn_sdp(False)
    quantization = _quantization_config(load_in_4bit, device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(paths.model_dir, local_files_only=True)
        # A transformers model, then perhaps a peft model around it, then perhaps the merged model again.
        model: Any = AutoModelForCausalLM.from_pretrained(
            paths.model_dir,
            dtype=dtype,
            local_files_only=True,
            use_safetensors=True,
            quantization_config=quantization,
            device_map={"": device} if quantization is not None else None,
        )
        if quantization is None:
            model.to(device)
        merged = False
        if paths.adapter_dir is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, paths.adapter_dir, local_files_only=True)
            if merge and quantization is None:
                model = model.merge_and_unload()
                merged = True
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        raise ServeError(f"cannot load {paths.model_dir} (adapter {paths.adapter_dir}): {error}") from error
    model.eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    context = int(getattr(model.config, "max_position_embeddings", 0) or tokenizer.model_max_length)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    log.info(
        "loaded %s in %.1f s: %.1f MiB of %s weights on %s, adapter %s, context %d tokens",
        paths.model_name,
        time.monotonic() - started,
        weights / 2**20,
        "4-bit" if quantization is not None else str(dtype).removeprefix("torch."),
        device,
        "merged" if merged else ("unmerged" if paths.adapter_dir else "none"),
        context,
    )
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=paths.model_name,
        device=device,
        context_length=context,
        eos_token_ids=_eos_token_ids(model, tokenizer),
        adapter_merged=merged,
    )
