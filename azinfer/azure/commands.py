"""The CLI's Azure commands: ``plan`` (online), ``provision`` and ``key``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from azinfer.resources import ResourceKind

__all__ = ["register", "plan_from_azure", "add_azure_options"]


def add_azure_options(parser: argparse.ArgumentParser) -> None:
    """Cloud and endpoint options shared by every command that talks to Azure."""
    parser.add_argument("--cloud", choices=["public", "china", "usgovernment"], default="public",
                        help="Azure cloud (default: public)")
    parser.add_argument("--arm-endpoint", metavar="URL", help="a custom Azure Resource Manager endpoint")


def _project(args: argparse.Namespace) -> Any:
    from azinfer.azure.provision import AzureProject

    return AzureProject(
        args.project_dir,
        cloud=args.cloud,
        arm_endpoint=args.arm_endpoint,
        authority_host=os.environ.get("AZURE_AUTHORITY_HOST"),
        subscription_id=args.subscription,
        resource_group=args.resource_group,
        location=args.location,
        update=[ResourceKind(u) for u in getattr(args, "update", [])],
    )


def plan_from_azure(args: argparse.Namespace) -> Any:
    """``azinfer plan`` without ``--offline``: the plan against the resource group, with preflight."""
    return _project(args).plan()


def _color(stream: Any) -> bool:
    return bool(stream.isatty()) and "NO_COLOR" not in os.environ


class _ProgressDisplay:
    """Per-resource progress: redrawn in place on a terminal, one line per change otherwise."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._live = _color(stream)
        self._rows: dict[tuple[str, str], str] = {}
        self._drawn = 0

    def __call__(self, progress: Any) -> None:
        line = f"  {progress.state:<10} {progress.resource_type} {progress.resource_name}"
        if progress.code:
            line += f"  ({progress.code}: {progress.message})"
        if not self._live:
            self._stream.write(line + "\n")
            self._stream.flush()
            return
        self._rows[(progress.resource_type, progress.resource_name)] = line
        if self._drawn:
            self._stream.write(f"\x1b[{self._drawn}F")
        for row in self._rows.values():
            self._stream.write("\x1b[2K" + row + "\n")
        self._drawn = len(self._rows)
        self._stream.flush()


def _confirm(args: argparse.Namespace) -> Callable[[Any], bool]:
    def ask(preview: Any) -> bool:
        sys.stdout.write(preview.plan.to_text(color=_color(sys.stdout)))
        sys.stdout.write(preview.what_if.to_text())
        if args.yes:
            return True
        if not sys.stdin.isatty():
            from azinfer.errors import AzinferError

            raise AzinferError("not asking on a non-interactive input: pass --yes to provision without a question")
        answer = input("Provision these changes? [y/N] ").strip().lower()
        return answer in ("y", "yes")

    return ask


def _cmd_provision(args: argparse.Namespace) -> int:
    project = _project(args)
    if args.preview:
        preview = project.preview()
        sys.stdout.write(preview.plan.to_text(color=_color(sys.stdout)))
        sys.stdout.write(preview.what_if.to_text())
        return 0
    from azinfer.azure.deploy import DeploymentInterrupted
    from azinfer.errors import PlanBlockedError

    try:
        result = project.provision(confirm=_confirm(args), on_progress=_ProgressDisplay(sys.stdout))
    except PlanBlockedError as exc:
        sys.stdout.write(exc.plan.to_text(color=_color(sys.stdout)))
        raise
    except DeploymentInterrupted as exc:
        print(f"azinfer: {exc}", file=sys.stderr)
        return 130
    if result.deployment is None:
        print("No changes: nothing was deployed.")
    else:
        print(f"Deployment {result.deployment!r} succeeded.")
    print(f"Endpoint: {result.config.url}")
    print(f"Wrote {result.config_path}. The API key: 'azinfer key'.")
    return 0


def _cmd_key(args: argparse.Namespace) -> int:
    print(_project(args).api_key())
    return 0


def register(commands: Any, add_project_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``provision`` and ``key`` to the CLI's subcommands."""
    provision = commands.add_parser("provision", help="create or update the inference endpoint on Azure")
    add_project_options(provision)
    add_azure_options(provision)
    provision.add_argument("--preview", action="store_true", help="show the plan and ARM's what-if, change nothing")
    provision.add_argument("--yes", "-y", action="store_true", help="do not ask before changing anything")
    provision.set_defaults(handler=_cmd_provision)

    key = commands.add_parser("key", help="print the endpoint's API key (from the container app's secret)")
    add_project_options(key)
    add_azure_options(key)
    key.set_defaults(handler=_cmd_key)
