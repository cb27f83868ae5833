"""A fake :class:`~azinfer.azure.context.AzureContext`: the operations' logic tested without HTTPS.

It answers the few SDK calls the operations make about one container app (its
revisions and replicas, restarts, its secret, deletes, traffic updates) from plain objects, holds a
scripted share sync, ``/ready`` and smoke test, and keeps a clock that moves only when the
operation sleeps, so a wait that would take minutes takes none. The emulator
(``azinfer.local.emulator``) stays for end to end.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

from azinfer.azure.clients import target_for
from azinfer.azure.context import AzureContext
from azinfer.azure.share import LocalFile, SyncPlan, SyncResult
from azinfer.azure.smoke import SmokeTest
from azinfer.errors import AzureError
from azinfer.azure.scope import ProjectScope
from azinfer.inventory import InMemoryInventory, ResourceFacts
from azinfer.resources import ResourceKind
from azinfer.templates.inference import API_KEY_SECRET, CREATED_TAG, TAGS

KEY = "fake-api-key"


@dataclass
class FakeRevision:
    """One revision: its replicas (name -> running state) and how many polls a fresh replica takes to run."""

    name: str
    active: bool = True
    replicas: dict[str, str] = field(default_factory=dict)
    running_state: str = "Running"
    starts_after: int = 1
    restarts: int = 0
    _polls: int = 0

    def poll(self) -> None:
        self._polls += 1
        for name, state in self.replicas.items():
            if state == "Starting" and self._polls > self.starts_after:
                self.replicas[name] = "Running"


class FakeApps:
    """``clients.apps``: one app and its revisions; every call recorded in ``calls``."""

    def __init__(self, app: str, revisions: list[FakeRevision], *, latest: str | None = None,
                 latest_ready: str | None = None) -> None:
        self.app, self.revisions = app, {r.name: r for r in revisions}
        last = revisions[-1].name
        self.latest, self.latest_ready = latest or last, latest_ready or latest or last
        self.calls: list[tuple[str, ...]] = []
        self.traffic: list[Any] = []
        """The traffic rules (``TrafficWeight``) the last update set; ``traffic_history`` keeps each."""
        self.traffic_history: list[list[tuple[str, int, str]]] = []
        self.new_revision_polls: int | None = 0
        """Polls until the replica of a revision an update creates runs (0: at once; None: never)."""
        self.container_apps = NS(get=self._get, list_secrets=self._secrets, begin_delete=self._delete("app"),
                                 begin_update=self._update)
        self.container_apps_revisions = NS(list_revisions=self._list, get_revision=self._revision,
                                           restart_revision=self._restart, activate_revision=self._activate,
                                           deactivate_revision=self._deactivate)
        self.container_apps_revision_replicas = NS(list_replicas=self._replicas)
        self.managed_environments = NS(begin_delete=self._delete("environment"))

    def _get(self, group: str, name: str) -> Any:
        self.calls.append(("get", name))
        return NS(name=name, id=f"/x/{name}", location="westus3", properties=NS(
            latest_revision_name=self.latest, latest_ready_revision_name=self.latest_ready,
            configuration=NS(ingress=NS(fqdn=f"{name}.example.test", traffic=list(self.traffic)),
                             active_revisions_mode="Multiple" if self.traffic else "Single"),
            template=NS(scale=NS(min_replicas=0, max_replicas=1)),
            workload_profile_name=None, environment_id=None, managed_environment_id=None,
            provisioning_state="Succeeded", running_status="Running"))

    def _secrets(self, group: str, name: str) -> Any:
        return NS(value=[NS(name=API_KEY_SECRET, value=KEY)])

    def _list(self, group: str, app: str) -> list[Any]:
        return [NS(name=r.name, properties=NS(active=r.active, created_time=None)) for r in self.revisions.values()]

    def _revision(self, group: str, app: str, name: str) -> Any:
        revision = self.revisions[name]
        revision.poll()
        return NS(name=name, properties=NS(active=revision.active, provisioning_state="Provisioned",
                                           running_state=revision.running_state, health_state="Healthy",
                                           provisioning_error=None, fqdn=f"{name}.example.test"))

    def _replicas(self, group: str, app: str, name: str) -> Any:
        return NS(value=[NS(name=replica, properties=NS(running_state=state, running_state_details=None, containers=[
            NS(ready=state == "Running", restart_count=0, running_state_details=None)]))
            for replica, state in self.revisions[name].replicas.items()])

    def _restart(self, group: str, app: str, name: str) -> None:
        self.calls.append(("restart", name))
        revision = self.revisions[name]
        revision.restarts += 1
        revision.replicas = {f"{name}-r{revision.restarts}": "Starting"}
        revision._polls = 0

    def _update(self, group: str, name: str, patch: Any, **options: Any) -> Any:
        """``begin_update``: records the traffic rules; a new ``revisionSuffix`` adds a revision."""
        template = patch.properties.template
        if template is not None and template.revision_suffix:
            suffix = template.revision_suffix
            self.calls.append(("new revision", suffix))
            polls = self.new_revision_polls
            revision = FakeRevision(f"{name}--{suffix}", starts_after=10**9 if polls is None else polls,
                                    replicas={f"{name}--{suffix}-a": "Running" if polls == 0 else "Starting"})
            self.revisions[revision.name] = revision
            self.latest = revision.name
        self.traffic = list(patch.properties.configuration.ingress.traffic)
        self.traffic_history.append([(t.revision_name, t.weight, t.label) for t in self.traffic])
        return NS(result=lambda: self._get(group, name))

    def _activate(self, group: str, app: str, name: str) -> None:
        self.calls.append(("activate", name))
        self.revisions[name].active = True
        self.revisions[name].replicas = {f"{name}-back": "Starting"}

    def _deactivate(self, group: str, app: str, name: str) -> None:
        self.calls.append(("deactivate", name))
        self.revisions[name].active = False
        self.revisions[name].replicas = {}

    def _delete(self, kind: str) -> Any:
        return _deleter(self.calls, kind)


def _deleter(calls: list[tuple[str, ...]], kind: str) -> Any:
    """An SDK ``begin_delete`` that records the delete and returns a finished poller."""
    def begin_delete(group: str, name: str) -> Any:
        calls.append(("delete", kind, name))
        return NS(result=lambda timeout=None: None, done=lambda: True)
    return begin_delete


class FakeSync:
    """A share sync that plans what the test says and records what it applied."""

    def __init__(self, upload: Mapping[str, bytes] | None = None, delete: tuple[str, ...] = ()) -> None:
        self.upload = tuple(LocalFile(path, len(data), b"", data=data) for path, data in (upload or {}).items())
        self.delete = delete
        self.applied: list[SyncPlan] = []

    def manifest(self) -> dict[str, dict[str, Any]]:
        return {}

    def plan(self, files: Mapping[str, LocalFile], *, roots: Any, delete: bool = False, owned_whole: Any = ()) -> SyncPlan:
        return SyncPlan(self.upload, self.delete if delete else (), tuple(sorted(files)), tuple(roots))

    def apply(self, plan: SyncPlan, *, on_bytes: Any = None) -> SyncResult:
        self.applied.append(plan)
        for file in plan.upload:
            on_bytes(file.path, 0)
            on_bytes(file.path, file.size)
        return SyncResult(tuple(f.path for f in plan.upload), plan.upload_bytes, plan.delete, len(plan.unchanged))


class FakeContext(AzureContext):
    """An :class:`AzureContext` over :class:`FakeApps`, a :class:`FakeSync`, scripted ``/ready`` and smoke test
    answers and a clock."""

    def __init__(self, apps: FakeApps, *, sync: FakeSync | None = None, ready: list[tuple[bool, str]] | None = None,
                 inventory: InMemoryInventory | None = None, logs: tuple[str, ...] = (),
                 smoke: list[SmokeTest | str] | None = None) -> None:
        self.now = 0.0
        super().__init__(target_for(), "00000000-0000-0000-0000-000000000000", poll_interval=5.0,
                         clock=lambda: self.now, sleep=self._sleep)
        self.apps, self.sync = apps, sync or FakeSync()
        self.ready_answers = list(ready or [(True, "200")])
        self.smoke_answers = list(smoke or [SmokeTest("fake-model", 0.25, 0.5, "Hello there")])
        """Each smoke test's answer in turn (the last repeats); a string: the endpoint refused, in those words."""
        self.asked: list[tuple[str, str | None]] = []
        self.smoked: list[tuple[str, str | None]] = []
        self._inventory, self._logs = inventory, logs
        self.clients = NS(apps=apps, logs=NS(workspaces=NS(begin_delete=_deleter(apps.calls, "workspace"))),  # type: ignore[assignment]
                          storage=NS(storage_accounts=NS(delete=lambda group, name: apps.calls.append(
                              ("delete", "storage", name)))), subscription_id=self.subscription_id)

    def _sleep(self, seconds: float) -> None:
        self.now += seconds

    def inventory(self, resource_group: str) -> InMemoryInventory:
        assert self._inventory is not None, "this test gave the fake no inventory"
        return self._inventory

    def share_sync(self, resource_group: str, account: str, share: str) -> Any:
        return self.sync

    def check_ready(self, url: str, api_key: str | None, *, timeout: float = 10.0) -> tuple[bool, str]:
        self.asked.append((url, api_key))
        return self.ready_answers.pop(0) if len(self.ready_answers) > 1 else self.ready_answers[0]

    def log_lines(self, resource_group: str, app: str, **options: Any) -> Iterator[str]:
        return iter(self._logs)

    def smoke_test(self, url: str, api_key: str | None, *, timeout: float = 120.0) -> SmokeTest:
        self.smoked.append((url, api_key))
        self.now += 0.5  # the answer takes half a second on the fake clock
        answer = self.smoke_answers.pop(0) if len(self.smoke_answers) > 1 else self.smoke_answers[0]
        if isinstance(answer, str):  # what the endpoint refused, as smoke.smoke_test says it
            raise AzureError(f"smoke test: {answer}")
        return answer


def provisioned_project(root: Path, app: str = "aiacaappfake") -> Path:
    """A project whose ``infra/inference.config.json`` names ``app`` (as a provision writes it)."""
    from azinfer.config import write_config
    from azinfer.project import InferenceConfig
    from azinfer.testing import write_project

    write_project(root, subscription_id="00000000-0000-0000-0000-000000000000", resource_group="rg-fake")
    write_config(root, InferenceConfig(subscription_id="00000000-0000-0000-0000-000000000000",
                                       resource_group="rg-fake", storage_account_name="stfake",
                                       file_share_name="share", app_name=app, app_endpoint=f"{app}.example.test"))
    return root


def owned_group(scope: ProjectScope, app: str) -> InMemoryInventory:
    """The app, its environment and workspace, created by azinfer (its creation tag), nothing else in the group.

    No storage account: whether its share holds only azinfer's files is the share's business (test_lifecycle.py).
    """
    names = {kind: scope.resolve(InMemoryInventory()).name(kind) for kind in ResourceKind}
    env = names[ResourceKind.ENVIRONMENT]
    tags = {**TAGS, CREATED_TAG: "true"}
    return InMemoryInventory((
        ResourceFacts(ResourceKind.CONTAINER_APP.arm_type, app, tags=tags, environment_id=f"/x/managedEnvironments/{env}"),
        ResourceFacts(ResourceKind.ENVIRONMENT.arm_type, env, tags=tags, log_analytics_customer_id="c1"),
        ResourceFacts(ResourceKind.LOG_ANALYTICS.arm_type, names[ResourceKind.LOG_ANALYTICS], tags=tags, customer_id="c1"),
    ), resource_group_location="westus3")
