"""Requests that fail while a new version takes over, under steady load, on the ARM emulator (in process).

Run: python benchmarks/rollout_load.py [READY_SECONDS]   (default 1.0)
One thread sends chat completions to the app's address one after another
(tests/azure_support.py ``SteadyLoad``); each new replica takes READY_SECONDS to
get ready. Printed: requests sent and failed during ``deploy(canary=True,
steps=4)`` (goal: 0 failed), beside the baseline of the same run: a plain
``deploy(restart=True)``, which replaces the serving replicas.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from azure_support import SteadyLoad, azure_project, make_project  # noqa: E402

from azinfer.local.emulator import ArmEmulator, seed_finetuning_group, seed_finetuning_share  # noqa: E402
from azinfer.local.emulator.containerapps import ReplicaStart  # noqa: E402


def main() -> None:
    ready = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    with ArmEmulator.start() as emu, tempfile.TemporaryDirectory() as tmp:
        group = seed_finetuning_group(emu, resource_group="rg-rollout", location="westus3")
        seed_finetuning_share(emu, group)
        project = azure_project(emu, make_project(Path(tmp), group.subscription_id, group.resource_group))
        project.provision()
        app = f"aiacaapp{group.suffix}"
        emu.apps.default_start = ReplicaStart(ready_after=ready)
        url, key = emu.apps.ingress_url(app), project.api_key()
        for name, deploy in (("deploy --canary --steps 4", lambda: project.deploy(canary=True, steps=4,
                                                                                   step_wait=0.5)),
                             ("deploy --restart (baseline)", lambda: project.deploy(restart=True))):
            with SteadyLoad(emu, url, key) as load:
                time.sleep(0.3)
                started = time.monotonic()
                deploy()
                took = time.monotonic() - started
                time.sleep(0.3)
            revisions = [r.name for r in emu.apps.find(app).revisions]
            print(f"{name:<28} {len(load.answers):>6} requests {load.failed(*revisions):>6} failed   "
                  f"({took:.1f} s, replicas ready {ready:g} s after start)")


if __name__ == "__main__":
    main()
