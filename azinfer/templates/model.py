"""The template model: one structure that both printers (ARM JSON and Bicep) render.

A :class:`Template` holds parameters, variables, resources and outputs.
Values are plain JSON values (str, int, bool, None, list, dict) in which
expression nodes may appear anywhere: references to parameters and variables,
function calls, operators, and references to resources of the template by
their row of the resource table (their id, name, runtime properties, keys).
The printers turn each node into its own language (``coalesce(a, b)`` or
``a ?? b``; ``resourceId(...)`` or a symbol's ``.id``), so the two files
cannot say different things unless a printer is wrong, and
``tests/test_template_equality.py`` checks that they are not.

What the model derives rather than stores:

- which resources Bicep must declare ``existing`` (:meth:`Template.existing`):
  the reused ones referred to by symbol, and the parents of declared children;
- each resource's dependencies (:meth:`Template.dependencies`): the declared
  resources its body refers to, and its parent. Bicep infers them from the
  symbols; the ARM printer writes them as ``dependsOn``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from azinfer.resources import FILE_SERVICE, RESOURCES, ResourceType

__all__ = [
    "Param",
    "Var",
    "Call",
    "Member",
    "Index",
    "Coalesce",
    "Cond",
    "Equals",
    "Interp",
    "ResourceId",
    "ResourceName",
    "Properties",
    "ListKeys",
    "Commented",
    "NO_DEFAULT",
    "Parameter",
    "Variable",
    "Resource",
    "Output",
    "Template",
    "ROW_ORDER",
    "references",
]


@dataclass(frozen=True)
class Param:
    """A template parameter's value."""

    name: str


@dataclass(frozen=True)
class Var:
    """A template variable's value."""

    name: str


@dataclass(frozen=True)
class Call:
    """A function both languages spell the same (``uniqueString``, ``join``, ``resourceGroup``...)."""

    name: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Member:
    """``target.name``."""

    target: Any
    name: str


@dataclass(frozen=True)
class Index:
    """``target[index]``."""

    target: Any
    index: Any


@dataclass(frozen=True)
class Coalesce:
    """The first value that is not null: ARM ``coalesce(a, b)``, Bicep ``a ?? b``."""

    first: Any
    second: Any


@dataclass(frozen=True)
class Cond:
    """ARM ``if(test, then, otherwise)``, Bicep ``test ? then : otherwise``."""

    test: Any
    then: Any
    otherwise: Any


@dataclass(frozen=True)
class Equals:
    """ARM ``equals(a, b)``, Bicep ``a == b``."""

    left: Any
    right: Any


@dataclass(frozen=True)
class Interp:
    """A string built of literal parts and values: ARM ``format('a{0}', x)``, Bicep ``'a${x}'``."""

    parts: tuple[Any, ...]


@dataclass(frozen=True)
class ResourceId:
    """A resource's id: ARM ``resourceId(type, names...)``, Bicep ``symbol.id``."""

    row: ResourceType


@dataclass(frozen=True)
class ResourceName:
    """A resource's own name (a child's last segment): ARM its name variable, Bicep ``symbol.name``."""

    row: ResourceType


@dataclass(frozen=True)
class Properties:
    """A resource's runtime properties: ARM ``reference(id, api-version)``, Bicep ``symbol.properties``."""

    row: ResourceType


@dataclass(frozen=True)
class ListKeys:
    """A resource's keys: ARM ``listKeys(id, api-version)``, Bicep ``symbol.listKeys()``."""

    row: ResourceType


@dataclass(frozen=True)
class Commented:
    """A value with a comment that says why; Bicep prints the comment above it, ARM JSON has none."""

    value: Any
    comment: str


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()
"""A parameter without a default value: every deployment must pass it."""


@dataclass(frozen=True)
class Parameter:
    """A template parameter with its constraints."""

    name: str
    type: str
    """``string``, ``int``, ``bool``, ``array`` or ``object``."""
    description: str
    default: Any = NO_DEFAULT
    nullable: bool = False
    """May be null or left out (Bicep ``string?``, ARM ``"nullable": true``)."""
    secure: bool = False
    """Never logged nor shown by ARM (Bicep ``@secure()``, ARM ``securestring``)."""
    allowed: tuple[Any, ...] | None = None
    min_value: int | None = None
    max_value: int | None = None
    min_length: int | None = None
    max_length: int | None = None


@dataclass(frozen=True)
class Variable:
    """A template variable; printed only where something uses it."""

    name: str
    value: Any


@dataclass(frozen=True)
class Resource:
    """A resource the template declares (creates or updates)."""

    row: ResourceType
    body: Mapping[str, Any]
    """Everything but type, api-version, name and parent: location, tags, kind, sku, properties."""


@dataclass(frozen=True)
class Output:
    """A template output."""

    name: str
    type: str
    value: Any


# The table's rows in deployment order, the storage account's file service after the account.
ROW_ORDER: tuple[ResourceType, ...] = tuple(
    r for row in RESOURCES.values() for r in ((row, FILE_SERVICE) if row is FILE_SERVICE.parent else (row,))
)


def references(value: Any) -> Iterator[Any]:
    """Every expression node in ``value``, depth first (a node before the nodes inside it)."""
    if isinstance(value, dict):
        for item in value.values():
            yield from references(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from references(item)
    elif isinstance(value, Commented):
        yield from references(value.value)
    elif isinstance(value, (Param, Var, ResourceId, ResourceName, Properties, ListKeys)):
        yield value
    elif isinstance(value, Call):
        yield value
        yield from references(value.args)
    elif isinstance(value, (Member, Index)):
        yield value
        yield from references(value.target)
        if isinstance(value, Index):
            yield from references(value.index)
    elif isinstance(value, Coalesce):
        yield value
        yield from references((value.first, value.second))
    elif isinstance(value, Cond):
        yield value
        yield from references((value.test, value.then, value.otherwise))
    elif isinstance(value, Equals):
        yield value
        yield from references((value.left, value.right))
    elif isinstance(value, Interp):
        yield value
        yield from references(value.parts)


_SYMBOLIC = (ResourceId, Properties, ListKeys)


@dataclass(frozen=True)
class Template:
    """One deployment template, independent of the language it is printed in."""

    description: str
    metadata: Mapping[str, Any]
    """What azinfer records about the template (ARM JSON's ``metadata.azinfer``; Bicep's notes say it in words)."""
    parameters: tuple[Parameter, ...]
    variables: tuple[Variable, ...]
    names: Mapping[ResourceType, Any]
    """Each row's name (the last segment, for a child), as an expression."""
    resources: tuple[Resource, ...]
    outputs: tuple[Output, ...]
    notes: tuple[str, ...] = field(default=())
    """Lines that open the Bicep file (how to deploy it)."""

    def name(self, row: ResourceType) -> Any:
        """The name expression of ``row``."""
        return row.fixed_name if row.fixed_name is not None else self.names[row]

    def variable(self, name: str) -> Variable:
        """The variable called ``name``."""
        return next(v for v in self.variables if v.name == name)

    @cached_property
    def existing(self) -> tuple[ResourceType, ...]:
        """The rows Bicep declares ``existing``: reused resources referred to by symbol, and their parents."""
        declared = {r.row for r in self.resources}
        wanted = {node.row for node in self._walk(self._bodies()) if isinstance(node, _SYMBOLIC)} - declared
        for row in (*declared, *tuple(wanted)):
            parent = row.parent
            while parent is not None and parent not in declared:
                wanted.add(parent)
                parent = parent.parent
        return tuple(row for row in ROW_ORDER if row in wanted)

    @cached_property
    def nodes(self) -> tuple[Any, ...]:
        """Every expression node the template uses: in names, bodies and outputs, and in the variables they use."""
        rows = (*(r.row for r in self.resources), *self.existing)
        return tuple(self._walk([self.name(row) for row in rows] + self._bodies()))

    def _bodies(self) -> list[Any]:
        return [dict(r.body) for r in self.resources] + [o.value for o in self.outputs]

    def _walk(self, value: Any) -> Iterator[Any]:
        """The nodes of ``value``, and of the variables and names they refer to (each once)."""
        seen: set[Any] = set()
        pending = [value]
        while pending:
            for node in references(pending.pop()):
                yield node
                if isinstance(node, Var) and node not in seen:
                    seen.add(node)
                    pending.append(self.variable(node.name).value)
                elif isinstance(node, ResourceName) and node not in seen:
                    seen.add(node)
                    pending.append(self.name(node.row))

    def dependencies(self, resource: Resource) -> tuple[ResourceType, ...]:
        """The declared resources ``resource`` waits for: its parent and those its body refers to."""
        declared = {r.row for r in self.resources}
        wanted = {node.row for node in references(dict(resource.body))
                  if isinstance(node, (*_SYMBOLIC, ResourceName))}
        if resource.row.parent is not None:
            wanted.add(resource.row.parent)
        return tuple(row for row in ROW_ORDER if row in wanted and row in declared and row is not resource.row)

    @cached_property
    def used_parameters(self) -> frozenset[str]:
        """The parameters the resources and outputs use."""
        return frozenset(node.name for node in self.nodes if isinstance(node, Param))

    @cached_property
    def used_variables(self) -> tuple[Variable, ...]:
        """The variables the resources and outputs use, in declaration order."""
        used = {node.name for node in self.nodes if isinstance(node, Var)}
        return tuple(v for v in self.variables if v.name in used)
