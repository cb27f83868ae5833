"""What the container needs from the user's machine: azinfer's wheel, the wheels of what the image lacks, the constraints.

``azinfer deploy`` puts these on the share under :data:`DIST_DIR`; the start
script installs from there only, with no package index at all (see
:mod:`azinfer.serve.bootstrap`), so a replica without egress, or an index
outage, still starts, and the image's own packages are never replaced.

- azinfer's wheel is made from the files of the installed package.
- The serving dependencies the default image (vLLM's OpenAI image) lacks,
  :data:`IMAGE_LACKS`, are shipped as wheels too: each built from the
  installed distribution's files (its ``RECORD``), so no network is needed;
  one that is not installed here is fetched with ``pip download`` at the
  version of the constraints file. Only pure-Python wheels are shipped: the
  container's platform is not this machine's.
- The constraints file pins the tested serving dependencies, with the shipped
  wheels at their shipped versions; the start adds pins of every package the
  image has at the image's version.

Every wheel is byte for byte the same for the same files (sorted entries,
fixed timestamps): an unchanged installation uploads nothing and rebuilds
nothing (deploy's sync compares contents).
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata, resources
from importlib.abc import Traversable
from pathlib import Path

from azinfer.errors import AzinferError

__all__ = ["SHARE_DIR", "DIST_DIR", "ENV_DIR", "CURRENT", "CONSTRAINTS", "IMAGE_LACKS", "ServerBundle",
           "server_bundle", "build_wheel", "dependency_wheel"]

SHARE_DIR = ".azinfer"
"""azinfer's own folder on the share (its files, the installed environments, the sync manifest)."""
DIST_DIR = f"{SHARE_DIR}/dist"
"""Where deploy puts the wheels and the constraints file."""
ENV_DIR = f"{SHARE_DIR}/env"
"""Where the server installs itself from the wheels on the share (``serve/bootstrap.py``, which stays stdlib-only
and spells the same path)."""
CURRENT = "CURRENT"
"""The file in :data:`DIST_DIR` naming azinfer's wheel (written last, so a start never sees half a deploy)."""
CONSTRAINTS = "constraints.txt"
IMAGE_LACKS = ("accelerate", "peft")
"""The distributions of azinfer's serving closure that the default image lacks: deploy ships their wheels.

The closure of the ``serve`` extra minus the closure of vLLM's requirements;
``tests/freeze_constraints.py`` computes it and a test holds this tuple to it.
"""

# pyproject maps these packages from folders outside azinfer/ (package-dir), so an editable
# install does not have them below the azinfer folder.
_MAPPED_SUBPACKAGES = ("schemas",)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_DOWNLOAD_SECONDS = 300
_WHEEL_FILE = b"Wheel-Version: 1.0\nGenerator: azinfer\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
# Written by the installer, not part of a wheel (pip writes its own when it installs).
_INSTALLER_FILES = ("INSTALLER", "REQUESTED", "RECORD", "direct_url.json", "WHEEL")


@dataclass(frozen=True)
class ServerBundle:
    """The files deploy puts on the share for the server: share path -> content."""

    wheel_name: str
    files: dict[str, bytes]


def _walk(root: Traversable, prefix: str) -> Iterator[tuple[str, bytes]]:
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name == "__pycache__" or entry.name.endswith((".pyc", ".pyo")):
            continue
        if entry.is_dir():
            yield from _walk(entry, f"{prefix}{entry.name}/")
        else:
            yield f"{prefix}{entry.name}", entry.read_bytes()


def _package_files() -> dict[str, bytes]:
    files = dict(_walk(resources.files("azinfer"), "azinfer/"))
    for sub in _MAPPED_SUBPACKAGES:
        if not any(name.startswith(f"azinfer/{sub}/") for name in files):
            files.update(_walk(resources.files(f"azinfer.{sub}"), f"azinfer/{sub}/"))
    return files


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _wheel_bytes(info: str, files: dict[str, bytes]) -> bytes:
    """A wheel of ``files`` (``info`` is its ``.dist-info`` folder): WHEEL and RECORD added, entries sorted, dates fixed."""
    files = {**files, f"{info}/WHEEL": _WHEEL_FILE}
    record = "".join(f"{name},{_record_hash(files[name])},{len(files[name])}\n" for name in sorted(files))
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name in sorted(files):
            entry = zipfile.ZipInfo(name, _ZIP_DATE)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(entry, files[name])
    return buffer.getvalue()


def _wheel_name(name: str, version: str) -> str:
    return f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-py3-none-any.whl"


def build_wheel() -> tuple[str, bytes]:
    """A ``py3-none-any`` wheel of the installed azinfer: its files and its installed metadata.

    :returns: the wheel's file name and its bytes.
    :raises AzinferError: when azinfer's metadata is not installed (running from a source tree without ``pip install``).
    """
    try:
        dist = metadata.distribution("azinfer")
        # A source checkout installed with 'pip install -e .' may be found through its egg-info (PKG-INFO).
        meta = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    except metadata.PackageNotFoundError:
        meta = None
    if not meta:
        raise AzinferError("azinfer's package metadata is not installed, so its server cannot be packaged: "
                           "install azinfer ('pip install azinfer' or 'pip install -e .')")
    info = f"azinfer-{dist.version}.dist-info"
    files = _package_files()
    files[f"{info}/METADATA"] = meta.encode()
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        files[f"{info}/entry_points.txt"] = entry_points.encode()
    return _wheel_name("azinfer", dist.version), _wheel_bytes(info, files)


def _installed_files(dist: metadata.Distribution) -> dict[str, bytes] | None:
    """The files ``dist`` installed below its site folder (scripts and caches left out); ``None`` when not a pure-Python wheel install."""
    wheel_info = dist.read_text("WHEEL") or ""
    tags = re.findall(r"^Tag:\s*(\S+)", wheel_info, re.MULTILINE)
    if (not dist.files or "Root-Is-Purelib: true" not in wheel_info
            or not tags or not all(tag.endswith("-none-any") for tag in tags)):
        return None
    files = {}
    for path in dist.files:
        name = path.as_posix()
        if (name.startswith("../") or "__pycache__" in path.parts or name.endswith((".pyc", ".pyo"))
                or (path.parent.name.endswith(".dist-info") and path.name in _INSTALLER_FILES)):
            continue
        files[name] = Path(str(dist.locate_file(path))).read_bytes()
    return files


def _downloaded_wheel(name: str, version: str) -> tuple[str, bytes]:
    """``name==version``'s pure-Python wheel from the package index (``pip download``)."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
                   "--quiet", "--no-deps", "--only-binary=:all:", "--dest", folder, f"{name}=={version}"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=_DOWNLOAD_SECONDS)
            failed, last = result.returncode != 0, (result.stderr.strip().splitlines() or ["no pure-Python wheel"])[-1]
        except subprocess.TimeoutExpired:
            failed, last = True, f"no answer in {_DOWNLOAD_SECONDS} s"
        wheels = sorted(Path(folder).glob("*-none-any.whl"))
        if failed or not wheels:
            raise AzinferError(
                f"{name} is not installed here as a pure-Python wheel, and 'pip download {name}=={version}' "
                f"failed ({last}): the image lacks {name}, so deploy must ship it; install it here "
                f"('pip install {name}=={version}') or deploy with access to the package index")
        return wheels[0].name, wheels[0].read_bytes()


def dependency_wheel(name: str, pinned: str) -> tuple[str, str, bytes]:
    """The wheel of ``name`` for the share: built from its installed files, else downloaded at ``pinned``.

    :returns: the version shipped, the wheel's file name and its bytes.
    :raises AzinferError: when it is neither installed as pure Python nor downloadable.
    """
    try:
        dist = metadata.distribution(name)
        files = _installed_files(dist)
    except metadata.PackageNotFoundError:
        files = None
    if files is None:
        wheel_name, data = _downloaded_wheel(name, pinned)
        return pinned, wheel_name, data
    info = next(p.parts[0] for p in dist.files or [] if p.parts[0].endswith(".dist-info"))
    return dist.version, _wheel_name(name, dist.version), _wheel_bytes(info, files)


def _pin_name(line: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[=<>!~ ;\[]", line.strip(), maxsplit=1)[0]).lower()


def _constraints(text: str, shipped: dict[str, str]) -> bytes:
    """The packaged constraints with each shipped distribution pinned at the version shipped."""
    lines = []
    for line in text.splitlines():
        name = _pin_name(line) if line.strip() and not line.startswith("#") else ""
        lines.append(f"{name}=={shipped[name]}" if name in shipped else line)
    return ("\n".join(lines) + "\n").encode()


def server_bundle() -> ServerBundle:
    """azinfer's wheel, the wheels of :data:`IMAGE_LACKS`, the constraints and the pointer, keyed by share path.

    :raises AzinferError: when azinfer's metadata is not installed, or a wheel the image lacks cannot be had.
    """
    name, wheel = build_wheel()
    packaged = resources.files(__package__).joinpath(CONSTRAINTS).read_text()
    pins = {_pin_name(line): line.split("==", 1)[1].strip()
            for line in packaged.splitlines() if "==" in line and not line.startswith("#")}
    files, shipped = {f"{DIST_DIR}/{name}": wheel}, {}
    for dependency in IMAGE_LACKS:
        version, dependency_name, data = dependency_wheel(dependency, pins[dependency])
        shipped[dependency] = version
        files[f"{DIST_DIR}/{dependency_name}"] = data
    files[f"{DIST_DIR}/{CONSTRAINTS}"] = _constraints(packaged, shipped)
    files[f"{DIST_DIR}/{CURRENT}"] = f"{name}\n".encode()
    return ServerBundle(name, files)
