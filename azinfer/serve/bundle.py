"""What the container needs from azinfer, built on the user's machine: a wheel of the installed package and the constraints.

``azinfer deploy`` puts these on the share under :data:`DIST_DIR`; the start
script installs from there only (see :mod:`azinfer.serve.bootstrap`), so no
package index is ever asked for azinfer itself. The wheel is made from the
files of the installed package, byte for byte the same for the same code
(sorted entries, fixed timestamps): an unchanged installation uploads nothing
and rebuilds nothing.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata, resources
from importlib.abc import Traversable

from azinfer.errors import AzinferError

__all__ = ["SHARE_DIR", "DIST_DIR", "ENV_DIR", "CURRENT", "CONSTRAINTS", "ServerBundle", "server_bundle", "build_wheel"]

SHARE_DIR = ".azinfer"
"""azinfer's own folder on the share (its files, the installed environments, the sync manifest)."""
DIST_DIR = f"{SHARE_DIR}/dist"
ENV_DIR = f"{SHARE_DIR}/env"
"""Where the server installs itself from the wheel on the share (``serve/bootstrap.py``, which stays stdlib-only
and spells the same path)."""
"""Where deploy puts the wheel and the constraints file."""
CURRENT = "CURRENT"
"""The file in :data:`DIST_DIR` naming the wheel to install (written last, so a start never sees half a deploy)."""
CONSTRAINTS = "constraints.txt"

# pyproject maps these packages from folders outside azinfer/ (package-dir), so an editable
# install does not have them below the azinfer folder.
_MAPPED_SUBPACKAGES = ("schemas",)
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


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
    version = dist.version
    info = f"azinfer-{version}.dist-info"
    files = _package_files()
    files[f"{info}/METADATA"] = meta.encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: azinfer\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        files[f"{info}/entry_points.txt"] = entry_points.encode()
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, _ZIP_DATE)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(entry, data)
    return f"azinfer-{version}-py3-none-any.whl", buffer.getvalue()


def server_bundle() -> ServerBundle:
    """The wheel, the constraints file and the pointer to the wheel, keyed by their paths on the share.

    :raises AzinferError: when azinfer's metadata is not installed.
    """
    name, wheel = build_wheel()
    constraints = resources.files(__package__).joinpath(CONSTRAINTS).read_bytes()
    return ServerBundle(name, {
        f"{DIST_DIR}/{name}": wheel,
        f"{DIST_DIR}/{CONSTRAINTS}": constraints,
        f"{DIST_DIR}/{CURRENT}": f"{name}\n".encode(),
    })
