"""Continuous batching for ``transformers`` models: one forward pass per step for every running request.

A worker thread holds the running requests as one left-padded batch with
one KV cache. Each step it drops requests that finished or were cancelled,
prefills the requests that arrived (together, as a batch of their own) and
splices them into the running batch, then decodes one token for all. So a
new request waits one step, not for the others to finish.

One request cannot fail the others: sampling runs row by row, and when a
batch of arrivals fails to prefill, each is prefilled alone so only the one at
fault fails. Only a failed decode step (the model itself failing) ends every
running request.

Adapters: started with ``runtime_adapters``, the model is a PEFT model with
its adapters unmerged, and each forward pass names every row's adapter
(PEFT's ``adapter_names``: each LoRA layer applies each adapter to its own
rows, the base weights once for all), so requests for different adapters
share the batch. Loading and unloading run in the worker thread between steps.

Why not ``transformers``' own continuous batching (``generate_batch``): in a
trial on a 2-core CPU it was far slower than plain batched ``generate``, which
this loop reproduces while letting requests join and leave
(``benchmarks/serve_bench.py`` measures it against the AI Toolkit's strategy).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from azinfer.serve.discovery import ModelPaths
from azinfer.serve.engine.base import AdapterError, EngineStats, Generation, GenerationRequest, InvalidRequestError
from azinfer.serve.engine.hf import SampledLogprobs, ThreadedGeneration, TransformersEngine
from azinfer.serve.loading import LoadedModel, load_model
from azinfer.serve.settings import DEFAULT_PROMPT_TEMPLATE, ServeSettings

__all__ = ["BatchedEngine", "start_batched_engine"]

log = logging.getLogger(__name__)

# PEFT's names: the row's adapter when none of ours applies, and the adapter PeftModel.from_pretrained loads.
_BASE_ROW, _PEFT_DEFAULT = "__base__", "default"


@dataclass
class _Running:
    """The running batch: row i of every tensor belongs to ``generations[i]``."""

    generations: list[ThreadedGeneration]
    generators: list[Any]
    cache: Any  # DynamicCache, keys and values [batch, heads, length, head_dim]
    mask: Any  # [batch, length], 0 on left padding
    next_tokens: Any  # [batch], fed at the next step
    positions: Any  # [batch], position id of next_tokens
    # Per row, next_tokens' log probabilities where the request asks for them; read once, by _emit.
    logprobs: list[SampledLogprobs | None] | None = None


def _shaped(logits: Any, generation: ThreadedGeneration, eos_token_ids: frozenset[int]) -> Any:
    """One row's logits after vLLM's extensions: ``min_tokens``, the penalties, ``top_k`` and ``min_p``.

    Penalties and ``min_tokens`` shape the logits before the temperature, as
    vLLM's sampler does; ``top_k`` and ``min_p`` are applied by the caller on
    the probabilities (see :func:`_sample`).
    """
    import torch

    params = generation.request.params
    logits = logits.float().clone()
    if len(generation.output_ids) < params.min_tokens:
        blocked = [t for t in (*eos_token_ids, *params.stop_token_ids) if t < logits.shape[-1]]
        logits[blocked] = float("-inf")
    if params.repetition_penalty != 1.0:
        seen = torch.tensor(sorted({*generation.request.prompt_ids, *generation.output_ids}), dtype=torch.long)
        seen = seen[seen < logits.shape[-1]]
        chosen = logits[seen]
        logits[seen] = torch.where(chosen > 0, chosen / params.repetition_penalty, chosen * params.repetition_penalty)
    if (params.presence_penalty or params.frequency_penalty) and generation.output_ids:
        counts = torch.bincount(torch.tensor(generation.output_ids), minlength=logits.shape[-1])[: logits.shape[-1]]
        logits -= params.frequency_penalty * counts + params.presence_penalty * (counts > 0)
    return logits


def _sample(logits: Any, generations: Sequence[ThreadedGeneration], generators: Sequence[Any],
            eos_token_ids: frozenset[int] = frozenset()) -> list[int]:
    """Pick one token per row: greedy at temperature 0, else sampling with ``min_p``, ``top_k``, ``top_p`` and the request's seed.

    A row whose sampling fails fails its own request (its token is then unused).
    """
    import torch

    tokens: list[int] = logits.argmax(dim=-1).tolist()
    for row, (generation, generator) in enumerate(zip(generations, generators)):
        params = generation.request.params
        if generation.done or (params.greedy and not params.shapes_logits):
            continue
        try:
            row_logits = _shaped(logits[row], generation, eos_token_ids) if params.shapes_logits else logits[row].float()
            if params.greedy:
                tokens[row] = int(row_logits.argmax())
                continue
            probs = torch.softmax(row_logits / params.temperature, dim=-1)
            if params.min_p > 0:
                probs = torch.where(probs < params.min_p * probs.max(), 0.0, probs)
            if params.top_k > 0 or params.top_p < 1.0:
                sorted_probs, order = probs.sort(descending=True)
                keep = sorted_probs.cumsum(-1) - sorted_probs < params.top_p * sorted_probs.sum()
                if params.top_k > 0:
                    keep[params.top_k:] = False
                keep[0] = True  # the most likely token always stays
                probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
            tokens[row] = int(torch.multinomial(probs, 1, generator=generator))
        except (RuntimeError, ValueError) as error:
            log.warning("sampling failed for request %s: %s", generation.request.request_id, error)
            generation.finish("error", error)
    return tokens


def _logprobs(logits: Any, generations: Sequence[ThreadedGeneration], tokens: Sequence[int]
              ) -> list[SampledLogprobs | None] | None:
    """The sampled tokens' log probabilities and the most likely ones', for the rows whose request asks; else ``None``.

    vLLM's default ``logprobs_mode`` (``raw_logprobs``): the log-softmax of
    the model's logits, before penalties, temperature and truncation. Rows
    that do not ask cost nothing more than this check.
    """
    rows = [i for i, g in enumerate(generations) if g.request.params.logprobs is not None]
    if not rows:
        return None
    import torch

    index = torch.tensor(rows, device=logits.device)
    logprobs = torch.log_softmax(logits[index].float(), dim=-1)
    chosen = logprobs.gather(1, torch.tensor([[tokens[i]] for i in rows], device=logits.device))[:, 0].tolist()
    most = max(generations[i].request.params.logprobs or 0 for i in rows)
    top_logprobs, top_ids = (t.tolist() for t in logprobs.topk(most, dim=-1))
    found: list[SampledLogprobs | None] = [None] * len(generations)
    for j, row in enumerate(rows):
        found[row] = SampledLogprobs(chosen[j], top_ids[j], top_logprobs[j])
    return found


def _generator(request: GenerationRequest) -> Any:
    import torch

    seed = request.params.seed
    return torch.Generator().manual_seed(seed) if seed is not None else None


class BatchedEngine(TransformersEngine):
    """The scheduler described in the module docstring; implements :class:`~azinfer.serve.engine.base.Engine`.

    At most *max_batch_size* requests run; up to *max_queue* more wait for a slot.
    Every sampling extension of vLLM is honoured (:func:`_sample`), and log probabilities are
    reported as vLLM reports them (:func:`_logprobs`, token texts by :mod:`.token_text`).
    """

    name = "batched"

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        max_batch_size: int = 16,
        max_queue: int = 64,
        prompt_template: str = DEFAULT_PROMPT_TEMPLATE,
        runtime_adapters: bool = False,
    ) -> None:
        super().__init__(loaded, capacity=max_batch_size + max_queue, prompt_template=prompt_template)
        self.max_batch_size = max_batch_size
        self._model = loaded.model  # wrapped in a PEFT model when the first adapter loads
        self._runtime_adapters = runtime_adapters
        # The default model's rows: PEFT's "default" adapter when it was loaded unmerged, else the bare base.
        self._default_row = _PEFT_DEFAULT if runtime_adapters and hasattr(loaded.model, "peft_config") else _BASE_ROW
        self._served: set[str] = set()  # adapters requests may name (changed on the event loop)
        self._tasks: deque[tuple[Callable[[], None], Future[None]]] = deque()  # run by the worker between steps
        self._retiring: set[str] = set()  # unloaded, deleted once no request of theirs is left
        # Only the last position's logits are sampled: a prefill that computed them all would
        # hold prompt length x vocabulary of them (2 GB for 16 prompts of 1000 tokens at 32k in bf16).
        # A PEFT model (adapter unmerged) passes keyword arguments through to the model it wraps.
        model = loaded.model.get_base_model() if hasattr(loaded.model, "get_base_model") else loaded.model
        accepts = "logits_to_keep" in inspect.signature(model.forward).parameters
        self._last_logits_only = {"logits_to_keep": 1} if accepts else {}
        self._waiting: deque[ThreadedGeneration] = deque()
        self._wakeup = threading.Condition()
        self._running: _Running | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="azinfer-batched-engine", daemon=True)
        self._thread.start()

    async def submit(self, request: GenerationRequest) -> Generation:
        """Queue a generation (see :meth:`Engine.submit`).

        :raises QueueFullError: running and waiting requests fill the queue.
        """
        if request.adapter is not None and request.adapter not in self._served:
            raise InvalidRequestError("model", f"no adapter {request.adapter!r} is loaded", "model_not_found")
        generation = self._admit(request)
        with self._wakeup:
            self._waiting.append(generation)
            self._wakeup.notify()
        return generation

    def stats(self) -> EngineStats:
        """Running, waiting and finished requests."""
        with self._wakeup:
            waiting = len(self._waiting)
        running = self._running
        return EngineStats(
            running=len(running.generations) if running else 0, waiting=waiting, finished=self._counter.finished(),
            batch_size=self.max_batch_size,
        )

    async def load_adapter(self, name: str, path: str) -> None:
        """Load the adapter in *path* as *name* between two steps (see :meth:`Engine.load_adapter`).

        :raises AdapterError: started without run-time adapters, or PEFT cannot load the folder.
        """
        if not self._runtime_adapters:
            await super().load_adapter(name, path)
        try:
            await self._in_worker(lambda: self._load(name, path))
        except AdapterError:
            self._served.discard(name)  # a failed replacement leaves the name unserved
            raise
        self._served.add(name)

    async def unload_adapter(self, name: str) -> None:
        """Refuse new requests for *name* now; delete it once its requests in flight end."""
        if not self._runtime_adapters:
            await super().unload_adapter(name)
        self._served.discard(name)
        await self._in_worker(lambda: self._retiring.add(name))

    async def _in_worker(self, task: Callable[[], None]) -> None:
        done: Future[None] = Future()
        with self._wakeup:
            self._tasks.append((task, done))
            self._wakeup.notify()
        await asyncio.wrap_future(done)

    def _load(self, name: str, path: str) -> None:
        from peft import PeftModel

        self._retiring.discard(name)  # unloaded and loaded again before its requests ended
        try:
            if not isinstance(self._model, PeftModel):
                self._model = PeftModel.from_pretrained(self._model, path, adapter_name=name, local_files_only=True)
            else:
                if name in self._model.peft_config:
                    self._model.delete_adapter(name)
                self._model.load_adapter(path, adapter_name=name, local_files_only=True)
        except Exception as error:  # PEFT and safetensors raise many kinds; each means this folder cannot be served
            failure = AdapterError(f"cannot load adapter {name!r} from {path}: {error}")
            if name in getattr(self._model, "peft_config", {}):  # injected, then its weights failed
                self._model.delete_adapter(name)
            with self._wakeup:  # a replaced adapter is gone: its requests fail rather than the batch
                orphans = [g for g in [*self._waiting, *(self._running.generations if self._running else [])]
                           if g.request.adapter == name]
            for generation in orphans:
                generation.finish("error", failure)
            raise failure from error
        self._model.eval()
        log.info("loaded adapter %s from %s", name, path)

    def _run_tasks(self, tasks: list[tuple[Callable[[], None], Future[None]]], waiting: set[str | None]) -> None:
        """Run adapter tasks (outside the lock: loading takes a while), then delete retiring adapters no request uses."""
        for task, done in tasks:
            try:
                task()
                done.set_result(None)
            except Exception as error:
                done.set_exception(error)
        in_use = waiting | {g.request.adapter for g in (self._running.generations if self._running else [])}
        for name in sorted(self._retiring - in_use):
            self._retiring.discard(name)
            if name in getattr(self._model, "peft_config", {}) and name not in self._served:
                self._model.delete_adapter(name)
                log.info("unloaded adapter %s", name)

    def close(self) -> None:
        """Stop the worker; in-flight requests end as cancelled."""
        with self._wakeup:
            self._closed = True
            self._wakeup.notify()
        self._thread.join(timeout=30)
        self.tokenizer.close()

    def _work(self) -> None:
        import torch

        with torch.inference_mode():
            while True:
                with self._wakeup:
                    while not self._closed and not self._waiting and self._running is None and not self._tasks:
                        self._wakeup.wait()
                    if self._closed:
                        break
                    tasks = list(self._tasks)
                    self._tasks.clear()
                    in_use = {g.request.adapter for g in self._waiting}
                    room = self.max_batch_size - (len(self._running.generations) if self._running else 0)
                    arrived = [self._waiting.popleft() for _ in range(min(room, len(self._waiting)))]
                self._run_tasks(tasks, in_use | {g.request.adapter for g in arrived})
                try:
                    self._admit_arrivals(arrived)
                    if self._running is not None:
                        self._decode(self._running)
                except Exception as error:  # the model failed: the step's requests fail, the server goes on
                    log.exception("generation step failed")
                    for generation in arrived + (self._running.generations if self._running else []):
                        generation.finish("error", error)
                    self._running = None
        for generation in list(self._waiting) + (self._running.generations if self._running else []):
            generation.cancel()
            generation.finish("cancelled")

    def _admit_arrivals(self, arrived: list[ThreadedGeneration]) -> None:
        """Prefill the new requests and join them to the running batch; a failure fails only its own request."""
        self._drop_done()
        for generation in [g for g in arrived if g.done]:
            arrived.remove(generation)
            generation.finish("cancelled")
        if not arrived:
            return
        try:
            new = self._prefill(arrived)
        except Exception as error:
            if len(arrived) == 1:
                log.warning("prefill failed for request %s: %s", arrived[0].request.request_id, error)
                arrived[0].finish("error", error)
            else:
                for generation in arrived:  # prefill each alone: only the one at fault fails
                    self._admit_arrivals([generation])
            return
        self._splice(new)

    def _forward(self, input_ids: Any, mask: Any, positions: Any, cache: Any,
                 generations: Sequence[ThreadedGeneration]) -> Any:
        rows = {}
        if self._runtime_adapters and hasattr(self._model, "peft_config"):
            rows["adapter_names"] = [g.request.adapter or self._default_row for g in generations]
        output = self._model(
            input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=cache, use_cache=True,
            **self._last_logits_only, **rows,
        )
        return output.logits[:, -1, :]

    def _prefill(self, generations: list[ThreadedGeneration]) -> _Running:
        import torch
        from transformers import DynamicCache

        device = self.loaded.device
        prompts = [list(g.request.prompt_ids) for g in generations]
        length = max(len(p) for p in prompts)
        pad = self.loaded.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (length - len(p)) + p for p in prompts], device=device)
        mask = torch.tensor([[0] * (length - len(p)) + [1] * len(p) for p in prompts], device=device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        logits = self._forward(ids, mask, positions, cache, generations)
        generators = [_generator(g.request) for g in generations]
        tokens = _sample(logits, generations, generators, self.loaded.eos_token_ids)
        return _Running(
            generations=generations,
            generators=generators,
            cache=cache,
            mask=mask,
            next_tokens=torch.tensor(tokens, device=device),
            positions=mask.sum(-1),
            logprobs=_logprobs(logits, generations, tokens),
        )

    def _splice(self, new: _Running) -> None:
        """Join freshly prefilled requests to the running batch, left-padding the shorter cache."""
        import torch
        from torch.nn.functional import pad
        from transformers import DynamicCache

        self._emit(new)
        old = self._running
        if old is None:
            self._running = new
            self._drop_done()
            return
        length = max(old.mask.shape[1], new.mask.shape[1])

        def left_pad(tensor: Any, dim_from_end: int) -> Any:
            missing = length - tensor.shape[-dim_from_end]
            if not missing:  # the longer side, usually the running batch: pad would copy it for nothing
                return tensor
            return pad(tensor, (0, 0) * (dim_from_end - 1) + (missing, 0))

        layers = [
            (torch.cat([left_pad(a.keys, 2), left_pad(b.keys, 2)]), torch.cat([left_pad(a.values, 2), left_pad(b.values, 2)]))
            for a, b in zip(old.cache.layers, new.cache.layers)
        ]
        self._running = _Running(
            generations=old.generations + new.generations,
            generators=old.generators + new.generators,
            cache=DynamicCache(ddp_cache_data=layers),
            mask=torch.cat([left_pad(old.mask, 1), left_pad(new.mask, 1)]),
            next_tokens=torch.cat([old.next_tokens, new.next_tokens]),
            positions=torch.cat([old.positions, new.positions]),
        )
        self._drop_done()

    def _emit(self, running: _Running) -> None:
        logprobs, running.logprobs = running.logprobs, None
        tokens = running.next_tokens.tolist()
        for row, (generation, token) in enumerate(zip(running.generations, tokens)):
            generation.push_token(token, logprobs[row] if logprobs else None)

    def _decode(self, running: _Running) -> None:
        import torch

        ones = torch.ones_like(running.next_tokens)[:, None]
        running.mask = torch.cat([running.mask, ones], dim=1)
        logits = self._forward(running.next_tokens[:, None], running.mask, running.positions[:, None], running.cache,
                               running.generations)
        running.positions = running.positions + 1
        tokens = _sample(logits, running.generations, running.generators, self.loaded.eos_token_ids)
        running.next_tokens = torch.tensor(tokens, device=running.next_tokens.device)
        running.logprobs = _logprobs(logits, running.generations, tokens)
        self._emit(running)
        self._drop_done()

    def _drop_done(self) -> None:
        """Remove finished and cancelled rows, and the left columns that only padding uses now."""
        running = self._running
        if running is None:
            return
        keep = [i for i, g in enumerate(running.generations) if not g.done]
        for generation in running.generations:
            if generation.done:
                generation.finish("cancelled")  # no-op unless it was cancelled
        if not keep:
            self._running = None
            return
        if len(keep) == len(running.generations):
            return
        import torch

        index = torch.tensor(keep, device=running.mask.device)
        mask = running.mask[index]
        first = int(mask.any(dim=0).long().argmax())
        for layer in running.cache.layers:
            layer.keys = layer.keys[index, :, first:]
            layer.values = layer.values[index, :, first:]
        running.generations = [running.generations[i] for i in keep]
        running.generators = [running.generators[i] for i in keep]
        running.mask = mask[:, first:]
        running.next_tokens = running.next_tokens[index]
        running.positions = running.positions[index]


def start_batched_engine(settings: ServeSettings, paths: ModelPaths) -> BatchedEngine:
    """Load the model (the adapter merged unless ``--no-merge`` or run-time adapters) and start the scheduler.

    :raises ServeError: the model cannot be loaded.
    """
    loaded = load_model(paths, merge=settings.merge and not paths.runtime_adapters, load_in_4bit=settings.load_in_4bit)
    return BatchedEngine(loaded, max_batch_size=settings.batch_size, max_queue=settings.max_queue,
                         prompt_template=settings.prompt_template, runtime_adapters=paths.runtime_adapters)
