"""ARM template expression language: tokenizer, parser and evaluator.

A template string is an expression when it starts with ``[`` and ends with
``]``; a string starting with ``[[`` is the literal with one ``[`` removed.
Grammar (as ARM documents it)::

    expr     := primary accessor*
    primary  := STRING | NUMBER | IDENT '(' [expr (',' expr)*] ')' | IDENT
    accessor := '.' IDENT | '[' expr ']'

Identifiers ``null``, ``true`` and ``false`` are literals.  Functions are
resolved case-insensitively.  Functions that need deployment state
(``reference``, ``listKeys``, ``resourceGroup`` ...) call back into a
:class:`Context`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ExpressionError",
    "Unknown",
    "Context",
    "tokenize",
    "parse",
    "is_expression",
    "evaluate_string",
    "evaluate_value",
    "to_arm_string",
]


class ExpressionError(Exception):
    """A template expression that cannot be parsed or evaluated (ARM: InvalidTemplate)."""


class Unknown:
    """A value only known at deployment time (what-if of a reference to a resource not yet there).

    Accessing a property or calling a function on it gives another Unknown; it
    renders as the expression text, as ARM's what-if shows such values.
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Unknown({self.text!r})"


# ---------------------------------------------------------------------------
# Tokenizer


@dataclass(frozen=True)
class Token:
    kind: str  # 'str', 'num', 'ident', or one of '(),.[]'
    value: Any
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "(),.[]":
            tokens.append(Token(c, c, i))
            i += 1
        elif c == "'":
            start = i
            i += 1
            buf = []
            while True:
                if i >= n:
                    raise ExpressionError(f"unterminated string literal at position {start} in {text!r}")
                if text[i] == "'":
                    if i + 1 < n and text[i + 1] == "'":
                        buf.append("'")
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(text[i])
                i += 1
            tokens.append(Token("str", "".join(buf), start))
        elif c.isdigit() or (c == "-" and i + 1 < n and text[i + 1].isdigit()):
            start = i
            i += 1
            while i < n and text[i].isdigit():
                i += 1
            if i < n and text[i] == "." and i + 1 < n and text[i + 1].isdigit():
                i += 1
                while i < n and text[i].isdigit():
                    i += 1
                tokens.append(Token("num", float(text[start:i]), start))
            else:
                tokens.append(Token("num", int(text[start:i]), start))
        elif c.isalpha() or c == "_" or c == "$":
            start = i
            while i < n and (text[i].isalnum() or text[i] in "_$"):
                i += 1
            tokens.append(Token("ident", text[start:i], start))
        else:
            raise ExpressionError(f"unexpected character {c!r} at position {i} in {text!r}")
    return tokens


# ---------------------------------------------------------------------------
# AST


@dataclass
class Literal:
    value: Any


@dataclass
class Call:
    name: str
    args: list[Any] = field(default_factory=list)


@dataclass
class Prop:
    target: Any
    name: str


@dataclass
class Index:
    target: Any
    index: Any


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, kind: str | None = None) -> Token:
        tok = self.peek()
        if tok is None:
            raise ExpressionError(f"unexpected end of expression {self.text!r}")
        if kind is not None and tok.kind != kind:
            raise ExpressionError(
                f"expected {kind!r} at position {tok.pos} in {self.text!r}, got {tok.value!r}"
            )
        self.i += 1
        return tok

    def parse(self) -> Any:
        node = self.expr()
        tok = self.peek()
        if tok is not None:
            raise ExpressionError(f"unexpected {tok.value!r} at position {tok.pos} in {self.text!r}")
        return node

    def expr(self) -> Any:
        node = self.primary()
        while True:
            tok = self.peek()
            if tok is None:
                return node
            if tok.kind == ".":
                self.take()
                name = self.take("ident").value
                node = Prop(node, name)
            elif tok.kind == "[":
                self.take()
                idx = self.expr()
                self.take("]")
                node = Index(node, idx)
            else:
                return node

    def primary(self) -> Any:
        tok = self.take()
        if tok.kind in ("str", "num"):
            return Literal(tok.value)
        if tok.kind == "ident":
            nxt = self.peek()
            if nxt is not None and nxt.kind == "(":
                self.take("(")
                args: list[Any] = []
                if (after := self.peek()) is not None and after.kind == ")":
                    self.take(")")
                    return Call(tok.value, args)
                while True:
                    args.append(self.expr())
                    sep = self.take()
                    if sep.kind == ")":
                        break
                    if sep.kind != ",":
                        raise ExpressionError(
                            f"expected ',' or ')' at position {sep.pos} in {self.text!r}"
                        )
                return Call(tok.value, args)
            low = tok.value.lower()
            if low == "null":
                return Literal(None)
            if low == "true":
                return Literal(True)
            if low == "false":
                return Literal(False)
            raise ExpressionError(f"unknown identifier {tok.value!r} at position {tok.pos} in {self.text!r}")
        raise ExpressionError(f"unexpected {tok.value!r} at position {tok.pos} in {self.text!r}")


def parse(text: str) -> Any:
    """Parse the inside of ``[...]`` into an AST."""
    return _Parser(text).parse()


def is_expression(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) >= 2
        and value.startswith("[")
        and value.endswith("]")
        and not value.startswith("[[")
    )


# ---------------------------------------------------------------------------
# Evaluation


class Context:
    """What the functions need from the deployment. Subclassed by the deployment engine."""

    def __init__(
        self,
        parameters: dict[str, Any] | None = None,
        variables: dict[str, Any] | None = None,
        *,
        subscription_id: str = "00000000-0000-0000-0000-000000000000",
        resource_group: str = "rg",
        location: str = "eastus",
        tenant_id: str = "00000000-0000-0000-0000-000000000000",
        deployment_name: str = "deployment",
    ) -> None:
        self.parameters = parameters or {}
        self.raw_variables = variables or {}
        self._variables: dict[str, Any] = {}
        self._evaluating: set[str] = set()
        self.subscription_id = subscription_id
        self.resource_group_name = resource_group
        self.location = location
        self.tenant_id = tenant_id
        self.deployment_name = deployment_name

    # hooks ------------------------------------------------------------
    def parameter(self, name: str) -> Any:
        for key, value in self.parameters.items():
            if key.lower() == name.lower():
                return value
        raise ExpressionError(f"The template parameter '{name}' is not found.")

    def variable(self, name: str) -> Any:
        key = next((k for k in self.raw_variables if k.lower() == name.lower()), None)
        if key is None:
            raise ExpressionError(f"The template variable '{name}' is not found.")
        if key in self._variables:
            return self._variables[key]
        if key in self._evaluating:
            raise ExpressionError(f"The template variable '{name}' references itself.")
        self._evaluating.add(key)
        try:
            value = evaluate_value(self.raw_variables[key], self)
        finally:
            self._evaluating.discard(key)
        self._variables[key] = value
        return value

    def resource_group(self) -> dict[str, Any]:
        rg_id = f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group_name}"
        return {
            "id": rg_id,
            "name": self.resource_group_name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": self.location,
            "properties": {"provisioningState": "Succeeded"},
        }

    def subscription(self) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{self.subscription_id}",
            "subscriptionId": self.subscription_id,
            "tenantId": self.tenant_id,
            "displayName": "Emulated subscription",
        }

    def deployment(self) -> dict[str, Any]:
        return {"name": self.deployment_name, "properties": {"templateLink": None}}

    def reference(self, target: str, api_version: str | None, full: bool) -> Any:
        raise ExpressionError("reference() is not available here")

    def list_keys(self, target: str, api_version: str | None, action: str) -> Any:
        raise ExpressionError(f"{action}() is not available here")

    def new_guid(self) -> str:
        return str(uuid.uuid4())

    copy_index: dict[str, int] = {}

    def copy_index_value(self, args: list[Any]) -> int:
        """copyIndex([loopName], [offset])."""
        loop: str | None = None
        offset = 0
        for a in args:
            if isinstance(a, str) and not a.lstrip("-").isdigit():
                loop = a
            else:
                offset = _int(a)
        key = (loop or "").lower()
        if key not in self.copy_index:
            raise ExpressionError("The template function 'copyIndex' is not expected at this location.")
        return self.copy_index[key] + offset

    def utc_now(self, fmt: str | None) -> str:
        import datetime as _dt

        now = _dt.datetime.now(_dt.UTC)
        if fmt in (None, "", "u"):
            return now.strftime("%Y%m%dT%H%M%SZ")
        mapping = [("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S")]
        out = fmt
        for a, b in mapping:
            out = out.replace(a, b)
        return now.strftime(out)


def to_arm_string(value: Any) -> str:
    """ARM's string(): strings as they are, everything else as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return ""
    if isinstance(value, Unknown):
        return value.text
    return json.dumps(value, separators=(",", ":"))


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        return "Object"
    if value is None:
        return "Null"
    return type(value).__name__


def _need(name: str, args: list[Any], lo: int, hi: int | None = None) -> None:
    hi = lo if hi is None else hi
    if not (lo <= len(args) <= (hi if hi >= 0 else 10**9)):
        raise ExpressionError(
            f"The template language function '{name}' got {len(args)} argument(s); "
            f"expected {lo}" + (f" to {hi}" if hi != lo else "")
        )


def _dict_get(obj: dict[str, Any], name: str) -> Any:
    if name in obj:
        return obj[name]
    for key, value in obj.items():
        if key.lower() == name.lower():
            return value
    raise ExpressionError(f"The language expression property '{name}' doesn't exist, available properties are "
                          f"'{', '.join(obj)}'.")


def _access(target: Any, key: Any) -> Any:
    if isinstance(target, Unknown):
        return Unknown(f"{target.text}.{key}" if isinstance(key, str) else f"{target.text}[{key}]")
    if isinstance(target, dict):
        if not isinstance(key, str):
            raise ExpressionError(f"cannot index an object with {_type_name(key)}")
        return _dict_get(target, key)
    if isinstance(target, (list, str)):
        if isinstance(key, bool) or not isinstance(key, int):
            raise ExpressionError(f"cannot index an {_type_name(target)} with {_type_name(key)}")
        if not 0 <= key < len(target):
            raise ExpressionError(f"The language expression index '{key}' is out of bounds.")
        return target[key]
    raise ExpressionError(f"cannot access '{key}' of a {_type_name(target)} value")


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (str, list, dict)):
        return len(value) == 0
    raise ExpressionError(f"empty() takes a string, array or object, got {_type_name(value)}")


def _equals(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _union(*args: Any) -> Any:
    if all(isinstance(a, dict) for a in args):
        out: dict[str, Any] = {}
        for a in args:
            for k, v in a.items():
                if k in out and isinstance(out[k], dict) and isinstance(v, dict):
                    out[k] = _union(out[k], v)
                else:
                    out[k] = v
        return out
    if all(isinstance(a, list) for a in args):
        out_list: list[Any] = []
        for a in args:
            for item in a:
                if item not in out_list:
                    out_list.append(item)
        return out_list
    raise ExpressionError("union() takes all arrays or all objects")


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, str):
        return to_arm_string(item).lower() in container.lower()
    if isinstance(container, list):
        return any(_equals(x, item) for x in container)
    if isinstance(container, dict):
        return any(k.lower() == str(item).lower() for k in container)
    raise ExpressionError(f"contains() takes a string, array or object, got {_type_name(container)}")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ExpressionError("int() cannot convert a Boolean")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ExpressionError(f"int() cannot convert {value!r}") from None
    raise ExpressionError(f"int() cannot convert a {_type_name(value)}")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ExpressionError(f"bool() cannot convert {value!r}")


def _json(value: Any) -> Any:
    if not isinstance(value, str):
        raise ExpressionError("json() takes a string")
    try:
        return json.loads(value)
    except ValueError as exc:
        raise ExpressionError(f"json() got invalid JSON: {exc}") from None


def _substring(s: Any, start: Any = 0, length: Any = None) -> str:
    if not isinstance(s, str):
        raise ExpressionError(f"substring() takes a string, got {_type_name(s)}")
    start = _int(start)
    if start < 0 or start > len(s):
        raise ExpressionError(
            f"The index parameter cannot be less than zero or greater than the length of the string: {start}"
        )
    if length is None:
        return s[start:]
    length = _int(length)
    if length < 0 or start + length > len(s):
        raise ExpressionError(
            "The length parameter cannot be less than zero or extend beyond the end of the string."
        )
    return s[start : start + length]


def _length(value: Any) -> int:
    if isinstance(value, (str, list, dict)):
        return len(value)
    raise ExpressionError(f"length() takes a string, array or object, got {_type_name(value)}")


def _format(fmt: Any, *args: Any) -> str:
    if not isinstance(fmt, str):
        raise ExpressionError("format() takes a format string")
    out = []
    i, n = 0, len(fmt)
    while i < n:
        c = fmt[i]
        if c == "{":
            if i + 1 < n and fmt[i + 1] == "{":
                out.append("{")
                i += 2
                continue
            end = fmt.find("}", i)
            if end < 0:
                raise ExpressionError(f"format(): unclosed '{{' in {fmt!r}")
            spec = fmt[i + 1 : end]
            idx_text, _, _ = spec.partition(":")
            try:
                idx = int(idx_text)
                out.append(to_arm_string(args[idx]))
            except (ValueError, IndexError):
                raise ExpressionError(f"format(): bad placeholder {{{spec}}} in {fmt!r}") from None
            i = end + 1
        elif c == "}":
            if i + 1 < n and fmt[i + 1] == "}":
                i += 1
            out.append("}")
            i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _concat(*args: Any) -> Any:
    if args and all(isinstance(a, list) for a in args):
        out: list[Any] = []
        for a in args:
            out.extend(a)
        return out
    return "".join(to_arm_string(a) for a in args)


def _join(items: Any, sep: Any) -> str:
    if not isinstance(items, list):
        raise ExpressionError("join() takes an array")
    return to_arm_string(sep).join(to_arm_string(x) for x in items)


def _create_object(*args: Any) -> dict[str, Any]:
    if len(args) % 2:
        raise ExpressionError("createObject() takes key/value pairs")
    return {to_arm_string(args[i]): args[i + 1] for i in range(0, len(args), 2)}


def _guid(*args: Any) -> str:
    digest = hashlib.sha1("-".join(to_arm_string(a) for a in args).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


def _unique_string(*args: Any) -> str:
    from azinfer.names import unique_string  # exact ARM algorithm

    return unique_string(*[to_arm_string(a) for a in args])


def _compare(a: Any, b: Any) -> int:
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        raise ExpressionError("comparison of different types")
    return int(a > b) - int(a < b)


_PURE: dict[str, Callable[..., Any]] = {
    "concat": _concat,
    "format": _format,
    "empty": _empty,
    "equals": _equals,
    "not": lambda a: not _bool(a),
    "and": lambda *a: all(_bool(x) for x in a),
    "or": lambda *a: any(_bool(x) for x in a),
    "substring": _substring,
    "tolower": lambda s: to_arm_string(s).lower(),
    "toupper": lambda s: to_arm_string(s).upper(),
    "trim": lambda s: to_arm_string(s).strip(),
    "length": _length,
    "join": _join,
    "split": lambda s, sep: to_arm_string(s).split(to_arm_string(sep)),
    "replace": lambda s, a, b: to_arm_string(s).replace(to_arm_string(a), to_arm_string(b)),
    "startswith": lambda s, p: to_arm_string(s).lower().startswith(to_arm_string(p).lower()),
    "endswith": lambda s, p: to_arm_string(s).lower().endswith(to_arm_string(p).lower()),
    "indexof": lambda s, p: to_arm_string(s).lower().find(to_arm_string(p).lower()),
    "createarray": lambda *a: list(a),
    "array": lambda a: a if isinstance(a, list) else [a],
    "createobject": _create_object,
    "union": _union,
    "string": to_arm_string,
    "int": _int,
    "bool": _bool,
    "json": _json,
    "contains": _contains,
    "first": lambda a: (a[0] if a else None),
    "last": lambda a: (a[-1] if a else None),
    "uniquestring": _unique_string,
    "guid": _guid,
    "base64": lambda s: base64.b64encode(to_arm_string(s).encode()).decode(),
    "base64tostring": lambda s: base64.b64decode(to_arm_string(s)).decode(),
    "add": lambda a, b: _int(a) + _int(b),
    "sub": lambda a, b: _int(a) - _int(b),
    "mul": lambda a, b: _int(a) * _int(b),
    "div": lambda a, b: int(_int(a) / _int(b)),
    "mod": lambda a, b: _int(a) % _int(b),
    "min": lambda *a: min(a[0] if len(a) == 1 and isinstance(a[0], list) else a),
    "max": lambda *a: max(a[0] if len(a) == 1 and isinstance(a[0], list) else a),
    "less": lambda a, b: _compare(a, b) < 0,
    "lessorequals": lambda a, b: _compare(a, b) <= 0,
    "greater": lambda a, b: _compare(a, b) > 0,
    "greaterorequals": lambda a, b: _compare(a, b) >= 0,
    "range": lambda start, count: list(range(_int(start), _int(start) + _int(count))),
    "skip": lambda a, n: a[_int(n):],
    "take": lambda a, n: a[: _int(n)],
    "uri": lambda base, rel: base.rsplit("/", 1)[0] + "/" + rel.lstrip("/") if not base.endswith("/") else base + rel.lstrip("/"),
}

_ARITY: dict[str, tuple[int, int]] = {
    "empty": (1, 1), "equals": (2, 2), "not": (1, 1), "and": (2, -1), "or": (2, -1),
    "substring": (1, 3), "tolower": (1, 1), "toupper": (1, 1), "length": (1, 1), "join": (2, 2),
    "string": (1, 1), "int": (1, 1), "bool": (1, 1), "json": (1, 1), "contains": (2, 2),
    "uniquestring": (1, -1), "format": (1, -1), "concat": (1, -1), "union": (1, -1),
    "createobject": (0, -1), "createarray": (0, -1), "coalesce": (1, -1), "if": (3, 3),
}


def _resource_id(ctx: Context, args: list[Any]) -> str:
    """resourceId([subscriptionId,] [resourceGroupName,] type, name1[, name2...])."""
    args = [to_arm_string(a) for a in args]
    idx = next((i for i, a in enumerate(args) if "/" in a and "." in a.split("/")[0]), None)
    if idx is None:
        raise ExpressionError("resourceId(): no resource type argument (like 'Microsoft.Storage/storageAccounts')")
    sub, rg = ctx.subscription_id, ctx.resource_group_name
    if idx == 2:
        sub, rg = args[0], args[1]
    elif idx == 1:
        rg = args[0]
    elif idx != 0:
        raise ExpressionError("resourceId(): too many arguments before the resource type")
    rtype, names = args[idx], args[idx + 1 :]
    segments = rtype.split("/")
    namespace, types = segments[0], segments[1:]
    if len(types) != len(names):
        raise ExpressionError(
            f"Unable to evaluate template language function 'resourceId': the type '{rtype}' requires "
            f"{len(types)} resource name argument(s), got {len(names)}."
        )
    path = "/".join(f"{t}/{n}" for t, n in zip(types, names))
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{path}"


class _Evaluator:
    def __init__(self, ctx: Context, text: str) -> None:
        self.ctx = ctx
        self.text = text

    def eval(self, node: Any) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Prop):
            return _access(self.eval(node.target), node.name)
        if isinstance(node, Index):
            return _access(self.eval(node.target), self.eval(node.index))
        if isinstance(node, Call):
            return self.call(node)
        raise ExpressionError(f"bad node {node!r}")

    def call(self, node: Call) -> Any:
        name = node.name.lower()
        if name in _ARITY:
            _need(node.name, node.args, *_ARITY[name])
        # lazy functions first
        if name == "if":
            cond = self.eval(node.args[0])
            if isinstance(cond, Unknown):
                return Unknown(f"[{self.text}]")
            return self.eval(node.args[1] if _bool(cond) else node.args[2])
        if name == "coalesce":
            for arg in node.args:
                value = self.eval(arg)
                if value is not None:
                    return value
            return None
        args = [self.eval(a) for a in node.args]
        if any(isinstance(a, Unknown) for a in args):
            return Unknown(f"[{self.text}]")
        ctx = self.ctx
        if name == "parameters":
            _need("parameters", args, 1)
            return ctx.parameter(to_arm_string(args[0]))
        if name == "variables":
            _need("variables", args, 1)
            return ctx.variable(to_arm_string(args[0]))
        if name == "resourcegroup":
            return ctx.resource_group()
        if name == "subscription":
            return ctx.subscription()
        if name == "deployment":
            return ctx.deployment()
        if name == "resourceid":
            return _resource_id(ctx, args)
        if name == "reference":
            _need("reference", args, 1, 3)
            full = len(args) == 3 and to_arm_string(args[2]).lower() == "full"
            return ctx.reference(to_arm_string(args[0]), args[1] if len(args) > 1 else None, full)
        if name.startswith("list") and name != "last":
            _need(node.name, args, 2, 3)
            return ctx.list_keys(to_arm_string(args[0]), args[1], node.name)
        if name == "copyindex":
            return ctx.copy_index_value(args)
        if name == "utcnow":
            _need("utcNow", args, 0, 1)
            return ctx.utc_now(to_arm_string(args[0]) if args else None)
        if name == "newguid":
            _need("newGuid", args, 0)
            return ctx.new_guid()
        fn = _PURE.get(name)
        if fn is None:
            raise ExpressionError(f"The template function '{node.name}' is not valid (not supported by the emulator).")
        try:
            return fn(*args)
        except ExpressionError:
            raise
        except (TypeError, ValueError, IndexError, AttributeError) as exc:
            raise ExpressionError(f"Unable to evaluate template language function '{node.name}': {exc}") from None


def evaluate_string(value: str, ctx: Context) -> Any:
    """Evaluate a template string: an expression, an escaped literal, or plain text."""
    if value.startswith("[["):
        return value[1:]
    if not is_expression(value):
        return value
    text = value[1:-1]
    try:
        node = parse(text)
        result = _Evaluator(ctx, text).eval(node)
        return Unknown(value) if isinstance(result, Unknown) else result
    except ExpressionError as exc:
        raise ExpressionError(f"Unable to process template language expressions '{value}': {exc}") from None


def evaluate_value(value: Any, ctx: Context) -> Any:
    """Evaluate every expression string inside a JSON value."""
    if isinstance(value, str):
        return evaluate_string(value, ctx)
    if isinstance(value, list):
        return [evaluate_value(v, ctx) for v in value]
    if isinstance(value, dict):
        return {k: evaluate_value(v, ctx) for k, v in value.items()}
    return value
