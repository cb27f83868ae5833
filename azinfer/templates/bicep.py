"""Stage 4b: the plan as Bicep, the same resources as the ARM template, for people who deploy by hand."""

from __future__ import annotations

from functools import cache
from typing import Any

from azinfer.errors import PlanBlockedError
from azinfer.names import DEFAULT_PREFIXES, ResourceKind
from azinfer.plan import Action, Plan
from azinfer.templates.arm import PARAMETER_DOCS, existing_references
from azinfer.templates.resources import (
    API_KEY_SECRET,
    FILE_SERVICE,
    GPU_SPECS,
    SHARE_VOLUME,
    SPECS,
    TAGS,
    probes_for,
)

__all__ = ["bicep_template", "bicep_string"]


def bicep_string(value: str) -> str:
    """A Bicep single-quoted string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("${", "\\${")
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f"'{escaped}'"


@cache
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("azinfer.templates", "jinja"),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
    )
    env.filters["bicep_string"] = bicep_string
    return env


def bicep_template(plan: Plan) -> str:
    """The plan as a Bicep file (deterministic).

    :raises PlanBlockedError: when the plan is blocked.
    """
    if plan.blocked:
        raise PlanBlockedError(plan)
    existing = existing_references(plan)
    by_kind = {kind: SPECS[kind] for kind in ResourceKind}
    text: str = _environment().get_template("inference.bicep.j2").render(
        plan=plan,
        defaults=plan.parameters,
        docs={k: v.replace("'", "\\'") for k, v in PARAMETER_DOCS.items()},
        kinds=list(ResourceKind),
        specs={kind.value: spec for kind, spec in by_kind.items()} | by_kind,
        prefixes=DEFAULT_PREFIXES,
        gpu_specs=GPU_SPECS,
        file_service=FILE_SERVICE,
        write={kind.value: plan.action(kind) is not Action.REUSE for kind in ResourceKind},
        reuse={kind.value: plan.action(kind) is Action.REUSE for kind in ResourceKind},
        existing={kind.value: by_kind[kind] in existing for kind in ResourceKind} | {"fileService": FILE_SERVICE in existing},
        tags=TAGS,
        probes=probes_for(plan.start.serves_azinfer),
        api_key_secret=API_KEY_SECRET,
        share_volume=SHARE_VOLUME,
    )
    # Collapse the blank lines left by skipped blocks, so the file reads as written by hand.
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text
