"""What a container app does once created: revisions, replicas, auth tokens, the log stream and the ingress.

By default nothing runs: the emulator models state, and tests steer it
(``emu.apps``); with ``emu.apps.containers.enabled`` each replica runs its
container as a local process (:mod:`.containers`), which then decides its
readiness, its console log and the ingress's answers (:mod:`.ingress`).

* **Revisions.** A PUT/PATCH whose ``properties.template`` differs from the
  latest revision's creates a revision ``{app}--{suffix}`` (``template.revisionSuffix``
  or 7 generated characters); an unchanged template keeps the revision.  In
  Single mode the previous revision keeps running (and serving) until the new
  one is ready, then is deactivated; if the new one never gets ready, the old
  one stays.  ``latestRevisionName`` names the newest,
  ``latestReadyRevisionName`` the newest that has been ready.
* **Replicas.** A revision starts ``max(minReplicas, 1)`` replicas when created
  or activated; a restart replaces its replicas (new names).  How each start
  goes is a :class:`ReplicaStart` -- from ``emu.apps.on_start`` if set, else the
  next of ``emu.apps.plan_starts(app, ...)``, else ``emu.apps.default_start``
  (ready at once).  A revision with no replicas (``scale_to_zero``) gets one when
  its ingress is called.
* **States.** Replica ``runningState`` Running/NotRunning; container
  ``ready``/``started``/``restartCount``/``runningState`` Running/Waiting; revision
  ``runningState`` Processing (starting), Running (all replicas ready, or scaled
  to zero after being ready), Failed (a container crash-loops), Stopped
  (inactive), with ``healthState`` None/Healthy/Unhealthy and
  ``provisioningState`` Provisioning/Provisioned/Failed; app ``runningStatus``
  Running when its latest revision runs, else Progressing.
* **Auth token.** ``POST .../getAuthtoken`` (any case) on an app or environment
  returns ``properties.token``/``expires`` (``token_lifetime`` seconds); the log
  stream takes only such a token, for that app (or environment).
* **Log stream** (its own loopback listener; ``eventStreamEndpoint`` points at
  it): console ``{base}/subscriptions/{sub}/resourceGroups/{rg}/containerApps/{app}/revisions/{rev}/replicas/{replica}/containers/{container}/logstream``,
  system ``.../containerApps/{app}/eventstream`` and
  ``.../managedEnvironments/{env}/eventstream``; query ``follow``, ``output``
  (json|text), ``tailLines``; formats and limits in :mod:`.logstream`.  A
  console stream ends when its replica goes away (restart, deactivation).
* **Ingress.** An app with external ingress gets its own loopback listener;
  ``configuration.ingress.fqdn`` is ``127.0.0.1:{port}``, so ``https://{fqdn}/ready``
  reaches it with the emulator's CA.  Requests go to the newest active revision
  with a ready replica (503 ``no healthy upstream`` when there is none); the
  stand-in app answers like ``azinfer serve``: ``/health`` and ``/ready`` 200,
  ``/v1/models`` 200 with ``Authorization: Bearer <key>`` when the container
  sets ``AZINFER_API_KEY`` (its ``secretRef`` value), 401 otherwise; with the
  key, ``POST /v1/chat/completions`` answers :data:`STAND_IN_ANSWER` (streamed
  as server-sent events when ``"stream": true``), as a model would; its id,
  ``chatcmpl-<revision>``, names the revision that answered.
  ``emu.apps.on_request`` can answer instead.  In multiple revision mode the
  traffic rules pick the revision, and each revision and label has an address
  of its own (:mod:`.traffic`).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import ingress as ingress_proxy
from . import logstream, providers, traffic
from .containers import ContainerProcesses, RunningContainer
from .logstream import StreamSettings
from .messages import ArmError, Request, Response
from .state import Resource, ResourceId, parse_resource_id

if TYPE_CHECKING:  # pragma: no cover
    from .server import ArmEmulator


__all__ = ["ReplicaStart", "Replica", "Revision", "AppRuntime", "ContainerAppsRuntime", "StreamSettings"]

APP_TYPE = "microsoft.app/containerapps"


@dataclass(frozen=True)
class ReplicaStart:
    """How one replica's start goes."""

    ready_after: float | None = 0.0
    """Seconds from start until its containers are ready; None: not until ``emu.apps.set_ready``."""
    crash: bool = False
    """The container exits again and again: never ready, ``restartCount`` grows every ``crash_interval`` s."""
    crash_interval: float = 1.0
    logs: tuple[str, ...] = ()
    """Console lines each container writes when it starts."""
    pull_error: str | None = None
    """The registry's answer to the image pull (e.g. Docker Hub's ``429 Too Many Requests - Server message:
    toomanyrequests: ...``): the pull fails, the container never starts, and the system log says so as Container
    Apps does (``ImagePullFailure``, microsoft/azure-container-apps#1670)."""


@dataclass
class Replica:
    name: str
    revision: Revision
    created: float
    start: ReplicaStart
    containers: list[str]
    logs: dict[str, list[tuple[float, str]]] = field(default_factory=dict)  # container -> (time, line)
    forced: bool | None = None  # set_ready()
    alive: bool = True
    was_ready: bool = False
    container_ids: dict[str, str] = field(default_factory=dict)
    runners: dict[str, RunningContainer] = field(default_factory=dict)  # container -> its process (when run)

    def ready(self, now: float) -> bool:
        if not self.alive:
            return False
        if self.forced is not None:
            return self.forced
        if self.runners:
            return all(r.ready for r in self.runners.values())
        if self.start.crash or self.start.ready_after is None or self.start.pull_error is not None:
            return False
        return now >= self.created + self.start.ready_after

    def crashing(self) -> bool:
        if self.runners:
            return self.alive and any(r.crashed for r in self.runners.values())
        return self.alive and self.forced is None and self.start.crash

    def restart_count(self, now: float) -> int:
        if self.runners:  # a process that exited is not started again here
            return sum(r.crashed for r in self.runners.values())
        if not self.crashing():
            return 0
        return 1 + int((now - self.created) / max(self.start.crash_interval, 1e-3))


@dataclass
class Revision:
    name: str
    created: float
    template: dict[str, Any]
    active: bool = True
    restarts: int = 0
    replicas: list[Replica] = field(default_factory=list)
    was_ready: bool = False
    last_active: float = field(default_factory=time.time)

    def running_state(self, now: float) -> str:
        if not self.active:
            return "Stopped"
        if any(r.crashing() for r in self.replicas):
            return "Failed"
        if not self.replicas:
            return "Running" if self.was_ready else "Processing"
        return "Running" if all(r.ready(now) for r in self.replicas) else "Processing"

    def serving(self, now: float) -> bool:
        return self.active and any(r.ready(now) for r in self.replicas)

    def containers(self) -> list[str]:
        return [c.get("name", f"container{i}") for i, c in enumerate(self.template.get("containers") or [])]

    def image(self) -> str:
        containers = self.template.get("containers") or [{}]
        return str(containers[0].get("image", ""))


@dataclass
class AppRuntime:
    id: str
    name: str
    created: float  # the ARM resource's creation time: a recreated app starts afresh
    env_id: str
    revisions: list[Revision] = field(default_factory=list)
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def revision(self, name: str) -> Revision | None:
        return next((r for r in self.revisions if r.name.lower() == name.lower()), None)

    @property
    def latest(self) -> Revision | None:
        return self.revisions[-1] if self.revisions else None


STAND_IN_ANSWER = "Hello from the emulated endpoint!"
"""What the stand-in app answers any chat completion (``azinfer up``'s smoke test reads it)."""


def _chat_completion(req: Request, revision: str) -> Response:
    """An OpenAI chat completion answering :data:`STAND_IN_ANSWER`, one word per streamed chunk; its id
    (``chatcmpl-<revision>``) names the revision that answered."""

    body = req.json() or {}
    model = body.get("model") or "emulated"
    base = {"id": f"chatcmpl-{revision}", "created": int(time.time()), "model": model}
    if not body.get("stream"):
        return Response(200, {**base, "object": "chat.completion", "choices": [{
            "index": 0, "message": {"role": "assistant", "content": STAND_IN_ANSWER}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
    words = STAND_IN_ANSWER.split(" ")
    deltas = [{"role": "assistant", "content": ""}] + [{"content": w if i == 0 else f" {w}"} for i, w in enumerate(words)]

    def events() -> Any:
        for delta in deltas:
            chunk = {**base, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta,
                                                                             "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return Response(200, stream=events(), headers={"Content-Type": "text/event-stream"})


def _iso7(ts: float) -> str:
    """A time as the service writes ``expires``: ``2022-07-14T19:22:50.3080223Z``."""
    return providers.iso_now(ts)[:-1] + "0Z"


class ContainerAppsRuntime:
    """``emu.apps``: the runtime side of the emulator's container apps (see the module docstring)."""

    def __init__(self, emu: ArmEmulator) -> None:
        self.emu = emu
        self.cond = threading.Condition(emu.state.lock)
        self.stream = StreamSettings()
        self.default_start = ReplicaStart()
        self.on_start: Callable[[str, str, str], ReplicaStart | None] | None = None
        """``on_start(app_name, revision_name, replica_name)``: how that replica's start goes (None: as planned)."""
        self.on_request: Callable[[str, str, Request], Response | None] | None = None
        """``on_request(app_name, revision_name, request)``: the app's answer to an ingress request (None: default)."""
        self.token_lifetime = 3600.0
        self.revisions_page_size = 20
        self._apps: dict[str, AppRuntime] = {}
        self._plans: dict[str, list[ReplicaStart]] = {}
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (lower scope id, expiry)
        self._env_events: dict[str, list[tuple[float, dict[str, Any]]]] = {}
        self._ingress: dict[str, Any] = {}  # lower app id -> listener
        self.containers = ContainerProcesses(self)
        """Whether and how replicas run their container as a local process (:mod:`.containers`)."""

    # Python API ------------------------------------------------------------------------------------
    def find(self, app: str) -> AppRuntime:
        """An app by id or name (unique among the emulator's apps).

        :raises KeyError: when no app (or more than one) matches.
        """
        with self.cond:
            self.tick()
            if app.startswith("/"):
                found = self._apps.get(app.lower())
                if found is None:
                    raise KeyError(f"no container app {app!r} in the emulator")
                return found
            matches = [a for a in self._apps.values() if a.name.lower() == app.lower()]
            if len(matches) != 1:
                raise KeyError(f"{len(matches)} container apps are named {app!r} in the emulator")
            return matches[0]

    def plan_starts(self, app_name: str, *starts: ReplicaStart) -> None:
        """The next replica starts of this app (by name, before or after it exists) go as listed, in order;
        after them, :attr:`default_start`."""
        with self.cond:
            self._plans.setdefault(app_name.lower(), []).extend(starts)

    def set_ready(self, app: str, ready: bool | None = True, *, revision: str | None = None) -> None:
        """Force the readiness of the revision's current replicas (default: the latest); None: back to their plan."""
        with self.cond:
            rt = self.find(app)
            rev = rt.revision(revision) if revision else rt.latest
            if rev is None:
                raise KeyError(f"app {rt.name!r} has no revision {revision!r}")
            for rep in rev.replicas:
                rep.forced = ready
            self.tick()
            self.cond.notify_all()

    def log(self, app: str, *lines: str, revision: str | None = None, replica: str | None = None,
            container: str | None = None) -> None:
        """Console lines written by containers of the app's replicas (default: every replica of the newest
        active revision, its first container)."""
        with self.cond:
            rt = self.find(app)
            now = time.time()
            for rep in self._replicas_for(rt, revision, replica):
                name = container or rep.containers[0]
                if name not in rep.logs:
                    raise KeyError(f"replica {rep.name!r} has no container {name!r}")
                rep.logs[name].extend((now, line) for line in lines)
            self.cond.notify_all()

    def event(self, app: str, reason: str, message: str, *, type: str = "Normal", revision: str | None = None,
              replica: str | None = None) -> None:
        """A system event (``Reason``/``Msg``/``Type``) on the app's system stream and its environment's."""
        with self.cond:
            rt = self.find(app)
            self._event(rt, reason, message, type_=type, revision=revision or (rt.latest.name if rt.latest else ""),
                        replica=replica or "")

    def scale_to_zero(self, app: str) -> None:
        """Stop every replica of the app (as after its cooldown with no traffic); the next ingress request
        starts one."""
        with self.cond:
            rt = self.find(app)
            for rev in rt.revisions:
                self._stop_replicas(rt, rev, "ScaledToZero")
            self.tick()

    def template(self, app: str, revision: str | None = None) -> dict[str, Any]:
        """The template (containers with command, env, volume mounts; scale; volumes) a revision runs."""
        rt = self.find(app)
        rev = rt.revision(revision) if revision else rt.latest
        if rev is None:
            raise KeyError(f"app {rt.name!r} has no revision {revision!r}")
        return copy.deepcopy(rev.template)

    def ingress_url(self, app: str) -> str:
        """``https://127.0.0.1:{port}``: where the app's ingress answers."""
        rt = self.find(app)
        listener = self._ingress.get(rt.id.lower())
        if listener is None:
            raise KeyError(f"app {rt.name!r} has no external ingress")
        return f"https://127.0.0.1:{listener.server_address[1]}"

    def label_url(self, app: str, label: str) -> str:
        """``https://127.0.0.1:{port}``: where a traffic label answers (on Azure ``<app>---<label>.<env-domain>``)."""
        rt = self.find(app)
        if rt.id.lower() not in self._ingress:
            raise KeyError(f"app {rt.name!r} has no external ingress")
        return f"https://{self.ingress_host(traffic.address_key(rt.id, 'label', label))}"

    def revisions(self, app_id: str) -> list[dict[str, Any]]:
        """The app's revisions: name, created, active, restarts, template, replicas (names), ready."""
        with self.cond:
            try:
                rt = self.find(app_id)
            except KeyError:
                return []
            now = time.time()
            return [{"name": r.name, "created": r.created, "active": r.active, "restarts": r.restarts,
                     "template": copy.deepcopy(r.template), "replicas": [p.name for p in r.replicas],
                     "ready": r.running_state(now) == "Running", "running_state": r.running_state(now)}
                    for r in rt.revisions]

    # ARM hooks ---------------------------------------------------------------------------------------
    def revision_name(self, rid: ResourceId, template: dict[str, Any], old: Resource | None) -> str:
        """The latest revision's name after a PUT with this template."""
        rt = self._apps.get(str(rid).lower()) if old is not None else None
        revisions = rt.revisions if rt is not None and old is not None and rt.created == old.created else []
        if revisions and revisions[-1].template == template:
            return revisions[-1].name
        suffix = template.get("revisionSuffix") or hashlib.sha256(
            f"{rid}|{len(revisions)}|{json.dumps(template, sort_keys=True)}".lower().encode()).hexdigest()[:7]
        return f"{rid.name}--{suffix}"

    def ingress_host(self, app_id: str) -> str | None:
        """``127.0.0.1:{port}`` of the app's ingress listener (started on first use), or None when not serving."""
        listener = self._ingress.get(app_id.lower())
        if listener is None:
            listener = self.emu.listen("ingress", target=app_id)
            if listener is None:
                return None
            self._ingress[app_id.lower()] = listener
        return f"127.0.0.1:{listener.server_address[1]}"

    def close(self) -> None:
        """Forget the ingress listeners (the emulator stops them) and wake every stream."""
        self._ingress.clear()
        with self.cond:
            for rt in self._apps.values():
                for rev in rt.revisions:
                    self._stop_replicas(rt, rev, None)
            self.cond.notify_all()
        self.containers.close()

    def after_put(self, res: Resource) -> None:
        """Keep the runtime in step with a stored app: a new revision when the template changed."""
        with self.cond:
            key = res.id.lower()
            props = res.view()["properties"]
            rt = self._apps.get(key)
            if rt is None or rt.created != res.created:
                rt = self._apps[key] = AppRuntime(res.id, res.name, res.created, props.get("environmentId") or "")
            name = props["latestRevisionName"]
            if rt.revision(name) is None:  # a reused revisionSuffix adds none (microsoft/azure-container-apps#650)
                template = copy.deepcopy((res.input.get("properties") or {}).get("template") or {})
                rev = Revision(name, time.time(), template)
                rt.revisions.append(rev)
                self._start_replicas(rt, rev, self._min_replicas(rev))
            self._refresh(res, rt)

    def tick(self) -> None:
        """Advance time-driven state: readiness, revision switch-over, apps that are gone."""
        with self.cond:
            now = time.time()
            for key, rt in list(self._apps.items()):
                res = self.emu.state.get(rt.id)
                if res is None or res.created != rt.created:
                    for rev in rt.revisions:
                        self._stop_replicas(rt, rev, None)
                    del self._apps[key]
                    self.cond.notify_all()
                    continue
                for rev in rt.revisions:
                    for rep in rev.replicas:
                        if not rep.was_ready and rep.ready(now):
                            rep.was_ready = True
                    if rev.active and rev.replicas and not rev.was_ready and all(r.ready(now) for r in rev.replicas):
                        rev.was_ready = True
                        self._event(rt, "RevisionReady", f"Revision '{rev.name}' is ready", revision=rev.name)
                latest = rt.latest
                if latest is not None and latest.was_ready and latest.active and self._mode(res) == "single":
                    for rev in rt.revisions[:-1]:
                        if rev.active:
                            self._deactivate(rt, rev)
                self._refresh(res, rt)

    # ARM routes (called with the state lock held) ---------------------------------------------------------
    def list_revisions(self, req: Request, app: Resource) -> Response:
        if req.query.get("$filter"):
            raise ArmError(400, "InvalidFilter", "$filter on revisions is not supported by the emulator.")
        rt = self._runtime(app)
        views = [self._revision_view(app, rt, r) for r in rt.revisions]
        skip = int(req.query.get("$skiptoken") or 0)
        page = views[skip:skip + self.revisions_page_size]
        body: dict[str, Any] = {"value": page}
        if skip + self.revisions_page_size < len(views):
            body["nextLink"] = (f"{self.emu.url}{req.path}?api-version={req.api_version}"
                                f"&$skiptoken={skip + self.revisions_page_size}")
        return Response(200, body)

    def get_revision(self, app: Resource, rid: ResourceId) -> Response:
        rt = self._runtime(app)
        rev = rt.revision(rid.name)
        if rev is None:
            raise self.emu.not_found(rid)
        return Response(200, self._revision_view(app, rt, rev))

    def revision_action(self, req: Request, app: Resource, rev_id: ResourceId, action: str) -> Response:
        rt = self._runtime(app)
        rev = rt.revision(rev_id.name)
        if rev is None:
            raise self.emu.not_found(rev_id)
        if action == "replicas" and req.method == "GET":
            now = time.time()
            return Response(200, {"value": [self._replica_view(app, rev, r, now) for r in rev.replicas]})
        if req.method != "POST" or action not in ("restart", "activate", "deactivate"):
            raise ArmError(404, "NotFound", f"No route for '{req.path}'.")
        if action == "restart":
            if not rev.active:
                # the service refuses (microsoft/vscode-azurecontainerapps#322); its exact body is not documented
                raise ArmError(400, "RevisionOperationError",
                               f"Error restarting revision {rev.name}. Details Reason: Bad Request. Body: "
                               '{"error":"revision is not active","success":false}')
            rev.restarts += 1
            count = len(rev.replicas)
            self._stop_replicas(rt, rev, "ManuallyStopped")
            self._event(rt, "RevisionRestarting", f"Restarting revision '{rev.name}'", revision=rev.name)
            self._start_replicas(rt, rev, count)
            self._refresh(app, rt)
            return Response(200, {})  # the spec declares 200 with no schema; az reads a JSON body
        if action == "activate" and not rev.active:
            rev.active = True
            self._start_replicas(rt, rev, self._min_replicas(rev))
        elif action == "deactivate" and rev.active:
            self._deactivate(rt, rev)
        self._refresh(app, rt)
        return Response(200)

    def get_replica(self, app: Resource, rid: ResourceId) -> Response:
        rt = self._runtime(app)
        rev = rt.revision(rid.names[-2])
        rep = next((r for r in rev.replicas if r.name.lower() == rid.name.lower()), None) if rev else None
        if rev is None or rep is None:
            raise self.emu.not_found(rid)
        return Response(200, self._replica_view(app, rev, rep, time.time()))

    def auth_token(self, res: Resource) -> Response:
        token = secrets.token_urlsafe(48)
        expires = time.time() + self.token_lifetime
        self._tokens[token] = (res.id.lower(), expires)
        kind = "containerApps" if res.type.lower() == APP_TYPE else "managedEnvironments"
        return Response(200, {"id": res.id, "name": res.name, "type": f"Microsoft.App/{kind}/accesstoken",
                              "location": res.input.get("location"),
                              "properties": {"token": token, "expires": _iso7(expires)}})

    # log stream -----------------------------------------------------------------------------------------
    def logstream(self, req: Request) -> Response:
        def fail(status: int, text: str) -> Response:
            return Response(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})

        segs = [s for s in req.path.split("/") if s]
        low = [s.lower() for s in segs]
        if req.method != "GET" or len(segs) < 7 or low[0] != "subscriptions" or low[2] != "resourcegroups":
            return fail(404, "Not found")
        scope = f"/subscriptions/{segs[1]}/resourceGroups/{segs[3]}/providers/Microsoft.App/{segs[4]}/{segs[5]}"
        token = req.headers.get("authorization", "")
        granted = self._tokens.get(token[7:].strip()) if token.lower().startswith("bearer ") else None
        if granted is None or granted[0] != scope.lower() or granted[1] < time.time():
            return fail(401, "Unauthorized")
        follow_on = req.query.get("follow", "false").lower() == "true"
        output = req.query.get("output", "json").lower()
        if output not in ("json", "text"):
            return fail(400, "output must be json or text")
        try:
            tail = int(req.query.get("taillines", self.stream.default_tail))
        except ValueError:
            tail = -1
        if tail < 0:
            return fail(400, "tailLines must be a non-negative integer")
        settings = copy.copy(self.stream)
        heartbeat_text = f"No logs since last {settings.heartbeat:g} seconds"
        if low[4] == "managedenvironments" and low[6:] == ["eventstream"]:
            events = self._env_events.setdefault(scope.lower(), [])
            return self._stream_events(events, tail, follow_on, settings, lambda: True)
        if low[4] != "containerapps":
            return fail(404, "Not found")
        rt = self._apps.get(scope.lower())
        if rt is None:
            return fail(404, f"Container app '{segs[5]}' was not found")
        if low[6:] == ["eventstream"]:
            return self._stream_events(rt.events, tail, follow_on, settings,
                                       lambda: self._apps.get(scope.lower()) is rt)
        if len(low) != 13 or low[6] != "revisions" or low[8] != "replicas" or low[10] != "containers" \
                or low[12] != "logstream":
            return fail(404, "Not found")
        rev = rt.revision(segs[7])
        rep = next((r for r in rev.replicas if r.name.lower() == low[9]), None) if rev else None
        if rev is None or rep is None:
            return fail(404, f"Replica '{segs[9]}' of revision '{segs[7]}' was not found")
        container = next((c for c in rep.containers if c.lower() == low[11]), None)
        if container is None:
            return fail(404, f"Container '{segs[11]}' was not found")
        lines = rep.logs[container]
        initial = [logstream.console_line(ts, text, output) for ts, text in lines[len(lines) - min(tail, len(lines)):]]
        cursor = [len(lines)]

        def poll(timeout: float) -> tuple[list[bytes], bool]:
            with self.cond:
                self.cond.wait(timeout)
                self.tick()
                new = lines[cursor[0]:]
                cursor[0] = len(lines)
                alive = rep.alive and not self.emu.stopping.is_set()
            return [logstream.console_line(ts, text, output) for ts, text in new], alive

        body = logstream.follow(settings, opening=logstream.console_opening(container, rev.name, rep.name, output),
                                initial=initial, poll=poll, follow_on=follow_on,
                                heartbeat=lambda: logstream.console_line(time.time(), heartbeat_text, output))
        return Response(200, stream=body, headers={"Content-Type": "text/plain; charset=utf-8"})

    def _stream_events(self, events: list[tuple[float, dict[str, Any]]], tail: int, follow_on: bool,
                       settings: StreamSettings, alive: Callable[[], bool]) -> Response:
        initial = [logstream.system_line(e) for _, e in events[len(events) - min(tail, len(events)):]]
        cursor = [len(events)]

        def poll(timeout: float) -> tuple[list[bytes], bool]:
            with self.cond:
                self.cond.wait(timeout)
                self.tick()
                new = events[cursor[0]:]
                cursor[0] = len(events)
                live = alive() and not self.emu.stopping.is_set()
            return [logstream.system_line(e) for _, e in new], live

        def heartbeat() -> bytes:
            return logstream.system_line({"TimeStamp": logstream.system_timestamp(time.time()), "Type": "Normal",
                                          "Msg": f"No events since last {settings.heartbeat:g} seconds",
                                          "Reason": "Heartbeat", "EventSource": "ContainerAppController",
                                          "Count": 0})

        body = logstream.follow(settings, opening=logstream.system_opening(), initial=initial, poll=poll,
                                heartbeat=heartbeat, follow_on=follow_on)
        return Response(200, stream=body, headers={"Content-Type": "text/plain; charset=utf-8"})

    # ingress --------------------------------------------------------------------------------------------------
    def ingress(self, req: Request) -> Response:
        app_id, kind, name = traffic.split_target(req.target or "")
        rt = self._apps.get(app_id.lower())
        res = self.emu.state.get(app_id)
        if rt is None or res is None:
            return Response(404, b"Error 404 - This Container App is stopped or does not exist.",
                            {"Content-Type": "text/plain"})
        if kind is not None or self._mode(res) == "multiple":
            try:
                rev = traffic.choose(res, rt, kind, name)
            except LookupError:
                return Response(404, b"Error 404 - This Container App is stopped or does not exist.",
                                {"Content-Type": "text/plain"})
            if rev is not None and rev.active and not rev.replicas:  # scale from zero
                self._start_replicas(rt, rev, 1)
                self.tick()
            rev = rev if rev is not None and rev.serving(time.time()) else None
        else:
            rev = self._serving_revision(rt, time.time())
            waking = next((r for r in reversed(rt.revisions) if r.active and not r.replicas), None)
            if rev is None and waking is not None:  # scale from zero
                self._start_replicas(rt, waking, 1)
                self.tick()
                rev = waking if waking.serving(time.time()) else None
        if rev is None:
            return Response(503, b"no healthy upstream", {"Content-Type": "text/plain"})
        if self.on_request is not None:
            answer = self.on_request(rt.name, rev.name, req)
            if answer is not None:
                return answer
        running = next((r for r in rev.replicas if r.runners and r.ready(time.time())), None)
        if running is not None:  # relayed after the state lock is released: a completion may take a while
            port = next(iter(running.runners.values())).port
            return Response(forward=lambda: ingress_proxy.forward(port, req))
        return self._stand_in(res, rev, req)

    def _stand_in(self, app: Resource, rev: Revision, req: Request) -> Response:
        path = req.path.rstrip("/") or "/"
        if req.method == "GET" and path == "/health":
            return Response(200, {"status": "ok"})
        if req.method == "GET" and path == "/ready":
            return Response(200, {"status": "ready", "model": "emulated"})
        if path.startswith("/v1/") or path == "/v1":
            key = self._api_key(app, rev)
            sent = req.headers.get("authorization", "")
            if key is not None and sent != f"Bearer {key}":
                return Response(401, {"error": {"message": "missing or incorrect API key: send 'Authorization: "
                                                           "Bearer <key>'", "type": "invalid_request_error",
                                                "code": "invalid_api_key"}}, {"WWW-Authenticate": "Bearer"})
            if req.method == "GET" and path == "/v1/models":
                return Response(200, {"object": "list", "data": [{"id": "emulated", "object": "model",
                                                                   "created": int(rev.created), "owned_by": "azinfer"}]})
            if req.method == "POST" and path == "/v1/chat/completions":
                return _chat_completion(req, rev.name)
        if req.method == "GET" and path == "/":
            return Response(200, b"<!doctype html><title>emulated app</title>", {"Content-Type": "text/html"})
        return Response(404, {"detail": "Not Found"})

    def _api_key(self, app: Resource, rev: Revision) -> str | None:
        secrets_ = {s.get("name"): s.get("value") for s in
                    ((app.input.get("properties") or {}).get("configuration") or {}).get("secrets") or []}
        for container in rev.template.get("containers") or []:
            for env in container.get("env") or []:
                if env.get("name") == "AZINFER_API_KEY":
                    return secrets_.get(env["secretRef"]) if env.get("secretRef") else env.get("value")
        return None

    # internals --------------------------------------------------------------------------------------------------
    def _runtime(self, app: Resource) -> AppRuntime:
        rt = self._apps.get(app.id.lower())
        if rt is None or rt.created != app.created:
            self.after_put(app)
            rt = self._apps[app.id.lower()]
        return rt

    def _mode(self, app: Resource) -> str:
        config = (app.input.get("properties") or {}).get("configuration") or {}
        return str(config.get("activeRevisionsMode") or "Single").lower()

    def _min_replicas(self, rev: Revision) -> int:
        scale = rev.template.get("scale") or {}
        return max(int(scale.get("minReplicas") or 0), 1)

    def _replicas_for(self, rt: AppRuntime, revision: str | None, replica: str | None) -> list[Replica]:
        if revision:
            rev = rt.revision(revision)
        else:
            rev = next((r for r in reversed(rt.revisions) if r.active), None)
        if rev is None:
            raise KeyError(f"app {rt.name!r} has no {'revision ' + repr(revision) if revision else 'active revision'}")
        reps = [r for r in rev.replicas if replica is None or r.name.lower() == replica.lower()]
        if not reps:
            raise KeyError(f"revision {rev.name!r} has no replica {replica or ''}".rstrip())
        return reps

    def _start_replicas(self, rt: AppRuntime, rev: Revision, count: int) -> None:
        now = time.time()
        for _ in range(count):
            name = f"{rev.name}-{uuid.uuid4().hex[:9]}-{uuid.uuid4().hex[:5]}"
            start = self.on_start(rt.name, rev.name, name) if self.on_start is not None else None
            if start is None:
                plan = self._plans.get(rt.name.lower())
                start = plan.pop(0) if plan else self.default_start
            rep = Replica(name, rev, now, start, rev.containers())
            for c in rep.containers:
                rep.logs[c] = [(now, line) for line in start.logs] if start.pull_error is None else []
                rep.container_ids[c] = "containerd://" + hashlib.sha256(f"{name}/{c}".encode()).hexdigest()
            rev.replicas.append(rep)
            app = self.emu.state.get(rt.id)
            if self.containers.enabled and app is not None and start.pull_error is None:
                self.containers.start(app, rep, on_exit=functools.partial(self._terminated, rt, rev.name, name))
            self._event(rt, "AssigningReplica", f"Replica '{name}' has been scheduled to run on a node.",
                        revision=rev.name, replica=name)
            self._event(rt, "PullingImage", f"Pulling image '{rev.image()}'", revision=rev.name, replica=name)
            if start.pull_error is not None:
                for c in rep.containers:
                    self._event(rt, "ContainerTerminated", f"Container '{c}' was terminated with exit code '' and "
                                f"reason 'ImagePullFailure'. Pull image: {rev.image()} failed with exit code: 1, "
                                f"error: {start.pull_error}", type_="Warning", revision=rev.name, replica=name)
                continue
            self._event(rt, "PulledImage", f"Successfully pulled image '{rev.image()}'", revision=rev.name,
                        replica=name)
            for c in rep.containers:
                self._event(rt, "ContainerCreated", f"Created container '{c}'", revision=rev.name, replica=name)
                self._event(rt, "ContainerStarted", f"Started container '{c}'", revision=rev.name, replica=name)
                if start.crash:
                    self._event(rt, "ContainerTerminated", f"Container '{c}' was terminated with exit code '1' "
                                "and reason 'ProcessExited'", type_="Warning", revision=rev.name, replica=name)
        self.cond.notify_all()

    def _stop_replicas(self, rt: AppRuntime, rev: Revision, reason: str | None) -> None:
        for rep in rev.replicas:
            rep.alive = False
            for runner in rep.runners.values():
                runner.stop()
            if reason is not None:
                for c in rep.containers:
                    self._event(rt, "ContainerTerminated", f"Container '{c}' was terminated with exit code '137' "
                                f"and reason '{reason}'", revision=rev.name, replica=rep.name)
        rev.replicas = []
        self.cond.notify_all()

    def _deactivate(self, rt: AppRuntime, rev: Revision) -> None:
        self._stop_replicas(rt, rev, "RevisionDeactivated")
        rev.active = False
        rev.last_active = time.time()
        self._event(rt, "RevisionDeactivated", f"Revision '{rev.name}' has been deactivated", revision=rev.name)

    def _terminated(self, rt: AppRuntime, revision: str, replica: str, container: str, code: int) -> None:
        """A container's process exited by itself (``containers.start``'s ``on_exit``)."""
        self._event(rt, "ContainerTerminated", f"Container '{container}' was terminated with exit code '{code}' "
                    "and reason 'ProcessExited'", type_="Warning", revision=revision, replica=replica)

    def _event(self, rt: AppRuntime, reason: str, message: str, *, type_: str = "Normal", revision: str = "",
               replica: str = "") -> None:
        now = time.time()
        event = {"TimeStamp": logstream.system_timestamp(now), "Type": type_, "ContainerAppName": rt.name,
                 "RevisionName": revision, "ReplicaName": replica, "Msg": message, "Reason": reason,
                 "EventSource": "ContainerAppController", "Count": 0}
        rt.events.append((now, event))
        if rt.env_id:
            self._env_events.setdefault(rt.env_id.lower(), []).append((now, event))
        self.cond.notify_all()

    def _refresh(self, res: Resource, rt: AppRuntime) -> None:
        """The app's read-only values that follow its revisions."""
        now = time.time()
        props = res.computed.setdefault("properties", {})
        ready = [r for r in rt.revisions if r.was_ready]
        if ready:
            props["latestReadyRevisionName"] = ready[-1].name
        else:
            props.pop("latestReadyRevisionName", None)
        latest = rt.latest
        props["runningStatus"] = "Running" if latest is not None and latest.running_state(now) == "Running" \
            else "Progressing"

    def _serving_revision(self, rt: AppRuntime, now: float) -> Revision | None:
        return next((r for r in reversed(rt.revisions) if r.serving(now)), None)

    def _revision_view(self, app: Resource, rt: AppRuntime, rev: Revision) -> dict[str, Any]:
        now = time.time()
        view = app.view()
        domain_fqdn = view["properties"].get("latestRevisionFqdn", "")
        state = rev.running_state(now)
        serving = self._serving_revision(rt, now)
        health = {"Running": "Healthy", "Failed": "Unhealthy"}.get(state, "None")
        if rev.was_ready:
            provisioning = "Provisioned"
        elif state == "Failed":
            provisioning = "Failed"
        else:
            provisioning = "Provisioning"
        props: dict[str, Any] = {
            "createdTime": providers.iso_now(rev.created),
            "lastActiveTime": providers.iso_now(now if rev.active else rev.last_active),
            "fqdn": self.ingress_host(traffic.address_key(app.id, "revision", rev.name))
                    if app.id.lower() in self._ingress
                    else domain_fqdn.replace(view["properties"]["latestRevisionName"], rev.name),
            "template": copy.deepcopy(rev.template),
            "active": rev.active,
            "replicas": len(rev.replicas),
            "trafficWeight": traffic.weight_of(app, rt, rev) if self._mode(app) == "multiple"
                             else 100 if rev is serving else 0,
            "healthState": health if rev.active else "None",
            "provisioningState": provisioning,
            "runningState": state,
        }
        if provisioning == "Failed":
            props["provisioningError"] = "The container exited with code 1 and keeps restarting (CrashLoopBackOff)."
        return {"id": f"{app.id}/revisions/{rev.name}", "name": rev.name,
                "type": "Microsoft.App/containerApps/revisions", "properties": props}

    def _replica_view(self, app: Resource, rev: Revision, rep: Replica, now: float) -> dict[str, Any]:
        rid = parse_resource_id(app.id)
        base = (f"{self.emu.logstream_url}/subscriptions/{rid.subscription}/resourceGroups/{rid.resource_group}"
                f"/containerApps/{app.name}/revisions/{rev.name}/replicas/{rep.name}")
        containers = []
        pulling = rep.start.pull_error is not None
        for c in rep.containers:
            crashing = rep.crashing()
            waiting = {"runningState": "Waiting", "runningStateDetails": "CrashLoopBackOff" if crashing else
                       f"ImagePullBackOff: {rep.start.pull_error}"} if crashing or pulling else {
                "runningState": "Running", "runningStateDetails": ""}
            containers.append({
                "name": c, "containerId": rep.container_ids[c], "ready": rep.ready(now),
                "started": not crashing and not pulling, "restartCount": rep.restart_count(now), **waiting,
                "logStreamEndpoint": f"{base}/containers/{c}/logstream",
                "execEndpoint": f"{base.replace('https://', 'wss://', 1)}/containers/{c}/exec",
            })
        running = not rep.crashing() and not pulling
        return {"id": f"{app.id}/revisions/{rev.name}/replicas/{rep.name}", "name": rep.name,
                "type": "Microsoft.App/containerApps/revisions/replicas",
                "properties": {"createdTime": providers.iso_now(rep.created),
                               "runningState": "Running" if running else "NotRunning",
                               "runningStateDetails": "" if running else "Container is crash looping" if
                               not pulling else "Image pull failed",
                               "containers": containers, "initContainers": []}}
