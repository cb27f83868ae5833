"""Shared fixtures of the core tests."""

from __future__ import annotations

import signal
from collections.abc import Iterator
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


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """Ctrl-C raises ``KeyboardInterrupt`` here, and starts as the default in every child, however the suite began.

    A suite started in the background of a shell inherits SIGINT ignored: ``_thread.interrupt_main`` then
    does nothing, and a child Python keeps ignoring the signal. A handled signal is reset to the default at
    ``exec``, so while Python's own handler is installed here each child starts as a user's ``azinfer`` does
    (unlike ``preexec_fn``, this is safe with the emulator's threads running).
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
