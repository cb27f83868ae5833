"""The vLLM engine admits what vLLM can run plus the queue: its scheduler's ``max_num_seqs`` or its KV cache, the tighter.

A stand-in for vLLM's ``AsyncLLM`` (its config and a ``generate`` that waits)
keeps these fast; ``test_vllm_engine.py`` checks the same with vLLM running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from azinfer.errors import QueueFullError
from azinfer.serve.engine.base import GenerationRequest, SamplingParams
from azinfer.serve.engine.vllm import VllmEngine, running_capacity
from azinfer.serve.settings import DEFAULT_BATCH_SIZE, ServeSettings


def vllm_config(max_num_seqs: int, blocks: int | None, block_size: int = 16, context: int = 64) -> Any:
    return SimpleNamespace(scheduler_config=SimpleNamespace(max_num_seqs=max_num_seqs),
                           cache_config=SimpleNamespace(num_gpu_blocks=blocks, block_size=block_size),
                           model_config=SimpleNamespace(max_model_len=context))


@pytest.mark.parametrize(("seqs", "blocks", "expected"), [
    (128, 10_000, 128),  # a large cache: the scheduler's bound
    (128, 10, 2),  # 160 cached tokens hold two whole contexts of 64
    (128, 2, 1),  # less than one context: one request still runs (vLLM refuses to start without room for one)
    (128, None, 128),  # a cache the engine core did not report: the scheduler's bound
])
def test_running_capacity_is_the_tighter_of_scheduler_and_kv_cache(seqs: int, blocks: int | None, expected: int) -> None:
    assert running_capacity(vllm_config(seqs, blocks)) == expected


def test_the_batch_size_setting_is_auto_by_default() -> None:
    assert ServeSettings().max_batch_size is None  # the vLLM engine leaves max_num_seqs to vLLM
    assert ServeSettings().batch_size == DEFAULT_BATCH_SIZE == 16  # the batched and baseline engines
    assert ServeSettings(max_batch_size=4).batch_size == 4


class _Llm:
    """What :class:`VllmEngine` uses of ``AsyncLLM``: its config, and ``generate`` (here: never done)."""

    def __init__(self, config: Any) -> None:
        self.vllm_config = config
        self.model_config = config.model_config

    async def generate(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        await asyncio.Event().wait()
        yield None


def test_a_small_kv_cache_shrinks_admission_and_429_follows_it() -> None:
    pytest.importorskip("vllm", reason="submit builds vLLM's SamplingParams")
    engine = VllmEngine(_Llm(vllm_config(128, blocks=10)), SimpleNamespace(), max_queue=1)

    async def scenario() -> None:
        def request() -> GenerationRequest:
            return GenerationRequest((1, 2, 3), SamplingParams(max_tokens=8))

        generations = [await engine.submit(request()) for _ in range(3)]  # two run, one waits
        assert engine.stats().running == 2 and engine.stats().waiting == 1 and engine.stats().batch_size == 2
        with pytest.raises(QueueFullError):
            await engine.submit(request())
        generations[0].cancel()
        await asyncio.sleep(0.05)
        assert engine.stats().finished == {"cancelled": 1}
        generations.append(await engine.submit(request()))  # its slot is free again
        for generation in generations:
            generation.cancel()
        await asyncio.sleep(0.05)

    asyncio.run(scenario())


def _output(text: str, finish: str | None = None) -> Any:
    completion = SimpleNamespace(text=text, token_ids=[0], finish_reason=finish)
    return SimpleNamespace(outputs=[completion], finished=finish is not None)


class _Burst(_Llm):
    """A ``generate`` that sends vLLM's text deltas in one burst, faster than the stream is read."""

    async def generate(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        for text in ["Hel", "lo", ", ", "wor"]:
            yield _output(text)
        yield _output("ld", "length")


def test_deltas_that_queue_up_go_out_together_and_whole() -> None:
    pytest.importorskip("vllm", reason="submit builds vLLM's SamplingParams")
    engine = VllmEngine(_Burst(vllm_config(128, blocks=None)), SimpleNamespace(), max_queue=0)

    async def scenario() -> list[Any]:
        generation = await engine.submit(GenerationRequest((1, 2, 3), SamplingParams(max_tokens=5)))
        await asyncio.sleep(0.05)  # every delta arrives before the reader looks
        return [event async for event in generation.stream()]

    events = asyncio.run(scenario())
    assert [getattr(e, "text", None) for e in events[:-1]] == ["Hello, world"]
    assert (events[-1].reason, events[-1].prompt_tokens, events[-1].completion_tokens) == ("length", 3, 5)
    assert engine.stats().running == 0 and engine.stats().finished == {"length": 1}
