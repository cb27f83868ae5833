"""Faults on demand: HTTP errors, throttling, connection resets, latency, slow or failing operations.

Every fault targets requests by method and path pattern (``fnmatch`` glob,
case-insensitive, matched against the path without the query string; or a
compiled regular expression) and applies to the next ``count`` matching
requests (``count=None``: all of them).
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Fault", "FaultSet"]


@dataclass
class Fault:
    kind: str  # http | reset | latency | slow_operation | fail_operation | fail_resource
    method: str = "*"
    path: str | re.Pattern[str] = "*"
    count: int | None = 1
    status: int = 500
    code: str = "InternalServerError"
    message: str = "Injected fault."
    retry_after: int | None = None
    seconds: float = 0.0
    polls: int = 0
    details: list[dict[str, Any]] = field(default_factory=list)
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        if isinstance(self.path, re.Pattern):
            return self.path.search(path) is not None
        return fnmatch.fnmatchcase(path.lower(), self.path.lower())

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.hits >= self.count

    def error_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


_DEFAULT_CODES = {
    400: "BadRequest",
    401: "AuthenticationFailed",
    403: "AuthorizationFailed",
    404: "ResourceNotFound",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


class FaultSet:
    """The emulator's faults; thread-safe.  ``emu.faults``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, kind: str = "http", **kwargs: Any) -> Fault:
        """Add a fault; see the helpers below for the common kinds."""
        if kind == "http" and "code" not in kwargs:
            kwargs["code"] = _DEFAULT_CODES.get(kwargs.get("status", 500), "Error")
        fault = Fault(kind=kind, **kwargs)
        with self._lock:
            self._faults.append(fault)
        return fault

    def http_error(self, status: int = 500, *, method: str = "*", path: str | re.Pattern[str] = "*",
                   count: int | None = 1, code: str | None = None, message: str = "Injected fault.",
                   retry_after: int | None = None) -> Fault:
        return self.add("http", status=status, method=method, path=path, count=count,
                        code=code or _DEFAULT_CODES.get(status, "Error"), message=message,
                        retry_after=retry_after)

    def throttle(self, *, method: str = "*", path: str | re.Pattern[str] = "*", count: int | None = 1,
                 retry_after: int = 0) -> Fault:
        """429 TooManyRequests with ``Retry-After``."""
        return self.http_error(429, method=method, path=path, count=count, retry_after=retry_after,
                               message="The request is being throttled.")

    def reset(self, *, method: str = "*", path: str | re.Pattern[str] = "*", count: int | None = 1) -> Fault:
        """Close the connection without answering (TCP reset)."""
        return self.add("reset", method=method, path=path, count=count)

    def latency(self, seconds: float, *, method: str = "*", path: str | re.Pattern[str] = "*",
                count: int | None = None) -> Fault:
        """Delay matching requests by ``seconds`` before answering normally."""
        return self.add("latency", seconds=seconds, method=method, path=path, count=count)

    def slow_operation(self, polls: int, *, method: str = "*", path: str | re.Pattern[str] = "*",
                       count: int | None = 1) -> Fault:
        """Long-running operations started by matching requests stay InProgress for ``polls`` polls."""
        return self.add("slow_operation", polls=polls, method=method, path=path, count=count)

    def fail_operation(self, *, code: str = "InternalServerError", message: str = "The operation failed.",
                       method: str = "*", path: str | re.Pattern[str] = "*", count: int | None = 1) -> Fault:
        """Long-running operations started by matching requests end Failed with this error."""
        return self.add("fail_operation", code=code, message=message, method=method, path=path, count=count)

    def fail_deployment_resource(self, name: str, *, code: str = "InvalidResourceProperties",
                                 message: str = "The resource failed to deploy.", status: int = 400,
                                 count: int | None = 1) -> Fault:
        """Inside a deployment, the resource whose name (or id, glob) matches fails with this error."""
        return self.add("fail_resource", path=name, code=code, message=message, status=status, count=count)

    # ------------------------------------------------------------------------------------------
    def take(self, kind: str, method: str, path: str) -> Fault | None:
        """The first live fault of ``kind`` matching the request; counts a hit."""
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and not fault.exhausted and fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    def take_resource_failure(self, resource_id: str, name: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind != "fail_resource" or fault.exhausted:
                    continue
                pat = fault.path
                if isinstance(pat, re.Pattern):
                    hit = bool(pat.search(resource_id))
                else:
                    hit = fnmatch.fnmatchcase(name.lower(), pat.lower()) or fnmatch.fnmatchcase(
                        resource_id.lower(), pat.lower())
                if hit:
                    fault.hits += 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def __iter__(self) -> Iterator[Fault]:
        with self._lock:
            return iter(list(self._faults))

    def __len__(self) -> int:
        return len(self._faults)
