"""Preflight's quota verdict names the smallest limit that works and where to ask for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from azinfer import plan_project
from azinfer.azure.preflight import PreflightFacts, Quota, preflight_findings
from azinfer.plan import ProblemCode
from azinfer.testing import write_project


@pytest.mark.parametrize(("params", "quota", "smallest", "where"), [
    # A user raised 0 -> 1 and still failed for 2 nodes (microsoft/foundry-dev-tools#467): 2 is what works.
    ({"gpuProfileType": "NC24-A100", "maximumInstanceCount": 2}, Quota("SubscriptionDedicatedNCA100Gpus", 0, 1),
     "a limit of 2 is the smallest", "Quotas > Azure Container Apps > SubscriptionNCA100Gpus"),
    ({"gpuProfileType": "Consumption-GPU-NC8as-T4", "maxReplicas": 3},
     Quota("ManagedEnvironmentConsumptionT4Gpus", 1, 2), "a limit of 4 is the smallest", "Quotas page"),
])
def test_too_little_quota_names_the_smallest_limit_and_the_request_path(
        tmp_path: Path, params: dict[str, object], quota: Quota, smallest: str, where: str) -> None:
    plan = plan_project(write_project(tmp_path, parameters={**params, "location": "westus3"}))
    problems, _ = preflight_findings(plan, PreflightFacts("westus3", quota_checked=True, quota=quota))
    [problem] = problems
    assert problem.code is ProblemCode.GPU_QUOTA
    assert smallest in problem.message and where in problem.message and "support request" in problem.message


def test_enough_quota_is_no_problem(tmp_path: Path) -> None:
    plan = plan_project(write_project(tmp_path, parameters={"maxReplicas": 2, "location": "westus3"}))
    problems, warnings = preflight_findings(
        plan, PreflightFacts("westus3", quota_checked=True, quota=Quota("ManagedEnvironmentConsumptionNCA100Gpus", 0, 2)))
    assert problems == () and warnings == ()
