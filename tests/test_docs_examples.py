"""The worked examples in docs/ run as written: each test file a page shows runs under pytest, as a user runs it.

A page marks a test file with ``<!-- test-file: NAME -->`` before its code
block, and the output a failing run shows with ``<!-- test-output: NAME -->``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from toolkit_projects import EXAMPLE, REPO

from azinfer import ArgumentError, ResourceKind
from azinfer.testing import assert_plan, copy_project, write_project

pytest_plugins = ["pytester"]

DOCS = REPO / "docs"


def _blocks(page: str, kind: str) -> dict[str, str]:
    text = (DOCS / page).read_text()
    return dict(re.findall(rf"<!-- {kind}: (\S+) -->\n```\w+\n(.*?)```", text, re.S))


def test_testing_page_worked_example(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """'Our projects never create a second storage account': two projects keep the rule, one breaks it."""
    [(name, code)] = _blocks("testing.md", "test-file").items()
    [expected] = _blocks("testing.md", "test-output").values()
    projects = pytester.path / "projects"
    copy_project(EXAMPLE, projects / "phi3-chat")
    copy_project(EXAMPLE, projects / "phi3-support", parameters={"storageAccountName": "supportbotdata"})
    (pytester.path / name).parent.mkdir(parents=True, exist_ok=True)
    (pytester.path / name).write_text(code)
    # The plugin by module name, as from an uninstalled copy (an installed one registers it by entry point).
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest("-p", "azinfer.testing.plugin", "-W", "ignore::pytest.PytestAssertRewriteWarning", name)
    result.assert_outcomes(passed=4, failed=1)
    # The summary line carries the reason only when the terminal is wide enough for it.
    result.stdout.fnmatch_lines(["FAILED *::test_our_projects_never_create_a_second_storage_account[[]phi3-support[]]*"])
    shown = [line.strip() for line in expected.splitlines() if line.strip() not in ("", "...")]
    result.stdout.re_match_lines([rf"E\s+{re.escape(line)}$" for line in shown], consecutive=False)


def test_api_page_unit_test_example(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    [(name, code)] = _blocks("api.md", "test-file").items()
    pytester.makepyfile(**{name.removesuffix(".py"): code})
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest("-p", "azinfer.testing.plugin", "-W", "ignore::pytest.PytestAssertRewriteWarning")
    result.assert_outcomes(passed=1)


def test_testing_page_first_example(tmp_path: Path) -> None:
    """The example at the top of the page, as a plain function."""
    from azinfer import plan_project
    from azinfer.testing import finetuning_inventory

    project = write_project(tmp_path, parameters={"acaAppName": "team-a-phi3"})
    assert_plan(plan_project(project, inventory=finetuning_inventory()),
                creates={ResourceKind.CONTAINER_APP}, blocked_by=())


def test_testing_page_wrong_argument_message() -> None:
    shown = re.search(r"azinfer\.errors\.ArgumentError: (.*)", (DOCS / "testing.md").read_text()).group(1)  # type: ignore[union-attr]
    with pytest.raises(ArgumentError) as info:
        assert_plan(None, creates=ResourceKind.CONTAINER_APP)  # type: ignore[arg-type]
    assert str(info.value) != shown  # the plan is checked first
    from azinfer import plan_project

    with pytest.raises(ArgumentError) as info:
        assert_plan(plan_project(EXAMPLE), creates=ResourceKind.CONTAINER_APP)  # type: ignore[arg-type]
    assert str(info.value) == shown
