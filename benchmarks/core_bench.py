"""Core speed: `import azinfer` time and plan + render of the bundled example, in-process.

Run: python benchmarks/core_bench.py
Targets (issue 2): import <= 150 ms, plan + render <= 100 ms. The baseline in
the same run is importing the modules a plan needs eagerly (what `import
azinfer` would cost without lazy imports).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "phi3"


def _import_ms(statement: str, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True)
        times.append((time.perf_counter() - start) * 1000)
    empty = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        empty.append((time.perf_counter() - start) * 1000)
    return statistics.median(times) - statistics.median(empty)


def _importtime_ms() -> float:
    """The cumulative time `python -X importtime` reports for the azinfer package."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import azinfer"], capture_output=True, text=True)
    line = next(line for line in result.stderr.splitlines() if line.rstrip().endswith("| azinfer"))
    return int(line.split("|")[1]) / 1000


def main() -> None:
    light = _import_ms("import azinfer")
    eager = _import_ms("import azinfer.pipeline, azinfer.templates.arm, azinfer.templates.bicep, azinfer.templates.inference, jsonschema")
    print(f"import azinfer (-X importtime cumulative): {_importtime_ms():.1f} ms   target <= 150 ms")
    print(f"import azinfer (wall, minus bare interpreter): {light:.1f} ms")
    print(f"baseline, every stage imported eagerly:        {eager:.1f} ms")

    from azinfer import plan_project, render

    # The first call pays the schema compile and the template modules' import.
    cold_start = time.perf_counter()
    render(plan_project(EXAMPLE))
    first = (time.perf_counter() - cold_start) * 1000
    runs = []
    for _ in range(50):
        start = time.perf_counter()
        render(plan_project(EXAMPLE))
        runs.append((time.perf_counter() - start) * 1000)
    print(f"plan + render of examples/phi3, first (cold):  {first:.1f} ms   target <= 100 ms")
    print(f"plan + render, median of 50:                   {statistics.median(runs):.1f} ms (p95 "
          f"{sorted(runs)[int(len(runs) * 0.95) - 1]:.1f} ms)")


if __name__ == "__main__":
    main()
