"""The ASGI app: OpenAI-compatible ``/v1`` routes, probes, and the chat page at ``/``.

It knows engines only through :class:`~azinfer.serve.engine.base.Engine`.
A request's ``model`` picks the base model or a named adapter
(:class:`~azinfer.serve.adapters.AdapterCatalog`); behind the key, the admin
routes load and unload adapters, and ``/metrics`` answers Prometheus.
The model loads in a background thread after the app starts, so ``/health``
answers at once and ``/ready`` turns 200 when the engine is ready. Every
error, the framework's 404 and 405 included, has OpenAI's error body.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from azinfer.errors import AdapterError
from azinfer.serve.adapters import AdapterCatalog
from azinfer.serve.discovery import ModelPaths
from azinfer.serve.engine.base import (
    Engine,
    Finished,
    Generation,
    GenerationError,
    InvalidRequestError,
    QueueFullError,
    TextDelta,
    TokenLogprob,
)
from azinfer.serve.http import wire
from azinfer.serve.http.auth import KeyCheck, Receive, Scope, Send
from azinfer.serve.http.limits import BodyError, read_body
from azinfer.serve.http.metrics import UNKNOWN_MODEL, ServeMetrics
from azinfer.serve.settings import ServeSettings, named_adapters

__all__ = ["OPEN_PATHS", "create_app"]

log = logging.getLogger(__name__)

# The chat page's files: name in the package, content type.
_PAGE_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/chat.js": ("chat.js", "text/javascript; charset=utf-8"),
    "/chat.css": ("chat.css", "text/css; charset=utf-8"),
}
# Routes open without the key; all answer GET (and HEAD) only and store nothing.
OPEN_PATHS = frozenset({"/health", "/ready", *_PAGE_FILES})
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class ApiError(HTTPException):
    """An error answered with OpenAI's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        error_type: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.error_type = error_type
        self.code = code
        self.param = param


class _AsciiJSON(JSONResponse):
    """JSON with every non-ASCII character escaped: an error may quote a client's text, lone surrogates included."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode("ascii")


def _error_response(status: int, message: str, error_type: str, code: str | None = None,
                    param: str | None = None, headers: Any = None) -> JSONResponse:
    return _AsciiJSON(wire.error_body(message, error_type, code, param), status_code=status, headers=headers)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if isinstance(error, ApiError):
        return _error_response(error.status_code, str(error.detail), error.error_type, error.code, error.param,
                               error.headers)
    if error.status_code == 404:
        message, code = f"no route {request.url.path}", "not_found"
    elif error.status_code == 405:
        message, code = f"{request.method} is not allowed on {request.url.path}", "method_not_allowed"
    else:
        message, code = str(error.detail), None
    error_type = "invalid_request_error" if error.status_code < 500 else "server_error"
    return _error_response(error.status_code, message, error_type, code, headers=error.headers)


async def _unexpected(request: Request, error: Exception) -> Response:
    # Starlette raises the error on after this answer, so the server logs its traceback.
    return _error_response(500, "internal server error", "server_error")


def _freeze_heap() -> None:
    """Move what loading made (the libraries, the model's objects) out of the collector's sight, as vLLM's server does.

    Collections of the oldest generation then skip it: they otherwise pause
    the event loop for longer the more was loaded.
    """
    gc.collect()
    gc.freeze()


def _sse(body: dict[str, Any] | str) -> bytes:
    return f"data: {body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)}\n\n".encode()


async def _cancel_on_disconnect(receive: Receive, generation: Generation) -> None:
    """Wait for the client to go away (the body is read already), then stop its generation."""
    while (await receive())["type"] != "http.disconnect":
        pass
    generation.cancel()


class _EventStream(Response):
    """A streamed completion: server-sent events, ending with ``data: [DONE]``.

    A client that goes away cancels the generation at once, even while no
    text is being sent (waiting for a slot, or text held back for a stop string).
    """

    def __init__(self, events: Callable[[], AsyncIterator[bytes]], generation: Generation) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]
        self._events = events
        self._generation = generation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.create_task(_cancel_on_disconnect(receive, self._generation))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async for event in self._events():
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except (OSError, ClientDisconnect):
            pass  # the client went away mid-stream
        finally:
            watcher.cancel()
            self._generation.cancel()


class _Completions:
    """``POST /v1/chat/completions``: read, check, generate, answer whole or streamed."""

    def __init__(self, settings: ServeSettings, model_name: str, engine: Callable[[], Engine | None],
                 catalog: AdapterCatalog, metrics: ServeMetrics) -> None:
        self.settings = settings
        self.model_name = model_name
        self.engine = engine
        self.catalog = catalog
        self.metrics = metrics

    async def answer(self, request: Request) -> Response:
        """Answer one request; errors are counted by their code.

        :raises ApiError: loading (503), too large or slow a body (413, 408), a bad request (400),
            another model (404), the engine full (429), the generation failed (500).
        """
        try:
            return await self._answer(request)
        except ApiError as error:
            # Labelled by the model once it is known to be served (clients cannot grow the label set).
            self.metrics.error(getattr(request.state, "model", UNKNOWN_MODEL), error.code or "error")
            raise

    async def _answer(self, request: Request) -> Response:
        engine = self.engine()
        if engine is None:
            raise ApiError(503, "the model is still loading", "server_error", "model_loading", {"Retry-After": "5"})
        try:
            body = await read_body(request, self.settings.max_body_bytes, self.settings.body_timeout)
        except BodyError as error:
            code = "request_too_large" if error.status == 413 else "request_timeout"
            raise ApiError(error.status, str(error), "invalid_request_error", code, {"Connection": "close"}) from None
        except ClientDisconnect:  # gone before its body arrived: nobody to answer
            return Response(status_code=400, headers={"Connection": "close"})
        try:
            # In a worker thread: a body at the limits still costs a few hundred ms of parsing and checks.
            chat = await asyncio.to_thread(wire.parse_chat_request, body, self.settings.default_max_tokens)
            adapter = self._adapter(chat.model)
            request.state.model = chat.model
            generation = await engine.start_chat(chat.messages, chat.params, adapter)
        except InvalidRequestError as error:
            raise ApiError(400, str(error), "invalid_request_error", error.code, param=error.param) from None
        except QueueFullError as error:
            raise ApiError(429, str(error), "rate_limit_error", "rate_limit_exceeded",
                           {"Retry-After": str(error.retry_after)}) from None
        completion_id = wire.new_completion_id()
        events = self.metrics.observe(generation.stream(), chat.model)
        logprobs = chat.params.logprobs is not None
        if chat.stream:
            return _EventStream(lambda: self._events(events, chat.model, completion_id, chat.include_usage, logprobs),
                                generation)
        return JSONResponse(await self._whole(request, generation, events, chat.model, completion_id, logprobs))

    def _adapter(self, model: str) -> str | None:
        """The adapter *model* names (``None``: the base model's id).

        :raises ApiError: 404, no such model.
        """
        if model == self.model_name:
            return None
        if model in self.catalog.names():
            return model
        served = ", ".join(repr(m) for m in [self.model_name, *self.catalog.names()])
        raise ApiError(404, f"model {model!r} does not exist; this server serves {served}",
                       "invalid_request_error", "model_not_found", param="model")

    async def _whole(self, request: Request, generation: Generation, events: AsyncIterator[TextDelta | Finished],
                     model: str, completion_id: str, logprobs: bool) -> dict[str, Any]:
        watcher = asyncio.create_task(_cancel_on_disconnect(request.receive, generation))
        parts: list[str] = []
        tokens: list[TokenLogprob] = []
        finished: Finished | None = None
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                    tokens += event.logprobs
                else:
                    finished = event
        except GenerationError as error:
            raise ApiError(500, str(error), "server_error", "generation_failed") from None
        finally:
            watcher.cancel()
            generation.cancel()
        assert finished is not None
        return wire.completion_body(completion_id, model, "".join(parts), finished.reason,
                                    finished.prompt_tokens, finished.completion_tokens, tokens if logprobs else None)

    async def _events(self, events: AsyncIterator[TextDelta | Finished], model: str, completion_id: str,
                      include_usage: bool, logprobs: bool) -> AsyncIterator[bytes]:
        yield _sse(wire.chunk_body(completion_id, model, {"role": "assistant", "content": ""}))
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    yield _sse(wire.chunk_body(completion_id, model, {"content": event.text},
                                               logprobs=event.logprobs if logprobs else None))
                else:
                    yield _sse(wire.chunk_body(completion_id, model, {}, event.reason))
                    if include_usage:
                        usage = (event.prompt_tokens, event.completion_tokens)
                        yield _sse(wire.chunk_body(completion_id, model, None, usage=usage))
        except GenerationError as error:
            self.metrics.error(model, "generation_failed")
            yield _sse(wire.error_body(str(error), "server_error", "generation_failed"))
        yield _sse("[DONE]")


def _page_routes() -> list[Route]:
    static = resources.files(__package__).joinpath("static")
    routes = []
    for path, (name, content_type) in _PAGE_FILES.items():
        content = static.joinpath(name).read_bytes()

        async def page(request: Request, content: bytes = content, content_type: str = content_type) -> Response:
            return Response(content, media_type=content_type, headers=_PAGE_HEADERS)

        routes.append(Route(path, page, methods=["GET"]))
    return routes


class _AdapterRoutes:
    """vLLM's admin routes, behind the key: ``POST /v1/load_lora_adapter`` and ``/v1/unload_lora_adapter``."""

    def __init__(self, settings: ServeSettings, engine: Callable[[], Engine | None], catalog: AdapterCatalog) -> None:
        self.settings = settings
        self.engine = engine
        self.catalog = catalog

    async def _body(self, request: Request, fields: tuple[str, ...]) -> tuple[Engine, list[str]]:
        engine = self.engine()
        if engine is None:
            raise ApiError(503, "the model is still loading", "server_error", "model_loading", {"Retry-After": "5"})
        try:
            body = json.loads(await read_body(request, self.settings.max_body_bytes, self.settings.body_timeout))
        except BodyError as error:
            raise ApiError(error.status, str(error), "invalid_request_error", None, {"Connection": "close"}) from None
        except ValueError:
            body = None
        values = []
        for name in fields:
            value = body.get(name) if isinstance(body, dict) else None
            if not isinstance(value, str) or not value:
                raise ApiError(400, f"the body must be a JSON object with the text {name!r}", "invalid_request_error",
                               "invalid_request", param=name)
            values.append(value)
        return engine, values

    async def load(self, request: Request) -> Response:
        """Load (or replace) an adapter from a folder below the share: ``{"lora_name", "lora_path"}``."""
        engine, (name, path) = await self._body(request, ("lora_name", "lora_path"))
        try:
            await self.catalog.load(engine, name, self.catalog.check_api_path(path), "api")
        except AdapterError as error:
            raise ApiError(400, str(error), "invalid_request_error", "adapter_error", param="lora_path") from None
        return JSONResponse({"id": name, "object": "model", "parent": self.catalog.base_name})

    async def unload(self, request: Request) -> Response:
        """Stop serving an adapter: ``{"lora_name"}``; requests in flight for it finish first."""
        engine, (name,) = await self._body(request, ("lora_name",))
        try:
            served = await self.catalog.unload(engine, name)
        except AdapterError as error:
            raise ApiError(400, str(error), "invalid_request_error", "adapter_error", param="lora_name") from None
        if not served:
            raise ApiError(404, f"no adapter {name!r} is served", "invalid_request_error", "model_not_found",
                           param="lora_name")
        return JSONResponse({"id": name, "object": "model", "deleted": True})


def create_app(
    settings: ServeSettings,
    paths: ModelPaths,
    start_engine: Callable[[], Engine],
    on_load_failure: Callable[[BaseException], None] = lambda error: None,
) -> Starlette:
    """The ASGI app; *start_engine* runs in a background thread once the app starts, then the named adapters load.

    ``app.state.engine`` is the engine once it and its adapters are loaded (``None`` before).

    :param on_load_failure: called when *start_engine* or an adapter's loading raises (the server should then exit).
    """
    model_name = paths.model_name
    catalog = AdapterCatalog(model_name, settings.mount_root)
    metrics = ServeMetrics()
    flagged = named_adapters(settings.adapters)

    async def load_adapters(engine: Engine) -> None:
        """The named adapters at start: one given with a flag must load; a broken one on the share is skipped."""
        for name, folder in paths.adapters.items():
            try:
                await catalog.load(engine, name, folder, "flag" if name in flagged else "share")
            except AdapterError as error:
                if name in flagged:
                    raise
                log.error("adapter %s on the share cannot be served: %s", name, error)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        watch: list[concurrent.futures.Future[None]] = []

        def load() -> None:
            try:
                engine = start_engine()
                asyncio.run_coroutine_threadsafe(load_adapters(engine), loop).result()
                _freeze_heap()
                app.state.engine = engine
            except Exception as error:
                log.error("the model could not be loaded: %s", error)
                on_load_failure(error)
                return
            if settings.adapter_poll > 0:
                watch.append(asyncio.run_coroutine_threadsafe(catalog.watch(engine, settings.adapter_poll), loop))

        threading.Thread(target=load, name="azinfer-load", daemon=True).start()
        yield
        for task in watch:
            task.cancel()
        if app.state.engine is not None:
            app.state.engine.close()

    created = int(time.time())

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        if app.state.engine is None:
            return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "5"})
        return JSONResponse({"status": "ready", "model": model_name})

    async def models(request: Request) -> Response:
        base = {"id": model_name, "object": "model", "created": created, "owned_by": "azinfer", "parent": None}
        adapters = [{**base, "id": name, "parent": model_name} for name in sorted(catalog.names())]
        return JSONResponse({"object": "list", "data": [base, *adapters]})

    async def metrics_page(request: Request) -> Response:
        engine = app.state.engine
        text = await asyncio.to_thread(metrics.render, engine.stats() if engine is not None else None)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    completions = _Completions(settings, model_name, lambda: app.state.engine, catalog, metrics)
    admin = _AdapterRoutes(settings, lambda: app.state.engine, catalog)
    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics_page, methods=["GET"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", completions.answer, methods=["POST"]),
            Route("/v1/load_lora_adapter", admin.load, methods=["POST"]),
            Route("/v1/unload_lora_adapter", admin.unload, methods=["POST"]),
            *_page_routes(),
        ],
        middleware=[Middleware(KeyCheck, key=settings.api_key, open_paths=OPEN_PATHS)],
        exception_handlers={HTTPException: _http_error, Exception: _unexpected},
        lifespan=lifespan,
    )
    app.state.engine = None
    return app
