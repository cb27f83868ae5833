"""What each resource provider does with a PUT: canonical type names, read-only values, secrets, LRO style, actions.

Shapes follow the azure-rest-api-specs definitions the SDKs deserialize:
Microsoft.Storage (StorageAccount, FileServiceProperties, FileShare,
StorageAccountListKeysResult, CheckNameAvailabilityResult),
Microsoft.OperationalInsights (Workspace, SharedKeys), Microsoft.App
(ManagedEnvironment, ManagedEnvironmentStorage, ContainerApp, Revision, Job,
SecretsCollection).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .state import Resource, ResourceId, deep_merge

__all__ = ["TypeSpec", "spec_for", "make_resource", "storage_keys", "workspace_keys", "iso_now"]


def iso_now(ts: float | None = None) -> str:
    dt = datetime.fromtimestamp(ts if ts is not None else time.time(), tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def _h(*parts: str) -> bytes:
    return hashlib.sha256("|".join(parts).lower().encode()).digest()


def det_uuid(*parts: str) -> str:
    return str(uuid.UUID(bytes=_h(*parts)[:16], version=4))


def storage_keys(res: Resource) -> dict[str, Any]:
    """StorageAccountListKeysResult; keys change when regenerated (extra['keyVersion'])."""
    version = str(res.extra.get("keyVersion", 0))
    keys = []
    for name in ("key1", "key2"):
        value = base64.b64encode(_h(res.id, name, version) + _h(name, res.id, version)).decode()
        keys.append({"keyName": name, "value": value, "permissions": "FULL",
                     "creationTime": iso_now(res.created)})
    return {"keys": keys}


def workspace_keys(res: Resource) -> dict[str, Any]:
    return {
        "primarySharedKey": base64.b64encode(_h(res.id, "primary") + _h("p", res.id)).decode(),
        "secondarySharedKey": base64.b64encode(_h(res.id, "secondary") + _h("s", res.id)).decode(),
    }


def _props(body: dict[str, Any]) -> dict[str, Any]:
    return body.get("properties") or {}


# --------------------------------------------------------------------------------------------
# computed values per type

def _storage_account(rid: ResourceId, body: dict[str, Any], old: Resource | None, emu: Any) -> dict[str, Any]:
    n = rid.name
    loc = body.get("location", "")
    return {
        "properties": {
            "provisioningState": "Succeeded",
            "creationTime": iso_now(old.created if old else None),
            "primaryLocation": loc,
            "statusOfPrimary": "available",
            "primaryEndpoints": {
                "blob": f"https://{n}.blob.core.windows.net/",
                "queue": f"https://{n}.queue.core.windows.net/",
                "table": f"https://{n}.table.core.windows.net/",
                "file": emu.file_endpoint(n),  # served by the emulator (path-style on loopback)
                "dfs": f"https://{n}.dfs.core.windows.net/",
                "web": f"https://{n}.z13.web.core.windows.net/",
            },
            "keyCreationTime": {"key1": iso_now(old.created if old else None),
                                "key2": iso_now(old.created if old else None)},
        }
    }


def _file_share(rid: ResourceId, body: dict[str, Any], old: Resource | None, emu: Any) -> dict[str, Any]:
    return {
        "etag": f'"0x8DC{_h(rid.name, str(time.time())).hex()[:12].upper()}"',
        "properties": {
            "lastModifiedTime": iso_now(),
            "leaseStatus": "unlocked",
            "leaseState": "available",
            "shareUsageBytes": 0,
            **({} if "shareQuota" in _props(body) else {"shareQuota": 102400}),
            **({} if "accessTier" in _props(body) else {"accessTier": "TransactionOptimized"}),
        },
    }


def _workspace(rid: ResourceId, body: dict[str, Any], old: Resource | None, emu: Any) -> dict[str, Any]:
    return {
        "properties": {
            "provisioningState": "Succeeded",
            "customerId": det_uuid(str(rid), "customerId"),
            "createdDate": iso_now(old.created if old else None),
            "modifiedDate": iso_now(),
            **({} if "retentionInDays" in _props(body) else {"retentionInDays": 30}),
            **({} if "sku" in _props(body) else {"sku": {"name": "PerGB2018"}}),
        }
    }


def _managed_env(rid: ResourceId, body: dict[str, Any], old: Resource | None, emu: Any) -> dict[str, Any]:
    loc = (body.get("location") or "eastus").replace(" ", "").lower()
    word = _h(str(rid)).hex()
    return {
        "properties": {
            "provisioningState": "Succeeded",
            "defaultDomain": f"{rid.name}-{word[:8]}.{loc}.azurecontainerapps.io",
            "staticIp": f"20.{int(word[8:10], 16)}.{int(word[10:12], 16)}.{int(word[12:14], 16)}",
            "eventStreamEndpoint": f"{_stream_base(emu, loc)}/subscriptions/{rid.subscription}"
            f"/resourceGroups/{rid.resource_group}/managedEnvironments/{rid.name}/eventstream",
            "customDomainConfiguration": {"customDomainVerificationId": word[:64].upper()},
        }
    }


def _stream_base(emu: Any, location: str) -> str:
    """Where the log stream answers: the emulator's listener (on Azure ``https://{region}.azurecontainerapps.dev``)."""
    return emu.logstream_url or f"https://{location}.azurecontainerapps.dev"


def _container_app(rid: ResourceId, body: dict[str, Any], old: Resource | None, emu: Any) -> dict[str, Any]:
    props = _props(body)
    env_id = props.get("managedEnvironmentId") or props.get("environmentId") or ""
    env = emu.state.get(env_id) if env_id else None
    domain = env.view()["properties"].get("defaultDomain") if env else "unknown.eastus.azurecontainerapps.io"
    location = (body.get("location") or "eastus").replace(" ", "").lower()
    revision = emu.apps.revision_name(rid, props.get("template") or {}, old)
    computed_props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "managedEnvironmentId": env_id,
        "environmentId": env_id,
        "latestRevisionName": revision,
        "latestRevisionFqdn": f"{revision}.{domain}",
        "customDomainVerificationId": _h(str(rid)).hex().upper(),
        "outboundIpAddresses": ["20.1.2.3"],
        "eventStreamEndpoint": f"{_stream_base(emu, location)}/subscriptions/{rid.subscription}"
                               f"/resourceGroups/{rid.resource_group}/containerApps/{rid.name}/eventstream",
    }
    ingress = (props.get("configuration") or {}).get("ingress")
    if ingress:
        # external ingress answers on its own loopback listener; internal ingress is not reachable from outside
        external = ingress.get("external", False)
        host = emu.apps.ingress_host(str(old.id if old else rid)) if external else None
        fqdn = host or (f"{rid.name}.{domain}" if external else f"{rid.name}.internal.{domain}")
        computed_props["configuration"] = {"ingress": {"fqdn": fqdn}}
    return {"properties": computed_props}


def _job(rid: ResourceId, body: dict[str, Any], old: Resource | None, emu: Any) -> dict[str, Any]:
    props = _props(body)
    env_id = props.get("environmentId") or props.get("managedEnvironmentId") or ""
    return {"properties": {"provisioningState": "Succeeded", "environmentId": env_id,
                           "eventStreamEndpoint": f"https://eastus.azurecontainerapps.dev/jobs/{rid.name}/eventstream"}}


def _env_storage(rid: ResourceId, body: dict[str, Any], old: Resource | None, emu: Any) -> dict[str, Any]:
    return {}


def _file_service(rid: ResourceId, body: dict[str, Any], old: Resource | None, emu: Any) -> dict[str, Any]:
    return {}


@dataclass
class TypeSpec:
    type: str  # canonical casing
    put: str = "sync"  # sync | async (201 + Azure-AsyncOperation) | location (202 + Location)
    patch: str = "sync"
    delete: str = "sync"
    compute: Callable[..., dict[str, Any]] = lambda rid, body, old, emu: {}
    secret_paths: tuple[tuple[str, ...], ...] = ()
    tracked: bool = True  # has location and tags
    in_progress_state: str = "InProgress"
    actions: tuple[str, ...] = ()


SPECS: dict[str, TypeSpec] = {
    s.type.lower(): s
    for s in [
        TypeSpec("Microsoft.Storage/storageAccounts", put="location", patch="sync", delete="sync",
                 compute=_storage_account, in_progress_state="Creating",
                 actions=("listKeys", "regenerateKey")),
        TypeSpec("Microsoft.Storage/storageAccounts/fileServices", compute=_file_service, tracked=False),
        TypeSpec("Microsoft.Storage/storageAccounts/fileServices/shares", compute=_file_share, tracked=False),
        TypeSpec("Microsoft.OperationalInsights/workspaces", put="async", delete="sync",
                 compute=_workspace, in_progress_state="Creating", actions=("sharedKeys",)),
        TypeSpec("Microsoft.App/managedEnvironments", put="async", patch="location", delete="location",
                 compute=_managed_env, in_progress_state="InitializationInProgress",
                 # Write-only, as Azure: never in a GET.
                 secret_paths=(("properties", "appLogsConfiguration", "logAnalyticsConfiguration", "sharedKey"),
                               ("properties", "customDomainConfiguration", "certificatePassword"),
                               ("properties", "customDomainConfiguration", "certificateValue"),
                               ("properties", "daprAIInstrumentationKey"), ("properties", "daprAIConnectionString"))),
        TypeSpec("Microsoft.App/managedEnvironments/storages", compute=_env_storage, tracked=False,
                 secret_paths=(("properties", "azureFile", "accountKey"),)),
        TypeSpec("Microsoft.App/containerApps", put="async", patch="location", delete="location",
                 compute=_container_app, actions=("listSecrets",),
                 secret_paths=(("properties", "configuration", "secrets", "*", "value"),)),
        TypeSpec("Microsoft.App/jobs", put="async", patch="location", delete="location", compute=_job,
                 actions=("listSecrets", "start"),
                 secret_paths=(("properties", "configuration", "secrets", "*", "value"),)),
    ]
}

_READ_ONLY_TOP = {"id", "name", "type", "etag", "systemData"}


def spec_for(type_: str) -> TypeSpec:
    """The provider behaviour for a type; unknown types get a generic synchronous one."""
    spec = SPECS.get(type_.lower())
    if spec is None:
        return TypeSpec(type_)
    return spec


def canonical_type(rid: ResourceId) -> str:
    spec = SPECS.get(rid.type.lower())
    return spec.type if spec else rid.type


def make_resource(rid: ResourceId, body: dict[str, Any], old: Resource | None, emu: Any) -> Resource:
    """A resource as the provider stores it after a PUT of ``body``."""
    spec = spec_for(rid.type)
    clean = clean_input(rid, body)
    computed = spec.compute(rid, clean, old, emu)
    res = Resource(
        id=old.id if old else str(rid),
        type=spec.type if spec.type.lower() == rid.type.lower() else rid.type,
        name=old.name if old else rid.name,
        input=clean,
        computed=computed,
        secret_paths=spec.secret_paths,
        extra=dict(old.extra) if old else {},
    )
    if old is not None:
        res.created = old.created
    return res


def clean_input(rid: ResourceId, body: dict[str, Any]) -> dict[str, Any]:
    """The part of a PUT body the provider keeps as input (no id/name/type/apiVersion/dependsOn, no read-only state)."""
    spec = spec_for(rid.type)
    skip = _READ_ONLY_TOP | {"apiVersion", "dependsOn", "condition", "copy", "comments", "resources", "scope"}
    clean = {k: copy.deepcopy(v) for k, v in body.items() if k not in skip}
    if isinstance(clean.get("properties"), dict):
        clean["properties"].pop("provisioningState", None)
    if spec.tracked and "tags" not in clean:
        clean["tags"] = {}
    return clean


def patch_body(old: Resource, patch: dict[str, Any]) -> dict[str, Any]:
    """The input after a PATCH: objects merged, arrays and scalars replaced."""
    merged: dict[str, Any] = deep_merge(old.input, {k: v for k, v in patch.items() if k not in _READ_ONLY_TOP})
    return merged
