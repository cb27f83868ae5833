"""Resource names: ARM's ``uniqueString()``, the AI Toolkit's default names, Azure's naming rules.

The AI Toolkit's templates name every resource ``<prefix><suffix>`` where the
suffix is the first five characters of ``uniqueString(resourceGroup().id)``.
Because the fine-tuning and the inference templates use the same rule in the
same resource group, inference lands on the fine-tuning resources by default.
:func:`unique_string` reproduces ARM's function exactly, so azinfer knows those
names before anything is deployed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from azinfer.errors import NamingError

__all__ = [
    "ResourceKind",
    "unique_string",
    "resource_suffix",
    "default_name",
    "default_name_rule",
    "DEFAULT_PREFIXES",
    "naming_rule",
    "check_name",
]

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"


class ResourceKind(str, Enum):
    """The Azure resources an inference deployment is made of."""

    STORAGE_ACCOUNT = "storageAccount"
    """Microsoft.Storage/storageAccounts: holds the file share."""
    FILE_SHARE = "fileShare"
    """Microsoft.Storage/storageAccounts/fileServices/shares: model cache, adapter, code."""
    LOG_ANALYTICS = "logAnalytics"
    """Microsoft.OperationalInsights/workspaces: the environment's logs."""
    ENVIRONMENT = "environment"
    """Microsoft.App/managedEnvironments: the Container Apps environment with the GPU profile."""
    ENVIRONMENT_STORAGE = "environmentStorage"
    """Microsoft.App/managedEnvironments/storages: the share, as the environment mounts it."""
    CONTAINER_APP = "containerApp"
    """Microsoft.App/containerApps: the inference server."""

    @property
    def label(self) -> str:
        """The kind in words, e.g. ``"storage account"``."""
        return _TITLES[self]

    @property
    def parameter(self) -> str:
        """The inference parameter that names this resource, e.g. ``"storageAccountName"``."""
        return _PARAMETERS[self]


_TITLES = {
    ResourceKind.STORAGE_ACCOUNT: "storage account",
    ResourceKind.FILE_SHARE: "file share",
    ResourceKind.LOG_ANALYTICS: "Log Analytics workspace",
    ResourceKind.ENVIRONMENT: "Container Apps environment",
    ResourceKind.ENVIRONMENT_STORAGE: "environment storage",
    ResourceKind.CONTAINER_APP: "container app",
}

_PARAMETERS = {
    ResourceKind.STORAGE_ACCOUNT: "storageAccountName",
    ResourceKind.FILE_SHARE: "fileShareName",
    ResourceKind.LOG_ANALYTICS: "acaLogAnalyticsName",
    ResourceKind.ENVIRONMENT: "acaEnvironmentName",
    ResourceKind.ENVIRONMENT_STORAGE: "acaEnvironmentStorageName",
    ResourceKind.CONTAINER_APP: "acaAppName",
}

# The AI Toolkit templates' name prefixes; the suffix comes from the resource group id.
DEFAULT_PREFIXES: dict[ResourceKind, str] = {
    ResourceKind.STORAGE_ACCOUNT: "aistorage",
    ResourceKind.FILE_SHARE: "aifileshare",
    ResourceKind.LOG_ANALYTICS: "ailog",
    ResourceKind.ENVIRONMENT: "aienv",
    ResourceKind.ENVIRONMENT_STORAGE: "aienvstorage",
    ResourceKind.CONTAINER_APP: "aiacaapp",
}


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

    :raises TypeError: when no part is given or a part is not a string.
    """
    if not parts:
        raise TypeError("unique_string() needs at least one string")
    for part in parts:
        if not isinstance(part, str):
            raise TypeError(f"unique_string() takes strings, got {type(part).__name__}")
    h = _murmur64("-".join(parts).encode("utf-8"))
    out = []
    for _ in range(13):
        out.append(_BASE32[h >> 59])
        h = (h << 5) & _M64
    return "".join(out)


def resource_suffix(resource_group_id: str) -> str:
    """The AI Toolkit's name suffix: ``substring(uniqueString(resourceGroup().id), 0, 5)``."""
    return unique_string(resource_group_id)[:5]


def default_name(kind: ResourceKind, resource_group_id: str) -> str:
    """The name the AI Toolkit's templates give ``kind`` in that resource group."""
    return DEFAULT_PREFIXES[kind] + resource_suffix(resource_group_id)


def default_name_rule(kind: ResourceKind) -> str:
    """The default naming rule in words, e.g. ``"aistorage + uniqueString(resourceGroup().id)[:5]"``."""
    return f"'{DEFAULT_PREFIXES[kind]}' + first 5 characters of uniqueString(resourceGroup().id)"


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    text: str


# Azure's documented naming rules ("Naming rules and restrictions for Azure resources").
_RULES = {
    ResourceKind.STORAGE_ACCOUNT: _Rule(
        re.compile(r"[a-z0-9]{3,24}"),
        "3 to 24 characters, lowercase letters and digits only (and unique across Azure)",
    ),
    ResourceKind.FILE_SHARE: _Rule(
        re.compile(r"(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]"),
        "3 to 63 characters, lowercase letters, digits and single hyphens, "
        "starting and ending with a letter or digit",
    ),
    ResourceKind.LOG_ANALYTICS: _Rule(
        re.compile(r"(?=.{4,63}$)[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]"),
        "4 to 63 characters, letters, digits and hyphens, starting and ending with a letter or digit",
    ),
    ResourceKind.ENVIRONMENT: _Rule(
        re.compile(r"(?=.{2,60}$)[a-z][a-z0-9]*(?:-[a-z0-9]+)*"),
        "2 to 60 characters, lowercase letters, digits and single hyphens, "
        "starting with a letter and ending with a letter or digit",
    ),
    ResourceKind.ENVIRONMENT_STORAGE: _Rule(
        re.compile(r"(?=.{2,32}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]"),
        "2 to 32 characters, lowercase letters, digits and single hyphens, "
        "starting and ending with a letter or digit",
    ),
    ResourceKind.CONTAINER_APP: _Rule(
        re.compile(r"(?=.{2,32}$)[a-z][a-z0-9]*(?:-[a-z0-9]+)*"),
        "2 to 32 characters, lowercase letters, digits and single hyphens, "
        "starting with a letter and ending with a letter or digit",
    ),
}


def naming_rule(kind: ResourceKind) -> str:
    """Azure's naming rule for ``kind``, in words."""
    return _RULES[kind].text


def check_name(kind: ResourceKind, name: str, *, source: str | None = None) -> None:
    """Check ``name`` against Azure's naming rule for ``kind``.

    :raises NamingError: when the name breaks the rule; the message states the rule.
    """
    if not _RULES[kind].pattern.fullmatch(name):
        raise NamingError(kind.label, name, _RULES[kind].text, source=source)
