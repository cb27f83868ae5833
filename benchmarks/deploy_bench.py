"""Deploy against the ARM emulator (Azure Files data plane) with 50 ms of latency on every request.

Run: python benchmarks/deploy_bench.py
A project whose own start command needs its 200-file inference folder on the share
(a share holding what fine-tuning left there); each number beside its baseline, same run:
- Redeploy after changing 1 file: files and bytes uploaded, requests, wall time
  (goal: that 1 file). Baseline: the same deploy after every file changed (everything uploaded).
- Deploy of an unchanged project: requests made, by kind (goal: the listing of the folders deploy
  owns and one read of the manifest; no upload, no restart). Baseline: the same with the
  manifest gone (then each file's Content-MD5 is asked for, one HEAD each, and the manifest is
  written back: the deploy after that is cheap again).
- Across all of it: writes to the reused fine-tuning resources (ARM) and share writes outside
  .azinfer/ and the mirrored inference/ folder (both must be 0).
"""

from __future__ import annotations

import collections
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from azure_support import DEPLOY_OWNED, azure_project, make_project, share_writes_outside  # noqa: E402

from azinfer.azure.share import MANIFEST  # noqa: E402
from azinfer.local.emulator import ArmEmulator, seed_finetuning_group, seed_finetuning_share  # noqa: E402

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


def _requests(emu: ArmEmulator) -> dict[str, int]:
    """Requests since the last clear, by service and kind (the sign-in's token requests left out)."""
    counts: collections.Counter[str] = collections.Counter()
    for r in emu.requests:
        if r.service == "file":
            kind = "list" if r.query.get("comp") == "list" else r.method
            counts[f"share {kind}"] += 1
        elif r.path.lower().startswith("/subscriptions/"):
            counts["ARM restart" if r.path.lower().endswith("/restart") else f"ARM {r.method}"] += 1
    return dict(sorted(counts.items()))


def _total(counts: dict[str, int], prefix: str) -> int:
    return sum(n for kind, n in counts.items() if kind.startswith(prefix))


OWNED = (*DEPLOY_OWNED, "inference")
# Over every scenario, provision included (read before each clear of emu.requests):
outside: list[str] = []  # share writes outside what deploy owns
reused: list[object] = []  # ARM writes to the fine-tuning resources


def _audit(emu: ArmEmulator, group) -> None:  # type: ignore[no-untyped-def]
    outside.extend(share_writes_outside(emu, OWNED))
    reused.extend(w for rid in group.ids.values() for w in emu.writes_to(rid))


def _timed(emu: ArmEmulator, group, deploy):  # type: ignore[no-untyped-def]
    _audit(emu, group)
    emu.clear_requests()
    start = time.perf_counter()
    result = deploy()
    return result, time.perf_counter() - start, _requests(emu)


def main() -> None:
    with ArmEmulator.start() as emu, tempfile.TemporaryDirectory() as tmp:
        group = seed_finetuning_group(emu, resource_group="rg-phi3-finetune", location="westus3")
        seed_finetuning_share(emu, group)
        root = _project(Path(tmp), group)
        project = azure_project(emu, root)
        project.provision()  # creates the app; puts the server and the 200 files on the share
        inference = [p for p in emu.files(group.storage_account, group.file_share) if p.startswith("inference/pkg")]
        assert len(inference) == FILES, len(inference)
        emu.faults.latency(LATENCY, count=None)

        # Baseline: every file changed, so everything is uploaded (restart=False: the upload alone is timed).
        for path in sorted((root / "inference").rglob("*.py")):
            path.write_text(path.read_text() + "# touched\n")
        everything, everything_s, everything_req = _timed(emu, group, lambda: project.deploy(restart=False))
        (root / "inference" / "pkg3" / "module13.py").write_text("# changed\n")
        one, one_s, one_req = _timed(emu, group, lambda: project.deploy(restart=False))

        unchanged, unchanged_s, unchanged_req = _timed(emu, group, project.deploy)
        emu.share(group.storage_account, group.file_share).remove(MANIFEST)
        no_manifest, no_manifest_s, no_manifest_req = _timed(emu, group, project.deploy)
        after, after_s, after_req = _timed(emu, group, project.deploy)  # the manifest is back

        _audit(emu, group)

    print(f"deploy: {FILES}-file inference folder, {LATENCY * 1000:.0f} ms emulator latency per request")
    print(f"  redeploy after changing 1 file:  {len(one.sync.uploaded)} file(s) {list(one.sync.uploaded)}, "
          f"{one.sync.uploaded_bytes} bytes, {_total(one_req, 'share')} share requests, {one_s:.2f} s")
    print(f"    baseline, everything changed:  {len(everything.sync.uploaded)} files, "
          f"{everything.sync.uploaded_bytes} bytes, {_total(everything_req, 'share')} share requests, "
          f"{everything_s:.2f} s  ({everything_s / one_s:.1f}x the time, "
          f"{everything.sync.uploaded_bytes / max(one.sync.uploaded_bytes, 1):.0f}x the bytes)")
    print(f"  unchanged deploy:                {_total(unchanged_req, '')} requests {unchanged_req}, "
          f"uploaded {len(unchanged.sync.uploaded)}, restarted: {unchanged.restarted}, {unchanged_s:.2f} s")
    print(f"    baseline, manifest gone:       {_total(no_manifest_req, '')} requests {no_manifest_req}, "
          f"uploaded {len(no_manifest.sync.uploaded)}, restarted: {no_manifest.restarted}, {no_manifest_s:.2f} s")
    print(f"    the next one (manifest back):  {_total(after_req, '')} requests {after_req}, "
          f"uploaded {len(after.sync.uploaded)}, restarted: {after.restarted}, {after_s:.2f} s")
    print(f"  writes to reused fine-tuning resources (ARM), all scenarios: {len(reused)}")
    print(f"  share writes outside .azinfer/ and inference/, all scenarios: {len(outside)}")


if __name__ == "__main__":
    main()
