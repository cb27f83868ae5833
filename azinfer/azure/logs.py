"""``azinfer logs``: the container's console log (or the app's system events), a reopened stream an event."""

from __future__ import annotations

from collections.abc import Iterator

from azinfer.azure.context import AzureContext
from azinfer.azure.events import Emitter, EventCallback, EventKind, Operation
from azinfer.azure.scope import ProjectScope

__all__ = ["logs", "last_logs"]


def logs(ctx: AzureContext, scope: ProjectScope, *, follow: bool = False, tail: int = 20, system: bool = False,
         on_event: EventCallback | None = None) -> Iterator[str]:
    """See :meth:`AzureProject.logs`."""
    config = scope.provisioned()
    emit = Emitter(Operation.LOGS, on_event)
    return ctx.log_lines(config.resource_group or scope.resource_group, config.app_name or "", follow=follow,
                         tail=tail, system=system, reconnect_delay=max(ctx.poll_interval, 0.01),
                         on_reconnect=lambda why: emit(EventKind.RECONNECT, message=why))


def last_logs(ctx: AzureContext, group: str, app: str, count: int = 20, *, system: bool = False) -> tuple[str, ...]:
    """The console's (``system``: the system log's) last lines for a message; empty when the stream cannot be read."""
    try:
        return tuple(ctx.log_lines(group, app, tail=count, system=system, max_reconnects=1))
    except Exception:  # noqa: BLE001 - the timeout is the error to report; logs only help
        return ()
