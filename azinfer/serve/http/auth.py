"""Bearer-key authentication, checked before anything of the request's body is read.

Every route needs the key except a short list of open ones (the probes and
the chat page's static files, all read-only): a route added later is closed
unless it is listed here. A key sent in the URL (``?api_key=``, as some
clients do) is refused with 401 on every route, and no query string reaches
the access log (:class:`HideQuery`), so a key there is never written down.
"""

from __future__ import annotations

import hmac
import json
import logging
from urllib.parse import parse_qsl
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from azinfer.serve.http.wire import error_body

__all__ = ["App", "HideQuery", "KeyCheck", "Receive", "Scope", "Send", "bearer_token", "key_matches"]

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
_KEY_IN_URL = json.dumps(
    error_body("an API key in the URL is refused (URLs are logged): send 'Authorization: Bearer <key>'",
               "invalid_request_error", "api_key_in_url")
).encode()
# Query parameters clients put a key in.
_KEY_PARAMETERS = frozenset({"api_key", "api-key", "apikey", "key", "access_token", "token"})


def _key_in_query(query: bytes) -> bool:
    return any(name.lower() in _KEY_PARAMETERS for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True))


class HideQuery(logging.Filter):
    """A filter for uvicorn's access log: the request's path is logged without its query string."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (args[0], args[1], args[2].split("?", 1)[0] + "?(query not logged)", args[3], args[4])
        return True


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
        if scope["type"] == "http" and _key_in_query(scope.get("query_string", b"")):
            await _answer_401(send, _KEY_IN_URL)
            return
        if self.key is None or scope["type"] != "http" or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        if key_matches(self.key, bearer_token(authorization)):
            await self.app(scope, receive, send)
            return
        await _answer_401(send, _UNAUTHORIZED)


async def _answer_401(send: Send, body: bytes) -> None:
    await send({
        "type": "http.response.start",
        "status": 401,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b"Bearer"),
            (b"connection", b"close"),
        ],
    })
    await send({"type": "http.response.body", "body": body})
