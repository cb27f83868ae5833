"""What the endpoint costs: per replica-hour, idle, busy, per month, and against the other GPU profiles.

Pure arithmetic on a :class:`PriceTable`. A serverless replica is billed per
second for its GPU, vCPUs and GiB of memory (``GPU_SPECS``: A100 24 vCPU /
220 GiB, T4 8 vCPU / 56 GiB), only while it runs; a dedicated profile per
node-hour (one A100 node per replica) plus the environment's management fee
while a node runs. A month is :data:`HOURS_PER_MONTH` hours, of which
``busy_hours`` run ``maxReplicas`` and the rest ``minReplicas``. Idle
replicas are counted at the active rate (Azure may bill an idle serverless
replica's vCPU and memory lower), and the monthly free grants of vCPU- and
GiB-seconds are left out: the figures err high.

The shipped table is ``azinfer/data/prices.json``; ``--prices FILE`` gives
another of the same format (``schemas/prices.schema.json``), which
``azinfer prices --refresh`` writes from the Azure Retail Prices API.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from azinfer._jsonfile import read_json, validate
from azinfer.errors import ProjectFileError
from azinfer.project import GPU_SPECS, GpuProfileType

__all__ = [
    "PriceFigure", "PriceTable", "CostLine", "Cost", "shipped_prices", "load_prices", "estimate_cost",
    "HOURS_PER_MONTH", "DEFAULT_BUSY_HOURS", "DEFAULT_BUSY_HOURS_WHY", "STALE_DAYS",
]

HOURS_PER_MONTH = 730
"""Azure's pricing pages count a month as 730 hours."""
DEFAULT_BUSY_HOURS = 176.0
DEFAULT_BUSY_HOURS_WHY = "default: 8 hours on 22 working days"
STALE_DAYS = 90
"""A plan warns when its prices are older than this."""

# The GPU figure of each serverless profile type; its vCPUs and memory are GPU_SPECS'.
_GPU_FIGURES = {
    GpuProfileType.CONSUMPTION_NC24_A100: "serverlessA100GpuSecond",
    GpuProfileType.CONSUMPTION_NC8AS_T4: "serverlessT4GpuSecond",
}
_LABELS = {
    GpuProfileType.CONSUMPTION_NC24_A100: "serverless A100",
    GpuProfileType.CONSUMPTION_NC8AS_T4: "serverless T4",
    GpuProfileType.NC24_A100: "dedicated A100",
}


def _meters(profile: GpuProfileType) -> tuple[tuple[str, float, str], ...]:
    """What one replica (serverless) or node (dedicated) is billed by: (figure, quantity, meter)."""
    spec = GPU_SPECS[profile]
    if not spec.serverless:
        return (("dedicatedA100InstanceHour", 1, "A100 node"),)
    return ((_GPU_FIGURES[profile], 1, "GPU"), ("consumptionVcpuSecond", spec.cpu, "vCPU"),
            ("consumptionGibSecond", float(spec.memory.removesuffix("Gi")), "GiB memory"))


@dataclass(frozen=True)
class PriceFigure:
    """One price: per ``unit`` (seconds for serverless meters, hours for dedicated ones)."""

    unit_price: float
    unit: str
    meter_name: str
    currency: str
    region: str
    date: str
    source: str
    estimate: bool

    @property
    def per_hour(self) -> float:
        """The price of one unit held for an hour."""
        return self.unit_price * (3600 if "second" in self.unit.lower() else 1)


@dataclass(frozen=True)
class PriceTable:
    """A price table: its currency, region, date, source and figures."""

    currency: str
    region: str
    date: date
    source: str
    figures: Mapping[str, PriceFigure]

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, source: str | None = None) -> PriceTable:
        """Build from an already validated table."""
        figures = {
            name: PriceFigure(f["unitPrice"], f["unit"], f["meterName"], f["currency"], f["region"], f["date"],
                              f["source"], f["estimate"])
            for name, f in data["figures"].items()
        }
        return cls(data["currency"], data["region"], date.fromisoformat(data["date"]), source or data["source"], figures)


@cache
def shipped_prices() -> PriceTable:
    """The table shipped with azinfer (``azinfer/data/prices.json``)."""
    text = resources.files("azinfer").joinpath("data/prices.json").read_text(encoding="utf-8")
    return PriceTable.from_json(json.loads(text))


def load_prices(path: str | os.PathLike[str]) -> PriceTable:
    """Load a price table file (``--prices FILE``).

    :raises ProjectFileError: when the file is missing, not JSON or not a price table
        (``schemas/prices.schema.json``); the message names the file and the field.
    """
    from pathlib import Path

    shown = str(path)
    data = read_json(Path(path), display=shown)
    validate(data, "prices.schema.json", display=shown)
    try:
        date.fromisoformat(data["date"])
    except ValueError:
        raise ProjectFileError(shown, "/date", f"expected a date YYYY-MM-DD, got {data['date']!r}") from None
    return PriceTable.from_json(data, source=f"{shown} ({data['source']})")


@dataclass(frozen=True)
class CostLine:
    """One meter of a replica-hour: quantity x hourly unit price."""

    meter: str
    quantity: float
    unit_price: float
    unit: str
    per_hour: float

    def to_json(self) -> dict[str, Any]:
        """The line's JSON form."""
        return {"meter": self.meter, "quantity": self.quantity, "unitPrice": self.unit_price, "unit": self.unit,
                "perHour": round(self.per_hour, 4)}


def _replica_lines(profile: GpuProfileType, table: PriceTable) -> tuple[CostLine, ...] | None:
    lines = []
    for figure, quantity, meter in _meters(profile):
        price = table.figures.get(figure)
        if price is None:
            return None
        lines.append(CostLine(meter, quantity, price.unit_price, price.unit, quantity * price.per_hour))
    return tuple(lines)


def _fixed_hour(profile: GpuProfileType, table: PriceTable) -> float | None:
    if GPU_SPECS[profile].serverless:
        return 0.0
    price = table.figures.get("dedicatedManagementHour")
    return None if price is None else price.per_hour


@dataclass(frozen=True)
class Cost:
    """The cost estimate of a plan's GPU profile, and the other profiles' for comparison."""

    profile: GpuProfileType
    table: PriceTable
    lines: tuple[CostLine, ...]
    fixed_hour: float
    """What runs per hour whenever a node does (a dedicated environment's management fee)."""
    min_replicas: int
    max_replicas: int
    busy_hours: float
    busy_hours_why: str
    today: date
    others: tuple[tuple[GpuProfileType, float, float], ...] = ()
    """(profile, replica-hour, monthly) of the other profiles, for the same replicas and busy hours."""

    @property
    def replica_hour(self) -> float:
        """One replica (serverless) or node (dedicated) for an hour."""
        return sum(line.per_hour for line in self.lines)

    def hourly(self, replicas: int) -> float:
        """``replicas`` for an hour (the management fee only while a node runs)."""
        return replicas * self.replica_hour + (self.fixed_hour if replicas else 0.0)

    @property
    def monthly(self) -> float:
        """A month: ``busy_hours`` at maxReplicas, the rest at minReplicas."""
        idle_hours = max(0.0, HOURS_PER_MONTH - self.busy_hours)
        return self.hourly(self.max_replicas) * self.busy_hours + self.hourly(self.min_replicas) * idle_hours

    @property
    def scale_to_zero_saves(self) -> float:
        """A month's difference between keeping one replica (or minReplicas) warm and scaling to zero."""
        idle_hours = max(0.0, HOURS_PER_MONTH - self.busy_hours)
        return self.hourly(max(1, self.min_replicas)) * idle_hours

    @property
    def estimate(self) -> bool:
        """Whether any figure used is marked as an estimate."""
        return any(f.estimate for f in self.table.figures.values())

    @property
    def age_days(self) -> int:
        """How old the price table is."""
        return (self.today - self.table.date).days

    @property
    def stale(self) -> bool:
        """Whether the prices are older than :data:`STALE_DAYS`."""
        return self.age_days > STALE_DAYS

    def to_json(self) -> dict[str, Any]:
        """The cost's JSON form (amounts rounded to cents, the replica-hour to 4 places)."""
        t = self.table
        return {
            "profile": _LABELS[self.profile],
            "currency": t.currency,
            "replicaHour": round(self.replica_hour, 4),
            "lines": [line.to_json() for line in self.lines],
            "fixedHour": round(self.fixed_hour, 4),
            "minReplicas": self.min_replicas,
            "maxReplicas": self.max_replicas,
            "idleHour": round(self.hourly(self.min_replicas), 2),
            "busyHour": round(self.hourly(self.max_replicas), 2),
            "busyHours": self.busy_hours,
            "busyHoursSource": self.busy_hours_why,
            "monthly": round(self.monthly, 2),
            "scaleToZeroSaves": round(self.scale_to_zero_saves, 2),
            "scalesToZero": self.min_replicas == 0,
            "others": [{"profile": _LABELS[p], "profileType": p.value, "replicaHour": round(hour, 4),
                        "monthly": round(month, 2)} for p, hour, month in self.others],
            "prices": {"region": t.region, "date": t.date.isoformat(), "source": t.source,
                       "estimate": self.estimate, "ageDays": self.age_days, "stale": self.stale,
                       "staleAfterDays": STALE_DAYS},
        }


def _cost(profile: GpuProfileType, table: PriceTable, min_replicas: int, max_replicas: int, busy_hours: float,
          why: str, today: date) -> Cost | None:
    lines, fixed = _replica_lines(profile, table), _fixed_hour(profile, table)
    if lines is None or fixed is None:
        return None
    return Cost(profile, table, lines, fixed, min_replicas, max_replicas, busy_hours, why, today)


def estimate_cost(
    profile: GpuProfileType, table: PriceTable, *, min_replicas: int, max_replicas: int,
    busy_hours: float = DEFAULT_BUSY_HOURS, busy_hours_why: str = DEFAULT_BUSY_HOURS_WHY, today: date,
) -> Cost | None:
    """The cost of ``profile`` with these replicas, and the other profiles' beside it; ``None``: the table lacks a figure."""
    cost = _cost(profile, table, min_replicas, max_replicas, busy_hours, busy_hours_why, today)
    if cost is None:
        return None
    others = tuple(
        (other, c.replica_hour, c.monthly)
        for other in GpuProfileType if other is not profile
        if (c := _cost(other, table, min_replicas, max_replicas, busy_hours, busy_hours_why, today)) is not None
    )
    return Cost(profile, table, cost.lines, cost.fixed_hour, min_replicas, max_replicas, busy_hours, busy_hours_why,
                today, others)
