"""Projects wired to the ARM emulator, for the tests of azinfer.azure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from toolkit_projects import write_parameters

from azinfer.azure import AzureProject
from azinfer.project import INFERENCE_PARAMETERS
from tests.emulator import ArmEmulator


def make_project(root: Path, subscription: str, resource_group: str, params: dict[str, Any] | None = None) -> Path:
    """An AI Toolkit project whose fine-tuning config points at ``resource_group``."""
    (root / "infra").mkdir(parents=True, exist_ok=True)
    (root / "infra" / "finetuning.config.json").write_text(
        json.dumps({"SUBSCRIPTION_ID": subscription, "RESOURCE_GROUP_NAME": resource_group})
    )
    if params:
        write_parameters(root / INFERENCE_PARAMETERS, params)
    return root


def azure_project(emu: ArmEmulator, root: Path, **options: Any) -> AzureProject:
    """``AzureProject`` talking to the emulator with the real credential flow, fast retries and polling."""
    return AzureProject(root, credential=emu.credential(), arm_endpoint=emu.url, poll_interval=0.01,
                        **options, **emu.client_kwargs())


def arm_writes(emu: ArmEmulator) -> list[Any]:
    """Requests that wrote to ARM (the token endpoint's POSTs are sign-ins, not writes)."""
    return [r for r in emu.requests if r.is_write and r.path.lower().startswith("/subscriptions/")]
