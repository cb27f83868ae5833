"""Hostile clients against ``azinfer serve`` (batched engine, tiny model), on each HTTP stack uvicorn may run.

For each attack it prints the status codes the attacker got, the server's RSS
growth (peak during the attack over the RSS before it) and the worst latency
of ``GET /health`` on a fresh connection, probed every 50 ms during the attack
(``fail`` when a probe got no answer within 5 s). It runs against whatever
``azinfer`` is importable, so the same script measures a tree before and
after a change:

    PYTHONPATH=. python benchmarks/serve_attacks.py                 # both stacks
    PYTHONPATH=. python benchmarks/serve_attacks.py --http h11 --only surrogate

The server gets ``--max-connections 64`` so the cap is reached quickly.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "serve"))
from serve_model_factory import ModelShape, build_mount  # noqa: E402

KEY = "attack-bench-key"
MODEL = "microsoft/Phi-3-mini-4k-instruct"
MAX_CONNECTIONS = 64
# Run the server with uvicorn's protocol class for *stack*, whichever way this tree chooses it.
LAUNCHER = """
import sys
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
import azinfer.serve.http.limits as limits
stack = sys.argv[1]
more = []
if hasattr(limits, "default_protocol"):  # a tree from before --http
    limits.default_protocol = lambda: {"h11": H11Protocol, "httptools": HttpToolsProtocol}[stack]
else:
    more = ["--http", stack]
from azinfer.serve.__main__ import main
sys.argv = ["azinfer-serve", *sys.argv[2:], *more]
main()
"""


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Watch:
    """Probe /health on fresh connections and sample the server's RSS until stopped."""

    def __init__(self, port: int, pid: int) -> None:
        self.port, self.pid = port, pid
        self.worst = 0.0
        self.failed = 0
        self.peak = self.start = rss_mib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _probe(self) -> None:
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if not sock.recv(64).startswith(b"HTTP/1.1 200"):
                    self.failed += 1
        except OSError:
            self.failed += 1
        self.worst = max(self.worst, time.monotonic() - started)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._probe()
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.05)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def send(port: int, data: bytes, timeout: float = 20.0) -> tuple[str, bool]:
    """Send raw *data*; the status line's code (or what happened) and whether the server closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except OSError as error:
            return type(error).__name__, True
        response = b""
        try:
            while b"\r\n\r\n" not in response:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                response += chunk
            sock.settimeout(2)
            closed = False
            try:
                while chunk := sock.recv(65536):
                    response += chunk
                closed = True
            except TimeoutError:
                pass
        except ConnectionResetError:
            return ("reset" if not response else response.split(b" ", 2)[1].decode()), True
        code = response.split(b" ", 2)[1].decode() if response.startswith(b"HTTP/") else "closed"
        return code, closed


def post(path: str, body: bytes, key: bool = True) -> bytes:
    auth = f"Authorization: Bearer {KEY}\r\n" if key else ""
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def chat(**fields: object) -> bytes:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **fields}
    return json.dumps(body).encode()


def big_header(port: int) -> str:
    return send(port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")[0]


def many_headers(port: int) -> str:
    return send(port, b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 20_000 + b"\r\n")[0]


def long_request_line(port: int) -> str:
    return send(port, b"GET /health?" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")[0]


def endless_headers(port: int) -> str:
    """40 connections each streaming one endless header for 6 s."""
    results: list[str] = []

    def one() -> None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Endless: ")
                deadline = time.monotonic() + 6
                while time.monotonic() < deadline:
                    sock.sendall(b"a" * 65536)
                results.append("sent 6 s")
        except OSError as error:
            results.append(type(error).__name__)

    threads = [threading.Thread(target=one) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return ", ".join(f"{results.count(r)}x {r}" for r in sorted(set(results)))


def idle_connections(port: int) -> str:
    """Hold more idle connections than the cap, then ask /health 20 times."""
    held = []
    for _ in range(MAX_CONNECTIONS + 10):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            pass
    time.sleep(0.5)
    answered = 0
    for _ in range(20):
        try:
            code, _ = send(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=3)
            answered += code == "200"
        except OSError:
            pass
        # The attacker reopens what the server closed, as fast as it can.
        held = [s for s in held if not _closed(s)]
        while len(held) < MAX_CONNECTIONS + 10:
            try:
                held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                break
    for sock in held:
        sock.close()
    return f"/health answered {answered} of 20 while {MAX_CONNECTIONS + 10} idle connections were held"


def _closed(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def _compact(**body: object) -> bytes:
    return json.dumps({"model": MODEL, **body}, separators=(",", ":")).encode()


@functools.cache
def _huge_json() -> bytes:
    """A 4 MB body: a 2-million-item array in ``metadata``."""
    return _compact(messages=({"role": "user", "content": "hi"},), metadata={"a": (0,) * 2_000_000})


@functools.cache
def _many_messages() -> bytes:
    """140,000 empty messages, 4 MB."""
    return _compact(messages=({"role": "user", "content": ""},) * 140_000, max_tokens=1)


def huge_json(port: int) -> str:
    return send(port, post("/v1/chat/completions", _huge_json()), timeout=60)[0]


def many_messages(port: int) -> str:
    return send(port, post("/v1/chat/completions", _many_messages()), timeout=60)[0]


def surrogate(port: int) -> str:
    body = b'{"model": "m", "messages": [], "\\ud800": 1}'
    return send(port, post("/v1/chat/completions", body))[0]


def framing(port: int) -> str:
    body = chat()
    data = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
            f"Content-Length: {len(body)}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    code, closed = send(port, data + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    return f"{code}, connection {'closed' if closed else 'left open'}"


def key_in_query(port: int, log: Path) -> str:
    code, _ = send(port, f"GET /v1/models?api_key={KEY} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    time.sleep(0.5)
    return f"{code}, key {'in the log' if KEY in log.read_text(errors='replace') else 'not in the log'}"


def vllm_extensions(port: int) -> str:
    extensions = {"top_k": 5, "min_p": 0.1, "repetition_penalty": 1.1, "ignore_eos": True, "min_tokens": 1,
                  "stop_token_ids": [1], "presence_penalty": 0.5, "frequency_penalty": 0.5}
    return " ".join(f"{name}:{send(port, post('/v1/chat/completions', chat(**{name: value})))[0]}"
                    for name, value in extensions.items())


ATTACKS: dict[str, Callable[..., str]] = {
    "big-header": big_header, "many-headers": many_headers, "long-request-line": long_request_line,
    "endless-headers": endless_headers, "idle-connections": idle_connections, "huge-json": huge_json,
    "many-messages": many_messages, "surrogate": surrogate, "framing": framing, "key-in-query": key_in_query,
    "vllm-extensions": vllm_extensions,
}


def run_stack(stack: str, mount: Path, only: list[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = Path(tempfile.mkdtemp()) / "server.log"
    env = {**os.environ, "AZINFER_API_KEY": KEY, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-c", LAUNCHER, stack, "--mount", str(mount), "--host", "127.0.0.1", "--port", str(port),
               "--engine", "batched", "--max-connections", str(MAX_CONNECTIONS), "--header-timeout", "3"]
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if send(port, b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=2)[0] == "200":
                    break
            except OSError:
                time.sleep(0.3)
        else:
            raise SystemExit(f"server not ready: {log.read_text()[-2000:]}")
        print(f"\n{stack}: attack | attacker saw | RSS growth MiB | worst /health s (failed probes)")
        for name in only or ATTACKS:
            attack = ATTACKS[name]
            _huge_json(), _many_messages()  # built before the probes start: this process's GIL is theirs too
            with Watch(port, server.pid) as watch:
                try:
                    seen = attack(port, log) if name == "key-in-query" else attack(port)
                except OSError as error:
                    seen = f"client error {type(error).__name__}"
            print(f"{stack}: {name} | {seen} | {watch.peak - watch.start:+.0f} | {watch.worst:.2f} ({watch.failed})",
                  flush=True)
            time.sleep(1)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--http", nargs="+", choices=["h11", "httptools"], default=["h11", "httptools"])
    parser.add_argument("--only", nargs="+", choices=list(ATTACKS), default=[])
    args = parser.parse_args()
    mount = build_mount(Path(tempfile.mkdtemp()), ModelShape(family="phi3"))
    for stack in args.http:
        run_stack(stack, mount.root, args.only)


if __name__ == "__main__":
    main()
