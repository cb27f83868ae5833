"""Limits that keep one client from holding the server: body size and time, connections, request heads.

- :func:`read_body` reads a request body up to a size (413 past it) within a
  time (408 past it), so a body sent a byte at a time cannot hold a
  connection and a huge one is refused before it fills memory.
- :func:`guarded_protocol` wraps uvicorn's HTTP protocol: at most
  ``max_connections`` connections are open (one more is closed at once), and a
  connection must deliver each request's head (line and headers) within
  ``header_timeout`` seconds of opening or of its previous answer. uvicorn
  itself waits for a head forever; half-open connections then exhausted the
  file descriptors and every refused accept logged a traceback.
- Refusals are logged one line each, at most one line a second with a count
  of those left out, so an attack cannot flood the log.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import threading
import time
from typing import Any

from starlette.requests import Request

from azinfer.serve.http.auth import App, Receive, Scope, Send

__all__ = ["BodyError", "ThrottledLog", "default_protocol", "fit_connection_cap", "guarded_protocol", "read_body"]

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


def fit_connection_cap(requested: int) -> int:
    """The connection cap this process can honour: raise the soft file limit if needed, else lower the cap.

    Accepting past the file limit makes every accept fail (and log); a cap
    below it refuses cleanly instead.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = requested + _RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < wanted:
        fitted = max(soft - _RESERVED_FDS, 1)
        log.warning("at most %d connections: the file descriptor limit is %d", fitted, soft)
        return fitted
    return requested


class _Guard:
    """What the connections of one server share: the count of open ones and the log of refusals."""

    def __init__(self, max_connections: int, header_timeout: float) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.open = 0
        self.refusals = ThrottledLog(log)


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"


def guarded_protocol(base: type[asyncio.Protocol], max_connections: int, header_timeout: float) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's HTTP protocol class *base* with a connection cap and a request-head timeout.

    uvicorn builds one protocol object per connection and calls its ASGI app
    (the ``app`` attribute) once a request's head is in; the subclass wraps
    that app to know when a request starts and ends.
    """
    guard = _Guard(max_connections, header_timeout)

    class GuardedProtocol(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._admitted = False
            self._head_timer: asyncio.TimerHandle | None = None
            self._requests = 0
            self.app = self._tracked(self.app)

        def _tracked(self, app: App) -> App:
            async def tracked(scope: Scope, receive: Receive, send: Send) -> None:
                self._requests += 1
                self._disarm()
                try:
                    await app(scope, receive, send)
                finally:
                    self._requests -= 1
                    if not self._requests:
                        self._arm()

            return tracked

        def _arm(self) -> None:
            self._disarm()
            if self._admitted:
                self._head_timer = asyncio.get_running_loop().call_later(guard.header_timeout, self._head_timed_out)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            transport = getattr(self, "transport", None)
            if transport is not None and not transport.is_closing():
                guard.refusals.warning(
                    "closed connection from %s: no complete request head within %g s (--header-timeout)",
                    _peer(transport), guard.header_timeout,
                )
                transport.abort()

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if guard.open >= guard.max_connections:
                guard.refusals.warning(
                    "refused connection from %s: %d connections open (--max-connections)", _peer(transport), guard.open
                )
                transport.abort()
                return
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
            if self._admitted:
                super().data_received(data)

        def eof_received(self) -> Any:
            return super().eof_received() if self._admitted else None

    GuardedProtocol.__name__ = GuardedProtocol.__qualname__ = f"Guarded{base.__name__}"
    return GuardedProtocol


def default_protocol() -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol class: httptools when installed, else h11."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    return AutoHTTPProtocol
