"""Shared fixtures of the core tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from toolkit_projects import EXAMPLE

from azinfer.testing import copy_project

# The plugin's fixtures; installing azinfer registers the plugin (entry point pytest11), importing them here
# also serves a checkout that is not installed (a conftest's fixtures take precedence, so both can be there).
from azinfer.testing.plugin import azinfer_project, finetuning_inventory  # noqa: F401


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the bundled Phi-3 example project."""
    return copy_project(EXAMPLE, tmp_path / "project")
