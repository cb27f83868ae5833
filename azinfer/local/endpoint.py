"""Start, find and stop a project's local endpoint: the daemon of :mod:`azinfer.local.daemon`, detached.

::

    from azinfer.local.endpoint import start, require, stop

    endpoint, resumed = start("my-project")       # the daemon (built model, seeded group), or the running one
    project = endpoint.project()                  # an AzureProject whose Azure is that daemon
    project.up()                                  # the same code path as on Azure
    stop("my-project")                            # the containers and the daemon

A daemon whose pid file names a process that is gone (or another program) is
stale: its files are removed and any container it left running is stopped
before a new one starts. The service principal's secret is read from
``endpoint.json`` (0600) and never shown.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azinfer._files import write_atomic
from azinfer.errors import LocalEndpointError
from azinfer.inputs import with_fallbacks
from azinfer.local.daemon import DaemonSpec
from azinfer.local.workspace import ModelSource, Workspace, local_state_root, model_source
from azinfer.resources import ResourceKind

if TYPE_CHECKING:  # pragma: no cover
    from azinfer.azure import AzureProject

__all__ = ["LocalEndpoint", "container_pids", "find", "require", "start", "stop"]

START_TIMEOUT = 60.0
"""Seconds the daemon may take to serve (its first TLS key is the slow part, well under a second)."""
STOP_TIMEOUT = 30.0
"""Seconds the daemon gets to stop its containers before it is killed."""
_DAEMON_MODULE = "azinfer.local.daemon"
_DEFAULT_GROUP = "rg-finetune"  # a project that names no fine-tuning group (as the toolkit ships it)


@dataclass(frozen=True)
class LocalEndpoint:
    """A running daemon, as its ``endpoint.json`` describes it."""

    workspace: Workspace
    pid: int
    url: str
    ca: Path
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)
    subscription_id: str
    resource_group: str
    model: str
    """The model the share holds, in words."""
    stand_in: bool

    def project(self, *, subscription_id: str | None = None, resource_group: str | None = None,
                location: str | None = None, update: Collection[ResourceKind] = ()) -> AzureProject:
        """The :class:`~azinfer.azure.AzureProject` of the project's working copy, its Azure this daemon."""
        from azure.identity import ClientSecretCredential

        from azinfer.azure import AzureProject

        credential = ClientSecretCredential(self.tenant_id, self.client_id, self.client_secret, authority=self.url,
                                            disable_instance_discovery=True, connection_verify=str(self.ca))
        folder = self.workspace.refresh_project()

        def build(options: dict[str, str | None]) -> AzureProject:
            # Loopback answers in milliseconds: poll often (the emulator answers Retry-After: 0).
            return AzureProject(folder, credential=credential, arm_endpoint=self.url, location=location,
                                update=update, poll_interval=0.1, connection_verify=str(self.ca),
                                polling_interval=0.05, retry_backoff_factor=0.05, retry_backoff_max=0.5,
                                subscription_id=options["subscription_id"], resource_group=options["resource_group"])

        return with_fallbacks(build, {"subscription_id": subscription_id, "resource_group": resource_group},
                               {"subscription_id": self.subscription_id, "resource_group": self.resource_group})


def _daemon_alive(pid: int) -> bool:
    """Whether ``pid`` runs and is a daemon (not another program that got the number since)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child that exited (a caller that started it)
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process: not ours
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # Linux: the number may have been reused
        with contextlib.suppress(OSError):
            return _DAEMON_MODULE.encode() in cmdline.read_bytes()
    return True


def container_pids(workspace: Workspace) -> list[int]:
    """The processes running a container of this workspace's daemon (their ``AZINFER_MOUNT`` is under its shares).

    Linux only (``/proc``); elsewhere an empty list.
    """
    marker = f"AZINFER_MOUNT={workspace.shares}/".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*") if Path("/proc/self/environ").exists() else ():
        with contextlib.suppress(OSError):
            if any(item.startswith(marker) for item in (entry / "environ").read_bytes().split(b"\0")):
                found.append(int(entry.name))
    return found


def _read_pid(workspace: Workspace) -> int | None:
    try:
        return int(workspace.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _clear(workspace: Workspace) -> None:
    """A daemon's runtime files, its shares' folders and any container it left (by process group: the server's
    children too)."""
    for pid in container_pids(workspace):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    for path in (workspace.endpoint_file, workspace.pid_file):
        path.unlink(missing_ok=True)
    shutil.rmtree(workspace.shares, ignore_errors=True)


def find(project_dir: str | os.PathLike[str], *, say: Callable[[str], None] | None = None) -> LocalEndpoint | None:
    """The daemon serving the project, or ``None``; a stale one (its process gone) is cleared and said."""
    workspace = Workspace.of(project_dir)
    pid = _read_pid(workspace)
    if pid is None:
        return None
    if not _daemon_alive(pid):
        _clear(workspace)
        if say is not None:
            say(f"the local endpoint's daemon (pid {pid}) is no longer running: cleared what it left")
        return None
    return _serving(workspace)


def _serving(workspace: Workspace) -> LocalEndpoint | None:
    """What ``endpoint.json`` says; ``None`` before the daemon wrote it (it writes it once it serves)."""
    try:
        data: dict[str, Any] = json.loads(workspace.endpoint_file.read_text())
    except (OSError, ValueError):
        return None
    return LocalEndpoint(workspace, int(data["pid"]), data["url"], Path(data["ca"]), data["tenant_id"],
                         data["client_id"], data["client_secret"], data["subscription_id"], data["resource_group"],
                         data["model"], bool(data["stand_in"]))


def require(project_dir: str, *, say: Callable[[str], None] | None = None) -> LocalEndpoint:
    """The daemon serving the project (``say``: that a stale one was cleared).

    :raises LocalEndpointError: none runs ("run `azinfer up DIR --local`").
    """
    endpoint = find(project_dir, say=say)
    if endpoint is None:
        raise LocalEndpointError(f"no local endpoint for {project_dir}; run `azinfer up {project_dir} --local`",
                                 project_dir)
    return endpoint


def start(project_dir: str | os.PathLike[str], *, share_from: str | os.PathLike[str] | None = None,
          subscription_id: str | None = None, resource_group: str | None = None,
          say: Callable[[str], None] = lambda line: None) -> tuple[LocalEndpoint, bool]:
    """The project's daemon: the running one (``resumed`` True), else a new one, detached, with its model.

    :param share_from: a folder in the toolkit's share layout; ``None``: the project's own ``models/`` and
        ``model-cache/``, else the stand-in (:func:`azinfer.local.tinymodel.build_stand_in`, built once).
    :param say: progress in words.
    :raises LocalEndpointError: the daemon did not start (the message has its last log lines).
    :raises ValueError: ``share_from`` is not a share layout.
    """
    running = find(project_dir, say=say)
    if running is not None:
        return running, True
    workspace = Workspace.of(project_dir)
    other = _read_pid(workspace)
    daemon: subprocess.Popen[bytes] | None = None
    if other is None or not _daemon_alive(other):  # else another `up --local` is starting one: wait for it
        spec = _spec(workspace, share_from, subscription_id, resource_group, say)
        write_atomic(workspace.spec, json.dumps(spec.to_json(), indent=2) + "\n")
        with open(os.open(workspace.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
            daemon = subprocess.Popen([sys.executable, "-m", _DAEMON_MODULE, str(workspace.root)],
                                      stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True, close_fds=True)
        write_atomic(workspace.pid_file, f"{daemon.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT
    # Our own daemon by its Popen: right after the fork its command line is not the daemon's yet.
    while time.monotonic() < deadline and (daemon.poll() is None if daemon is not None else _daemon_alive(other or 0)):
        endpoint = _serving(workspace)
        if endpoint is not None:
            say(f"local ARM emulator (daemon pid {endpoint.pid}) serves {endpoint.url}; log {workspace.log}")
            return endpoint, False
        time.sleep(0.05)
    stop(project_dir)
    tail = "\n".join(workspace.log.read_text(errors="replace").splitlines()[-15:])
    raise LocalEndpointError(f"the local endpoint's daemon did not start (log {workspace.log}):\n{tail}",
                             str(project_dir))


def _spec(workspace: Workspace, share_from: str | os.PathLike[str] | None, subscription_id: str | None,
          resource_group: str | None, say: Callable[[str], None]) -> DaemonSpec:
    """What to seed: the fine-tuning group as the project's files name it, and the model folder."""
    from azinfer.inputs import resolve
    from azinfer.local.emulator.server import DEFAULT_SUBSCRIPTION
    from azinfer.local.tinymodel import STAND_IN_LABEL, build_stand_in
    from azinfer.project import load_project

    project = load_project(workspace.refresh_project())
    # The fine-tuning group as the project's files name it (the target group, when another, is made beside it).
    inputs = with_fallbacks(lambda options: resolve(project, None, **options),
                            {"subscription_id": subscription_id, "resource_group": None},
                            {"subscription_id": DEFAULT_SUBSCRIPTION, "resource_group": _DEFAULT_GROUP})
    source = model_source(workspace, share_from)
    if source is None:
        folder = local_state_root() / "stand-in-model"
        started = time.monotonic()
        say(f"no model at hand: building a {STAND_IN_LABEL} in {folder} (once)")
        build_stand_in(folder)
        say(f"built in {time.monotonic() - started:.1f} s")
        source = ModelSource(folder, STAND_IN_LABEL, stand_in=True)
    names = {kind.value: inputs.name(kind) for kind in (
        ResourceKind.STORAGE_ACCOUNT, ResourceKind.FILE_SHARE, ResourceKind.LOG_ANALYTICS, ResourceKind.ENVIRONMENT,
        ResourceKind.ENVIRONMENT_STORAGE)}
    group = inputs.resource_group.value
    return DaemonSpec(subscription_id=inputs.subscription_id.value, resource_group=group,
                      location=inputs.location.value or "eastus", names=names, job=inputs.finetuning_job.value,
                      share_from=str(source.folder), model_label=source.label, stand_in=source.stand_in,
                      other_groups=[resource_group] if resource_group and resource_group != group else [])


def stop(project_dir: str | os.PathLike[str]) -> int | None:
    """Stop the project's daemon (SIGTERM: it stops its containers; SIGKILL past :data:`STOP_TIMEOUT`) and clear
    its files; the pid it had, or ``None`` when none ran. The working copy and the log stay."""
    workspace = Workspace.of(project_dir)
    pid = _read_pid(workspace)
    if pid is not None and _daemon_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while _daemon_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _daemon_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    else:
        pid = None
    _clear(workspace)
    return pid
