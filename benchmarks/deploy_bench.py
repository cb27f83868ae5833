"""Deploy against the ARM emulator (Azure Files data plane) with 50 ms of latency on every request.

Run: python benchmarks/deploy_bench.py
- A project whose own start command needs its 200-file inference folder on the share:
  the first deploy uploads everything (the baseline, same run); then one file changes and
  deploy runs again. Files and bytes uploaded and wall time of each (goal: the one file).
- A deploy of the unchanged project: requests made, by kind (goal: listing and the manifest
  only, no upload, no restart); the same with the manifest gone (one HEAD per file instead).
- Writes to the reused fine-tuning resources across all of it (must be 0).
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from azure_support import azure_project, make_project  # noqa: E402

from tests.emulator import ArmEmulator, seed_finetuning_group  # noqa: E402

LATENCY = 0.05
FILES = 200


def _project(root: Path, group) -> Path:  # type: ignore[no-untyped-def]
    make_project(root, group.subscription_id, group.resource_group,
                 {"defaultCommands": ["cd /mount/inference", "python3 ./server.py --port 7860"]})
    for i in range(FILES):
        path = root / "inference" / f"pkg{i % 10}" / f"module{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# module {i}\n" + "x = 1\n" * (200 + 37 * i))
    return root


def _kinds(emu: ArmEmulator, account: str) -> dict[str, int]:
    counts: collections.Counter[str] = collections.Counter()
    for r in emu.requests:
        if r.path.startswith(f"/{account}/"):
            kind = "list" if r.query.get("comp") == "list" else r.method
            counts[f"share {kind}"] += 1
        elif r.path.lower().startswith("/subscriptions/"):
            counts[f"ARM {r.method}"] += 1
    return dict(sorted(counts.items()))


def main() -> None:
    with ArmEmulator.start() as emu, tempfile.TemporaryDirectory() as tmp:
        group = seed_finetuning_group(emu, resource_group="rg-phi3-finetune", location="westus3")
        root = _project(Path(tmp), group)
        project = azure_project(emu, root)
        project.provision()  # creates the app; puts the server and the 200 files on the share
        share_files = [p for p in emu.files(group.storage_account, group.file_share) if p.startswith("inference/")]
        assert len(share_files) == FILES, len(share_files)
        emu.faults.latency(LATENCY, count=None)

        # Baseline in the same run: everything uploaded (the inference folder and the server), no restart.
        for path in sorted((root / "inference").rglob("*.py")):
            path.write_text(path.read_text() + "# touched\n")
        start = time.perf_counter()
        everything = project.deploy(restart=False).sync
        everything_s = time.perf_counter() - start

        (root / "inference" / "pkg3" / "module13.py").write_text("# changed\n")
        start = time.perf_counter()
        one = project.deploy(restart=False).sync
        one_s = time.perf_counter() - start

        emu.clear_requests()
        start = time.perf_counter()
        unchanged = project.deploy()
        unchanged_s = time.perf_counter() - start
        unchanged_kinds = _kinds(emu, group.storage_account)

        with_manifest = sum(v for k, v in unchanged_kinds.items() if k.startswith("share"))
        from azinfer.azure.share import MANIFEST, open_share

        config = project.config()
        open_share(project.clients, group.resource_group, config.storage_account_name or "",
                   config.file_share_name or "", **project.client_kwargs).get_file_client(MANIFEST).delete_file()
        emu.clear_requests()
        project.deploy()
        no_manifest_kinds = _kinds(emu, group.storage_account)

        reused_writes = sum(len(emu.writes_to(rid)) for rid in group.ids.values())

    print(f"deploy, {FILES}-file inference folder, {LATENCY * 1000:.0f} ms emulator latency per request")
    print(f"  upload everything (baseline): {len(everything.uploaded)} files, {everything.uploaded_bytes} bytes, "
          f"{everything_s:.2f} s")
    print(f"  redeploy after changing 1 file: {len(one.uploaded)} file(s) {list(one.uploaded)}, "
          f"{one.uploaded_bytes} bytes, {one_s:.2f} s ({everything_s / one_s:.1f}x faster)")
    print(f"  unchanged deploy: {unchanged_s:.2f} s, restarted: {unchanged.restarted}, requests {unchanged_kinds}")
    print(f"    share requests with the manifest: {with_manifest}; "
          f"without it (HEAD per file): {sum(v for k, v in no_manifest_kinds.items() if k.startswith('share'))} "
          f"{no_manifest_kinds}")
    print(f"  writes to reused fine-tuning resources: {reused_writes}")


if __name__ == "__main__":
    main()
