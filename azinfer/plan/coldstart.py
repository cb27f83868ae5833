"""How long a serverless replica takes to start: image pull, weights from the share, engine start.

Pure arithmetic on the figures of ``azinfer/data/coldstart.json`` (each an
estimate with its source): the image's compressed size at the pull rate, the
weights' bytes (:mod:`azinfer.plan.fit`) at the share's per-file rate, and
the engine's start. A part azinfer has no figure for (an image of your own, a
model it does not know) is left out and named in ``unknown``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from azinfer.plan.fit import Fit

__all__ = ["ColdStart", "estimate_cold_start", "ingress_seconds"]

_MIB = 1024**2


@cache
def _figures() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        resources.files("azinfer").joinpath("data/coldstart.json").read_text(encoding="utf-8"))
    return loaded


def ingress_seconds() -> int:
    """How long Container Apps ingress waits for a response."""
    return int(_figures()["ingressSeconds"]["value"])


@dataclass(frozen=True)
class ColdStart:
    """The estimated parts of a cold start, in seconds, and the parts with no figure."""

    parts: tuple[tuple[str, float], ...]
    unknown: tuple[str, ...]

    @property
    def seconds(self) -> float:
        """The parts' sum (a lower bound when some part is unknown)."""
        return sum(seconds for _, seconds in self.parts)

    def summary(self) -> str:
        """``about N minutes: image pull about A s, ...``, naming what is left out."""
        parts = ", ".join(f"{what} about {seconds:.0f} s" for what, seconds in self.parts)
        minutes = max(1, round(self.seconds / 60))
        left_out = f"; not counted: {', '.join(self.unknown)}" if self.unknown else ""
        return (f"{'at least ' if self.unknown else ''}about {minutes} minute{'s' if minutes > 1 else ''}: "
                f"{parts}{left_out}")

    def to_json(self) -> dict[str, Any]:
        """The estimate's JSON form."""
        return {"seconds": round(self.seconds), "summary": self.summary(),
                "parts": [{"what": what, "seconds": round(seconds)} for what, seconds in self.parts],
                "unknown": list(self.unknown), "estimate": True}


def estimate_cold_start(image: str, fit: Fit | None) -> ColdStart:
    """The cold start of a replica running ``image`` with the model ``fit`` describes."""
    figures = _figures()
    parts: list[tuple[str, float]] = []
    unknown: list[str] = []
    known_image = figures["images"].get(image)
    if known_image is None:
        unknown.append(f"the pull of image {image} (its size is not in azinfer's table)")
    else:
        parts.append(("image pull", known_image["compressedGB"] * 1000 / figures["pullMBps"]["value"]))
    if fit is None or not fit.weights_gib:
        unknown.append("the weights' load (the model's size is unknown)")
    else:
        parts.append(("weights from the share", fit.weights_gib * 1024 / figures["shareMiBps"]["value"]))
    parts.append(("engine start", float(figures["engineSeconds"]["value"])))
    return ColdStart(tuple(parts), tuple(unknown))
