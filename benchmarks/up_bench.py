"""``azinfer up`` against the ARM emulator with 200 ms per request, beside provision + deploy --restart by hand.

Run: python benchmarks/up_bench.py
- up (AzureProject.up) on a resource group as fine-tuning leaves it: each stage's seconds, the total, and
  the requests it made; then a rerun (nothing to redo).
- Baseline in the same run, on a fresh emulator: what a user types today, provision then deploy --restart
  (AzureProject.provision, AzureProject.deploy(restart=True)), timed the same way; then both again.
A replica takes REPLICA_START seconds to get ready (a restart waits for a fresh one), so a restart shows.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from azure_support import azure_project, make_project  # noqa: E402

from azinfer.local.emulator import ArmEmulator, ReplicaStart, seed_finetuning_group, seed_finetuning_share  # noqa: E402

LATENCY = 0.2
REPLICA_START = 1.0


def _timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def _fresh(emu: ArmEmulator, folder: str):  # type: ignore[no-untyped-def]
    group = seed_finetuning_group(emu, resource_group="rg-phi3-finetune", location="westus3")
    seed_finetuning_share(emu, group)
    emu.apps.default_start = ReplicaStart(ready_after=REPLICA_START)
    root = make_project(Path(folder), group.subscription_id, group.resource_group)
    emu.faults.latency(LATENCY, count=None)
    return azure_project(emu, root)


def bench_up() -> None:
    print(f"azinfer up, {LATENCY * 1000:.0f} ms per ARM request, a replica ready {REPLICA_START:g} s after it starts:")
    with ArmEmulator.start() as emu, tempfile.TemporaryDirectory() as tmp:
        project = _fresh(emu, tmp)
        for run in ("first run", "rerun"):
            emu.clear_requests()
            result = project.up()
            assert result.smoke is not None
            total = sum(stage.seconds for stage in result.stages)
            stages = ", ".join(f"{stage.name} {stage.seconds:.2f} s" for stage in result.stages)
            print(f"  up, {run}: {total:.2f} s ({stages}), {len(emu.requests)} requests; "
                  f"first token {result.smoke.first_token_seconds * 1000:.0f} ms")


def bench_by_hand() -> None:
    print("baseline, the same on a fresh emulator: provision, then deploy --restart (no smoke test):")
    with ArmEmulator.start() as emu, tempfile.TemporaryDirectory() as tmp:
        project = _fresh(emu, tmp)
        for run in ("first run", "rerun"):
            emu.clear_requests()
            provision = _timed(project.provision)
            deploy = _timed(lambda: project.deploy(restart=True))
            print(f"  by hand, {run}: {provision + deploy:.2f} s (provision {provision:.2f} s, deploy --restart "
                  f"{deploy:.2f} s), {len(emu.requests)} requests")


if __name__ == "__main__":
    bench_up()
    bench_by_hand()
