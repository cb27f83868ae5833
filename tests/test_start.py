"""The start command: the AI Toolkit's stock start is replaced, a command the user wrote is kept with probes that fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from toolkit_projects import SUBSCRIPTION, write_parameters

from azinfer import plan_project, render
from azinfer.plan import WarningCode
from azinfer.project import INFERENCE_PARAMETERS
from azinfer.start import StartOrigin, azinfer_commands, decide_start, is_toolkit_stock

STOCK = {
    "setup requirements": ["cd /mount", "pip install -r ./setup/requirements.txt", "cd /mount/inference",
                           "pip install -r ./requirements.txt", "python3 ./gradio_chat.py"],
    "pinned": ["cd /mount", "pip install torch==2.3.0 transformers==4.41.0 bitsandbytes==0.43.1 peft==0.10.0 "
               "gradio==4.29.0", "cd /mount/inference", "python3 ./gradio_chat.py"],
    "cache dir": ["cd /mount", "mkdir -p .cache", "pip install -r ./setup/requirements.txt torch==2.3.0 "
                  "--cache-dir /mount/.cache", "cd /mount/inference",
                  "pip install -r ./requirements.txt --cache-dir /mount/.cache", "python3 ./gradio_chat.py"],
    "legacy": ["cd /mount/inference", "pip install -r ./requirements.txt", "python3 ./gradio_chat.py"],
    "config COMMANDS": ["cd /mount", "pip install -r ./setup/requirements.txt", "python3 ./inference/gradio_chat.py"],
    "one joined string": ["cd /mount && pip install -r ./setup/requirements.txt; cd /mount/inference; "
                          "python3 ./gradio_chat.py"],
}
USER = {
    "own server": ["cd /mount/inference", "python3 ./my_server.py --port 7860"],
    "gradio then something else": ["cd /mount/inference", "python3 ./gradio_chat.py", "sleep infinity"],
    "extra step before gradio": ["cd /mount/inference", "rm -rf /mount/models", "python3 ./gradio_chat.py"],
    "vllm": ["vllm serve /mount/model-cache/microsoft/Phi-3-mini-4k-instruct --port 7860"],
}


@pytest.mark.parametrize("shape", STOCK)
def test_stock_shapes_are_replaced_and_the_reason_says_so(shape: str) -> None:
    assert is_toolkit_stock(STOCK[shape])
    start = decide_start(STOCK[shape], source="the parameters file")
    assert start.origin is StartOrigin.AZINFER and start.commands == azinfer_commands()
    assert start.replaced == tuple(STOCK[shape])
    assert "stock start" in start.reason and "write your own defaultCommands" in start.reason


@pytest.mark.parametrize("shape", USER)
def test_commands_the_user_wrote_run_as_written(shape: str) -> None:
    assert not is_toolkit_stock(USER[shape])
    start = decide_start(USER[shape], source="the parameters file")
    assert start.origin is StartOrigin.USER and start.commands == tuple(USER[shape]) and start.replaced is None


def test_unset_and_azinfers_own_commands_run_azinfer() -> None:
    assert decide_start(None, source="x").commands == azinfer_commands()
    again = decide_start(azinfer_commands(), source="x")
    assert again.origin is StartOrigin.AZINFER and again.replaced is None


def _project(tmp_path: Path, params: dict) -> Path:
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "finetuning.config.json").write_text(
        json.dumps({"SUBSCRIPTION_ID": SUBSCRIPTION, "RESOURCE_GROUP_NAME": "rg"}))
    write_parameters(tmp_path / INFERENCE_PARAMETERS, params)
    return tmp_path


def test_a_user_command_gets_port_probes_and_an_authentication_warning(tmp_path: Path) -> None:
    plan = plan_project(_project(tmp_path, {"defaultCommands": USER["own server"], "targetPort": 8000}))
    [warning] = [w for w in plan.warnings if w.code is WarningCode.USER_START_COMMAND]
    assert "authentication" in warning.message
    rendered = render(plan)
    app = next(r for r in rendered.template["resources"] if r["type"] == "Microsoft.App/containerApps")
    container = app["properties"]["template"]["containers"][0]
    assert all(p["tcpSocket"] == {"port": "[parameters('targetPort')]"} and "httpGet" not in p
               for p in container["probes"])
    assert rendered.parameter_values["defaultCommands"]["value"] == USER["own server"]
    assert "tcpSocket" in rendered.bicep and "'/health'" not in rendered.bicep


def test_plan_text_shows_the_replacement(tmp_path: Path) -> None:
    text = plan_project(_project(tmp_path, {"defaultCommands": STOCK["pinned"]})).to_text()
    assert "start: azinfer's server" in text and "AI Toolkit's stock start" in text
