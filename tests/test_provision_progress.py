"""Long ARM deployments look alive: attaching says so, each resource's elapsed time, a repeat every minute, a deadline.

The deployment is scripted on the fake context (tests/fake_azure.py), whose clock moves only when the
operation sleeps: an hour of waiting takes no time.
"""

from __future__ import annotations

import io
from types import SimpleNamespace as NS
from typing import Any

import pytest
from fake_azure import FakeApps, FakeContext, FakeRevision

from azinfer.azure import Event, EventKind, Operation
from azinfer.azure.arm import DEPLOYMENT_TIMEOUT, HEARTBEAT, attach
from azinfer.azure.events import Emitter, duration_text
from azinfer.cli.console import ResourceProgressDisplay
from azinfer.errors import DeploymentInterrupted

ENV = "Microsoft.App/managedEnvironments"


class HeldDeployment:
    """A deployment that runs for ``seconds`` of the context's clock, its environment in progress meanwhile."""

    def __init__(self, ctx: FakeContext, seconds: float) -> None:
        self.ctx, self.seconds = ctx, seconds

    def state(self) -> str:
        return "Running" if self.ctx.now < self.seconds else "Succeeded"

    def get(self, group: str, name: str) -> Any:
        return NS(properties=NS(provisioning_state=self.state()))

    def operations(self, group: str, name: str) -> list[Any]:
        state = "Running" if self.state() == "Running" else "Succeeded"
        return [NS(properties=NS(target_resource=NS(resource_type=ENV, resource_name="aienvx"),
                                 provisioning_state=state, status_message=None))]


def _context(seconds: float) -> FakeContext:
    ctx = FakeContext(FakeApps("app", [FakeRevision("app--1")]))
    held = HeldDeployment(ctx, seconds)
    ctx.clients.deployments = NS(deployments=NS(get=held.get),  # type: ignore[attr-defined]
                                 deployment_operations=NS(list=held.operations))
    return ctx


def test_attaching_says_so_and_repeats_a_running_resource_every_minute_with_its_time() -> None:
    ctx = _context(seconds=45 * 60)  # a GPU environment: most of an hour
    events: list[Event] = []
    attach(ctx, "rg", "azinfer-app", Emitter(Operation.PROVISION, events.append))
    stages = [e.message for e in events if e.kind is EventKind.STAGE]
    assert stages[0] == ("deployment 'azinfer-app' (an earlier run's) is still Running in Azure: attached to it, "
                         "waiting for it to end")
    assert stages[-1] == "deployment 'azinfer-app' ended: Succeeded"
    running = [e for e in events if e.kind is EventKind.RESOURCE and e.state == "Running"]
    # One event when it starts, then one a minute: the wait shows it is alive.
    assert 44 <= len(running) <= 46
    assert all(b.elapsed is not None and a.elapsed is not None and b.elapsed - a.elapsed >= HEARTBEAT
               for a, b in zip(running, running[1:]))
    assert "aienvx  44m" in running[-1].to_text()


def test_a_deployment_that_never_ends_stops_the_wait_at_the_deadline_naming_what_runs() -> None:
    ctx = _context(seconds=10 * DEPLOYMENT_TIMEOUT)
    with pytest.raises(DeploymentInterrupted) as caught:
        attach(ctx, "rg", "azinfer-app", Emitter(Operation.PROVISION, None))
    assert ctx.now >= DEPLOYMENT_TIMEOUT
    message = str(caught.value)
    assert message.startswith(f"waited {duration_text(DEPLOYMENT_TIMEOUT)} for the deployment "
                              "(still in progress: managedEnvironments aienvx Running)")
    assert "Run 'azinfer provision' again to attach" in message


def test_the_plain_display_prints_each_event_with_the_elapsed_time() -> None:
    stream = io.StringIO()
    display = ResourceProgressDisplay(stream)
    display(Event(Operation.PROVISION, EventKind.RESOURCE, resource_type=ENV, resource_name="aienvx",
                  state="Running", elapsed=125.0))
    display(Event(Operation.PROVISION, EventKind.RESOURCE, resource_type=ENV, resource_name="aienvx",
                  state="Failed", code="Conflict", message="no [capacity]", elapsed=3725.0))
    assert stream.getvalue().splitlines() == [
        f"  Running    {ENV} aienvx  2m05s",
        f"  Failed     {ENV} aienvx  1h02m  (Conflict: no [capacity])",
    ]


def test_the_live_table_ticks_for_a_running_resource_and_stops_for_a_finished_one() -> None:
    now = [100.0]
    display = ResourceProgressDisplay(io.StringIO(), clock=lambda: now[0])
    display._rows = {(ENV, "aienvx"): ("Running", "", 60.0, 100.0), ("Microsoft.Storage/storageAccounts", "st"): (
        "Succeeded", "", 12.0, 90.0)}
    now[0] = 130.0

    def cells() -> list[str]:
        from rich.console import Console

        out = io.StringIO()
        Console(file=out, width=200, color_system=None).print(display)
        return out.getvalue().split()

    shown = cells()
    assert "1m30s" in shown and "12s" in shown  # 60 s when it came, 30 s since; the finished one keeps its time
