"""``azinfer up``: plan, ask, provision, wait for ``/ready``, one chat completion, and what to do next.

With ``--local`` the same runs against the project's local endpoint, started
first (or found running): :mod:`azinfer.local.endpoint`.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from azinfer.cli.console import EXIT_INTERRUPTED, EXIT_OK, EventDisplay, ask, declined, use_color
from azinfer.cli.options import (
    add_azure_options,
    add_project_options,
    azure_project,
    check_local_options,
    command_target,
    say_local,
)
from azinfer.errors import AzinferError

if TYPE_CHECKING:  # pragma: no cover
    from azinfer.azure import Event, Question
    from azinfer.local.endpoint import LocalEndpoint

__all__ = ["register"]


def _cmd_up(args: argparse.Namespace) -> int:
    from azinfer.azure import UpInterrupted
    from azinfer.azure.up import next_steps
    from azinfer.errors import PlanBlockedError

    check_local_options(args)
    local = _start_local(args) if args.local else None
    project = azure_project(args)
    color = use_color(sys.stdout)

    def confirm(question: Question[Any]) -> bool:
        return ask(question, yes=args.yes, summary=question.subject.to_text(color=color))

    try:
        with _Display() as display:
            result = project.up(timeout=args.timeout, confirm=confirm, on_event=display)
    except PlanBlockedError as exc:
        sys.stdout.write(exc.plan.to_text(color=color))
        raise
    except UpInterrupted as exc:
        print(f"azinfer: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.declined:
        return declined("changed")
    assert result.smoke is not None and result.endpoint is not None  # not declined: both are there
    print(f"\nUp in {sum(stage.seconds for stage in result.stages):.1f} s:")
    sys.stdout.write(result.to_text())
    if local is not None:
        print(f"  model: {local.model}")
    print()
    sys.stdout.write(next_steps(result.endpoint, result.smoke.model, target=command_target(args),
                                ca=str(local.ca) if local is not None else None,
                                delete="down" if local is not None else "destroy"))
    return EXIT_OK


def _start_local(args: argparse.Namespace) -> LocalEndpoint:
    """The project's local endpoint: the running daemon, or a new one (said on stderr, with the model)."""
    from azinfer.local.endpoint import start

    say = say_local
    try:
        endpoint, resumed = start(args.project_dir, share_from=args.share_from, subscription_id=args.subscription,
                                  resource_group=args.resource_group, say=say)
    except ValueError as exc:
        raise AzinferError(str(exc)) from None
    if resumed:
        say(f"the local endpoint runs already (daemon pid {endpoint.pid}): resuming with it")
    say(f"model: {endpoint.model}")
    return endpoint


class _Display:
    """One :class:`EventDisplay` per operation in turn: provision's live table ends (and stays on screen)
    before the next stage's lines are printed below it; two live displays never share the terminal."""

    def __init__(self) -> None:
        self._display: EventDisplay | None = None
        self._operation: object = None

    def __enter__(self) -> _Display:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._display is not None:
            self._display.__exit__()
            self._display = None

    def __call__(self, event: Event) -> None:
        from azinfer.azure import EventKind, Operation

        if event.operation is Operation.PROVISION and event.kind in (EventKind.TRANSFER, EventKind.BYTES):
            return  # the server's small upload goes unshown, as in `azinfer provision`
        if self._display is None or event.operation is not self._operation:
            self.__exit__()
            self._display, self._operation = EventDisplay().__enter__(), event.operation
        self._display(event)


def register(commands: Any) -> None:
    """Add ``up`` to the CLI's subcommands."""
    up = commands.add_parser("up", help="provision, deploy, wait for /ready and ask the model once: one command")
    add_project_options(up)
    add_azure_options(up)
    up.add_argument("--yes", "-y", action="store_true", help="do not ask before changing anything")
    up.add_argument("--timeout", type=float, default=900.0, metavar="SECONDS",
                    help="how long to wait for /ready (default 900)")
    up.add_argument("--share-from", metavar="DIR",
                    help="with --local: the model, from a folder laid out as the AI Toolkit's share (model-cache/, "
                         "models/); default: the project's own, else a tiny random-weight stand-in azinfer builds")
    up.set_defaults(handler=_cmd_up)
