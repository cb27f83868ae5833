"""Put the pieces together: settings to paths, a starter for the engine, the app, and uvicorn with its limits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from azinfer.errors import ServeError
from azinfer.serve.discovery import ModelPaths, resolve_model_paths
from azinfer.serve.engine.base import Engine
from azinfer.serve.settings import ServeSettings

__all__ = ["ENGINES", "build_server", "choose_engine", "serve", "start_engine"]

log = logging.getLogger(__name__)


def _batched(settings: ServeSettings, paths: ModelPaths) -> Engine:
    from azinfer.serve.engine.batched import start_batched_engine

    return start_batched_engine(settings, paths)


def _baseline(settings: ServeSettings, paths: ModelPaths) -> Engine:
    from azinfer.serve.engine.baseline import start_baseline_engine

    return start_baseline_engine(settings, paths)


def _vllm(settings: ServeSettings, paths: ModelPaths) -> Engine:
    from azinfer.serve.engine.vllm import start_vllm_engine

    return start_vllm_engine(settings, paths)


# One starter per ``--engine`` value, each given the same settings; each imports its heavy modules itself.
ENGINES: dict[str, Callable[[ServeSettings, ModelPaths], Engine]] = {
    "batched": _batched, "baseline": _baseline, "vllm": _vllm,
}


def choose_engine(settings: ServeSettings) -> str:
    """The engine to run: the one *settings* names, or for ``auto`` vLLM when a CUDA GPU and vLLM are there.

    4-bit loading is the batched engine's, so ``auto`` picks that with ``--load-in-4bit``.
    """
    if settings.engine != "auto":
        return settings.engine
    import torch

    from azinfer.serve.engine.vllm import vllm_available

    gpu, vllm = torch.cuda.is_available(), vllm_available()
    engine = "vllm" if gpu and vllm and not settings.load_in_4bit else "batched"
    log.info("engine auto: %s (CUDA GPU %s, vLLM %s)", engine, "found" if gpu else "absent", "installed" if vllm else "absent")
    return engine


def start_engine(settings: ServeSettings, paths: ModelPaths) -> Engine:
    """Load the model and start the engine *settings* names (see :func:`choose_engine`).

    :raises ServeError: the model cannot be loaded.
    """
    return ENGINES[choose_engine(settings)](settings, paths)


def build_server(settings: ServeSettings) -> Any:
    """Resolve the model folders and build the uvicorn server; the model loads once it runs.

    If loading fails, the server stops and its ``load_error`` attribute holds the error.

    :raises ServeError: no model or adapter is found, or the host is not allowed without a key.
    """
    import uvicorn

    from azinfer.serve.http.app import create_app
    from azinfer.serve.http.auth import HideQuery
    from azinfer.serve.http.limits import HeadLimits, fit_connection_cap, guarded_protocol, http_protocol

    host = settings.bind_host
    paths = resolve_model_paths(settings)
    server: Any = None

    def failed(error: BaseException) -> None:
        server.load_error = error
        server.should_exit = True

    app = create_app(settings, paths.model_name, lambda: start_engine(settings, paths), failed)
    limits = HeadLimits(settings.max_header_bytes, settings.max_headers, settings.max_request_line, settings.header_timeout)
    protocol = guarded_protocol(http_protocol(settings.http), fit_connection_cap(settings.max_connections), limits)
    config = uvicorn.Config(
        app,
        host=host,
        port=settings.port,
        http=protocol,
        h11_max_incomplete_event_size=settings.max_header_bytes,  # httptools' bound is the protocol's
        log_level="info",
        timeout_graceful_shutdown=5,
        # The client's address is the peer's: a forged X-Forwarded-For must not change what is logged.
        proxy_headers=False,
    )
    access_log = logging.getLogger("uvicorn.access")  # after Config, which sets up uvicorn's logging
    if not any(isinstance(f, HideQuery) for f in access_log.filters):
        access_log.addFilter(HideQuery())
    server = uvicorn.Server(config)
    server.load_error = None
    if not settings.api_key:
        log.warning("no API key set: /v1 and the chat page are open to anyone who can reach %s", host)
    return server


def serve(settings: ServeSettings) -> None:
    """Serve until stopped.

    :raises ServeError: the model cannot be found or loaded.
    """
    server = build_server(settings)
    server.run()
    if server.load_error is not None:
        raise ServeError(f"the model could not be loaded: {server.load_error}")
