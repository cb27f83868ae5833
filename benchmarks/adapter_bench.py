"""Named adapters on one base: throughput with two adapters in a batch against one, and a new adapter against a restart.

Builds the benchmark model of ``serve_bench.py`` (Phi-3's layout, about 40 MB)
with three LoRA adapters, and starts ``azinfer serve --adapter alpha=...
--adapter beta=... --adapter-poll P`` pinned to one core (on a GPU machine:
the GPU), this load generator on another. In the same run it reports:

- **mixed batch**: aggregate completion tokens/s with ``--concurrency``
  streaming clients all asking for ``alpha``, then half ``alpha`` and half
  ``beta`` (so each batch holds both), alternated ``--repeats`` times; the
  ratio of the medians is the cost of mixing;
- **new adapter**: seconds from copying an adapter folder into
  ``<mount>/models/azinfer/gamma`` (what ``azinfer deploy --adapter DIR
  --name gamma`` writes) to the first answer from ``gamma``; and from
  ``POST /v1/load_lora_adapter`` to that answer;
- **restart**: seconds from stopping the server to the first answer of a
  fresh one started with ``gamma`` (process start, imports, weights, adapters).

    python benchmarks/adapter_bench.py                      # batched engine, a few minutes on 2 CPU cores
    python benchmarks/adapter_bench.py --engine vllm        # on a GPU (or vLLM's CPU build)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from serve_bench import free_port, load, pinned, server_env, stop  # also puts tests/serve on the path, offline
from serve_model_factory import BENCH_SHAPE, PHI3_MINI_SHAPE, MountLayout, build_adapter, build_mount

SHAPES = {"bench": BENCH_SHAPE, "phi3-mini": PHI3_MINI_SHAPE}
ASK = [{"role": "user", "content": "hello"}]


def start(engine: str, layout: MountLayout, adapters: dict[str, Path], port: int, batch: int, poll: float,
          cpu: int | None, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "azinfer.serve", "--mount", str(layout.root), "--port", str(port),
               "--engine", engine, "--max-batch-size", str(batch), "--adapter-poll", str(poll),
               "--adapter-dir", str(layout.adapter_dir), "--max-lora-rank", "8",
               *[f"--adapter={name}={folder}" for name, folder in adapters.items()]]
    with log.open("a") as out:
        return subprocess.Popen(command, env=server_env(cpu), stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=pinned(cpu))


def first_answer(base_url: str, model: str, deadline: float = 600) -> float:
    """Ask *model* every 50 ms until it answers; the moment it did (``time.perf_counter``)."""
    give_up = time.monotonic() + deadline
    body = {"model": model, "messages": ASK, "max_tokens": 1}
    while time.monotonic() < give_up:
        try:
            if httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=30).status_code == 200:
                return time.perf_counter()
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{model} did not answer within {deadline} s")


async def mixed_load(base_url: str, models: list[str], concurrency: int, rounds: int, max_tokens: int) -> float:
    """Tokens/s with the clients spread evenly over *models*."""
    share = concurrency // len(models)
    started = time.perf_counter()
    results = await asyncio.gather(*[load(base_url, model, share, rounds, max_tokens) for model in models])
    return sum(tokens for _, _, tokens in results) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("batched", "vllm"), default="batched")
    parser.add_argument("--shape", choices=SHAPES, default="bench")
    parser.add_argument("--concurrency", type=int, default=8, help="streaming clients (default 8, even)")
    parser.add_argument("--rounds", type=int, default=2, help="requests each client sends back to back (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="one-adapter and two-adapter loads, alternated")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--poll", type=float, default=1.0, help="the server's --adapter-poll (default 1 s)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    import torch

    cpu = None if torch.cuda.is_available() else args.server_cpu
    work = Path(tempfile.mkdtemp(prefix="azinfer-adapter-bench-"))
    shape = SHAPES[args.shape]
    layout = build_mount(work / "mount", shape)
    named = {name: work / "adapters" / name for name in ("alpha", "beta", "gamma")}
    for seed, folder in enumerate(named.values(), start=2):
        build_adapter(layout.model_dir, folder, layout.hub_id, shape, seed=seed)
    log = work / "server.log"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = start(args.engine, layout, {"alpha": named["alpha"], "beta": named["beta"]}, port, args.concurrency,
                   args.poll, cpu, log)
    figures: dict[str, object] = {"engine": args.engine, "shape": args.shape, "concurrency": args.concurrency}
    try:
        first_answer(base_url, "alpha")
        asyncio.run(mixed_load(base_url, ["alpha"], args.concurrency, 1, 8))  # warm up
        one, two = [], []
        for _ in range(args.repeats):
            one.append(asyncio.run(mixed_load(base_url, ["alpha"], args.concurrency, args.rounds, args.max_tokens)))
            two.append(asyncio.run(mixed_load(base_url, ["alpha", "beta"], args.concurrency, args.rounds,
                                              args.max_tokens)))
        figures.update(one_adapter_tok_s=round(statistics.median(one), 1), two_adapters_tok_s=round(statistics.median(two), 1))
        print(f"one adapter   {figures['one_adapter_tok_s']:8.1f} tok/s (runs {[round(x, 1) for x in one]})")
        print(f"two adapters  {figures['two_adapters_tok_s']:8.1f} tok/s (runs {[round(x, 1) for x in two]}), "
              f"{statistics.median(two) / statistics.median(one):.0%} of one")

        share = layout.root / "models" / "azinfer" / "gamma"
        copied = time.perf_counter()
        shutil.copytree(named["gamma"], share)
        figures["share_to_answer_s"] = round(first_answer(base_url, "gamma") - copied, 2)
        shutil.rmtree(share)
        while "gamma" in {m["id"] for m in httpx.get(f"{base_url}/v1/models").json()["data"]}:
            time.sleep(0.05)
        spare = shutil.copytree(named["gamma"], layout.root / "spare" / "gamma")  # the route loads below the mount
        posted = time.perf_counter()
        httpx.post(f"{base_url}/v1/load_lora_adapter", timeout=120,
                   json={"lora_name": "gamma", "lora_path": str(spare)}).raise_for_status()
        figures["route_to_answer_s"] = round(first_answer(base_url, "gamma") - posted, 2)
    finally:
        stopped = time.perf_counter()
        stop(server)
    server = start(args.engine, layout, named, port, args.concurrency, args.poll, cpu, log)
    try:
        figures["restart_to_answer_s"] = round(first_answer(base_url, "gamma") - stopped, 2)
    finally:
        stop(server)
    print(f"new adapter on the share -> first answer  {figures['share_to_answer_s']:6.2f} s (--adapter-poll {args.poll})")
    print(f"POST /v1/load_lora_adapter -> first answer {figures['route_to_answer_s']:6.2f} s")
    print(f"restart of the server -> first answer      {figures['restart_to_answer_s']:6.2f} s (log: {log})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
