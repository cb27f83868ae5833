"""In the container: install azinfer once from the share, with no package index, then serve. Run from the wheel itself::

    PYTHONPATH=/mount/.azinfer/dist/azinfer-0.1.0-py3-none-any.whl python3 -m azinfer.serve.bootstrap WHEEL

The start script (``start.sh``) calls this when deploy put a wheel on the
share. It installs only from there (see :mod:`azinfer.serve.bundle` for what
deploy puts there): azinfer's wheel is unpacked into a folder of its own, first
on the server's path; then ``pip install --no-index --find-links`` the wheels'
folder installs the serving dependencies the image lacks (peft and accelerate
on vLLM's image). The image's own packages (torch, vLLM...) are never
replaced: the constraints pin every distribution the image has at the
image's version, so pip keeps them or fails, and the uploaded constraints
pin the rest. A dependency with no wheel on the share ends the start with one
line naming it and the fix.

One build per wheel, image and Python, shared by every replica: the result
lives in ``<mount>/.azinfer/env/<version>-<key>``. The first replica takes a
lock (a directory: ``mkdir`` is atomic on Azure Files), builds in a folder of
its own (named by host name and a random token: every replica's bash is
PID 1, so a PID names nobody) and renames it into place when complete; the
others wait for it. A builder that died leaves a lock that stops being
refreshed and is broken after ``AZINFER_BUILD_STALE_SECONDS``. A restart
finds the environment complete and starts at once. Nothing heavy is imported.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from importlib import metadata
from pathlib import Path

__all__ = ["main"]

# Messages go to the ``azinfer`` logger; only :func:`main`, the process's entry point, sends them to stdout.
log = logging.getLogger(__name__)

_EXTRA_MARKER = re.compile(r"""\s*(?:\band\s+)?extra\s*==\s*["']([^"']+)["']\s*(?:\band\b)?""")
# A version pip accepts in a pin (PEP 440, as packaging's VERSION_PATTERN): a distribution the image's
# system packager versioned otherwise is left unpinned rather than making pip refuse the whole file.
_PEP440 = re.compile(r"""v?(\d+!)?\d+(\.\d+)*([-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?\d*)?"""
                     r"""(-\d+|[-_.]?(post|rev|r)[-_.]?\d*)?([-_.]?dev[-_.]?\d*)?(\+[a-z0-9]+([-_.][a-z0-9]+)*)?""",
                     re.IGNORECASE)
_NO_WHEEL = re.compile(r"No matching distribution found for ([A-Za-z0-9._-]+)")
_OWN_SITE = "azinfer-wheel"
_SITE_PATTERNS = ("lib/python*/site-packages", "lib/python*/dist-packages", "local/lib/python*/dist-packages",
                  "lib64/python*/site-packages")


def _requirements(wheel: Path, extras: set[str]) -> list[str]:
    """The wheel's requirements for ``extras``, with the extra conditions taken out (pip evaluates the rest)."""
    (dist,) = metadata.distributions(path=[str(wheel)])
    wanted = []
    for text in dist.requires or []:
        requirement, _, marker = text.partition(";")
        found = _EXTRA_MARKER.search(marker)
        if found is None:
            wanted.append(text.strip())
        elif found.group(1) in extras:
            rest = _EXTRA_MARKER.sub(" ", marker).strip().strip("()").strip()
            wanted.append(requirement.strip() + (f"; {rest}" if rest else ""))
    return wanted


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _image_distributions(wheel: Path) -> dict[str, str]:
    """What the image's Python has installed (normalised name -> version), the wheel left out.

    Of two copies on the path, the first is the one Python imports and pip sees.
    """
    paths = [p for p in sys.path if Path(p or ".").resolve() != wheel.resolve()]
    found: dict[str, str] = {}
    for dist in metadata.distributions(path=paths):
        if dist.metadata["Name"]:
            found.setdefault(_normal(dist.metadata["Name"]), dist.version)
    return found


def _key(wheel: Path, constraints: Path, extras: set[str], image: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for part in (wheel.read_bytes(), constraints.read_bytes(), ",".join(sorted(extras)).encode(),
                 sys.version.encode(), sys.prefix.encode(),
                 "\n".join(f"{n}=={v}" for n, v in sorted(image.items())).encode()):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


class _Lock:
    """A directory lock on the share, refreshed while held so that waiters can tell a dead holder."""

    def __init__(self, path: Path, owner: str, stale_after: float) -> None:
        self.path, self.owner, self.stale_after = path, owner, stale_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def try_acquire(self) -> bool:
        try:
            self.path.mkdir()
        except FileExistsError:
            return False
        (self.path / "owner").write_text(self.owner)
        self._thread = threading.Thread(target=self._refresh, daemon=True)
        self._thread.start()
        return True

    def _refresh(self) -> None:
        while not self._stop.wait(max(self.stale_after / 4, 0.05)):
            try:
                os.utime(self.path / "owner")
            except OSError:
                return

    def holder(self) -> tuple[str, float] | None:
        """Who holds the lock and how long since they refreshed it; ``None`` when free."""
        try:
            owner = self.path / "owner"
            return owner.read_text().strip(), time.time() - owner.stat().st_mtime
        except FileNotFoundError:
            try:  # created, owner file not written yet
                return "?", time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return None

    def break_stale(self) -> None:
        # Rename first: of several waiters breaking the same lock, one wins and the others find it gone.
        grave = self.path.with_name(f"{self.path.name}.stale-{self.owner}")
        try:
            self.path.rename(grave)
        except OSError:
            return
        shutil.rmtree(grave, ignore_errors=True)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        shutil.rmtree(self.path, ignore_errors=True)


def _pip(wheels: Path, args: list[str]) -> None:
    """``pip install`` from the wheels in ``wheels`` only; a missing one is one line naming it and the fix."""
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
               "--progress-bar", "off", "--no-warn-script-location", "--no-index", "--find-links", str(wheels),
               *args]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    missing = _NO_WHEEL.search(result.stdout)
    if result.returncode != 0 and missing is not None:
        raise SystemExit(f"azinfer: error: the image lacks {missing.group(1)} and the share has no wheel of it "
                         f"({wheels}): run 'azinfer deploy' (it ships the wheels of what the default image "
                         f"lacks), or install {missing.group(1)} in the image")
    if result.stdout.strip():
        log.info("pip says:\n%s", result.stdout.rstrip())
    if result.returncode != 0:
        raise SystemExit(f"azinfer: error: pip failed: {' '.join(command)}")


def _constraints(uploaded: Path, image: dict[str, str]) -> str:
    """Every distribution the image has, pinned at the image's version; the uploaded pins for the rest."""
    pins = [f"{name}=={version}" for name, version in sorted(image.items()) if _PEP440.fullmatch(version.strip())]
    pins += [line for line in uploaded.read_text().splitlines()
             if line.strip() and not line.startswith("#")
             and _normal(re.split(r"[=<>!~ ;\[]", line, maxsplit=1)[0]) not in image]
    return "\n".join(pins) + "\n"


def _build(target: Path, wheel: Path, constraints: Path, extras: set[str], image: dict[str, str]) -> None:
    """Install into ``target`` from the wheels beside ``wheel`` only: azinfer, then what the image lacks, pinned."""
    # azinfer's own pure-Python wheel installs by unzipping (a second pip run costs most of a second), into
    # a folder of its own that comes first on the path: an azinfer in the image is shadowed, never replaced.
    with zipfile.ZipFile(wheel) as own:
        own.extractall(target / _OWN_SITE)
    requirements = _requirements(wheel, extras)
    effective = target / "constraints.txt"
    effective.write_text(_constraints(constraints, image))
    if requirements:
        # --no-compile: the server compiles what it imports, the rest of peft would cost the start time.
        _pip(wheel.parent, ["--prefix", str(target), "--no-compile", "-c", str(effective), *requirements])
    sites = sorted({str(p.relative_to(target)) for pattern in _SITE_PATTERNS for p in target.glob(pattern)})
    (target / "site-dirs").write_text("\n".join([_OWN_SITE, *sites]) + "\n")
    (target / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")


def ensure_environment(mount: Path, wheel: Path, extras: set[str]) -> Path:
    """The complete environment for this wheel, image and Python: found, waited for, or built now.

    Says what it does through the ``azinfer.serve.bootstrap`` logger.
    """
    constraints = wheel.parent / "constraints.txt"
    image = _image_distributions(wheel)
    version = wheel.name.split("-")[1]
    root = mount / ".azinfer" / "env"
    env = root / f"{version}-{_key(wheel, constraints, extras, image)}"
    if (env / ".complete").exists():
        log.info("using %s (installed before)", env)
        return env
    root.mkdir(parents=True, exist_ok=True)
    owner = f"{socket.gethostname()}-{secrets.token_hex(4)}"
    stale_after = float(os.environ.get("AZINFER_BUILD_STALE_SECONDS", "600"))
    poll = float(os.environ.get("AZINFER_BUILD_POLL_SECONDS", "2"))
    lock = _Lock(env.with_name(env.name + ".lock"), owner, stale_after)
    waited = False
    while not lock.try_acquire():
        if (env / ".complete").exists():
            log.info("using %s (installed by another replica)", env)
            return env
        holder = lock.holder()
        if holder is not None and holder[1] > stale_after:
            log.info("breaking the install lock of %s: not refreshed for %.0f s", *holder)
            lock.break_stale()
            continue
        if not waited and holder is not None:
            log.info("waiting for %s to finish installing into %s", holder[0], env)
            waited = True
        time.sleep(poll)
    building = env.with_name(f"{env.name}.build-{owner}")
    try:
        if (env / ".complete").exists():
            log.info("using %s (installed by another replica)", env)
            return env
        log.info("installing azinfer from %s into %s (once for every replica)", wheel.name, env)
        _build(building, wheel, constraints, extras, image)
        if env.exists():  # an incomplete leftover: nobody can be using it
            shutil.rmtree(env)
        building.rename(env)
    finally:
        shutil.rmtree(building, ignore_errors=True)
        lock.release()
    log.info("installed into %s", env)
    return env


def main(argv: list[str] | None = None) -> None:
    """Ensure the environment, then replace this process with ``python -m azinfer.serve`` running from it."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m azinfer.serve.bootstrap WHEEL")
    wheel = Path(args[0])
    logging.basicConfig(level=logging.INFO, format="azinfer: %(message)s", stream=sys.stdout)
    mount = Path(os.environ.get("AZINFER_MOUNT", "/mount"))
    extras = {e.strip() for e in os.environ.get("AZINFER_EXTRAS", "serve").split(",") if e.strip()}
    env = ensure_environment(mount, wheel, extras)
    sites = [str(env / line) for line in (env / "site-dirs").read_text().split() if line]
    os.environ["PYTHONPATH"] = os.pathsep.join(sites)
    os.execv(sys.executable, [sys.executable, "-m", "azinfer.serve"])


if __name__ == "__main__":
    main()
