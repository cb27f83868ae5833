"""Finding the model under the mount, settings, and the CLI's errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from azinfer.errors import ServeError
from azinfer.serve.discovery import resolve_model_paths
from azinfer.serve.settings import ServeSettings

REPO = Path(__file__).resolve().parents[2]


def test_finds_base_model_and_adapter_in_the_toolkit_layout(phi_mount: Any) -> None:
    paths = resolve_model_paths(ServeSettings(mount_root=phi_mount.root))
    assert paths.model_dir == phi_mount.model_dir
    assert paths.adapter_dir == phi_mount.adapter_dir
    assert paths.model_name == "microsoft/Phi-3-mini-4k-instruct"


def test_newest_adapter_wins_and_names_its_base(phi_mount: Any, llama_mount: Any, tmp_path: Path) -> None:
    root = tmp_path / "mount"
    shutil.copytree(phi_mount.root, root)
    shutil.copytree(llama_mount.model_dir, root / "model-cache" / llama_mount.hub_id)
    newer = root / "models" / "lora" / "run2" / "adapter"
    shutil.copytree(llama_mount.adapter_dir, newer)
    os.utime(newer / "adapter_config.json", (2e9, 2e9))
    paths = resolve_model_paths(ServeSettings(mount_root=root))
    assert paths.adapter_dir == newer
    assert paths.model_dir == root / "model-cache" / llama_mount.hub_id  # chosen by the adapter's hub id


def test_several_bases_and_no_hint_is_an_error(phi_mount: Any, llama_mount: Any, tmp_path: Path) -> None:
    root = tmp_path / "mount"
    shutil.copytree(phi_mount.root, root)
    shutil.copytree(llama_mount.model_dir, root / "model-cache" / "other" / "model")
    config = root / "models" / "qlora" / "qlora" / "gpu_model" / "adapter" / "adapter_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "base_model_name_or_path": "x/y"}))
    with pytest.raises(ServeError, match="several base models.*--model-dir"):
        resolve_model_paths(ServeSettings(mount_root=root))


def test_missing_adapter_needs_base_only(phi_mount: Any, tmp_path: Path) -> None:
    root = tmp_path / "mount"
    shutil.copytree(phi_mount.root / "model-cache", root / "model-cache")
    with pytest.raises(ServeError, match="--base-only"):
        resolve_model_paths(ServeSettings(mount_root=root))
    assert resolve_model_paths(ServeSettings(mount_root=root, base_only=True)).adapter_dir is None


def test_the_served_id_is_the_same_with_mount_or_model_dir(phi_mount: Any, tmp_path: Path) -> None:
    found = resolve_model_paths(ServeSettings(mount_root=phi_mount.root))
    given = resolve_model_paths(ServeSettings(model_dir=phi_mount.model_dir, adapter_dir=phi_mount.adapter_dir))
    base_only = resolve_model_paths(ServeSettings(model_dir=phi_mount.model_dir, base_only=True))
    assert found.model_name == given.model_name == base_only.model_name == phi_mount.hub_id
    copy = tmp_path / "my-copy"
    shutil.copytree(phi_mount.model_dir, copy)  # outside a model cache: the adapter names its base
    assert resolve_model_paths(ServeSettings(model_dir=copy, adapter_dir=phi_mount.adapter_dir)).model_name == phi_mount.hub_id
    assert resolve_model_paths(ServeSettings(model_dir=copy, base_only=True)).model_name == "my-copy"


def test_given_folders_are_checked(phi_mount: Any) -> None:
    with pytest.raises(ServeError, match="no config.json"):
        resolve_model_paths(ServeSettings(model_dir=phi_mount.adapter_dir, adapter_dir=phi_mount.adapter_dir))
    with pytest.raises(ServeError, match="no adapter_config.json"):
        resolve_model_paths(ServeSettings(model_dir=phi_mount.model_dir, adapter_dir=phi_mount.model_dir))


def test_without_a_key_only_loopback() -> None:
    assert ServeSettings().bind_host == "127.0.0.1"
    assert ServeSettings(api_key="k").bind_host == "0.0.0.0"
    assert ServeSettings(host="0.0.0.0", insecure_no_auth=True).bind_host == "0.0.0.0"
    with pytest.raises(ServeError, match="without an API key"):
        _ = ServeSettings(host="0.0.0.0").bind_host


def serve_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "azinfer.serve", *args], capture_output=True, text=True,
                          env=environment, timeout=120)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--mount", "/nonexistent"], {}, "no adapter"),
        (["--mount", "/nonexistent", "--base-only"], {}, "no base model"),
        (["--mount", "/nonexistent", "--model-dir", "/nonexistent/model"], {}, "model folder /nonexistent/model (--model-dir) does not exist"),
        (["--mount", "/nonexistent", "--adapter-dir", "/nonexistent/a"], {}, "adapter folder /nonexistent/a (--adapter-dir) does not exist"),
        (["--max-connections", "0"], {}, "max connections"),
        ([], {"AZINFER_BODY_TIMEOUT": "soon"}, "AZINFER_BODY_TIMEOUT"),
        (["--host", "0.0.0.0", "--base-only"], {}, "without an API key"),
        (["--port", "70000"], {}, "port 70000"),
        ([], {"AZINFER_PORT": "http"}, "AZINFER_PORT"),
    ],
)
def test_cli_reports_bad_input_without_traceback(args: list[str], env: dict[str, str], message: str) -> None:
    result = serve_cli(*args, env=env)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_light_imports() -> None:
    code = "import sys, azinfer, azinfer.serve, azinfer.cli.serve; print(sorted({'torch','transformers','starlette','uvicorn','fastapi','gradio'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert result.stdout.strip() == "[]"
