"""``azinfer provision`` and ``azinfer key``: create or update the endpoint, read its API key."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from azinfer.cli.console import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EventDisplay,
    ask,
    declined,
    use_color,
)
from azinfer.cli.options import add_azure_options, add_project_options, azure_project

if TYPE_CHECKING:  # pragma: no cover
    from azinfer.azure import Event, Question

__all__ = ["register"]


def _cmd_provision(args: argparse.Namespace) -> int:
    project = azure_project(args)
    color = use_color(sys.stdout)
    if args.preview:
        sys.stdout.write(project.preview().to_text(color=color))
        return EXIT_OK
    from azinfer.azure import EventKind
    from azinfer.errors import DeploymentInterrupted, PlanBlockedError

    def confirm(question: Question[Any]) -> bool:
        return ask(question, yes=args.yes, summary=question.subject.to_text(color=color))

    try:
        with EventDisplay() as display:
            def show(event: Event) -> None:
                if event.kind is EventKind.RESOURCE:  # the server's small upload goes unshown
                    display(event)

            result = project.provision(confirm=confirm, on_event=show)
    except PlanBlockedError as exc:
        sys.stdout.write(exc.plan.to_text(color=color))
        raise
    except DeploymentInterrupted as exc:
        print(f"azinfer: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.declined:
        return declined("changed")
    if result.deployment is None:
        print("No changes: nothing was deployed.")
    else:
        print(f"Deployment {result.deployment!r} succeeded.")
    print(f"Endpoint: {result.config.url}")
    print(f"Wrote {result.config_path}. The API key: 'azinfer key'.")
    return EXIT_OK


def _cmd_key(args: argparse.Namespace) -> int:
    print(azure_project(args).api_key())
    return EXIT_OK


def register(commands: Any) -> None:
    """Add ``provision`` and ``key`` to the CLI's subcommands."""
    provision = commands.add_parser("provision", help="create or update the inference endpoint on Azure")
    add_project_options(provision)
    add_azure_options(provision)
    provision.add_argument("--preview", action="store_true", help="show the plan and ARM's what-if, change nothing")
    provision.add_argument("--yes", "-y", action="store_true", help="do not ask before changing anything")
    provision.set_defaults(handler=_cmd_provision)

    key = commands.add_parser("key", help="print the endpoint's API key (from the container app's secret)")
    add_project_options(key, update=False, location=False)
    add_azure_options(key)
    key.set_defaults(handler=_cmd_key)
