"""Projects wired to the ARM emulator, for the tests of azinfer.azure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from azinfer.azure import AzureProject
from azinfer.testing import write_project
from tests.emulator import ArmEmulator


def make_project(root: Path, subscription: str, resource_group: str, params: dict[str, Any] | None = None) -> Path:
    """An AI Toolkit project whose fine-tuning config points at ``resource_group``."""
    return write_project(root, subscription_id=subscription, resource_group=resource_group, parameters=params)


def azure_project(emu: ArmEmulator, root: Path, **options: Any) -> AzureProject:
    """``AzureProject`` talking to the emulator with the real credential flow, fast retries and polling."""
    return AzureProject(root, credential=emu.credential(), arm_endpoint=emu.url, poll_interval=0.01,
                        **options, **emu.client_kwargs())


def arm_writes(emu: ArmEmulator) -> list[Any]:
    """Requests that wrote to ARM (the token endpoint's POSTs are sign-ins, not writes)."""
    return [r for r in emu.requests if r.is_write and r.path.lower().startswith("/subscriptions/")]
