"""The errors azinfer raises.

Every error azinfer raises on purpose derives from :class:`AzinferError`, so a
caller can catch the whole family with one ``except``. Each stage of the
pipeline has its own subclass, and each error carries its context as
attributes (the file, the JSON pointer, the resource...), so tools can act on
it without parsing the message. Messages never contain secrets.

::

    AzinferError
    ├── ArgumentError           a function was called with a wrong type or value (also a TypeError and ValueError)
    ├── ProjectFileError        a project file is missing, unreadable or invalid
    ├── NamingError             a resource name breaks Azure's naming rules
    ├── ResolutionError         an input (subscription, resource group...) cannot be resolved
    ├── PlanBlockedError        the plan has problems that stop it from being applied
    ├── ConfigWriteError        infra/inference.config.json could not be written
    ├── OutputWriteError        rendered files could not be written (nothing was)
    ├── AzureError              a call to Azure failed (see azinfer.azure)
    │   ├── CredentialError     no usable credential
    │   ├── AzurePermissionError the caller lacks a role on a scope
    │   ├── DeploymentFailedError an ARM deployment failed
    │   └── PreviewOutdatedError the resource group changed since the preview
    └── ServeError              the inference server cannot start (see azinfer.serve)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from azinfer.plan import Plan, Problem

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
    "ServeError",
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


class PlanBlockedError(AzinferError):
    """The plan has problems that stop it from being applied.

    :ivar plan: the blocked plan, with every problem in ``plan.problems``.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        lines = [f"the plan is blocked by {len(plan.problems)} problem(s):"]
        lines += [f"- {problem.message}" for problem in plan.problems]
        super().__init__("\n".join(lines))

    @property
    def problems(self) -> Sequence[Problem]:
        """The problems that block the plan."""
        return self.plan.problems


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


class ServeError(AzinferError):
    """The inference server cannot start (no model found, bad settings...)."""
