"""A griffe extension for the API reference: azinfer's docstrings are reST-flavoured, the site is Markdown.

- ``:class:`~azinfer.plan.Plan``` (and ``:func:``, ``:meth:``, ``:attr:``,
  ``:data:``, ``:mod:``, ``:exc:``, ``:obj:``) becomes a link to the object
  where the reference shows it, or plain code where no page does (and for
  objects outside azinfer); a role naming something that does not exist
  becomes a reference autorefs cannot resolve, so a page showing that
  docstring fails the strict build.
- A paragraph ending in ``::`` (reST's "a literal block follows") ends in
  ``:``; the indented block after it is a Markdown code block already.
"""

from __future__ import annotations

import builtins
import html
import importlib.util
import re

import griffe

_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj):`(~?)([\w.]+)`")
_LITERAL_MARKER = re.compile(r"(\S)::$", re.M)
_BARE_MARKER = re.compile(r"^[ \t]*::[ \t]*\n", re.M)


class SphinxRoles(griffe.Extension):
    """Rewrites the docstrings of a loaded package, once it is complete (names resolve then)."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: object) -> None:
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = _rewrite(obj, obj.docstring.value)


def _walk(obj: griffe.Object):  # type: ignore[no-untyped-def]
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)  # type: ignore[arg-type]


def _rewrite(obj: griffe.Object, text: str) -> str:
    text = _BARE_MARKER.sub("", _LITERAL_MARKER.sub(r"\1:", text))
    return _ROLE.sub(lambda m: _link(obj, m.group(2), short=bool(m.group(1))), text)


def _link(obj: griffe.Object, name: str, *, short: bool) -> str:
    title = f"<code>{html.escape(name.rsplit('.', 1)[-1] if short else name)}</code>"
    target = _resolve(obj, name)
    if target == "":
        return title
    optional = " optional" if target is not None else ""
    return f'<autoref identifier="{html.escape(target or name)}"{optional}>{title}</autoref>'


def _resolve(obj: griffe.Object, name: str) -> str | None:
    """The canonical path of ``name`` as seen from ``obj``: "" outside azinfer, ``None`` when nothing has it."""
    if name.startswith("."):
        module = obj if obj.is_module else obj.module
        path = module.path + name
    else:
        head, _, rest = name.partition(".")
        try:
            path = obj.resolve(head) + (f".{rest}" if rest else "")
        except griffe.NameResolutionError:
            if hasattr(builtins, head) or (head != "azinfer" and rest and importlib.util.find_spec(head)):
                return ""
            if head != "azinfer":
                return None
            path = name
    if path.split(".", 1)[0] != "azinfer":
        return ""
    try:
        found = obj.modules_collection.get_member(path)
        return found.final_target.path if found.is_alias else found.canonical_path
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
