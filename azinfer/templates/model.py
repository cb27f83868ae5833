"""The template model: one structure that both printers (ARM JSON and Bicep) render.

A :class:`Template` holds parameters, variables, resources and outputs.
Values are plain JSON values (str, int, bool, None, list, dict) in which
expression nodes may appear anywhere: references to parameters and variables,
function calls, operators, and references to resources of the template by
their row of the resource table (their id, name, runtime properties, keys).
Each node (a :class:`Node`) prints itself in both languages (``if(a, b, c)``
or ``a ? b : c``; ``resourceId(...)`` or a symbol's ``.id``), so a new node is
one class; the printers handle plain JSON values and the layout. The two
files cannot say different things unless a node prints itself wrong, and
``tests/test_template_equality.py`` checks that they do not.

What the model derives rather than stores:

- which resources Bicep must declare ``existing`` (:meth:`Template.existing`):
  the reused ones referred to by symbol, and the parents of declared children;
- each resource's dependencies (:meth:`Template.dependencies`): the declared
  resources its body refers to, and its parent. Bicep infers them from the
  symbols; the ARM printer writes them as ``dependsOn``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any, ClassVar, Protocol

from azinfer.resources import FILE_SERVICE, RESOURCES, ResourceType

__all__ = [
    "Node",
    "ArmWriter",
    "BicepWriter",
    "Param",
    "Var",
    "Call",
    "Member",
    "Index",
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


class ArmWriter(Protocol):
    """What the ARM JSON printer offers the nodes that print themselves."""

    def expr(self, node: Any) -> str:
        """Any value as an ARM expression (the text inside ``[...]``)."""

    def name(self, row: ResourceType) -> str:
        """A row's own name: its fixed name, or its name variable."""

    def resource_id(self, row: ResourceType) -> str:
        """``resourceId(type, names...)`` of a row."""


class BicepWriter(Protocol):
    """What the Bicep printer offers the nodes that print themselves."""

    def expr(self, node: Any, depth: int) -> str:
        """Any value as a Bicep expression, objects and arrays indented ``depth`` levels."""

    def operand(self, node: Any, depth: int) -> str:
        """An operator's operand, in parentheses when it is an operator itself."""

    def name(self, row: ResourceType, depth: int) -> str:
        """A row's own name: ``symbol.name`` when the file declares the row, else its name expression."""


@dataclass(frozen=True)
class Node(ABC):
    """An expression node: it prints itself in both languages, so a new node is one class.

    A node's fields are its parts; the values among them (not names, not rows) are walked by
    :func:`references`.
    """

    operator: ClassVar[bool] = False
    """Bicep writes it with an operator (``?:``, ``==``): as an operand it goes in parentheses."""

    @abstractmethod
    def arm(self, out: ArmWriter) -> str:
        """The node as an ARM expression."""

    @abstractmethod
    def bicep(self, out: BicepWriter, depth: int) -> str:
        """The node as a Bicep expression."""

    def children(self) -> tuple[Any, ...]:
        """The node's fields, in order (a name or a row holds no node, so walking it finds none)."""
        return tuple(getattr(self, f.name) for f in fields(self))


@dataclass(frozen=True)
class Param(Node):
    """A template parameter's value."""

    name: str

    def arm(self, out: ArmWriter) -> str:
        return f"parameters('{self.name}')"

    def bicep(self, out: BicepWriter, depth: int) -> str:
        return self.name


@dataclass(frozen=True)
class Var(Node):
    """A template variable's value."""

    name: str

    def arm(self, out: ArmWriter) -> str:
        return f"variables('{self.name}')"

    def bicep(self, out: BicepWriter, depth: int) -> str:
        return self.name


@dataclass(frozen=True)
class Call(Node):
    """A function both languages spell the same (``uniqueString``, ``join``, ``resourceGroup``...)."""

    name: str
    args: tuple[Any, ...] = ()

    def arm(self, out: ArmWriter) -> str:
        return f"{self.name}({', '.join(out.expr(a) for a in self.args)})"

    def bicep(self, out: BicepWriter, depth: int) -> str:
        return f"{self.name}({', '.join(out.expr(a, depth) for a in self.args)})"


@dataclass(frozen=True)
class Member(Node):
    """``target.name``."""

    target: Any
    name: str

    def arm(self, out: ArmWriter) -> str:
        return f"{out.expr(self.target)}.{self.name}"

    def bicep(self, out: BicepWriter, depth: int) -> str:
        return f"{out.operand(self.target, depth)}.{self.name}"


@dataclass(frozen=True)
class Index(Node):
    """``target[index]``."""

    target: Any
    index: Any

    def arm(self, out: ArmWriter) -> str:
        return f"{out.expr(self.target)}[{out.expr(self.index)}]"

    def bicep(self, out: BicepWriter, depth: int) -> str:
        return f"{out.operand(self.target, depth)}[{out.expr(self.index, depth)}]"


@dataclass(frozen=True)
class Cond(Node):
    """ARM ``if(test, then, otherwise)``, Bicep ``test ? then : otherwise``."""

    test: Any
    then: Any
    otherwise: Any
    operator: ClassVar[bool] = True

    def arm(self, out: ArmWriter) -> str:
        return f"if({out.expr(self.test)}, {out.expr(self.then)}, {out.expr(self.otherwise)})"

    def bicep(self, out: BicepWriter, depth: int) -> str:
        return (f"{out.operand(self.test, depth)} ? {out.operand(self.then, depth)} : "
                f"{out.operand(self.otherwise, depth)}")


@dataclass(frozen=True)
class Equals(Node):
    """ARM ``equals(a, b)``, Bicep ``a == b``."""

    left: Any
    right: Any
    operator: ClassVar[bool] = True

    def arm(self, out: ArmWriter) -> str:
        return f"equals({out.expr(self.left)}, {out.expr(self.right)})"

    def bicep(self, out: BicepWriter, depth: int) -> str:
        return f"{out.operand(self.left, depth)} == {out.operand(self.right, depth)}"


@dataclass(frozen=True)
class Interp(Node):
    """A string built of literal parts and values: ARM ``format('a{0}', x)``, Bicep ``'a${x}'``."""

    parts: tuple[Any, ...]

    def arm(self, out: ArmWriter) -> str:
        fmt = ""
        args: list[Any] = []
        for part in self.parts:
            if isinstance(part, str):
                fmt += part.replace("{", "{{").replace("}", "}}")
            else:
                fmt += f"{{{len(args)}}}"
                args.append(part)
        return f"format({', '.join([out.expr(fmt), *(out.expr(a) for a in args)])})"

    def bicep(self, out: BicepWriter, depth: int) -> str:
        # A literal part is a string literal without its quotes; a value is a ${...} hole.
        text = "".join(
            out.expr(p, depth)[1:-1] if isinstance(p, str) else "${" + out.expr(p, depth) + "}" for p in self.parts
        )
        return f"'{text}'"


@dataclass(frozen=True)
class ResourceId(Node):
    """A resource's id: ARM ``resourceId(type, names...)``, Bicep ``symbol.id``."""

    row: ResourceType

    def arm(self, out: ArmWriter) -> str:
        return out.resource_id(self.row)

    def bicep(self, out: BicepWriter, depth: int) -> str:
        return f"{self.row.symbol}.id"


@dataclass(frozen=True)
class ResourceName(Node):
    """A resource's own name (a child's last segment): ARM its name variable, Bicep ``symbol.name``."""

    row: ResourceType

    def arm(self, out: ArmWriter) -> str:
        return out.name(self.row)

    def bicep(self, out: BicepWriter, depth: int) -> str:
        return out.name(self.row, depth)


@dataclass(frozen=True)
class Properties(Node):
    """A resource's runtime properties: ARM ``reference(id, api-version)``, Bicep ``symbol.properties``."""

    row: ResourceType

    def arm(self, out: ArmWriter) -> str:
        return f"reference({out.resource_id(self.row)}, '{self.row.api_version}')"

    def bicep(self, out: BicepWriter, depth: int) -> str:
        return f"{self.row.symbol}.properties"


@dataclass(frozen=True)
class ListKeys(Node):
    """A resource's keys: ARM ``listKeys(id, api-version)``, Bicep ``symbol.listKeys()``."""

    row: ResourceType

    def arm(self, out: ArmWriter) -> str:
        return f"listKeys({out.resource_id(self.row)}, '{self.row.api_version}')"

    def bicep(self, out: BicepWriter, depth: int) -> str:
        return f"{self.row.symbol}.listKeys()"


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
    """A template parameter with its constraints.

    None is nullable: an optional parameter has a default. A nullable type would make Bicep emit
    ``languageVersion`` 2.0 (symbolic names), which the ARM printer does not write.
    """

    name: str
    type: str
    """``string``, ``int``, ``bool``, ``array`` or ``object``."""
    description: str
    default: Any = NO_DEFAULT
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
    elif isinstance(value, Node):
        yield value
        yield from references(value.children())


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
