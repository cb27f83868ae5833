"""The emulator's state: subscriptions, resource groups, resources, long-running operations.

Resource ids are matched case-insensitively, as ARM does; a resource keeps the
casing it was first created with.  Each resource stores the *input* (what the
last PUT/PATCH set: location, tags, sku, kind, properties ...) apart from the
*computed* read-only values the resource provider adds (provisioningState,
customerId, fqdn ...), so that what-if can compare a new PUT body with the
previous input, and GET can hide write-only secrets.
"""

from __future__ import annotations

import builtins
import copy
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ResourceId", "Resource", "Operation", "State", "deep_merge", "parse_resource_id"]


def deep_merge(base: Any, overlay: Any) -> Any:
    """Objects merged key by key (overlay wins); anything else replaced by the overlay."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for key, value in overlay.items():
            match = next((k for k in out if k.lower() == key.lower()), key)
            if match != key:
                out.pop(match)
                out[key] = deep_merge(base[match], value)
            else:
                out[key] = deep_merge(out[key], value) if key in out else copy.deepcopy(value)
        return out
    return copy.deepcopy(overlay)


@dataclass(frozen=True)
class ResourceId:
    subscription: str
    resource_group: str | None
    namespace: str | None
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def type(self) -> str:
        return "/".join((self.namespace or "",) + self.types)

    @property
    def name(self) -> str:
        return self.names[-1] if self.names else (self.resource_group or self.subscription)

    @property
    def parent(self) -> str | None:
        if len(self.types) <= 1:
            return None
        return build_id(self.subscription, self.resource_group, self.namespace, self.types[:-1], self.names[:-1])

    @property
    def rg_id(self) -> str:
        return f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"

    def __str__(self) -> str:
        return build_id(self.subscription, self.resource_group, self.namespace, self.types, self.names)


def build_id(sub: str, rg: str | None, namespace: str | None, types: tuple[Any, ...], names: tuple[Any, ...]) -> str:
    out = f"/subscriptions/{sub}"
    if rg is not None:
        out += f"/resourceGroups/{rg}"
    if namespace:
        out += f"/providers/{namespace}/" + "/".join(f"{t}/{n}" for t, n in zip(types, names))
    return out


def parse_resource_id(rid: str) -> ResourceId:
    """Parse ``/subscriptions/s/resourceGroups/rg/providers/NS/t1/n1/t2/n2``; ValueError if malformed."""
    parts = [p for p in rid.strip("/").split("/")]
    if len(parts) < 2 or parts[0].lower() != "subscriptions" or not parts[1]:
        raise ValueError(f"not a resource id: {rid!r}")
    sub = parts[1]
    rest = parts[2:]
    rg = None
    if len(rest) >= 2 and rest[0].lower() == "resourcegroups":
        rg = rest[1]
        rest = rest[2:]
    namespace = None
    types: list[str] = []
    names: list[str] = []
    if rest:
        if rest[0].lower() != "providers" or len(rest) < 4 or len(rest[2:]) % 2:
            raise ValueError(f"not a resource id: {rid!r}")
        namespace = rest[1]
        pairs = rest[2:]
        types = pairs[0::2]
        names = pairs[1::2]
    return ResourceId(sub, rg, namespace, tuple(types), tuple(names))


@dataclass
class Resource:
    id: str
    type: str
    name: str
    input: dict[str, Any]
    computed: dict[str, Any] = field(default_factory=dict)
    secret_paths: tuple[tuple[str, ...], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # provider bookkeeping (keys, revisions)
    created: float = field(default_factory=time.time)
    changed: float = field(default_factory=time.time)

    def view(self, *, secrets: bool = False) -> dict[str, Any]:
        """The resource as GET returns it (``secrets=True``: with write-only values, for ARM-internal use)."""
        body = deep_merge(copy.deepcopy(self.input), self.computed)
        body = {"id": self.id, "name": self.name, "type": self.type, **{k: v for k, v in body.items() if k not in ("id", "name", "type")}}
        if not secrets:
            for path in self.secret_paths:
                at_path(body, path, lambda parent, key: parent.pop(key))
        return body

    @property
    def provisioning_state(self) -> str | None:
        state = self.view().get("properties", {}).get("provisioningState")
        return None if state is None else str(state)


def at_path(node: Any, path: tuple[str, ...], act: Callable[[dict[str, Any], str], None]) -> None:
    """Call ``act(parent, key)`` for each value at ``path`` (keys case-insensitive, ``*`` for every list item)."""
    if not path:
        return
    head, rest = path[0], path[1:]
    if head == "*":
        for item in node if isinstance(node, list) else []:
            at_path(item, rest, act)
        return
    if not isinstance(node, dict):
        return
    key = next((k for k in node if k.lower() == head.lower()), None)
    if key is None:
        return
    if rest:
        at_path(node[key], rest, act)
    else:
        act(node, key)


@dataclass
class Operation:
    """An ARM asynchronous operation, polled through operationStatuses/operationResults."""

    id: str
    namespace: str
    location: str
    subscription: str
    kind: str  # put | patch | delete | action | deployment | whatIf
    resource_id: str
    polls_left: int
    status: str = "InProgress"
    error: dict[str, Any] | None = None
    fail_with: dict[str, Any] | None = None
    on_complete: Callable[[Operation], None] | None = None
    result: Any = None  # body for operationResults when done (None: the resource's view)
    start: float = field(default_factory=time.time)
    end: float | None = None
    polls: int = 0

    @property
    def done(self) -> bool:
        return self.status in ("Succeeded", "Failed", "Canceled")


class State:
    """Thread-safe store; every public method takes the lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.resource_groups: dict[str, dict[str, Any]] = {}
        self.resources: dict[str, Resource] = {}
        self.operations: dict[str, Operation] = {}
        self.deployments: dict[str, Any] = {}  # lower id -> deployments.Deployment

    # subscriptions & groups ---------------------------------------------
    def add_subscription(self, sub: str, display_name: str = "Emulated subscription", tenant: str = "") -> dict[str, Any]:
        with self.lock:
            key = sub.lower()
            if key not in self.subscriptions:
                self.subscriptions[key] = {
                    "id": f"/subscriptions/{sub}",
                    "subscriptionId": sub,
                    "tenantId": tenant,
                    "displayName": display_name,
                    "state": "Enabled",
                    "subscriptionPolicies": {
                        "locationPlacementId": "Public_2014-09-01",
                        "quotaId": "PayAsYouGo_2014-09-01",
                        "spendingLimit": "Off",
                    },
                    "authorizationSource": "RoleBased",
                }
            return self.subscriptions[key]

    def add_resource_group(self, sub: str, rg: str, location: str = "eastus", tags: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.lock:
            self.add_subscription(sub)
            rid = f"/subscriptions/{sub}/resourceGroups/{rg}"
            existing = self.resource_groups.get(rid.lower())
            group = {
                "id": existing["id"] if existing else rid,
                "name": existing["name"] if existing else rg,
                "type": "Microsoft.Resources/resourceGroups",
                "location": existing["location"] if existing else location,
                "tags": tags if tags is not None else (existing or {}).get("tags", {}),
                "properties": {"provisioningState": "Succeeded"},
            }
            self.resource_groups[rid.lower()] = group
            return group

    def resource_group(self, sub: str, rg: str | None) -> dict[str, Any] | None:
        """The group's view; ``None`` when it does not exist (or ``rg`` is ``None``: a subscription-level id)."""
        if rg is None:
            return None
        with self.lock:
            return self.resource_groups.get(f"/subscriptions/{sub}/resourcegroups/{rg}".lower())

    def delete_resource_group(self, sub: str, rg: str) -> bool:
        with self.lock:
            rid = f"/subscriptions/{sub}/resourcegroups/{rg}".lower()
            if self.resource_groups.pop(rid, None) is None:
                return False
            for key in [k for k in self.resources if k.startswith(rid + "/")]:
                del self.resources[key]
            for key in [k for k in self.deployments if k.startswith(rid + "/")]:
                del self.deployments[key]
            return True

    # resources ------------------------------------------------------------
    def get(self, rid: str | None) -> Resource | None:
        """The resource; ``None`` when it does not exist (or ``rid`` is ``None``: a parent a top resource lacks)."""
        if rid is None:
            return None
        with self.lock:
            return self.resources.get(rid.rstrip("/").lower())

    def view(self, rid: str, *, secrets: bool = False) -> dict[str, Any] | None:
        """The resource as GET shows it, or None."""
        with self.lock:
            res = self.get(rid)
            return res.view(secrets=secrets) if res else None

    def put(self, res: Resource) -> Resource:
        with self.lock:
            key = res.id.lower()
            old = self.resources.get(key)
            if old is not None:
                res.id, res.name, res.created = old.id, old.name, old.created
            res.changed = time.time()
            self.resources[key] = res
            return res

    def delete(self, rid: str) -> Resource | None:
        with self.lock:
            key = rid.rstrip("/").lower()
            gone = self.resources.pop(key, None)
            for child in [k for k in self.resources if k.startswith(key + "/")]:
                del self.resources[child]
            return gone

    def list(self, prefix: str = "", type_: str | None = None) -> list[Resource]:
        """Resources whose id starts with ``prefix`` (case-insensitive), optionally of one type."""
        with self.lock:
            p = prefix.lower()
            out = [r for k, r in self.resources.items() if k.startswith(p)]
            if type_:
                out = [r for r in out if r.type.lower() == type_.lower()]
            return sorted(out, key=lambda r: r.created)

    def list_in_group(self, sub: str, rg: str) -> builtins.list[Resource]:
        return self.list(f"/subscriptions/{sub}/resourceGroups/{rg}/providers/")

    # operations -------------------------------------------------------------
    def new_operation(self, **kwargs: Any) -> Operation:
        with self.lock:
            op = Operation(id=str(uuid.uuid4()), **kwargs)
            self.operations[op.id.lower()] = op
            return op

    def operation(self, op_id: str) -> Operation | None:
        with self.lock:
            return self.operations.get(op_id.lower())

    def advance(self, op: Operation) -> Operation:
        """One poll: InProgress while polls are left, then complete (once)."""
        with self.lock:
            op.polls += 1
            if op.done:
                return op
            if op.polls_left > 0:
                op.polls_left -= 1
                return op
            self.complete(op)
            return op

    def complete(self, op: Operation) -> None:
        with self.lock:
            if op.done:
                return
            if op.fail_with is not None:
                op.status = "Failed"
                op.error = op.fail_with
            else:
                op.status = "Succeeded"
            op.end = time.time()
            if op.on_complete is not None:
                op.on_complete(op)
