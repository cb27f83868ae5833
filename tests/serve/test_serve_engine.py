"""Loading (merged adapter) and the batched engine's answers, in process."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import torch

from azinfer.serve.discovery import ModelPaths
from azinfer.serve.engine.base import (
    ChatTurn,
    Finished,
    GenerationError,
    GenerationRequest,
    QueueFullError,
    SamplingParams,
    TextDelta,
)
from azinfer.serve.engine.batched import BatchedEngine
from azinfer.serve.engine.hf import ChatTokenizer, render_with_template
from azinfer.serve.loading import load_model


def paths(mount: Any, adapter: bool = True) -> ModelPaths:
    return ModelPaths(mount.model_dir, mount.adapter_dir if adapter else None, mount.hub_id)


@pytest.mark.parametrize("mount_fixture", ["phi_mount", "llama_mount"])
def test_merged_logits_equal_unmerged_peft_logits(mount_fixture: str, request: pytest.FixtureRequest) -> None:
    mount = request.getfixturevalue(mount_fixture)
    merged = load_model(paths(mount), merge=True)
    unmerged = load_model(paths(mount), merge=False)
    base = load_model(paths(mount, adapter=False))
    assert merged.adapter_merged and not unmerged.adapter_merged
    ids = torch.tensor([encode(merged, "hello world")])
    with torch.no_grad():
        merged_logits, unmerged_logits, base_logits = (m.model(ids).logits for m in (merged, unmerged, base))
    torch.testing.assert_close(merged_logits, unmerged_logits, rtol=1e-4, atol=1e-4)
    assert (merged_logits - base_logits).abs().max() > 0.1  # the adapter does something


def encode(loaded: Any, text: str) -> list[int]:
    return ChatTokenizer(loaded.tokenizer, loaded.context_length, "{}").encode_now([ChatTurn("user", text)])


async def collect(engine: BatchedEngine, prompt: list[int], params: SamplingParams, delay: float = 0.0) -> tuple[str, Finished]:
    await asyncio.sleep(delay)
    handle = await engine.submit(GenerationRequest(tuple(prompt), params))
    text = ""
    async for event in handle.stream():
        if isinstance(event, TextDelta):
            text += event.text
        else:
            return text, event
    raise AssertionError("no Finished event")


def test_batched_greedy_equals_one_at_a_time(phi_mount: Any) -> None:
    loaded = load_model(paths(phi_mount))
    prompts = [encode(loaded, "hello " * (i + 1)) for i in range(6)]
    lengths = [20, 5, 30, 12, 25, 8]  # requests finish at different steps and leave the batch

    def alone(prompt: list[int], length: int) -> str:
        out = loaded.model.generate(torch.tensor([prompt]), max_new_tokens=length, do_sample=False, min_new_tokens=length)
        return loaded.tokenizer.decode(out[0, len(prompt):], skip_special_tokens=True)

    async def together() -> list[tuple[str, Finished]]:
        engine = BatchedEngine(loaded, max_batch_size=4)  # two must wait, then join a running batch
        try:
            return await asyncio.gather(*[
                collect(engine, p, SamplingParams(max_tokens=n, temperature=0), delay=0.01 * i)
                for i, (p, n) in enumerate(zip(prompts, lengths))
            ])
        finally:
            engine.close()

    results = asyncio.run(together())
    for (text, finished), prompt, length in zip(results, prompts, lengths):
        if finished.reason == "length":
            assert finished.completion_tokens == length
            assert text == alone(prompt, length)
    assert sum(f.reason == "length" for _, f in results) >= 4


def test_a_request_that_fails_in_the_shared_step_fails_alone(phi_mount: Any) -> None:
    loaded = load_model(paths(phi_mount))
    prompt = encode(loaded, "hello world")
    unknown_token = (len(loaded.tokenizer) + 1000,)  # passes every check, fails in the model's embedding
    greedy = SamplingParams(max_tokens=60, temperature=0)

    async def drain(generation: Any) -> str:
        return "".join([e.text async for e in generation.stream() if isinstance(e, TextDelta)])

    async def scenario() -> tuple[str, str, str]:
        engine = BatchedEngine(loaded, max_batch_size=4)
        try:
            alone = (await collect(engine, prompt, greedy))[0]
            running = asyncio.create_task(collect(engine, prompt, greedy))
            await asyncio.sleep(0.05)
            bad = await engine.submit(GenerationRequest(unknown_token, SamplingParams(max_tokens=5)))
            with pytest.raises(GenerationError, match="generation failed"):
                await drain(bad)
            # Arriving together, they are prefilled as one batch: that fails, then each goes alone.
            pair = [await engine.submit(GenerationRequest(tuple(prompt), greedy)),
                    await engine.submit(GenerationRequest(unknown_token, greedy))]
            with pytest.raises(GenerationError):
                await drain(pair[1])
            text, finished = await running
            assert finished.reason == "length" and finished.completion_tokens == 60
            return alone, text, await drain(pair[0])
        finally:
            engine.close()

    alone, during, beside = asyncio.run(scenario())
    assert during == alone and beside == alone


def test_engine_rejects_past_its_capacity(phi_mount: Any) -> None:
    loaded = load_model(paths(phi_mount))

    async def overfill() -> None:
        engine = BatchedEngine(loaded, max_batch_size=2, max_queue=1)
        try:
            request = GenerationRequest((1, 2, 3), SamplingParams(max_tokens=200, temperature=0))
            handles = [await engine.submit(request) for _ in range(3)]
            with pytest.raises(QueueFullError):
                await engine.submit(GenerationRequest((1, 2, 3), SamplingParams(max_tokens=1)))
            for handle in handles:
                handle.cancel()
        finally:
            engine.close()

    asyncio.run(overfill())


def test_fallback_template_replays_the_conversation() -> None:
    messages = [
        ChatTurn("system", "be brief"),
        ChatTurn("user", "hi"),
        ChatTurn("assistant", "hello"),
        ChatTurn("user", "how are you"),
    ]
    text = render_with_template(messages, "### Q: {}\n### A: ")
    assert text == "### Q: be brief\nhi\n### A: hello\n### Q: how are you\n### A: "


@pytest.mark.parametrize("merge", [True, False], ids=["merged", "adapter-unmerged"])
def test_a_prefill_computes_the_logits_of_the_last_position_only(phi_mount: Any, merge: bool) -> None:
    """A long prompt must not hold prompt length x vocabulary logits (2 GB for 16 prompts of 1000 at 32k)."""
    loaded = load_model(paths(phi_mount), merge=merge)
    assert loaded.adapter_merged is merge
    rows_seen: list[int] = []
    lm_head = loaded.model.get_output_embeddings()
    hook = lm_head.register_forward_hook(lambda _m, _i, out: rows_seen.append(out.shape[1]))
    prompt = encode(loaded, "hello " * 60)

    async def run() -> tuple[str, Finished]:
        engine = BatchedEngine(loaded, max_batch_size=2)
        try:
            return await collect(engine, prompt, SamplingParams(max_tokens=3, temperature=0))
        finally:
            engine.close()

    try:
        _, finished = asyncio.run(run())
    finally:
        hook.remove()
    assert finished.reason == "length"
    assert len(prompt) > 60 and rows_seen == [1, 1, 1], "one position per step, the prefill included"
