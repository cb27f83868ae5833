"""Reading and validating JSON project files, with errors that name the file, the pointer and what was expected."""

from __future__ import annotations

import difflib
import errno
import json
import os
import stat
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azinfer.errors import ProjectFileError

if TYPE_CHECKING:  # pragma: no cover - jsonschema loads on the first validation
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

__all__ = ["read_json", "validate", "load_schema", "json_pointer", "MAX_FILE_BYTES"]

_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def _describe(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


MAX_FILE_BYTES = 4 * 1024 * 1024
"""The largest project file azinfer reads (the AI Toolkit's are a few KiB)."""


def _read_regular(path: Path, shown: str) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_FILE_BYTES`, read without blocking.

    A FIFO, a device (``/dev/zero``) or a folder is refused before it is
    opened for reading, so nothing hangs or fills memory.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise ProjectFileError(shown, "", f"is a dangling link (to {os.readlink(path)!r})") from None
        raise ProjectFileError(shown, "", "file not found") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ProjectFileError(shown, "", "is a link that loops") from None
        raise ProjectFileError(shown, "", f"cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, device or socket)"
        raise ProjectFileError(shown, "", f"expected a regular file, found {kind}")
    if info.st_size > MAX_FILE_BYTES:
        raise ProjectFileError(shown, "", f"expected at most {MAX_FILE_BYTES // 1024} KiB, found {info.st_size} bytes")
    try:
        # O_NONBLOCK: should the file be swapped for a FIFO after stat, open does not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ProjectFileError(shown, "", "expected a regular file")
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ProjectFileError(shown, "", f"cannot be read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ProjectFileError(shown, "", f"expected at most {MAX_FILE_BYTES // 1024} KiB")
    return data


def read_json(path: Path, *, display: str | None = None) -> Any:
    """Read a JSON file strictly (UTF-8, no NaN, no duplicate keys), a regular file of at most 4 MiB.

    :raises ProjectFileError: when the file is missing, a dangling or looping
        link, not a regular file, too large, unreadable or not valid JSON.
    """
    shown = display or str(path)
    try:
        text = _read_regular(path, shown).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProjectFileError(shown, "", f"expected UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ProjectFileError(shown, "", f"expected JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except ValueError as exc:
        raise ProjectFileError(shown, "", f"expected JSON: {exc}") from None
    except RecursionError:
        raise ProjectFileError(shown, "", "expected JSON: nested too deeply") from None
    surrogate = _lone_surrogate(value, ())
    if surrogate is not None:
        # JSON allows "\ud800" alone, but it is no character: no file, template or Azure takes it.
        raise ProjectFileError(shown, json_pointer(surrogate), "expected text, found a lone surrogate escape "
                               "(\\ud800-\\udfff without its pair)")
    return value


def _lone_surrogate(value: Any, at: tuple[object, ...]) -> tuple[object, ...] | None:
    """The path of the first key or string holding a lone UTF-16 surrogate (``None`` when there is none)."""
    if isinstance(value, str):
        return at if any("\ud800" <= c <= "\udfff" for c in value) else None
    items: Iterable[tuple[object, Any]] = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        if isinstance(key, str) and _lone_surrogate(key, ()) is not None:
            return (*at, key)
        found = _lone_surrogate(item, (*at, key))
        if found is not None:
            return found
    return None


@cache
def load_schema(name: str) -> dict[str, Any]:
    """One of azinfer's JSON Schemas (``schemas/<name>``), parsed."""
    text = resources.files("azinfer.schemas").joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(name: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name))


def json_pointer(parts: Iterable[object]) -> str:
    """RFC 6901 pointer of a path of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _json_text(value: object) -> str:
    """``value`` as JSON for a message; its repr when it is no JSON (a value built in Python)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _expected(error: ValidationError) -> tuple[str, str | None]:
    """What the schema expected at the error's place, and a hint."""
    kind = error.validator
    value = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    description = schema.get("description")
    hint = description
    if kind == "type":
        types = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        wanted = " or ".join(_SCHEMA_TYPES.get(str(t), str(t)) for t in types)
        return f"expected {wanted}, got {_describe(value)}", hint
    if kind == "enum" and isinstance(error.validator_value, list):
        options = ", ".join(_json_text(o) for o in error.validator_value)
        return f"expected one of {options}, got {_json_text(value)}", hint
    if kind == "required" and isinstance(error.validator_value, list):
        missing = [k for k in error.validator_value if isinstance(value, dict) and k not in value]
        return f"missing required field {missing[0]!r}" if missing else error.message, None
    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = sorted(schema.get("properties", {}))
        unknown = sorted(k for k in value if k not in allowed)
        if unknown:
            close = difflib.get_close_matches(unknown[0], allowed, n=1, cutoff=0.5)
            suggestion = f"did you mean {close[0]!r}?" if close else f"valid names: {', '.join(allowed)}"
            return f"unknown field {unknown[0]!r}", suggestion
    if kind == "minimum":
        return f"expected a number >= {error.validator_value}, got {_json_text(value)}", hint
    if kind == "maximum":
        return f"expected a number <= {error.validator_value}, got {_json_text(value)}", hint
    if kind == "minItems":
        return f"expected at least {error.validator_value} item(s)", hint
    if kind == "minLength":
        return f"expected at least {error.validator_value} character(s)", hint
    if kind == "pattern":
        return f"{_json_text(value)} does not have the expected form", hint
    return error.message, hint


_SCHEMA_TYPES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a number",
    "null": "null",
}


def validate(instance: Any, schema_name: str, *, display: str) -> None:
    """Validate ``instance`` against ``schemas/<schema_name>``.

    :raises ProjectFileError: naming the file, the JSON pointer of the first
        (most relevant) error and what was expected there.
    """
    from jsonschema.exceptions import best_match

    error = best_match(_validator(schema_name).iter_errors(instance))
    if error is None:
        return
    expected, hint = _expected(error)
    raise ProjectFileError(display, json_pointer(error.absolute_path), expected, hint=hint)
