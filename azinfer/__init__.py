"""azinfer: from a VS Code AI Toolkit fine-tuning project to a GPU inference endpoint on Azure Container Apps.

The pipeline, one module per stage, each stage an immutable value::

    load_project(dir)            -> Project            (azinfer.project)
    resolve(project, inventory)  -> ResolvedInputs     (azinfer.inputs)
    make_plan(inputs, inventory) -> Plan               (azinfer.plan)
    render(plan)                 -> RenderedTemplates  (azinfer.templates)
    write_config(dir, config)                          (azinfer.config)

``plan_project(dir, inventory=...)`` runs the first three. Names are imported
lazily, so ``import azinfer`` stays light (no Azure SDK or torch).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from azinfer.errors import (
    ArgumentError,
    AzinferError,
    AzureError,
    AzurePermissionError,
    ConfigWriteError,
    CredentialError,
    DeploymentFailedError,
    NamingError,
    OutputWriteError,
    PlanBlockedError,
    PreviewOutdatedError,
    ProjectFileError,
    ResolutionError,
    ServeError,
)
from azinfer.names import unique_string
from azinfer.resources import ResourceKind

__version__ = "0.1.0"

_LAZY = {
    "load_project": "azinfer.project",
    "Project": "azinfer.project",
    "InferenceParameters": "azinfer.project",
    "InferenceConfig": "azinfer.project",
    "GpuProfileType": "azinfer.project",
    "Authentication": "azinfer.project",
    "load_inference_config": "azinfer.project",
    "resolve": "azinfer.inputs",
    "ResolvedInputs": "azinfer.inputs",
    "Resolved": "azinfer.inputs",
    "Source": "azinfer.inputs",
    "Inventory": "azinfer.inventory",
    "InMemoryInventory": "azinfer.inventory",
    "ResourceFacts": "azinfer.inventory",
    "WorkloadProfile": "azinfer.inventory",
    "make_plan": "azinfer.plan",
    "Plan": "azinfer.plan",
    "Action": "azinfer.plan",
    "Reason": "azinfer.plan",
    "Problem": "azinfer.plan",
    "ProblemCode": "azinfer.plan",
    "ResourceChange": "azinfer.plan",
    "render": "azinfer.templates",
    "RenderedTemplates": "azinfer.templates",
    "write_config": "azinfer.config",
    "config_from_outputs": "azinfer.config",
    "plan_project": "azinfer.pipeline",
}

__all__ = [
    "__version__",
    "unique_string",
    "ResourceKind",
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
    "ServeError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'azinfer' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from azinfer.config import config_from_outputs, write_config
    from azinfer.inputs import Resolved, ResolvedInputs, Source, resolve
    from azinfer.inventory import InMemoryInventory, Inventory, ResourceFacts, WorkloadProfile
    from azinfer.pipeline import plan_project
    from azinfer.plan import Action, Plan, Problem, ProblemCode, Reason, ResourceChange, make_plan
    from azinfer.project import (
        Authentication,
        GpuProfileType,
        InferenceConfig,
        InferenceParameters,
        Project,
        load_inference_config,
        load_project,
    )
    from azinfer.templates import RenderedTemplates, render
