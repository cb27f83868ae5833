"""``azinfer deploy``, ``rollback``, ``status``, ``logs``, ``destroy`` and ``down``: the endpoint's life after provisioning.

``down`` is ``destroy``; with ``--local`` it also stops the local endpoint's
daemon and its containers (and asks nothing: all of it is on this machine).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from azinfer.cli.console import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    EventDisplay,
    ask,
    declined,
)
from azinfer.cli.options import (
    add_azure_options,
    add_project_options,
    azure_project,
    check_local_options,
    say_local,
)

if TYPE_CHECKING:  # pragma: no cover
    from azinfer.azure import AzureProject, Question
    from azinfer.azure.events import ConfirmCallback

__all__ = ["register"]


def _cmd_deploy(args: argparse.Namespace) -> int:
    from azinfer.azure import SyncInterrupted

    if args.canary and (args.restart or args.no_wait):
        print("azinfer: error: --canary starts a new revision and waits for it: leave out --restart and --no-wait",
              file=sys.stderr)
        return EXIT_USAGE
    project = azure_project(args)
    if args.dry_run:
        sys.stdout.write(project.deploy_preview(adapter=args.adapter, adapter_name=args.name,
                                                         delete=args.delete).to_text())
        return EXIT_OK

    def confirm(question: Question[Any]) -> bool:
        # Deleting files and running the user's own commands are worth a question (question.worth_asking).
        return ask(question, yes=args.yes)

    if args.canary:
        return _canary(project, args, confirm)
    with EventDisplay() as display:
        try:
            result = project.deploy(adapter=args.adapter, adapter_name=args.name, delete=args.delete,
                                    restart=True if args.restart else None, wait=not args.no_wait,
                                    timeout=args.timeout, on_event=display, confirm=confirm)
        except SyncInterrupted as exc:
            print(f"azinfer: {exc}", file=sys.stderr)
            return EXIT_INTERRUPTED
    if result.declined:
        return declined("changed")
    if result.restarted is None:
        print("No changes on the share: nothing restarted (pass --restart to restart anyway).")
    elif result.revision is not None:
        print(f"Ready: {result.endpoint}")
    else:
        print(f"Restarted revision {result.restarted!r}; not waiting for it.")
    return EXIT_OK


def _canary(project: AzureProject, args: argparse.Namespace, confirm: ConfirmCallback) -> int:
    """``deploy --canary``: a failed smoke test is one line (``azinfer: ...``) and a non-zero exit, from main."""
    with EventDisplay() as display:
        result = project.deploy(adapter=args.adapter, adapter_name=args.name, delete=args.delete,
                                timeout=args.timeout, on_event=display, confirm=confirm, canary=True,
                                steps=args.steps, step_wait=args.step_wait)
    if result.declined:
        return declined("changed")
    print(f"Revision {result.revision!r} serves all the traffic at {result.endpoint}; "
          f"{result.previous!r} is kept for 'azinfer rollback'.")
    return EXIT_OK


def _cmd_rollback(args: argparse.Namespace) -> int:
    with EventDisplay() as display:
        result = azure_project(args).rollback(timeout=args.timeout, on_event=display)
    print(f"Revision {result.revision!r} serves all the traffic again; {result.replaced!r} is kept with none.")
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    status = azure_project(args).status()
    local = _local_summary(args)
    if args.json:
        print(json.dumps(status.to_json() | ({"local": local} if local else {}), indent=2))
    else:
        sys.stdout.write(status.to_text())
        if local:
            print(f"Local: daemon pid {local['pid']}, ARM emulator at {local['arm_endpoint']}; "
                  f"model: {local['model']}")
    return EXIT_OK


def _local_summary(args: argparse.Namespace) -> dict[str, Any] | None:
    """With ``--local``: the daemon, where it listens and the model it serves (never its secret)."""
    if not args.local:
        return None
    from azinfer.local.endpoint import require

    endpoint = require(args.project_dir, say=say_local)
    return {"pid": endpoint.pid, "arm_endpoint": endpoint.url, "ca": str(endpoint.ca), "model": endpoint.model,
            "stand_in": endpoint.stand_in, "state_folder": str(endpoint.workspace.root)}


def _cmd_logs(args: argparse.Namespace) -> int:
    shown = 0
    with EventDisplay() as display:  # a reopened stream: one line on stderr
        lines = azure_project(args).logs(follow=args.follow, tail=args.tail, system=args.system, on_event=display)
        for line in lines:  # Ctrl-C stops --follow: "azinfer: interrupted", exit 130
            print(line, flush=True)
            shown += 1
    if not shown and args.tail:  # said on stderr: stdout stays the log
        print("azinfer: no system events to show" if args.system else
              "azinfer: the container has written no log lines yet (--system shows the app's events: "
              "revisions, replicas, restarts)", file=sys.stderr)
    return EXIT_OK


def _cmd_destroy(args: argparse.Namespace) -> int:
    project = azure_project(args)
    if args.preview:
        sys.stdout.write(project.destroy_plan().to_text())
        return EXIT_OK
    with EventDisplay() as display:
        result = project.destroy(confirm=lambda question: ask(question, yes=args.yes), on_event=display)
    if result.declined:
        return declined("deleted")
    if not result.deleted:
        sys.stdout.write(result.plan.to_text())
    print(f"Deleted {len(result.deleted)} resource(s).")
    if result.config_path is not None:
        print(f"Cleared azinfer's keys in {result.config_path} (your other keys are kept).")
    return EXIT_OK


def _cmd_down(args: argparse.Namespace) -> int:
    if not args.local or args.preview:
        return _cmd_destroy(args)
    from azinfer.local.endpoint import find, stop

    check_local_options(args)
    endpoint = find(args.project_dir, say=say_local)
    if endpoint is None:
        print(f"No local endpoint for {args.project_dir}: nothing to stop.")
        return EXIT_OK
    try:
        with EventDisplay() as display:
            result = azure_project(args).destroy(on_event=display)
        print(f"Deleted {len(result.deleted)} resource(s).")
    finally:  # a failed destroy still stops the daemon: its state goes with it
        pid = stop(args.project_dir)
    print(f"Stopped the local endpoint (daemon pid {pid} and its containers); its log stays in "
          f"{endpoint.workspace.log}.")
    return EXIT_OK


def _tail(text: str) -> int:
    """``--tail``: 0 to 300 lines (the log stream's limit)."""
    from azinfer.azure.logstream import MAX_TAIL

    try:
        lines = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= lines <= MAX_TAIL:
        raise argparse.ArgumentTypeError(f"{lines}: expected 0 to {MAX_TAIL} lines (the log stream's limit)")
    return lines


def _steps(text: str) -> int:
    """``--steps``: 1 to 100."""
    try:
        steps = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= steps <= 100:
        raise argparse.ArgumentTypeError(f"{steps}: expected 1 to 100 steps")
    return steps


def register(commands: Any) -> None:
    """Add ``deploy``, ``rollback``, ``status``, ``logs`` and ``destroy`` to the CLI's subcommands."""
    deploy = commands.add_parser("deploy", help="sync the server (and your code) to the share, restart, wait")
    add_project_options(deploy, update=False)
    add_azure_options(deploy)
    deploy.add_argument("--adapter", metavar="DIR", help="also publish this local adapter folder under models/azinfer/")
    deploy.add_argument("--name", metavar="NAME", help="publish --adapter as models/azinfer/NAME, served as model NAME "
                        "without a restart by replicas that watch the share (--adapter-poll)")
    deploy.add_argument("--delete", action="store_true", help="delete files an earlier deploy uploaded that are gone locally")
    deploy.add_argument("--restart", action="store_true", help="restart even when nothing changed")
    deploy.add_argument("--no-wait", action="store_true", help="do not wait for /ready after the restart")
    deploy.add_argument("--timeout", type=float, default=900.0, metavar="SECONDS",
                        help="how long to wait for /ready (default 900)")
    deploy.add_argument("--dry-run", action="store_true", help="show what would be uploaded and deleted, change nothing")
    deploy.add_argument("--yes", "-y", action="store_true", help="do not ask before deleting or running your commands")
    deploy.add_argument("--canary", action="store_true",
                        help="start a new revision beside the serving one, smoke-test it, then move the traffic")
    deploy.add_argument("--steps", type=_steps, default=1, metavar="N",
                        help="with --canary: move the traffic in N equal steps (default 1: all at once)")
    deploy.add_argument("--step-wait", type=float, default=60.0, metavar="SECONDS",
                        help="with --canary: seconds between steps (default 60)")
    deploy.set_defaults(handler=_cmd_deploy)

    rollback = commands.add_parser("rollback", help="all the traffic back to the revision the last --canary replaced")
    add_project_options(rollback, update=False)
    add_azure_options(rollback)
    rollback.add_argument("--timeout", type=float, default=900.0, metavar="SECONDS",
                          help="how long to wait for that revision when it has to start again (default 900)")
    rollback.set_defaults(handler=_cmd_rollback)

    status = commands.add_parser("status", help="the endpoint's state: revision, replicas, GPU profile, /ready")
    add_project_options(status, update=False)
    add_azure_options(status)
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(handler=_cmd_status)

    logs = commands.add_parser("logs", help="the container's log (Container Apps' log stream)")
    add_project_options(logs, update=False)
    add_azure_options(logs)
    logs.add_argument("--follow", "-f", action="store_true", help="keep streaming until Ctrl-C")
    logs.add_argument("--tail", type=_tail, default=20, metavar="N", help="lines of history first (0-300, default 20)")
    logs.add_argument("--system", action="store_true", help="the app's system events instead of the console")
    logs.set_defaults(handler=_cmd_logs)

    for name, handler, summary in (
            ("destroy", _cmd_destroy, "delete what azinfer created for inference, nothing else"),
            ("down", _cmd_down, "destroy; with --local (which asks nothing) also stop the local endpoint's daemon")):
        command = commands.add_parser(name, help=summary)
        add_project_options(command, update=False)
        add_azure_options(command)
        command.add_argument("--preview", action="store_true", help="show what would be deleted, delete nothing")
        command.add_argument("--yes", "-y", action="store_true", help="do not ask before deleting")
        command.set_defaults(handler=handler)
