"""The smoke test ``azinfer up`` ends with: one short chat completion through the endpoint, with the key.

Plain HTTPS (``httpx``), trusting what the SDK clients trust, as ``/ready``
does: ``GET /v1/models`` names the served model, then a streamed
``POST /v1/chat/completions`` gives the time to the first token and the
answer's first words. The key goes over HTTPS only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from azinfer.errors import AzureError

if TYPE_CHECKING:  # pragma: no cover
    from azinfer.azure.app import Verify

__all__ = ["SmokeTest", "SMOKE_PROMPT", "smoke_test"]

SMOKE_PROMPT = "Say hello in five words."
"""What the smoke test asks the model (a short answer: the point is that it answers)."""
_MAX_TOKENS = 16
_FIRST_WORDS = 12


@dataclass(frozen=True)
class SmokeTest:
    """What the endpoint answered to one short chat completion."""

    model: str
    """The served model's id (``GET /v1/models``): what a client passes as ``model``."""
    first_token_seconds: float
    """From sending the request to the first token of the answer."""
    seconds: float
    """From sending the request to the end of the answer."""
    answer: str
    """The answer's first words."""

    def to_text(self) -> str:
        """One line: the model, the first token's time and the answer's first words."""
        return (f"model {self.model!r} answered in {self.seconds:.2f} s (first token after "
                f"{self.first_token_seconds:.2f} s): {self.answer!r}")


def smoke_test(url: str, api_key: str | None, *, verify: Verify = True, timeout: float = 120.0,
               clock: Callable[[], float] = time.monotonic) -> SmokeTest:
    """Ask the endpoint at ``url`` one short chat completion (streamed), with ``api_key`` as the bearer.

    :raises AzureError: when the endpoint refuses, answers no token, or cannot be reached (one line: what it answered).
    """
    import httpx

    if not url.lower().startswith("https://"):
        raise AzureError(f"smoke test: {url} is not an https:// URL: the API key is not sent there")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    base = url.rstrip("/")
    try:
        with httpx.Client(verify=verify, timeout=timeout, headers=headers) as client:
            models = client.get(f"{base}/v1/models")
            _raise_for(models, "GET /v1/models")
            model = str(models.json()["data"][0]["id"])
            body = {"model": model, "messages": [{"role": "user", "content": SMOKE_PROMPT}],
                    "max_tokens": _MAX_TOKENS, "stream": True}
            start = clock()
            first: float | None = None
            parts: list[str] = []
            with client.stream("POST", f"{base}/v1/chat/completions", json=body) as response:
                if response.status_code != 200:
                    response.read()
                _raise_for(response, "POST /v1/chat/completions")
                for line in response.iter_lines():
                    text = _delta(line)
                    if text:
                        first = clock() if first is None else first
                        parts.append(text)
            end = clock()
    except httpx.HTTPError as exc:
        raise AzureError(f"smoke test: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no answer'}"
                         ) from None
    except (ValueError, KeyError, IndexError, TypeError):
        raise AzureError("smoke test: GET /v1/models answered no model id") from None
    if first is None:
        raise AzureError(f"smoke test: model {model!r} answered no token")
    words = " ".join("".join(parts).split()[:_FIRST_WORDS])
    return SmokeTest(model, first - start, end - start, words)


def _raise_for(response: object, doing: str) -> None:
    import httpx

    assert isinstance(response, httpx.Response)
    if response.status_code != 200:
        raise AzureError(f"smoke test: {doing} answered {response.status_code} {response.text.strip()[:120]}".strip())


def _delta(line: str) -> str:
    """The text one server-sent event line carries (``data: {chunk}``); empty for anything else."""
    if not line.startswith("data:"):
        return ""
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return ""
    try:
        choices = json.loads(data).get("choices") or []
        return str((choices[0].get("delta") or {}).get("content") or "") if choices else ""
    except (ValueError, AttributeError, IndexError):
        return ""
