"""The named adapters a running server serves beside its base model, and the watch on the share's folder of them.

An adapter comes from ``--adapter NAME=DIR`` (kept while the server runs),
from ``<mount>/models/azinfer/NAME`` (loaded at start, and with
``--adapter-poll`` loaded and unloaded as folders appear, change and go), or
from the admin route (``POST /v1/load_lora_adapter``). The share is written
file by file, so a folder is loaded only once its files are complete and have
not changed between two looks.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from azinfer.errors import AdapterError
from azinfer.serve.discovery import share_adapters
from azinfer.serve.engine.base import Engine
from azinfer.serve.settings import check_adapter_name

__all__ = ["AdapterCatalog", "Source"]

log = logging.getLogger(__name__)

Source = Literal["flag", "share", "api"]
"""Where an adapter came from: ``--adapter``, the share's folder, or the admin route."""


@dataclass(frozen=True)
class _Adapter:
    path: Path
    source: Source
    fingerprint: tuple[tuple[str, int, int], ...]


def _fingerprint(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of each file: changes while an upload is under way."""
    try:
        return tuple(sorted((p.name, (st := p.stat()).st_size, st.st_mtime_ns) for p in folder.iterdir() if p.is_file()))
    except OSError:
        return ()


class AdapterCatalog:
    """Name -> adapter of the running engine; every change goes through :meth:`load` and :meth:`unload`.

    :param base_name: the base model's id, which no adapter may take.
    :param mount_root: the share; the admin route loads folders below it only.
    """

    def __init__(self, base_name: str, mount_root: Path) -> None:
        self.base_name = base_name
        self.mount_root = mount_root
        self._adapters: dict[str, _Adapter] = {}
        self._lock = asyncio.Lock()  # one change at a time, so the watch and the route do not interleave
        self._refused: dict[str, tuple[tuple[str, int, int], ...]] = {}  # share folders that failed, as they were

    def names(self) -> dict[str, Path]:
        """The adapters served now, name -> folder."""
        return {name: adapter.path for name, adapter in self._adapters.items()}

    def check_api_path(self, path: str) -> Path:
        """The admin route's ``lora_path``, resolved, if it is an adapter folder below the mount root.

        :raises AdapterError: it is not.
        """
        folder = Path(path).resolve()
        if not folder.is_relative_to(self.mount_root.resolve()):
            raise AdapterError(f"lora_path {path!r} is not below the share mounted at {self.mount_root}")
        if not (folder / "adapter_config.json").is_file():
            raise AdapterError(f"lora_path {path!r} is not an adapter folder (no adapter_config.json)")
        return folder

    async def load(self, engine: Engine, name: str, path: Path, source: Source) -> None:
        """Load (or replace) adapter *name* from *path*; a replacement that fails leaves the name unserved.

        :raises AdapterError: the name is invalid or the base's, or the engine cannot load the folder.
        """
        try:
            check_adapter_name(name, "lora_name")
        except Exception as error:
            raise AdapterError(str(error)) from None
        if name == self.base_name:
            raise AdapterError(f"adapter name {name!r} is the base model's id")
        async with self._lock:
            fingerprint = _fingerprint(path)
            try:
                await engine.load_adapter(name, str(path))
            except AdapterError:
                if self._adapters.pop(name, None) is not None:  # a failed replacement: the name is served no more
                    await engine.unload_adapter(name)
                raise
            self._adapters[name] = _Adapter(path, source, fingerprint)

    async def unload(self, engine: Engine, name: str) -> bool:
        """Stop serving *name*; whether it was served."""
        async with self._lock:
            if self._adapters.pop(name, None) is None:
                return False
            await engine.unload_adapter(name)
            return True

    async def watch(self, engine: Engine, every: float) -> None:
        """Follow the share's folder of adapters every *every* seconds, until cancelled."""
        seen: dict[str, tuple[tuple[str, int, int], ...]] = {}
        while True:
            await asyncio.sleep(every)
            try:
                seen = await self._look(engine, seen)
            except Exception:  # a share that fails once (network, permissions) is looked at again next time
                log.exception("looking for adapters under %s failed", self.mount_root)

    async def _look(self, engine: Engine, seen: dict[str, tuple[tuple[str, int, int], ...]]
                    ) -> dict[str, tuple[tuple[str, int, int], ...]]:
        found = await asyncio.to_thread(share_adapters, self.mount_root)
        now = {name: await asyncio.to_thread(_fingerprint, path) for name, path in found.items()}
        for name, adapter in list(self._adapters.items()):
            if adapter.source == "share" and name not in found:
                log.info("adapter %s left the share: unloading it", name)
                await self.unload(engine, name)
        for name, path in found.items():
            current = self._adapters.get(name)
            settled = seen.get(name) == now[name]  # unchanged since the last look: the upload is over
            if not settled or self._refused.get(name) == now[name] or (
                    current is not None and (current.source != "share" or current.fingerprint == now[name])):
                continue
            try:
                await self.load(engine, name, path, "share")
                log.info("adapter %s %s from the share", name, "reloaded" if current else "loaded")
            except AdapterError as error:  # said once per version of the folder
                self._refused[name] = now[name]
                log.error("adapter %s on the share cannot be served: %s", name, error)
        return now
