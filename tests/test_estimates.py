"""Fit, cost and region checks in every plan: what users rely on before they pay for a GPU."""

from __future__ import annotations

import json
import struct
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from azinfer import ProjectFileError, plan_project
from azinfer._jsonfile import validate
from azinfer.basemodel import read_base_model, table_shape
from azinfer.inventory import InMemoryInventory
from azinfer.plan import ProblemCode, WarningCode
from azinfer.plan.cost import PriceTable, estimate_cost, load_prices, shipped_prices
from azinfer.plan.fit import Verdict, estimate_fit
from azinfer.plan.view import format_html
from azinfer.project import GpuProfileType
from azinfer.testing import assert_plan, write_project

A100, T4, DEDICATED = (GpuProfileType.CONSUMPTION_NC24_A100, GpuProfileType.CONSUMPTION_NC8AS_T4,
                       GpuProfileType.NC24_A100)
DATA = Path(__file__).resolve().parent.parent / "azinfer" / "data"


def _olive(root: Path, model_path: str) -> Path:
    """The AI Toolkit's olive config, as its current templates shape it."""
    (root / "finetuning").mkdir(parents=True, exist_ok=True)
    (root / "finetuning" / "olive-config.json").write_text(
        json.dumps({"input_model": {"type": "HfModel", "model_path": model_path}}))
    return root


def _project(tmp_path: Path, model_path: str, **params: Any) -> Path:
    return _olive(write_project(tmp_path, parameters=params or None), model_path)


# (model path as the toolkit's olive config names it, GPU profile, verdict, running dtype)
FITS = [
    ("model-cache/microsoft/phi-1_5", T4, Verdict.FITS, "float16"),
    ("model-cache/microsoft/phi-2", T4, Verdict.FITS, "float16"),
    ("model-cache/microsoft/Phi-3-mini-4k-instruct", T4, Verdict.TIGHT, "float16"),
    ("model-cache/meta-llama/Llama-2-7b", T4, Verdict.DOES_NOT_FIT, "float16"),
    ("model-cache/mistralai/Mistral-7B", T4, Verdict.DOES_NOT_FIT, "float16"),
    ("model-cache/meta-llama/Llama-v3-8b", T4, Verdict.DOES_NOT_FIT, "float16"),
    ("model-cache/meta-llama/Llama-v3-8b", A100, Verdict.FITS, "bfloat16"),
    ("model-cache/HuggingFaceH4/zephyr-7b-beta", DEDICATED, Verdict.FITS, "bfloat16"),
    ("model-cache/meta-llama/Llama-2-7b", A100, Verdict.FITS, "float16"),
]


@pytest.mark.parametrize(("model_path", "profile", "verdict", "dtype"), FITS,
                         ids=[f"{m.rsplit('/', 1)[-1]}-{p.value}" for m, p, _, _ in FITS])
def test_fit_verdict_per_model_and_gpu(tmp_path: Path, model_path: str, profile: GpuProfileType,
                                       verdict: Verdict, dtype: str) -> None:
    fit = estimate_fit(read_base_model(_olive(tmp_path, model_path)), profile)
    assert (fit.verdict, fit.dtype) == (verdict, dtype)
    assert fit.summary().startswith({Verdict.FITS: "fits", Verdict.TIGHT: "tight",
                                     Verdict.DOES_NOT_FIT: "does not fit"}[verdict])


def test_a_model_that_does_not_fit_blocks_the_plan_with_the_alternatives(tmp_path: Path) -> None:
    root = _project(tmp_path, "model-cache/meta-llama/Llama-v3-8b", gpuProfileType=T4.value)
    plan = plan_project(root)
    assert_plan(plan, blocked_by={ProblemCode.MODEL_DOES_NOT_FIT})
    [problem] = plan.problems
    assert "Consumption-GPU-NC24-A100" in problem.message and "4-bit" in problem.message
    assert "weights alone are 15.0 GiB" in problem.message  # 8.03e9 parameters x 2 bytes
    # The same project on the default serverless A100 fits.
    assert plan_project(_project(tmp_path / "a100", "model-cache/meta-llama/Llama-v3-8b")).fit.verdict is Verdict.FITS


def test_a_tight_fit_warns_and_names_how_many_sequences(tmp_path: Path) -> None:
    plan = plan_project(_project(tmp_path, "model-cache/microsoft/Phi-3-mini-4k-instruct", gpuProfileType=T4.value))
    assert_plan(plan, blocked_by=(), warns={WarningCode.COLD_START, WarningCode.MODEL_FIT_TIGHT})
    assert "4 sequences of 4096 tokens need 15.1 GiB" in plan.fit.summary()
    assert "room for 2 at once" in plan.fit.summary()


def test_without_a_model_the_fit_is_unknown_and_the_plan_not_blocked(tmp_path: Path) -> None:
    plan = plan_project(write_project(tmp_path))
    assert plan.to_json()["fit"]["verdict"] == "unknown"
    assert "give --model" in plan.to_json()["fit"]["summary"]
    assert not plan.blocked
    unknown = plan_project(write_project(tmp_path / "x"), model="my-org/some-model-13b")
    assert "some-model-13b" in unknown.fit.summary() and unknown.fit.verdict is Verdict.UNKNOWN


def _safetensors(path: Path, shapes: dict[str, list[int]]) -> None:
    header = json.dumps({"__metadata__": {"format": "pt"},
                         **{n: {"dtype": "BF16", "shape": s, "data_offsets": [0, 0]} for n, s in shapes.items()}})
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode())


def test_sizes_come_from_the_model_folder_when_it_is_at_hand(tmp_path: Path) -> None:
    root = _olive(tmp_path, "model-cache/microsoft/phi-2")
    folder = root / "model-cache" / "microsoft" / "phi-2"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({
        "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 128,
        "torch_dtype": "bfloat16"}))
    _safetensors(folder / "model-00001-of-00002.safetensors", {"a": [1000, 1000]})
    _safetensors(folder / "model-00002-of-00002.safetensors", {"b": [10, 10], "c": [5]})
    model = read_base_model(root)
    assert model is not None and model.shape is not None
    assert (model.shape.params, model.shape.kv_heads, model.shape.head_dim) == (1_000_105, 4, 16)
    assert "config.json and 2 safetensors header(s)" in model.shape.source and not model.shape.from_table


def test_a_broken_model_config_names_the_file(tmp_path: Path) -> None:
    root = _olive(tmp_path, "model-cache/x/m")
    folder = root / "model-cache" / "x" / "m"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"hidden_size": "wide"}))
    _safetensors(folder / "model.safetensors", {"a": [2]})
    with pytest.raises(ProjectFileError) as info:
        read_base_model(root)
    assert "model-cache/x/m/config.json" in str(info.value)


@pytest.mark.parametrize(("text", "expected"), [
    # The older template: a PyTorchModel with hf_config.model_name.
    ('{"input_model": {"type": "PyTorchModel", "config": {"hf_config": {"model_name": "model-cache/microsoft/phi-1_5"}}}}',
     ("model-cache/microsoft/phi-1_5", "finetuning/olive-config.json /input_model/config/hf_config/model_name")),
    # A file that still holds the template's <placeholders> is no JSON; its model path is still read.
    ('{"input_model": {"model_path": "model-cache/microsoft/phi-2"}, "x": <lora_r>}',
     ("model-cache/microsoft/phi-2", "finetuning/olive-config.json (input_model's model path)")),
])
def test_the_model_path_is_read_from_each_olive_config_shape(tmp_path: Path, text: str,
                                                               expected: tuple[str, str]) -> None:
    (tmp_path / "finetuning").mkdir()
    (tmp_path / "finetuning" / "olive-config.json").write_text(text)
    model = read_base_model(tmp_path)
    assert model is not None and (model.path, model.path_source) == expected and model.shape is not None


def _table(**figures: float) -> PriceTable:
    return PriceTable.from_json({
        "currency": "EUR", "region": "swedencentral", "date": "2026-01-01", "source": "test",
        "figures": {name: {"unitPrice": price, "unit": "1 Hour" if name.startswith("dedicated") else "1 Second",
                           "meterName": name, "currency": "EUR", "region": "swedencentral", "date": "2026-01-01",
                           "source": "test", "estimate": False} for name, price in figures.items()},
    })


ROUND = _table(serverlessA100GpuSecond=0.001, serverlessT4GpuSecond=0.0001, consumptionVcpuSecond=0.00001,
               consumptionGibSecond=0.000001, dedicatedA100InstanceHour=4.0, dedicatedManagementHour=0.1)


@pytest.mark.parametrize(("profile", "min_r", "max_r", "replica_hour", "idle", "busy", "monthly"), [
    # A100 replica: 3600 x (0.001 + 24 x 0.00001 + 220 x 0.000001) = 5.256 per hour.
    (A100, 0, 2, 5.256, 0.0, 10.512, 10.512 * 100),
    (A100, 1, 1, 5.256, 5.256, 5.256, 5.256 * 730),
    # T4 replica: 3600 x (0.0001 + 8 x 0.00001 + 56 x 0.000001) = 0.8496.
    (T4, 0, 1, 0.8496, 0.0, 0.8496, 84.96),
    # Dedicated: one node 4.0 plus the environment's management 0.1 while a node runs.
    (DEDICATED, 1, 2, 4.0, 4.1, 8.1, 8.1 * 100 + 4.1 * 630),
])
def test_cost_per_replica_hour_idle_busy_and_month(profile: GpuProfileType, min_r: int, max_r: int,
                                                   replica_hour: float, idle: float, busy: float,
                                                   monthly: float) -> None:
    cost = estimate_cost(profile, ROUND, min_replicas=min_r, max_replicas=max_r, busy_hours=100,
                         today=date(2026, 2, 1))
    assert cost is not None
    assert cost.replica_hour == pytest.approx(replica_hour)
    assert (cost.hourly(min_r), cost.hourly(max_r)) == (pytest.approx(idle), pytest.approx(busy))
    assert cost.monthly == pytest.approx(monthly)
    assert {p for p, _, _ in cost.others} == set(GpuProfileType) - {profile}


def test_scale_to_zero_saves_a_warm_replica_for_the_idle_hours() -> None:
    cost = estimate_cost(A100, ROUND, min_replicas=0, max_replicas=1, busy_hours=130, today=date(2026, 2, 1))
    assert cost is not None and cost.scale_to_zero_saves == pytest.approx(5.256 * 600)


def test_a_table_without_the_profiles_figure_gives_no_cost_and_says_so(tmp_path: Path) -> None:
    only_t4 = _table(serverlessT4GpuSecond=0.0001, consumptionVcpuSecond=0.00001, consumptionGibSecond=0.000001)
    plan = plan_project(write_project(tmp_path), prices=only_t4)
    assert plan.cost is None and plan.to_json()["cost"] is None
    assert "cost: unknown" in plan.to_text()


def test_the_plan_shows_cost_and_says_when_prices_are_old(tmp_path: Path) -> None:
    plan = plan_project(write_project(tmp_path), prices=ROUND, busy_hours=100)
    cost = plan.to_json()["cost"]
    assert (cost["currency"], cost["busyHours"], cost["busyHoursSource"]) == ("EUR", 100, "argument")
    assert cost["prices"]["stale"] and cost["prices"]["region"] == "swedencentral"
    text = plan.to_text()
    assert "5.26 EUR per replica-hour" in text and "days old (over 90)" in text
    assert "5.26 EUR per replica-hour" in format_html(plan.to_json())
    fresh = plan_project(write_project(tmp_path / "f"))
    assert fresh.cost is not None and fresh.cost.busy_hours == 176 and "default" in fresh.cost.busy_hours_why


@pytest.mark.parametrize("busy", [-1, 731, True, "8"])
def test_busy_hours_out_of_range_are_refused(tmp_path: Path, busy: Any) -> None:
    with pytest.raises(ValueError, match="busy_hours"):
        plan_project(write_project(tmp_path), busy_hours=busy)


def test_a_price_file_is_validated_naming_the_field(tmp_path: Path) -> None:
    data = json.loads((DATA / "prices.json").read_text())
    data["figures"]["serverlessA100GpuSecond"]["unitPrice"] = "cheap"
    (tmp_path / "p.json").write_text(json.dumps(data))
    with pytest.raises(ProjectFileError) as info:
        load_prices(tmp_path / "p.json")
    assert "/figures/serverlessA100GpuSecond/unitPrice" in str(info.value)


def test_shipped_tables_are_valid_and_cite_a_source_and_date_per_figure() -> None:
    prices = json.loads((DATA / "prices.json").read_text())
    validate(prices, "prices.schema.json", display="prices.json")
    assert set(prices["figures"]) == set(shipped_prices().figures)
    assert all(f["source"] and f["date"] for f in prices["figures"].values())
    models = json.loads((DATA / "models.json").read_text())["models"]
    assert all(m["source"].startswith("https://huggingface.co/") for m in models)
    profiles = json.loads((DATA / "profiles.json").read_text())["profiles"]
    assert set(profiles) == {p.value for p in GpuProfileType}
    assert all(p["regionsSource"] and p["regionsDate"] and p["gpuSource"] for p in profiles.values())
    assert table_shape("model-cache/meta-llama/Llama-v3-8b") is not None


def test_an_offline_plan_in_a_region_without_the_profile_is_blocked_with_the_regions_that_have_it(
        tmp_path: Path) -> None:
    plan = plan_project(write_project(tmp_path, parameters={"location": "North Europe"}))
    assert_plan(plan, blocked_by={ProblemCode.GPU_PROFILE_UNAVAILABLE})
    assert "swedencentral" in plan.problems[0].message and "westus3" in plan.problems[0].message
    t4 = plan_project(write_project(tmp_path / "t4", parameters={"location": "westeurope",
                                                                  "gpuProfileType": T4.value}))
    assert not t4.blocked
    # A plan against what exists leaves regions to preflight, which asks Azure.
    online = plan_project(write_project(tmp_path / "o", parameters={"location": "northeurope"}),
                          inventory=InMemoryInventory())
    assert ProblemCode.GPU_PROFILE_UNAVAILABLE not in {p.code for p in online.problems}


def test_cli_estimate_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from azinfer.cli import main

    root = _project(tmp_path, "model-cache/microsoft/phi-2")
    assert main(["plan", str(root), "--offline", "--json", "--busy-hours", "40",
                 "--model", "model-cache/meta-llama/Llama-v3-8b"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert (plan["cost"]["busyHours"], plan["fit"]["model"]) == (40, "model-cache/meta-llama/Llama-v3-8b")
    # A plan against Azure uses the project's model and the shipped prices: the options are refused, not ignored.
    assert main(["plan", str(root), "--busy-hours", "40"]) == 1
    assert "--busy-hours: expected --offline or --inventory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["plan", str(root), "--offline", "--busy-hours", "800"])
    assert info.value.code == 2 and "0 to 730" in capsys.readouterr().err


@pytest.mark.parametrize(("model_path", "image", "seconds", "unknown"), [
    # 9 GB image at 60 MB/s, 14.96 GiB of weights at 60 MiB/s, 60 s engine start.
    ("model-cache/meta-llama/Llama-v3-8b", None, 150 + 255 + 60, 0),
    ("model-cache/microsoft/phi-2", None, 150 + 88 + 60, 0),
    # An image of your own: its pull is not counted, and the estimate says so.
    ("model-cache/microsoft/phi-2", "myregistry.azurecr.io/me/server:1", 88 + 60, 1),
])
def test_cold_start_estimate_and_the_warning_that_uses_it(tmp_path: Path, model_path: str, image: str | None,
                                                          seconds: int, unknown: int) -> None:
    plan = plan_project(_project(tmp_path, model_path, **({"image": image} if image else {})))
    cold = plan.to_json()["coldStart"]
    assert cold["seconds"] == pytest.approx(seconds, abs=1) and len(cold["unknown"]) == unknown
    [warning] = [w for w in plan.warnings if w.code is WarningCode.COLD_START]
    assert cold["summary"] in warning.message and "240 s" in warning.message
    assert ("at least about" in warning.message) is bool(unknown)


def test_a_dedicated_or_warm_plan_has_no_cold_start_warning(tmp_path: Path) -> None:
    dedicated = plan_project(_project(tmp_path, "model-cache/microsoft/phi-2", gpuProfileType="NC24-A100",
                                      location="westus3"))
    assert dedicated.cold_start is None
    warm = plan_project(_project(tmp_path / "w", "model-cache/microsoft/phi-2", minReplicas=1))
    assert warm.cold_start is not None and WarningCode.COLD_START not in {w.code for w in warm.warnings}
    assert f"cold start: {warm.cold_start.summary()}" in warm.to_text()


@pytest.mark.parametrize("text", ['[1, 2]', '{"input_model": "phi-2"}', '{"input_model": {"config": 3}}'])
def test_an_olive_config_without_a_model_path_names_no_model(tmp_path: Path, text: str) -> None:
    (tmp_path / "finetuning").mkdir()
    (tmp_path / "finetuning" / "olive-config.json").write_text(text)
    assert read_base_model(tmp_path) is None


def test_a_price_file_with_an_impossible_date_names_the_field(tmp_path: Path) -> None:
    data = json.loads((DATA / "prices.json").read_text())
    data["date"] = "2026-13-45"
    (tmp_path / "p.json").write_text(json.dumps(data))
    with pytest.raises(ProjectFileError, match="/date"):
        load_prices(tmp_path / "p.json")
