"""Refresh the price table from the Azure Retail Prices API (public, no sign-in).

``GET https://prices.azure.com/api/retail/prices?$filter=...&currencyCode=...``
answers ``{"Items": [...], "NextPageLink": ...}``, 100 items a page; each item
has ``meterName``, ``unitOfMeasure``, ``unitPrice``, ``currencyCode``,
``armRegionName``, ``effectiveStartDate`` and ``type`` (learn.microsoft.com,
"Azure Retail Prices overview"). :func:`fetch_price_table` reads every page for
Azure Container Apps in one region and picks the meters azinfer's cost
estimate uses (:data:`METERS`); a figure no meter matches is kept from the
table it refreshes, still marked as an estimate, and listed in ``missing``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from azinfer._files import write_atomic
from azinfer.errors import AzureError

__all__ = ["RETAIL_PRICES_URL", "METERS", "fetch_price_table", "write_price_table"]

RETAIL_PRICES_URL = "https://prices.azure.com/api/retail/prices"
_MAX_PAGES = 50


def _has(*words: str, without: tuple[str, ...] = (), unit: str) -> Callable[[str, str], bool]:
    def matches(meter: str, measure: str) -> bool:
        return all(w in meter for w in words) and not any(w in meter for w in without) and unit in measure
    return matches


METERS: Mapping[str, Callable[[str, str], bool]] = {
    # meterName and unitOfMeasure, lowercase. Consumption meters are per second; dedicated ones per hour.
    "consumptionVcpuSecond": _has("vcpu", "active", without=("idle", "dedicated"), unit="second"),
    "consumptionGibSecond": _has("memory", "active", without=("idle", "dedicated"), unit="second"),
    "serverlessA100GpuSecond": _has("a100", without=("dedicated",), unit="second"),
    "serverlessT4GpuSecond": _has("t4", without=("dedicated",), unit="second"),
    "dedicatedA100InstanceHour": _has("a100", unit="hour"),
    "dedicatedManagementHour": _has("management", unit="hour"),
}
"""Which Retail Prices item gives each figure: a predicate on its meterName and unitOfMeasure (lowercase)."""


def _items(get: Callable[[str, Mapping[str, str] | None], Any], region: str, currency: str) -> list[dict[str, Any]]:
    query = {
        "$filter": f"serviceName eq 'Azure Container Apps' and armRegionName eq '{region}' and priceType eq 'Consumption'",
        "currencyCode": currency,
    }
    items: list[dict[str, Any]] = []
    page = get(RETAIL_PRICES_URL, query)
    for _ in range(_MAX_PAGES):
        items += page.get("Items") or []
        link = page.get("NextPageLink")
        if not link:
            return items
        page = get(link, None)
    raise AzureError(f"the Retail Prices API answered more than {_MAX_PAGES} pages for {region}; refusing to go on")


def fetch_price_table(
    region: str, currency: str, base: Mapping[str, Any], *, endpoint: str = RETAIL_PRICES_URL,
    timeout: float = 30.0, today: date | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """A price table (the JSON form of ``azinfer/data/prices.json``) from the Retail Prices API, and the figures it kept.

    :param base: the table being refreshed; its figures stand in for those no meter matches.
    :param endpoint: the API's URL (a mirror, or a test's loopback server).
    :raises AzureError: when the API cannot be reached or answers with an error or no JSON.
    """
    import httpx

    day = (today or date.today()).isoformat()

    def get(url: str, params: Mapping[str, str] | None) -> Any:
        if url == RETAIL_PRICES_URL:
            url = endpoint
        try:
            response = httpx.get(url, params=params, timeout=timeout)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise AzureError(f"the Azure Retail Prices API ({url.split('?')[0]}) failed: {exc}") from None

    figures: dict[str, Any] = {}
    items = _items(get, region, currency)
    for name, matches in METERS.items():
        found = sorted(
            (i for i in items if i.get("type", "Consumption") == "Consumption"
             and matches(str(i.get("meterName", "")).lower(), str(i.get("unitOfMeasure", "")).lower())),
            key=lambda i: (str(i.get("effectiveStartDate", "")), float(i.get("unitPrice", 0))),
        )
        if found:
            item = found[-1]  # the newest price
            figures[name] = {
                "unitPrice": float(item["unitPrice"]),
                "unit": str(item.get("unitOfMeasure", "")),
                "meterName": item.get("meterName", ""), "currency": item.get("currencyCode", currency),
                "region": item.get("armRegionName", region), "date": day, "estimate": False,
                "source": f"Azure Retail Prices API, {item.get('productName', 'Azure Container Apps')}, "
                          f"meterId {item.get('meterId', '?')}, effective {str(item.get('effectiveStartDate', ''))[:10]}",
            }
    missing = [name for name in METERS if name not in figures]
    for name in missing:
        if name in base.get("figures", {}):
            figures[name] = {**base["figures"][name], "estimate": True}
    table = {
        "formatVersion": "1",
        "about": base.get("about", ""),
        "currency": currency, "region": region, "date": day,
        "source": f"Azure Retail Prices API ({endpoint.split('?')[0]}), read {day}",
        "figures": figures,
    }
    return table, missing


def write_price_table(path: str | os.PathLike[str], table: Mapping[str, Any]) -> Path:
    """Write a price table atomically (a reader never sees half a file)."""
    target = Path(path)
    write_atomic(target, json.dumps(table, indent=2, sort_keys=True) + "\n")
    return target
