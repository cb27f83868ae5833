"""The errors azinfer raises.

Every error azinfer raises on purpose derives from :class:`AzinferError`, so a
caller can catch the whole family with one ``except``. Each stage of the
pipeline has its own subclass, and each error carries its context as
attributes (the file, the JSON pointer, the resource...), so tools can act on
it without parsing the message. Messages never contain secrets.

Placed by what the caller can do about each: fix an input, sign in or get a
role, run the command again (it continues where it stopped), or retry a
request later::

    AzinferError
    ├── ArgumentError             a function was called with a wrong type or value (also a TypeError and ValueError)
    ├── ProjectFileError          a project file is missing, unreadable or invalid: fix the file
    ├── NamingError               a resource name breaks Azure's naming rules: change the name
    ├── ResolutionError           an input (subscription, resource group...) cannot be resolved: pass it
    ├── PlanBlockedError          the plan has problems that stop it from being applied: fix them
    ├── ConfigWriteError          infra/inference.config.json could not be written
    ├── OutputWriteError          rendered files could not be written (nothing was)
    ├── AzureError                a call to Azure failed (see azinfer.azure)
    │   ├── CredentialError       no usable credential: sign in
    │   ├── AzurePermissionError  the caller lacks a role on a scope: get the role
    │   ├── DeploymentFailedError an ARM deployment failed: fix what each failure names
    │   ├── DeploymentInterrupted Ctrl-C while ARM deploys: run provision again to attach
    │   ├── UpInterrupted         Ctrl-C during azinfer up: run it again (it resumes)
    │   ├── PreviewOutdatedError  the resource group changed since the preview: preview again
    │   ├── SyncError             a file sync could not finish: run deploy again (it continues)
    │   │   └── SyncInterrupted   Ctrl-C during the sync: run deploy again (it continues)
    │   ├── ReadyTimeout          the endpoint did not get ready: read its state and last log lines
    │   └── SmokeTestFailed       a canary revision failed its smoke test: the traffic stayed where it was
    ├── LocalEndpointError        no local endpoint runs for the project, or its daemon did not start
    ├── ServeError                the inference server cannot start (no model found, bad settings...)
    │   ├── MergeUnsupported      the adapter uses a feature the LoRA merge does not reproduce
    │   └── AdapterError          an adapter cannot be loaded or unloaded while the server runs
    └── RequestError              one request to the server failed; the server goes on
        ├── InvalidRequestError   the client's mistake (HTTP 400): fix the request
        │   └── PromptTooLongError the conversation does not fit the model's context
        ├── QueueFullError        the server is busy (HTTP 429): retry later
        └── GenerationError       the engine failed this request (HTTP 500)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "AzinferError",
    "ArgumentError",
    "ProjectFileError",
    "NamingError",
    "ResolutionError",
    "PlanBlockedError",
    "ConfigWriteError",
    "OutputWriteError",
    "AzureError",
    "CredentialError",
    "AzurePermissionError",
    "DeploymentFailedError",
    "PreviewOutdatedError",
    "ResourceFailure",
    "DeploymentInterrupted",
    "UpInterrupted",
    "SyncError",
    "SyncInterrupted",
    "ReadyTimeout",
    "SmokeTestFailed",
    "LocalEndpointError",
    "ServeError",
    "MergeUnsupported",
    "AdapterError",
    "RequestError",
    "InvalidRequestError",
    "PromptTooLongError",
    "QueueFullError",
    "GenerationError",
]


class AzinferError(Exception):
    """Base class of every error azinfer raises on purpose."""


class ArgumentError(AzinferError, TypeError, ValueError):
    """A function was called with an argument of the wrong type or value.

    It is also a :class:`TypeError` and a :class:`ValueError`, so code that
    catches those keeps working.

    :ivar function: the function called, e.g. ``"assert_plan"``.
    :ivar argument: the argument, e.g. ``"creates"`` (``"creates[1]"`` for an item).
    :ivar expected: what was expected, in words.
    """

    def __init__(self, function: str, argument: str, expected: str, got: object) -> None:
        self.function = function
        self.argument = argument
        self.expected = expected
        super().__init__(f"{function}(): {argument}: expected {expected}, got {_describe(got)}")


def _describe(value: object) -> str:
    """A value for an error message: short, and its type (secrets never reach these functions)."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


class ProjectFileError(AzinferError):
    """A project file is missing, unreadable or does not match its schema.

    :ivar path: the file, as given.
    :ivar pointer: JSON pointer of the offending value ("" for the whole file).
    :ivar expected: what was expected there, in words.
    """

    def __init__(self, path: str, pointer: str, expected: str, *, hint: str | None = None) -> None:
        self.path = path
        self.pointer = pointer
        self.expected = expected
        self.hint = hint
        where = f"{path}: {pointer}" if pointer else path
        message = f"{where}: {expected}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class NamingError(AzinferError):
    """A resource name breaks the naming rule of its Azure resource type.

    :ivar resource: the resource kind, e.g. ``"storage account"``.
    :ivar name: the offending name.
    :ivar rule: the rule, in words.
    :ivar source: where the name came from, in words.
    """

    def __init__(self, resource: str, name: str, rule: str, *, source: str | None = None) -> None:
        self.resource = resource
        self.name = name
        self.rule = rule
        self.source = source
        origin = f" (from {source})" if source else ""
        super().__init__(f"invalid {resource} name {name!r}{origin}: {rule}")


class ResolutionError(AzinferError):
    """An input the plan needs cannot be resolved from the project or the options.

    :ivar field: the input, e.g. ``"subscription"``.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


class _Problem(Protocol):
    """What the error needs of a plan's problem (:class:`azinfer.plan.Problem`); the plan is a higher layer."""

    @property
    def message(self) -> str: ...


class _BlockedPlan(Protocol):
    """What the error needs of a plan (:class:`azinfer.plan.Plan`)."""

    @property
    def problems(self) -> Sequence[_Problem]: ...


class PlanBlockedError(AzinferError):
    """The plan has problems that stop it from being applied.

    :ivar plan: the blocked plan (an :class:`azinfer.plan.Plan`), with every problem in ``plan.problems``.
    """

    def __init__(self, plan: _BlockedPlan) -> None:
        self.plan: Any = plan
        lines = [f"the plan is blocked by {len(plan.problems)} problem(s):"]
        lines += [f"- {problem.message}" for problem in plan.problems]
        super().__init__("\n".join(lines))

    @property
    def problems(self) -> Sequence[Any]:
        """The problems that block the plan (:class:`azinfer.plan.Problem` values)."""
        problems: Sequence[Any] = self.plan.problems
        return problems


class ConfigWriteError(AzinferError):
    """``infra/inference.config.json`` could not be written; the old file is untouched.

    :ivar path: the config file.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        super().__init__(f"{path}: not written: {reason}")


class OutputWriteError(AzinferError):
    """Rendered files could not be written into a folder; none of them was.

    :ivar path: the folder, as given.
    :ivar reason: why, in words.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: nothing written: {reason}")


class AzureError(AzinferError):
    """A call to Azure failed."""


class PreviewOutdatedError(AzureError):
    """What exists in the resource group changed since the preview was made: it is not deployed.

    :ivar differences: each difference, in words ("added Microsoft.App/containerApps 'x'"...).
    """

    def __init__(self, differences: Sequence[str]) -> None:
        self.differences = tuple(differences)
        super().__init__(
            "the resource group changed since the preview, so it was not deployed ("
            + "; ".join(self.differences) + "): preview again"
        )


class CredentialError(AzureError):
    """No usable Azure credential was found."""


class AzurePermissionError(AzureError):
    """The caller lacks a role on a scope.

    :ivar role: the role that would allow the call.
    :ivar scope: the ARM scope the role is needed on.
    """

    def __init__(self, role: str, scope: str, message: str) -> None:
        self.role = role
        self.scope = scope
        super().__init__(message)


@dataclass(frozen=True)
class ResourceFailure:
    """One resource that failed inside an ARM deployment."""

    resource_type: str
    name: str
    code: str
    message: str


class DeploymentFailedError(AzureError):
    """An ARM deployment failed.

    :ivar deployment: the deployment name.
    :ivar failures: each failed resource with ARM's code and message.
    """

    def __init__(self, deployment: str, failures: Sequence[ResourceFailure], *, message: str = "") -> None:
        self.deployment = deployment
        self.failures = tuple(failures)
        lines = [f"deployment {deployment!r} failed" + (f": {message}" if message else "")]
        lines += [f"- {f.resource_type} {f.name!r}: {f.code}: {f.message}" for f in self.failures]
        super().__init__("\n".join(lines))


class DeploymentInterrupted(AzureError):
    """The wait was interrupted (Ctrl-C) or reached its deadline; the deployment goes on in Azure.

    :ivar deployment: the deployment name.
    """

    def __init__(self, deployment: str, resource_group: str, *, why: str = "stopped waiting") -> None:
        self.deployment = deployment
        super().__init__(
            f"{why}; deployment {deployment!r} goes on in resource group {resource_group!r}. "
            "Run 'azinfer provision' again to attach to it and wait for it."
        )


class UpInterrupted(AzureError):
    """``azinfer up`` was interrupted (Ctrl-C); nothing is half-written locally and a rerun resumes.

    :ivar stage: the stage it was in (``plan``, ``provision``, ``ready``, ``smoke test``).
    """

    def __init__(self, stage: str, detail: str, command: str = "azinfer up") -> None:
        self.stage = stage
        super().__init__(
            f"interrupted during {stage}{f' ({detail})' if detail else ''}; nothing local is half-written "
            f"(the config file is written whole, when provisioning ends). Run '{command}' again to continue: "
            "what exists and matches is not redone, a deployment still running is attached to."
        )


class SyncError(AzureError):
    """A sync could not finish; what was uploaded stays recorded, so the next run continues from there."""


class SyncInterrupted(SyncError):
    """The sync was interrupted (Ctrl-C) between files; the next run uploads the rest."""


class ReadyTimeout(AzureError):
    """The endpoint did not get ready in time; the message is one line with the revision's state.

    :ivar revision: the revision's state when the wait ended (an :class:`azinfer.azure.RevisionStatus`, or ``None``).
    :ivar last_logs: the container's last log lines (may be empty; the message quotes the last one).
    """

    def __init__(self, message: str, revision: Any, last_logs: tuple[str, ...]) -> None:
        self.revision = revision
        self.last_logs = last_logs
        super().__init__(message)


class SmokeTestFailed(AzureError):
    """A new revision did not answer its smoke test (``/ready``, one chat completion); no traffic moved to it.

    :ivar revision: the revision that failed; :ivar detail: what it answered, in words.
    """

    def __init__(self, message: str, revision: str, detail: str) -> None:
        self.revision = revision
        self.detail = detail
        super().__init__(message)


class LocalEndpointError(AzinferError):
    """``--local``: no daemon serves the project (run ``azinfer up DIR --local``), or one did not start.

    :ivar project_dir: the project folder as the command was given it.
    """

    def __init__(self, message: str, project_dir: str) -> None:
        super().__init__(message)
        self.project_dir = project_dir


class ServeError(AzinferError):
    """The inference server cannot start (no model found, bad settings...)."""


class MergeUnsupported(ServeError):
    """The adapter uses a feature this merge does not reproduce."""


class AdapterError(ServeError):
    """An adapter cannot be loaded or unloaded while the server runs (bad folder, an engine that cannot)."""


class RequestError(AzinferError):
    """One request to the inference server failed; the server goes on serving the others."""


class InvalidRequestError(RequestError):
    """A request value is out of range or not supported (the client's mistake; HTTP 400).

    :ivar param: the request field at fault, as the client named it (``temperature``, ``messages``...).
    :ivar code: a short machine-readable code for OpenAI's error body.
    """

    def __init__(self, param: str, message: str, code: str = "invalid_value") -> None:
        self.param = param
        self.code = code
        super().__init__(message)


class PromptTooLongError(InvalidRequestError):
    """The conversation leaves no room in the model's context for one new token.

    :ivar context_length: the model's context, in tokens.
    :ivar prompt_tokens: the prompt's length in tokens, or ``None`` when it was
        refused by its size before tokenising.
    """

    def __init__(self, context_length: int, prompt_tokens: int | None = None, prompt_chars: int | None = None) -> None:
        self.context_length = context_length
        self.prompt_tokens = prompt_tokens
        size = f"{prompt_tokens} tokens" if prompt_tokens is not None else f"{prompt_chars} characters"
        super().__init__(
            "messages",
            f"the prompt is {size} long but the model's context is {context_length} tokens; shorten the conversation",
            "context_length_exceeded",
        )


class QueueFullError(RequestError):
    """The engine holds as many requests as it may; the client should retry later (HTTP 429).

    :ivar retry_after: seconds to wait before retrying.
    """

    def __init__(self, capacity: int, retry_after: int = 1) -> None:
        self.retry_after = retry_after
        super().__init__(f"the server is busy ({capacity} requests in progress); retry in {retry_after} s")


class GenerationError(RequestError):
    """The engine failed while generating this request (HTTP 500 or an error event in the stream)."""
