"""The pytest plugin: fixtures that build AI Toolkit projects and fine-tuning inventories.

Installing azinfer registers it (entry point ``pytest11``: ``azinfer``), so
a test only names the fixtures::

    def test_app_is_all_we_create(azinfer_project, finetuning_inventory):
        plan = azinfer.plan_project(azinfer_project(), inventory=finetuning_inventory())
        assert_plan(plan, creates={ResourceKind.CONTAINER_APP})

Without the entry point (a copy of azinfer that is not installed), load it
with ``pytest -p azinfer.testing.plugin``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from azinfer.inventory import InMemoryInventory
from azinfer.testing.inventories import finetuning_inventory as _finetuning_inventory
from azinfer.testing.projects import ProjectFactory

__all__ = ["azinfer_project", "finetuning_inventory"]


@pytest.fixture
def azinfer_project(tmp_path: Path) -> ProjectFactory:
    """A :class:`ProjectFactory` making projects under the test's ``tmp_path``."""
    return ProjectFactory(tmp_path / "azinfer-projects")


@pytest.fixture
def finetuning_inventory() -> Callable[..., InMemoryInventory]:
    """:func:`azinfer.testing.finetuning_inventory`: call it with the overrides the test needs."""
    return _finetuning_inventory
