"""The AI Toolkit server's strategy, kept as the benchmark's baseline: a thread per request.

Each request runs its own ``model.generate`` with a streamer on the unmerged
PEFT model; nothing is shared between requests, so concurrent requests
contend for the same cores. Serve with ``--engine baseline`` (it implies
``--no-merge``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

from azinfer.serve.engine import EngineStats, GenerationHandle, RequestCounter, SamplingParams
from azinfer.serve.loading import LoadedModel

__all__ = ["ThreadPerRequestEngine"]


class _HandleStreamer:
    """A ``transformers`` streamer that forwards each new token to the request's handle."""

    def __init__(self, handle: GenerationHandle) -> None:
        self.handle = handle
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first puts the prompt
            self._prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self.handle.push_token(token)

    def end(self) -> None:
        self.handle.finish("length")


class ThreadPerRequestEngine:
    """Implements :class:`~azinfer.serve.engine.Engine` the way the AI Toolkit's server does."""

    def __init__(self, loaded: LoadedModel, *, max_concurrent: int = 80) -> None:
        self.loaded = loaded
        self._counter = RequestCounter(max_concurrent)
        self._running: set[GenerationHandle] = set()
        self._lock = threading.Lock()

    def submit(self, prompt_ids: Sequence[int], params: SamplingParams) -> GenerationHandle:
        """Start a thread that generates this request alone.

        :raises QueueFullError: ``max_concurrent`` requests are running.
        """
        handle = GenerationHandle(
            prompt_ids, params, self.loaded.tokenizer, self.loaded.eos_token_ids, asyncio.get_running_loop()
        )
        self._counter.admit(handle)
        with self._lock:
            self._running.add(handle)
        threading.Thread(target=self._generate, args=(handle,), daemon=True).start()
        return handle

    def _generate(self, handle: GenerationHandle) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class _UntilDone(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), handle.done, dtype=torch.bool)

        params = handle.params
        if params.seed is not None:
            torch.manual_seed(params.seed)
        sampling = {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
        try:
            with torch.inference_mode():
                self.loaded.model.generate(
                    input_ids=torch.tensor([handle.prompt_ids], device=self.loaded.device),
                    attention_mask=torch.ones(1, len(handle.prompt_ids), dtype=torch.long, device=self.loaded.device),
                    max_new_tokens=params.max_new_tokens,
                    streamer=_HandleStreamer(handle),
                    stopping_criteria=StoppingCriteriaList([_UntilDone()]),
                    pad_token_id=self.loaded.tokenizer.pad_token_id,
                    **(sampling if params.temperature > 0 else {"do_sample": False}),
                )
        except Exception as error:  # report to the client, keep serving
            handle.finish("error", error)
        finally:
            handle.finish("cancelled")
            with self._lock:
                self._running.discard(handle)
            self._counter.release(handle)

    def stats(self) -> EngineStats:
        """In-flight and finished requests."""
        with self._lock:
            running = len(self._running)
        return EngineStats(running=running, waiting=0, finished=self._counter.finished())

    def close(self) -> None:
        """Cancel every running generation."""
        with self._lock:
            for handle in self._running:
                handle.cancel()
