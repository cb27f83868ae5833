"""The endpoint's life after provisioning: deploy code to the share and restart, status, logs, destroy.

:class:`~azinfer.azure.AzureProject` offers these as methods; the bodies live
here. Every one reads ``infra/inference.config.json`` (written by
``provision``) to find the app, the storage account and the share.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from azinfer._printable import printable
from azinfer.azure.app import (
    EndpointStatus,
    RevisionStatus,
    active_revision,
    endpoint_status,
    endpoint_url,
    read_app,
    restart_revision,
    revision_status,
    wait_until_ready,
)
from azinfer.azure.logstream import log_lines
from azinfer.azure.share import (
    BytesCallback,
    LocalFile,
    ShareSync,
    SyncPlan,
    SyncResult,
    blob_files,
    folder_files,
    open_share,
    project_files,
)
from azinfer.errors import AzureError
from azinfer.project import INFERENCE_CONFIG, InferenceConfig
from azinfer.serve.bundle import DIST_DIR, server_bundle
from azinfer.start import StartOrigin, decide_start

if TYPE_CHECKING:  # pragma: no cover
    from azure.mgmt.appcontainers.models import ContainerApp

    from azinfer.azure.provision import AzureProject

__all__ = ["DeployResult", "SyncSummary", "deploy", "preview", "status", "logs", "upload"]

ADAPTERS_DIR = "models/azinfer"
"""Where ``--adapter DIR`` publishes a local adapter (the server serves the newest adapter under ``models/``)."""

StageCallback = Callable[[str], None]


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


@dataclass(frozen=True)
class DeployResult:
    """What a deploy did."""

    sync: SyncResult
    restarted: str | None
    """The revision restarted (or waited for), ``None`` when nothing changed and no restart was asked."""
    revision: RevisionStatus | None
    endpoint: str | None
    """``https://<fqdn>`` of the app as ARM reports it (the config's ``ACA_APP_ENDPOINT`` is not used)."""


def _config(project: AzureProject) -> InferenceConfig:
    config = project.config()
    if not config.provisioned:
        missing = ", ".join(config.missing)
        raise AzureError(f"{INFERENCE_CONFIG}: {missing} not set: nothing is provisioned yet "
                         "(run 'azinfer provision')")
    return config


def _files(project: AzureProject, *, adapter: Path | None) -> tuple[dict[str, LocalFile], list[str],
                                                                   StartOrigin, tuple[str, ...]]:
    """What goes to the share and the roots deploy owns there."""
    params = project.project.inference_parameters
    start = decide_start(params.default_commands, source="defaultCommands")
    files = blob_files(server_bundle().files)
    roots = [DIST_DIR]
    if start.origin is StartOrigin.USER:
        mirrored = project_files(project.project.root)
        files.update(mirrored)
        # The top-level folders and files the project has (and had: the manifest remembers them).
        roots += sorted({path.split("/", 1)[0] for path in mirrored})
    if adapter is not None:
        adapter = Path(adapter)
        if not (adapter / "adapter_config.json").is_file():
            raise AzureError(f"--adapter {adapter}: not an adapter folder (no adapter_config.json)")
        prefix = f"{ADAPTERS_DIR}/{adapter.resolve().name}"
        files.update(folder_files(adapter, prefix))
        roots.append(prefix)
    return files, roots, start.origin, start.commands


def _previous_roots(sync: ShareSync, roots: list[str]) -> list[str]:
    """Top-level entries an earlier project sync uploaded, so ``--delete`` finds what is gone locally."""
    from azinfer.azure.share import NEVER_SYNCED

    earlier = {path.split("/", 1)[0] for path in sync.manifest()} - NEVER_SYNCED - {".azinfer"}
    return sorted(set(roots) | earlier)


def _prepare(project: AzureProject, config: InferenceConfig, *, adapter: Path | None,
             delete: bool) -> tuple[ShareSync, SyncSummary]:
    sync = open_share(project.clients, config.resource_group or project.resource_group,
                      config.storage_account_name or "", config.file_share_name or "", **project.client_kwargs)
    files, roots, origin, commands = _files(project, adapter=adapter)
    if origin is StartOrigin.USER and delete:
        roots = _previous_roots(sync, roots)
    # deploy owns .azinfer/dist whole: an older wheel goes even without --delete.
    plan = sync.plan(files, roots=roots, delete=delete, owned_whole=(DIST_DIR,))
    return sync, SyncSummary(plan, origin, commands)


def preview(project: AzureProject, *, adapter: Path | None = None, delete: bool = False) -> SyncSummary:
    """What a deploy would upload and delete. See :meth:`AzureProject.deploy_preview`."""
    return _prepare(project, _config(project), adapter=adapter, delete=delete)[1]


def upload(project: AzureProject, config: InferenceConfig, *, adapter: Path | None = None, delete: bool = False,
           on_bytes: BytesCallback | None = None,
           confirm: Callable[[SyncSummary], bool] | None = None) -> SyncResult:
    """Sync azinfer's server (and the project, for a start command the user wrote) to the share.

    :raises AzureError: when the share cannot be reached, or ``confirm`` declines.
    :raises SyncError: when a file vanished or a write failed (the next run continues).
    :raises SyncInterrupted: on Ctrl-C (the next run continues).
    """
    sync, summary = _prepare(project, config, adapter=adapter, delete=delete)
    if confirm is not None and not confirm(summary):
        raise AzureError("deploy cancelled: nothing was changed")
    return sync.apply(summary.plan, on_bytes=on_bytes)


def deploy(project: AzureProject, *, adapter: Path | None = None, delete: bool = False,
           restart: bool | None = None, wait: bool = True, timeout: float = 900.0,
           on_stage: StageCallback | None = None, on_bytes: BytesCallback | None = None,
           confirm: Callable[[SyncSummary], bool] | None = None) -> DeployResult:
    """Upload what changed, restart the active revision, wait for ``/ready``. See :meth:`AzureProject.deploy`."""
    config = _config(project)
    group, app_name = config.resource_group or project.resource_group, config.app_name or ""
    clients = project.clients
    app = read_app(clients, group, app_name)  # a missing app fails before anything is uploaded
    endpoint = endpoint_url(app)  # ARM's, not the config's: the key goes nowhere else
    if wait and restart is not False and endpoint is None:
        raise AzureError(f"container app {app_name!r} has no external endpoint (ingress FQDN) to wait for; "
                         "deploy with --no-wait, or provision again")

    def stage(text: str) -> None:
        if on_stage is not None:
            on_stage(text)

    stage(f"syncing to file share {config.file_share_name!r} of storage account {config.storage_account_name!r}")
    result = upload(project, config, adapter=adapter, delete=delete, on_bytes=on_bytes, confirm=confirm)
    stage(f"uploaded {len(result.uploaded)} file(s) ({result.uploaded_bytes} bytes), deleted "
          f"{len(result.deleted)}, {result.unchanged} unchanged")
    changed = bool(result.uploaded or result.deleted)
    if restart is False or (restart is None and not changed):
        return DeployResult(result, None, None, endpoint)
    revision = _restart(project, group, app_name, app, stage)
    if not wait:
        return DeployResult(result, revision[0], None, endpoint)
    verify = project.verify
    status = wait_until_ready(
        clients, group, app_name, revision[0], endpoint or "", _key(project), replaced=revision[1], timeout=timeout,
        poll_interval=project.poll_interval, verify=verify, on_stage=stage,
        last_logs=lambda: _last_logs(project, group, app_name),
    )
    return DeployResult(result, revision[0], status, endpoint)


def _restart(project: AzureProject, group: str, name: str, app: ContainerApp,
             stage: StageCallback) -> tuple[str, frozenset[str]]:
    """Restart the serving revision; when a newer revision is on its way (the template changed), wait for that one."""
    clients = project.clients
    props = app.properties
    latest = props.latest_revision_name if props is not None else None
    ready = props.latest_ready_revision_name if props is not None else None
    if latest and latest != ready:
        stage(f"revision {latest!r} is new (the template changed): waiting for it instead of restarting")
        return latest, frozenset()
    revision = active_revision(clients, group, app)
    if revision is None:
        raise AzureError(f"container app {name!r} has no revision to restart")
    before = frozenset(r.name for r in revision_status(clients, group, name, revision).replicas)
    stage(f"restarting revision {revision!r}")
    restart_revision(clients, group, name, revision)
    return revision, before


def _key(project: AzureProject) -> str | None:
    from azinfer.project import Authentication

    if project.project.inference_parameters.authentication is Authentication.NONE:
        return None
    return project.api_key()


def _last_logs(project: AzureProject, group: str, app: str, count: int = 20) -> tuple[str, ...]:
    """The console's last lines for an error message; empty when the stream cannot be read."""
    try:
        return tuple(log_lines(project.clients, group, app, tail=count, verify=project.verify, max_reconnects=1))
    except Exception:  # noqa: BLE001 - the timeout is the error to report; logs only help
        return ()


def status(project: AzureProject, *, ask_ready: bool = True) -> EndpointStatus:
    """See :meth:`AzureProject.status`."""
    config = _config(project)
    key = _key(project) if ask_ready else None
    return endpoint_status(project.clients, config.resource_group or project.resource_group, config.app_name or "",
                           key, verify=project.verify, ask_ready=ask_ready)


def logs(project: AzureProject, *, follow: bool = False, tail: int = 20, system: bool = False,
         on_reconnect: Callable[[str], None] | None = None) -> Iterator[str]:
    """See :meth:`AzureProject.logs`."""
    config = _config(project)
    return log_lines(project.clients, config.resource_group or project.resource_group, config.app_name or "",
                     follow=follow, tail=tail, system=system, verify=project.verify,
                     reconnect_delay=max(project.poll_interval, 0.01), on_reconnect=on_reconnect)
