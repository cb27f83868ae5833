"""The serve tests' and benchmarks' model shapes; the builder is :mod:`azinfer.local.tinymodel` (re-exported here).

vLLM's CPU attention supports head dimensions 32, 64, 80... only, so a model
meant for ``--engine vllm`` uses :data:`VLLM_TEST_SHAPE` or :data:`BENCH_SHAPE`.
A model of Phi-3-mini's full size (:data:`PHI3_MINI_SHAPE`, for GPU benchmarks)
is built in bf16 on the GPU when there is one.
"""

from __future__ import annotations

from azinfer.local.tinymodel import (
    ModelShape,
    MountLayout,
    build_adapter,
    build_model,
    build_mount,
    build_tokenizer,
)

__all__ = ["BENCH_SHAPE", "PHI3_MINI_SHAPE", "VLLM_TEST_SHAPE", "ModelShape", "MountLayout", "build_adapter",
           "build_model", "build_mount", "build_tokenizer"]

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


