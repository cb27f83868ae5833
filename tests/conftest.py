"""Shared fixtures of the core tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from toolkit_projects import EXAMPLE


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the bundled Phi-3 example project."""
    target = tmp_path / "project"
    shutil.copytree(EXAMPLE, target)
    return target
