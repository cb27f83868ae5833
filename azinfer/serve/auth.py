"""Bearer-key authentication of ``/v1/*`` and of the chat UI."""

from __future__ import annotations

import hmac

__all__ = ["key_matches", "bearer_token"]


def key_matches(expected: str | None, given: str | None) -> bool:
    """Whether *given* is the API key, compared in constant time; any key matches when none is set."""
    if expected is None:
        return True
    return given is not None and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None``."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
