"""The adapter merge the vLLM engine serves by default, and ``--engine auto``'s choice; neither needs vLLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from serve_model_factory import VLLM_TEST_SHAPE, MountLayout, build_mount

from azinfer.errors import ServeError
from azinfer.serve.engine.lora_merge import MergeUnsupported, merge_adapter
from azinfer.serve.server import choose_engine
from azinfer.serve.settings import ServeSettings


@pytest.fixture(scope="module")
def mount(tmp_path_factory: pytest.TempPathFactory) -> MountLayout:
    return build_mount(tmp_path_factory.mktemp("merge-mount"), VLLM_TEST_SHAPE)


def test_merged_weights_equal_peft_merge_and_unload(mount: MountLayout, tmp_path: Path) -> None:
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    changed = merge_adapter(mount.model_dir, mount.adapter_dir, tmp_path)
    ours = load_file(tmp_path / "model.safetensors")
    model = AutoModelForCausalLM.from_pretrained(mount.model_dir, dtype=torch.float32)
    peft = PeftModel.from_pretrained(model, mount.adapter_dir).merge_and_unload().state_dict()
    assert changed == 2 * VLLM_TEST_SHAPE.layers  # qkv_proj and o_proj of each layer
    assert set(ours) == set(peft)
    for name, weight in ours.items():
        torch.testing.assert_close(weight, peft[name], rtol=1e-6, atol=1e-6, msg=name)
    base = load_file(mount.model_dir / "model.safetensors")
    assert not torch.equal(ours["model.layers.0.self_attn.qkv_proj.weight"], base["model.layers.0.self_attn.qkv_proj.weight"])
    # The copy is a model folder: config, tokenizer and generation config come along.
    assert {p.name for p in mount.model_dir.iterdir()} == {p.name for p in tmp_path.iterdir()}


def test_adapter_features_the_merge_lacks_are_refused(mount: MountLayout, tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    for path in mount.adapter_dir.iterdir():
        (adapter / path.name).write_bytes(path.read_bytes())
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(MergeUnsupported, match="DoRA"):
        merge_adapter(mount.model_dir, adapter, out)


def test_an_adapter_for_another_model_is_an_error(mount: MountLayout, tmp_path: Path) -> None:
    other = build_mount(tmp_path / "other", VLLM_TEST_SHAPE.__class__(family="llama", hidden=64, heads=2, intermediate=128))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ServeError, match="does not have"):
        merge_adapter(mount.model_dir, other.adapter_dir, out)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the choice on a machine without a CUDA GPU")
def test_auto_picks_the_batched_engine_without_a_gpu() -> None:
    assert choose_engine(ServeSettings(engine="auto")) == "batched"
    assert choose_engine(ServeSettings(engine="vllm")) == "vllm"
    assert ServeSettings().engine == "auto"


def test_an_unknown_engine_is_refused() -> None:
    with pytest.raises(ServeError, match="auto, batched, vllm, baseline"):
        ServeSettings(engine="tgi")
