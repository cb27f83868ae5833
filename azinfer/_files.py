"""Writing files atomically: a temporary file (or folder) beside the target, then a rename."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from azinfer.errors import OutputWriteError

__all__ = ["write_atomic", "write_folder"]


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a part.

    :raises OSError: when the folder cannot be written; ``path`` is then untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# Kernel pseudo-filesystems: writing there is never what was meant, and fails in odd ways.
_PSEUDO = (Path("/proc"), Path("/sys"), Path("/dev"))


def _check_folder(folder: Path) -> None:
    """Refuse a target that cannot hold the files, with the reason in words.

    :raises OutputWriteError: at a file, under a file, at a dangling or looping link, in /proc, /sys or /dev.
    """
    shown = str(folder)
    try:
        resolved = folder.resolve(strict=False)
    except (OSError, RuntimeError):  # RuntimeError: a link loop (Python < 3.13)
        raise OutputWriteError(shown, "it is a link that loops") from None
    if folder.is_symlink() and not folder.exists():
        raise OutputWriteError(shown, f"it is a link to {os.readlink(folder)}, which does not exist")
    for pseudo in _PSEUDO:
        if resolved == pseudo or pseudo in resolved.parents:
            raise OutputWriteError(shown, f"{pseudo} is a kernel pseudo-filesystem, not a place for files")
    if folder.exists() and not folder.is_dir():
        raise OutputWriteError(shown, "it is a file, not a folder")
    for parent in folder.absolute().parents:
        if parent.is_symlink() and not parent.exists():
            raise OutputWriteError(shown, f"{parent} is a link to {os.readlink(parent)}, which does not exist")
        if parent.exists():
            if not parent.is_dir():
                raise OutputWriteError(shown, f"{parent} is a file, not a folder")
            break


def _fresh_folder(parent: Path, name: str) -> Path:
    """A new empty folder beside its target, with the permissions the umask gives (not mkdtemp's 0700)."""
    while True:
        candidate = parent / f".{name}.azinfer-{secrets.token_hex(4)}"
        try:
            candidate.mkdir(mode=0o777)
            return candidate
        except FileExistsError:
            continue


def write_folder(folder: str | os.PathLike[str], files: Mapping[str, str]) -> list[Path]:
    """Write ``files`` (name -> text) into ``folder``: all of them or, on any error, none.

    They are written into a temporary folder beside their place, then moved
    there: a new folder is renamed into place whole, into an existing folder
    each file replaces its old version. Files get the umask's permissions
    (0644 under the usual umask): they hold no secret.

    :returns: the paths written.
    :raises OutputWriteError: when ``folder`` cannot hold them (at a file, under
        a file, at a dangling link, in /proc or /sys) or the writing fails;
        nothing has been written then.
    """
    target = Path(folder)
    _check_folder(target)
    created: list[Path] = []  # parent folders made here, removed again on failure
    staging: Path | None = None
    try:
        for parent in reversed(target.absolute().parents):
            if not parent.exists():
                parent.mkdir()
                created.append(parent)
        exists = target.is_dir()
        for name in files:
            if exists and (target / name).exists() and not (target / name).is_file():
                raise OutputWriteError(str(target), f"{target / name} is there and is not a file")
        staging = _fresh_folder(target if exists else target.absolute().parent, target.name or "out")
        for name, text in files.items():
            with open(staging / name, "x", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        if exists:
            for name in files:
                os.replace(staging / name, target / name)
            staging.rmdir()
        else:
            staging.rename(target)
        staging = None
    except OSError as exc:
        raise OutputWriteError(str(target), exc.strerror or str(exc)) from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
            for parent in reversed(created):
                try:
                    parent.rmdir()
                except OSError:
                    break
    return [target / name for name in files]
