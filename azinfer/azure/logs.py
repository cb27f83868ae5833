"""``azinfer logs``: the container's console log (or the app's system events), a reopened stream an event.

A container that wrote nothing (it never started: its image could not be
pulled, no GPU node came) gets one error line saying why and what to do,
read from the system log (:mod:`azinfer.azure.diagnosis`), in place of an
empty answer.
"""

from __future__ import annotations

from collections.abc import Iterator

from azinfer.azure.app import EndpointStatus, endpoint_status
from azinfer.azure.context import AzureContext
from azinfer.azure.diagnosis import SYSTEM_TAIL, diagnose
from azinfer.azure.events import Emitter, EventCallback, EventKind, Operation
from azinfer.azure.scope import ProjectScope
from azinfer.errors import AzureError

__all__ = ["logs", "last_logs", "diagnosis"]


def logs(ctx: AzureContext, scope: ProjectScope, *, follow: bool = False, tail: int = 20, system: bool = False,
         on_event: EventCallback | None = None) -> Iterator[str]:
    """See :meth:`AzureProject.logs`."""
    config = scope.provisioned()
    emit = Emitter(Operation.LOGS, on_event)
    group, app = config.resource_group or scope.resource_group, config.app_name or ""
    lines = ctx.log_lines(group, app, follow=follow, tail=tail, system=system,
                          reconnect_delay=max(ctx.poll_interval, 0.01),
                          on_reconnect=lambda why: emit(EventKind.RECONNECT, message=why))
    if follow or system or tail == 0:
        return lines
    return _or_why_none(ctx, group, app, lines)


def _or_why_none(ctx: AzureContext, group: str, app: str, lines: Iterator[str]) -> Iterator[str]:
    """The lines; when there is none, an error saying why the container wrote none (when the system log tells)."""
    shown = False
    for line in lines:
        shown = True
        yield line
    if not shown:
        why = diagnosis(ctx, group, app, endpoint_status(ctx.clients, group, app, None, ask_ready=False))
        if why is not None:
            raise AzureError(f"the container wrote no log lines: {why}")


def diagnosis(ctx: AzureContext, group: str, app: str, status: EndpointStatus) -> str | None:
    """Why the endpoint does not serve, in one line with the fix, from the system log and the console's last
    lines (read only now: each is a round trip); ``None`` when nothing explains it."""
    system = last_logs(ctx, group, app, SYSTEM_TAIL, system=True)
    console = last_logs(ctx, group, app, 5) if status.revision is not None and status.revision.replicas else ()
    found = diagnose(status.revision, system, console_lines=console, environment_state=status.environment_state)
    return found.to_text() if found is not None else None


def last_logs(ctx: AzureContext, group: str, app: str, count: int = 20, *, system: bool = False) -> tuple[str, ...]:
    """The console's (``system``: the system log's) last lines for a message; empty when the stream cannot be read."""
    try:
        return tuple(ctx.log_lines(group, app, tail=count, system=system, max_reconnects=1))
    except Exception:  # noqa: BLE001 - the timeout is the error to report; logs only help
        return ()
