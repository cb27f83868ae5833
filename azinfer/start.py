"""The container's start command: azinfer's server, or a command the user wrote.

Every AI Toolkit template sets ``defaultCommands`` to the toolkit's own
start: ``cd /mount``, a ``pip install`` of pinned torch, transformers,
gradio... (or ``pip install -r ./requirements.txt``), ``cd /mount/inference``,
``python3 ./gradio_chat.py``. That server reinstalls its stack at every
replica start, answers no health probe and no API key. :func:`decide_start`
recognises each of its shapes and runs azinfer's server instead, saying so;
a command the user wrote runs as written, and the probes then only check
that its port answers.

Pure: no file, no network.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

__all__ = ["StartOrigin", "StartCommand", "decide_start", "is_toolkit_stock", "azinfer_commands"]


class StartOrigin(str, Enum):
    """Who wrote the start command the container runs."""

    AZINFER = "azinfer"
    """azinfer's server (``azinfer serve`` through its start script): /health, /ready and the API key."""
    USER = "user"
    """A command the user wrote: azinfer cannot know its routes or its authentication."""


@dataclass(frozen=True)
class StartCommand:
    """The start command the plan settles on, and why."""

    commands: tuple[str, ...]
    """``defaultCommands`` as the container runs them (joined with ``"; "``, run by ``/bin/bash -c``)."""
    origin: StartOrigin
    reason: str
    replaced: tuple[str, ...] | None = None
    """The AI Toolkit's stock commands azinfer's server replaces, when it replaced them."""

    @property
    def serves_azinfer(self) -> bool:
        """Whether the container runs azinfer's server (its probes and its authentication)."""
        return self.origin is StartOrigin.AZINFER

    def to_json(self) -> dict[str, object]:
        """``{"origin", "reason", "commands", "replaced"}`` (commands longer than a line are abbreviated)."""
        return {
            "origin": self.origin.value,
            "reason": self.reason,
            "commands": [_abbreviate(c) for c in self.commands],
            "replaced": None if self.replaced is None else list(self.replaced),
        }


def azinfer_commands() -> tuple[str, ...]:
    """azinfer's start command: its start script, as the one entry of ``defaultCommands``."""
    from azinfer.serve import start_script

    return (start_script(),)


# One pattern per step of the toolkit's stock start, across every template version.
_STOCK_STEPS = (
    re.compile(r"cd /mount/?"),
    re.compile(r"cd (/mount/)?inference/?"),
    re.compile(r"mkdir (-p )?(/mount/|\./)?\.cache"),
    re.compile(r"(python3? -m )?pip3? install .+"),
)
_STOCK_SERVER = re.compile(r"python3? (\./)?(inference/)?gradio_chat\.py")


def _steps(commands: Sequence[str]) -> list[str]:
    """The commands split on ``;`` and ``&&`` and stripped, blanks dropped."""
    return [step.strip() for command in commands for step in re.split(r";|&&", command) if step.strip()]


def is_toolkit_stock(commands: Sequence[str]) -> bool:
    """Whether ``commands`` is the AI Toolkit's stock start (any of its shapes).

    That is: only ``cd`` into the share or its ``inference/`` folder,
    ``mkdir .cache`` and ``pip install`` steps, ending in
    ``python3 ./gradio_chat.py`` (five shapes across the templates' history).
    """
    steps = [" ".join(step.split()) for step in _steps(commands)]
    if not steps or not _STOCK_SERVER.fullmatch(steps[-1]):
        return False
    return all(any(p.fullmatch(step) for p in _STOCK_STEPS) for step in steps[:-1])


def decide_start(given: Sequence[str] | None, *, source: str) -> StartCommand:
    """The start command to deploy, from ``defaultCommands`` as the project gives it.

    :param given: ``defaultCommands`` from the parameters file, ``None`` when not set.
    :param source: where ``given`` comes from, in words (for the reason).
    """
    if given is None:
        return StartCommand(azinfer_commands(), StartOrigin.AZINFER, "defaultCommands is not set: azinfer's server")
    commands = tuple(given)
    if commands == azinfer_commands():
        return StartCommand(commands, StartOrigin.AZINFER, f"{source} runs azinfer's server")
    if is_toolkit_stock(commands):
        return StartCommand(
            azinfer_commands(),
            StartOrigin.AZINFER,
            f"{source} is the AI Toolkit's stock start (pip install at every start, then gradio_chat.py, "
            "which has no health route and no authentication): azinfer's server replaces it. "
            "To run your own server, write your own defaultCommands.",
            replaced=commands,
        )
    return StartCommand(
        commands,
        StartOrigin.USER,
        f"{source} is a command you wrote: it runs as written; the probes only check that its port answers",
    )


def _abbreviate(command: str, limit: int = 120) -> str:
    first = command.strip().splitlines()[0] if command.strip() else command
    return command if len(command) <= limit and "\n" not in command else first[:limit] + " ..."
