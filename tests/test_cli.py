"""The azinfer command, run as a subprocess the way users run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from toolkit_projects import EXAMPLE

from azinfer.testing import ProjectFactory, finetuning_inventory


def azinfer(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "azinfer.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def test_plan_offline_prints_the_plan(project: Path) -> None:
    result = azinfer("plan", str(project), "--offline")
    assert result.returncode == 0, result.stderr
    assert "+ storage account 'aistorage27vsy' will be created" in result.stdout
    assert "Plan: 6 to create, 0 to reuse, 0 to update." in result.stdout
    assert "\x1b[" not in result.stdout  # no colour when not on a terminal


def test_plan_json_against_an_inventory_file(project: Path, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps(finetuning_inventory().to_json()))
    result = azinfer("plan", str(project), "--inventory", str(inventory), "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["summary"] == {"create": 1, "reuse": 5, "update": 0}


def test_blocked_plan_exits_1(project: Path, tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps(finetuning_inventory(shared_key_access=False).to_json()))
    result = azinfer("plan", str(project), "--inventory", str(inventory))
    assert result.returncode == 1
    assert "The plan is blocked" in result.stdout


def test_invalid_input_exits_1_without_traceback(azinfer_project: ProjectFactory) -> None:
    project = azinfer_project(EXAMPLE, parameters={"acaAppNmae": "x"})
    result = azinfer("plan", str(project), "--offline")
    assert result.returncode == 1
    assert result.stderr.startswith("azinfer: error: infra/provision/inference.parameters.json: /parameters: ")
    assert "did you mean 'acaAppName'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_name_states_the_rule(azinfer_project: ProjectFactory) -> None:
    project = azinfer_project(EXAMPLE, parameters={"storageAccountName": "Bad_Name"})
    result = azinfer("plan", str(project), "--offline")
    assert result.returncode == 1
    assert "invalid storage account name 'Bad_Name'" in result.stderr
    assert "lowercase letters and digits only" in result.stderr


def test_usage_error_exits_2() -> None:
    assert azinfer("plan", "--offline", "--inventory", "x").returncode == 2
    assert azinfer("frobnicate").returncode == 2


def test_render_writes_the_three_files(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = azinfer("render", str(project), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["inference.bicep", "inference.json", "inference.parameters.json"]
    template = json.loads((out / "inference.json").read_text())
    assert len(template["resources"]) == 7  # six resources and the file service


def test_render_names_the_field_holding_a_lone_surrogate(project: Path, tmp_path: Path) -> None:
    parameters = project / "infra" / "provision" / "inference.parameters.json"
    data = json.loads(parameters.read_text())
    data["parameters"]["image"] = {"value": "x"}
    parameters.write_text(json.dumps(data).replace('"x"', '"x\\ud800"'))
    result = azinfer("render", str(project), "--out", str(tmp_path / "out"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "inference.parameters.json: /parameters/image/value: expected text, found a lone surrogate" \
        in result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_inventory_file(project: Path, tmp_path: Path) -> None:
    result = azinfer("plan", str(project), "--inventory", str(tmp_path / "nope.json"))
    assert result.returncode == 1
    assert "nope.json: file not found" in result.stderr


def test_import_stays_light() -> None:
    code = (
        "import sys, azinfer; azinfer.unique_string('x'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('azure', 'jinja2', 'torch', 'transformers', 'jsonschema')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            timeout=60)
    assert result.stdout.strip() == "[]"


def test_missing_azure_extra_names_it(project: Path) -> None:
    code = (
        "import sys; sys.modules['azure'] = None; from azinfer.cli import main; "
        f"sys.exit(main(['plan', {str(project)!r}]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "pip install 'azinfer[azure]'" in result.stderr
    assert "Traceback" not in result.stderr



def test_a_mistyped_command_or_option_suggests_the_close_match_under_its_commands_usage() -> None:
    cases = {
        ("provison", "x"): ("usage: azinfer [-h]", "invalid choice: 'provison'", "; did you mean 'provision'?"),
        ("deploy", ".", "--restrat"): ("usage: azinfer deploy ", "azinfer deploy: error: unrecognized arguments: "
                                       "--restrat; did you mean '--restart'?"),
        ("up", ".", "--timout=3"): ("usage: azinfer up ", "did you mean '--timeout'?"),
        ("plan", ".", "--bogus"): ("usage: azinfer plan ", "unrecognized arguments: --bogus\n"),  # nothing close
    }
    for argv, expected in cases.items():
        result = azinfer(*argv)
        assert result.returncode == 2 and all(part in result.stderr for part in expected), (argv, result.stderr)
