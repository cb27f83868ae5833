"""Stage 6: ``infra/inference.config.json``, the file the other commands read to find the endpoint.

Written atomically (a temporary file, then a rename) after validating against
``schemas/inference.config.schema.json``, so the old file survives any
failure. It never holds a secret: the schema admits exactly the six keys.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from azinfer._files import write_atomic
from azinfer._jsonfile import validate
from azinfer.errors import ConfigWriteError, ProjectFileError
from azinfer.project import INFERENCE_CONFIG, InferenceConfig

__all__ = ["config_from_outputs", "write_config", "CONFIG_KEYS"]

CONFIG_KEYS = (
    "SUBSCRIPTION_ID",
    "RESOURCE_GROUP_NAME",
    "STORAGE_ACCOUNT_NAME",
    "FILE_SHARE_NAME",
    "ACA_APP_NAME",
    "ACA_APP_ENDPOINT",
)


def config_from_outputs(outputs: Mapping[str, Any]) -> InferenceConfig:
    """The config from a deployment's outputs (``{"KEY": {"type", "value"}}`` as ARM returns them, or plain values).

    :raises ProjectFileError: when an output is missing or invalid.
    """
    plain = {key: value.get("value") if isinstance(value, Mapping) else value for key, value in outputs.items()}
    data = {key: value for key in CONFIG_KEYS if (value := plain.get(key)) is not None}
    validate(data, "inference.config.schema.json", display="deployment outputs")
    return InferenceConfig.from_json(data)


def write_config(project_root: str | os.PathLike[str], config: InferenceConfig) -> Path:
    """Write ``infra/inference.config.json`` of the project atomically.

    :returns: the path written.
    :raises ConfigWriteError: when the values are invalid or the file cannot be
        written; the previous file is then left as it was.
    """
    path = Path(project_root) / INFERENCE_CONFIG
    data = config.to_json()
    try:
        validate(data, "inference.config.schema.json", display=INFERENCE_CONFIG)
    except ProjectFileError as exc:
        raise ConfigWriteError(str(path), str(exc)) from None
    try:
        write_atomic(path, json.dumps(data, indent=4) + "\n")
    except OSError as exc:
        raise ConfigWriteError(str(path), exc.strerror or str(exc)) from None
    return path
