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
from azinfer.cli.console import confirm as confirm_on_terminal
from azinfer.cli.options import add_azure_options, add_project_options, azure_project, command_target

if TYPE_CHECKING:  # pragma: no cover
    from azinfer.azure import AzureProject, Event, Question

__all__ = ["register"]


def _cmd_provision(args: argparse.Namespace) -> int:
    project = azure_project(args)
    color = use_color(sys.stdout)
    target = command_target(args)
    if args.preview:
        sys.stdout.write(project.preview().to_text(color=color))
        print(f"Next: 'azinfer provision {target}' applies this plan (it asks first), or 'azinfer up {target}' "
              "also waits for /ready and asks the model once.")
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
    print(f"Wrote {result.config_path}. The API key: 'azinfer key {target}'.")
    return _offer_to_wait(project, args, target)


def _offer_to_wait(project: AzureProject, args: argparse.Namespace, target: str) -> int:
    """Say whether the endpoint answers ``/ready`` yet; on a terminal, offer to wait for it. The next step."""
    status = project.status()
    if status.ready:
        print(f"The endpoint answers /ready. Next: 'azinfer up {target}' asks the model once and prints how to "
              f"call it; after changing your code, 'azinfer deploy {target}'.")
        return EXIT_OK
    revision = f" ({status.revision.describe()})" if status.revision is not None else ""
    print(f"The endpoint is not ready yet: /ready answered {status.ready_detail or 'nothing'}{revision}; "
          "a replica's first start (image, weights, engine) takes minutes.")
    if args.yes or not sys.stdin.isatty() or not confirm_on_terminal("Wait for it?", yes=False):
        print(f"Next: 'azinfer up {target}' waits for it and asks the model once; 'azinfer status {target}' "
              "shows its state.")
        return EXIT_OK
    with EventDisplay() as display:
        ready = project.wait_ready(on_event=display)
    print(f"Ready: {ready.endpoint}. Next: 'azinfer up {target}' asks the model once and prints how to call it.")
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
