"""Fit and cost for every released AI Toolkit template version, on the serverless A100 and T4.

The toolkit's templates name their base model in ``finetuning/olive-config.json``;
:data:`OLIVE_MODEL_PATHS` holds, per model folder, ``input_model.model_path``
(``model_name`` in the older phi-1_5 template) as the templates ship it
(microsoft/windows-ai-studio-templates, ``configs/<model>/finetuning/olive-config.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from toolkit_history import Version, materialize, versions

from azinfer import plan_project
from azinfer.plan import ProblemCode
from azinfer.plan.fit import Verdict
from azinfer.testing import EXAMPLE_SUBSCRIPTION as SUBSCRIPTION

OLIVE_MODEL_PATHS = {
    "configs/Phi-3-mini-4k-instruct": "model-cache/microsoft/Phi-3-mini-4k-instruct",
    "configs/llama-v2-7b": "model-cache/meta-llama/Llama-2-7b",
    "configs/llama-v3-8b": "model-cache/meta-llama/Llama-v3-8b",
    "configs/mistral-7b": "model-cache/mistralai/Mistral-7B",
    "configs/mistral-7b-v02": "model-cache/mistralai/Mistral-7B-Instruct-v0.2",
    "configs/phi-1_5": "model-cache/microsoft/phi-1_5",
    "configs/phi-2": "model-cache/microsoft/phi-2",
    "configs/zephyr-7b-beta": "model-cache/HuggingFaceH4/zephyr-7b-beta",
}
RELEASED = [v for v in versions() if v.layout == "provision" and v.on_main]
# On a T4 (15 GiB, fp16): the 7-8B models' weights alone take 12.6-15 GiB, more than 90% of it less the runtime.
T4_BLOCKED = {"configs/llama-v2-7b", "configs/llama-v3-8b", "configs/mistral-7b", "configs/mistral-7b-v02",
              "configs/zephyr-7b-beta"}


def project(version: Version, root: Path, gpu: str) -> Path:
    """The version as a project with its olive config and the GPU profile asked for."""
    folder = materialize(version, root)
    (folder / "finetuning").mkdir()
    (folder / "finetuning" / "olive-config.json").write_text(
        json.dumps({"input_model": {"type": "HfModel", "model_path": OLIVE_MODEL_PATHS[version.model]}}))
    params_file = folder / "infra" / "provision" / "inference.parameters.json"
    params = json.loads(params_file.read_text())
    params["parameters"]["gpuProfileType"] = {"value": gpu}
    params_file.write_text(json.dumps(params))
    return folder


def test_the_released_versions_are_97() -> None:
    assert len(RELEASED) == 97


@pytest.mark.parametrize("version", RELEASED, ids=[v.id for v in RELEASED])
def test_each_released_version_gets_a_cost_and_a_fit_verdict(version: Version, tmp_path: Path) -> None:
    a100 = plan_project(project(version, tmp_path / "a", "Consumption-GPU-NC24-A100"),
                        subscription_id=SUBSCRIPTION, resource_group="rg-finetune")
    t4 = plan_project(project(version, tmp_path / "t", "Consumption-GPU-NC8as-T4"),
                      subscription_id=SUBSCRIPTION, resource_group="rg-finetune")
    for plan in (a100, t4):
        assert plan.cost is not None and plan.cost.monthly > 0
        assert plan.fit is not None and plan.fit.verdict is not Verdict.UNKNOWN
        assert plan.fit.model is not None and plan.fit.model.shape is not None and plan.fit.model.shape.from_table
    assert a100.fit is not None and a100.fit.verdict is Verdict.FITS and not a100.blocked
    blocked = {p.code for p in t4.problems} == {ProblemCode.MODEL_DOES_NOT_FIT}
    assert blocked is (version.model in T4_BLOCKED)
