"""In the container: install azinfer once from the share, then serve. Run from the wheel itself::

    PYTHONPATH=/mount/.azinfer/dist/azinfer-0.1.0-py3-none-any.whl python3 -m azinfer.serve.bootstrap WHEEL

The start script (``start.sh``) calls this when deploy put a wheel on the
share. It installs only from there: azinfer from the wheel (``--no-index``),
the serving dependencies the image lacks pinned by the uploaded constraints
file. The image's own packages (torch, vLLM...) are kept, never replaced.

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
from importlib import metadata
from pathlib import Path

__all__ = ["main"]

# Messages go to the ``azinfer`` logger; only :func:`main`, the process's entry point, sends them to stdout.
log = logging.getLogger(__name__)

_EXTRA_MARKER = re.compile(r"""\s*(?:\band\s+)?extra\s*==\s*["']([^"']+)["']\s*(?:\band\b)?""")
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
    """What the image's Python has installed (normalised name -> version), the wheel left out."""
    paths = [p for p in sys.path if Path(p or ".").resolve() != wheel.resolve()]
    return {_normal(d.metadata["Name"]): d.version for d in metadata.distributions(path=paths) if d.metadata["Name"]}


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


def _pip(args: list[str]) -> None:
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
               "--progress-bar", "off", "--no-warn-script-location", *args]
    if subprocess.run(command).returncode != 0:
        raise SystemExit(f"azinfer: error: pip failed: {' '.join(command)}")


def _build(target: Path, wheel: Path, constraints: Path, extras: set[str], image: dict[str, str]) -> None:
    """Install into ``target``: azinfer from the wheel only, then the missing serving dependencies, pinned."""
    _pip(["--prefix", str(target), "--no-deps", "--no-index", "--ignore-installed", str(wheel)])
    requirements = _requirements(wheel, extras)
    # The image's packages win: a pin on one of them would make pip replace it (torch in a CUDA image).
    pins = [line for line in constraints.read_text().splitlines()
            if line.strip() and not line.startswith("#")
            and _normal(re.split(r"[=<>!~ ;\[]", line, maxsplit=1)[0]) not in image]
    effective = target / "constraints.txt"
    effective.write_text("\n".join(pins) + "\n")
    if requirements:
        _pip(["--prefix", str(target), "-c", str(effective), *requirements])
    sites = sorted({str(p.relative_to(target)) for pattern in _SITE_PATTERNS for p in target.glob(pattern)})
    (target / "site-dirs").write_text("\n".join(sites) + "\n")
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
