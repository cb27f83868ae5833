"""Print the constraints file of the serving dependencies, pinned at the versions this environment has.

Run in CI's environment: ``python -m tests.freeze_constraints > azinfer/serve/constraints.txt``.
The container's start installs with ``pip -c`` of that file (see azinfer/serve/bootstrap.py).
"""

from __future__ import annotations

import importlib.metadata as metadata
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


def serving_requirements() -> list[Requirement]:
    """azinfer's own dependencies and those of its ``serve`` extra, from pyproject.toml."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["serve"]]


def freeze() -> dict[str, str]:
    """Every distribution the serving requirements pull in, with its installed version (no local label)."""
    pinned: dict[str, str] = {}
    todo = serving_requirements()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in pinned:
            continue
        dist = metadata.distribution(name)
        pinned[name] = dist.version.split("+")[0]
        for text in dist.requires or []:
            dependency = Requirement(text)
            if dependency.marker is None or dependency.marker.evaluate({"extra": ""}):
                todo.append(dependency)
    return dict(sorted(pinned.items()))


if __name__ == "__main__":
    print("# The serving dependencies azinfer's CI tests, pinned for the container's install (pip -c).")
    print("# Regenerate in the CI environment: python -m tests.freeze_constraints > azinfer/serve/constraints.txt")
    for name, version in freeze().items():
        print(f"{name}=={version}")
