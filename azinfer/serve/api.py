"""The FastAPI app: OpenAI-compatible ``/v1`` routes, probes, and the chat UI at ``/``.

The model loads in a background thread after the app starts, so ``/health``
answers at once and ``/ready`` turns 200 when the engine is ready.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from azinfer.serve import protocol
from azinfer.serve.auth import bearer_token, key_matches
from azinfer.serve.engine.base import (
    ChatTurn,
    Engine,
    Finished,
    Generation,
    GenerationError,
    InvalidRequestError,
    QueueFullError,
    SamplingParams,
    TextDelta,
)
from azinfer.serve.settings import ServeSettings

__all__ = ["create_app"]

log = logging.getLogger(__name__)


class ApiError(HTTPException):
    """An error answered with an OpenAI-style body."""

    def __init__(
        self, status: int, message: str, error_type: str, code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code=status, detail=message, headers=headers)
        self.error_type = error_type
        self.code = code


def _error_response(status: int, message: str, error_type: str, code: str | None, headers: Any = None) -> JSONResponse:
    return JSONResponse(protocol.error_body(message, error_type, code), status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}" for e in error.errors()
        )
        return _error_response(400, f"invalid request: {problems}", "invalid_request_error", "invalid_request")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        error_type = getattr(error, "error_type", "invalid_request_error" if error.status_code < 500 else "server_error")
        return _error_response(error.status_code, str(error.detail), error_type, getattr(error, "code", None), error.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error_response(500, "internal server error", "server_error", None)


def _require_key(settings: ServeSettings) -> Callable[[Request], None]:
    def check(request: Request) -> None:
        if not key_matches(settings.api_key, bearer_token(request.headers.get("authorization"))):
            raise ApiError(
                401,
                "missing or incorrect API key: send 'Authorization: Bearer <key>'",
                "invalid_request_error",
                "invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check


def _sse(body: dict[str, Any] | str) -> str:
    return f"data: {body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)}\n\n"


async def _cancel_on_disconnect(request: Request, handle: Generation) -> None:
    while True:
        if await request.is_disconnected():
            handle.cancel()
            return
        await asyncio.sleep(0.1)


class _Completions:
    """The ``/v1/chat/completions`` handler and its two answer shapes."""

    def __init__(self, settings: ServeSettings, model_name: str, engine: Callable[[], Engine | None]) -> None:
        self.settings = settings
        self.model_name = model_name
        self.engine = engine

    async def answer(self, body: protocol.ChatCompletionRequest, request: Request) -> Any:
        """Answer one request, streamed or whole.

        :raises ApiError: not ready (503), unknown model (404), bad prompt (400), queue full (429).
        """
        engine = self.engine()
        if engine is None:
            raise ApiError(503, "the model is still loading", "server_error", "model_loading", {"Retry-After": "5"})
        if body.model != self.model_name:
            raise ApiError(404, f"model {body.model!r} does not exist; this server serves {self.model_name!r}",
                           "invalid_request_error", "model_not_found")
        try:
            params = SamplingParams(
                max_tokens=body.max_completion_tokens or body.max_tokens or self.settings.default_max_tokens,
                temperature=body.temperature,
                top_p=body.top_p,
                seed=body.seed,
                stop=body.stop_strings(),
            )
            handle = await engine.start_chat([ChatTurn(**m.as_template_message()) for m in body.messages], params)
        except QueueFullError as error:
            raise ApiError(429, str(error), "rate_limit_error", "rate_limit_exceeded",
                           {"Retry-After": str(error.retry_after)}) from error
        except InvalidRequestError as error:
            raise ApiError(400, str(error), "invalid_request_error", error.code) from error
        completion_id = protocol.new_completion_id()
        if body.stream:
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            return StreamingResponse(
                self._stream(handle, completion_id, include_usage),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return await self._whole(request, handle, completion_id)

    async def _whole(self, request: Request, handle: Generation, completion_id: str) -> dict[str, Any]:
        watcher = asyncio.create_task(_cancel_on_disconnect(request, handle))
        parts: list[str] = []
        try:
            async for event in handle.stream():
                if isinstance(event, TextDelta):
                    parts.append(event.text)
                else:
                    finished = event
        except GenerationError as error:
            raise ApiError(500, str(error), "server_error") from error
        finally:
            watcher.cancel()
            handle.cancel()
        return protocol.completion_body(completion_id, self.model_name, "".join(parts), finished.reason,
                                        finished.prompt_tokens, finished.completion_tokens)

    async def _stream(self, handle: Generation, completion_id: str, include_usage: bool) -> AsyncIterator[str]:
        # Starlette cancels this generator when the client disconnects; the
        # finally block then stops the generation.
        try:
            yield _sse(protocol.chunk_body(completion_id, self.model_name, {"role": "assistant", "content": ""}))
            async for event in handle.stream():
                if isinstance(event, TextDelta):
                    yield _sse(protocol.chunk_body(completion_id, self.model_name, {"content": event.text}))
                elif isinstance(event, Finished):
                    yield _sse(protocol.chunk_body(completion_id, self.model_name, {}, event.reason))
                    if include_usage:
                        usage = (event.prompt_tokens, event.completion_tokens)
                        yield _sse(protocol.chunk_body(completion_id, self.model_name, None, usage=usage))
        except GenerationError as error:
            yield _sse(protocol.error_body(str(error), "server_error"))
        finally:
            handle.cancel()
        yield _sse("[DONE]")


def create_app(
    settings: ServeSettings,
    model_name: str,
    start_engine: Callable[[], Engine],
    on_load_failure: Callable[[BaseException], None] = lambda error: None,
) -> FastAPI:
    """Build the app; *start_engine* runs in a background thread when the app starts.

    :param on_load_failure: called when *start_engine* raises (the server should then exit).
    """
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        def load() -> None:
            try:
                app.state.engine = start_engine()
            except Exception as error:
                log.error("the model could not be loaded: %s", error)
                on_load_failure(error)

        threading.Thread(target=load, name="azinfer-load", daemon=True).start()
        yield
        if app.state.engine is not None:
            app.state.engine.close()

    app = FastAPI(title="azinfer", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = None
    _install_error_handlers(app)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        if app.state.engine is None:
            return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "5"})
        return JSONResponse({"status": "ready", "model": model_name})

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(_require_key(settings))])
    created = int(time.time())

    @v1.get("/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": created, "owned_by": "azinfer"}]}

    completions = _Completions(settings, model_name, lambda: app.state.engine)

    @v1.post("/chat/completions")
    async def chat_completions(body: protocol.ChatCompletionRequest, request: Request) -> Any:
        return await completions.answer(body, request)

    app.include_router(v1)

    from azinfer.serve.ui import mount_ui

    return mount_ui(app, settings, lambda: app.state.engine)
