"""Stage 4: rendering a plan into an ARM template, the same thing as Bicep, and its parameters file.

``render(plan)`` returns a :class:`RenderedTemplates` value; ``write(folder)``
writes ``inference.json``, ``inference.bicep`` and
``inference.parameters.json``. Output is deterministic: the same plan always
gives the same bytes. The plan becomes one template model
(:mod:`azinfer.templates.inference`), printed twice: as ARM JSON
(:mod:`azinfer.templates.arm`) and as Bicep (:mod:`azinfer.templates.bicep`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azinfer._arguments import check_path, check_type
from azinfer.inputs import Source
from azinfer.plan import Plan

__all__ = ["RenderedTemplates", "render", "rendered_parameters", "PARAMETERS_SCHEMA"]

PARAMETERS_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def rendered_parameters(plan: Plan) -> dict[str, Any]:
    """The parameters file that goes with the plan's template.

    It is a valid ``inference.parameters.json``: the project's parameters,
    with the names and location the plan resolved from somewhere other than
    the default rule filled in. A value that would be null is left out: the
    template's default stands for it (a default name is computed inside ARM
    from the resource group id), and no template parameter takes null.
    """
    inputs = plan.inputs
    values = plan.parameters.to_parameters()
    for kind, resolved in inputs.names.items():
        values[kind.parameter] = {"value": None if resolved.source is Source.DEFAULT else resolved.value}
    values["location"] = {"value": inputs.location.value}
    given = {name: entry for name, entry in values.items() if entry["value"] is not None}
    return {"$schema": PARAMETERS_SCHEMA, "contentVersion": "1.0.0.0", "parameters": given}


@dataclass(frozen=True)
class RenderedTemplates:
    """The rendered files of one plan, as text."""

    arm: str
    """``inference.json``: the ARM template."""
    bicep: str
    """``inference.bicep``: the same template as Bicep."""
    parameters: str
    """``inference.parameters.json``: the values for either template (no secret)."""

    @property
    def template(self) -> dict[str, Any]:
        """The ARM template, parsed."""
        result: dict[str, Any] = json.loads(self.arm)
        return result

    @property
    def parameter_values(self) -> dict[str, Any]:
        """The ``parameters`` object of the parameters file, parsed."""
        result: dict[str, Any] = json.loads(self.parameters)["parameters"]
        return result

    def files(self) -> dict[str, str]:
        """File name -> text."""
        return {"inference.json": self.arm, "inference.bicep": self.bicep, "inference.parameters.json": self.parameters}

    def write(self, folder: str | os.PathLike[str]) -> list[Path]:
        """Write the three files into ``folder`` (created if needed): all of them, or none.

        They are written beside their place first, then moved there, with the
        umask's permissions (0644 under the usual umask: they hold no secret).

        :returns: the paths written.
        :raises OutputWriteError: when ``folder`` is a file, under a file, a
            dangling link, in /proc or /sys, or cannot be written; nothing is
            written then.
        :raises ArgumentError: when ``folder`` is no path.
        """
        from azinfer._files import write_folder

        return write_folder(check_path("RenderedTemplates.write", "folder", folder), self.files())


def render(plan: Plan) -> RenderedTemplates:
    """Render the plan's ARM template, Bicep file and parameters file.

    :raises PlanBlockedError: when the plan is blocked.
    :raises ArgumentError: when ``plan`` is no :class:`~azinfer.plan.Plan`.
    """
    from azinfer.templates.arm import arm_template

    check_type("render", "plan", plan, Plan, "a Plan (azinfer.plan_project or azinfer.make_plan)")
    from azinfer.templates.bicep import bicep_template
    from azinfer.templates.inference import inference_template

    template = inference_template(plan)
    return RenderedTemplates(
        arm=_json_text(arm_template(template)),
        bicep=bicep_template(template),
        parameters=_json_text(rendered_parameters(plan)),
    )
