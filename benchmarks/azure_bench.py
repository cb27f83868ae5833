"""Planning and provisioning against the ARM emulator: latency, request count, injected faults.

Run: python benchmarks/azure_bench.py
- `azinfer plan` (AzureProject.plan) against a resource group as fine-tuning leaves it, with 200 ms of
  emulator latency on every request; target: within 5x that latency. Baseline in the same run: the
  same reads made one after another.
- Every fault of tests/test_azure_provision.py injected into a provision: survived / failed cleanly,
  and the writes that reached a reused resource (must be 0).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from azure_support import azure_project, make_project  # noqa: E402
from test_azure_provision import FAULTS  # noqa: E402

from azinfer.errors import AzinferError  # noqa: E402
from azinfer.project import INFERENCE_CONFIG  # noqa: E402
from azinfer.local.emulator import ArmEmulator, seed_finetuning_group  # noqa: E402

LATENCY = 0.2


def _sequential_reads(project, group) -> None:  # type: ignore[no-untyped-def]
    """The baseline: the inventory's reads, one after another."""
    c = project.clients
    rg = group.resource_group
    c.resources.resource_groups.get(rg)
    list(c.storage.storage_accounts.list_by_resource_group(rg))
    list(c.logs.workspaces.list_by_resource_group(rg))
    list(c.apps.managed_environments.list_by_resource_group(rg))
    list(c.apps.container_apps.list_by_resource_group(rg))
    list(c.apps.jobs.list_by_resource_group(rg))
    c.apps.managed_environments_storages.list(rg, group.environment)
    list(c.storage.file_shares.list(rg, group.storage_account))


def bench_plan() -> None:
    with ArmEmulator.start() as emu, tempfile.TemporaryDirectory() as tmp:
        group = seed_finetuning_group(emu, resource_group="rg-phi3-finetune", location="westus3")
        root = make_project(Path(tmp), group.subscription_id, group.resource_group)
        emu.faults.latency(LATENCY, count=None)
        project = azure_project(emu, root)
        emu.clear_requests()
        start = time.perf_counter()
        plan = project.plan()
        wall = time.perf_counter() - start
        requests = len(emu.requests)
        assert plan.summary() == {"create": 1, "reuse": 5, "update": 0}
        emu.clear_requests()
        start = time.perf_counter()
        _sequential_reads(project, group)
        baseline = time.perf_counter() - start
        print(f"plan against the fine-tuning group, {LATENCY * 1000:.0f} ms per request:")
        print(f"  azinfer (concurrent reads): {wall * 1000:.0f} ms, {requests} requests (token included), "
              f"{wall / LATENCY:.1f}x the latency (target <= 5x)")
        print(f"  baseline, the same reads in sequence (token already cached): {baseline * 1000:.0f} ms, "
              f"{len(emu.requests)} requests, {baseline / LATENCY:.1f}x the latency")


def bench_faults() -> None:
    survived = failed_cleanly = broken = writes_to_reused = 0
    for name, inject in FAULTS.items():
        with ArmEmulator.start() as emu, tempfile.TemporaryDirectory() as tmp:
            group = seed_finetuning_group(emu, resource_group="rg-phi3-finetune", location="westus3")
            root = make_project(Path(tmp), group.subscription_id, group.resource_group)
            inject(emu)
            try:
                azure_project(emu, root).provision()
                outcome = "survived"
                survived += 1
            except AzinferError as exc:
                clean = not (root / INFERENCE_CONFIG).exists()
                outcome = f"failed cleanly ({type(exc).__name__})" if clean else "FAILED, config touched"
                failed_cleanly += clean
                broken += not clean
            writes = sum(len(emu.writes_to(rid)) for rid in group.ids.values())
            writes_to_reused += writes
            print(f"  {name:<28} {outcome}; writes to reused resources: {writes}")
    print(f"faults injected: {len(FAULTS)}, survived: {survived}, failed cleanly: {failed_cleanly}, "
          f"failed uncleanly: {broken}; writes to reused resources: {writes_to_reused}")


if __name__ == "__main__":
    bench_plan()
    bench_faults()
