"""What each GPU profile type offers: its GPU (memory, bf16) and the regions that have it.

The facts live in ``azinfer/data/profiles.json``, each with its source and
date. An offline plan checks the region against this table; an online plan
asks Azure (the location's available workload profiles, in preflight).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from azinfer.project import GpuProfileType

__all__ = ["ProfileFacts", "profile_facts", "regions_offering"]


@dataclass(frozen=True)
class ProfileFacts:
    """One GPU profile type's row of the table."""

    gpu: str
    gpu_memory_gib: float
    bf16: bool
    gpu_source: str
    regions: frozenset[str]
    regions_source: str
    regions_date: str


@cache
def _table() -> dict[GpuProfileType, ProfileFacts]:
    data = json.loads(resources.files("azinfer").joinpath("data/profiles.json").read_text(encoding="utf-8"))
    return {
        GpuProfileType(name): ProfileFacts(
            row["gpu"], row["gpuMemoryGiB"], row["bf16"], row["gpuSource"],
            frozenset(row["regions"]), row["regionsSource"], row["regionsDate"],
        )
        for name, row in data["profiles"].items()
    }


def profile_facts(profile: GpuProfileType) -> ProfileFacts:
    """The table's row for ``profile``."""
    return _table()[profile]


def regions_offering(profile: GpuProfileType) -> list[str]:
    """The regions the table says offer ``profile``, sorted."""
    return sorted(_table()[profile].regions)
