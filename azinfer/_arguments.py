"""Checks of the arguments of public functions: a wrong type or value is an :class:`ArgumentError` naming it."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from azinfer.errors import ArgumentError

__all__ = ["check_type", "check_path", "check_member", "check_members", "check_mapping"]

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
