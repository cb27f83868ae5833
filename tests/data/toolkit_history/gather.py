"""Rebuild this folder from a git mirror of microsoft/windows-ai-studio-templates.

Usage: python gather.py /path/to/windows-ai-studio-templates.git

Walks every commit of every ref, reads each model folder's four infra files
(the inference and fine-tuning parameters and config files), and keeps each
distinct combination once, with the first commit that holds it. Only folders
with an inference parameters file are kept: those are the projects azinfer
deploys. Older commits kept the parameters files directly in ``infra/``
(layout "legacy"); the toolkit's released layout is ``infra/provision/``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = (
    "inference.parameters.json",
    "finetuning.parameters.json",
    "inference.config.json",
    "finetuning.config.json",
)
# Where each file sits under a model folder's infra/, per layout.
LAYOUTS = {
    "provision": {
        "inference.parameters.json": "provision/inference.parameters.json",
        "finetuning.parameters.json": "provision/finetuning.parameters.json",
        "inference.config.json": "inference.config.json",
        "finetuning.config.json": "finetuning.config.json",
    },
    "legacy": {
        "inference.parameters.json": "inference.parameters.json",
        "finetuning.parameters.json": "finetuning.parameters.json",
        "inference.config.json": "inference.config.json",
        "finetuning.config.json": "finetuning.config.json",
    },
}


def git(mirror: Path, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", str(mirror), *args], check=True,
                          capture_output=True, text=True).stdout


def blob_id(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()[:12]


def gather(mirror: Path) -> tuple[list[dict], dict[str, bytes]]:
    """Return the manifest's versions (oldest first) and the blobs they name."""
    main = set(git(mirror, "rev-list", "refs/heads/main").split())
    commits = [(sha, datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
               for sha, ts in (line.split() for line in
                               git(mirror, "log", "--all", "--format=%H %ct").splitlines())]
    git_blobs: dict[str, bytes] = {}
    blobs: dict[str, bytes] = {}
    seen: dict[tuple, dict] = {}

    def read(sha: str) -> bytes:
        if sha not in git_blobs:
            git_blobs[sha] = subprocess.run(["git", "--git-dir", str(mirror), "cat-file", "blob", sha],
                                            check=True, capture_output=True).stdout
        return git_blobs[sha]

    for commit, date in commits:
        tree = {}
        for line in git(mirror, "ls-tree", "-r", "--full-tree", commit).splitlines():
            meta, path = line.split("\t", 1)
            if "/infra/" in path:
                tree[path] = meta.split()[2]
        folders = {p.split("/infra/")[0] for p in tree}
        for folder in folders:
            layout = "provision" if f"{folder}/infra/provision/inference.parameters.json" in tree else "legacy"
            paths = {name: f"{folder}/infra/{rel}" for name, rel in LAYOUTS[layout].items()}
            if paths["inference.parameters.json"] not in tree:
                continue
            files = {}
            for name, path in paths.items():
                if path in tree:
                    data = read(tree[path])
                    files[name] = blob_id(data)
                    blobs[files[name]] = data
                else:
                    files[name] = None
            key = (folder, layout, tuple(files.values()))
            version = seen.get(key)
            if version is None:
                version = seen[key] = {
                    "model": folder, "layout": layout, "first_commit": commit, "first_date": date,
                    "commits": 0, "on_main": False, "files": files,
                }
            version["commits"] += 1
            version["on_main"] = version["on_main"] or commit in main
            if date < version["first_date"]:
                version["first_commit"], version["first_date"] = commit, date
    versions = sorted(seen.values(), key=lambda v: (v["model"], v["first_date"], v["first_commit"]))
    for v in versions:
        digest = hashlib.sha1(json.dumps([v["model"], v["layout"], v["files"]]).encode()).hexdigest()
        v["id"] = f"{v['model'].rsplit('/', 1)[-1]}-{digest[:8]}"
    return versions, blobs


def main() -> None:
    mirror = Path(sys.argv[1])
    versions, blobs = gather(mirror)
    (HERE / "blobs").mkdir(exist_ok=True)
    for bid, data in blobs.items():
        (HERE / "blobs" / f"{bid}.json").write_bytes(data)
    head = git(mirror, "rev-parse", "refs/heads/main").strip()
    keys = ("id", "model", "layout", "first_commit", "first_date", "commits", "on_main", "files")
    manifest = {
        "source": "https://github.com/microsoft/windows-ai-studio-templates",
        "main_at": head,
        "versions": [{k: v[k] for k in keys} for v in versions],
    }
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(versions)} versions of {len({v['model'] for v in versions})} model folders, "
          f"{len(blobs)} blobs")


if __name__ == "__main__":
    main()
