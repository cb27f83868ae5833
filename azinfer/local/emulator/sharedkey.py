"""Azure Storage Shared Key signatures, recomputed the way the service checks them.

``Authorization: SharedKey {account}:{base64(HMAC-SHA256(base64decode(key), StringToSign))}``
where StringToSign is the verb, eleven standard header values (``Content-Length``
empty when it is 0), the ``x-ms-*`` headers (lower-case names, sorted, ``name:value``)
and the canonicalized resource: ``/{account}{raw path}`` followed by one
``\\n{name}:{decoded value}`` per query parameter, sorted by name.  With a
path-style URL (``https://127.0.0.1:PORT/{account}/...``) the raw path starts with
the account name, so the resource reads ``/{account}/{account}/...``.

Header names are sorted as the service sorts them: a collation that first
ignores ``-`` (and ``'``), then breaks ties by where those characters are,
so ``x-ms-meta-ab`` sorts before ``x-ms-meta-a-b``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import unquote

__all__ = ["string_to_sign", "sign", "header_sort_key", "parse_authorization"]

STANDARD_HEADERS = ("content-encoding", "content-language", "content-length", "content-md5", "content-type",
                    "date", "if-modified-since", "if-match", "if-none-match", "if-unmodified-since", "range")

# Primary weights of the service's collation, lowest first; '-' and "'" have none.
_PRIMARY_ORDER = "!#$%&*.^_`|~+0123456789abcdefghijklmnopqrstuvwxyz"
_PRIMARY = {c: i + 1 for i, c in enumerate(_PRIMARY_ORDER)}
_SECONDARY = {"'": 1, "-": 2}


def header_sort_key(name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Sort key for a (lower-case) header name: primary weights, then the place of '-' and "'"."""
    low = name.lower()
    primary = tuple(_PRIMARY[c] for c in low if c in _PRIMARY)
    secondary = tuple(_SECONDARY.get(c, 0) for c in low)
    return primary, secondary


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """Query parameters as the service canonicalizes them: names lower-cased, values decoded,
    repeated names joined with commas."""
    values: dict[str, list[str]] = {}
    for part in raw_query.split("&") if raw_query else []:
        if not part:
            continue
        name, _, value = part.partition("=")
        values.setdefault(unquote(name).lower(), []).append(unquote(value))
    return sorted((name, ",".join(sorted(vals))) for name, vals in values.items())


def string_to_sign(method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], account: str) -> str:
    """The StringToSign for a request (``headers`` with lower-case names)."""
    lines = [method.upper()]
    for name in STANDARD_HEADERS:
        value = headers.get(name, "")
        if name == "content-length" and value == "0":
            value = ""
        lines.append(value)
    out = "\n".join(lines) + "\n"
    ms = sorted(((k.lower(), v) for k, v in headers.items() if k.lower().startswith("x-ms-")),
                key=lambda kv: header_sort_key(kv[0]))
    out += "".join(f"{k}:{v}\n" for k, v in ms)
    out += f"/{account}{raw_path}"
    out += "".join(f"\n{name}:{value}" for name, value in _query_pairs(raw_query))
    return out


def sign(key_b64: str, text: str) -> str:
    """base64(HMAC-SHA256(base64decode(key), utf8(text)))."""
    digest = hmac.new(base64.b64decode(key_b64), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def parse_authorization(value: str) -> tuple[str, str] | None:
    """``SharedKey account:signature`` -> (account, signature); None for any other scheme."""
    scheme, _, rest = value.partition(" ")
    if scheme != "SharedKey" or ":" not in rest:
        return None
    account, _, signature = rest.strip().partition(":")
    return account, signature
