"""Reading a rendered ARM template and a rendered Bicep file into one comparable form.

Each side is parsed from its printed text, not from azinfer's template model:
ARM expressions with the emulator's ARM expression parser, Bicep with pycep.
Both become the same normal form:

- parameters: type, secure, nullable, default, allowed values, bounds, description;
- resources, keyed by ARM type: api-version, ``existing``, name (each segment),
  the other ARM types it depends on, and its whole body (every property);
- outputs: type and value;
- the language version: the ARM template's ``languageVersion`` (1.0 when
  absent), and for Bicep the one Bicep would emit for it: 2.0 as soon as a
  type is nullable (Azure/bicep ``src/Bicep.Core/Emit/EmitterSettings.cs``,
  the ``NullableTypeSyntax`` case), else 1.0.

Values are JSON, expressions are tuples: ``("param", name)``,
``("call", function, *args)`` with Bicep's operators as ARM's functions
(``??`` -> ``coalesce``, ``?:`` -> ``if``, ``==`` -> ``equals``, ``'a${x}'`` ->
``format('a{0}', x)``, object and array literals -> plain JSON), variables
inlined, ``("prop", target, name)``, ``("index", target, index)``, and a
resource as ``("resourceId" | "reference" | "listKeys", type, segments[, api])``
(Bicep's ``symbol.id``, ``symbol.properties``, ``symbol.listKeys()``;
``symbol.name`` is the symbol's name expression). :func:`differences` lists
every path where two normal forms disagree.

pycep's grammar has no operator precedence: it reads ``a.b ? c : d`` as
``a.(b ? c : d)`` (undone here, ``.`` binds tightest) and ``a != b && c`` as
``a != (b && c)`` (not undone: the Bicep printer puts an operand that is
itself an operator in parentheses, which pycep keeps).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pycep import BicepParser

from azinfer.local.emulator.expressions import Call, Index, Literal, Prop, is_expression, parse

__all__ = ["arm_form", "bicep_form", "differences", "show"]


# ---------------------------------------------------------------------------
# ARM JSON


def _freeze(value: Any) -> Any:
    """A hashable copy (resource names are dictionary keys)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


class _Arm:
    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template
        self.variables = template.get("variables", {})

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            if is_expression(value):
                return self.node(parse(value[1:-1]))
            return value[1:] if value.startswith("[[") else value
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def node(self, node: Any) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Prop):
            return ("prop", self.node(node.target), node.name)
        if isinstance(node, Index):
            return ("index", self.node(node.target), self.node(node.index))
        assert isinstance(node, Call), node
        name = node.name.lower()
        args = [self.node(a) for a in node.args]
        if name == "parameters":
            return ("param", args[0])
        if name == "variables":
            return self.value(self.variables[args[0]])
        if name == "createobject":
            return dict(zip(args[::2], args[1::2]))
        if name == "createarray":
            return list(args)
        if name in ("true", "false"):
            return name == "true"
        if name == "null":
            return None
        if name == "resourceid":
            return ("resourceId", args[0], _freeze(args[1:]))
        if name in ("reference", "listkeys"):
            target = args[0]
            assert target[0] == "resourceId", f"{name} of {show(target)}"
            return ("reference" if name == "reference" else "listKeys", target[1], target[2], args[1])
        return ("call", name, *args)

    def segments(self, type_: str, name: Any) -> tuple[Any, ...]:
        """A resource's name, one item per segment (``account/default/share`` is three)."""
        count = type_.count("/")
        if count == 1:
            return (_freeze(name),)
        assert isinstance(name, tuple) and name[:2] == ("call", "format"), f"{type_} name {show(name)}"
        fmt, *args = name[2:]
        parts = fmt.split("/")
        assert len(parts) == count, f"{type_} name {fmt!r}"
        return tuple(
            _freeze(args[int(part[1:-1])]) if re.fullmatch(r"\{\d+\}", part) else part for part in parts
        )

    def form(self) -> dict[str, Any]:
        t = self.template
        resources: dict[str, Any] = {}
        for raw in t.get("resources", []):
            body = {k: self.value(v) for k, v in raw.items() if k not in ("type", "apiVersion", "name", "dependsOn")}
            depends = [self.value(d) for d in raw.get("dependsOn", [])]
            _add(resources, raw["type"], {
                "apiVersion": raw["apiVersion"],
                "existing": False,
                "name": self.segments(raw["type"], self.value(raw["name"])),
                "dependsOn": sorted(d[1] for d in depends),
                "body": body,
            })
        for raw in t.get("metadata", {}).get("azinfer", {}).get("existing", []):
            _add(resources, raw["type"], {
                "apiVersion": raw["apiVersion"],
                "existing": True,
                "name": self.segments(raw["type"], self.value(raw["name"])),
                "dependsOn": [],
                "body": {},
            })
        parameters = {}
        for name, p in t.get("parameters", {}).items():
            parameters[name] = _parameter(
                type_="string" if p["type"] == "securestring" else p["type"],
                secure=p["type"] == "securestring",
                nullable=bool(p.get("nullable", False)),
                default=self.value(p["defaultValue"]) if "defaultValue" in p else "<none>",
                allowed=p.get("allowedValues"),
                bounds={k: p[k] for k in ("minValue", "maxValue", "minLength", "maxLength") if k in p},
                description=p.get("metadata", {}).get("description"),
            )
        outputs = {name: {"type": o["type"], "value": self.value(o["value"])} for name, o in t.get("outputs", {}).items()}
        return {"languageVersion": t.get("languageVersion", "1.0"), "parameters": parameters, "resources": resources,
                "outputs": outputs}


def _add(resources: dict[str, Any], type_: str, entry: dict[str, Any]) -> None:
    assert type_ not in resources, f"two resources of type {type_}"
    resources[type_] = entry


def _parameter(*, type_: str, secure: bool, nullable: bool, default: Any, allowed: Any,
               bounds: dict[str, int], description: Any) -> dict[str, Any]:
    return {"type": type_, "secure": secure, "nullable": nullable, "default": default, "allowed": allowed,
            "bounds": bounds, "description": description}


def arm_form(template: dict[str, Any]) -> dict[str, Any]:
    """The normal form of an ARM template (parsed JSON)."""
    return _Arm(template).form()


# ---------------------------------------------------------------------------
# Bicep (pycep)

_ESCAPES = {"\\": "\\", "'": "'", "n": "\n", "r": "\r", "t": "\t", "$": "$"}
# Bicep's binary operators as the ARM functions they compile to (``!=`` is ``not(equals())``, below).
_OPERATORS = {"coalesce": "coalesce", "equals": "equals", "and": "and", "or": "or", "greater_than": "greater",
              "greater_than_or_equals": "greaterorequals", "less_than": "less", "less_than_or_equals": "lessorequals"}


# One parser for every read: building one compiles the grammar (a tenth of a second, once per ``${...}`` hole).
_PARSER = BicepParser()


def _is_identifier(value: Any) -> bool:
    """pycep returns identifiers as a ``str`` subclass and string literals as plain ``str``."""
    return isinstance(value, str) and type(value) is not str


class _Bicep:
    def __init__(self, text: str) -> None:
        self.text = text
        self.parsed = _PARSER.parse(text=text)
        self.parameters = self.parsed.get("parameters", {})
        self.variables = self.parsed.get("variables", {})
        self.resources = self.parsed.get("resources", {})
        self.refs: set[str] = set()
        """Symbols referred to while reading the current resource (its implicit dependencies)."""
        self.used: set[str] = set()
        """Parameters and variables referred to anywhere."""

    # strings: pycep leaves escapes and ${...} as written

    def string(self, raw: str) -> Any:
        fmt, args, i = "", [], 0
        while i < len(raw):
            c = raw[i]
            if c == "\\":
                nxt = raw[i + 1]
                if nxt == "u":
                    end = raw.index("}", i)
                    fmt += chr(int(raw[i + 3 : end], 16))
                    i = end + 1
                    continue
                fmt += _ESCAPES[nxt].replace("{", "{{")
                i += 2
            elif raw.startswith("${", i):
                depth, j = 1, i + 2
                while depth:
                    depth += {"{": 1, "}": -1}.get(raw[j], 0)
                    j += 1
                hole = _PARSER.parse(text=f"var hole = {raw[i + 2 : j - 1]}\n")["variables"]["hole"]["value"]
                fmt += f"{{{len(args)}}}"
                args.append(self.value(hole))
                i = j
            else:
                fmt += "{{" if c == "{" else "}}" if c == "}" else c
                i += 1
        if not args:
            return fmt.replace("{{", "{").replace("}}", "}")
        return ("call", "format", fmt, *args)

    def key(self, key: str) -> str:
        if key.startswith("'"):
            result = self.string(key[1:-1])
            assert isinstance(result, str)
            return result
        return key

    def value(self, value: Any) -> Any:
        if _is_identifier(value):
            return self.identifier(str(value))
        if isinstance(value, str):
            return self.string(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            if "operator" in value and len(value) == 1:
                return self.operator(value["operator"])
            if "function" in value and len(value) == 1:
                return self.function(value["function"])
            return {self.key(k): self.value(v) for k, v in value.items()}
        return value

    def identifier(self, name: str) -> Any:
        if name in self.parameters:
            self.used.add(name)
            return ("param", name)
        if name in self.variables:
            self.used.add(name)
            return self.value(self.variables[name]["value"])
        raise AssertionError(f"unknown identifier {name!r} in the Bicep file")

    def function(self, func: dict[str, Any]) -> Any:
        args = list((func.get("parameters") or {}).values())
        while args and args[-1] is None:
            args.pop()
        return ("call", func["type"].replace("_", "").lower(), *(self.value(a) for a in args))

    def operator(self, op: dict[str, Any]) -> Any:
        kind, operands = op["type"], op["operands"]
        if kind == "property_accessor":
            return self.attach(self.value_or_symbol(operands["operand_1"]), operands["operand_2"])
        if kind == "function_accessor":
            return self.method(self.value_or_symbol(operands["operand_1"]), operands["func_name"])
        if kind == "index_accessor":
            return ("index", self.value_or_symbol(operands["operand_1"]), self.value(operands["operand_2"]))
        if kind == "conditional":
            return ("call", "if", self.value(operands["condition"]), self.value(operands["true_value"]),
                    self.value(operands["false_value"]))
        if kind == "not":
            return ("call", "not", self.value(operands["bool_value"]))
        return self.binary(kind, self.value(operands["operand_1"]), self.value(operands["operand_2"]))

    def binary(self, kind: str, left: Any, right: Any) -> Any:
        if kind == "not_equals":
            return ("call", "not", ("call", "equals", left, right))
        return ("call", _OPERATORS[kind], left, right)

    def value_or_symbol(self, value: Any) -> Any:
        if _is_identifier(value) and str(value) in self.resources:
            return ("symbol", str(value))
        return self.value(value)

    def attach(self, target: Any, member: Any) -> Any:
        """``target.member``. pycep parses ``a.b ? c : d`` as ``a.(b ? c : d)`` and ``a.b.c`` as ``a.(b.c)``;
        ``.`` binds tightest, so the access goes to the leftmost operand of what pycep put on its right."""
        if _is_identifier(member):
            return self.access(target, str(member))
        op = member["operator"]
        kind, operands = op["type"], op["operands"]
        if kind == "property_accessor":
            return self.attach(self.attach(target, operands["operand_1"]), operands["operand_2"])
        if kind == "index_accessor":
            return ("index", self.attach(target, operands["operand_1"]), self.value(operands["operand_2"]))
        if kind == "function_accessor":
            return self.method(self.attach(target, operands["operand_1"]), operands["func_name"])
        if kind == "conditional":
            return ("call", "if", self.attach(target, operands["condition"]), self.value(operands["true_value"]),
                    self.value(operands["false_value"]))
        return self.binary(kind, self.attach(target, operands["operand_1"]), self.value(operands["operand_2"]))

    def access(self, target: Any, name: str) -> Any:
        if isinstance(target, tuple) and target[0] == "symbol":
            symbol = target[1]
            self.refs.add(symbol)
            if name == "id":
                return ("resourceId", self.type(symbol), self.segments(symbol))
            if name == "name":
                return self.value(self.resources[symbol]["config"]["name"])
            if name == "properties":
                return ("reference", self.type(symbol), self.segments(symbol), self.api(symbol))
            raise AssertionError(f"{symbol}.{name} is not supported")
        return ("prop", target, name)

    def method(self, target: Any, name: str) -> Any:
        assert isinstance(target, tuple) and target[0] == "symbol" and name == "listKeys", (target, name)
        self.refs.add(target[1])
        return ("listKeys", self.type(target[1]), self.segments(target[1]), self.api(target[1]))

    def type(self, symbol: str) -> str:
        return str(self.resources[symbol]["type"])

    def api(self, symbol: str) -> str:
        return str(self.resources[symbol]["api_version"])

    def segments(self, symbol: str) -> tuple[Any, ...]:
        config = self.resources[symbol]["config"]
        own = _freeze(self.value(config["name"]))
        parent = config.get("parent")
        return (*self.segments(str(parent)), own) if parent else (own,)

    def form(self) -> dict[str, Any]:
        resources: dict[str, Any] = {}
        for symbol, raw in self.resources.items():
            config = dict(raw["config"])
            assert "depends_on" not in config and "dependsOn" not in config, f"{symbol} has an explicit dependsOn"
            self.refs = {str(config["parent"])} if config.get("parent") else set()
            body = {self.key(k): self.value(v) for k, v in config.items() if k not in ("name", "parent")}
            depends = sorted(self.type(s) for s in self.refs if not self.resources[s]["existing"] and s != symbol)
            _add(resources, self.type(symbol), {
                "apiVersion": self.api(symbol),
                "existing": bool(raw["existing"]),
                "name": self.segments(symbol),
                "dependsOn": depends,
                "body": body,
            })
        declared = _declared_parameters(self.text)
        parameters = {}
        for name, p in self.parameters.items():
            decorators = {d["type"]: d.get("argument") for d in p.get("decorators", [])}
            bounds = {arm: decorators[key] for key, arm in (("min_value", "minValue"), ("max_value", "maxValue"),
                                                            ("min_length", "minLength"), ("max_length", "maxLength"))
                      if key in decorators}
            default = p.get("default")
            parameters[name] = _parameter(
                type_=p["type"],
                secure="secure" in decorators,
                nullable=declared[name],
                default="<none>" if default is None else self.value(default),
                allowed=[self.value(v) for v in decorators["allowed"]] if "allowed" in decorators else None,
                bounds=bounds,
                description=self.string(decorators["description"]) if "description" in decorators else None,
            )
        outputs = {name: {"type": o["type"], "value": self.value(o["value"])}
                   for name, o in self.parsed.get("outputs", {}).items()}
        return {"languageVersion": "2.0" if any(declared.values()) else "1.0", "parameters": parameters,
                "resources": resources, "outputs": outputs}


def _declared_parameters(text: str) -> dict[str, bool]:
    """Parameter name -> whether its type is nullable (``string?``): pycep drops the ``?``."""
    return {m.group(1): bool(m.group(2)) for m in re.finditer(r"^param (\w+) \w+(\?)?", text, re.M)}


def bicep_form(text: str) -> dict[str, Any]:
    """The normal form of a Bicep file's text."""
    return _Bicep(text).form()


def unused_bicep_names(text: str) -> tuple[list[str], list[str]]:
    """The variables and the parameters a Bicep file declares and never uses."""
    reader = _Bicep(text)
    reader.form()
    variables = [v for v in reader.variables if v not in reader.used]
    parameters = [p for p in reader.parameters if p not in reader.used]
    return variables, parameters


# ---------------------------------------------------------------------------
# Comparing


def show(value: Any) -> str:
    """A normal-form value in words (expressions in ARM's syntax)."""
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        head, *rest = value
        if head == "param":
            return f"parameters('{rest[0]}')"
        if head == "call":
            return f"{rest[0]}({', '.join(show(a) for a in rest[1:])})"
        if head == "prop":
            return f"{show(rest[0])}.{rest[1]}"
        if head == "index":
            return f"{show(rest[0])}[{show(rest[1])}]"
        if head in ("resourceId", "reference", "listKeys"):
            return f"{head}({rest[0]}, {'/'.join(show(s) for s in rest[1])}{', ' + rest[2] if len(rest) > 2 else ''})"
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value, default=str)


def differences(arm: Any, bicep: Any, path: str = "") -> list[str]:
    """Every path where the two normal forms disagree, as ``path: ARM ... | Bicep ...``."""
    if isinstance(arm, dict) and isinstance(bicep, dict):
        out = []
        for key in list(arm) + [k for k in bicep if k not in arm]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in bicep:
                out.append(f"{sub}: only in ARM JSON ({show(arm[key])})")
            elif key not in arm:
                out.append(f"{sub}: only in Bicep ({show(bicep[key])})")
            else:
                out += differences(arm[key], bicep[key], sub)
        return out
    if isinstance(arm, list) and isinstance(bicep, list) and len(arm) == len(bicep):
        return [d for i, (a, b) in enumerate(zip(arm, bicep)) for d in differences(a, b, f"{path}[{i}]")]
    if arm == bicep and type(arm) is type(bicep):
        return []
    return [f"{path}: ARM JSON {show(arm)} | Bicep {show(bicep)}"]


def read_pair(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The normal forms of ``inference.json`` and ``inference.bicep`` in ``folder``."""
    return arm_form(json.loads((folder / "inference.json").read_text())), bicep_form((folder / "inference.bicep").read_text())
