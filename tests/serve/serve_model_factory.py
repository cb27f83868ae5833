"""Build tiny random-weight models in the AI Toolkit folder layout, offline.

Used by the serve tests' fixtures and by ``benchmarks/serve_bench.py``: a
byte-level BPE tokenizer with a chat template trained on a few sentences, a
Phi-3 or Llama shaped model with random weights, and a PEFT LoRA adapter with
non-zero weights, laid out like the share mounted at ``/mount``. A model of
Phi-3-mini's full size (:data:`PHI3_MINI_SHAPE`, for GPU benchmarks) is built
in bf16 on the GPU when there is one.

vLLM's CPU attention supports head dimensions 32, 64, 80... only, so a model
meant for ``--engine vllm`` uses :data:`VLLM_TEST_SHAPE` or :data:`BENCH_SHAPE`.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from pathlib import Path

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


# The smallest Phi-3 model vLLM's CPU build runs (head dimension 32).
VLLM_TEST_SHAPE = ModelShape(family="phi3", hidden=64, layers=2, heads=2, intermediate=128, context=8192)
# The benchmark's model: Phi-3's layout (fused qkv and gate-up projections, a
# 4k context) with head dimension 64 and about 40 MB of fp32 weights.
BENCH_SHAPE = ModelShape(family="phi3", hidden=512, layers=3, heads=8, intermediate=1376, context=4096)
# Phi-3-mini-4k-instruct's sizes (3.8 B parameters, about 7.6 GB in bf16), for GPU benchmarks.
PHI3_MINI_SHAPE = ModelShape(
    family="phi3", hidden=3072, layers=32, heads=32, intermediate=8192, context=4096, vocab=32064,
    dtype="bfloat16", init_std=0.02,
)


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


def build_tokenizer(directory: Path, vocab: int) -> object:
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
    )
    tokenizer.train_from_iterator(CORPUS * 4 + (synthetic_corpus() if vocab > 1000 else []), trainer=trainer)
    fast = PreTrainedTokenizerFast(
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
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, shape.dtype))
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, shape.init_std)
    model.generation_config = GenerationConfig(
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
    peft_model.save_pretrained(adapter_dir, safe_serialization=True)


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
