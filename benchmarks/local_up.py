"""``azinfer up examples/phi3 --local --yes`` as a user runs it: seconds from the command to the smoke test's answer.

Run: python benchmarks/local_up.py
- stand-in model: building the tiny random-weight model (azinfer.local.tinymodel.build_stand_in) on its
  own, in a fresh state folder (up builds it once, when no model is at hand; excluded from the figures below);
- cold: no daemon running (it starts, seeds, the app is created and its container started from the wheel);
- warm: the same command again while the daemon runs (resume: nothing deployed, uploaded or restarted);
- then the same pair twice more (after `down --local`, on the model built already), for the spread on a
  busy machine.
Each figure is the wall time of the whole command (`python -m azinfer.cli`), and up's own stage total.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _cli(state: str, *args: str) -> tuple[float, str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}, "XDG_STATE_HOME": state,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "azinfer.cli", *args], capture_output=True, text=True, env=env,
                            cwd=REPO, timeout=600)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"azinfer {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return seconds, result.stdout


def _up(state: str, label: str) -> None:
    seconds, out = _cli(state, "up", "examples/phi3", "--local", "--yes")
    stages = re.search(r"Up in ([0-9.]+) s", out)
    smoke = re.search(r"first token after ([0-9.]+) s", out)
    print(f"  {label:<34} {seconds:6.1f} s to the answer (up's stages {stages.group(1) if stages else '?'} s, "
          f"first token {smoke.group(1) if smoke else '?'} s)")


def main() -> None:
    from azinfer.local.tinymodel import build_stand_in

    with tempfile.TemporaryDirectory(prefix="azinfer-local-bench-") as state:
        model = Path(state) / "azinfer" / "local" / "stand-in-model"
        start = time.perf_counter()
        build_stand_in(model)
        print(f"stand-in model build (once per machine): {time.perf_counter() - start:.1f} s (this process)")
        print("azinfer up examples/phi3 --local --yes, command to the smoke test's answer:")
        _up(state, "cold (no daemon)")
        _up(state, "warm (daemon running: resume)")
        _cli(state, "down", "examples/phi3", "--local")
        for run in (1, 2):
            _up(state, f"cold again, run {run}")
            _up(state, f"warm again, run {run}")
            seconds, _ = _cli(state, "down", "examples/phi3", "--local")
            print(f"  {'down --local':<34} {seconds:6.1f} s")


if __name__ == "__main__":
    main()
