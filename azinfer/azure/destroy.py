"""``azinfer destroy``: decide what azinfer created (see :mod:`azinfer.azure.teardown`), ask, delete it app first,
clear the config file's owned keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from azinfer.azure import teardown
from azinfer.azure.context import AzureContext
from azinfer.azure.events import ConfirmCallback, Emitter, EventCallback, EventKind, Operation, Question
from azinfer.azure.scope import ProjectScope
from azinfer.azure.failures import translated
from azinfer.config import write_config
from azinfer.resources import ResourceKind

__all__ = ["DestroyResult", "destroy_plan", "destroy"]


@dataclass(frozen=True)
class DestroyResult:
    """What a destroy did."""

    plan: teardown.TeardownPlan
    deleted: tuple[teardown.TeardownItem, ...]
    config_path: Path | None
    """The config file whose owned keys were cleared (``None`` when there was none)."""
    declined: bool = False
    """``confirm`` answered no: nothing was deleted."""


def destroy_plan(ctx: AzureContext, scope: ProjectScope) -> teardown.TeardownPlan:
    """What :func:`destroy` would delete and keep, and why. Deletes nothing."""
    inventory = ctx.inventory(scope.resource_group)
    inputs = scope.resolve(inventory)
    names = {kind: inputs.name(kind) for kind in ResourceKind}
    config = scope.config()
    if config.app_name:
        names[ResourceKind.CONTAINER_APP] = config.app_name

    def share_extras() -> list[str]:
        return ctx.share_sync(scope.resource_group, names[ResourceKind.STORAGE_ACCOUNT],
                              names[ResourceKind.FILE_SHARE]).foreign()

    return teardown.teardown_plan(inventory, scope.resource_group, names, share_extras)


def destroy(ctx: AzureContext, scope: ProjectScope, *, confirm: ConfirmCallback | None = None,
            on_event: EventCallback | None = None) -> DestroyResult:
    """Delete what azinfer created for inference (app first); clear the config's owned keys.

    ``confirm`` is asked only when something would be deleted.
    """
    emit = Emitter(Operation.DESTROY, on_event)
    with translated("plan the teardown"):
        plan = destroy_plan(ctx, scope)
    question = Question(Operation.DESTROY, "Delete these resources?", plan.to_text(), plan)
    if plan.deletes and confirm is not None and not confirm(question):
        return DestroyResult(plan, (), None, declined=True)

    def progress(item: teardown.TeardownItem, state: str) -> None:
        emit(EventKind.RESOURCE, resource_type=item.kind.label, resource_name=item.name, state=state)

    with translated("delete the resources"):
        deleted = teardown.run_teardown(ctx.clients, plan, progress)
    config = scope.config()
    path = None
    if any(value is not None for value in config.owned().values()):
        path = write_config(scope.project.root, config.cleared())
    return DestroyResult(plan, deleted, path)
