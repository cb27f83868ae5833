"""Several adapters on one base with the batched engine: picked by ``model``, mixed in one batch, loaded while running."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import API_KEY, RunningServer, free_port, running_server
from prometheus_client.parser import text_string_to_metric_families
from serve_model_factory import ModelShape, MountLayout, build_adapter, build_mount

AUTH = {"Authorization": f"Bearer {API_KEY}"}
PROMPT = "the quick brown fox"


@pytest.fixture(scope="module")
def mount(tmp_path_factory: pytest.TempPathFactory) -> MountLayout:
    """The Phi-3 test model with its adapter, a second adapter ``alpha`` elsewhere, and ``beta`` on the share."""
    layout = build_mount(tmp_path_factory.mktemp("adapters-mount"), ModelShape(family="phi3"))
    build_adapter(layout.model_dir, layout.root / "local" / "alpha", layout.hub_id, ModelShape(family="phi3"), seed=2)
    build_adapter(layout.model_dir, layout.root / "models" / "azinfer" / "beta", layout.hub_id,
                  ModelShape(family="phi3"), seed=3)
    build_adapter(layout.model_dir, layout.root / "spare" / "gamma", layout.hub_id, ModelShape(family="phi3"), seed=4)
    return layout


@pytest.fixture(scope="module")
def server(mount: MountLayout) -> Iterator[RunningServer]:
    with running_server(mount_root=mount.root, adapter_dir=mount.adapter_dir, api_key=API_KEY, max_batch_size=8,
                        adapters=(f"alpha={mount.root / 'local' / 'alpha'}",), adapter_poll=0.2) as running:
        yield running


def ask(server: RunningServer, model: str, prompt: str = PROMPT, **more: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 12, "temperature": 0,
            **more}
    return httpx.post(f"{server.base_url}/v1/chat/completions", json=body, headers=AUTH, timeout=60)


def reply(server: RunningServer, model: str, prompt: str = PROMPT) -> str:
    response = ask(server, model, prompt)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == model
    text: str = response.json()["choices"][0]["message"]["content"]
    return text


def served(server: RunningServer) -> dict[str, Any]:
    response = httpx.get(f"{server.base_url}/v1/models", headers=AUTH, timeout=10)
    assert response.status_code == 200
    return {m["id"]: m["parent"] for m in response.json()["data"]}


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_models_lists_the_base_and_each_adapter_with_its_parent(server: RunningServer, mount: MountLayout) -> None:
    assert served(server) == {mount.hub_id: None, "alpha": mount.hub_id, "beta": mount.hub_id}


def test_requests_for_different_adapters_share_a_batch_and_get_their_own_answers(
        server: RunningServer, mount: MountLayout) -> None:
    models = [mount.hub_id, "alpha", "beta"]
    alone = {model: reply(server, model) for model in models}
    assert len(set(alone.values())) == 3, alone  # each adapter changes what the model says
    engine = server.engine
    batches: list[list[str]] = []
    forward = engine._forward

    def recording(*args: Any) -> Any:
        batches.append([g.request.adapter for g in args[-1]])
        return forward(*args)

    engine._forward = recording
    try:
        together: dict[tuple[str, int], str] = {}

        def one(model: str, i: int) -> None:
            together[model, i] = reply(server, model)

        threads = [threading.Thread(target=one, args=(m, i)) for i in range(2) for m in models]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        del engine._forward
    assert {key: text for key, text in together.items()} == {(m, i): alone[m] for m in models for i in range(2)}
    assert any({None, "alpha", "beta"} <= set(batch) for batch in batches), batches


def test_the_default_model_answers_as_with_its_adapter_merged(server: RunningServer, phi_server: RunningServer,
                                                              mount: MountLayout) -> None:
    # phi_server merges the same-seeded adapter of the same model into the weights.
    assert reply(server, mount.hub_id, "hello world") == reply(phi_server, mount.hub_id, "hello world")


def test_an_unknown_model_is_404_naming_those_served(server: RunningServer) -> None:
    response = ask(server, "nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert "'alpha'" in response.json()["error"]["message"]


def test_the_admin_routes_load_and_unload_an_adapter_behind_the_key(server: RunningServer, mount: MountLayout) -> None:
    url = server.base_url
    gamma = str(mount.root / "spare" / "gamma")
    body = {"lora_name": "gamma", "lora_path": gamma}
    assert httpx.post(f"{url}/v1/load_lora_adapter", json=body, timeout=10).status_code == 401
    outside = httpx.post(f"{url}/v1/load_lora_adapter", json={**body, "lora_path": "/etc"}, headers=AUTH, timeout=10)
    assert outside.status_code == 400 and "below the share" in outside.json()["error"]["message"]
    bad_name = httpx.post(f"{url}/v1/load_lora_adapter", json={**body, "lora_name": "a.b"}, headers=AUTH, timeout=10)
    assert bad_name.status_code == 400
    loaded = httpx.post(f"{url}/v1/load_lora_adapter", json=body, headers=AUTH, timeout=60)
    assert loaded.status_code == 200, loaded.text
    assert served(server)["gamma"] == mount.hub_id
    assert reply(server, "gamma") not in {reply(server, "alpha"), reply(server, "beta")}
    unloaded = httpx.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "gamma"}, headers=AUTH, timeout=60)
    assert unloaded.status_code == 200
    assert ask(server, "gamma").status_code == 404
    again = httpx.post(f"{url}/v1/unload_lora_adapter", json={"lora_name": "gamma"}, headers=AUTH, timeout=60)
    assert again.status_code == 404


def test_a_replacement_that_fails_leaves_the_name_unserved_and_the_others_answering(
        server: RunningServer, mount: MountLayout) -> None:
    broken = mount.root / "broken"
    broken.mkdir(exist_ok=True)
    shutil.copy(mount.root / "spare" / "gamma" / "adapter_config.json", broken)
    (broken / "adapter_model.safetensors").write_bytes(b"not weights")
    url = f"{server.base_url}/v1/load_lora_adapter"
    good = httpx.post(url, json={"lora_name": "eps", "lora_path": str(mount.root / "spare" / "gamma")}, headers=AUTH,
                      timeout=60)
    assert good.status_code == 200
    bad = httpx.post(url, json={"lora_name": "eps", "lora_path": str(broken)}, headers=AUTH, timeout=60)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "adapter_error"
    assert "eps" not in served(server) and ask(server, "eps").status_code == 404
    assert reply(server, "alpha") and reply(server, "beta")


def test_an_adapter_put_on_the_share_is_served_within_seconds_and_removing_it_stops_it(
        server: RunningServer, mount: MountLayout) -> None:
    target = mount.root / "models" / "azinfer" / "delta"
    started = time.monotonic()
    shutil.copytree(mount.root / "spare" / "gamma", target)
    try:
        wait_for(lambda: "delta" in served(server), timeout=20)
        assert ask(server, "delta").status_code == 200
        assert time.monotonic() - started < 10
    finally:
        shutil.rmtree(target)
    wait_for(lambda: "delta" not in served(server), timeout=20)
    assert ask(server, "delta").status_code == 404


def test_an_incomplete_folder_on_the_share_is_not_loaded(server: RunningServer, mount: MountLayout) -> None:
    target = mount.root / "models" / "azinfer" / "partial"
    target.mkdir()
    try:
        shutil.copy(mount.root / "spare" / "gamma" / "adapter_config.json", target)
        time.sleep(1.0)  # five looks
        assert "partial" not in served(server)
    finally:
        shutil.rmtree(target)


def test_metrics_are_prometheus_text_behind_the_key_labelled_by_model(server: RunningServer) -> None:
    assert httpx.get(f"{server.base_url}/metrics", timeout=10).status_code == 401
    reply(server, "alpha")
    ask(server, "nope")
    response = httpx.get(f"{server.base_url}/metrics", headers=AUTH, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(response.text) for s in family.samples}
    assert samples[("azinfer_generation_tokens_total", (("model", "alpha"),))] >= 1
    assert samples[("azinfer_time_to_first_token_seconds_count", (("model", "alpha"),))] >= 1
    assert samples[("azinfer_request_errors_total", (("kind", "model_not_found"), ("model", "unknown")))] >= 1
    assert ("azinfer_requests_running", ()) in samples and ("azinfer_batch_occupancy", ()) in samples
    assert any(name == "process_cpu_seconds_total" for name, _ in samples)  # the default registry alongside


def test_an_adapter_named_like_the_base_is_refused(mount: MountLayout, tmp_path: Path) -> None:
    from azinfer.errors import ServeError
    from azinfer.serve.discovery import resolve_model_paths
    from azinfer.serve.settings import ServeSettings

    with pytest.raises(ServeError, match="expected NAME=DIR"):
        ServeSettings(adapters=("alpha",))
    with pytest.raises(ServeError, match="is the base model's id"):
        resolve_model_paths(ServeSettings(mount_root=mount.root, model_name="alpha",
                                          adapters=(f"alpha={mount.root / 'local' / 'alpha'}",)))


def test_a_broken_adapter_on_the_share_is_skipped_at_start_and_one_given_by_flag_stops_it(
        mount: MountLayout, tmp_path: Path) -> None:
    share = tmp_path / "models" / "azinfer" / "broken"
    share.mkdir(parents=True)
    (share / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8}')
    (share / "adapter_model.safetensors").write_bytes(b"not weights")
    common = {"mount_root": tmp_path, "model_dir": mount.model_dir, "base_only": True, "api_key": API_KEY}
    with running_server(**common) as running:
        assert served(running) == {mount.hub_id: None}
    from azinfer.serve.server import build_server
    from azinfer.serve.settings import ServeSettings

    server = build_server(ServeSettings(**common, adapters=(f"bad={share}",), port=free_port(), host="127.0.0.1"))
    server.run()  # stops by itself: the adapter cannot load
    assert "cannot load adapter 'bad'" in str(server.load_error)
