"""The Azure operations' logic on a fake context (tests/fake_azure.py): no HTTPS, no emulator, no waiting.

Deploy decides whether to restart and what to wait for; status reads the
serving revision; destroy deletes app first and asks before it does. The
emulator tests (test_lifecycle*.py) run the same operations end to end.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_azure import KEY, FakeApps, FakeContext, FakeRevision, FakeSync, owned_group, provisioned_project

from azinfer.azure import Event, EventKind, Operation, Question, ReadyTimeout
from azinfer.azure import deploy as deploy_op
from azinfer.azure import destroy as destroy_op
from azinfer.azure import status as status_op
from azinfer.azure.scope import ProjectScope
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
