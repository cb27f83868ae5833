"""Every version of the AI Toolkit templates' infra files, as users have them.

The data lives in ``tests/data/toolkit_history/`` (see its README): a manifest
of distinct versions per model folder and the exact bytes of each file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType

DATA = Path(__file__).resolve().parent / "data" / "toolkit_history"

# Where the AI Toolkit keeps each file in a project, relative to the project folder.
PROJECT_PATHS = MappingProxyType({
    "inference.parameters.json": Path("infra/provision/inference.parameters.json"),
    "finetuning.parameters.json": Path("infra/provision/finetuning.parameters.json"),
    "inference.config.json": Path("infra/inference.config.json"),
    "finetuning.config.json": Path("infra/finetuning.config.json"),
})


@dataclass(frozen=True)
class Version:
    """One distinct combination of a model folder's infra files.

    ``files`` maps each of the four file names in ``PROJECT_PATHS`` to its
    blob id, or None where that version has no such file. ``layout`` is
    "provision" (the released layout) or "legacy" (early commits that kept
    the parameters files directly in ``infra/``). ``on_main`` says whether
    the version was ever on the main branch rather than only on other refs.
    """

    id: str
    model: str
    layout: str
    commit: str
    date: str
    on_main: bool
    files: Mapping[str, str | None]

    def data(self, name: str) -> bytes | None:
        """The exact bytes of file ``name`` as shipped, or None if absent."""
        blob = self.files[name]
        return None if blob is None else (DATA / "blobs" / f"{blob}.json").read_bytes()


@cache
def versions() -> tuple[Version, ...]:
    """All versions in the manifest, ordered by model folder then first appearance."""
    manifest = json.loads((DATA / "manifest.json").read_text())
    return tuple(
        Version(id=v["id"], model=v["model"], layout=v["layout"], commit=v["first_commit"],
                date=v["first_date"], on_main=v["on_main"], files=MappingProxyType(dict(v["files"])))
        for v in manifest["versions"]
    )


def materialize(version: Version, root: Path) -> Path:
    """Write ``version`` as an AI Toolkit project folder ``root/<id>`` and return it.

    Files are placed where the released toolkit keeps them whatever the
    version's layout; absent files are not written.
    """
    project = root / version.id
    project.mkdir(parents=True, exist_ok=True)
    for name, rel in PROJECT_PATHS.items():
        data = version.data(name)
        if data is not None:
            (project / rel).parent.mkdir(parents=True, exist_ok=True)
            (project / rel).write_bytes(data)
    return project
