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

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from azinfer.inventory import InMemoryInventory
from azinfer.testing.inventories import finetuning_inventory as _finetuning_inventory
from azinfer.testing.projects import copy_project, write_project

__all__ = ["azinfer_project", "finetuning_inventory", "ProjectFactory"]


class ProjectFactory:
    """Makes AI Toolkit projects in a test's ``tmp_path``, each in a folder of its own.

    ``factory(**files)`` writes one (:func:`~azinfer.testing.write_project`);
    ``factory(source, **files)`` copies the folder ``source`` and changes the
    files given (:func:`~azinfer.testing.copy_project`).
    """

    def __init__(self, base: Path) -> None:
        self._base = base
        self._count = 0

    def __call__(self, source: str | os.PathLike[str] | None = None, **files: Any) -> Path:
        """A new project folder; see the class.

        :raises ArgumentError: when ``source`` or a file has the wrong type or value.
        """
        self._count += 1
        root = self._base / f"project-{self._count}"
        if source is None:
            return write_project(root, **files)
        return copy_project(source, root, **files)


@pytest.fixture
def azinfer_project(tmp_path: Path) -> ProjectFactory:
    """A :class:`ProjectFactory` making projects under the test's ``tmp_path``."""
    return ProjectFactory(tmp_path / "azinfer-projects")


@pytest.fixture
def finetuning_inventory() -> Callable[..., InMemoryInventory]:
    """:func:`azinfer.testing.finetuning_inventory`: call it with the overrides the test needs."""
    return _finetuning_inventory
