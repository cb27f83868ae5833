"""``destroy``: remove what azinfer created for inference, and nothing else.

The rules, one per resource, decided from an inventory snapshot (pure, like
the planner) and shown before anything is deleted:

- the container app: deleted when azinfer created it (first);
- the environment (and its storage link): deleted when azinfer created it
  and no other app or job runs in it;
- the Log Analytics workspace: deleted when azinfer created it and no other
  environment sends its logs there;
- the storage account (and its share): deleted when azinfer created it, it
  has no other share, no other environment mounts it, and the share holds
  nothing but files deploy uploaded whose content is unchanged. A reused
  resource (the fine-tuning share above all) is never deleted.

"azinfer created it" is the creation record ``azinfer-created: true``, a tag
the template sets only on resources the plan creates; an update writes an
existing resource's tags back as they are, so updating a resource never makes
it azinfer's. A record removed or edited by a person keeps the resource.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from azinfer._printable import printable
from azinfer.azure.clients import AzureClients
from azinfer.azure.events import duration_text
from azinfer.errors import AzureError
from azinfer.inventory import JOB_TYPE, InMemoryInventory, ResourceFacts
from azinfer.resources import ResourceKind
from azinfer.templates.inference import CREATED_TAG

__all__ = ["TeardownAction", "TeardownItem", "TeardownPlan", "teardown_plan", "run_teardown", "DELETE_TIMEOUT"]

_ORDER = (ResourceKind.CONTAINER_APP, ResourceKind.ENVIRONMENT, ResourceKind.ENVIRONMENT_STORAGE,
          ResourceKind.LOG_ANALYTICS, ResourceKind.STORAGE_ACCOUNT, ResourceKind.FILE_SHARE)


class TeardownAction(str, Enum):
    """What destroy does with one resource."""

    DELETE = "delete"
    """azinfer created it and nothing else uses it."""
    WITH_PARENT = "deleteWithParent"
    """Goes with the resource it belongs to (environment storage, file share)."""
    KEEP = "keep"
    """Reused, or still used by something else."""
    ABSENT = "absent"
    """Not there (deleted already, or never created)."""


@dataclass(frozen=True)
class TeardownItem:
    """One resource and what destroy does with it, and why."""

    kind: ResourceKind
    name: str
    action: TeardownAction
    reason: str


@dataclass(frozen=True)
class TeardownPlan:
    """What destroy will do, resource by resource (deletes in this order)."""

    resource_group: str
    items: tuple[TeardownItem, ...]

    @property
    def deletes(self) -> tuple[TeardownItem, ...]:
        """The resources to delete, in order."""
        return tuple(i for i in self.items if i.action is TeardownAction.DELETE)

    def to_json(self) -> dict[str, Any]:
        """``{"resourceGroup", "items": [{kind, name, action, reason}], "summary"}``."""
        return {
            "resourceGroup": self.resource_group,
            "items": [{"kind": i.kind.value, "name": i.name, "action": i.action.value, "reason": i.reason}
                      for i in self.items],
            "summary": {"delete": len(self.deletes),
                        "keep": sum(i.action is TeardownAction.KEEP for i in self.items)},
        }

    def _summary(self) -> str:
        if not self.deletes:
            return "Nothing to delete."
        return (f"Destroy: {len(self.deletes)} to delete, "
                f"{sum(i.action is TeardownAction.KEEP for i in self.items)} to keep.")

    def to_text(self) -> str:
        """Like ``azinfer plan``: one line per resource with its reason, and a summary."""
        lines = [f"azinfer destroy: resource group {self.resource_group!r}"]
        for item in self.items:  # a reason can quote a file on the share: its control characters escaped
            lines.append(f"  {_SYMBOLS[item.action]} {item.kind.label} {item.name!r} {_WORDS[item.action]}")
            lines.append(f"      because {printable(item.reason)}")
        lines.append(f"\n{self._summary()}")
        return "\n".join(lines) + "\n"

    def _repr_html_(self) -> str:
        """The plan as an HTML table, for notebooks: what happens to each resource, and why."""
        esc = html.escape
        rows = "".join(
            f"<tr><td><code>{esc(_SYMBOLS[i.action])}</code> {esc(_WORDS[i.action])}</td><td>{esc(i.kind.label)}</td>"
            f"<td><code>{esc(i.name)}</code></td><td>{esc(i.reason)}</td></tr>"
            for i in self.items
        )
        return (f"<div class=\"azinfer-destroy\"><p><b>azinfer destroy</b>: resource group "
                f"<code>{esc(self.resource_group)}</code>. {esc(self._summary())}</p><table><thead><tr><th>action</th>"
                f"<th>resource</th><th>name</th><th>reason</th></tr></thead><tbody>{rows}</tbody></table></div>")


_SYMBOLS = {TeardownAction.DELETE: "-", TeardownAction.WITH_PARENT: "-", TeardownAction.KEEP: "=",
            TeardownAction.ABSENT: " "}
_WORDS = {TeardownAction.DELETE: "will be deleted", TeardownAction.WITH_PARENT: "goes with its parent",
          TeardownAction.KEEP: "will be kept", TeardownAction.ABSENT: "is not there"}


def _not_created(facts: ResourceFacts) -> str | None:
    """Why the resource is not azinfer's to delete (``None``: azinfer created it, its record says so)."""
    record = facts.tags.get(CREATED_TAG)
    if record == "true":
        return None
    if record is None:
        return (f"azinfer did not create it (no {CREATED_TAG} tag: it was reused or only updated, "
                "or created by an earlier azinfer that kept no record)")
    return f"its {CREATED_TAG} tag is {record!r}, not 'true': edited, so kept"


def teardown_plan(inventory: InMemoryInventory, resource_group: str, names: Mapping[ResourceKind, str],
                  share_extras: Callable[[], list[str]]) -> TeardownPlan:
    """Decide, per resource, whether destroy deletes it.

    :param names: the resolved name of each resource kind (the app's from the config file).
    :param share_extras: lists what the share holds that azinfer did not put there (asked only when needed).
    """
    def get(kind: ResourceKind) -> ResourceFacts | None:
        return inventory.get(kind.arm_type, names[kind])

    items: dict[ResourceKind, TeardownItem] = {}
    app = get(ResourceKind.CONTAINER_APP)
    app_name = names[ResourceKind.CONTAINER_APP]
    app_goes = _decide(items, ResourceKind.CONTAINER_APP, app_name, app, [], "")

    env_name = names[ResourceKind.ENVIRONMENT]
    env = get(ResourceKind.ENVIRONMENT)
    users = [f.name for f in (*inventory.list(ResourceKind.CONTAINER_APP.arm_type), *inventory.list(JOB_TYPE))
             if (f.environment_id or "").rstrip("/").lower().endswith(f"/managedenvironments/{env_name.lower()}")
             and not (app_goes and f.type == ResourceKind.CONTAINER_APP.arm_type and f.name == app_name)]
    env_goes = _decide(items, ResourceKind.ENVIRONMENT, env_name, env, users, "other apps or jobs run in it")

    storage_link = f"{env_name}/{names[ResourceKind.ENVIRONMENT_STORAGE]}"
    link = inventory.get(ResourceKind.ENVIRONMENT_STORAGE.arm_type, storage_link)
    items[ResourceKind.ENVIRONMENT_STORAGE] = TeardownItem(
        ResourceKind.ENVIRONMENT_STORAGE, names[ResourceKind.ENVIRONMENT_STORAGE],
        TeardownAction.ABSENT if link is None else TeardownAction.WITH_PARENT if env_goes else TeardownAction.KEEP,
        "it does not exist" if link is None else "it belongs to the environment" if env_goes
        else "the environment stays",
    )

    workspace_name = names[ResourceKind.LOG_ANALYTICS]
    workspace = get(ResourceKind.LOG_ANALYTICS)
    customer = workspace.customer_id if workspace is not None else None
    readers = [f.name for f in inventory.list(ResourceKind.ENVIRONMENT.arm_type)
               if customer and f.log_analytics_customer_id == customer and not (env_goes and f.name == env_name)]
    _decide(items, ResourceKind.LOG_ANALYTICS, workspace_name, workspace, readers,
            "other environments send their logs to it")

    account_name = names[ResourceKind.STORAGE_ACCOUNT]
    account = get(ResourceKind.STORAGE_ACCOUNT)
    share_name = names[ResourceKind.FILE_SHARE]
    others = [f.short_name for f in inventory.list(ResourceKind.FILE_SHARE.arm_type)
              if f.parent_name == account_name and f.short_name != share_name]
    others += [f"environment storage {f.name}" for f in inventory.list(ResourceKind.ENVIRONMENT_STORAGE.arm_type)
               if f.account_name == account_name and not (env_goes and f.parent_name == env_name)]
    if account is not None and _not_created(account) is None and not others:
        others = [f"{share_name}/{p}" for p in share_extras()]
    account_goes = _decide(items, ResourceKind.STORAGE_ACCOUNT, account_name, account, others,
                           "it holds or serves more than the files deploy uploaded")
    share = inventory.get(ResourceKind.FILE_SHARE.arm_type, f"{account_name}/default/{share_name}")
    items[ResourceKind.FILE_SHARE] = TeardownItem(
        ResourceKind.FILE_SHARE, share_name,
        TeardownAction.ABSENT if share is None else TeardownAction.WITH_PARENT if account_goes else TeardownAction.KEEP,
        "it does not exist" if share is None else "it belongs to the storage account" if account_goes
        else "a file share is never deleted on its own (fine-tuning outputs live there)",
    )
    return TeardownPlan(resource_group, tuple(items[k] for k in _ORDER))


def _decide(items: dict[ResourceKind, TeardownItem], kind: ResourceKind, name: str, facts: ResourceFacts | None,
            users: list[str], used: str) -> bool:
    if facts is None:
        items[kind] = TeardownItem(kind, name, TeardownAction.ABSENT, "it does not exist")
        return False
    why_kept = _not_created(facts)
    if why_kept is not None:
        items[kind] = TeardownItem(kind, name, TeardownAction.KEEP, why_kept)
        return False
    if users:
        shown = ", ".join(sorted(users)[:3]) + (" ..." if len(users) > 3 else "")
        items[kind] = TeardownItem(kind, name, TeardownAction.KEEP, f"{used}: {shown}")
        return False
    items[kind] = TeardownItem(kind, name, TeardownAction.DELETE,
                               f"azinfer created it ({CREATED_TAG}: true) and nothing else uses it")
    return True


DELETE_TIMEOUT = 3600.0
"""Seconds destroy waits for one resource's delete (an environment's can take many minutes)."""


class _Poller(Protocol):
    """The SDK's long-running operation, as far as a delete needs it."""

    def result(self, timeout: float | None = None) -> Any: ...

    def done(self) -> bool: ...


def _finish(poller: _Poller, kind: ResourceKind, name: str) -> None:
    """Wait for a delete, up to :data:`DELETE_TIMEOUT`.

    :raises AzureError: when it is still running then (Azure goes on; a rerun deletes what is left).
    """
    poller.result(timeout=DELETE_TIMEOUT)
    if not poller.done():
        raise AzureError(f"{kind.spec.label} {name!r} is still being deleted after {duration_text(DELETE_TIMEOUT)}: "
                         "Azure goes on with it; run 'azinfer destroy' again to finish (it deletes what is left)")


def run_teardown(clients: AzureClients, plan: TeardownPlan,
                 on_progress: Callable[[TeardownItem, str], None] | None = None) -> tuple[TeardownItem, ...]:
    """Delete the plan's resources in order (app first); a resource already gone counts as deleted.

    :returns: the items deleted.
    """
    from azure.core.exceptions import ResourceNotFoundError

    group = plan.resource_group
    deleters = {
        ResourceKind.CONTAINER_APP: lambda n: _finish(clients.apps.container_apps.begin_delete(group, n),
                                                      ResourceKind.CONTAINER_APP, n),
        ResourceKind.ENVIRONMENT: lambda n: _finish(clients.apps.managed_environments.begin_delete(group, n),
                                                    ResourceKind.ENVIRONMENT, n),
        ResourceKind.LOG_ANALYTICS: lambda n: _finish(clients.logs.workspaces.begin_delete(group, n),
                                                      ResourceKind.LOG_ANALYTICS, n),
        ResourceKind.STORAGE_ACCOUNT: lambda n: clients.storage.storage_accounts.delete(group, n),
    }
    done = []
    for item in plan.deletes:
        if on_progress is not None:
            on_progress(item, "deleting")
        try:
            deleters[item.kind](item.name)
        except ResourceNotFoundError:
            pass
        done.append(item)
        if on_progress is not None:
            on_progress(item, "deleted")
    return tuple(done)
