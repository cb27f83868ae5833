"""Checks a rendered ARM template and parameters file against Microsoft's ARM JSON schemas (tests/arm_schemas)."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import validators
from referencing import Registry, Resource

from azinfer.templates import RenderedTemplates

SCHEMAS = Path(__file__).parent / "arm_schemas"
SCHEMA_ROOT = "https://schema.management.azure.com/schemas/"


@cache
def _registry() -> Registry:
    from referencing.jsonschema import DRAFT4

    resources = []
    for path in SCHEMAS.rglob("*.json"):
        url = SCHEMA_ROOT + path.relative_to(SCHEMAS).as_posix()
        resources.append((url, Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT4)))
    return Registry().with_resources(resources)


def validate_ref(instance: Any, ref: str) -> None:
    """Assert ``instance`` matches the schema at ``ref``, listing the first errors."""
    validator_cls = validators.validator_for({"$schema": "http://json-schema.org/draft-04/schema#"})
    validator = validator_cls({"$ref": ref}, registry=_registry())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:5])


def resource_ref(resource: dict[str, Any]) -> str:
    """The schema of one template resource: its type at its api-version."""
    namespace, *types = resource["type"].split("/")
    return f"{SCHEMA_ROOT}{resource['apiVersion']}/{namespace}.json#/resourceDefinitions/{'_'.join(types)}"


@cache
def _relaxed_envelope() -> dict[str, Any]:
    envelope = json.loads((SCHEMAS / "2019-04-01" / "deploymentTemplate.json").read_text())
    # The envelope's resource list refers to every resource type in Azure (not copied here): relax it
    # and validate each resource against its own type and api-version instead.
    relaxed = copy.deepcopy(envelope)
    relaxed["properties"]["resources"] = {"type": "array", "items": {"type": "object"}}
    relaxed["id"] = "urn:relaxed-template"
    return relaxed


def assert_valid_arm(rendered: RenderedTemplates) -> None:
    """Assert the template, each of its resources and the parameters file match Microsoft's schemas."""
    template = rendered.template
    relaxed = _relaxed_envelope()
    validators.validator_for(relaxed)(relaxed, registry=_registry()).validate(template)
    assert template["resources"], "a template always declares the container app"
    for resource in template["resources"]:
        validate_ref(resource, resource_ref(resource))
    validate_ref(json.loads(rendered.parameters), SCHEMA_ROOT + "2019-04-01/deploymentParameters.json#")
