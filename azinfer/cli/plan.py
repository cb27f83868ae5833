"""``azinfer plan`` and ``azinfer render``: what provisioning would do, and the templates for it."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from azinfer.cli.console import EXIT_FAILED, EXIT_OK, use_color
from azinfer.cli.options import add_azure_options, add_project_options, azure_project
from azinfer.errors import ArgumentError
from azinfer.resources import ResourceKind

if TYPE_CHECKING:  # pragma: no cover
    from azinfer.inventory import Inventory
    from azinfer.plan import Plan

__all__ = ["register"]


def _inventory(args: argparse.Namespace, *, offline: bool) -> Inventory | None:
    """The inventory file given, else nothing looked up (offline), else ``None``: read Azure."""
    from azinfer.inventory import InMemoryInventory

    if args.inventory:
        return InMemoryInventory.load(args.inventory)
    if offline:
        return InMemoryInventory(offline=True)
    return None


def _plan(args: argparse.Namespace, inventory: Inventory | None) -> Plan:
    if inventory is None:  # against Azure, with preflight
        given = [(flag, value) for flag, value in (("--model", args.model), ("--prices", args.prices),
                                                   ("--busy-hours", args.busy_hours)) if value is not None]
        if given:
            flag, value = given[0]
            raise ArgumentError("azinfer plan", flag, "--offline or --inventory with it (a plan against Azure "
                                "uses the project's model and the shipped prices)", value)
        return azure_project(args).plan()
    from azinfer.pipeline import plan_project
    from azinfer.plan.cost import load_prices

    return plan_project(
        args.project_dir,
        inventory=inventory,
        subscription_id=args.subscription,
        resource_group=args.resource_group,
        location=args.location,
        update=[ResourceKind(u) for u in args.update],
        model=getattr(args, "model", None),  # render has no estimate options
        prices=load_prices(args.prices) if getattr(args, "prices", None) else None,
        busy_hours=getattr(args, "busy_hours", None),
    )


def _cmd_plan(args: argparse.Namespace) -> int:
    plan = _plan(args, _inventory(args, offline=args.offline))
    if args.json:
        sys.stdout.write(plan.to_json_text())
    else:
        sys.stdout.write(plan.to_text(color=use_color(sys.stdout)))
    return EXIT_FAILED if plan.blocked else EXIT_OK


def _cmd_render(args: argparse.Namespace) -> int:
    from azinfer.templates import render

    plan = _plan(args, _inventory(args, offline=True))
    for path in render(plan).write(args.out):
        print(f"wrote {path}")
    return EXIT_OK


def _hours(text: str) -> float:
    hours = float(text)
    if not 0 <= hours <= 730:
        raise argparse.ArgumentTypeError(f"expected hours from 0 to 730 in a month, got {text}")
    return hours


def add_estimate_options(parser: argparse.ArgumentParser) -> None:
    """The fit and cost estimate's options (offline plans and --inventory plans)."""
    parser.add_argument("--model", metavar="PATH",
                        help="the base model (folder with config.json, or a Hugging Face name) for the fit estimate "
                             "(default: finetuning/olive-config.json's input_model.model_path)")
    parser.add_argument("--prices", metavar="FILE",
                        help="a price table for the cost estimate (default: the one shipped; see azinfer prices)")
    parser.add_argument("--busy-hours", type=_hours, metavar="HOURS",
                        help="hours a month at maxReplicas for the monthly cost (default: 176, 8 h x 22 days)")


def register(commands: Any) -> None:
    """Add ``plan`` and ``render`` to the CLI's subcommands."""
    plan = commands.add_parser("plan", help="show what provisioning would create, reuse or update")
    add_project_options(plan)
    source = plan.add_mutually_exclusive_group()
    source.add_argument("--offline", action="store_true", help="plan without Azure, as if nothing existed yet")
    source.add_argument("--inventory", metavar="FILE", help="what exists, from an inventory JSON file")
    plan.add_argument("--json", action="store_true", help="print the plan's JSON form")
    add_estimate_options(plan)
    add_azure_options(plan)
    plan.set_defaults(handler=_cmd_plan)

    render = commands.add_parser("render", help="write the ARM template, the Bicep file and the parameters file")
    add_project_options(render)
    render.add_argument("--inventory", metavar="FILE",
                        help="what exists, from an inventory JSON file (default: render without Azure, as if "
                             "nothing existed yet)")
    render.add_argument("--out", required=True, metavar="DIR", help="folder to write the files into")
    render.set_defaults(handler=_cmd_render)
