"""``azinfer deploy --canary`` and ``azinfer rollback``: a new revision beside the serving one, tried before it serves.

A canary deploy syncs the share as :mod:`.deploy` does, then switches the app
to multiple revision mode and creates a revision with a new
``template.revisionSuffix`` (a template change: a new revision, no restart of
the serving one), while the traffic rules keep 100 % on the serving revision
(label ``stable``); the new one gets the label ``canary`` and 0 %. It waits for
the new revision at its own address (its FQDN as ARM reports it: the only
place the key goes), smoke-tests it there (``/ready``, then the one short chat
completion of :mod:`.smoke`), then moves the traffic, at once or in ``steps`` (waiting
``step_wait`` seconds and smoke-testing again before each further step). A
failed smoke test leaves the traffic where it was before the deploy. The
replaced revision stays active with 0 % and the label ``previous``, so
:func:`rollback` gives it the traffic back without a cold start; revisions
older than that are deactivated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from azinfer.azure.app import (
    active_revision,
    app_properties,
    endpoint_url,
    read_app,
    revision_status,
    revision_url,
    traffic_of,
)
from azinfer.azure.context import AzureContext
from azinfer.azure.deploy import sync_stage, wait_for_revision
from azinfer.azure.events import ConfirmCallback, Emitter, EventCallback, Operation
from azinfer.azure.key import request_key
from azinfer.azure.scope import ProjectScope
from azinfer.azure.share import SyncResult
from azinfer.azure.smoke import SmokeTest
from azinfer.errors import AzureError, SmokeTestFailed

if TYPE_CHECKING:  # pragma: no cover
    from azure.mgmt.appcontainers.models import ContainerApp

__all__ = ["STABLE", "CANARY", "PREVIOUS", "Route", "RolloutResult", "RollbackResult", "traffic_steps",
           "rollout", "rollback"]

STABLE, CANARY, PREVIOUS = "stable", "canary", "previous"
"""The labels: the revision serving, the one being tried, the one a rollback goes back to."""

Route = tuple[str, int, str]
"""One traffic rule: revision name, weight in percent, label."""


@dataclass(frozen=True)
class RolloutResult:
    """What a canary deploy did."""

    sync: SyncResult
    revision: str | None
    """The new revision (``None`` when declined)."""
    previous: str | None
    """The revision it replaced (label ``previous``, 0 %)."""
    weights: tuple[int, ...]
    """The new revision's share of the traffic after each step, in percent."""
    endpoint: str | None
    smoke_test: SmokeTest | None = None
    """What the new revision answered to the smoke test before it got any traffic."""
    declined: bool = False


@dataclass(frozen=True)
class RollbackResult:
    """What a rollback did: ``revision`` serves all the traffic again; ``replaced`` keeps 0 % (label ``previous``)."""

    revision: str
    replaced: str
    endpoint: str | None


def traffic_steps(steps: int) -> tuple[int, ...]:
    """The new revision's weight after each of ``steps`` equal steps, ending at 100."""
    return tuple(round(100 * i / steps) for i in range(1, steps + 1))


def _suffix(app: str, content: dict[str, object], taken: set[str]) -> str:
    """``c`` and 8 hex digits of the share's content (``-2``, ``-3``... when that revision exists already)."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:8]
    suffix, n = f"c{digest}", 1
    while f"{app}--{suffix}".lower() in taken:
        n += 1
        suffix = f"c{digest}-{n}"
    return suffix


def _update(ctx: AzureContext, group: str, app: ContainerApp, routes: Sequence[Route], *,
            suffix: str | None = None) -> ContainerApp:
    """Multiple revision mode with these traffic rules (and a new revision with ``suffix``): one PATCH."""
    from azure.mgmt.appcontainers.models import (
        Configuration,
        ContainerApp,
        ContainerAppProperties,
        Template,
        TrafficWeight,
    )

    configuration = app_properties(app).configuration
    ingress = configuration.ingress if configuration is not None else None
    if ingress is None or app.name is None:
        raise AzureError(f"container app {app.name!r} has no ingress: traffic cannot be split")
    # The ingress as ARM has it (external, port, ...), with new rules: a merge patch replaces arrays whole.
    ingress.traffic = [TrafficWeight(revision_name=r, weight=w, label=label) for r, w, label in routes]
    patch = ContainerApp(location=app.location, properties=ContainerAppProperties(
        configuration=Configuration(active_revisions_mode="Multiple", ingress=ingress),
        template=Template(revision_suffix=suffix) if suffix else None))
    # ARM's Retry-After when it sends one; else the context's interval, not the SDK's 30 s.
    return ctx.clients.apps.container_apps.begin_update(group, app.name, patch,
                                                        polling_interval=ctx.poll_interval).result()


def _smoke(ctx: AzureContext, revision: str, url: str, key: str | None, stable: str, emit: Emitter) -> SmokeTest:
    """``/ready``, then one short chat completion (:mod:`.smoke`), at the revision's own address."""
    emit.stage(f"smoke test of revision {revision!r}: /ready, then one chat completion")
    ready, detail = ctx.check_ready(url, key)
    try:
        if not ready:
            raise AzureError(f"GET /ready answered {detail}")
        return ctx.smoke_test(url, key)
    except AzureError as error:
        why = str(error).removeprefix("smoke test: ")
        raise SmokeTestFailed(f"revision {revision!r} failed its smoke test at {url}: {why}; "
                              f"the traffic stays on revision {stable!r}", revision, why) from None


def rollout(ctx: AzureContext, scope: ProjectScope, *, adapter: Path | None = None,
            adapter_name: str | None = None, delete: bool = False,
            steps: int = 1, step_wait: float = 60.0, timeout: float = 900.0, on_event: EventCallback | None = None,
            confirm: ConfirmCallback | None = None) -> RolloutResult:
    """Sync, a new revision at 0 %, its smoke test, then the traffic in steps. See :meth:`AzureProject.deploy`."""
    emit = Emitter(Operation.DEPLOY, on_event)
    config = scope.provisioned()
    group, name = config.resource_group or scope.resource_group, config.app_name or ""
    app = read_app(ctx.clients, group, name)
    endpoint = endpoint_url(app)
    stable = active_revision(ctx.clients, group, app)
    if endpoint is None or stable is None:
        raise AzureError(f"container app {name!r} has no {'external endpoint' if endpoint is None else 'revision'} "
                         "to roll out behind; provision (and deploy) first")
    result = sync_stage(ctx, scope, config, emit, adapter=adapter, delete=delete, confirm=confirm,
                        adapter_name=adapter_name)
    if result is None:
        return RolloutResult(SyncResult((), 0, (), 0), None, None, (), endpoint, declined=True)
    share = ctx.share_sync(group, config.storage_account_name or "", config.file_share_name or "")
    content = {path: entry.get("md5") for path, entry in share.manifest().items()}
    taken = {(r.name or "").lower() for r in ctx.clients.apps.container_apps_revisions.list_revisions(group, name)}
    suffix = _suffix(name, content, taken)
    new = f"{name}--{suffix}"
    emit.stage(f"creating revision {new!r} beside {stable!r} (multiple revision mode), with no traffic")
    app = _update(ctx, group, app, [(stable, 100, STABLE)], suffix=suffix)
    app = _update(ctx, group, app, [(stable, 100, STABLE), (new, 0, CANARY)])
    url = revision_url(ctx.clients, group, name, new)
    if url is None:
        raise AzureError(f"revision {new!r} has no address (FQDN) to smoke-test; the traffic stays on {stable!r}")
    key = request_key(ctx, scope)
    wait_for_revision(ctx, group, name, new, url, key, emit, timeout=timeout)
    answered = _smoke(ctx, new, url, key, stable, emit)
    weights = traffic_steps(steps)
    for step, weight in enumerate(weights):
        if step:
            ctx.sleep(step_wait)
            try:
                _smoke(ctx, new, url, key, stable, emit)
            except SmokeTestFailed:
                app = _update(ctx, group, app, [(stable, 100, STABLE), (new, 0, CANARY)])
                raise
        final = weight == 100
        app = _update(ctx, group, app, [(new, 100, STABLE), (stable, 0, PREVIOUS)] if final
                      else [(stable, 100 - weight, STABLE), (new, weight, CANARY)])
        emit.stage(f"{weight}% of the traffic on revision {new!r}")
    _deactivate_others(ctx, group, name, keep={new.lower(), stable.lower()}, emit=emit)
    return RolloutResult(result, new, stable, weights, endpoint, answered)


def _deactivate_others(ctx: AzureContext, group: str, name: str, *, keep: set[str], emit: Emitter) -> None:
    """Revisions older than the one a rollback goes back to: inactive (they hold replicas, and GPUs)."""
    revisions = ctx.clients.apps.container_apps_revisions
    for revision in revisions.list_revisions(group, name):
        if revision.name and revision.name.lower() not in keep and revision.properties is not None \
                and revision.properties.active:
            emit.stage(f"deactivating revision {revision.name!r} (older than the one rollback goes back to)")
            revisions.deactivate_revision(group, name, revision.name)


def _rollback_target(app: ContainerApp) -> str | None:
    """The revision labelled ``previous``; during a rollout that stopped half way, the one labelled ``stable``."""
    labels = {t.label: t for t in traffic_of(app) if t.label and t.revision_name}
    if PREVIOUS in labels:
        return labels[PREVIOUS].revision_name
    if CANARY in labels and (labels[CANARY].weight or 0) > 0 and STABLE in labels:
        return labels[STABLE].revision_name
    return None


def rollback(ctx: AzureContext, scope: ProjectScope, *, timeout: float = 900.0,
             on_event: EventCallback | None = None) -> RollbackResult:
    """All the traffic back to the revision a canary deploy replaced. See :meth:`AzureProject.rollback`."""
    emit = Emitter(Operation.ROLLBACK, on_event)
    config = scope.provisioned()
    group, name = config.resource_group or scope.resource_group, config.app_name or ""
    app = read_app(ctx.clients, group, name)
    target, serving = _rollback_target(app), active_revision(ctx.clients, group, app)
    if target is None or serving is None or target == serving:
        raise AzureError(f"container app {name!r} has no revision to roll back to: only 'azinfer deploy --canary' "
                         "keeps the replaced revision (label 'previous')")
    if not revision_status(ctx.clients, group, name, target).active:
        emit.stage(f"activating revision {target!r}")
        ctx.clients.apps.container_apps_revisions.activate_revision(group, name, target)
        url = revision_url(ctx.clients, group, name, target)
        if url is None:
            raise AzureError(f"revision {target!r} has no address (FQDN) to wait for; the traffic stays on {serving!r}")
        wait_for_revision(ctx, group, name, target, url, request_key(ctx, scope), emit, timeout=timeout)
    _update(ctx, group, app, [(target, 100, STABLE), (serving, 0, PREVIOUS)])
    emit.stage(f"100% of the traffic on revision {target!r}; {serving!r} kept with none (label {PREVIOUS!r})")
    return RollbackResult(target, serving, endpoint_url(app))
