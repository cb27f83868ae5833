"""Fit and cost of the 97 released AI Toolkit template versions on the serverless A100 and T4.

Run: python benchmarks/toolkit_estimates.py
Prints, per GPU: how many plans get a cost and a fit verdict, the verdicts, the
blocked ones and why, and the offline plan time with the new checks.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from test_toolkit_history_estimates import RELEASED, project  # noqa: E402

from azinfer import plan_project  # noqa: E402
from azinfer.testing import EXAMPLE_SUBSCRIPTION  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for gpu in ("Consumption-GPU-NC24-A100", "Consumption-GPU-NC8as-T4"):
            verdicts: Counter[str] = Counter()
            blocked: Counter[str] = Counter()
            costed = fitted = 0
            times = []
            for version in RELEASED:
                root = project(version, Path(tmp) / gpu, gpu)
                start = time.perf_counter()
                plan = plan_project(root, subscription_id=EXAMPLE_SUBSCRIPTION, resource_group="rg-finetune")
                times.append((time.perf_counter() - start) * 1000)
                costed += plan.cost is not None
                fitted += plan.fit is not None and plan.fit.verdict.value != "unknown"
                verdicts[f"{version.model.removeprefix('configs/')}: {plan.fit.verdict.value if plan.fit else '-'}"] += 1
                for problem in plan.problems:
                    blocked[f"{problem.code.value}: {version.model.removeprefix('configs/')}"] += 1
            print(f"{gpu}: {len(RELEASED)} versions, {costed} with a cost, {fitted} with a fit verdict, "
                  f"{sum(1 for _ in blocked.elements())} blocked; plan_project median {statistics.median(times):.1f} ms")
            for line, n in sorted(verdicts.items()):
                print(f"  {n:3d} x {line}")
            for line, n in sorted(blocked.items()):
                print(f"  blocked {n:3d} x {line}")
            first = next(v for v in RELEASED if v.model.endswith("llama-v3-8b"))
            plan = plan_project(project(first, Path(tmp) / "one" / gpu, gpu), subscription_id=EXAMPLE_SUBSCRIPTION,
                                resource_group="rg-finetune")
            print(f"  e.g. llama-v3-8b: {plan.fit.summary() if plan.fit else '-'}")


if __name__ == "__main__":
    main()
