"""The Azure operations' logic on a fake context (tests/fake_azure.py): no HTTPS, no emulator, no waiting.

Deploy decides whether to restart and what to wait for; status reads the
serving revision; destroy deletes app first and asks before it does; up
composes provision (scripted here), the wait and the smoke test. The
emulator tests (test_lifecycle*.py) run the same operations end to end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_azure import KEY, FakeApps, FakeContext, FakeRevision, FakeSync, owned_group, provisioned_project

from azinfer.azure import Event, EventKind, Operation, Question, ReadyTimeout
from azinfer.azure import deploy as deploy_op
from azinfer.azure import destroy as destroy_op
from azinfer.azure import status as status_op
from azinfer.azure.scope import ProjectScope
from azinfer.plan import make_plan
from azinfer.project import load_project
from azinfer.resources import ResourceKind

APP = "aiacaappfake"


def _scope(tmp_path: Path) -> ProjectScope:
    return ProjectScope.of(load_project(provisioned_project(tmp_path / "project", APP)))


def _stages(events: list[Event]) -> list[str]:
    return [e.message for e in events if e.kind is EventKind.STAGE]


def test_nothing_changed_means_no_restart_and_no_wait(tmp_path: Path) -> None:
    apps = FakeApps(APP, [FakeRevision("rev1", replicas={"rev1-a": "Running"})])
    ctx = FakeContext(apps)
    events: list[Event] = []
    result = deploy_op.deploy(ctx, _scope(tmp_path), on_event=events.append)
    assert result.restarted is None and result.revision is None and not result.declined
    assert ("restart", "rev1") not in apps.calls and ctx.asked == []
    assert [s.split(" ", 1)[0] for s in _stages(events)] == ["syncing", "uploaded"]
    assert {e.operation for e in events} == {Operation.DEPLOY}


def test_a_change_restarts_the_serving_revision_and_waits_for_a_fresh_replica(tmp_path: Path) -> None:
    apps = FakeApps(APP, [FakeRevision("rev1", replicas={"rev1-old": "Running"}, starts_after=2)])
    ctx = FakeContext(apps, sync=FakeSync({"inference/app.py": b"print(1)\n"}),
                      ready=[(False, "503 starting"), (True, "200")])
    events: list[Event] = []
    result = deploy_op.deploy(ctx, _scope(tmp_path), on_event=events.append)
    assert result.restarted == "rev1" and result.revision is not None
    assert [r.name for r in result.revision.replicas] == ["rev1-r1"]  # the old replica never counted
    assert apps.calls.count(("restart", "rev1")) == 1
    # /ready is asked (with the app's key, at the config's endpoint) only once the fresh replica runs.
    assert ctx.asked == [(f"https://{APP}.example.test", KEY)] * 2
    stages = _stages(events)
    assert stages[2:] == ["restarting revision 'rev1'", "replica rev1-r1 is starting",
                          "replica rev1-r1 is running; waiting for /ready", "the endpoint answers /ready"]
    assert len(stages) == len(set(stages))  # each stage said once, however many polls
    transfer = [e for e in events if e.kind is EventKind.TRANSFER]
    assert [(e.files, e.total) for e in transfer] == [(1, 9)]
    assert [(e.path, e.sent) for e in events if e.kind is EventKind.BYTES] == [("inference/app.py", 0),
                                                                                ("inference/app.py", 9)]
    assert ctx.now == 3 * ctx.poll_interval  # two polls starting, one answering 503: on the fake clock


def test_a_newer_revision_on_its_way_is_waited_for_instead_of_restarting(tmp_path: Path) -> None:
    apps = FakeApps(APP, [FakeRevision("rev1", replicas={"rev1-a": "Running"}),
                          FakeRevision("rev2", replicas={"rev2-a": "Starting"})], latest="rev2", latest_ready="rev1")
    ctx = FakeContext(apps)
    events: list[Event] = []
    result = deploy_op.deploy(ctx, _scope(tmp_path), restart=True, on_event=events.append)
    assert result.restarted == "rev2" and not [c for c in apps.calls if c[0] == "restart"]
    assert "revision 'rev2' is new (the template changed): waiting for it instead of restarting" in _stages(events)


def test_a_replica_that_never_gets_ready_is_a_timeout_naming_its_state_and_last_log(tmp_path: Path) -> None:
    apps = FakeApps(APP, [FakeRevision("rev1", replicas={"rev1-old": "Running"})])
    ctx = FakeContext(apps, sync=FakeSync({"a.py": b"x"}), ready=[(False, "503 no healthy upstream")],
                      logs=("loading model", "torch.OutOfMemoryError: CUDA out of memory"))
    with pytest.raises(ReadyTimeout) as info:
        deploy_op.deploy(ctx, _scope(tmp_path), timeout=60)
    message = str(info.value)
    assert "did not get ready within 60 s" in message and "/ready answered 503 no healthy upstream" in message
    assert message.endswith("its last log line: torch.OutOfMemoryError: CUDA out of memory")
    assert info.value.revision.replicas[0].name == "rev1-r1"
    assert 60 <= ctx.now <= 60 + ctx.poll_interval  # the deadline held, on the fake clock


def test_no_to_the_question_is_a_declined_result_and_nothing_is_written(tmp_path: Path) -> None:
    apps = FakeApps(APP, [FakeRevision("rev1", replicas={"rev1-a": "Running"})])
    sync = FakeSync({"inference/app.py": b"v2"}, delete=("inference/old.py",))
    ctx = FakeContext(apps, sync=sync)
    asked: list[Question[object]] = []
    result = deploy_op.deploy(ctx, _scope(tmp_path), delete=True,
                              confirm=lambda question: asked.append(question) or False)
    assert result.declined and result.restarted is None and sync.applied == []
    assert not [c for c in apps.calls if c[0] == "restart"]
    (question,) = asked
    assert question.operation is Operation.DEPLOY and question.worth_asking  # a delete is worth a question
    assert "  - inference/old.py" in question.summary and question.subject.plan.delete == ("inference/old.py",)


def test_status_reads_the_serving_revision_without_asking_ready(tmp_path: Path) -> None:
    apps = FakeApps(APP, [FakeRevision("rev1", replicas={"rev1-a": "Running"})])
    ctx = FakeContext(apps)
    status = status_op.status(ctx, _scope(tmp_path), ask_ready=False)
    assert status.endpoint == f"https://{APP}.example.test" and status.ready is None and ctx.asked == []
    assert status.revision is not None and [r.name for r in status.revision.replicas] == ["rev1-a"]


def test_destroy_asks_then_deletes_app_first_and_reports_each(tmp_path: Path) -> None:
    scope = _scope(tmp_path)
    apps = FakeApps(APP, [FakeRevision("rev1")])
    ctx = FakeContext(apps, inventory=owned_group(scope, APP))
    declined = destroy_op.destroy(ctx, scope, confirm=lambda question: False)
    assert declined.declined and declined.deleted == () and not [c for c in apps.calls if c[0] == "delete"]
    events: list[Event] = []
    asked: list[Question[object]] = []
    result = destroy_op.destroy(ctx, scope, confirm=lambda question: asked.append(question) or True,
                                on_event=events.append)
    deletes = [c[1] for c in apps.calls if c[0] == "delete"]
    assert deletes == ["app", "environment", "workspace"]
    assert [i.kind for i in result.deleted][0] is ResourceKind.CONTAINER_APP
    assert [(e.resource_name, e.state) for e in events][:2] == [(APP, "deleting"), (APP, "deleted")]
    assert asked[0].asks == "Delete these resources?" and asked[0].summary == result.plan.to_text()
    assert result.config_path is not None and "ACA_APP_NAME" in result.config_path.read_text()


def test_a_delete_that_never_ends_stops_at_its_deadline_and_a_rerun_finishes(tmp_path: Path) -> None:
    from types import SimpleNamespace as NS

    from azinfer.errors import AzureError

    scope = _scope(tmp_path)
    apps = FakeApps(APP, [FakeRevision("rev1")])
    ctx = FakeContext(apps, inventory=owned_group(scope, APP))
    waited: list[float | None] = []

    def stuck(group: str, name: str) -> NS:
        apps.calls.append(("delete", "environment", name))
        return NS(result=lambda timeout=None: waited.append(timeout), done=lambda: False)

    finishing = apps.managed_environments.begin_delete
    apps.managed_environments.begin_delete = stuck
    with pytest.raises(AzureError, match=r"^Container Apps environment '.+' is still being deleted after 1h00m: Azure goes on with "
                                         r"it; run 'azinfer destroy' again"):
        destroy_op.destroy(ctx, scope, confirm=lambda question: True)
    assert waited == [3600.0]
    apps.managed_environments.begin_delete = finishing
    result = destroy_op.destroy(ctx, scope, confirm=lambda question: True)
    assert ResourceKind.ENVIRONMENT in [i.kind for i in result.deleted]


# -- up: the composition of provision, deploy's wait and the smoke test ---------------------------------------
def _scripted_provision(scope: ProjectScope, *, writes: tuple[str, ...], uploaded: tuple[str, ...],
                        interrupt: BaseException | None = None) -> Any:
    """Stands in for provision.provision: asks with a preview whose what-if has ``writes``, then reports."""
    from azinfer.azure import Preview, ProvisionResult, WhatIf, WhatIfChange
    from azinfer.azure.share import SyncResult
    from azinfer.inventory import InMemoryInventory
    from azinfer.project import INFERENCE_CONFIG

    inventory = InMemoryInventory(resource_group_location="westus3")
    plan = make_plan(scope.resolve(inventory), inventory)
    what_if = WhatIf(tuple(WhatIfChange(f"/subscriptions/s/resourceGroups/rg-fake/providers/{kind}", "Create")
                           for kind in writes))
    preview = Preview(plan, what_if, inventory)

    def provision(ctx: Any, scope_: ProjectScope, preview_: Any, *, confirm: Any, on_event: Any) -> ProvisionResult:
        assert preview_ is None  # up lets provision plan, preview and ask: one inventory, one what-if
        config = scope_.config()
        path = scope_.project.root / INFERENCE_CONFIG
        if not confirm(Question(Operation.PROVISION, "Provision these changes?", preview.to_text(), preview)):
            return ProvisionResult(plan, what_if, None, config, path, declined=True)
        if interrupt is not None:
            raise interrupt
        sync = SyncResult(uploaded, 10 * len(uploaded), (), 3)
        return ProvisionResult(plan, what_if, "azinfer-app" if writes else None, config, path, sync=sync)

    return provision


def _up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, apps: FakeApps, *, writes: tuple[str, ...] = (),
        uploaded: tuple[str, ...] = (), confirm: Any = None, interrupt: BaseException | None = None,
        ready: list[tuple[bool, str]] | None = None) -> tuple[FakeContext, list[Event], Any]:
    from azinfer.azure import provision as provision_op
    from azinfer.azure import up as up_op

    scope = _scope(tmp_path)
    monkeypatch.setattr(provision_op, "provision", _scripted_provision(scope, writes=writes, uploaded=uploaded,
                                                                       interrupt=interrupt))
    ctx = FakeContext(apps, ready=ready)
    events: list[Event] = []
    try:
        result = up_op.up(ctx, scope, confirm=confirm, on_event=events.append)
    except Exception as exc:  # noqa: BLE001 - the test looks at it
        result = exc
    return ctx, events, result


def _up_stages(events: list[Event]) -> list[str]:
    return [e.message for e in events if e.operation is Operation.UP]


def test_up_on_a_new_app_waits_for_it_without_a_restart_then_asks_the_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    apps = FakeApps(APP, [FakeRevision("rev1", replicas={"rev1-a": "Starting"}, starts_after=2)])
    asked: list[Question[Any]] = []
    ctx, events, result = _up(tmp_path, monkeypatch, apps, writes=(f"Microsoft.App/containerApps/{APP}",),
                              uploaded=(".azinfer/dist/CURRENT",),
                              confirm=lambda question: asked.append(question) or True)
    assert not isinstance(result, Exception), result
    (question,) = asked
    assert question.operation is Operation.UP and question.worth_asking  # something would be written
    assert not [c for c in apps.calls if c[0] == "restart"]  # the new revision started with the files
    assert [s.name for s in result.stages] == ["plan", "provision", "ready", "smoke test"]
    assert ctx.smoked == [(f"https://{APP}.example.test", KEY)]  # ARM's endpoint, the app's key
    assert result.endpoint == f"https://{APP}.example.test" and result.smoke.answer == "Hello there"
    stages = _up_stages(events)
    assert stages[0].startswith("plan: planning against resource group 'rg-fake'")
    assert stages[1].startswith("plan: 1 change(s) to deploy (")
    assert stages[-1].startswith("smoke test: model 'fake-model' answered in 0.50 s")
    # The wait's own stages arrive on the same stream, under deploy's name, between up's.
    waits = [e.message for e in events if e.operation is Operation.DEPLOY]
    assert waits[-1] == "the endpoint answers /ready" and "replica rev1-a is starting" in waits
    assert result.stages[2].seconds == 2 * ctx.poll_interval  # timed on the context's clock
    assert result.stages[3].seconds == 0.5


def test_up_rerun_with_nothing_changed_redoes_nothing_and_does_not_ask(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    apps = FakeApps(APP, [FakeRevision("rev1", replicas={"rev1-a": "Running"})])
    asked: list[Question[Any]] = []
    ctx, events, result = _up(tmp_path, monkeypatch, apps, confirm=lambda question: asked.append(question) or True)
    assert not isinstance(result, Exception), result
    assert not asked[0].worth_asking  # nothing would be written: the command line goes on without a question
    assert not [c for c in apps.calls if c[0] == "restart"] and ctx.asked == [(f"https://{APP}.example.test", KEY)]
    assert result.stages[0].outcome == "nothing to change in Azure"
    assert result.stages[1].outcome == "nothing deployed; share up to date; wrote inference.config.json"
    assert ctx.now == 0.5  # no poll slept: only the smoke test's half second


def test_up_restarts_when_the_share_changed_under_a_running_revision(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    apps = FakeApps(APP, [FakeRevision("rev1", replicas={"rev1-old": "Running"})])
    _, events, result = _up(tmp_path, monkeypatch, apps, uploaded=("inference/app.py",))
    assert not isinstance(result, Exception), result
    assert apps.calls.count(("restart", "rev1")) == 1
    assert result.ready.restarted == "rev1" and [r.name for r in result.ready.revision.replicas] == ["rev1-r1"]
    assert result.stages[2].outcome == "restarted revision 'rev1'; /ready answers"


def test_up_declined_writes_and_waits_for_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    apps = FakeApps(APP, [FakeRevision("rev1", replicas={"rev1-a": "Running"})])
    ctx, _, result = _up(tmp_path, monkeypatch, apps, writes=("x",), confirm=lambda question: False)
    assert result.declined and result.ready is None and result.smoke is None
    assert ctx.asked == [] and ctx.smoked == [] and [s.name for s in result.stages] == ["plan"]


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), "deployment"])
def test_up_interrupted_names_the_stage_and_how_to_continue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           interrupt: Any) -> None:
    from azinfer.errors import DeploymentInterrupted, UpInterrupted

    apps = FakeApps(APP, [FakeRevision("rev1", replicas={"rev1-a": "Running"})])
    config = (tmp_path / "project" / "infra" / "inference.config.json")
    exc = DeploymentInterrupted("azinfer-app", "rg-fake") if interrupt == "deployment" else interrupt
    ctx, _, result = _up(tmp_path, monkeypatch, apps, writes=("x",), interrupt=exc)
    assert isinstance(result, UpInterrupted) and result.stage == "provision"
    assert "Run 'azinfer up' again to continue" in str(result) and "nothing local is half-written" in str(result)
    if interrupt == "deployment":
        assert "ARM deployment 'azinfer-app' goes on in Azure" in str(result)
    assert ctx.smoked == [] and "aiacaappfake" in config.read_text()  # the config as it was
