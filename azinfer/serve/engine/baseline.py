"""The AI Toolkit server's strategy, kept as the benchmark's baseline: a thread per request.

Each request runs its own ``model.generate`` with a streamer on the unmerged
PEFT model; nothing is shared between requests, so concurrent requests
contend for the same cores. Serve with ``--engine baseline`` (it implies
``--no-merge``).
"""

from __future__ import annotations

import threading
from typing import Any

from azinfer.serve.discovery import ModelPaths
from azinfer.serve.engine.base import NEUTRAL_EXTENSIONS, EngineStats, Generation, GenerationRequest
from azinfer.serve.engine.hf import ThreadedGeneration, TransformersEngine
from azinfer.serve.loading import LoadedModel, load_model
from azinfer.serve.settings import DEFAULT_PROMPT_TEMPLATE, ServeSettings

__all__ = ["ThreadPerRequestEngine", "start_baseline_engine"]


class _Streamer:
    """A ``transformers`` streamer that forwards each new token to the request's generation."""

    def __init__(self, generation: ThreadedGeneration) -> None:
        self.generation = generation
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first puts the prompt
            self._prompt_seen = True
            return
        for token in value.reshape(-1).tolist():
            self.generation.push_token(token)

    def end(self) -> None:
        self.generation.finish("length")


class ThreadPerRequestEngine(TransformersEngine):
    """Implements :class:`~azinfer.serve.engine.base.Engine` the way the AI Toolkit's server does."""

    name = "baseline"
    # ``generate`` stops at the end of sequence itself, has no presence or frequency penalty, and its
    # streamer sees tokens, not their distribution (no log probabilities).
    unsupported = frozenset(NEUTRAL_EXTENSIONS) - {"stop_token_ids"}

    def __init__(
        self, loaded: LoadedModel, *, max_concurrent: int = 80, prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    ) -> None:
        super().__init__(loaded, capacity=max_concurrent, prompt_template=prompt_template)
        self._running: set[ThreadedGeneration] = set()
        self._lock = threading.Lock()

    async def submit(self, request: GenerationRequest) -> Generation:
        """Start a thread that generates this request alone.

        :raises QueueFullError: ``max_concurrent`` requests are running.
        """
        generation = self._admit(request)
        with self._lock:
            self._running.add(generation)
        threading.Thread(target=self._generate, args=(generation,), daemon=True).start()
        return generation

    def _generate(self, generation: ThreadedGeneration) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class _UntilDone(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                # On the ids' device: generate combines it with its own criteria there (a CPU tensor fails on a GPU).
                return torch.full((input_ids.shape[0],), generation.done, dtype=torch.bool, device=input_ids.device)

        request = generation.request
        params = request.params
        if params.seed is not None:
            torch.manual_seed(params.seed)
        sampling = {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
        try:
            with torch.inference_mode():
                self.loaded.model.generate(
                    input_ids=torch.tensor([list(request.prompt_ids)], device=self.loaded.device),
                    attention_mask=torch.ones(1, len(request.prompt_ids), dtype=torch.long, device=self.loaded.device),
                    max_new_tokens=params.max_tokens,
                    streamer=_Streamer(generation),
                    stopping_criteria=StoppingCriteriaList([_UntilDone()]),
                    pad_token_id=self.loaded.tokenizer.pad_token_id,
                    **({"do_sample": False} if params.greedy else sampling),
                )
        except Exception as error:  # report to the client, keep serving
            generation.finish("error", error)
        finally:
            generation.finish("cancelled")
            with self._lock:
                self._running.discard(generation)

    def stats(self) -> EngineStats:
        """Running and finished requests."""
        with self._lock:
            running = len(self._running)
        # Every admitted request runs at once, in its own thread.
        return EngineStats(running=running, waiting=0, finished=self._counter.finished(), batch_size=self._counter.capacity)

    def close(self) -> None:
        """Cancel every running generation."""
        with self._lock:
            for generation in self._running:
                generation.cancel()
        self.tokenizer.close()


def start_baseline_engine(settings: ServeSettings, paths: ModelPaths) -> ThreadPerRequestEngine:
    """Load the model with the adapter unmerged (the AI Toolkit's way) and start a thread per request.

    :raises ServeError: the model cannot be loaded.
    """
    loaded = load_model(paths, merge=False, load_in_4bit=settings.load_in_4bit)
    return ThreadPerRequestEngine(loaded, max_concurrent=settings.batch_size + settings.max_queue,
                                  prompt_template=settings.prompt_template)
