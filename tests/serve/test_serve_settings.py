"""The server's settings: one declaration gives the flags, the environment, the docs table and the template's variables."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from azinfer.errors import ServeError
from azinfer.serve.settings import ServeSettings, add_arguments, markdown_table, options, settings_from

DOCS = Path(__file__).parents[2] / "docs" / "serve.md"


def parse(*argv: str, env: dict[str, str] | None = None) -> ServeSettings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return settings_from(parser.parse_args(list(argv)), env or {})


def test_the_docs_table_is_the_declared_one() -> None:
    assert markdown_table() in DOCS.read_text(encoding="utf-8"), "docs/serve.md: paste markdown_table() over the settings table"


def test_every_setting_has_a_flag_and_a_variable_but_the_key_only_a_variable() -> None:
    table = {s.name: (s.option.flag, s.env) for s in options()}
    assert table["api_key"] == (None, "AZINFER_API_KEY")
    assert table["mount_root"] == ("--mount", "AZINFER_MOUNT")
    assert table["merge"] == ("--no-merge", "AZINFER_NO_MERGE")
    assert {f for f, _ in table.values() if f} == {a for a in _flags()}


def _flags() -> set[str]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return {o for action in parser._actions for o in action.option_strings if o not in ("-h", "--help")}


def test_a_flag_wins_over_its_variable_which_wins_over_the_default() -> None:
    env = {"AZINFER_PORT": "9000", "AZINFER_MAX_QUEUE": "3", "AZINFER_NO_MERGE": "1", "AZINFER_BODY_TIMEOUT": "2.5",
           "AZINFER_API_KEY": "k", "AZINFER_MODEL_DIR": ""}
    settings = parse("--port", "8000", "--mount", "/share", env=env)
    assert (settings.port, settings.max_queue, settings.merge, settings.body_timeout) == (8000, 3, False, 2.5)
    assert (settings.mount_root, settings.api_key, settings.model_dir) == (Path("/share"), "k", None)
    assert parse().merge and parse("--no-merge").merge is False
    assert parse(env={"AZINFER_NO_MERGE": "0"}).merge


def test_adapters_repeat_as_flags_and_are_comma_separated_in_the_variable() -> None:
    assert parse("--adapter", "a=/x", "--adapter=b=/y").adapters == ("a=/x", "b=/y")
    assert parse(env={"AZINFER_ADAPTER": "a=/x, b=/y"}).adapters == ("a=/x", "b=/y")
    assert parse("--adapter", "c=/z", env={"AZINFER_ADAPTER": "a=/x"}).adapters == ("c=/z",)
    with pytest.raises(ServeError, match="the name 'a' is given twice"):
        parse("--adapter", "a=/x", "--adapter", "a=/y")
    with pytest.raises(ServeError, match="adapter name 'x/y' must be"):
        parse("--adapter", "x/y=/z")


def test_a_bad_value_names_where_it_came_from() -> None:
    with pytest.raises(ServeError, match="AZINFER_MAX_QUEUE='many' is not a whole number"):
        parse(env={"AZINFER_MAX_QUEUE": "many"})
    with pytest.raises(ServeError, match="--body-timeout='soon' is not a number"):
        parse("--body-timeout", "soon")


def test_the_template_sets_only_declared_variables() -> None:
    template = (Path(__file__).parents[1] / "golden" / "all-new" / "inference.json").read_text(encoding="utf-8")
    # The container's environment entries, as ARM expressions or as objects: ('name', 'AZINFER_X' or "name": "AZINFER_X".
    used = set(re.findall(r"""name'?"?,? ?:? ?\\?['"]?(AZINFER_[A-Z_]+)""", template))
    assert used == {"AZINFER_MOUNT", "AZINFER_PORT", "AZINFER_API_KEY", "AZINFER_INSECURE_NO_AUTH",
                    "AZINFER_ADAPTER_POLL"}
    assert used <= {s.env for s in options()}
