"""Attacks that each hurt the server once, scaled down, against a server with small limits.

Each test sends what a hostile or broken client sent and checks that the
server refuses it cheaply while everyone else is still served. Every test
runs on both HTTP parsers uvicorn may pick: h11, and httptools (what vLLM's
image runs, through ``uvicorn[standard]``).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from conftest import API_KEY, RunningServer, running_server

MODEL = "microsoft/Phi-3-mini-4k-instruct"
HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 3.0
MAX_BODY = 8192
MAX_CONNECTIONS = 6
MAX_HEADER_BYTES = 4096
MAX_HEADERS = 20
MAX_REQUEST_LINE = 1024
STACKS = ["h11", "httptools"]


@pytest.fixture(scope="module", params=STACKS)
def small_limits(request: pytest.FixtureRequest, phi_mount: Any) -> Iterator[RunningServer]:
    with running_server(mount_root=phi_mount.root, api_key=API_KEY, max_body_bytes=MAX_BODY,
                        body_timeout=BODY_TIMEOUT, header_timeout=HEADER_TIMEOUT, max_connections=MAX_CONNECTIONS,
                        max_header_bytes=MAX_HEADER_BYTES, max_headers=MAX_HEADERS, max_request_line=MAX_REQUEST_LINE,
                        http=request.param) as server:
        yield server


def connect(server: RunningServer) -> socket.socket:
    url = urlparse(server.base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    return sock


def read_all(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (or *timeout* passes)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def head(path: str, *, length: int | None = None, key: bool = True, extra: str = "") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: test", "Content-Type: application/json"]
    if key:
        lines.append(f"Authorization: Bearer {API_KEY}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def body_of(response: bytes) -> dict[str, Any]:
    return json.loads(response.split(b"\r\n\r\n", 1)[1])


def still_serves(server: RunningServer) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 2}
    response = httpx.post(f"{server.base_url}/v1/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30)
    assert response.status_code == 200, response.text


def test_the_key_is_checked_before_the_body_is_read(small_limits: RunningServer) -> None:
    # Was: four 200 MB bodies without a key were read and parsed (0.46 -> 2.43 GB).
    with connect(small_limits) as sock:
        sock.sendall(head("/v1/chat/completions", length=200_000_000, key=False))  # and no body at all
        started = time.monotonic()
        response = read_all(sock)
    assert status_of(response) == 401
    assert body_of(response)["error"]["code"] == "invalid_api_key"
    assert time.monotonic() - started < 5  # answered without waiting for the 200 MB


def test_a_body_declared_too_large_is_413_before_it_is_read(small_limits: RunningServer) -> None:
    with connect(small_limits) as sock:
        sock.sendall(head("/v1/chat/completions", length=200_000_000))
        response = read_all(sock)
    assert status_of(response) == 413
    assert body_of(response)["error"]["code"] == "request_too_large"
    still_serves(small_limits)


def test_a_chunked_body_is_cut_at_the_cap(small_limits: RunningServer) -> None:
    chunk = b"x" * 4096
    with connect(small_limits) as sock:
        sock.sendall(head("/v1/chat/completions", extra="Transfer-Encoding: chunked\r\n"))
        for _ in range(3):  # 12 KB against an 8 KB cap
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        response = read_all(sock)
    assert status_of(response) == 413


def test_a_body_sent_a_byte_at_a_time_is_408(small_limits: RunningServer) -> None:
    # Was: 1 byte every 2 s kept a connection (and a file descriptor) forever.
    with connect(small_limits) as sock:
        sock.sendall(head("/v1/chat/completions", length=100))
        started = time.monotonic()
        sock.settimeout(0.4)
        response = b""
        while not response and time.monotonic() - started < 20:
            try:
                sock.sendall(b"{")
                response = sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        response += read_all(sock, timeout=5)
    assert status_of(response) == 408
    assert BODY_TIMEOUT <= time.monotonic() - started < BODY_TIMEOUT + 10


def test_a_head_sent_a_byte_at_a_time_is_closed(small_limits: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    started = time.monotonic()  # before connecting: the server's clock starts when it accepts
    with connect(small_limits) as sock:
        closed = False
        for byte in head("/v1/models"):
            try:
                sock.sendall(bytes([byte]))
                sock.settimeout(0.3)
                if sock.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
    assert closed
    assert HEADER_TIMEOUT <= time.monotonic() - started < HEADER_TIMEOUT + 10
    assert any("no complete request head" in r.getMessage() for r in caplog.records)


def test_a_request_longer_than_the_head_timeout_is_served(small_limits: RunningServer) -> None:
    # The head timeout covers the head only: a body that takes longer (within the body timeout) is fine.
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 2}).encode()
    with connect(small_limits) as sock:
        sock.sendall(head("/v1/chat/completions", length=len(body), extra="Connection: close\r\n"))
        for part in (body[:10], body[10:20], body[20:]):
            time.sleep(HEADER_TIMEOUT * 0.6)
            sock.sendall(part)
        response = read_all(sock)
    assert status_of(response) == 200
    assert body_of(response)["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize("http", STACKS)
def test_at_the_cap_idle_connections_make_room_and_the_probes_answer(
    http: str, phi_mount: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Was: ~21,000 half-open connections exhausted the file descriptors, and each
    # refused accept logged a traceback (275 MB of log in 30 s); then, at the cap,
    # ~530 idle connections left /health answering 2 probes of 50.
    caplog.set_level(logging.WARNING)
    # A long head timeout, so only the cap can close the idle connections.
    with running_server(mount_root=phi_mount.root, api_key=API_KEY, max_connections=MAX_CONNECTIONS,
                        header_timeout=60, http=http) as server:
        time.sleep(1)  # the readiness poll's connections are closed
        idle = [connect(server) for _ in range(MAX_CONNECTIONS * 3)]
        try:
            time.sleep(0.3)
            for path in ["/health", "/ready", "/v1/models"] * 4:
                with connect(server) as sock:
                    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode())
                    assert status_of(read_all(sock, timeout=2)) == (401 if path == "/v1/models" else 200)
                idle.append(connect(server))  # the attacker takes the room back
            assert server.server.config.http.__name__.startswith("Guarded")
        finally:
            for sock in idle:
                sock.close()
        closes = [r for r in caplog.records if "closed idle connection" in r.getMessage()]
        assert 1 <= len(closes) <= 5  # one line a second at most, however many were closed
        assert all("\n" not in r.getMessage() and r.exc_info is None for r in closes)
        assert f"{MAX_CONNECTIONS} connections open" in closes[0].getMessage()
        still_serves(server)


@pytest.mark.parametrize("http", STACKS)
def test_when_every_connection_is_busy_only_the_probes_are_answered(http: str, phi_mount: Any) -> None:
    with running_server(mount_root=phi_mount.root, api_key=API_KEY, max_connections=MAX_CONNECTIONS,
                        body_timeout=30, http=http) as server:
        time.sleep(1)
        busy = [connect(server) for _ in range(MAX_CONNECTIONS)]
        try:
            for sock in busy:  # each waits for a body that does not come
                sock.sendall(head("/v1/chat/completions", length=100))
            time.sleep(0.5)
            with connect(server) as sock:
                sock.sendall(b"GET /ready HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                assert status_of(read_all(sock, timeout=2)) == 200
            with connect(server) as sock:
                sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: test\r\n\r\n")
                response = read_all(sock, timeout=5)
            assert status_of(response) == 503 and body_of(response)["error"]["code"] == "server_busy"
        finally:
            for sock in busy:
                sock.close()


def test_a_head_too_large_is_refused_and_closed(small_limits: RunningServer) -> None:
    # Was, with httptools: a 200 KB header got 200, and 40 connections streaming an
    # endless header grew the server from 400 to 830 MiB.
    with connect(small_limits) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEADER_BYTES * 4) + b"\r\n\r\n")
        response = read_all(sock)
    assert status_of(response) in (400, 431)  # h11 answers its own 400
    with connect(small_limits) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        sent = 0
        with pytest.raises(OSError):  # closed long before 1000 heads' worth
            while sent < MAX_HEADER_BYTES * 1000:
                sock.sendall(b"a" * 65536)
                sent += 65536
    assert sent < MAX_HEADER_BYTES * 1000


def test_too_many_header_lines_are_431_and_closed(small_limits: RunningServer) -> None:
    with connect(small_limits) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * (MAX_HEADERS + 1) + b"\r\n")
        response = read_all(sock)  # returns once the server closes
    assert status_of(response) == 431 and body_of(response)["error"]["code"] == "too_many_headers"


def test_a_long_request_target_is_refused(small_limits: RunningServer) -> None:
    with connect(small_limits) as sock:
        sock.sendall(b"GET /health?" + b"a" * (MAX_REQUEST_LINE + 1) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        response = read_all(sock)
    assert status_of(response) == 414


def test_a_body_framed_two_ways_is_400_and_the_connection_closes(small_limits: RunningServer) -> None:
    # Was, with h11: 200 and the connection left open (RFC 9112 6.3: close it).
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}).encode()
    with connect(small_limits) as sock:
        sock.sendall(head("/v1/chat/completions", length=len(body), extra="Transfer-Encoding: chunked\r\n")
                     + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        response = read_all(sock)  # returns only once the server closes
    assert status_of(response) == 400


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_key_in_the_url_is_refused_and_never_logged(small_limits: RunningServer) -> None:
    # Was: ?api_key=<key> was written to the access log.
    access = _Lines()
    logging.getLogger("uvicorn.access").addHandler(access)  # uvicorn's access log does not propagate
    try:
        response = httpx.get(f"{small_limits.base_url}/v1/models", params={"api_key": API_KEY})
        assert response.status_code == 401 and response.json()["error"]["code"] == "api_key_in_url"
        assert httpx.get(f"{small_limits.base_url}/health", params={"key": API_KEY}).status_code == 401
        time.sleep(0.2)
    finally:
        logging.getLogger("uvicorn.access").removeHandler(access)
    assert any("/v1/models?(query not logged)" in line for line in access.lines), access.lines
    assert not [line for line in access.lines if API_KEY in line]


def test_a_lone_surrogate_anywhere_is_400(small_limits: RunningServer) -> None:
    # Was: a lone surrogate in a key gave 500 and a 60-line traceback.
    for body in (b'{"model": "m", "messages": [], "\\ud800": 1}', b'{"model": "\\udfff", "messages": [{"role": "user", "content": "x"}]}'):
        response = httpx.post(f"{small_limits.base_url}/v1/chat/completions", content=body,
                              headers={"Authorization": f"Bearer {API_KEY}"})
        assert response.status_code == 400, response.text
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_health_answers_while_a_huge_prompt_is_refused(phi_server: RunningServer) -> None:
    # Was: a 10 MB prompt was tokenised on the event loop and /health took 11 s.
    body = {"model": MODEL, "messages": [{"role": "user", "content": "lorem ipsum " * 300_000}]}  # 3.6 MB
    answers: list[httpx.Response] = []
    sender = threading.Thread(target=lambda: answers.append(httpx.post(
        f"{phi_server.base_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=60)))
    sender.start()
    while sender.is_alive():
        assert httpx.get(f"{phi_server.base_url}/health", timeout=2).status_code == 200  # a probe's timeout
    sender.join()
    error = answers[0].json()["error"]
    assert answers[0].status_code == 400 and error["code"] == "context_length_exceeded"
    assert "3600000 characters" in error["message"] and "256 tokens" in error["message"]


def test_health_answers_while_bodies_at_the_limits_are_refused(phi_server: RunningServer) -> None:
    # Was: a 2-million-item array or 140,000 empty messages stalled the event loop for 2-18 s.
    from azinfer.serve.http.wire import MAX_MESSAGES, MAX_SEPARATORS

    bodies = [
        {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "metadata": {"a": [0] * (MAX_SEPARATORS + 1)}},
        {"model": MODEL, "messages": [{"role": "user", "content": ""}] * (MAX_MESSAGES + 1)},
    ]
    for body in bodies:
        content = json.dumps(body, separators=(",", ":")).encode()
        answers: list[httpx.Response] = []
        sender = threading.Thread(target=lambda: answers.append(httpx.post(
            f"{phi_server.base_url}/v1/chat/completions", content=content, timeout=60,
            headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})))
        sender.start()
        while sender.is_alive():
            assert httpx.get(f"{phi_server.base_url}/health", timeout=1).status_code == 200
        sender.join()
        assert answers[0].status_code == 400
        assert answers[0].json()["error"]["code"] in ("body_too_complex", "too_many_messages")
