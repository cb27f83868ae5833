"""Library code never prints and never configures logging: results are values, progress goes through callbacks,
diagnostics through the ``azinfer`` loggers. Only entry points write to the terminal: ``azinfer/cli/``, the
``__main__`` modules, and the ``main()`` of a module run with ``python -m`` (``if __name__ == "__main__"``)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "azinfer"

# Calls that configure where log records go: the application's choice, never a library's.
_LOGGING_SETUP = {"basicConfig", "addHandler", "dictConfig", "fileConfig"}


def _is_main_guard(node: ast.stmt) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators))


def _entry_point_nodes(tree: ast.Module) -> set[ast.AST]:
    """The ``main`` function and the ``__main__`` block of a module that is run as a program."""
    guards = [node for node in tree.body if _is_main_guard(node)]
    if not guards:
        return set()
    mains = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main"]
    return {inner for top in (*guards, *mains) for inner in ast.walk(top)}


def offences(source: str, filename: str = "<module>") -> list[str]:
    """``line: what`` for each print, write to ``sys.stdout``/``sys.stderr`` or logging setup outside an entry point."""
    tree = ast.parse(source, filename)
    allowed = _entry_point_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if node in allowed:
            continue
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "print":
                found.append(f"{node.lineno}: print()")
            elif isinstance(func, ast.Attribute) and func.attr in _LOGGING_SETUP:
                found.append(f"{node.lineno}: {func.attr}() configures logging")
        elif (isinstance(node, ast.Attribute) and node.attr in {"stdout", "stderr"}
              and isinstance(node.value, ast.Name) and node.value.id == "sys"):
            found.append(f"{node.lineno}: sys.{node.attr}")
    return sorted(found, key=lambda text: int(text.split(":")[0]))


def _library_modules() -> list[Path]:
    return [path for path in sorted(PACKAGE.rglob("*.py"))
            if "cli" not in path.relative_to(PACKAGE).parts[:1] and path.name != "__main__.py"]


def test_library_modules_do_not_print_or_configure_logging() -> None:
    modules = _library_modules()
    assert PACKAGE / "azure" / "provision.py" in modules and PACKAGE / "serve" / "bootstrap.py" in modules
    report = {str(path.relative_to(PACKAGE.parent)): found
              for path in modules if (found := offences(path.read_text(), str(path)))}
    assert report == {}, "library code must return values, call callbacks or log (logging.getLogger('azinfer...'))"


def test_the_check_sees_calls_not_text() -> None:
    source = '''
"""Docs may show print(plan.to_text())."""
import logging, sys
# print("a comment")
def f(plan):
    print(plan)
    sys.stderr.write("x")
    logging.getLogger("azinfer").addHandler(logging.NullHandler())
    return "print(no)"
def main():
    logging.basicConfig()
    print("an entry point may")
'''
    assert offences(source) == ["6: print()", "7: sys.stderr", "8: addHandler() configures logging",
                                "11: basicConfig() configures logging", "12: print()"]
    assert offences(source + 'if __name__ == "__main__":\n    print(main())\n') == [
        "6: print()", "7: sys.stderr", "8: addHandler() configures logging"]
