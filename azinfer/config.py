"""Stage 6: ``infra/inference.config.json``, the file the other commands read to find the endpoint.

Written atomically (a temporary file, then a rename) after validating against
``schemas/inference.config.schema.json``, so the old file survives any
failure. azinfer owns six keys (:data:`~azinfer.project.CONFIG_KEYS`); every
other key (the AI Toolkit's ``COMMANDS``, anything a user added) is kept
where it was. The file never holds a secret.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from azinfer._arguments import check_mapping, check_path, check_type
from azinfer._files import write_atomic
from azinfer._jsonfile import read_json, validate
from azinfer.errors import ConfigWriteError, ProjectFileError
from azinfer.project import CONFIG_KEYS, INFERENCE_CONFIG, InferenceConfig

__all__ = ["config_from_outputs", "write_config", "CONFIG_KEYS"]


def config_from_outputs(outputs: Mapping[str, Any]) -> InferenceConfig:
    """The config from a deployment's outputs (``{"KEY": {"type", "value"}}`` as ARM returns them, or plain values).

    :raises ProjectFileError: when an output is missing or invalid.
    :raises ArgumentError: when ``outputs`` is no mapping.
    """
    outputs = check_mapping("config_from_outputs", "outputs", outputs)
    plain = {key: value.get("value") if isinstance(value, Mapping) else value for key, value in outputs.items()}
    missing = [key for key in CONFIG_KEYS if plain.get(key) is None]
    if missing:
        raise ProjectFileError("deployment outputs", f"/{missing[0]}", "a value (the deployment did not return it)")
    data = {key: plain[key] for key in CONFIG_KEYS}
    validate(data, "inference.config.schema.json", display="deployment outputs")
    return InferenceConfig.from_json(data)


def _merged(path: Path, config: InferenceConfig) -> dict[str, Any]:
    """The file's keys in their order, the owned ones replaced; keys only ``config`` knows appended."""
    current: Any = {}
    if path.exists():
        try:
            current = read_json(path, display=INFERENCE_CONFIG)
        except ProjectFileError as exc:
            raise ConfigWriteError(str(path), f"{exc.expected}; fix or remove it, nothing was written") from None
        if not isinstance(current, dict):
            raise ConfigWriteError(str(path), "expected a JSON object; fix or remove it, nothing was written")
    owned = config.owned()
    merged = {key: owned.get(key, value) for key, value in current.items()}
    for key, value in (*owned.items(), *config.extra.items()):
        merged.setdefault(key, value)
    return merged


def write_config(project_root: str | os.PathLike[str], config: InferenceConfig) -> Path:
    """Write the owned keys of ``infra/inference.config.json`` atomically, keeping every other key.

    ``config.cleared()`` writes the owned keys as ``null`` (after teardown).

    :returns: the path written.
    :raises ConfigWriteError: when the values are invalid, the present file is
        not a JSON object, or the file cannot be written; the previous file is
        then left as it was.
    :raises ArgumentError: when ``project_root`` is no path or ``config`` no :class:`InferenceConfig`.
    """
    path = check_path("write_config", "project_root", project_root) / INFERENCE_CONFIG
    check_type("write_config", "config", config, InferenceConfig, "an InferenceConfig")
    data = _merged(path, config)
    try:
        validate(data, "inference.config.schema.json", display=INFERENCE_CONFIG)
    except ProjectFileError as exc:
        raise ConfigWriteError(str(path), str(exc)) from None
    try:
        write_atomic(path, json.dumps(data, indent=4) + "\n")
    except OSError as exc:
        raise ConfigWriteError(str(path), exc.strerror or str(exc)) from None
    return path
