"""ARM deployments: validate, preview (what-if), run and attach, each resource's state an event.

The deployment has a deterministic name (``azinfer-<app name>``), so a run
that finds one of that name still running attaches to it and waits, and a
Ctrl-C leaves ARM working and says how to attach again. Secrets: the API key
travels only as the template's secure parameter, never in a log line, an
error or a file.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from azinfer.azure.clients import AzureClients, enum_text
from azinfer.azure.context import AzureContext
from azinfer.azure.events import Emitter, EventKind, Operation, duration_text
from azinfer.azure.failures import raise_if_forbidden
from azinfer.errors import DeploymentFailedError, DeploymentInterrupted, ResourceFailure
from azinfer.inputs import ResolvedInputs
from azinfer.resources import ResourceKind
from azinfer.templates.inference import API_KEY_SECRET

__all__ = [
    "WhatIfChange",
    "WhatIf",
    "DeploymentInterrupted",
    "deployment_name",
    "attach",
    "in_flight",
    "existing_api_key",
    "existing_secret",
    "app_secret",
    "validate_deployment",
    "what_if",
    "run_deployment",
    "DEPLOYMENT_TIMEOUT",
    "HEARTBEAT",
]

if TYPE_CHECKING:  # pragma: no cover
    from azure.core.exceptions import HttpResponseError

_TERMINAL = {"succeeded", "failed", "canceled"}
T = TypeVar("T")

DEPLOYMENT_TIMEOUT = 3 * 3600.0
"""Seconds provision waits for an ARM deployment (creating a GPU environment alone can take most of an hour)."""
HEARTBEAT = 60.0
"""Seconds after which a resource still in progress is reported again, with its elapsed time."""


@dataclass(frozen=True)
class WhatIfChange:
    """One resource in ARM's what-if answer."""

    resource_id: str
    change_type: str
    """ARM's ChangeType: Create, Delete, Ignore, Deploy, NoChange, Modify, Unsupported."""
    changed_paths: tuple[str, ...] = ()
    """For Modify: the property paths that would change."""


@dataclass(frozen=True)
class WhatIf:
    """ARM's what-if answer for the deployment."""

    changes: tuple[WhatIfChange, ...] = field(default_factory=tuple)

    @property
    def writes(self) -> tuple[WhatIfChange, ...]:
        """The changes that would write something (Create, Modify, Delete, Deploy)."""
        return tuple(c for c in self.changes if c.change_type.lower() in {"create", "modify", "delete", "deploy"})

    def _summary(self) -> str:
        return ", ".join(f"{sum(c.change_type.lower() == kind for c in self.changes)} to {kind}"
                         for kind in ("create", "modify", "delete"))

    def to_text(self) -> str:
        """The what-if as a diff, one line per resource."""
        lines = []
        for change in self.changes:
            lines.append(f"  {_symbol(change)} {change.resource_id}  ({change.change_type})")
            lines += [f"      ~ {path}" for path in change.changed_paths]
        return "\n".join(["ARM what-if:", *lines, f"What-if: {self._summary()}."]) + "\n"

    def _repr_html_(self) -> str:
        """The what-if as an HTML table, for notebooks: change, resource (below ``/providers/``), changed paths."""
        esc = html.escape
        rows = "".join(
            f"<tr><td><code>{esc(_symbol(c))}</code> {esc(c.change_type)}</td>"
            f"<td><code>{esc(c.resource_id.split('/providers/', 1)[-1])}</code></td>"
            f"<td>{'<br>'.join(esc(path) for path in c.changed_paths)}</td></tr>"
            for c in self.changes
        )
        return (f"<div class=\"azinfer-what-if\"><p><b>ARM what-if</b>: {esc(self._summary())}</p><table><thead>"
                f"<tr><th>change</th><th>resource</th><th>changed properties</th></tr></thead>"
                f"<tbody>{rows}</tbody></table></div>")


_SYMBOLS = {"create": "+", "delete": "-", "modify": "~", "deploy": "!", "nochange": "=", "ignore": "*"}


def _symbol(change: WhatIfChange) -> str:
    return _SYMBOLS.get(change.change_type.lower(), "?")


def deployment_name(inputs: ResolvedInputs) -> str:
    """The deployment's deterministic name: the same project always deploys under the same name."""
    return f"azinfer-{inputs.name(ResourceKind.CONTAINER_APP)}"[:64]


def existing_api_key(clients: AzureClients, inputs: ResolvedInputs) -> str | None:
    """The API key the existing app holds (kept across deployments), or ``None``."""
    return existing_secret(clients, inputs, API_KEY_SECRET)


def existing_secret(clients: AzureClients, inputs: ResolvedInputs, name: str) -> str | None:
    """The value of the planned app's secret ``name``, or ``None`` (no app, no such secret)."""
    return app_secret(clients, inputs.resource_group.value, inputs.name(ResourceKind.CONTAINER_APP), name)


def app_secret(clients: AzureClients, resource_group: str, app: str, name: str) -> str | None:
    """The value of container app ``app``'s secret ``name``, or ``None`` (no app, no such secret)."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        secrets = clients.apps.container_apps.list_secrets(resource_group, app)
    except ResourceNotFoundError:
        return None
    return next((s.value for s in secrets.value or [] if s.name == name), None)


def _deployment_body(template: Mapping[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    return {"properties": {"mode": "Incremental", "template": dict(template), "parameters": dict(parameters)}}


class _ArmError(Protocol):
    """ARM's error shape: the SDK's ``ErrorResponse`` and azure-core's ``ODataV4Format`` both have it."""

    @property
    def code(self) -> str | None: ...

    @property
    def message(self) -> str | None: ...

    @property
    def details(self) -> Sequence[_ArmError] | None: ...


def _arm_error(error: _ArmError | None, name: str) -> tuple[str, list[ResourceFailure]]:
    """ARM's error as a one-line summary and its details."""
    if error is None:
        return "DeploymentFailed: the deployment did not succeed", []
    details = [ResourceFailure("(template)", name, d.code or "", d.message or "") for d in error.details or []]
    return f"{error.code or 'DeploymentFailed'}: {error.message or 'the deployment did not succeed'}", details


def _arm_failure(exc: HttpResponseError, name: str, failures: Sequence[ResourceFailure] = ()) -> DeploymentFailedError:
    """The deployment's failure: the resources that failed (else ARM's details) and ARM's summary."""
    if exc.error is not None:
        summary, details = _arm_error(exc.error, name)
    else:
        summary, details = f"DeploymentFailed: {exc.message or 'the deployment did not succeed'}", []
    return DeploymentFailedError(name, failures or details, message=summary)


def _arm_call(clients: AzureClients, resource_group: str, name: str, call: Callable[[], T]) -> T:
    """Run one ARM deployment call: a 403 names the role, any other error is the deployment's failure."""
    from azure.core.exceptions import HttpResponseError

    try:
        return call()
    except HttpResponseError as exc:
        raise_if_forbidden(exc, role="Contributor", scope=clients.scope(resource_group),
                           doing="deploy to the resource group")
        raise _arm_failure(exc, name) from None


def validate_deployment(clients: AzureClients, resource_group: str, name: str, template: Mapping[str, Any],
                        parameters: Mapping[str, Any]) -> None:
    """ARM's validation of the template with its parameters.

    :raises DeploymentFailedError: when ARM rejects the template, with its codes and messages.
    :raises AzurePermissionError: when the caller may not deploy (the message names the role).
    """
    from azure.mgmt.resource.deployments.models import Deployment

    body = Deployment(_deployment_body(template, parameters))
    result = _arm_call(clients, resource_group, name,
                       lambda: clients.deployments.deployments.begin_validate(resource_group, name, body).result())
    if result.error is not None:
        summary, details = _arm_error(result.error, name)
        raise DeploymentFailedError(name, details, message=summary)


def what_if(clients: AzureClients, resource_group: str, name: str, template: Mapping[str, Any],
            parameters: Mapping[str, Any]) -> WhatIf:
    """ARM's what-if for the deployment.

    :raises DeploymentFailedError: when ARM cannot evaluate the template.
    :raises AzurePermissionError: when the caller may not deploy (the message names the role).
    """
    from azure.mgmt.resource.deployments.models import DeploymentWhatIf

    body = DeploymentWhatIf(_deployment_body(template, parameters))
    result = _arm_call(clients, resource_group, name,
                       lambda: clients.deployments.deployments.begin_what_if(resource_group, name, body).result())
    changes = []
    for change in (result.properties.changes if result.properties is not None else None) or []:
        paths = tuple(delta.path for delta in change.delta or [])
        changes.append(WhatIfChange(change.resource_id or "", enum_text(change.change_type) or "", paths))
    return WhatIf(tuple(changes))


@dataclass
class _Seen:
    state: str
    since: float
    """When the resource was first seen (the context's clock)."""
    said: float
    """When its state was last reported."""


class _ProgressReporter:
    """Turns the deployment's operations into an event per resource state change, and one every
    :data:`HEARTBEAT` seconds for a resource still in progress (each with its elapsed time)."""

    def __init__(self, ctx: AzureContext, resource_group: str, name: str, emit: Emitter) -> None:
        self._ctx, self._group, self._name, self._emit = ctx, resource_group, name, emit
        self._seen: dict[tuple[str, str], _Seen] = {}
        self.failures: list[ResourceFailure] = []

    def in_progress(self) -> str:
        """The resources not done yet, in words (for a message)."""
        busy = [f"{kind.rsplit('/', 1)[-1]} {name} {seen.state}" for (kind, name), seen in self._seen.items()
                if seen.state.lower() not in _TERMINAL]
        return ", ".join(busy) or "no resource in progress"

    def poll(self) -> None:
        self.failures = []
        now = self._ctx.clock()
        for operation in self._ctx.clients.deployments.deployment_operations.list(self._group, self._name):
            props = operation.properties
            if props is None or props.target_resource is None:
                continue
            target = props.target_resource
            state = props.provisioning_state or "Unknown"
            error = props.status_message.error if props.status_message is not None else None
            kind, name = target.resource_type or "", target.resource_name or ""
            code, message = (error.code, error.message) if error is not None else (None, None)
            if state.lower() == "failed":
                self.failures.append(ResourceFailure(kind, name, code or "Failed", message or ""))
            seen = self._seen.setdefault((kind, name), _Seen("", now, now))
            busy = state.lower() not in _TERMINAL
            if seen.state != state or (busy and now - seen.said >= HEARTBEAT):
                seen.state, seen.said = state, now
                self._emit(EventKind.RESOURCE, resource_type=kind, resource_name=name, state=state, code=code,
                           message=message or "", elapsed=now - seen.since)


def attach(ctx: AzureContext, resource_group: str, name: str, emit: Emitter) -> None:
    """Wait for a deployment of that name still running (an earlier run's), reporting its progress.

    :raises DeploymentInterrupted: on Ctrl-C; the deployment goes on in Azure.
    """
    try:
        _wait_for_running(ctx, resource_group, name, _ProgressReporter(ctx, resource_group, name, emit), emit)
    except KeyboardInterrupt:
        raise DeploymentInterrupted(name, resource_group) from None


def in_flight(ctx: AzureContext, resource_group: str, name: str) -> str | None:
    """The deployment of that name, in words, while it runs (with its resources in progress); ``None`` otherwise."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        current = ctx.clients.deployments.deployments.get(resource_group, name)
    except ResourceNotFoundError:
        return None
    state = (enum_text(current.properties.provisioning_state) if current.properties is not None else None) or ""
    if state.lower() in _TERMINAL or not state:
        return None
    reporter = _ProgressReporter(ctx, resource_group, name, Emitter(Operation.PROVISION, None))
    reporter.poll()
    return f"deployment {name!r} is still {state} (in progress: {reporter.in_progress()})"


def _wait_for_running(ctx: AzureContext, resource_group: str, name: str, reporter: _ProgressReporter,
                      emit: Emitter) -> None:
    """Attach to a deployment of the same name that is still running (saying so), and wait for it to end.

    :raises DeploymentInterrupted: after :data:`DEPLOYMENT_TIMEOUT` seconds, naming what is still in progress.
    """
    from azure.core.exceptions import ResourceNotFoundError

    clients = ctx.clients
    deadline = ctx.clock() + DEPLOYMENT_TIMEOUT
    attached = False
    while True:
        try:
            current = clients.deployments.deployments.get(resource_group, name)
        except ResourceNotFoundError:
            return
        state = (enum_text(current.properties.provisioning_state) if current.properties is not None else None) or ""
        if state.lower() in _TERMINAL or not state:
            if attached:
                emit.stage(f"deployment {name!r} ended: {state}")
            return
        if not attached:
            emit.stage(f"deployment {name!r} (an earlier run's) is still {state} in Azure: attached to it, "
                       "waiting for it to end")
            attached = True
        reporter.poll()
        _check_deadline(ctx, deadline, name, resource_group, reporter)
        ctx.sleep(ctx.poll_interval)


def _check_deadline(ctx: AzureContext, deadline: float, name: str, resource_group: str,
                    reporter: _ProgressReporter) -> None:
    if ctx.clock() >= deadline:
        raise DeploymentInterrupted(name, resource_group, why=f"waited {duration_text(DEPLOYMENT_TIMEOUT)} for the "
                                    f"deployment (still in progress: {reporter.in_progress()})")


def run_deployment(ctx: AzureContext, resource_group: str, name: str, template: Mapping[str, Any],
                   parameters: Mapping[str, Any], emit: Emitter) -> dict[str, Any]:
    """Run the incremental deployment and return its outputs.

    A deployment of the same name still running is attached to and waited
    for first (ARM refuses a second one while it runs).

    :raises DeploymentFailedError: listing each failed resource with ARM's code and message.
    :raises DeploymentInterrupted: on Ctrl-C; the deployment goes on in Azure.
    :raises AzurePermissionError: when the caller may not deploy (the message names the role).
    """
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.resource.deployments.models import Deployment

    clients, poll_interval = ctx.clients, ctx.poll_interval
    reporter = _ProgressReporter(ctx, resource_group, name, emit)
    deployments = clients.deployments.deployments
    try:
        _wait_for_running(ctx, resource_group, name, reporter, emit)
        for attempt in range(3):
            try:
                poller = deployments.begin_create_or_update(
                    resource_group, name, Deployment(_deployment_body(template, parameters)),
                    polling_interval=poll_interval,
                )
                break
            except HttpResponseError as exc:
                code = (exc.error.code if exc.error is not None else None) or ""
                if exc.status_code == 409 and code.lower() == "deploymentactive" and attempt < 2:
                    _wait_for_running(ctx, resource_group, name, reporter, emit)
                    continue
                raise_if_forbidden(exc, role="Contributor", scope=clients.scope(resource_group),
                                   doing="deploy to the resource group")
                raise _arm_failure(exc, name) from None
        deadline = ctx.clock() + DEPLOYMENT_TIMEOUT
        try:
            while not poller.done():
                reporter.poll()
                _check_deadline(ctx, deadline, name, resource_group, reporter)
                poller.wait(poll_interval)
            result = poller.result()
        except HttpResponseError as exc:
            reporter.poll()
            raise _arm_failure(exc, name, reporter.failures) from None
        reporter.poll()
    except KeyboardInterrupt:
        raise DeploymentInterrupted(name, resource_group) from None
    props = result.properties
    state = (enum_text(props.provisioning_state) if props is not None else None) or ""
    if state.lower() != "succeeded":
        summary, details = _arm_error(props.error if props is not None else None, name)
        raise DeploymentFailedError(name, reporter.failures or details, message=summary)
    outputs = props.outputs if props is not None else None
    return dict(outputs) if isinstance(outputs, Mapping) else {}
