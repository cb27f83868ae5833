"""What log probabilities cost the batched engine: 16 streams with and without ``logprobs`` requests.

Serves ``serve_bench.py``'s model (Phi-3 shaped, head dimension 64, about
40 MB, adapter merged) with ``azinfer serve --engine batched`` pinned to one
core, this load generator on the other, and runs 16 streaming clients of
64 new tokens each (greedy, ``ignore_eos``: every request makes all 64) in
three mixes, interleaved and repeated so drift hits each alike:

- ``none``: no request asks for log probabilities;
- ``half``: every other client asks (``logprobs: true, top_logprobs: 5``);
- ``all``: every client asks.

Reported per mix: completion tokens/s (median of the repeats, and the
range) and tokens per second of the server's CPU time (what the work costs,
steadier than wall time on a shared machine).

    python benchmarks/logprobs_bench.py                    # about 5 minutes on 2 CPU cores
    python benchmarks/logprobs_bench.py --compare /tmp/base   # and another checkout's server, no logprobs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_bench import PROMPT, free_port, pinned, server_command, server_env, stop  # noqa: E402
from serve_model_factory import BENCH_SHAPE, MountLayout, build_mount  # noqa: E402  (serve_bench puts it on the path)

LOGPROBS = {"logprobs": True, "top_logprobs": 5}
MIXES = {"none": lambda client: False, "half": lambda client: client % 2 == 1, "all": lambda client: True}


async def one_stream(client: httpx.AsyncClient, url: str, model: str, max_tokens: int, logprobs: bool) -> int:
    """One streaming request, read to its end; its completion tokens (from the usage chunk)."""
    body = {"model": model, "messages": PROMPT, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True,
            "stream": True, "stream_options": {"include_usage": True}, **(LOGPROBS if logprobs else {})}
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        events = [line async for line in response.aiter_lines() if line.startswith("data: {")]
    last = json.loads(events[-1][6:])
    if "usage" not in last:
        raise RuntimeError(f"the stream did not end with its usage: {last}")
    return int(last["usage"]["completion_tokens"])


async def load(base_url: str, model: str, streams: int, rounds: int, max_tokens: int, mix: str) -> tuple[float, int]:
    """*streams* clients each send *rounds* requests back to back; (seconds, completion tokens)."""
    asks = MIXES[mix]
    url = f"{base_url}/v1/chat/completions"
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=streams + 4)) as client:

        async def client_loop(i: int) -> int:
            return sum([await one_stream(client, url, model, max_tokens, asks(i)) for _ in range(rounds)])

        started = time.perf_counter()
        tokens = sum(await asyncio.gather(*[client_loop(i) for i in range(streams)]))
        return time.perf_counter() - started, tokens


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(layout: MountLayout, streams: int, cpu: int, tree: Path | None, log_path: Path
                 ) -> tuple[subprocess.Popen[bytes], str, str]:
    """A batched server of *tree*'s azinfer (None: this checkout's), ready; (process, base URL, model id)."""
    port = free_port()
    command, ready_path, model = server_command("batched", layout, port, streams)
    env = server_env(cpu)
    if tree is not None:
        env["PYTHONPATH"] = str(tree.resolve())
    with log_path.open("w") as log:
        # Started in the log's folder: ``python -m`` puts its working folder first on the path.
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pinned(cpu),
                                  cwd=log_path.parent)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while True:
        try:
            if httpx.get(f"{base_url}{ready_path}").status_code == 200:
                return server, base_url, model
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            stop(server)
            raise RuntimeError(f"the server did not become ready:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="requests each client sends back to back per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each mix, interleaved")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--mixes", nargs="+", choices=MIXES, default=list(MIXES))
    parser.add_argument("--compare", type=Path,
                        help="also serve the azinfer of this checkout (idle while the other runs) and interleave "
                        "its runs of the mix without log probabilities")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.client_cpu})
    trees: list[Path | None] = [None] if args.compare is None else [None, args.compare]
    # Another checkout may not serve log probabilities: it runs the mix without them.
    rows = [(None, mix) for mix in args.mixes] + [(tree, "none") for tree in trees[1:]]
    rates: dict[tuple[Path | None, str], list[float]] = {row: [] for row in rows}
    per_cpu: dict[tuple[Path | None, str], list[float]] = {row: [] for row in rows}
    with tempfile.TemporaryDirectory() as folder:
        layout = build_mount(Path(folder) / "mount", BENCH_SHAPE)
        servers: dict[Path | None, tuple[subprocess.Popen[bytes], str, str]] = {}
        try:
            for i, tree in enumerate(trees):
                servers[tree] = start_server(layout, args.streams, args.server_cpu, tree, Path(folder) / f"{i}.log")
                _, base_url, model = servers[tree]
                asyncio.run(load(base_url, model, args.streams, 1, 8, args.mixes[0]))  # warm up
            for _ in range(args.repeats):
                for tree, mix in rows:
                    server, base_url, model = servers[tree]
                    cpu = cpu_seconds(server.pid)
                    seconds, tokens = asyncio.run(
                        load(base_url, model, args.streams, args.rounds, args.max_tokens, mix))
                    rates[tree, mix].append(tokens / seconds)
                    per_cpu[tree, mix].append(tokens / (cpu_seconds(server.pid) - cpu))
                    print(f"  {str(tree or 'this'):12} {mix:5} {rates[tree, mix][-1]:8.1f} tok/s "
                          f"{per_cpu[tree, mix][-1]:8.1f} tok/cpu-s", flush=True)
        finally:
            for server, _, _ in servers.values():
                stop(server)
    print(f"{args.streams} streams x {args.rounds} rounds x {args.max_tokens} tokens, {args.repeats} runs per row, "
          f"servers on core {args.server_cpu}")
    print("tree         mix    tok/s median (min-max)   tok/cpu-s median (min-max)")
    for row in rows:
        tree, mix = row
        print(f"{str(tree or 'this'):12} {mix:6} {statistics.median(rates[row]):8.1f} ({min(rates[row]):.0f}-"
              f"{max(rates[row]):.0f})   {statistics.median(per_cpu[row]):8.1f} ({min(per_cpu[row]):.0f}-"
              f"{max(per_cpu[row]):.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
