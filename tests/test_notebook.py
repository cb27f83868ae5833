"""``examples/quickstart.ipynb`` runs top to bottom in a real Jupyter kernel against the ARM emulator.

The kernel gets the emulator's environment (``emu.env()``) exactly as a user's shell gets it from
``python -m azinfer.local.emulator``; the notebook reads nothing else, so unset it reaches Azure.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from azinfer.testing import EXAMPLE_LOCATION, EXAMPLE_RESOURCE_GROUP, EXAMPLE_SUBSCRIPTION
from azinfer.local.emulator import ArmEmulator, seed_finetuning_group, seed_finetuning_share

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
NOTEBOOK = EXAMPLES / "quickstart.ipynb"


def _tree(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in sorted(folder.rglob("*"))
            if path.is_file()}


def _html(notebook: Any, tag: str) -> str:
    """The HTML the cell tagged ``tag`` shows (its result and its displays, as last updated)."""
    (cell,) = [c for c in notebook.cells if tag in c.metadata.get("tags", [])]
    return "".join(out.get("data", {}).get("text/html", "") for out in cell.outputs)


def _text(notebook: Any, tag: str) -> str:
    (cell,) = [c for c in notebook.cells if tag in c.metadata.get("tags", [])]
    return "".join(out.get("data", {}).get("text/plain", "") + out.get("text", "") for out in cell.outputs)


@pytest.fixture
def emu():
    # The kernel is another process: its SDK clients poll as ARM says (Retry-After 0 would mean their own 30 s).
    with ArmEmulator.start(retry_after=1) as emulator:
        yield emulator


def test_the_committed_notebook_has_no_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_quickstart_runs_against_the_emulator(emu: ArmEmulator, tmp_path: Path) -> None:
    group = seed_finetuning_group(emu, subscription_id=EXAMPLE_SUBSCRIPTION, resource_group=EXAMPLE_RESOURCE_GROUP,
                                  location=EXAMPLE_LOCATION)
    seed_finetuning_share(emu, group)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "MSI_", "IDENTITY_"))}
    env = {**clean, **emu.env(), "TMPDIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    examples_before = _tree(EXAMPLES)
    notebook = nbformat.read(NOTEBOOK, as_version=4)

    # A failing cell raises CellExecutionError with its traceback, failing the test.
    NotebookClient(notebook, timeout=180, kernel_name="python3",
                   resources={"metadata": {"path": str(EXAMPLES)}}).execute(env=env)

    assert f"the ARM endpoint {emu.url}" in _text(notebook, "settings")
    assert 'class="azinfer-plan"' in _html(notebook, "plan") and "aiacaapp27vsy" in _html(notebook, "plan")
    assert "Consumption-GPU-NC8as-T4" in _html(notebook, "new-plan")
    assert _text(notebook, "plan-diff") == "{'environment': 'reuse -> update'}"
    assert "inference.bicep" in _text(notebook, "render")
    what_if = _html(notebook, "what-if")
    assert 'class="azinfer-what-if"' in what_if and "1 to create, 1 to modify, 0 to delete" in what_if
    assert "<code>+</code> Create</td><td><code>Microsoft.App/containerApps/aiacaapp27vsy</code>" in what_if
    provision = _html(notebook, "provision")  # the live table as its last update left it
    assert "Microsoft.App/containerApps aiacaapp27vsy</td><td>Succeeded" in provision
    assert ".azinfer/dist/CURRENT" in provision
    assert "the endpoint answers /ready" in _html(notebook, "deploy")
    status = _html(notebook, "status")
    assert "<th style='text-align:left'>ready</th><td style='text-align:left'>yes (200)</td>" in status
    assert "NC8as-T4 (Consumption-GPU-NC8as-T4)" in status and "min 1, max 3" in status
    assert "(200, ['emulated'])" in _text(notebook, "models")
    destroy = _html(notebook, "destroy-plan")
    assert 'class="azinfer-destroy"' in destroy and "Destroy: 1 to delete, 5 to keep." in destroy

    # It cleans up what it created: the app is deleted, and the notebook says where its copy lives.
    assert _text(notebook, "destroy").endswith(f"['containerApp aiacaapp{group.suffix}']")
    assert emu.state.get(f"{group.rg_id}/providers/Microsoft.App/containerApps/aiacaapp{group.suffix}") is None
    assert _text(notebook, "work").strip("'").startswith(str(tmp_path))
    # It did it on Azure's side (here the emulator), and nowhere else.
    profiles = emu.state.view(group.id("environment"))["properties"]["workloadProfiles"]
    assert "Consumption-GPU-NC8as-T4" in {p["workloadProfileType"] for p in profiles}
    assert emu.writes_to(group.id("storage_account")) == []
    assert _tree(EXAMPLES) == examples_before  # the example project is copied, never changed
