"""``azinfer deploy``: put what the container runs on the share, restart the app, wait until ``/ready`` answers.

Reads ``infra/inference.config.json`` (written by ``provision``) to find the
app, the storage account and the share. The steps, each an event: sync by
content (asking first when files go or the user's own commands run), restart
the serving revision (or wait for a newer one when the template changed),
then wait for a fresh replica and ``GET /ready``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from azinfer._printable import printable
from azinfer.azure.app import (
    RevisionStatus,
    active_revision,
    endpoint_url,
    read_app,
    restart_revision,
    revision_status,
)
from azinfer.azure.clients import enum_text
from azinfer.azure.context import AzureContext
from azinfer.azure.diagnosis import IMAGE_CAUSES, SYSTEM_TAIL, diagnose
from azinfer.azure.events import ConfirmCallback, Emitter, EventCallback, EventKind, Operation, Question
from azinfer.azure.key import request_key
from azinfer.azure.logs import last_logs
from azinfer.azure.scope import ProjectScope
from azinfer.azure.share import (
    NEVER_SYNCED,
    LocalFile,
    ShareSync,
    SyncPlan,
    SyncResult,
    blob_files,
    folder_files,
    project_files,
)
from azinfer.errors import AzureError, ReadyTimeout, ServeError
from azinfer.project import InferenceConfig
from azinfer.serve.bundle import DIST_DIR, server_bundle
from azinfer.serve.discovery import ADAPTERS_DIR
from azinfer.serve.settings import check_adapter_name
from azinfer.start import StartOrigin, decide_start

if TYPE_CHECKING:  # pragma: no cover
    from azure.mgmt.appcontainers.models import ContainerApp

__all__ = ["DeployResult", "SyncSummary", "deploy", "preview", "sync_stage", "upload", "wait_for_revision",
           "wait_ready", "wait_until_ready"]



@dataclass(frozen=True)
class SyncSummary:
    """What a deploy puts on the share, before it does: shown with ``--dry-run`` and before uploading."""

    plan: SyncPlan
    start_origin: StartOrigin
    start_commands: tuple[str, ...]
    """The commands the container runs (shown when they are the user's own)."""

    def to_text(self) -> str:
        """Warnings, files to upload and delete, and the user's start commands."""
        lines = [f"warning: {w}" for w in self.plan.warnings]
        lines += [f"share: {len(self.plan.upload)} file(s) to upload ({self.plan.upload_bytes} bytes), "
                  f"{len(self.plan.delete)} to delete, {len(self.plan.unchanged)} unchanged"]
        # Names and commands come from files: shown with their control characters escaped.
        lines += [f"  + {printable(f.path)}" for f in self.plan.upload]
        lines += [f"  - {printable(p)}" for p in self.plan.delete]
        if self.start_origin is StartOrigin.USER:
            lines.append("the container runs your start command (/bin/bash -c):")
            lines += [f"  $ {printable(c)}" for c in self.start_commands]
        return "\n".join(lines) + "\n"

    @property
    def worth_asking(self) -> bool:
        """Whether a person should say yes first: files would be deleted, or the user's own commands run."""
        return (bool(self.plan.delete) or self.start_origin is StartOrigin.USER) and self.plan.changes


@dataclass(frozen=True)
class DeployResult:
    """What a deploy did."""

    sync: SyncResult
    restarted: str | None
    """The revision restarted (or waited for), ``None`` when nothing changed and no restart was asked."""
    revision: RevisionStatus | None
    endpoint: str | None
    """``https://<fqdn>`` of the app as ARM reports it (the config's ``ACA_APP_ENDPOINT`` is not used)."""
    declined: bool = False
    """``confirm`` answered no: nothing was uploaded, deleted or restarted."""


def _adapter_prefix(adapter: Path, name: str | None) -> str:
    """Where *adapter* goes on the share: ``models/azinfer/<name>``, the folder's own name without one.

    :raises AzureError: *name* cannot name an adapter.
    """
    if name is not None:
        try:
            check_adapter_name(name, "--name")
        except ServeError as error:
            raise AzureError(str(error)) from None
    return f"{ADAPTERS_DIR}/{name or adapter.resolve().name}"


def _files(scope: ProjectScope, *, adapter: Path | None, adapter_name: str | None = None
           ) -> tuple[dict[str, LocalFile], list[str], StartOrigin, tuple[str, ...]]:
    """What goes to the share and the roots deploy owns there."""
    start = decide_start(scope.project.inference_parameters.default_commands, source="defaultCommands")
    files = blob_files(server_bundle().files)
    roots = [DIST_DIR]
    if start.origin is StartOrigin.USER:
        mirrored = project_files(scope.project.root)
        files.update(mirrored)
        # The top-level folders and files the project has (and had: the manifest remembers them).
        roots += sorted({path.split("/", 1)[0] for path in mirrored})
    if adapter is None and adapter_name is not None:
        raise AzureError(f"--name {adapter_name}: name an adapter folder with --adapter DIR")
    if adapter is not None:
        if not (adapter / "adapter_config.json").is_file():
            raise AzureError(f"--adapter {adapter}: not an adapter folder (no adapter_config.json)")
        prefix = _adapter_prefix(adapter, adapter_name)
        files.update(folder_files(adapter, prefix))
        roots.append(prefix)
    return files, roots, start.origin, start.commands


def _previous_roots(sync: ShareSync, roots: list[str]) -> list[str]:
    """Top-level entries an earlier project sync uploaded, so ``--delete`` finds what is gone locally."""
    earlier = {path.split("/", 1)[0] for path in sync.manifest()} - NEVER_SYNCED - {".azinfer"}
    return sorted(set(roots) | earlier)


def _prepare(ctx: AzureContext, scope: ProjectScope, config: InferenceConfig, *, adapter: Path | None,
             delete: bool, adapter_name: str | None = None) -> tuple[ShareSync, SyncSummary]:
    sync = ctx.share_sync(config.resource_group or scope.resource_group, config.storage_account_name or "",
                          config.file_share_name or "")
    files, roots, origin, commands = _files(scope, adapter=adapter, adapter_name=adapter_name)
    if origin is StartOrigin.USER and delete:
        roots = _previous_roots(sync, roots)
    # deploy owns .azinfer/dist whole: an older wheel goes even without --delete.
    plan = sync.plan(files, roots=roots, delete=delete, owned_whole=(DIST_DIR,))
    return sync, SyncSummary(plan, origin, commands)


def preview(ctx: AzureContext, scope: ProjectScope, *, adapter: Path | None = None,
            delete: bool = False, adapter_name: str | None = None) -> SyncSummary:
    """What a deploy would upload and delete. See :meth:`AzureProject.deploy_preview`."""
    return _prepare(ctx, scope, scope.provisioned(), adapter=adapter, delete=delete, adapter_name=adapter_name)[1]


def upload(ctx: AzureContext, scope: ProjectScope, config: InferenceConfig, emit: Emitter, *,
           adapter: Path | None = None, delete: bool = False,
           confirm: ConfirmCallback | None = None, adapter_name: str | None = None) -> SyncResult | None:
    """Sync azinfer's server (and the project, for a start command the user wrote) to the share.

    :returns: what the sync did; ``None`` when ``confirm`` declined (nothing was written).
    :raises AzureError: when the share cannot be reached.
    :raises SyncError: when a file vanished or a write failed (the next run continues).
    :raises SyncInterrupted: on Ctrl-C (the next run continues).
    """
    sync, summary = _prepare(ctx, scope, config, adapter=adapter, delete=delete, adapter_name=adapter_name)
    question = Question(Operation.DEPLOY, "Go ahead?", summary.to_text(), summary, summary.worth_asking)
    if confirm is not None and not confirm(question):
        return None
    if summary.plan.upload:
        emit(EventKind.TRANSFER, files=len(summary.plan.upload), total=summary.plan.upload_bytes)
    return sync.apply(summary.plan, on_bytes=emit.bytes)


def sync_stage(ctx: AzureContext, scope: ProjectScope, config: InferenceConfig, emit: Emitter, *,
               adapter: Path | None = None, delete: bool = False, confirm: ConfirmCallback | None = None,
               adapter_name: str | None = None) -> SyncResult | None:
    """:func:`upload`, said before and after as stages. ``None`` when ``confirm`` declined."""
    emit.stage(f"syncing to file share {config.file_share_name!r} of storage account {config.storage_account_name!r}")
    result = upload(ctx, scope, config, emit, adapter=adapter, delete=delete, confirm=confirm,
                    adapter_name=adapter_name)
    if result is not None:
        emit.stage(f"uploaded {len(result.uploaded)} file(s) ({result.uploaded_bytes} bytes), deleted "
                   f"{len(result.deleted)}, {result.unchanged} unchanged")
    return result


def deploy(ctx: AzureContext, scope: ProjectScope, *, adapter: Path | None = None, delete: bool = False,
           restart: bool | None = None, wait: bool = True, timeout: float = 900.0,
           on_event: EventCallback | None = None, confirm: ConfirmCallback | None = None,
           adapter_name: str | None = None) -> DeployResult:
    """Upload what changed, restart the active revision, wait for ``/ready``. See :meth:`AzureProject.deploy`.

    A named adapter alone needs no restart: the replicas watching the share load it.
    """
    emit = Emitter(Operation.DEPLOY, on_event)
    config = scope.provisioned()
    group, app_name = config.resource_group or scope.resource_group, config.app_name or ""
    app = read_app(ctx.clients, group, app_name)  # a missing app fails before anything is uploaded
    endpoint = endpoint_url(app)  # ARM's, not the config's: the key goes nowhere else
    if wait and restart is not False and endpoint is None:
        raise AzureError(f"container app {app_name!r} has no external endpoint (ingress FQDN) to wait for; "
                         "deploy with --no-wait, or provision again")
    result = sync_stage(ctx, scope, config, emit, adapter=adapter, delete=delete, confirm=confirm,
                        adapter_name=adapter_name)
    if result is None:
        return DeployResult(SyncResult((), 0, (), 0), None, None, endpoint, declined=True)
    named = _adapter_prefix(adapter, adapter_name) + "/" if adapter is not None and adapter_name else None
    changed = any(named is None or not path.startswith(named) for path in result.uploaded + result.deleted)
    if restart is False or (restart is None and not changed):
        return DeployResult(result, None, None, endpoint)
    revision, replaced = _restart(ctx, group, app_name, app, emit)
    if not wait:
        return DeployResult(result, revision, None, endpoint)
    status = wait_for_revision(ctx, group, app_name, revision, endpoint or "", request_key(ctx, scope), emit,
                               replaced=replaced, timeout=timeout)
    return DeployResult(result, revision, status, endpoint)


def wait_for_revision(ctx: AzureContext, group: str, app: str, revision: str, url: str, api_key: str | None,
                      emit: Emitter, *, replaced: frozenset[str] = frozenset(),
                      timeout: float = 900.0) -> RevisionStatus:
    """:func:`wait_until_ready`, with the app's console and system logs for the error when it ends in one."""
    return wait_until_ready(ctx, group, app, revision, url, api_key, emit, replaced=replaced, timeout=timeout,
                            last_logs=lambda: last_logs(ctx, group, app),
                            system_logs=lambda: last_logs(ctx, group, app, SYSTEM_TAIL, system=True))


def wait_ready(ctx: AzureContext, scope: ProjectScope, *, timeout: float = 900.0,
               on_event: EventCallback | None = None) -> DeployResult:
    """Wait, restarting nothing, until the app's newest revision runs a replica and ``/ready`` answers 200.

    What ``provision`` leaves starting (a new app, a new revision) is waited for here. See
    :meth:`AzureProject.wait_ready`.

    :returns: a result that synced and restarted nothing (``revision`` is the ready revision's status).
    :raises ReadyTimeout: after ``timeout`` seconds, naming the revision's state and the last log lines.
    """
    emit = Emitter(Operation.DEPLOY, on_event)
    config = scope.provisioned()
    group, app_name = config.resource_group or scope.resource_group, config.app_name or ""
    app = read_app(ctx.clients, group, app_name)
    endpoint = endpoint_url(app)
    if endpoint is None:
        raise AzureError(f"container app {app_name!r} has no external endpoint (ingress FQDN) to wait for")
    props = app.properties
    revision = (props.latest_revision_name if props is not None else None) or active_revision(ctx.clients, group, app)
    if revision is None:
        raise AzureError(f"container app {app_name!r} has no revision to wait for")
    status = wait_until_ready(ctx, group, app_name, revision, endpoint, request_key(ctx, scope), emit,
                              timeout=timeout, last_logs=lambda: last_logs(ctx, group, app_name))
    return DeployResult(SyncResult((), 0, (), 0), None, status, endpoint)


def _restart(ctx: AzureContext, group: str, name: str, app: ContainerApp,
             emit: Emitter) -> tuple[str, frozenset[str]]:
    """Restart the serving revision; when a newer revision is on its way (the template changed), wait for that one.

    :returns: the revision to wait for, and the replicas it had (a fresh one is what counts).
    """
    props = app.properties
    latest = props.latest_revision_name if props is not None else None
    ready = props.latest_ready_revision_name if props is not None else None
    configuration = props.configuration if props is not None else None
    # In multiple revision mode a newer revision (a canary) gets no traffic by itself: restart the serving one.
    mode = enum_text(configuration.active_revisions_mode) if configuration is not None else None
    single = (mode or "Single").lower() != "multiple"
    if latest and latest != ready and single:
        emit.stage(f"revision {latest!r} is new (the template changed): waiting for it instead of restarting")
        return latest, frozenset()
    revision = active_revision(ctx.clients, group, app)
    if revision is None:
        raise AzureError(f"container app {name!r} has no revision to restart")
    before = frozenset(r.name for r in revision_status(ctx.clients, group, name, revision).replicas)
    emit.stage(f"restarting revision {revision!r}")
    restart_revision(ctx.clients, group, name, revision)
    return revision, before


def wait_until_ready(ctx: AzureContext, resource_group: str, app: str, revision: str, url: str,
                     api_key: str | None, emit: Emitter, *, replaced: frozenset[str] = frozenset(),
                     timeout: float = 900.0,
                     last_logs: Callable[[], tuple[str, ...]] | None = None,
                     system_logs: Callable[[], tuple[str, ...]] | None = None) -> RevisionStatus:
    """Wait until a replica of ``revision`` not in ``replaced`` runs and ``GET /ready`` answers 200.

    Asking ``/ready`` also wakes a revision scaled to zero. Each stage is said once. An image that
    cannot be pulled ends the wait at once: waiting does not fix it.

    :raises ReadyTimeout: after ``timeout`` seconds (or a failed image pull), naming the cause and its fix
        when the system log shows one (:mod:`azinfer.azure.diagnosis`), the revision's state and the last log lines.
    """
    deadline = ctx.clock() + timeout
    said: set[str] = set()

    def stage(text: str) -> None:
        if text not in said:
            emit.stage(text)
        said.add(text)

    detail = ""
    while True:
        status = revision_status(ctx.clients, resource_group, app, revision)
        fresh = [r for r in status.replicas if r.name not in replaced]
        running = [r for r in fresh if r.running_state.lower() == "running"]
        if not fresh:
            stage(f"waiting for a new replica of revision {revision!r}")
        elif not running:
            stage(f"replica {fresh[0].name} is starting")
        else:
            stage(f"replica {running[0].name} is running; waiting for /ready")
            ready, detail = ctx.check_ready(url, api_key)
            if ready:
                stage("the endpoint answers /ready")
                # Read again: the replica turned ready between the read above and the answer.
                return revision_status(ctx.clients, resource_group, app, revision)
        if status.running_state.lower() == "failed" or ctx.clock() >= deadline or _pull_failed(status):
            break
        if not fresh:  # scaled to zero: a request brings a replica up
            ctx.check_ready(url, api_key, timeout=2.0)
        ctx.sleep(ctx.poll_interval)
    logs = last_logs() if last_logs is not None else ()
    last = f"; its last log line: {' '.join(logs[-1].splitlines())}" if logs else ""
    found = diagnose(status, system_logs() if system_logs is not None else (), console_lines=logs)
    cause = f"{found.to_text()}; " if found is not None else ""
    lead = ("the endpoint cannot get ready" if _pull_failed(status)
            else f"the endpoint did not get ready within {timeout:g} s")
    raise ReadyTimeout(f"{lead}: {cause}{status.describe()}"
                       + (f"; /ready answered {detail}" if detail else "") + last, status, logs)


def _pull_failed(status: RevisionStatus) -> bool:
    """The replicas' own state words already say that the image cannot be pulled."""
    found = diagnose(status)
    return found is not None and found.cause in IMAGE_CAUSES
