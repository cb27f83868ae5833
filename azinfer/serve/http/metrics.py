"""``GET /metrics``: the server's metrics in Prometheus' text format, through ``prometheus_client``.

Each app has its own registry (a process may hold several apps, as the tests
do); the answer is that registry followed by ``prometheus_client``'s default
one, which holds the process's metrics and, with the vLLM engine, vLLM's own
engine metrics (``vllm:*``). Metrics of a request carry the model it asked
for (the base model's id or an adapter's name) as the ``model`` label; a
model the server does not serve counts as ``unknown``, so clients cannot
grow the label set.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from azinfer.serve.engine.base import EngineStats, Finished, TextDelta

__all__ = ["UNKNOWN_MODEL", "ServeMetrics"]

UNKNOWN_MODEL = "unknown"
# Seconds: from a few milliseconds (a GPU step) to the 240 s of Azure's ingress.
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 240)
_TBT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class ServeMetrics:
    """The server's metrics; :meth:`observe` measures one generation, :meth:`render` answers a scrape."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.running = Gauge("azinfer_requests_running", "Requests the engine is generating now", registry=r)
        self.waiting = Gauge("azinfer_requests_waiting", "Requests admitted and waiting for a batch slot", registry=r)
        self.occupancy = Gauge("azinfer_batch_occupancy", "Running requests over the batch size (0 to 1)", registry=r)
        self.in_flight = Gauge("azinfer_requests_in_flight", "Requests admitted and not yet answered", ["model"],
                               registry=r)
        self.ttft = Histogram("azinfer_time_to_first_token_seconds", "From admission to the first text",
                              ["model"], buckets=_TTFT_BUCKETS, registry=r)
        self.tbt = Histogram("azinfer_time_between_tokens_seconds", "Between two texts of a stream (a token each, but for text held back at a stop string)",
                             ["model"], buckets=_TBT_BUCKETS, registry=r)
        self.prompt_tokens = Counter("azinfer_prompt_tokens", "Prompt tokens of finished requests", ["model"],
                                     registry=r)
        self.generation_tokens = Counter("azinfer_generation_tokens", "Tokens generated", ["model"], registry=r)
        self.finished = Counter("azinfer_requests_finished", "Requests that ended, by finish reason",
                                ["model", "finish_reason"], registry=r)
        self.errors = Counter("azinfer_request_errors", "Requests answered with an error, by its code",
                              ["model", "kind"], registry=r)

    async def observe(self, events: AsyncIterator[TextDelta | Finished], model: str
                      ) -> AsyncIterator[TextDelta | Finished]:
        """Pass *events* through, measuring the time to the first text, between texts, and the tokens."""
        started = last = time.monotonic()
        first = True
        ttft, tbt = self.ttft.labels(model), self.tbt.labels(model)  # looked up once, not per token
        self.in_flight.labels(model).inc()
        try:
            async for event in events:
                now = time.monotonic()
                if isinstance(event, Finished):
                    self.prompt_tokens.labels(model).inc(event.prompt_tokens)
                    self.generation_tokens.labels(model).inc(event.completion_tokens)
                    self.finished.labels(model, event.reason).inc()
                elif event.text:  # a delta with only a token's log probability (text held back) is no text
                    if first:
                        ttft.observe(now - started)
                        first = False
                    else:
                        tbt.observe(now - last)
                    last = now
                yield event
        finally:
            self.in_flight.labels(model).dec()

    def error(self, model: str, kind: str) -> None:
        """Count a request answered with the error code *kind*."""
        self.errors.labels(model, kind).inc()

    def render(self, stats: EngineStats | None) -> bytes:
        """The text of a scrape: this registry with the engine's counts now, then the default registry."""
        if stats is not None:
            self.running.set(stats.running)
            self.waiting.set(stats.waiting)
            self.occupancy.set(stats.running / stats.batch_size)
        return generate_latest(self.registry) + generate_latest(REGISTRY)
