"""``azinfer plan`` and ``azinfer render``: what provisioning would do, and the templates for it."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from azinfer.cli.console import EXIT_FAILED, EXIT_OK, use_color
from azinfer.cli.options import add_azure_options, add_project_options, azure_project
from azinfer.names import ResourceKind

if TYPE_CHECKING:  # pragma: no cover
    from azinfer.inventory import Inventory
    from azinfer.plan import Plan

__all__ = ["register"]


def _add_inventory_options(parser: argparse.ArgumentParser, *, offline_default: bool) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--offline", action="store_true",
                        help="plan as if nothing existed yet" + (" (the default)" if offline_default else ""))
    source.add_argument("--inventory", metavar="FILE", help="what exists, from an inventory JSON file")


def _inventory(args: argparse.Namespace, *, offline_default: bool) -> Inventory | None:
    from azinfer.inventory import InMemoryInventory

    if args.inventory:
        return InMemoryInventory.load(args.inventory)
    if args.offline or offline_default:
        return InMemoryInventory(offline=True)
    return None


def _plan(args: argparse.Namespace, inventory: Inventory | None) -> Plan:
    if inventory is None:  # against Azure, with preflight
        return azure_project(args).plan()
    from azinfer.pipeline import plan_project

    return plan_project(
        args.project_dir,
        inventory=inventory,
        subscription_id=args.subscription,
        resource_group=args.resource_group,
        location=args.location,
        update=[ResourceKind(u) for u in args.update],
    )


def _cmd_plan(args: argparse.Namespace) -> int:
    plan = _plan(args, _inventory(args, offline_default=False))
    if args.json:
        sys.stdout.write(plan.to_json_text())
    else:
        sys.stdout.write(plan.to_text(color=use_color(sys.stdout)))
    return EXIT_FAILED if plan.blocked else EXIT_OK


def _cmd_render(args: argparse.Namespace) -> int:
    from azinfer.templates import render

    plan = _plan(args, _inventory(args, offline_default=True))
    for path in render(plan).write(args.out):
        print(f"wrote {path}")
    return EXIT_OK


def register(commands: Any) -> None:
    """Add ``plan`` and ``render`` to the CLI's subcommands."""
    plan = commands.add_parser("plan", help="show what provisioning would create, reuse or update")
    add_project_options(plan)
    _add_inventory_options(plan, offline_default=False)
    plan.add_argument("--json", action="store_true", help="print the plan's JSON form")
    add_azure_options(plan)
    plan.set_defaults(handler=_cmd_plan)

    render = commands.add_parser("render", help="write the ARM template, the Bicep file and the parameters file")
    add_project_options(render)
    _add_inventory_options(render, offline_default=True)
    render.add_argument("--out", required=True, metavar="DIR", help="folder to write the files into")
    render.set_defaults(handler=_cmd_render)
