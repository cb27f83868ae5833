"""The repository keeps its promises: the README's test command is what CI runs, the example plans."""

from __future__ import annotations

import re

from toolkit_projects import EXAMPLE, REPO

from azinfer import InMemoryInventory, plan_project
from azinfer.plan import Action


def _bash_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_readme_gives_the_main_job_first_and_ci_runs_the_test_command_then_mypy() -> None:
    blocks = _bash_blocks((REPO / "README.md").read_text())
    assert len(blocks) == 3
    # Install, then the main job on this machine (tests/test_local_up.py runs its last step).
    assert blocks[0] == "pip install torch==2.13.0 && pip install -e '.[local]' && azinfer up examples/phi3 --local"
    test_command = blocks[-1]
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert "set -euo pipefail" in ci  # any failing command fails CI
    commands = [line for line in ci if line and not line.startswith(("#", "set ", "cd ", "export "))]
    assert commands == [test_command, "python -m mypy"]
    assert test_command.startswith("pip install torch==2.13.0 && ")


def test_example_inventory_plans_like_the_finetuning_group() -> None:
    plan = plan_project(EXAMPLE, inventory=InMemoryInventory.load(EXAMPLE / "inventory.json"))
    assert plan.summary() == {"create": 1, "reuse": 5, "update": 0}
    assert plan.action(plan.changes[-1].kind) is Action.CREATE
