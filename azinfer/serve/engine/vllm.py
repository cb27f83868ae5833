"""``--engine vllm``: vLLM's ``AsyncLLM`` behind the :class:`~azinfer.serve.engine.base.Engine` seam.

vLLM schedules, batches (paged attention, CUDA graphs on a GPU), samples and
detokenises; this module admits requests against the same capacity as the
batched engine (429 past it), renders conversations with the same tokenizer,
and turns vLLM's outputs into the seam's text deltas. vLLM runs its engine
core in a child process started with ``spawn``, so a script that starts this
engine needs the ``if __name__ == "__main__":`` guard (``azinfer serve`` and
``python -m azinfer.serve`` have it).

The adapter is merged into a copy of the weights by default (see
:mod:`azinfer.serve.engine.lora_merge`): on the benchmark's model vLLM decoded
two to four times faster merged than with the adapter as a ``LoRARequest``
(docs/serve.md, "vLLM engine"). ``--no-merge`` serves it as a LoRA, and so
does an adapter the merge does not handle, and so do run-time adapters: each
named adapter is a ``LoRARequest`` of its own, and vLLM batches requests for
up to ``--max-loras`` adapters together. vLLM's engine metrics go to
``prometheus_client``'s default registry (``/metrics`` shows them).

Nothing here is imported unless this engine is chosen: vLLM takes seconds to import.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from azinfer.errors import ServeError
from azinfer.serve.discovery import ModelPaths
from azinfer.serve.engine.base import (
    AdapterError,
    ChatTurn,
    Engine,
    EngineStats,
    Finished,
    FinishReason,
    Generation,
    GenerationError,
    GenerationRequest,
    InvalidRequestError,
    RequestCounter,
    TextDelta,
    TokenLogprob,
)
from azinfer.serve.engine.hf import ChatTokenizer
from azinfer.serve.settings import ServeSettings

__all__ = ["VllmEngine", "VllmGeneration", "running_capacity", "start_vllm_engine", "vllm_available"]

log = logging.getLogger(__name__)

# The LoRA ranks vLLM can be configured for (its max_lora_rank); the adapter's rank is rounded up to one.
_LoraRank = Literal[1, 8, 16, 32, 64, 128, 256, 320, 512]
_LORA_RANKS: tuple[_LoraRank, ...] = get_args(_LoraRank)
_FINISH_REASONS: dict[str | None, FinishReason] = {"stop": "stop", "length": "length", "abort": "cancelled"}


def vllm_available() -> bool:
    """Whether vLLM can be imported, without importing it."""
    from importlib.util import find_spec

    return find_spec("vllm") is not None


class VllmGeneration(Generation):
    """One request's generation: a task on the event loop collects vLLM's text deltas for the stream to read.

    The task runs whether or not anyone reads the stream, so the request's
    slot is freed when vLLM finishes it; cancelling the task aborts the
    request in vLLM (``AsyncLLM.generate`` does that when it is cancelled).
    The text that arrived since the stream last read goes out as one delta,
    as vLLM's own server merges the deltas of a slow reader: under load a
    stream sends fewer, longer events instead of falling behind.
    """

    def __init__(self, request: GenerationRequest, outputs: AsyncIterator[Any], counter: RequestCounter) -> None:
        """Start reading *outputs*; *counter* has admitted ``request.request_id`` and is released at the end."""
        self.request = request
        self._counter = counter
        self._text: list[str] = []  # vLLM's text deltas (already detokenised and cut at stop strings) not yet read
        self._logprobs: list[TokenLogprob] = []  # their tokens' log probabilities, when the request asks
        self._end: Finished | BaseException | None = None
        self._arrived = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._tokens = 0
        self._reason: FinishReason = "cancelled"
        self.lora: Any = None  # the LoRARequest it runs with, so an unloaded adapter waits for it
        self._task = self._loop.create_task(self._pump(outputs), name=f"azinfer-vllm-{request.request_id}")
        self._task.add_done_callback(self._ended)

    async def _pump(self, outputs: AsyncIterator[Any]) -> None:
        top = self.request.params.logprobs
        async for output in outputs:
            completion = output.outputs[0]
            self._tokens += len(completion.token_ids)
            logprobs = () if top is None else tuple(
                _token_logprob(token, position, top) for token, position in zip(completion.token_ids, completion.logprobs))
            if completion.text or logprobs:
                self._text.append(completion.text)
                self._logprobs.extend(logprobs)
                self._arrived.set()
            if output.finished:
                if completion.finish_reason not in _FINISH_REASONS:
                    raise GenerationError(f"vLLM ended the request with {completion.finish_reason!r}")
                self._reason = _FINISH_REASONS[completion.finish_reason]

    def _ended(self, task: asyncio.Task[None]) -> None:
        # A task cancelled before it ran never entered its body: this callback
        # is the one place that sees every ending.
        error = None if task.cancelled() else task.exception()
        reason: FinishReason = "error" if error is not None else self._reason
        self._counter.release(self.request.request_id, reason)
        if error is not None:
            log.warning("request %s failed in vLLM: %s", self.request.request_id, error)
            self._end = error
        else:
            self._end = Finished(reason, len(self.request.prompt_ids), self._tokens)
        self._arrived.set()

    async def stream(self) -> AsyncIterator[TextDelta | Finished]:
        """Yield text deltas (each the text that arrived since the last), then one :class:`Finished`.

        :raises GenerationError: vLLM failed while generating this request.
        """
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            end = self._end  # before the text: every delta arrives before the end
            if self._text:
                delta = TextDelta("".join(self._text), tuple(self._logprobs))
                self._text.clear()
                self._logprobs.clear()
                yield delta
            if isinstance(end, BaseException):
                raise GenerationError(f"generation failed: {end}") from end
            if end is not None:
                yield end
                return

    def cancel(self) -> None:
        """Abort the request in vLLM (any thread, idempotent)."""
        if not self._task.done():
            self._loop.call_soon_threadsafe(self._task.cancel)


def _token_logprob(token_id: int, position: dict[int, Any], top: int) -> TokenLogprob:
    """vLLM's log probabilities of one position (the sampled token first, then the most likely) as its server reports them."""
    chosen = position[token_id]
    return TokenLogprob(chosen.decoded_token or "", chosen.logprob,
                        tuple((p.decoded_token or "", p.logprob) for p in list(position.values())[:top]))


class VllmEngine(Engine):
    """An ``AsyncLLM`` with the azinfer admission, tokenizer and stream; see the module docstring.

    Every sampling extension goes to vLLM as it is, and so does ``logprobs``;
    vLLM's log probabilities are passed on in its server's order (:func:`_token_logprob`).

    :param llm: the started ``vllm.v1.engine.async_llm.AsyncLLM``.
    :param tokenizer: the model's tokenizer, as the other engines use it.
    :param lora: the ``LoRARequest`` every request carries, or ``None`` (merged or no adapter).
    :param max_queue: requests admitted beyond those vLLM runs at once (:func:`running_capacity`) before 429.
    :param cleanup: a folder of merged weights to delete on :meth:`close`.
    :param max_lora_rank: the largest rank an adapter loaded at run time may have; ``None``: no run-time adapters.
    """

    def __init__(
        self,
        llm: Any,
        tokenizer: ChatTokenizer,
        *,
        lora: Any = None,
        max_queue: int,
        cleanup: Path | None = None,
        max_lora_rank: int | None = None,
    ) -> None:
        self.name = "vllm"
        self._llm = llm
        self.tokenizer = tokenizer
        self._lora = lora
        self.max_batch_size = running_capacity(llm.vllm_config)
        self._counter = RequestCounter(self.max_batch_size + max_queue)
        self._generations: set[VllmGeneration] = set()
        self._cleanup = cleanup
        self._max_lora_rank = max_lora_rank
        self._loras: dict[str, Any] = {}  # adapter name -> its LoRARequest
        self._next_lora_id = 2  # 1 is the default adapter's

    @property
    def adapter(self) -> str:
        """How the adapter is served: ``merged``, ``lora`` or ``none``."""
        return "lora" if self._lora is not None else ("merged" if self._cleanup is not None else "none")

    @property
    def context_length(self) -> int:
        """vLLM's ``max_model_len`` for this model."""
        return int(self._llm.model_config.max_model_len)

    async def encode_chat(self, messages: Sequence[ChatTurn]) -> list[int]:
        """See :meth:`Engine.encode_chat`.

        :raises PromptTooLongError: the conversation has more characters than can fit the context.
        :raises InvalidRequestError: the chat template rejects the conversation.
        """
        return await self.tokenizer.encode(messages)

    def _sampling(self, request: GenerationRequest) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        params = request.params
        return SamplingParams(
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=1.0 if params.greedy else params.top_p,
            seed=None if params.greedy else params.seed,
            stop=list(params.stop),
            # vLLM's own extensions, checked with its ranges already (SamplingParams in base.py)
            top_k=params.top_k,
            min_p=params.min_p,
            repetition_penalty=params.repetition_penalty,
            presence_penalty=params.presence_penalty,
            frequency_penalty=params.frequency_penalty,
            min_tokens=params.min_tokens,
            ignore_eos=params.ignore_eos,
            stop_token_ids=list(params.stop_token_ids),
            logprobs=params.logprobs,
            output_kind=RequestOutputKind.DELTA,
        )

    async def submit(self, request: GenerationRequest) -> Generation:
        """Admit *request* and start it in vLLM (see :meth:`Engine.submit`).

        :raises QueueFullError: running and waiting requests fill the queue.
        """
        from vllm.inputs import tokens_input

        if request.adapter is not None and request.adapter not in self._loras:
            raise InvalidRequestError("model", f"no adapter {request.adapter!r} is loaded", "model_not_found")
        lora = self._loras[request.adapter] if request.adapter is not None else self._lora
        self._counter.admit(request.request_id)
        outputs = self._llm.generate(
            tokens_input(list(request.prompt_ids)), self._sampling(request), request.request_id, lora_request=lora
        )
        generation = VllmGeneration(request, outputs, self._counter)
        generation.lora = lora
        self._generations.add(generation)
        generation._task.add_done_callback(lambda _: self._generations.discard(generation))
        return generation

    async def load_adapter(self, name: str, path: str) -> None:
        """Add the adapter in *path* to vLLM as *name* (see :meth:`Engine.load_adapter`).

        :raises AdapterError: started without run-time adapters, the rank is above ``--max-lora-rank``,
            or vLLM cannot load it.
        """
        if self._max_lora_rank is None:
            await super().load_adapter(name, path)
            return
        from vllm.lora.request import LoRARequest

        try:
            rank = _lora_rank(Path(path))
        except (OSError, ValueError, ServeError) as error:
            raise AdapterError(f"cannot load adapter {name!r} from {path}: {error}") from error
        if rank > self._max_lora_rank:
            raise AdapterError(f"adapter {name!r} has LoRA rank {rank}, above --max-lora-rank {self._max_lora_rank}")
        lora = LoRARequest(name, self._next_lora_id, path)
        self._next_lora_id += 1
        try:
            await self._llm.add_lora(lora)
        except Exception as error:  # vLLM raises many kinds for a folder it cannot load
            raise AdapterError(f"vLLM cannot load adapter {name!r} from {path}: {error}") from error
        old = self._loras.get(name)
        self._loras[name] = lora
        if old is not None:
            await self._retire(old)
        log.info("loaded adapter %s from %s", name, path)

    async def unload_adapter(self, name: str) -> None:
        """Refuse new requests for *name* now; remove it from vLLM once its requests in flight end."""
        if self._max_lora_rank is None:
            await super().unload_adapter(name)
        lora = self._loras.pop(name, None)
        if lora is not None:
            await self._retire(lora)

    async def _retire(self, lora: Any) -> None:
        while any(g.lora is lora for g in self._generations):
            await asyncio.sleep(0.05)
        await self._llm.remove_lora(lora.lora_int_id)
        log.info("unloaded adapter %s (LoRA %d)", lora.lora_name, lora.lora_int_id)

    def stats(self) -> EngineStats:
        """Admitted requests (those past the batch size wait in vLLM's queue) and finished ones."""
        admitted = self._counter.in_flight
        running = min(admitted, self.max_batch_size)
        return EngineStats(running=running, waiting=admitted - running, finished=self._counter.finished(),
                           batch_size=self.max_batch_size)

    def close(self) -> None:
        """Abort every request, stop vLLM's processes and delete merged weights."""
        for generation in list(self._generations):
            generation.cancel()
        self._llm.shutdown()
        self.tokenizer.close()
        if self._cleanup is not None:
            shutil.rmtree(self._cleanup, ignore_errors=True)


def running_capacity(vllm_config: Any) -> int:
    """Requests vLLM runs at once: its ``max_num_seqs``, or fewer when its KV cache holds fewer whole contexts.

    The KV cache's tokens (blocks times block size) over ``max_model_len`` is
    what vLLM logs as its "maximum concurrency": that many requests run
    without one waiting for another's cache even if each fills the context.
    """
    seqs = int(vllm_config.scheduler_config.max_num_seqs)
    cache = vllm_config.cache_config
    if not cache.num_gpu_blocks:  # unknown (not reported by the engine core): the scheduler's bound alone
        return seqs
    contexts = int(cache.num_gpu_blocks) * int(cache.block_size) // int(vllm_config.model_config.max_model_len)
    return max(1, min(seqs, contexts))


def _lora_rank(adapter_dir: Path) -> _LoraRank:
    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    return _rounded_rank(max([int(config.get("r", 8)), *(int(r) for r in (config.get("rank_pattern") or {}).values())]))


def _readable(adapter_dir: Path) -> bool:
    """Whether the adapter's config can be read (a broken one is refused when it loads, naming the fault)."""
    try:
        _lora_rank(adapter_dir)
        return True
    except (OSError, ValueError, TypeError, ServeError):
        return False


def _rounded_rank(rank: int) -> _LoraRank:
    """*rank* rounded up to one vLLM can be configured for."""
    for allowed in _LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise ServeError(f"LoRA rank {rank} is above vLLM's largest ({_LORA_RANKS[-1]})")


def _weights_and_lora(settings: ServeSettings, paths: ModelPaths) -> tuple[Path, Path | None, Path | None]:
    """The folder vLLM loads, the adapter to serve as a LoRA (if any), and a folder to delete on close."""
    if paths.adapter_dir is None:
        return paths.model_dir, None, None
    if not settings.merge or paths.runtime_adapters:
        return paths.model_dir, paths.adapter_dir, None
    from azinfer.serve.engine.lora_merge import MergeUnsupported, merge_adapter

    started = time.monotonic()
    merged = Path(tempfile.mkdtemp(prefix="azinfer-merged-"))  # local disk; TMPDIR moves it
    try:
        merge_adapter(paths.model_dir, paths.adapter_dir, merged)
    except MergeUnsupported as error:
        shutil.rmtree(merged, ignore_errors=True)
        log.warning("serving the adapter as a LoRA: %s", error)
        return paths.model_dir, paths.adapter_dir, None
    except OSError as error:
        shutil.rmtree(merged, ignore_errors=True)
        log.warning("serving the adapter as a LoRA: merging into %s failed: %s", merged, error)
        return paths.model_dir, paths.adapter_dir, None
    log.info("merged the adapter into %s in %.1f s", merged, time.monotonic() - started)
    return merged, None, merged


def start_vllm_engine(settings: ServeSettings, paths: ModelPaths) -> VllmEngine:
    """Merge the adapter (unless ``--no-merge``), start vLLM's engine and wrap it.

    :raises ServeError: vLLM is not installed, 4-bit loading is asked for, or vLLM cannot load the model.
    """
    if settings.load_in_4bit:
        raise ServeError("--load-in-4bit works with the batched engine only; drop it or pass --engine batched")
    try:
        from transformers import AutoTokenizer
        from vllm import AsyncEngineArgs
        from vllm.lora.request import LoRARequest
        from vllm.usage.usage_lib import UsageContext
        from vllm.v1.engine.async_llm import AsyncLLM
    except ImportError as error:
        raise ServeError(f"--engine vllm needs vLLM: {error}") from error

    import torch

    from vllm.v1.metrics.loggers import PrometheusStatLogger

    weights, lora_dir, cleanup = _weights_and_lora(settings, paths)
    ranks = [_lora_rank(d) for d in [*([lora_dir] if lora_dir else []), *paths.adapters.values()] if _readable(d)]
    max_rank = _rounded_rank(max([*ranks, *([settings.max_lora_rank] if paths.runtime_adapters else [])], default=16))
    args = AsyncEngineArgs(
        model=str(weights),
        tokenizer=str(weights),
        # On a GPU the checkpoint's dtype (bf16, fp16 where bf16 is missing); on a CPU
        # float32 as the batched engine, where vLLM's "auto" would pick bf16.
        dtype="auto" if torch.cuda.is_available() else "float32",
        # None: vLLM's default for this platform, as its own server picks it (the usage context below).
        max_num_seqs=settings.max_batch_size,
        enable_lora=lora_dir is not None or paths.runtime_adapters,
        max_lora_rank=max_rank,
        max_loras=settings.max_loras if paths.runtime_adapters else 1,
        # The request's own sampling values only, as with the other engines.
        generation_config="vllm",
        # No periodic log lines; the Prometheus logger alone (below) keeps vLLM's metrics for /metrics,
        # and without it (--no-engine-metrics) vLLM computes no statistics at all.
        disable_log_stats=True,
    )
    try:
        llm = AsyncLLM.from_engine_args(args, usage_context=UsageContext.OPENAI_API_SERVER,
                                        stat_loggers=[PrometheusStatLogger] if settings.engine_metrics else None)
        tokenizer = AutoTokenizer.from_pretrained(weights, local_files_only=True)
    except Exception as error:  # vLLM raises many kinds; each means this model cannot be served
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
        raise ServeError(f"vLLM cannot serve {paths.model_dir} (adapter {paths.adapter_dir}): {error}") from error
    lora = LoRARequest("adapter", 1, str(lora_dir)) if lora_dir is not None else None
    context = int(llm.model_config.max_model_len)
    engine = VllmEngine(
        llm,
        ChatTokenizer(tokenizer, context, settings.prompt_template),
        lora=lora,
        max_queue=settings.max_queue,
        cleanup=cleanup,
        max_lora_rank=max_rank if paths.runtime_adapters else None,
    )
    log.info("vLLM serves %s, adapter %s, context %d tokens; %d requests run at once (max_num_seqs %d, "
             "KV cache %s blocks of %d tokens), %d more wait before 429", paths.model_name, engine.adapter, context,
             engine.max_batch_size, llm.vllm_config.scheduler_config.max_num_seqs,
             llm.vllm_config.cache_config.num_gpu_blocks, llm.vllm_config.cache_config.block_size, settings.max_queue)
    return engine
