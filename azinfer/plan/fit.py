"""Whether the base model fits the GPU: weights, KV cache and runtime overhead against the GPU's memory.

Pure arithmetic on a :class:`~azinfer.basemodel.ModelShape` and the GPU
profile's facts (:mod:`azinfer.plan.profiles`):

- weights: parameters x 2 bytes, in the dtype vLLM runs (``auto``: bf16 for a bf16
  model where the GPU has bf16, else fp16; the T4 has no bf16, so fp16 there);
- KV cache: 2 (K and V) x layers x KV heads x head size x 2 bytes per token, for
  :data:`SEQUENCES` sequences of the model's full context;
- runtime: :data:`RUNTIME_GIB` for the CUDA context, activations and CUDA graphs (an estimate);
- against :data:`GPU_MEMORY_UTILIZATION` of the GPU's memory (vLLM's default share).

The verdict: ``fits`` (room for :data:`SEQUENCES` full-context sequences),
``tight`` (room for fewer, at least one), ``doesNotFit`` (not even one: the plan is blocked).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from azinfer.basemodel import OLIVE_CONFIG, BaseModel, ModelShape
from azinfer.plan.profiles import profile_facts
from azinfer.project import GpuProfileType

__all__ = ["Verdict", "Fit", "estimate_fit", "SEQUENCES", "RUNTIME_GIB", "GPU_MEMORY_UTILIZATION", "running_dtype"]

SEQUENCES = 4
"""How many full-context sequences a replica should hold at once to count as fitting."""
RUNTIME_GIB = 2.0
"""CUDA context, activations, CUDA graphs and the adapter: an estimate."""
GPU_MEMORY_UTILIZATION = 0.9
"""The share of GPU memory vLLM takes by default (``--gpu-memory-utilization``)."""
_GIB = 1024**3
_BYTES = 2  # fp16 and bf16


class Verdict(str, Enum):
    """Whether the model fits."""

    FITS = "fits"
    """Room for :data:`SEQUENCES` full-context sequences."""
    TIGHT = "tight"
    """Room for at least one full-context sequence but fewer than :data:`SEQUENCES`."""
    DOES_NOT_FIT = "doesNotFit"
    """Not even one full-context sequence: vLLM would fail to start."""
    UNKNOWN = "unknown"
    """No figures for the model."""


def running_dtype(shape: ModelShape, profile: GpuProfileType) -> str:
    """The dtype vLLM runs the model in on ``profile``'s GPU (``bfloat16`` or ``float16``)."""
    return "bfloat16" if shape.dtype == "bfloat16" and profile_facts(profile).bf16 else "float16"


@dataclass(frozen=True)
class Fit:
    """The fit estimate of one model on one GPU profile (sizes in GiB)."""

    model: BaseModel | None
    profile: GpuProfileType
    verdict: Verdict
    dtype: str | None = None
    weights_gib: float = 0.0
    kv_per_sequence_gib: float = 0.0
    usable_gib: float = 0.0
    sequences: int = 0
    """How many full-context sequences fit (0 when it does not fit)."""
    max_context: int = 0
    """The longest context one sequence can have (vLLM's ``--max-model-len``) when the full one does not fit."""
    four_bit_gib: float = 0.0
    """What weights, one full-context sequence and the runtime need with 4-bit weights."""

    @property
    def needed_gib(self) -> float:
        """Weights, the KV cache of :data:`SEQUENCES` full-context sequences and the runtime."""
        return self.weights_gib + SEQUENCES * self.kv_per_sequence_gib + RUNTIME_GIB

    def summary(self) -> str:
        """The verdict in one line."""
        facts = profile_facts(self.profile)
        if self.model is None:
            return f"unknown: the project names no base model (no {OLIVE_CONFIG}; give --model)"
        shape = self.model.shape
        if shape is None:
            return f"unknown: {self.model.note}"
        gpu = f"{facts.gpu} ({self.dtype})"
        room = (f"{SEQUENCES} sequences of {shape.context_length} tokens need {self.needed_gib:.1f} GiB, "
                f"{self.usable_gib:.1f} GiB usable on the {gpu}")
        if self.verdict is Verdict.FITS:
            return f"fits: {room}"
        if self.verdict is Verdict.TIGHT:
            return f"tight: {room}; room for {self.sequences} at once"
        shorter = (f"a context of at most {self.max_context} tokens (vLLM --max-model-len)"
                   if self.max_context >= 256 else None)
        alternatives = [a for a in (
            "a serverless or dedicated A100 (gpuProfileType Consumption-GPU-NC24-A100)" if not facts.bf16 else None,
            f"4-bit weights (about {self.four_bit_gib:.1f} GiB with one full sequence)"
            if self.four_bit_gib <= self.usable_gib else None,
            shorter,
        ) if a]
        return (f"does not fit: the weights alone are {self.weights_gib:.1f} GiB and one {shape.context_length}-token "
                f"sequence needs {self.kv_per_sequence_gib:.1f} GiB more, with {RUNTIME_GIB:.0f} GiB runtime, "
                f"against {self.usable_gib:.1f} GiB usable on the {gpu}; "
                + ("choose " + ", or ".join(alternatives) if alternatives else "choose a larger GPU"))

    def to_json(self) -> dict[str, Any]:
        """The fit's JSON form."""
        model, shape = self.model, (self.model.shape if self.model else None)
        return {
            "verdict": self.verdict.value,
            "summary": self.summary(),
            "model": None if model is None else model.path,
            "modelSource": None if model is None else model.path_source,
            "sizesFrom": None if shape is None else shape.source,
            "gpu": profile_facts(self.profile).gpu,
            **({} if shape is None else {
                "dtype": self.dtype,
                "params": shape.params,
                "contextLength": shape.context_length,
                "weightsGiB": round(self.weights_gib, 2),
                "kvCachePerSequenceGiB": round(self.kv_per_sequence_gib, 2),
                "runtimeGiB": RUNTIME_GIB,
                "neededGiB": round(self.needed_gib, 2),
                "usableGiB": round(self.usable_gib, 2),
                "sequences": self.sequences,
            }),
        }


def estimate_fit(model: BaseModel | None, profile: GpuProfileType) -> Fit:
    """Whether ``model`` fits ``profile``'s GPU (:class:`Verdict` ``unknown`` without its figures)."""
    if model is None or model.shape is None:
        return Fit(model, profile, Verdict.UNKNOWN)
    shape = model.shape
    usable = profile_facts(profile).gpu_memory_gib * GPU_MEMORY_UTILIZATION
    weights = shape.params * _BYTES / _GIB
    kv_per_token = 2 * shape.layers * shape.kv_heads * shape.head_dim * _BYTES / _GIB
    kv_sequence = kv_per_token * shape.context_length
    room = usable - weights - RUNTIME_GIB
    sequences = max(0, min(SEQUENCES, int(room // kv_sequence))) if kv_sequence else SEQUENCES
    verdict = Verdict.FITS if sequences >= SEQUENCES else Verdict.TIGHT if sequences >= 1 else Verdict.DOES_NOT_FIT
    max_context = max(0, int(room // kv_per_token)) if verdict is Verdict.DOES_NOT_FIT and kv_per_token else 0
    return Fit(
        model, profile, verdict, running_dtype(shape, profile), weights, kv_sequence, usable, sequences,
        max_context, weights / 4 + kv_sequence + RUNTIME_GIB,
    )
