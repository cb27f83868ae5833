"""``azinfer prices``: the price table the cost estimate uses, and its refresh from the Azure Retail Prices API."""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from typing import Any

from azinfer.cli.console import EXIT_OK

__all__ = ["register"]


def _base(args: argparse.Namespace) -> dict[str, Any]:
    """The table shown or refreshed: --prices FILE (validated), else the one shipped."""
    from pathlib import Path

    from azinfer._jsonfile import read_json, validate

    if args.prices:
        data: dict[str, Any] = read_json(Path(args.prices), display=args.prices)
        validate(data, "prices.schema.json", display=args.prices)
        return data
    loaded: dict[str, Any] = json.loads(resources.files("azinfer").joinpath("data/prices.json").read_text("utf-8"))
    return loaded


def _show(table: dict[str, Any]) -> None:
    print(f"prices: {table['currency']}, {table['region']}, {table['date']} ({table['source']})")
    for name, figure in table["figures"].items():
        mark = " (estimate)" if figure["estimate"] else ""
        print(f"  {name}: {figure['unitPrice']:g} {figure['currency']} per {figure['unit']}{mark}")
        print(f"      {figure['meterName']}; {figure['source']}")


def _cmd_prices(args: argparse.Namespace) -> int:
    base = _base(args)
    if not args.refresh:
        _show(base)
        return EXIT_OK
    from azinfer.retail_prices import fetch_price_table, write_price_table

    table, missing = fetch_price_table(args.region, args.currency, base, **({"endpoint": args.endpoint} if args.endpoint else {}))
    path = write_price_table(args.out, table)
    _show(table)
    if missing:
        print(f"kept from the table refreshed, still estimates (no meter matched): {', '.join(missing)}",
              file=sys.stderr)
    print(f"wrote {path}; plan with --prices {path}")
    return EXIT_OK


def register(commands: Any) -> None:
    """Add ``prices`` to the CLI's subcommands."""
    prices = commands.add_parser("prices", help="show the price table of the cost estimate, or refresh it from Azure")
    prices.add_argument("--prices", metavar="FILE", help="a price table to show or refresh (default: the one shipped)")
    prices.add_argument("--refresh", action="store_true",
                        help="read the Azure Retail Prices API (public, no sign-in) and write a new table to --out")
    prices.add_argument("--region", default="eastus", help="the region to price (default: eastus)")
    prices.add_argument("--currency", default="USD", help="the currency (default: USD)")
    prices.add_argument("--out", metavar="FILE", default="prices.json",
                        help="where --refresh writes the table (default: prices.json)")
    prices.add_argument("--endpoint", metavar="URL",
                        help="the Retail Prices API or a mirror of it (default: the public one, prices.azure.com)")
    prices.set_defaults(handler=_cmd_prices)
