"""The canary rollout and rollback on a fake context (tests/fake_azure.py): which traffic rules, in which order.

The new revision gets 0 % until its smoke test passes, then the traffic moves in
steps; a failed smoke test leaves (or puts back) 100 % on the serving revision;
rollback gives the replaced revision the traffic again. End to end on the
emulator: tests/test_rollout_emulator.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_azure import KEY, FakeApps, FakeContext, FakeRevision, FakeSync, provisioned_project

from azinfer.azure import Event, EventKind, Operation
from azinfer.azure import rollout as rollout_op
from azinfer.azure.scope import ProjectScope
from azinfer.azure.smoke import SmokeTest
from azinfer.errors import AzureError, SmokeTestFailed
from azinfer.project import load_project

APP = "aiacaappfake"
OLD = f"{APP}--old"


def _scope(tmp_path: Path) -> ProjectScope:
    return ProjectScope.of(load_project(provisioned_project(tmp_path / "project", APP)))


def _serving() -> FakeApps:
    return FakeApps(APP, [FakeRevision(OLD, replicas={f"{OLD}-a": "Running"})])


def test_weights_go_up_in_equal_steps_and_end_at_100() -> None:
    assert rollout_op.traffic_steps(1) == (100,)
    assert rollout_op.traffic_steps(4) == (25, 50, 75, 100)
    assert rollout_op.traffic_steps(3) == (33, 67, 100)


def test_a_canary_gets_no_traffic_until_its_smoke_test_passes_then_moves_in_steps(tmp_path: Path) -> None:
    apps = _serving()
    ctx = FakeContext(apps, sync=FakeSync({"inference/app.py": b"v2"}))
    events: list[Event] = []
    result = rollout_op.rollout(ctx, _scope(tmp_path), steps=4, step_wait=30, on_event=events.append)
    new = result.revision
    assert new is not None and new.startswith(f"{APP}--c") and result.previous == OLD
    assert result.weights == (25, 50, 75, 100)
    assert apps.traffic_history == [
        [(OLD, 100, "stable")],  # the new revision is created while every request stays on the old one
        [(OLD, 100, "stable"), (new, 0, "canary")],
        [(OLD, 75, "stable"), (new, 25, "canary")],
        [(OLD, 50, "stable"), (new, 50, "canary")],
        [(OLD, 25, "stable"), (new, 75, "canary")],
        [(new, 100, "stable"), (OLD, 0, "previous")],
    ]
    # Smoke-tested at the new revision's own address, with the key, once before any traffic and before each step.
    assert ctx.smoked == [(f"https://{new}.example.test", KEY)] * 4
    assert ctx.now == 3 * 30 + 4 * 0.5  # the waits between steps and the answers, on the fake clock
    assert not [c for c in apps.calls if c[0] in ("restart", "deactivate")]  # nothing restarted, the old one kept
    assert "100% of the traffic on revision " + repr(new) in [e.message for e in events]
    assert {e.operation for e in events} == {Operation.DEPLOY}


def test_a_failing_smoke_test_leaves_the_traffic_where_it_was_and_says_why(tmp_path: Path) -> None:
    apps = _serving()
    ctx = FakeContext(apps, smoke=["POST /v1/chat/completions answered 500 engine failed"])
    with pytest.raises(SmokeTestFailed) as info:
        rollout_op.rollout(ctx, _scope(tmp_path), steps=2)
    message = str(info.value)
    assert "\n" not in message and "POST /v1/chat/completions answered 500 engine failed" in message
    assert message.endswith(f"the traffic stays on revision {OLD!r}")
    assert all(rules[0] == (OLD, 100, "stable") for rules in apps.traffic_history)
    assert apps.traffic[-1].weight == 0 and apps.traffic[-1].label == "canary"


def test_a_smoke_test_failing_between_steps_puts_all_the_traffic_back(tmp_path: Path) -> None:
    apps = _serving()
    ctx = FakeContext(apps, smoke=[SmokeTest("m", 0.1, 0.2, "Hi"), "POST /v1/chat/completions answered 503 no healthy upstream"])
    with pytest.raises(SmokeTestFailed, match="503 no healthy upstream"):
        rollout_op.rollout(ctx, _scope(tmp_path), steps=2, step_wait=5)
    new = apps.latest
    assert apps.traffic_history[-2:] == [[(OLD, 50, "stable"), (new, 50, "canary")],
                                         [(OLD, 100, "stable"), (new, 0, "canary")]]


def test_rollback_gives_the_replaced_revision_all_the_traffic_and_a_second_one_goes_forward(tmp_path: Path) -> None:
    apps = _serving()
    ctx = FakeContext(apps)
    scope = _scope(tmp_path)
    new = rollout_op.rollout(ctx, scope).revision
    events: list[Event] = []
    back = rollout_op.rollback(ctx, scope, on_event=events.append)
    assert (back.revision, back.replaced) == (OLD, new)
    assert apps.traffic_history[-1] == [(OLD, 100, "stable"), (new, 0, "previous")]
    assert {e.operation for e in events} == {Operation.ROLLBACK} and not [c for c in apps.calls if c[0] == "activate"]
    forward = rollout_op.rollback(ctx, scope)
    assert (forward.revision, apps.traffic_history[-1]) == (new, [(new, 100, "stable"), (OLD, 0, "previous")])


def test_rollback_starts_a_deactivated_revision_and_waits_for_it_before_moving_traffic(tmp_path: Path) -> None:
    apps = _serving()
    ctx = FakeContext(apps)
    scope = _scope(tmp_path)
    rollout_op.rollout(ctx, scope)
    apps.revisions[OLD].active = False
    updates = len(apps.traffic_history)
    rollout_op.rollback(ctx, scope)
    assert ("activate", OLD) in apps.calls and len(apps.traffic_history) == updates + 1
    assert ctx.asked[-1] == (f"https://{OLD}.example.test", KEY)  # /ready at its own address before the switch


def test_rollback_without_a_canary_deploy_says_there_is_nothing_to_go_back_to(tmp_path: Path) -> None:
    apps = _serving()
    with pytest.raises(AzureError, match="no revision to roll back to"):
        rollout_op.rollback(FakeContext(apps), _scope(tmp_path))
    assert apps.traffic_history == []


def test_a_second_canary_deactivates_the_revision_older_than_previous(tmp_path: Path) -> None:
    apps = _serving()
    ctx = FakeContext(apps)
    scope = _scope(tmp_path)
    first = rollout_op.rollout(ctx, scope).revision
    second = rollout_op.rollout(ctx, scope)
    assert second.previous == first and second.revision not in (first, OLD)
    assert ("deactivate", OLD) in apps.calls and apps.revisions[first].active  # same content: a -2 suffix
    assert second.revision == f"{first}-2"


def test_cli_canary_with_restart_or_no_wait_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from azinfer.cli import main

    for extra in ("--restart", "--no-wait"):
        assert main(["deploy", "/nonexistent", "--canary", extra]) == 2
        assert capsys.readouterr().err.splitlines() == [
            "azinfer: error: --canary starts a new revision and waits for it: leave out --restart and --no-wait"]


def test_after_a_canary_that_never_got_ready_a_plain_deploy_restarts_the_serving_revision(tmp_path: Path) -> None:
    from azinfer.azure import deploy as deploy_op
    from azinfer.errors import ReadyTimeout

    apps = _serving()
    apps.new_revision_polls = None  # the canary's replica never runs
    ctx = FakeContext(apps, sync=FakeSync({"a.py": b"x"}))
    scope = _scope(tmp_path)
    with pytest.raises(ReadyTimeout):
        rollout_op.rollout(ctx, scope, timeout=30)
    assert apps.latest != OLD and apps.latest_ready == OLD and apps.traffic[0].revision_name == OLD
    result = deploy_op.deploy(ctx, scope, restart=True)
    assert result.restarted == OLD and ("restart", OLD) in apps.calls  # not a wait for the stuck canary
