"""The documentation site builds in strict mode, offline, with every public value and what each function raises.

The site is mkdocs + mkdocstrings (the ``docs`` extra): ``mkdocs build``
from the repository root, ``mkdocs serve`` to read it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from toolkit_projects import REPO

import azinfer
from azinfer import errors

DOCUMENTED_MODULES = ("azinfer", "azinfer.azure", "azinfer.testing", "azinfer.serve")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    return out


def _inventory(site: Path) -> set[str]:
    """The objects the reference documents, from the objects.inv mkdocstrings writes (Sphinx's format)."""
    data = (site / "objects.inv").read_bytes()
    body = zlib.decompress(data.split(b"\n", 4)[4]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines()}


def test_every_public_value_has_a_reference_entry(site: Path) -> None:
    documented = _inventory(site)
    for module_name in DOCUMENTED_MODULES:
        module = importlib.import_module(module_name)
        missing = {f"{module_name}.{name}" for name in module.__all__} - documented
        assert not missing, f"not in the API reference: {sorted(missing)}"


def test_the_error_tree_is_in_the_reference(site: Path) -> None:
    page = (site / "reference" / "errors" / "index.html").read_text()
    for name in errors.__all__:
        assert f'id="azinfer.errors.{name}"' in page
    assert "├── ServeError" in page and "└── RequestError" in page


def test_the_site_loads_nothing_from_elsewhere(site: Path) -> None:
    for page in site.rglob("*.html"):
        text = page.read_text()
        assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?(https?:)?//""", text), page


def _public_functions() -> Iterator[tuple[str, Any]]:
    seen: set[Any] = set()
    for module_name in DOCUMENTED_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            value = getattr(module, name)
            members = vars(value).items() if inspect.isclass(value) else [("", value)]
            for attr, member in members:
                if attr.startswith("_") and attr not in ("__init__", "__call__"):
                    continue
                function = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                if inspect.isfunction(function) and function.__module__.startswith("azinfer") and function not in seen:
                    seen.add(function)
                    yield f"{module_name}.{name}" + (f".{attr}" if attr else ""), function


def _raised(function: Any) -> set[str]:
    """The exception classes ``function``'s own body raises by name (not what the functions it calls raise)."""
    try:
        source = inspect.getsource(function)
    except OSError:  # generated (a dataclass's __init__): it raises nothing of its own
        return set()
    tree = ast.parse(inspect.cleandoc("\n" + source))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(raised, (ast.Name, ast.Attribute)):
                names.add(raised.id if isinstance(raised, ast.Name) else raised.attr)
    return {name for name in names if name.endswith(("Error", "Interrupted"))}


def test_every_public_function_documents_what_it_raises() -> None:
    undocumented = {}
    for path, function in _public_functions():
        documented = set(re.findall(r":raises (\w+):", inspect.getdoc(function) or ""))
        if missing := _raised(function) - documented:
            undocumented[path] = sorted(missing)
    assert not undocumented, f"raised but not in the docstring's :raises: {undocumented}"
    assert len(list(_public_functions())) > 50  # the walk finds the API
    assert azinfer.__all__
