"""``azinfer up``: from the project to an endpoint that answered, composing provision, deploy and a smoke test.

The stages, each timed and announced on the one event stream (``Operation.UP``;
the operations it runs report under their own names):

1. **plan**: provision plans and previews (ARM what-if); the question is asked
   once, with the preview (``worth_asking`` only when something would be written);
2. **provision**: the ARM deployment (attached to when an earlier run's is still
   running), azinfer's server on the share, the config file;
3. **ready**: what provision left starting is waited for (a changed share with
   no new revision is restarted first, through :func:`.deploy.deploy`);
4. **smoke test**: one short chat completion through the endpoint, with the key.

A rerun resumes: what exists and matches is not redone (no deployment, no
upload, no restart), and the wait ends at the first ``/ready``. Ctrl-C leaves
nothing half-written locally (the config file is written whole, at the end of
provisioning) and raises :class:`~azinfer.errors.UpInterrupted`.

Where Azure is belongs to the context, not to ``up``: running it on this machine
(``azinfer up --local``, with an emulator that runs the container) is the same
composition on a context whose target is that emulator.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from azinfer.azure import deploy as deploy_op
from azinfer.azure import provision as provision_op
from azinfer.azure.context import AzureContext
from azinfer.azure.deploy import DeployResult
from azinfer.azure.events import ConfirmCallback, Emitter, EventCallback, Operation, Question
from azinfer.azure.key import request_key
from azinfer.azure.provision import Preview, ProvisionResult
from azinfer.azure.scope import ProjectScope
from azinfer.azure.smoke import SMOKE_PROMPT, SmokeTest
from azinfer.errors import DeploymentInterrupted, SyncInterrupted, UpInterrupted

__all__ = ["UpStage", "UpResult", "up", "next_steps"]

KEY_VARIABLE = "AZINFER_API_KEY"
"""The variable the printed snippets read the key from (set from ``azinfer key``; the key is never printed)."""


@dataclass(frozen=True)
class UpStage:
    """One stage of ``up``, timed."""

    name: str
    """``plan``, ``provision``, ``ready`` or ``smoke test``."""
    seconds: float
    outcome: str
    """What it did, in words."""


@dataclass(frozen=True)
class UpResult:
    """What ``up`` did: each operation's result, the smoke test, and each stage's time."""

    provision: ProvisionResult
    ready: DeployResult | None
    """The wait (and the restart, when one was needed); ``None`` when declined."""
    smoke: SmokeTest | None
    """The endpoint's answer; ``None`` when declined."""
    stages: tuple[UpStage, ...]
    declined: bool = False
    """``confirm`` answered no: nothing was written."""

    @property
    def endpoint(self) -> str | None:
        """``https://<fqdn>`` as ARM reports it."""
        return self.ready.endpoint if self.ready is not None else None

    def to_text(self) -> str:
        """Each stage with its time, then the smoke test's answer."""
        width = max((len(s.name) for s in self.stages), default=0)
        lines = [f"  {s.name:<{width}}  {s.seconds:7.2f} s  {s.outcome}" for s in self.stages]
        total = sum(s.seconds for s in self.stages)
        lines.append(f"  {'total':<{width}}  {total:7.2f} s")
        return "\n".join(lines) + "\n"


def next_steps(endpoint: str, model: str, command: str = "azinfer", target: str = ".", *,
               ca: str | None = None, delete: str = "destroy") -> str:
    """What the user needs next: the endpoint, how to get the key, a ``curl`` and an ``openai`` snippet, and the
    commands for status, logs and destroy. The snippets read the key from ``$AZINFER_API_KEY`` and work as printed.

    :param command: how the user runs azinfer; :param target: the project folder and options as they typed them.
    :param ca: a CA file the endpoint's certificate needs (the local endpoint's): the snippets trust it.
    :param delete: the command that removes it (``down`` for the local endpoint).
    """
    body = ('{"model": %s, "messages": [{"role": "user", "content": "Hello!"}], "max_tokens": 64}'
            % json.dumps(model))
    cacert = f" --cacert {shlex.quote(ca)}" if ca else ""
    client = (f'client = OpenAI(base_url="{endpoint}/v1", api_key=os.environ["{KEY_VARIABLE}"]'
              + (f", http_client=httpx.Client(verify=ssl.create_default_context(cafile={json.dumps(ca)})))"
                 if ca else ")"))
    return "\n".join([
        f"Endpoint: {endpoint}",
        f"The API key is the app's secret; '{command} key {target}' prints it. In this shell:",
        "",
        f'export {KEY_VARIABLE}="$({command} key {target})"',
        f"curl -sS{cacert} {endpoint}/v1/chat/completions \\",
        f'  -H "Authorization: Bearer ${KEY_VARIABLE}" -H "Content-Type: application/json" \\',
        f"  -d {shlex.quote(body)}",
        "",
        "From Python (pip install openai), in the same shell:",
        "",
        "python - <<'EOF'",
        "import os",
        *(["import ssl", "import httpx"] if ca else []),
        "from openai import OpenAI",
        client,
        f"answer = client.chat.completions.create(model={json.dumps(model)}, "
        'messages=[{"role": "user", "content": "Hello!"}], max_tokens=64)',
        "print(answer.choices[0].message.content)",
        "EOF",
        "",
        f"Status: {command} status {target}    Logs: {command} logs {target} --follow    "
        f"Delete: {command} {delete} {target}",
    ]) + "\n"


class _Stages:
    """Times the stages, announces each on the event stream, and knows which one a Ctrl-C stopped."""

    def __init__(self, ctx: AzureContext, emit: Emitter) -> None:
        self._clock, self._emit = ctx.clock, emit
        self.done: list[UpStage] = []
        self.current = "plan"
        self._start = self._clock()

    def begin(self, name: str, doing: str) -> None:
        self.current, self._start = name, self._clock()
        self._emit.stage(f"{name}: {doing}")

    def end(self, outcome: str) -> None:
        seconds = self._clock() - self._start
        self.done.append(UpStage(self.current, seconds, outcome))
        self._emit.stage(f"{self.current}: {outcome} ({seconds:.2f} s)")

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """Ctrl-C (and the operations' own interruptions) as :class:`UpInterrupted`, naming the stage."""
        try:
            yield
        except DeploymentInterrupted as exc:
            raise UpInterrupted(self.current, f"ARM deployment {exc.deployment!r} goes on in Azure") from None
        except SyncInterrupted:
            raise UpInterrupted(self.current, "the upload stopped between files") from None
        except KeyboardInterrupt:
            raise UpInterrupted(self.current, "") from None


def up(ctx: AzureContext, scope: ProjectScope, *, timeout: float = 900.0, confirm: ConfirmCallback | None = None,
       on_event: EventCallback | None = None) -> UpResult:
    """Plan, ask, provision, wait for ``/ready``, then one chat completion. See :meth:`AzureProject.up`."""
    emit = Emitter(Operation.UP, on_event)
    stages = _Stages(ctx, emit)
    with stages.interruptible():
        stages.begin("plan", f"planning against resource group {scope.resource_group!r} and ARM's what-if")
        asked = _asking(stages, confirm)
        provisioned = provision_op.provision(ctx, scope, None, confirm=asked, on_event=on_event)
        if provisioned.declined:
            return UpResult(provisioned, None, None, tuple(stages.done), declined=True)
        stages.end(_provision_outcome(provisioned))

        ready = _ready(ctx, scope, provisioned, stages, timeout=timeout, on_event=on_event)

        stages.begin("smoke test", f"asking the model {SMOKE_PROMPT!r}")
        smoke = ctx.smoke_test(ready.endpoint or "", request_key(ctx, scope))
        stages.end(smoke.to_text())
    return UpResult(provisioned, ready, smoke, tuple(stages.done))


def _asking(stages: _Stages, confirm: ConfirmCallback | None) -> Callable[[Question[Any]], bool]:
    """Provision's question as up's: asked when something would be written; the plan stage ends when it is."""

    def asked(question: Question[Any]) -> bool:
        preview: Preview = question.subject
        writes = preview.what_if.writes
        stages.end(f"{len(writes)} change(s) to deploy" if writes else "nothing to change in Azure")
        answer = confirm is None or confirm(Question(Operation.UP, "Provision, deploy and test the endpoint?",
                                                     question.summary, preview, worth_asking=bool(writes)))
        if answer:
            stages.begin("provision", "ARM deployment, azinfer's server on the share, the config file")
        return answer

    return asked


def _provision_outcome(result: ProvisionResult) -> str:
    deployed = f"deployment {result.deployment!r} succeeded" if result.deployment else "nothing deployed"
    sync = result.sync
    uploaded = f"{len(sync.uploaded)} file(s) uploaded" if sync is not None and sync.uploaded else "share up to date"
    return f"{deployed}; {uploaded}; wrote {result.config_path.name}"


def _ready(ctx: AzureContext, scope: ProjectScope, provisioned: ProvisionResult, stages: _Stages, *,
           timeout: float, on_event: EventCallback | None) -> DeployResult:
    """Wait for what provision left starting; restart first when the share changed under a running revision."""
    app = f"/containerapps/{provisioned.config.app_name}".lower()
    new_revision = provisioned.deployment is not None and any(
        change.resource_id.lower().endswith(app) and change.change_type.lower() in {"create", "modify"}
        for change in provisioned.what_if.changes)
    sync = provisioned.sync
    changed = sync is not None and bool(sync.uploaded or sync.deleted)
    if changed and not new_revision:
        # The running replica started with the old files: deploy restarts it (its sync finds nothing new).
        stages.begin("ready", "the share changed: restarting the serving revision, then waiting for /ready")
        result = deploy_op.deploy(ctx, scope, restart=True, wait=True, timeout=timeout, on_event=on_event)
        outcome = f"restarted revision {result.restarted!r}; /ready answers"
    else:
        stages.begin("ready", "waiting for a running replica and /ready")
        result = deploy_op.wait_ready(ctx, scope, timeout=timeout, on_event=on_event)
        outcome = f"revision {result.revision.name if result.revision else '?'!r} answers /ready"
    stages.end(outcome)
    return result
