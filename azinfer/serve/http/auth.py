"""Bearer-key authentication, checked before anything of the request's body is read.

Every route needs the key except a short list of open ones (the probes and
the chat page's static files, all read-only): a route added later is closed
unless it is listed here.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from azinfer.serve.http.wire import error_body

__all__ = ["App", "KeyCheck", "Receive", "Scope", "Send", "bearer_token", "key_matches"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def key_matches(expected: str | None, given: str | None) -> bool:
    """Whether *given* is the API key, compared in constant time; any key matches when none is set."""
    if expected is None:
        return True
    return given is not None and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


_UNAUTHORIZED = json.dumps(
    error_body("missing or incorrect API key: send 'Authorization: Bearer <key>'", "invalid_request_error",
               "invalid_api_key")
).encode()


class KeyCheck:
    """ASGI middleware: an HTTP request to a path not in *open_paths* without the key gets 401 at once.

    The answer goes out before the body is read, and the connection is then
    closed (an unread body cannot be skipped on a kept-alive connection).
    Without a key (*key* ``None``) every request passes.
    """

    def __init__(self, app: App, key: str | None, open_paths: Collection[str]) -> None:
        self.app = app
        self.key = key
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.key is None or scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        if key_matches(self.key, bearer_token(authorization)):
            await self.app(scope, receive, send)
            return
        await send({
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_UNAUTHORIZED)).encode()),
                (b"www-authenticate", b"Bearer"),
                (b"connection", b"close"),
            ],
        })
        await send({"type": "http.response.body", "body": _UNAUTHORIZED})
