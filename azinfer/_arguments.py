"""Checks of the arguments of public functions: a wrong type or value is an :class:`ArgumentError` naming it."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from azinfer.errors import ArgumentError

__all__ = ["check_type", "check_path", "check_member", "check_members", "check_mapping", "check_text",
           "check_optional_text", "check_number", "check_callback", "check_optional_path"]

T = TypeVar("T")
E = TypeVar("E", bound=Enum)


def check_type(function: str, argument: str, value: Any, types: type[T] | tuple[type, ...], expected: str) -> T:
    """``value`` when it is an instance of ``types`` (``bool`` never passes for ``int``).

    :raises ArgumentError: otherwise, naming ``function`` and ``argument``.
    """
    wanted = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) and bool not in wanted:
        raise ArgumentError(function, argument, expected, value)
    if not isinstance(value, wanted):
        raise ArgumentError(function, argument, expected, value)
    return value  # type: ignore[return-value]


def check_path(function: str, argument: str, value: Any) -> Path:
    """``value`` (a ``str`` or ``os.PathLike``) as a :class:`~pathlib.Path`.

    :raises ArgumentError: when it is neither, or empty.
    """
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise ArgumentError(function, argument, "a path (str or os.PathLike)", value)
    return Path(value)


def check_member(function: str, argument: str, value: Any, enum: type[E]) -> E:
    """``value`` as a member of ``enum``: a member, or a member's value (``"containerApp"``).

    :raises ArgumentError: otherwise; the message lists the valid values.
    """
    if isinstance(value, enum):
        return value
    if isinstance(value, str) and not isinstance(value, Enum):
        for member in enum:
            if member.value == value:
                return member
    choices = ", ".join(repr(member.value) for member in enum)
    article = "an" if enum.__name__[0] in "AEIOU" else "a"
    raise ArgumentError(function, argument, f"{article} {enum.__name__} (one of {choices})", value)


def check_members(function: str, argument: str, value: Any, enum: type[E]) -> frozenset[E]:
    """``value``, a collection of members of ``enum`` (or of their values), as a frozenset.

    :raises ArgumentError: when it is no collection (a string is none) or an item is no member.
    """
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Collection):
        raise ArgumentError(function, argument, f"a collection of {enum.__name__}", value)
    return frozenset(check_member(function, f"{argument} item", item, enum) for item in value)


def check_mapping(function: str, argument: str, value: Any) -> Mapping[Any, Any]:
    """``value`` when it is a mapping.

    :raises ArgumentError: otherwise.
    """
    if not isinstance(value, Mapping):
        raise ArgumentError(function, argument, "a mapping", value)
    return value


def check_text(function: str, argument: str, value: object, *, expected: str = "a non-empty string") -> str:
    """``value`` when it is a non-empty string.

    :raises ArgumentError: otherwise.
    """
    if not isinstance(value, str) or not value.strip():
        raise ArgumentError(function, argument, expected, value)
    return value


def check_optional_text(function: str, argument: str, value: object) -> str | None:
    """``value`` when it is a non-empty string or ``None``.

    :raises ArgumentError: otherwise.
    """
    return None if value is None else check_text(function, argument, value, expected="a non-empty string or None")


def check_number(function: str, argument: str, value: object, *, minimum: float = 0.0,
                 maximum: float | None = None, integer: bool = False) -> float:
    """``value`` when it is a number (an ``int`` when ``integer``) from ``minimum`` to ``maximum``.

    :raises ArgumentError: otherwise (``bool`` and NaN are no numbers here).
    """
    expected = ("an int" if integer else "a number") + f" from {minimum:g}" + (
        f" to {maximum:g}" if maximum is not None else "")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ArgumentError(function, argument, expected, value)
    if not minimum <= value <= (maximum if maximum is not None else float("inf")):  # NaN fails too
        raise ArgumentError(function, argument, expected, value)
    return float(value)


def check_callback(function: str, argument: str, value: object) -> Callable[..., object] | None:
    """``value`` when it is callable or ``None``.

    :raises ArgumentError: otherwise.
    """
    if value is None:
        return None
    if not callable(value):
        raise ArgumentError(function, argument, "a callable or None", value)
    return value


def check_optional_path(function: str, argument: str, value: object) -> Path | None:
    """``value`` as a :class:`~pathlib.Path`, or ``None``.

    :raises ArgumentError: when it is neither a path nor ``None``.
    """
    return None if value is None else check_path(function, argument, value)
