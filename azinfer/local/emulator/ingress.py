"""The ingress in front of a running container (``emu.apps.containers``): HTTPS in, plain HTTP to the replica's port.

Container Apps terminates TLS at its envoy ingress and sends plain HTTP to the
container's ``targetPort`` (MicrosoftDocs ``articles/container-apps/ingress-overview.md``);
the app's own server checks its API key.  The body is relayed as it comes
(chunked), so a streamed chat completion reaches the client token by token.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator

from .messages import Request, Response


__all__ = ["forward"]

# Hop-by-hop headers (RFC 9110 section 7.6.1) and the ones the emulator's own listener writes.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection",
        "content-length", "host"}


def forward(port: int, req: Request, *, timeout: float = 300.0) -> Response:
    """Send ``req`` to ``127.0.0.1:port`` and relay the answer (503 ``upstream connect error`` when it refuses)."""
    upstream = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {k: v for k, v in req.headers.items() if k not in _HOP}
    headers["x-forwarded-proto"] = "https"
    target = req.path + (f"?{req.raw_query}" if req.raw_query else "")
    try:
        upstream.request(req.method, target, body=req.body or None, headers=headers)
        answer = upstream.getresponse()
    except OSError:
        upstream.close()
        return Response(503, b"upstream connect error or disconnect/reset before headers. reset reason: "
                             b"connection failure", {"Content-Type": "text/plain"})
    relayed = {k: v for k, v in answer.getheaders() if k.lower() not in _HOP}

    def body() -> Iterator[bytes]:
        try:
            while chunk := answer.read1(65536):
                yield chunk
        except OSError:
            return
        finally:
            upstream.close()

    return Response(answer.status, headers=relayed, stream=body())
