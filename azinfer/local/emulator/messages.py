"""The emulator's HTTP values, shared by every service: a request, an answer, an ARM error, a record.

They sit apart from :mod:`.server` so that the services (:mod:`.containerapps`,
:mod:`.deployments`, :mod:`.fileshare`, :mod:`.ingress`) import them at the
top instead of from the server that imports those services.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ArmError", "Request", "RequestRecord", "Response"]

# Read-only POST actions: they read secrets but change nothing.
READ_ACTIONS = {"listkeys", "sharedkeys", "listsecrets", "validate", "whatif", "checknameavailability",
                "getauthtoken"}


class ArmError(Exception):
    """An ARM error answer: ``{"error": {"code", "message", "details"}}``."""

    def __init__(self, status: int, code: str, message: str, details: list[Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


@dataclass
class Request:
    method: str
    path: str  # as sent, percent-encoded
    query: dict[str, str]  # lower-case names, decoded values
    headers: dict[str, str]  # lower-case names
    body: bytes
    raw_query: str = ""
    service: str = "arm"  # the listener: arm | file | logstream | ingress
    target: str | None = None  # ingress: the app's resource id

    @property
    def api_version(self) -> str | None:
        return self.query.get("api-version")

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized.") from None


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes -> as is (Content-Type from headers); None -> empty
    headers: dict[str, str] = field(default_factory=dict)  # a Content-Length here wins (HEAD)
    reset: bool = False
    stream: Iterator[bytes] | None = None  # a chunked body, written as produced
    forward: Callable[[], Response] | None = None  # the answer, made after the state lock is released (a proxy)


@dataclass
class RequestRecord:
    """One request the emulator saw (``source="http"``) or one write ARM made inside a deployment
    (``source="deployment:<name>"``).

    ``service`` names the listener (arm, file, logstream, ingress).  File-service
    records keep the decoded path (``/{account}/{share}/dir/file``) and ``body=None``
    (``size`` is the body's length in bytes).
    """

    method: str
    path: str
    api_version: str | None
    body: Any
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    source: str = "http"
    time: float = field(default_factory=time.time)
    service: str = "arm"
    size: int = 0

    @property
    def is_write(self) -> bool:
        """PUT/PATCH/DELETE, or a POST other than a read (listKeys, sharedKeys, listSecrets, validate, whatIf)."""
        if self.method in ("PUT", "PATCH", "DELETE"):
            return True
        if self.method == "POST":
            return self.path.rstrip("/").rsplit("/", 1)[-1].lower() not in READ_ACTIONS
        return False

    def targets(self, resource_id: str) -> bool:
        """The request is about the resource or something under it."""
        p, r = self.path.rstrip("/").lower(), resource_id.rstrip("/").lower()
        return p == r or p.startswith(r + "/")
