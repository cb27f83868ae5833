"""The ``azinfer`` command: a thin layer over the Python API.

Exit codes: 0 success, 1 invalid input, a blocked plan or a failed operation,
2 usage error. Errors are one message on stderr, never a traceback. Colour
only on a terminal (and never with ``NO_COLOR`` set).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from azinfer import __version__
from azinfer.errors import AzinferError
from azinfer.names import ResourceKind

if TYPE_CHECKING:  # pragma: no cover
    from azinfer.inventory import Inventory
    from azinfer.plan import Plan

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FAILED = 0, 1  # argparse exits 2 on a usage error
# The optional dependencies a command may lack, and the extra that brings them.
_EXTRAS = {name: "azure" for name in ("azure", "msal")} | {
    name: "serve" for name in ("torch", "transformers", "peft", "starlette", "uvicorn", "safetensors")
}


def _use_color(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def _add_project_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project_dir", nargs="?", default=".", metavar="PROJECT_DIR",
                        help="the AI Toolkit project (default: the current folder)")
    parser.add_argument("--subscription", help="subscription id (default: the fine-tuning one)")
    parser.add_argument("--resource-group", help="resource group (default: the fine-tuning one)")
    parser.add_argument("--location", help="Azure region (default: from the parameters or the resource group)")
    parser.add_argument("--update", action="append", default=[], metavar="RESOURCE",
                        choices=[k.value for k in ResourceKind if k is not ResourceKind.CONTAINER_APP],
                        help="also apply the template to this existing resource (repeatable)")


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
        return InMemoryInventory()
    return None


def _plan(args: argparse.Namespace, inventory: Inventory | None) -> Plan:
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
    inventory = _inventory(args, offline_default=False)
    if inventory is None:
        from azinfer.azure.commands import plan_from_azure

        plan = plan_from_azure(args)
    else:
        plan = _plan(args, inventory)
    if args.json:
        sys.stdout.write(plan.to_json_text())
    else:
        sys.stdout.write(plan.to_text(color=_use_color(sys.stdout)))
    return EXIT_FAILED if plan.blocked else EXIT_OK


def _cmd_render(args: argparse.Namespace) -> int:
    from azinfer.templates import render

    plan = _plan(args, _inventory(args, offline_default=True))
    written = render(plan).write(args.out)
    for path in written:
        print(f"wrote {path}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``azinfer`` command."""
    from azinfer.azure import commands as azure_commands
    from azinfer.serve import cli as serve_cli

    parser = argparse.ArgumentParser(
        prog="azinfer",
        description="From a VS Code AI Toolkit fine-tuning project to a GPU inference endpoint on Azure Container Apps.",
    )
    parser.add_argument("--version", action="version", version=f"azinfer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    plan = commands.add_parser("plan", help="show what provisioning would create, reuse or update")
    _add_project_options(plan)
    _add_inventory_options(plan, offline_default=False)
    plan.add_argument("--json", action="store_true", help="print the plan's JSON form")
    azure_commands.add_azure_options(plan)
    plan.set_defaults(handler=_cmd_plan)

    render = commands.add_parser("render", help="write the ARM template, the Bicep file and the parameters file")
    _add_project_options(render)
    _add_inventory_options(render, offline_default=True)
    render.add_argument("--out", required=True, metavar="DIR", help="folder to write the files into")
    render.set_defaults(handler=_cmd_render)


    serve = commands.add_parser("serve", help="run the inference server (needs azinfer[serve])")
    serve_cli.add_arguments(serve)
    serve.set_defaults(handler=serve_cli.run)

    azure_commands.register(commands, _add_project_options)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``azinfer`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], Any] = args.handler
    try:
        return int(handler(args))
    except AzinferError as exc:
        print(f"azinfer: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ModuleNotFoundError as exc:
        extra = _EXTRAS.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"azinfer: error: {exc.name} is not installed: pip install 'azinfer[{extra}]'", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("azinfer: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
