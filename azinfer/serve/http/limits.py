"""Limits that keep one client from holding the server: body size and time, connections, request heads.

- :func:`read_body` reads a request body up to a size (413 past it) within a
  time (408 past it), so a body sent a byte at a time cannot hold a
  connection and a huge one is refused before it fills memory.
- :func:`guarded_protocol` wraps uvicorn's HTTP protocol, h11 or httptools
  (:func:`http_protocol`), with the same limits on both: at most
  ``max_connections`` connections are open; one more closes the connection
  that has waited longest for a request head, or, when none is idle, is
  admitted to a small reserve that answers only the probes
  (:data:`PROBE_PATHS`), and past that is closed at once. A connection must
  deliver each request's head within ``timeout`` seconds of opening or of its
  previous answer. A head is bounded in bytes (431), header lines (431) and
  target length (414), and a request framed both by Content-Length and by
  Transfer-Encoding is refused (400); each of these answers closes the
  connection. uvicorn itself waits for a head forever; half-open connections
  then exhausted the file descriptors and every refused accept logged a
  traceback. With httptools a 200 KB header got 200, and 40 connections
  streaming endless headers for 6 s grew the process by 166 MiB.
- Refusals are logged one line each, at most one line a second with a count
  of those left out, so an attack cannot flood the log.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import resource
import threading
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from azinfer.serve.http.auth import App, Receive, Scope, Send
from azinfer.serve.http.wire import error_body

__all__ = [
    "BodyError",
    "HeadLimits",
    "PROBE_PATHS",
    "ThrottledLog",
    "fit_connection_cap",
    "guarded_protocol",
    "http_protocol",
    "probe_reserve",
    "read_body",
]

log = logging.getLogger(__name__)

# File descriptors kept for everything but connections: model files, logs, the tokenizer's threads.
_RESERVED_FDS = 64


class BodyError(Exception):
    """The request body is too large (413) or too slow (408); ``status`` says which."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


async def read_body(request: Request, max_bytes: int, timeout: float) -> bytes:
    """The whole body of *request*, refusing it by its declared length before reading when too large.

    :raises BodyError: more than *max_bytes* (413), or not all there within *timeout* seconds (408).
    :raises ClientDisconnect: the client went away.
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise BodyError(413, f"the request body is larger than the limit of {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise BodyError(413, f"the request body is larger than the limit of {max_bytes} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise BodyError(408, f"the request body did not arrive within {timeout:g} s") from None
    return b"".join(chunks)


class ThrottledLog:
    """Log a repeated event in one line, at most once per *interval* seconds, counting the lines left out."""

    def __init__(self, logger: logging.Logger, interval: float = 1.0) -> None:
        self._logger = logger
        self._interval = interval
        self._lock = threading.Lock()
        self._last = float("-inf")
        self._skipped = 0

    def warning(self, message: str, *args: Any) -> None:
        """Log *message* unless a line went out less than *interval* seconds ago."""
        with self._lock:
            now = time.monotonic()
            if now - self._last < self._interval:
                self._skipped += 1
                return
            skipped, self._skipped, self._last = self._skipped, 0, now
        suffix = f" ({skipped} more like it since the last such line)" if skipped else ""
        self._logger.warning(message + suffix, *args)


def probe_reserve(max_connections: int) -> int:
    """Connections admitted past the cap when none is idle, which may only ask the probes."""
    return max(4, max_connections // 32)


def fit_connection_cap(requested: int) -> int:
    """The connection cap this process can honour: raise the soft file limit if needed, else lower the cap.

    Accepting past the file limit makes every accept fail (and log); a cap
    below it refuses cleanly instead.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = requested + probe_reserve(requested) + _RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < wanted:
        fitted = max((soft - _RESERVED_FDS) * 32 // 33 - 4, 1)  # room for its probe reserve too
        log.warning("at most %d connections: the file descriptor limit is %d", fitted, soft)
        return fitted
    return requested


# Requests a connection over the cap may still make: the probes, so a full server is not restarted as dead.
PROBE_PATHS = frozenset({"/health", "/ready"})


@dataclass(frozen=True)
class HeadLimits:
    """What one request's head may be: its bytes (line and headers), its header lines, its target's length."""

    max_bytes: int
    max_headers: int
    max_request_line: int
    timeout: float


class _Guard:
    """What the connections of one server share: the open ones, those waiting for a head (oldest first), the log."""

    def __init__(self, max_connections: int, limits: HeadLimits) -> None:
        self.max_connections = max_connections
        self.probe_reserve = probe_reserve(max_connections)
        self.limits = limits
        self.open = 0
        self.idle: dict[Any, None] = {}  # insertion-ordered: the first waited longest
        self.refusals = ThrottledLog(log)


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"


def _abort(transport: asyncio.BaseTransport) -> None:
    """Drop the connection now: a socket's transport aborts (no lingering close); any other closes."""
    if isinstance(transport, asyncio.WriteTransport):
        transport.abort()
    else:
        transport.close()


def _head_too_large(message: str) -> bytes:
    """A whole 431 answer with OpenAI's error body, closing the connection (sent before uvicorn has a request)."""
    body = json.dumps(error_body(message, "invalid_request_error", "request_header_too_large")).encode()
    return (f"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


def _head_problem(scope: Scope, limits: HeadLimits) -> tuple[int, str, str] | None:
    """Why a request's head is refused (status, message, code), or ``None``; the same on every HTTP stack."""
    headers = scope["headers"]
    if len(headers) > limits.max_headers:
        return 431, f"more than {limits.max_headers} header lines (--max-headers)", "too_many_headers"
    target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    # A head that arrived in one read passes h11's own bound (it counts only what waits for more).
    if target + sum(len(name) + len(value) + 4 for name, value in headers) > limits.max_bytes:
        return 431, f"the request head is larger than {limits.max_bytes} bytes (--max-header-bytes)", "request_header_too_large"
    if target > limits.max_request_line:
        return 414, f"the request target is longer than {limits.max_request_line} bytes (--max-request-line)", "uri_too_long"
    names = [name for name, _ in headers]
    if names.count(b"content-length") > 1 or (b"content-length" in names and b"transfer-encoding" in names):
        # RFC 9112 6.3: a message framed two ways may be a smuggling attempt; answer, then close.
        return 400, "the request has both Content-Length and Transfer-Encoding, or Content-Length twice", "bad_framing"
    return None


async def _refuse(send: Send, status: int, message: str, code: str) -> None:
    body = json.dumps(error_body(message, "invalid_request_error", code)).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})


def guarded_protocol(base: type[asyncio.Protocol], max_connections: int, limits: HeadLimits) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's HTTP protocol class *base* (h11 or httptools) with the limits of the module docstring.

    uvicorn builds one protocol object per connection and calls its ASGI app
    (the ``app`` attribute) once a request's head is in; the subclass wraps
    that app to know when a request starts and ends, and counts the bytes of
    a head still arriving (h11 bounds them itself; httptools does not).
    """
    guard = _Guard(max_connections, limits)
    _counts_head = hasattr(base, "on_headers_complete")  # httptools; uvicorn gives h11 the size limit itself

    class GuardedProtocol(base):  # type: ignore[misc, valid-type]
        app: App  # uvicorn's protocols hold the ASGI app here

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._admitted = False
            self._probes_only = False
            self._head_timer: asyncio.TimerHandle | None = None
            self._requests = 0
            self._head_bytes = 0
            self._in_head = True
            self.app = self._tracked(self.app)

        def _tracked(self, app: App) -> App:
            async def tracked(scope: Scope, receive: Receive, send: Send) -> None:
                self._requests += 1
                self._disarm()
                try:
                    problem = _head_problem(scope, guard.limits)
                    if problem is None and self._probes_only and scope.get("path") not in PROBE_PATHS:
                        problem = (503, f"{guard.open} connections are open (--max-connections); only the probes "
                                   "are answered on this one", "server_busy")
                    if problem is not None:
                        guard.refusals.warning("refused request from %s: %s", _peer(self.transport), problem[1])
                        await _refuse(send, *problem)
                        return
                    await app(scope, receive, send)
                finally:
                    self._requests -= 1
                    if not self._requests:
                        self._arm()

            return tracked

        def _arm(self) -> None:
            self._disarm()
            if self._admitted:
                guard.idle[self] = None
                self._head_timer = asyncio.get_running_loop().call_later(guard.limits.timeout, self._head_timed_out)

        def _disarm(self) -> None:
            guard.idle.pop(self, None)
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            transport = getattr(self, "transport", None)
            if transport is not None and not transport.is_closing():
                guard.refusals.warning(
                    "closed connection from %s: no complete request head within %g s (--header-timeout)",
                    _peer(transport), guard.limits.timeout,
                )
                _abort(transport)

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            # An evicted connection counts as open until its close is processed: it made room all the same.
            evicted = guard.open >= guard.max_connections and bool(guard.idle)
            if evicted:
                oldest = next(iter(guard.idle))
                oldest._disarm()
                guard.refusals.warning("closed idle connection from %s: %d connections open (--max-connections)",
                                       _peer(oldest.transport), guard.open)
                _abort(oldest.transport)
            elif guard.open >= guard.max_connections + guard.probe_reserve:
                guard.refusals.warning(
                    "refused connection from %s: %d connections open (--max-connections)", _peer(transport), guard.open
                )
                _abort(transport)
                return
            self._probes_only = guard.open >= guard.max_connections and not evicted
            guard.open += 1
            self._admitted = True
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if not self._admitted:
                return
            self._admitted = False
            guard.open -= 1
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if not self._admitted:
                return
            if self._in_head and _counts_head:
                self._head_bytes += len(data)
            super().data_received(data)
            if self._in_head and self._head_bytes > guard.limits.max_bytes and not self.transport.is_closing():
                message = f"the request head is larger than {guard.limits.max_bytes} bytes (--max-header-bytes)"
                guard.refusals.warning("refused request from %s: %s", _peer(self.transport), message)
                self.transport.write(_head_too_large(message))
                self.transport.close()

        def eof_received(self) -> Any:
            return super().eof_received() if self._admitted else None

        # httptools' parser calls these (h11 has no such hooks, and bounds a head's size itself).
        def on_message_begin(self) -> None:
            self._in_head, self._head_bytes = True, 0
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._in_head = True
            super().on_message_complete()

    GuardedProtocol.__name__ = GuardedProtocol.__qualname__ = f"Guarded{base.__name__}"
    return GuardedProtocol


def http_protocol(stack: str) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class for *stack*: ``auto`` is httptools when installed (as in vLLM's image), else h11."""
    if stack == "h11" or (stack == "auto" and importlib.util.find_spec("httptools") is None):
        from uvicorn.protocols.http.h11_impl import H11Protocol

        return H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    return HttpToolsProtocol
