"""Resource names: ARM's ``uniqueString()``, the AI Toolkit's default names, Azure's naming rules.

The AI Toolkit's templates name every resource ``<prefix><suffix>`` where the
suffix is the first five characters of ``uniqueString(resourceGroup().id)``.
Because the fine-tuning and the inference templates use the same rule in the
same resource group, inference lands on the fine-tuning resources by default.
:func:`unique_string` reproduces ARM's function exactly, so azinfer knows those
names before anything is deployed.
"""

from __future__ import annotations

from azinfer._arguments import check_type
from azinfer.errors import ArgumentError, NamingError
from azinfer.resources import RESOURCES, NamingRule, ResourceKind

__all__ = [
    "unique_string",
    "resource_suffix",
    "default_name",
    "default_name_rule",
    "naming_rule",
    "check_name",
]

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def _fmix(h: int) -> int:
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    return h ^ (h >> 16)


def _mix_k1(k: int) -> int:
    return (_rotl((k * 0x239B961B) & _M32, 15) * 0xAB0E9789) & _M32


def _mix_k2(k: int) -> int:
    return (_rotl((k * 0xAB0E9789) & _M32, 17) * 0x239B961B) & _M32


def _murmur64(data: bytes) -> int:
    """The 64-bit MurmurHash variant behind ARM's ``uniqueString`` (seed 0)."""
    h1 = h2 = 0
    n = len(data)
    full = n - n % 8
    for i in range(0, full, 8):
        h1 ^= _mix_k1(int.from_bytes(data[i : i + 4], "little"))
        h1 = (_rotl(h1, 19) + h2) & _M32
        h1 = (h1 * 5 + 0x561CCD1B) & _M32
        h2 ^= _mix_k2(int.from_bytes(data[i + 4 : i + 8], "little"))
        h2 = (_rotl(h2, 13) + h1) & _M32
        h2 = (h2 * 5 + 0x0BCAA747) & _M32
    tail = data[full:]
    if tail:
        h1 ^= _mix_k1(int.from_bytes(tail[:4], "little"))
        if len(tail) > 4:
            h2 ^= _mix_k2(int.from_bytes(tail[4:], "little"))
    h1 ^= n
    h2 ^= n
    h1 = (h1 + h2) & _M32
    h2 = (h2 + h1) & _M32
    h1, h2 = _fmix(h1), _fmix(h2)
    h1 = (h1 + h2) & _M32
    h2 = (h2 + h1) & _M32
    return (h2 << 32) | h1


def unique_string(*parts: str) -> str:
    """Return exactly what ARM's ``uniqueString(parts...)`` returns.

    A deterministic 13-character base-32 hash of the parts joined by ``-``;
    case-sensitive.

    >>> unique_string("test")
    'rbgf3xv4ufgzg'

    :raises ArgumentError: when no part is given or a part is not a string (also a :class:`TypeError`).
    """
    if not parts:
        raise ArgumentError("unique_string", "parts", "at least one string", parts)
    for index, part in enumerate(parts):
        check_type("unique_string", f"parts[{index}]", part, str, "a string")
    h = _murmur64("-".join(parts).encode("utf-8"))
    out = []
    for _ in range(13):
        out.append(_BASE32[h >> 59])
        h = (h << 5) & _M64
    return "".join(out)


def resource_suffix(resource_group_id: str) -> str:
    """The AI Toolkit's name suffix: ``substring(uniqueString(resourceGroup().id), 0, 5)``."""
    return unique_string(resource_group_id)[:5]


def _prefix(kind: ResourceKind) -> str:
    prefix = RESOURCES[kind].default_prefix
    assert prefix is not None  # every kind has the toolkit's prefix
    return prefix


def _rule(kind: ResourceKind) -> NamingRule:
    rule = RESOURCES[kind].naming
    assert rule is not None  # every kind is named by a parameter, under a rule
    return rule


def default_name(kind: ResourceKind, resource_group_id: str) -> str:
    """The name the AI Toolkit's templates give ``kind`` in that resource group."""
    return _prefix(kind) + resource_suffix(resource_group_id)


def default_name_rule(kind: ResourceKind) -> str:
    """The default naming rule in words, e.g. ``"'aistorage' + first 5 characters of uniqueString(...)"``."""
    return f"'{_prefix(kind)}' + first 5 characters of uniqueString(resourceGroup().id)"


def naming_rule(kind: ResourceKind) -> str:
    """Azure's naming rule for ``kind``, in words."""
    return _rule(kind).text


def check_name(kind: ResourceKind, name: str, *, source: str | None = None) -> None:
    """Check ``name`` against Azure's naming rule for ``kind``.

    :raises NamingError: when the name breaks the rule; the message states the rule.
    """
    rule = _rule(kind)
    if not rule.matches(name):
        raise NamingError(kind.label, name, rule.text, source=source)
