"""Tiny random-weight models in the AI Toolkit's share layout, built offline in seconds.

A byte-level BPE tokenizer with a chat template trained on a few sentences, a
Phi-3 or Llama shaped model with random weights, and a PEFT LoRA adapter with
non-zero weights, laid out like the share mounted at ``/mount``
(``model-cache/<org>/<name>``, ``models/.../adapter``). ``azinfer up --local``
serves :func:`build_stand_in` when no model is at hand; the tests and
benchmarks build their own shapes with :func:`build_mount`. Nothing is
downloaded. Needs the ``local`` extra (torch, transformers, peft, tokenizers).
"""

from __future__ import annotations

import os
import random
import shutil
import string
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerFast

__all__ = ["ModelShape", "MountLayout", "STAND_IN_ID", "STAND_IN_LABEL", "build_adapter", "build_model",
           "build_mount", "build_stand_in", "build_tokenizer", "stand_in_layout"]

STAND_IN_LABEL = "tiny random-weight model (stand-in, answers are noise)"
"""How the stand-in is named wherever it shows (``up``'s output, ``status``)."""
STAND_IN_ID = "stand-in/tiny-random-weights-answers-are-noise"
"""The stand-in's ``model-cache/<org>/<name>``: the id the server lists it under (``/v1/models``, the chat page)."""

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]
CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "a fine tuned model answers questions about azure container apps",
    "hello world, this is a tiny language model for tests",
    "inference servers batch requests to share the weights of the model",
    "the adapter changes what the base model says",
    "lorem ipsum dolor sit amet, consectetur adipiscing elit",
]


@dataclass(frozen=True)
class ModelShape:
    """Sizes of a tiny model; the defaults keep a test model in the kilobytes."""

    family: str = "phi3"  # "phi3" or "llama"
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    intermediate: int = 128
    context: int = 256
    vocab: int = 400
    dtype: str = "float32"  # of the saved weights
    # Random init with std 0.02 gives near-uniform logits; a wider spread gives each
    # prompt a distinct greedy continuation, like a trained model. Deep models keep 0.02.
    init_std: float = 0.2

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads



@dataclass(frozen=True)
class MountLayout:
    """Paths of one model laid out like the AI Toolkit share."""

    root: Path
    model_dir: Path
    adapter_dir: Path
    hub_id: str


def synthetic_corpus(words: int = 40_000, lines: int = 4_000) -> list[str]:
    """Lines of made-up words, enough for a BPE vocabulary of Phi-3's size (32k) to be learnt."""
    rng = random.Random(0)
    lexicon = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(words)]
    return [" ".join(rng.choices(lexicon, k=50)) for _ in range(lines)]


def build_tokenizer(directory: Path, vocab: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer with a chat template and save it to *directory*.

    The few sentences of :data:`CORPUS` give a few hundred tokens; a larger *vocab* is
    learnt from :func:`synthetic_corpus` as well (about 3 s for 32k).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 4 + (synthetic_corpus() if vocab > 1000 else []), trainer=trainer)
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        eos_token="<|end|>",
        pad_token="<|endoftext|>",
        bos_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(directory)
    return fast


def build_device() -> str:
    """Where models are built: the GPU when there is one (Phi-3-mini's size takes minutes on a CPU)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def build_model(directory: Path, shape: ModelShape, seed: int = 0) -> None:
    """Save a random-weight causal LM of *shape* with its tokenizer to *directory* (safetensors)."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, LlamaConfig, Phi3Config

    tokenizer = build_tokenizer(directory, shape.vocab)
    config_class = {"phi3": Phi3Config, "llama": LlamaConfig}[shape.family]
    config = config_class(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.heads,
        max_position_embeddings=shape.context,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    with torch.device(build_device()):
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, shape.dtype))  # type: ignore[no-untyped-call]
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, shape.init_std)
    model.generation_config = GenerationConfig(  # type: ignore[no-untyped-call]
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    model.save_pretrained(directory, safe_serialization=True)


def build_adapter(model_dir: Path, adapter_dir: Path, hub_id: str, shape: ModelShape, seed: int = 1) -> None:
    """Save a LoRA adapter with non-zero weights for the model in *model_dir*.

    Its ``base_model_name_or_path`` names the hub id, as the AI Toolkit writes it.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    targets = {"phi3": ["qkv_proj", "o_proj"], "llama": ["q_proj", "v_proj", "o_proj"]}[shape.family]
    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(
        model_dir, local_files_only=True, dtype=getattr(torch, shape.dtype), device_map=build_device()
    )
    config = LoraConfig(
        r=8, lora_alpha=32, target_modules=targets, init_lora_weights=False, task_type="CAUSAL_LM"
    )
    peft_model = get_peft_model(base, config)
    peft_model.peft_config["default"].base_model_name_or_path = hub_id
    # No embedding layer is adapted: saying so spares PEFT a look-up of the hub id on the network.
    peft_model.save_pretrained(str(adapter_dir), safe_serialization=True, save_embedding_layers=False)


def build_mount(root: Path, shape: ModelShape, hub_id: str | None = None) -> MountLayout:
    """Lay out a base model and its adapter under *root* like the AI Toolkit's ``/mount``."""
    hub_id = hub_id or {
        "phi3": "microsoft/Phi-3-mini-4k-instruct",
        "llama": "meta-llama/Meta-Llama-3-8B-Instruct",
    }[shape.family]
    model_dir = root / "model-cache" / hub_id
    adapter_dir = root / "models" / "qlora" / "qlora" / "gpu_model" / "adapter"
    model_dir.mkdir(parents=True)
    build_model(model_dir, shape)
    build_adapter(model_dir, adapter_dir, hub_id, shape)
    return MountLayout(root=root, model_dir=model_dir, adapter_dir=adapter_dir, hub_id=hub_id)


def stand_in_layout(root: Path) -> MountLayout:
    """Where :func:`build_stand_in` puts the stand-in under ``root`` (built or not)."""
    return MountLayout(root=root, model_dir=root / "model-cache" / STAND_IN_ID,
                       adapter_dir=root / "models" / "qlora" / "qlora" / "gpu_model" / "adapter", hub_id=STAND_IN_ID)


def build_stand_in(root: Path) -> MountLayout:
    """The stand-in model and its adapter under ``root`` (share layout), built once: a complete build is kept.

    Built in a folder beside ``root`` and renamed into place, so an interrupted build leaves nothing that looks done.
    """
    layout = stand_in_layout(root)
    if (layout.adapter_dir / "adapter_config.json").is_file():
        return layout
    from transformers.utils import logging as transformers_logging

    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # a few kilobytes: no bars
    try:
        build_mount(work / "share", ModelShape(family="phi3"), hub_id=STAND_IN_ID)
        if root.exists():  # an older, incomplete one
            shutil.rmtree(root)
        os.replace(work / "share", root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return layout
