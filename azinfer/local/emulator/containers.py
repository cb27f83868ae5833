"""Containers that really run (``emu.apps.containers``; off by default): each replica's container as a local process.

With ``emu.apps.containers.enabled = True`` (``python -m azinfer.local.emulator
--run-containers``), a replica that starts runs its container's ``command`` +
``args`` with the template's ``env`` (a ``secretRef`` resolved to the app's
secret), the current Python environment standing in for the image:

* ``AZINFER_MOUNT``: a local folder mirroring the Azure Files share of the
  volume mounted (the environment storage's ``azureFile`` account and share),
  kept in step after every data-plane write (:class:`ShareFolders`);
* ``AZINFER_PORT``: a loopback port of the replica's own, in place of the
  template's ``targetPort`` (every replica has its own network on Azure);
* ``AZINFER_PYTHON``: :attr:`ContainerProcesses.python` (the "image's" Python).

Its stdout and stderr are the replica's console log.  The probes
(``template.containers[].probes``; none given: TCP on the port, as Container
Apps adds for an app with ingress) are called on that port: startup first,
then readiness decides ``ready``.  A process that exits by itself leaves the
replica crash-looping (not restarted here), with a ``ContainerTerminated``
event naming its exit code.  A restart, a deactivation or the app's deletion
stops it (SIGTERM to its process group, SIGKILL after 10 s).

An ARM deployment that creates or changes a container app stays ``Running``
until the app's latest revision has a started replica; after
:attr:`ContainerProcesses.operation_expiry` seconds it fails with
``ContainerAppOperationError`` "... Operation expired" (see docs/emulator.md).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .state import parse_resource_id

if TYPE_CHECKING:  # pragma: no cover
    from .containerapps import ContainerAppsRuntime, Replica
    from .deployments import Deployment
    from .state import Operation, Resource

__all__ = ["ContainerProcesses", "RunningContainer", "ShareFolders"]

_BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER")  # what the "image" brings besides the template's env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ShareFolders:
    """Local folders mirroring emulated shares: the share is the truth, the folder follows it (one way)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._synced: dict[tuple[str, str], dict[str, str]] = {}  # (account, share) -> {path: etag}

    def folder(self, account: str, share: str) -> Path:
        return self.root / account.lower() / share.lower()

    def sync(self, files: dict[str, Any], directories: list[str], account: str, share: str) -> Path:
        """Bring the folder in step with the share's ``files`` (lower path -> FileEntry) and directories."""
        base = self.folder(account, share)
        base.mkdir(parents=True, exist_ok=True)
        seen = self._synced.setdefault((account.lower(), share.lower()), {})
        for directory in directories:
            (base / directory).mkdir(parents=True, exist_ok=True)
        for entry in files.values():
            if seen.get(entry.name) == entry.etag:
                continue
            target = base / entry.name
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.emulator-partial")
            partial.write_bytes(bytes(entry.data))
            os.replace(partial, target)  # a running process never reads half a file
            seen[entry.name] = entry.etag
        names = {e.name for e in files.values()}
        for gone in [n for n in seen if n not in names]:
            with contextlib.suppress(FileNotFoundError):
                (base / gone).unlink()
            del seen[gone]
        return base


class RunningContainer:
    """One container of one replica: the process, its log reader and its prober."""

    def __init__(self, processes: ContainerProcesses, rep: Replica, container: str, argv: list[str],
                 env: dict[str, str], port: int, probes: list[dict[str, Any]],
                 on_exit: Callable[[str, int], None]) -> None:
        self.rep, self.container, self.port, self.on_exit = rep, container, port, on_exit
        self.cond = processes.runtime.cond
        self.interval = processes.probe_interval
        self.started = False
        self.ready = False
        self.stopped = False
        self.exit_code: int | None = None
        kinds = {str(p.get("type", "")).lower(): p for p in probes}
        default = {"tcpSocket": {"port": port}}
        self.startup, self.readiness = kinds.get("startup", default), kinds.get("readiness", default)
        # An empty working directory stands for the image's WORKDIR (this one would lend `python -c` its azinfer).
        workdir = processes.shares.root / "workdir"
        workdir.mkdir(exist_ok=True)
        self.process = subprocess.Popen(argv, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        for work in (self._read, self._probe):
            threading.Thread(target=work, name=f"container-{rep.name}-{work.__name__}", daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self.cond:
                self.rep.logs[self.container].append((time.time(), raw.decode("utf-8", "replace").rstrip("\r\n")))
                self.cond.notify_all()
        code = self.process.wait()
        with self.cond:
            self.exit_code, self.ready = code, False
            if not self.stopped:
                self.on_exit(self.container, code)
            self.cond.notify_all()

    def _check(self, probe: dict[str, Any]) -> bool:
        try:
            if "httpGet" in probe:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                try:
                    conn.request("GET", str(probe["httpGet"].get("path") or "/"))
                    return 200 <= conn.getresponse().status < 400  # Kubernetes' rule for HTTP probes
                finally:
                    conn.close()
            with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                return True
        except OSError:
            return False

    def _probe(self) -> None:
        while not self.stopped and self.process.poll() is None:
            if not self.started:
                started = self._check(self.startup)
                with self.cond:
                    self.started = started
            else:
                ready = self._check(self.readiness)
                with self.cond:
                    changed, self.ready = ready != self.ready, ready
                    if changed:
                        self.cond.notify_all()
            # quickly until ready (tests wait on it), then at the probe's own period
            period = float(self.readiness.get("periodSeconds") or 10) if self.ready else self.interval
            time.sleep(period)

    @property
    def crashed(self) -> bool:
        return self.exit_code is not None and not self.stopped

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after 10 s (Container Apps' grace period is longer)."""
        self.stopped, self.ready = True, False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


class ContainerProcesses:
    """``emu.apps.containers``: whether replicas run for real, and how."""

    def __init__(self, runtime: ContainerAppsRuntime) -> None:
        self.runtime = runtime
        self.enabled = False
        self.python = sys.executable
        """Stands for the image's ``python3`` (``AZINFER_PYTHON``)."""
        self.operation_expiry = 900.0
        """Seconds a deployment waits for a container app's revision to start before "Operation expired" (Azure: ~15 min)."""
        self.probe_interval = 0.5
        """Seconds between probes until a container is ready (then the readiness probe's ``periodSeconds``)."""
        self.extra_env: dict[str, str] = {}
        """More environment for every container (after the template's), e.g. ``PIP_NO_INDEX``."""
        self.root: Path | None = None
        """Where the share folders and the containers' working folder live; ``None``: a temporary folder,
        removed on close (``azinfer up --local`` keeps them in its state folder)."""
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._shares: ShareFolders | None = None

    @property
    def shares(self) -> ShareFolders:
        if self._shares is None and self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._shares = ShareFolders(self.root)
        elif self._shares is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="armemu-shares-")
            self._shares = ShareFolders(Path(self._tmp.name))
        return self._shares

    def sync_share(self, account: str, share: str) -> Path | None:
        """After a data-plane write: bring that share's folder in step (when containers run)."""
        if not self.enabled:
            return None
        try:
            data = self.runtime.emu.fileservice.share(account, share)
        except KeyError:
            return None
        return self.shares.sync(data.files, data.directories(), account, share)

    def start(self, app: Resource, rep: Replica, on_exit: Callable[[str, int], None]) -> None:
        """Start the replica's containers (called with the state lock held); ``on_exit(container, code)`` when
        one exits by itself."""
        template = rep.revision.template
        config = (app.input.get("properties") or {}).get("configuration") or {}
        secrets_ = {s.get("name"): s.get("value") for s in config.get("secrets") or []}
        for spec in template.get("containers") or []:
            port = _free_port()
            env = {k: os.environ[k] for k in _BASE_ENV if k in os.environ}
            for item in spec.get("env") or []:
                value = secrets_.get(item["secretRef"]) if item.get("secretRef") else item.get("value")
                env[item["name"]] = str(value or "")
            mount = self._mount(app, template, spec)
            if mount is not None:
                env["AZINFER_MOUNT"] = str(mount)
            env.update(AZINFER_PORT=str(port), AZINFER_PYTHON=self.python, **self.extra_env)
            argv = [str(a) for a in (spec.get("command") or []) + (spec.get("args") or [])]
            name = spec.get("name") or rep.containers[0]
            rep.runners[name] = RunningContainer(self, rep, name, argv, env, port, spec.get("probes") or [], on_exit)

    def _mount(self, app: Resource, template: dict[str, Any], spec: dict[str, Any]) -> Path | None:
        """The local folder of the container's first Azure Files volume."""
        emu = self.runtime.emu
        for mount in spec.get("volumeMounts") or []:
            volume: dict[str, Any] = next((v for v in template.get("volumes") or [] if v.get("name") == mount.get("volumeName")), {})
            env_id = (app.input.get("properties") or {}).get("environmentId") \
                or (app.input.get("properties") or {}).get("managedEnvironmentId") or ""
            storage = emu.state.get(f"{env_id}/storages/{volume.get('storageName', '')}") if volume else None
            azure_file = ((storage.input.get("properties") or {}).get("azureFile") or {}) if storage else {}
            if azure_file.get("accountName") and azure_file.get("shareName"):
                return self.sync_share(azure_file["accountName"], azure_file["shareName"])
        return None

    # ARM deployments ------------------------------------------------------------------------------
    def hold(self, dep: Deployment, op: Operation, fail: Any) -> None:
        """Keep a deployment that made container apps Running until each one's latest revision has started
        (its startup probe answered); past :attr:`operation_expiry`, ``fail(app_id, error)`` fails it."""
        apps = [r for r in dep.output_resources if parse_resource_id(r).type.lower() == "microsoft.app/containerapps"]
        if not self.enabled or not apps:
            return
        deadline = time.time() + self.operation_expiry
        dep.state, dep.end = "Running", None

        def waiting(o: Operation) -> None:
            pending = [a for a in apps if not self._started(a)]
            if not pending:
                dep.state, dep.end = "Succeeded", time.time()
            elif time.time() >= deadline:
                name = pending[0].rsplit("/", 1)[-1]
                fail(pending[0], {"code": "ContainerAppOperationError",
                                  "message": f"Failed to provision revision for container app '{name}'. "
                                             "Error details: Operation expired."})
                o.status, o.error = "Failed", dep.error
            else:
                o.status, o.end = "InProgress", None

        op.status, op.end, op.on_complete = "InProgress", None, waiting

    def _started(self, app_id: str) -> bool:
        try:
            rt = self.runtime.find(app_id)
        except KeyError:
            return False
        latest = rt.latest
        return latest is not None and bool(latest.replicas) and all(
            run.started for rep in latest.replicas for run in rep.runners.values())

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp, self._shares = None, None
