"""Answering no is its own exit code (3), one line on stderr, for every command that asks; nothing is changed.

The commands run in-process on a fake context (tests/fake_azure.py): the
question is the operation's own, only the terminal's answer is stubbed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_azure import FakeApps, FakeContext, FakeRevision, FakeSync, owned_group, provisioned_project

from azinfer.azure import AzureProject
from azinfer.azure.scope import ProjectScope
from azinfer.cli import console, lifecycle, main
from azinfer.project import load_project


def _project(root: Path, ctx: FakeContext) -> AzureProject:
    project = AzureProject(root, credential=_Token())
    project.context = ctx  # the facade's one context: here the fake
    return project


class _Token:
    def get_token(self, *scopes: str) -> Any:
        raise AssertionError("the fake context never signs in")


def _no(questions: list[str]) -> Any:
    def no(question: str, *, yes: bool, flag: str = "--yes") -> bool:
        questions.append(question)
        return False
    return no


def test_no_to_deploy_exits_3_and_uploads_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root = provisioned_project(tmp_path / "project")
    sync = FakeSync({"inference/app.py": b"v2"}, delete=("inference/old.py",))
    ctx = FakeContext(FakeApps("aiacaappfake", [FakeRevision("rev1", replicas={"rev1-a": "Running"})]), sync=sync)
    questions: list[str] = []
    monkeypatch.setattr(console, "confirm", _no(questions))
    monkeypatch.setattr(lifecycle, "azure_project", lambda args: _project(root, ctx))
    assert main(["deploy", str(root), "--delete"]) == console.EXIT_DECLINED
    out, err = capsys.readouterr()
    assert questions == ["Go ahead?"] and "  - inference/old.py" in out  # the summary, then the question
    assert err == "azinfer: declined: nothing was changed\n"
    assert sync.applied == [] and not [c for c in ctx.apps.calls if c[0] == "restart"]


def test_no_to_destroy_exits_3_and_deletes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    root = provisioned_project(tmp_path / "project")
    apps = FakeApps("aiacaappfake", [FakeRevision("rev1")])
    ctx = FakeContext(apps, inventory=owned_group(ProjectScope.of(load_project(root)), "aiacaappfake"))
    questions: list[str] = []
    monkeypatch.setattr(console, "confirm", _no(questions))
    monkeypatch.setattr(lifecycle, "azure_project", lambda args: _project(root, ctx))
    assert main(["destroy", str(root)]) == console.EXIT_DECLINED
    out, err = capsys.readouterr()
    assert questions == ["Delete these resources?"] and "will be deleted" in out
    assert err == "azinfer: declined: nothing was deleted\n"
    assert not [c for c in apps.calls if c[0] == "delete"] and "aiacaappfake" in (root / "infra" / "inference.config.json").read_text()
