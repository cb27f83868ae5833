"""The ARM JSON printer: a template model as an ARM deployment template (a JSON-ready dict).

ARM JSON has no symbols: a resource is referred to by ``resourceId(type,
names...)`` and its name through a variable (``<symbol>Name``) that every
reference uses. A child's full name (``account/default/share``) whose
expression is longer than the name itself may be goes through a variable
too: Microsoft's schemas check some name fields' length on the expression
text (a file share's: 63 characters). Dependencies the model derives are
written as ``dependsOn``; the resources Bicep declares ``existing`` are listed
in ``metadata.azinfer.existing``.
"""

from __future__ import annotations

import json
from typing import Any

from azinfer.resources import ResourceType
from azinfer.templates.model import NO_DEFAULT, Commented, Node, Parameter, Template

__all__ = ["TEMPLATE_SCHEMA", "arm_template"]

TEMPLATE_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"


class _Printer:
    def __init__(self, template: Template) -> None:
        self.template = template
        self.name_variables: dict[str, Any] = {}
        """Each used name variable's model expression, in the order first used; filled while printing."""
        self.full_names: dict[str, str] = {}
        """Each full-name variable's printed value."""

    # -- expressions (the text inside [...]) --

    def expr(self, node: Any) -> str:
        if isinstance(node, Node):
            return node.arm(self)
        if isinstance(node, Commented):
            return self.expr(node.value)
        if isinstance(node, bool):
            return "true()" if node else "false()"
        if node is None:
            return "null()"
        if isinstance(node, int):
            return str(node)
        if isinstance(node, str):
            return "'" + node.replace("'", "''") + "'"
        if isinstance(node, list):
            return f"createArray({', '.join(self.expr(item) for item in node)})"
        if isinstance(node, dict):
            pairs = (f"{self.expr(k)}, {self.expr(v)}" for k, v in node.items())
            return f"createObject({', '.join(pairs)})"
        raise TypeError(f"cannot print {node!r} in ARM JSON")  # pragma: no cover - a model bug

    def name(self, row: ResourceType) -> str:
        """A row's own name: its fixed name, or its name variable."""
        if row.fixed_name is not None:
            return self.expr(row.fixed_name)
        variable = f"{row.symbol}Name"
        self.name_variables.setdefault(variable, self.template.name(row))
        return f"variables('{variable}')"

    def resource_id(self, row: ResourceType) -> str:
        return f"resourceId('{row.type}', {', '.join(self.name(r) for r in _chain(row))})"

    def full_name(self, row: ResourceType) -> str:
        """The value of a resource's ``name``: its parents' names and its own, joined with ``/``."""
        chain = _chain(row)
        if len(chain) == 1:
            return f"[{self.name(row)}]"
        parts: list[str] = []
        args: list[str] = []
        for r in chain:
            if r.fixed_name is not None:
                parts.append(r.fixed_name)
            else:
                parts.append(f"{{{len(args)}}}")
                args.append(self.name(r))
        text = f"[format('{'/'.join(parts)}', {', '.join(args)})]"
        if row.naming is None or len(text) <= row.naming.max_length:
            return text
        variable = f"{row.symbol}FullName"
        self.full_names[variable] = text
        return f"[variables('{variable}')]"

    # -- values (JSON, expressions as "[...]" strings) --

    def value(self, node: Any) -> Any:
        if isinstance(node, Commented):
            return self.value(node.value)
        if isinstance(node, str):
            return "[" + node if node.startswith("[") else node
        if node is None or isinstance(node, (bool, int)):
            return node
        if isinstance(node, dict):
            return {k: self.value(v) for k, v in node.items()}
        if isinstance(node, list):
            if any(not _is_literal(item) for item in node):
                # The schemas type array items as objects; an expression item makes the array one expression.
                return f"[{self.expr(node)}]"
            return [self.value(item) for item in node]
        return f"[{self.expr(node)}]"

    # -- sections --

    def parameter(self, p: Parameter) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "securestring" if p.secure else p.type}
        if p.default is not NO_DEFAULT:
            out["defaultValue"] = self.value(p.default)
        if p.allowed is not None:
            out["allowedValues"] = list(p.allowed)
        for key, bound in (("minValue", p.min_value), ("maxValue", p.max_value),
                           ("minLength", p.min_length), ("maxLength", p.max_length)):
            if bound is not None:
                out[key] = bound
        out["metadata"] = {"description": p.description}
        return out

    def template_dict(self) -> dict[str, Any]:
        t = self.template
        resources = []
        for resource in t.resources:
            row = resource.row
            printed: dict[str, Any] = {"type": row.type, "apiVersion": row.api_version, "name": self.full_name(row)}
            printed.update(self.value(dict(resource.body)))
            dependencies = t.dependencies(resource)
            if dependencies:
                printed["dependsOn"] = [f"[{self.resource_id(d)}]" for d in dependencies]
            resources.append(printed)
        existing = [{"type": r.type, "apiVersion": r.api_version, "name": self.full_name(r)} for r in t.existing]
        outputs = {o.name: {"type": o.type, "value": self.value(o.value)} for o in t.outputs}
        variables = {v.name: self.value(v.value) for v in t.used_variables}
        names = {name: self.value(value) for name, value in self.name_variables.items()}
        return {
            "$schema": TEMPLATE_SCHEMA,
            "contentVersion": "1.0.0.0",
            "metadata": {"description": t.description, "azinfer": {**t.metadata, "existing": existing}},
            "parameters": {p.name: self.parameter(p) for p in t.parameters},
            "variables": {**variables, **names, **self.full_names},
            "resources": resources,
            "outputs": outputs,
        }


def _chain(row: ResourceType) -> list[ResourceType]:
    """The row's ancestors, root first, and the row."""
    chain: list[ResourceType] = []
    current: ResourceType | None = row
    while current is not None:
        chain.insert(0, current)
        current = current.parent
    return chain


def _is_literal(value: Any) -> bool:
    """Whether ``value`` is plain JSON (expressions may sit inside its objects, not in place of an item)."""
    if isinstance(value, Commented):
        return _is_literal(value.value)
    return value is None or isinstance(value, (str, bool, int, dict, list))


def arm_template(template: Template) -> dict[str, Any]:
    """The model as an ARM deployment template (a JSON-ready dict, deterministic)."""
    result = _Printer(template).template_dict()
    json.dumps(result)  # fails here, not in a caller, when the model holds something JSON cannot
    return result
