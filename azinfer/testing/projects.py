"""AI Toolkit projects for tests: written from values, or copied from a folder, files where the toolkit keeps them."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from azinfer._arguments import check_path, check_type
from azinfer.errors import ArgumentError
from azinfer.project import (
    CONFIG_KEYS,
    EXAMPLE_MARKER,
    FINETUNING_CONFIG,
    FINETUNING_PARAMETERS,
    INFERENCE_CONFIG,
    INFERENCE_PARAMETERS,
)
from azinfer.testing.inventories import EXAMPLE_RESOURCE_GROUP, EXAMPLE_SUBSCRIPTION

__all__ = [
    "ProjectFile",
    "ProjectFactory",
    "SHIPPED_INFERENCE_CONFIG",
    "SHIPPED_FINETUNING_CONFIG",
    "write_project",
    "copy_project",
]

ProjectFile = Mapping[str, Any] | str | bytes
"""One project file: a mapping of values (parameters: ``{name: value}``), or its exact text or bytes."""

SHIPPED_INFERENCE_CONFIG: Mapping[str, None] = MappingProxyType(dict.fromkeys(CONFIG_KEYS))
"""``infra/inference.config.json`` as the AI Toolkit ships it: every key ``null`` (nothing provisioned)."""

SHIPPED_FINETUNING_CONFIG: Mapping[str, None] = MappingProxyType(dict.fromkeys(
    ("SUBSCRIPTION_ID", "RESOURCE_GROUP_NAME", "STORAGE_ACCOUNT_NAME", "FILE_SHARE_NAME", "ACA_JOB_NAME")
))
"""``infra/finetuning.config.json`` as the AI Toolkit ships it: every key ``null`` (not fine-tuned yet)."""

_FILE_ARGUMENTS = ("parameters", "finetuning_parameters", "finetuning_config", "inference_config")
_PARAMETERS_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#"


def write_project(
    root: str | os.PathLike[str],
    *,
    subscription_id: str | None = EXAMPLE_SUBSCRIPTION,
    resource_group: str | None = EXAMPLE_RESOURCE_GROUP,
    parameters: ProjectFile | None = None,
    finetuning_parameters: ProjectFile | None = None,
    finetuning_config: ProjectFile | None = None,
    inference_config: ProjectFile | None = None,
) -> Path:
    """Write an AI Toolkit project into ``root`` (created if needed) and return ``root``.

    By default the project is one whose fine-tuning ran in the bundled
    example's subscription and resource group: ``infra/finetuning.config.json``
    names them and nothing else, so every resource name is found in the
    inventory or follows the default rule, as with
    :func:`~azinfer.testing.finetuning_inventory`'s defaults.

    Each file is given as a mapping or as its exact text or bytes (a file as
    shipped, or a broken one). A mapping of ``parameters`` or
    ``finetuning_parameters`` holds parameter values (``{"acaAppName":
    "my-app", "location": None}``) and becomes an ARM parameters file; a
    mapping of a config holds its keys. A mapping updates a file that is
    already there (its other keys are kept); text or bytes replace it.

    For example::

        root = write_project(tmp_path, parameters={"acaAppName": "team-a-phi3"})

    :param root: the project folder.
    :param subscription_id: ``SUBSCRIPTION_ID`` of the fine-tuning config
        (``None``: not written); a ``finetuning_config`` mapping that sets it
        wins, and a ``finetuning_config`` given as text or bytes is written as it is.
    :param resource_group: ``RESOURCE_GROUP_NAME`` of the fine-tuning config, likewise.
    :param parameters: ``infra/provision/inference.parameters.json``.
    :param finetuning_parameters: ``infra/provision/finetuning.parameters.json``.
    :param finetuning_config: ``infra/finetuning.config.json``
        (:data:`SHIPPED_FINETUNING_CONFIG`: as shipped, every key ``null``).
    :param inference_config: ``infra/inference.config.json``
        (:data:`SHIPPED_INFERENCE_CONFIG`: as shipped, every key ``null``).
    :returns: ``root``, as a :class:`~pathlib.Path`.
    :raises ArgumentError: when an argument has the wrong type, or a file
        to update holds no JSON object.
    """
    function = "write_project"
    folder = check_path(function, "root", root)
    ids: dict[str, Any] = {}
    for argument, key, value in (("subscription_id", "SUBSCRIPTION_ID", subscription_id),
                                 ("resource_group", "RESOURCE_GROUP_NAME", resource_group)):
        if value is not None:
            ids[key] = check_type(function, argument, value, str, "a string or None")
    if isinstance(finetuning_config, Mapping) or (finetuning_config is None and ids):
        finetuning_config = {**ids, **(finetuning_config or {})}
    files = _files(function, parameters, finetuning_parameters, finetuning_config, inference_config)
    _apply(function, folder, files)
    (folder / "infra").mkdir(parents=True, exist_ok=True)
    return folder


def copy_project(
    source: str | os.PathLike[str],
    root: str | os.PathLike[str],
    *,
    parameters: ProjectFile | None = None,
    finetuning_parameters: ProjectFile | None = None,
    finetuning_config: ProjectFile | None = None,
    inference_config: ProjectFile | None = None,
) -> Path:
    """Copy the project folder ``source`` to ``root`` and change the files given; return ``root``.

    The whole folder is copied (links stay links), so the original is never
    touched. The files are given as for :func:`write_project`: a mapping
    updates the copied file (``parameters={"gpuProfileType":
    "Consumption-GPU-NC8as-T4"}`` changes one parameter and keeps the others).

    :param source: an AI Toolkit project folder (one with ``infra/``).
    :param root: where the copy goes: a folder outside ``source`` that does not exist yet or is empty.
    :returns: ``root``, as a :class:`~pathlib.Path`.
    :raises ArgumentError: when ``source`` is no project folder, ``root`` is
        not empty or inside ``source``, or a file argument has the wrong type.
    """
    function = "copy_project"
    origin = check_path(function, "source", source)
    folder = check_path(function, "root", root)
    if not (origin / "infra").is_dir():
        raise ArgumentError(function, "source", "an AI Toolkit project folder (with infra/)", str(origin))
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ArgumentError(function, "root", "a folder that does not exist yet or is empty", str(folder))
    if folder.resolve().is_relative_to(origin.resolve()):
        raise ArgumentError(function, "root", f"a folder outside {origin}", str(folder))
    files = _files(function, parameters, finetuning_parameters, finetuning_config, inference_config)
    # A copy of azinfer's bundled example is a project of its own (the CLI works on it in place).
    shutil.copytree(origin, folder, symlinks=True, dirs_exist_ok=True, ignore=shutil.ignore_patterns(EXAMPLE_MARKER))
    _apply(function, folder, files)
    return folder


def _files(function: str, *values: ProjectFile | None) -> dict[str, tuple[str, ProjectFile]]:
    """The files given, by their place in the project, each checked."""
    places = (
        ("parameters", INFERENCE_PARAMETERS),
        ("finetuning_parameters", FINETUNING_PARAMETERS),
        ("finetuning_config", FINETUNING_CONFIG),
        ("inference_config", INFERENCE_CONFIG),
    )
    files = {}
    for (argument, relative), value in zip(places, values, strict=True):
        if value is None:
            continue
        check_type(function, argument, value, (Mapping, str, bytes), "a mapping, str, bytes or None")
        if isinstance(value, Mapping):
            for key in value:
                check_type(function, f"{argument} key", key, str, "a string")
        files[relative] = (argument, value)
    return files


def _apply(function: str, root: Path, files: Mapping[str, tuple[str, ProjectFile]]) -> None:
    """Write the files; every one is checked first, so a wrong one leaves the project as it was."""
    contents = {relative: _content(function, root, relative, argument, value)
                for relative, (argument, value) in files.items()}
    for relative, data in contents.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():  # a link kept by copy_project: replace it, never write through it
            path.unlink()
        path.write_bytes(data)


def _content(function: str, root: Path, relative: str, argument: str, value: ProjectFile) -> bytes:
    path = root / relative
    if not Path(os.path.realpath(path.parent)).is_relative_to(root.resolve()):
        raise ArgumentError(function, argument, f"a file inside the project ({path.parent} links out of it)", value)
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    data = _existing(function, argument, path, value)
    if relative in (INFERENCE_PARAMETERS, FINETUNING_PARAMETERS):
        data.setdefault("$schema", _PARAMETERS_SCHEMA)
        data.setdefault("contentVersion", "1.0.0.0")
        data.setdefault("parameters", {})
        data["parameters"].update({name: {"value": v} for name, v in value.items()})
    else:
        data.update(value)
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def _existing(function: str, argument: str, path: Path, value: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object already in ``path`` (empty when there is none), for ``value`` to update."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("parameters", {}), dict):
        expected = f"text or bytes to replace {path} (it holds no JSON object a mapping could update)"
        raise ArgumentError(function, argument, expected, value)
    return data


class ProjectFactory:
    """Makes AI Toolkit projects under ``base``, each in a new folder (``project-1``, ``project-2``...).

    ``factory(**files)`` writes one (:func:`write_project`);
    ``factory(source, **files)`` copies the folder ``source`` and changes the
    files given (:func:`copy_project`). The pytest fixture ``azinfer_project``
    is one under the test's ``tmp_path``.

    :raises ArgumentError: when ``base`` is not a path.
    """

    def __init__(self, base: str | os.PathLike[str]) -> None:
        self._base = check_path("ProjectFactory", "base", base)
        self._count = 0

    def __call__(self, source: str | os.PathLike[str] | None = None, **files: Any) -> Path:
        """A new project folder, written or copied from ``source``; see the class.

        :raises ArgumentError: when ``source`` or a file has the wrong type or value.
        """
        accepted = _FILE_ARGUMENTS if source is not None else ("subscription_id", "resource_group", *_FILE_ARGUMENTS)
        for name in files:
            if name not in accepted:
                raise ArgumentError("ProjectFactory", name, f"one of the keywords {', '.join(accepted)}", files[name])
        self._count += 1
        root = self._base / f"project-{self._count}"
        if source is None:
            return write_project(root, **files)
        return copy_project(source, root, **files)
