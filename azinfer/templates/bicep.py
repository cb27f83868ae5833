"""The Bicep printer: a template model as a Bicep file, written the way a Bicep author writes one.

Resources refer to each other by symbol (``storage.name``, ``environment.id``,
``logAnalytics.listKeys()``), so Bicep infers every dependency and no
``dependsOn`` is written; reused resources referred to by symbol are
declared ``existing``. Only the variables something uses are declared. Every
inference parameter is declared, so that ``inference.parameters.json``
deploys unchanged; one this plan does not use says so to the linter.
"""

from __future__ import annotations

import re
from typing import Any

from azinfer.resources import ResourceType
from azinfer.templates.model import NO_DEFAULT, ROW_ORDER, Commented, Node, Parameter, Template

__all__ = ["bicep_template", "bicep_string"]

_INDENT = "  "
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def bicep_string(value: str) -> str:
    """A Bicep single-quoted string literal."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("${", "\\${")
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f"'{escaped}'"


class _Printer:
    def __init__(self, template: Template) -> None:
        self.template = template
        self.symbols = {r.row for r in template.resources} | set(template.existing)

    def expr(self, node: Any, depth: int) -> str:
        """``node`` as a Bicep expression; objects and arrays span lines indented ``depth`` levels."""
        if isinstance(node, Node):
            return node.bicep(self, depth)
        if isinstance(node, Commented):
            return self.expr(node.value, depth)
        if isinstance(node, bool):
            return "true" if node else "false"
        if node is None:
            return "null"
        if isinstance(node, int):
            return str(node)
        if isinstance(node, str):
            return bicep_string(node)
        if isinstance(node, dict):
            return self.block("{", "}", [self.pair(k, v, depth + 1) for k, v in node.items()], depth)
        if isinstance(node, list):
            return self.block("[", "]", [self.item(v, depth + 1) for v in node], depth)
        raise TypeError(f"cannot print {node!r} in Bicep")  # pragma: no cover - a model bug

    def operand(self, node: Any, depth: int) -> str:
        """An operator's operand, in parentheses when it is an operator itself."""
        inner = node.value if isinstance(node, Commented) else node
        text = self.expr(inner, depth)
        return f"({text})" if isinstance(inner, Node) and inner.operator else text

    def name(self, row: ResourceType, depth: int) -> str:
        """A row's own name: ``symbol.name`` when this file declares the row, else its name expression."""
        if row in self.symbols:
            return f"{row.symbol}.name"
        return self.expr(self.template.name(row), depth)

    def block(self, open_: str, close: str, lines: list[str], depth: int) -> str:
        if not lines:
            return open_ + close
        return "\n".join([open_, *lines, _INDENT * depth + close])

    def comment(self, node: Any, depth: int) -> list[str]:
        return [f"{_INDENT * depth}// {node.comment}"] if isinstance(node, Commented) else []

    def pair(self, key: str, value: Any, depth: int) -> str:
        name = key if _IDENTIFIER.fullmatch(key) else bicep_string(key)
        return "\n".join([*self.comment(value, depth), f"{_INDENT * depth}{name}: {self.expr(value, depth)}"])

    def item(self, value: Any, depth: int) -> str:
        return "\n".join([*self.comment(value, depth), f"{_INDENT * depth}{self.expr(value, depth)}"])

    # -- declarations --

    def parameter(self, p: Parameter, used: bool) -> str:
        lines = [] if used else ["// Not used by this plan; declared so that inference.parameters.json deploys as it is."]
        lines.append(f"@description({bicep_string(p.description)})")
        if p.allowed is not None:
            lines.append(self.expr(list(p.allowed), 0).join(("@allowed(", ")")))
        for decorator, bound in (("minValue", p.min_value), ("maxValue", p.max_value),
                                 ("minLength", p.min_length), ("maxLength", p.max_length)):
            if bound is not None:
                lines.append(f"@{decorator}({bound})")
        if p.secure:
            lines.append("@secure()")
        if not used:
            lines.append("#disable-next-line no-unused-params")
        declaration = f"param {p.name} {p.type}"
        if p.default is not NO_DEFAULT:
            declaration += f" = {self.expr(p.default, 0)}"
        return "\n".join([*lines, declaration])

    def resource(self, row: ResourceType, body: dict[str, Any] | None) -> str:
        head = f"resource {row.symbol} '{row.type}@{row.api_version}'{' existing' if body is None else ''} = "
        lines = [f"{_INDENT}parent: {row.parent.symbol}"] if row.parent is not None else []
        lines += [self.pair(k, v, 1) for k, v in {"name": self.template.name(row), **(body or {})}.items()]
        return head + self.block("{", "}", lines, 0)

    def text(self) -> str:
        t = self.template
        used = t.used_parameters
        params = {p.name for p in t.parameters}
        sections = ["\n".join([f"// {t.description}", *(f"// {note}" for note in t.notes)])]
        sections += [self.parameter(p, p.name in used) for p in t.parameters]
        variables = []
        for v in t.used_variables:
            if v.name in params:
                raise ValueError(f"variable {v.name!r} has a parameter's name")  # pragma: no cover - a model bug
            variables.append("\n".join([*self.comment(v.value, 0), f"var {v.name} = {self.expr(v.value, 0)}"]))
        if variables:
            sections.append("\n".join(variables))
        bodies = {r.row: dict(r.body) for r in t.resources}
        rows = [row for row in ROW_ORDER if row in self.symbols]
        sections += [self.resource(row, bodies.get(row)) for row in rows]
        sections.append("\n".join(f"output {o.name} {o.type} = {self.expr(o.value, 0)}" for o in t.outputs))
        return "\n\n".join(sections) + "\n"


def bicep_template(template: Template) -> str:
    """The model as a Bicep file (deterministic)."""
    return _Printer(template).text()
