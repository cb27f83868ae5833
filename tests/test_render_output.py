"""Writing the rendered files: all or nothing, normal permissions, one-line errors for a bad ``--out``."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from toolkit_projects import EXAMPLE

from azinfer import OutputWriteError, plan_project, render
from azinfer._files import write_folder

FILES = ["inference.bicep", "inference.json", "inference.parameters.json"]


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _render(out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "azinfer.cli", "render", str(EXAMPLE), "--out", str(out)],
                          capture_output=True, text=True, timeout=60)


def _one_line_error(result: subprocess.CompletedProcess[str], out: Path, reason: str) -> None:
    assert result.returncode == 1
    assert result.stderr == f"azinfer: error: {out}: nothing written: {reason}\n"
    assert result.stdout == ""


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".azinfer-" in p.name)


def test_new_folder_gets_the_files_with_normal_permissions(tmp_path: Path, umask_022: None) -> None:
    out = tmp_path / "a" / "b" / "out"
    result = _render(out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == FILES
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert _leftovers(out.parent) == []


def test_existing_folder_keeps_its_other_files(tmp_path: Path, umask_022: None) -> None:
    out = tmp_path / "provision"
    out.mkdir()
    (out / "finetuning.parameters.json").write_text("{}")
    (out / "inference.json").write_text("old")
    os.chmod(out / "inference.json", 0o600)
    assert _render(out).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, "finetuning.parameters.json"])
    assert (out / "inference.json").read_text().startswith("{")
    assert stat.S_IMODE((out / "inference.json").stat().st_mode) == 0o644
    assert (out / "finetuning.parameters.json").read_text() == "{}"


def test_out_at_a_file(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("keep")
    _one_line_error(_render(out), out, "it is a file, not a folder")
    assert out.read_text() == "keep"


def test_out_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("keep")
    out = tmp_path / "file" / "deeper" / "out"
    _one_line_error(_render(out), out, f"{tmp_path / 'file'} is a file, not a folder")


@pytest.mark.parametrize("root", ["/proc", "/sys"])
def test_out_in_a_pseudo_filesystem(root: str) -> None:
    out = Path(root) / "azinfer-out"
    _one_line_error(_render(out), out, f"{root} is a kernel pseudo-filesystem, not a place for files")
    assert not out.exists()


def test_out_at_a_dangling_link(tmp_path: Path) -> None:
    out = tmp_path / "link"
    out.symlink_to(tmp_path / "missing")
    _one_line_error(_render(out), out, f"it is a link to {tmp_path / 'missing'}, which does not exist")
    assert not (tmp_path / "missing").exists()


def test_out_under_a_dangling_link(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path / "missing")
    out = tmp_path / "link" / "out"
    _one_line_error(_render(out), out, f"{tmp_path / 'link'} is a link to {tmp_path / 'missing'}, which does not exist")


def test_out_at_a_looping_link(tmp_path: Path) -> None:
    out = tmp_path / "loop"
    out.symlink_to(out)
    _one_line_error(_render(out), out, "it is a link that loops")


def test_a_failure_while_writing_a_new_folder_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "new" / "out"
    with pytest.raises(OutputWriteError) as info:
        write_folder(out, {"a.json": "{}", "missing-folder/b.json": "{}"})
    assert info.value.path == str(out)
    assert list(tmp_path.iterdir()) == [], "neither the folder, its new parent nor the staging folder remain"


def test_a_failure_in_an_existing_folder_replaces_nothing(tmp_path: Path) -> None:
    (tmp_path / "inference.json").write_text("old")
    (tmp_path / "inference.bicep").mkdir()
    with pytest.raises(OutputWriteError, match="inference.bicep is there and is not a file"):
        render(plan_project(EXAMPLE)).write(tmp_path)
    assert (tmp_path / "inference.json").read_text() == "old"
    assert not (tmp_path / "inference.parameters.json").exists()
    assert _leftovers(tmp_path) == []

