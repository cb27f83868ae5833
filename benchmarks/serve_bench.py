"""Load generator for ``azinfer serve``: our batched engine against the AI Toolkit's strategy, over HTTP.

Builds a small random-weight model in the AI Toolkit layout (no download),
starts ``python -m azinfer.serve`` once per engine, and at each concurrency
runs that many streaming clients, each asking for a fixed prompt and a fixed
number of new tokens (greedy, so every request generates the same tokens).
Reports aggregate completion tokens/s, time to first token p50/p95 and the
server's peak resident memory, then our engine's speed-up over the baseline.

    python benchmarks/serve_bench.py --quick      # a few minutes on 2 CPU cores
    python benchmarks/serve_bench.py --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

# Before anything imports huggingface_hub: building the test model must never reach a hub.
os.environ["HF_HUB_OFFLINE"] = "1"
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "serve"))
from serve_model_factory import ModelShape, build_mount  # noqa: E402

ENGINES = ("batched", "baseline")
PROMPT = [{"role": "user", "content": "the quick brown fox jumps over the lazy dog " * 4}]


@dataclass
class Result:
    """One engine at one concurrency."""

    engine: str
    concurrency: int
    requests: int
    completion_tokens: int
    seconds: float
    tokens_per_s: float
    ttft_p50_ms: float
    ttft_p95_ms: float
    peak_rss_mib: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM) so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def one_stream(client: httpx.AsyncClient, url: str, model: str, max_tokens: int) -> tuple[float, int]:
    """Send one streaming request; return (time to first token in s, completion tokens)."""
    body = {
        "model": model, "messages": PROMPT, "max_tokens": max_tokens, "temperature": 0, "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if first is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                first = time.perf_counter() - started
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return (first if first is not None else float("nan")), tokens


async def load(base_url: str, model: str, concurrency: int, rounds: int, max_tokens: int) -> tuple[float, list[float], int]:
    """*concurrency* clients each send *rounds* requests back to back."""
    url = f"{base_url}/v1/chat/completions"
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:

        async def client_loop() -> list[tuple[float, int]]:
            return [await one_stream(client, url, model, max_tokens) for _ in range(rounds)]

        started = time.perf_counter()
        per_client = await asyncio.gather(*[client_loop() for _ in range(concurrency)])
        elapsed = time.perf_counter() - started
    samples = [sample for results in per_client for sample in results]
    return elapsed, [ttft for ttft, _ in samples], sum(tokens for _, tokens in samples)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def bench_engine(
    engine: str, mount: Path, model: str, levels: list[int], rounds: int, max_tokens: int, threads: int
) -> list[Result]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env["OMP_NUM_THREADS"] = str(threads)
    command = [sys.executable, "-m", "azinfer.serve", "--mount", str(mount), "--port", str(port), "--engine", engine,
               "--max-batch-size", "16"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base_url}/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"the {engine} server did not become ready")
            time.sleep(0.3)
        asyncio.run(load(base_url, model, 1, 1, 8))  # warm-up
        results = []
        for concurrency in levels:
            seconds, ttfts, tokens = asyncio.run(load(base_url, model, concurrency, rounds, max_tokens))
            results.append(Result(
                engine=engine, concurrency=concurrency, requests=len(ttfts), completion_tokens=tokens,
                seconds=round(seconds, 2), tokens_per_s=round(tokens / seconds, 1),
                ttft_p50_ms=round(percentile(ttfts, 0.5) * 1000, 1), ttft_p95_ms=round(percentile(ttfts, 0.95) * 1000, 1),
                peak_rss_mib=round(peak_rss_mib(server.pid), 1),
            ))
            print(f"  {engine:8} c={concurrency:<3} {results[-1].tokens_per_s:8.1f} tok/s  "
                  f"ttft p50 {results[-1].ttft_p50_ms:7.1f} ms  p95 {results[-1].ttft_p95_ms:7.1f} ms  "
                  f"peak rss {results[-1].peak_rss_mib:.0f} MiB", flush=True)
        return results
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and tokens (a few minutes on 2 cores)")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, help="requests each client sends back to back (default 3, 1 with --quick)")
    parser.add_argument("--max-tokens", type=int, help="new tokens per request (default 128, 64 with --quick)")
    # Client and server share the machine: a server whose OpenMP threads take
    # every core spins against the client, and its numbers swing 3x run to run.
    parser.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                        help="torch threads of the server (OMP_NUM_THREADS); default: half the cores")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    max_tokens = args.max_tokens or (64 if args.quick else 128)
    shape = ModelShape(family="llama", hidden=256, layers=4, heads=4, intermediate=688, context=1024, vocab=500)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as folder:
        layout = build_mount(Path(folder) / "mount", shape)
        print(f"model: {shape}, {max_tokens} new tokens per request, {rounds} round(s) per client", flush=True)
        for engine in args.engines:
            results += bench_engine(engine, layout.root, layout.hub_id, args.concurrency, rounds, max_tokens, args.threads)
    by_key = {(r.engine, r.concurrency): r for r in results}
    print("\nconcurrency  batched tok/s  baseline tok/s  speed-up")
    for concurrency in args.concurrency if len(args.engines) == 2 else []:
        ours, base = by_key[("batched", concurrency)], by_key[("baseline", concurrency)]
        print(f"{concurrency:>11}  {ours.tokens_per_s:13.1f}  {base.tokens_per_s:14.1f}  {ours.tokens_per_s / base.tokens_per_s:7.1f}x")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
