"""The Azure Files share: open it the way ARM describes it, and sync files to it by content.

The share's URL is the storage account's ``primaryEndpoints.file`` as ARM
reports it (sovereign clouds differ), its key comes from ``listKeys``.

A sync uploads only what changed. Each file azinfer uploads gets its MD5 as
``Content-MD5`` (set after the last range, so a file cut off mid-upload never
looks complete), and ``.azinfer/manifest.json`` on the share remembers the
MD5 and ETag of each. A file whose size and ETag in the listing match the
manifest is unchanged without another request; any other file of the right
size is asked for its ``Content-MD5`` (one HEAD). So an unchanged deploy costs
the listing of the folders it owns and one read of the manifest.

Nothing outside the roots a sync owns is listed, written or deleted: the
fine-tuning outputs (``models/``, ``model-cache/``) are never touched. Inside
them, ``delete`` removes only files azinfer uploaded and nobody wrote since:
what the toolkit, the running server or a person put or changed there stays.

The manifest proves only what it can: it carries a MAC keyed from the storage
account key (an edited, foreign or malformed manifest is set aside with a
warning and rebuilt), and an entry vouches for a file only while the share
reports the ETag azinfer recorded after its own upload. Files are streamed in
ranges; names Azure Files refuses are reported before anything is uploaded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import os
import posixpath
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from azinfer._printable import printable
from azinfer.azure.clients import AzureClients
from azinfer.azure.failures import raise_if_forbidden, translate
from azinfer.errors import AzureError, SyncError, SyncInterrupted
from azinfer.serve.bundle import ENV_DIR, SHARE_DIR

if TYPE_CHECKING:  # pragma: no cover
    from azure.core.exceptions import AzureError as SdkError
    from azure.storage.fileshare import DirectoryProperties, FileProperties, ShareClient

__all__ = [
    "MANIFEST",
    "NEVER_SYNCED",
    "SyncError",
    "SyncInterrupted",
    "LocalFile",
    "SyncPlan",
    "SyncResult",
    "open_share",
    "check_names",
    "project_files",
    "folder_files",
    "blob_files",
    "ShareSync",
]

MANIFEST = f"{SHARE_DIR}/manifest.json"
_MANIFEST_VERSION = 2
# Top-level folders of a project that never go to the share: fine-tuning outputs live there already,
# infra/ holds the project's Azure files, .azinfer/ is azinfer's own.
NEVER_SYNCED = frozenset({"models", "model-cache", "infra", SHARE_DIR})
# Anywhere in the tree: version control, virtual environments, caches, editor settings.
_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".cache",
                           ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".ipynb_checkpoints",
                           ".vscode", ".idea"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_SKIPPED_FILES = frozenset({".DS_Store", "Thumbs.db"})
_WORKERS = 8


# Azure Files' rules for directory and file names ("Naming and referencing shares, directories, files, and
# metadata", FileREST): components of at most 255 characters, paths of at most 2,048, none of these characters
# nor controls, no reserved device name; a trailing dot or space does not survive an SMB mount.
_MAX_COMPONENT = 255
_MAX_PATH = 2048
_REFUSED_CHARS = frozenset('"\\:|<>*?') | {chr(c) for c in range(0x20)} | {"\x7f"}
_RESERVED_NAMES = frozenset({"prn", "aux", "nul", "con", "clock$", ".", "..",
                             *(f"{d}{n}" for d in ("com", "lpt") for n in range(1, 10))})


def _refused(path: str) -> str | None:
    """Why Azure Files refuses ``path`` (``None`` when it takes it)."""
    if len(path) > _MAX_PATH:
        return f"longer than {_MAX_PATH} characters"
    for name in path.split("/"):
        bad = sorted({c for c in name if c in _REFUSED_CHARS or "\ud800" <= c <= "\udfff"})
        if bad:
            return "holds " + ", ".join(printable(repr(c)) for c in bad)
        if name.lower() in _RESERVED_NAMES:
            return f"{name!r} is a reserved name"
        if name.endswith((".", " ")):
            return f"{printable(repr(name))} ends with a dot or a space"
        if len(name) > _MAX_COMPONENT:
            return f"a name longer than {_MAX_COMPONENT} characters"
    return None


def check_names(paths: Iterable[str]) -> None:
    """Refuse, naming each, the paths Azure Files would refuse, before anything is uploaded.

    :raises SyncError: listing the refused paths and why.
    """
    refused = [(p, why) for p in sorted(paths) if (why := _refused(p)) is not None]
    if refused:
        shown = "; ".join(f"{printable(p)} ({why})" for p, why in refused[:10])
        more = f"; and {len(refused) - 10} more" if len(refused) > 10 else ""
        raise SyncError(f"{len(refused)} file(s) have names Azure Files does not take: {shown}{more}; "
                        "rename them (or move them out of the project) and deploy again")


@dataclass(frozen=True)
class LocalFile:
    """One file to put on the share: its share path and where its bytes come from."""

    path: str
    """Path on the share, ``/``-separated, relative to the share root."""
    size: int
    md5: bytes
    source: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    def open(self) -> BinaryIO:
        """The bytes to upload, as a stream (a file is read range by range, never whole).

        :raises SyncError: when the local file vanished or cannot be read.
        """
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.source is not None
        try:
            return self.source.open("rb")
        except OSError as exc:
            raise _unreadable(self.source, exc) from None


def _unreadable(source: Path, exc: OSError) -> SyncError:
    return SyncError(f"{printable(str(source))}: {exc.strerror or exc} while syncing it to the share; "
                     "run deploy again to upload the rest")


class _Hashing:
    """A read-only stream that hashes what is read from it, up to ``limit`` bytes (the size compared)."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self._stream = stream
        self._left = limit
        self.md5 = hashlib.md5()
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        wanted = self._left if size < 0 else min(size, self._left)
        data = self._stream.read(wanted)
        self._left -= len(data)
        self.read_bytes += len(data)
        self.md5.update(data)
        return data


def blob_files(files: Mapping[str, bytes]) -> dict[str, LocalFile]:
    """Files given as bytes (azinfer's wheel and constraints), keyed by share path."""
    return {path: LocalFile(path, len(data), hashlib.md5(data).digest(), data=data) for path, data in files.items()}


def _hash(path: Path) -> tuple[int, bytes]:
    digest = hashlib.md5()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.digest()


def _is_venv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file()


def folder_files(folder: Path, prefix: str, *, skip_top: Iterable[str] = ()) -> dict[str, LocalFile]:
    """The regular files under ``folder`` as share paths below ``prefix``, leaving out what no server needs.

    Symbolic links and special files are left out (a link could point anywhere on this machine).
    """
    skip = set(skip_top)
    found: dict[str, LocalFile] = {}
    for current, dirs, names in os.walk(folder):
        here = Path(current)
        top = here == folder
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not (top and d in skip)
                         and not (here / d).is_symlink() and not _is_venv(here / d))
        for name in sorted(names):
            path = here / name
            if name in _SKIPPED_FILES or name.endswith(_SKIPPED_SUFFIXES) or path.is_symlink() or not path.is_file():
                continue
            size, md5 = _hash(path)
            share_path = posixpath.join(prefix, path.relative_to(folder).as_posix()) if prefix else \
                path.relative_to(folder).as_posix()
            found[share_path] = LocalFile(share_path, size, md5, source=path)
    return found


def project_files(root: Path) -> dict[str, LocalFile]:
    """The project folder mirrored at the share root, as the AI Toolkit syncs it (``cd /mount/inference`` works).

    Left out: :data:`NEVER_SYNCED` at the top, and anywhere version control,
    virtual environments, caches and editor settings.
    """
    return folder_files(root, "", skip_top=NEVER_SYNCED)


@dataclass(frozen=True)
class SyncPlan:
    """What a sync will do."""

    upload: tuple[LocalFile, ...]
    delete: tuple[str, ...]
    unchanged: tuple[str, ...]
    roots: tuple[str, ...]
    """The folders (and top-level files) the sync owns on the share."""
    existing_dirs: frozenset[str] = frozenset()
    """Directories the listing found (no need to create them)."""
    warnings: tuple[str, ...] = ()
    """What the user should know (a manifest on the share that azinfer did not write, rebuilt)."""

    @property
    def upload_bytes(self) -> int:
        """Bytes to upload in all."""
        return sum(f.size for f in self.upload)

    @property
    def changes(self) -> bool:
        """Whether anything will be written or deleted."""
        return bool(self.upload or self.delete)


@dataclass(frozen=True)
class SyncResult:
    """What a sync did."""

    uploaded: tuple[str, ...]
    uploaded_bytes: int
    deleted: tuple[str, ...]
    unchanged: int


BytesCallback = Callable[[str, int], None]
"""Called with a share path and the bytes of it just sent (0 when a file starts)."""


def open_share(clients: AzureClients, resource_group: str, account: str, share: str,
               **client_kwargs: Any) -> ShareSync:
    """The share, ready to sync: the URL from ARM's ``primaryEndpoints.file``, the key from ``listKeys``.

    :raises AzureError: when the account does not exist, has no file endpoint, or its key cannot be read.
    :raises AzurePermissionError: when the caller may not read the key (the message names the role).
    """
    from azure.core.exceptions import AzureError as SdkError
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
    from azure.storage.fileshare import ShareClient

    scope = f"{clients.scope(resource_group)}/providers/Microsoft.Storage/storageAccounts/{account}"
    try:
        properties = clients.storage.storage_accounts.get_properties(resource_group, account)
        keys = clients.storage.storage_accounts.list_keys(resource_group, account).keys_property or []
    except ResourceNotFoundError:
        raise AzureError(f"storage account {account!r} does not exist in resource group {resource_group!r}; "
                         "run 'azinfer provision' first") from None
    except SdkError as exc:
        if isinstance(exc, HttpResponseError):
            raise_if_forbidden(exc, role="Storage Account Contributor", scope=scope,
                               doing="read the storage account's key")
        raise translate(exc, f"read the key of storage account {account!r}") from None
    endpoints = properties.properties.primary_endpoints if properties.properties is not None else None
    url = endpoints.file if endpoints is not None else None
    if not url:
        raise AzureError(f"storage account {account!r} has no file endpoint (primaryEndpoints.file)")
    key = next((k.value for k in keys if (k.permissions or "").lower() == "full" and k.value), None)
    if key is None:
        raise AzureError(f"storage account {account!r} gave no key with full permissions (listKeys)")
    kwargs = {k: v for k, v in client_kwargs.items() if k in ("connection_verify", "retry_total",
                                                              "retry_backoff_factor", "retry_backoff_max",
                                                              "transport", "connection_timeout", "read_timeout")}
    from azure.core.credentials import AzureNamedKeyCredential

    client = ShareClient(url, share, credential=AzureNamedKeyCredential(account, key), **kwargs)
    # The manifest's MAC key: derived from the account key, so only who holds it can vouch for a manifest.
    return ShareSync(client, manifest_key=hmac.digest(key.encode(), b"azinfer manifest", "sha256"))


def _share_error(exc: SdkError, share: ShareClient) -> SyncError:
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
    )

    name = share.share_name
    if isinstance(exc, ClientAuthenticationError):
        return SyncError(f"file share {name!r} refused the storage account key ({type(exc).__name__}); "
                         "the key may have been rotated or shared-key access turned off")
    # The storage SDK puts the x-ms-error-code header's value on the error it raises.
    error_code = str(getattr(exc, "error_code", "") or "")
    if isinstance(exc, ResourceNotFoundError) and "share" in error_code.lower():
        return SyncError(f"file share {name!r} does not exist; run 'azinfer provision' first")
    reason = (exc.reason if isinstance(exc, HttpResponseError) else None) or exc.message or type(exc).__name__
    lines = str(reason).strip().splitlines()
    return SyncError(f"file share {name!r} ({share.url}): {lines[0] if lines else type(exc).__name__}; "
                     "run deploy again")


def _manifest_entry(entry: object) -> bool:
    """Whether ``entry`` has the form azinfer writes: ``{"md5", "size", "etag", "uploaded"}``."""
    if not isinstance(entry, dict) or set(entry) != {"md5", "size", "etag", "uploaded"}:
        return False
    try:
        md5 = base64.b64decode(str(entry["md5"]), validate=True)
    except (binascii.Error, ValueError):
        return False
    size = entry["size"]
    return (len(md5) == 16 and isinstance(size, int) and not isinstance(size, bool) and size >= 0
            and isinstance(entry["etag"], str) and isinstance(entry["uploaded"], bool))


class ShareSync:
    """Compares files with what is on the share and makes the share match (only inside the roots it owns).

    The manifest is trusted only as far as it proves itself: its MAC (keyed from
    the storage account key) must match, so an edited, foreign or malformed
    manifest is set aside with a warning and rebuilt; an entry vouches for a
    file only while the file's ETag is the one azinfer recorded after its own
    write (any later write changes it).

    :param share: the share's client.
    :param manifest_key: the key of the manifest's MAC (see :func:`open_share`).
    """

    def __init__(self, share: ShareClient, *, manifest_key: bytes, workers: int = _WORKERS) -> None:
        self._share = share
        self._key = manifest_key
        self._workers = workers
        self._manifest: dict[str, dict[str, Any]] | None = None
        self._saved = ""  # the manifest as the share holds it (JSON), to know when to write it back
        self.warnings: list[str] = []
        """What reading the share found worth telling (a manifest set aside)."""

    # -- reading the share -------------------------------------------------------------------------
    def _mac(self, files: Mapping[str, Any]) -> str:
        body = json.dumps(files, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self._key, body, "sha256").hexdigest()

    def _read_manifest(self) -> dict[str, dict[str, Any]]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            data = self._share.get_file_client(MANIFEST).download_file().readall()
        except ResourceNotFoundError:
            return {}
        try:
            document = json.loads(data)
        except (ValueError, RecursionError):
            document = None
        files = document.get("files") if isinstance(document, dict) else None
        mac = document.get("mac") if isinstance(document, dict) else None
        if (isinstance(files, dict) and isinstance(mac, str) and document.get("version") == _MANIFEST_VERSION
                and all(isinstance(p, str) and _manifest_entry(e) for p, e in files.items())
                and hmac.compare_digest(mac, self._mac(files))):
            return files
        self.warnings.append(f"{MANIFEST} on the share is not one azinfer wrote (edited, from another version, "
                             "or malformed): set aside; each file's Content-MD5 is asked once and the manifest "
                             "rebuilt, and --delete leaves every file it no longer vouches for")
        return {}

    def manifest(self) -> dict[str, dict[str, Any]]:
        """``.azinfer/manifest.json`` from the share, when its MAC holds: path -> ``{"md5", "size", "etag",
        "uploaded"}`` (empty when absent or set aside: see :attr:`warnings`)."""
        if self._manifest is None:
            self._manifest = self._read_manifest()
            # A manifest set aside is written back, rebuilt, by the next apply whatever it changes.
            self._saved = "" if self.warnings else json.dumps(self._manifest, sort_keys=True)
        return self._manifest

    def _vouched(self, path: str, etag: str | None) -> bool:
        """Whether azinfer uploaded ``path`` and nothing wrote it since (its ETag is the one recorded)."""
        known = self.manifest().get(path)
        return bool(known and known["uploaded"] and etag and known["etag"] == etag)

    def _entries(self, directory: str) -> list[DirectoryProperties | FileProperties] | None:
        """One directory's listing (``None`` when it does not exist)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return list(self._share.get_directory_client(directory).list_directories_and_files(include=["etag"]))
        except ResourceNotFoundError:
            return None

    def _remote(self, roots: Iterable[str]) -> tuple[dict[str, FileProperties], set[str]]:
        """Files (path -> listing entry) and directories below ``roots``.

        The share root is listed once (not recursively): it says which top-level
        entries exist. The folders below are listed concurrently, a level at a time
        as they are found, and the manifest is read meanwhile.
        """
        from azure.storage.fileshare import FileProperties

        top = {r.split("/", 1)[0] for r in roots}
        files: dict[str, FileProperties] = {}
        dirs: set[str] = set()
        with ThreadPoolExecutor(self._workers) as pool:
            manifest = pool.submit(self.manifest)
            for entry in self._entries("") or []:
                if entry.name not in top:
                    continue
                if isinstance(entry, FileProperties):
                    files[entry.name] = entry
                else:
                    dirs.add(entry.name)
            pending = {pool.submit(self._entries, root): root for root in sorted(roots)
                       if root.split("/", 1)[0] in dirs}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    directory = pending.pop(future)
                    entries = future.result()
                    if entries is None:
                        continue
                    dirs.add(directory)
                    for entry in entries:
                        path = posixpath.join(directory, entry.name)
                        if isinstance(entry, FileProperties):
                            files[path] = entry
                        else:
                            pending[pool.submit(self._entries, path)] = path
            manifest.result()
        return files, dirs

    def foreign(self) -> list[str]:
        """The files on the whole share that azinfer cannot vouch for: not uploaded by it, or written since.

        Destroy deletes the storage account only when this is empty (empty folders hold nothing and do
        not count, nor does what azinfer's server installed from the uploaded wheel, under ``.azinfer/env``).

        :raises SyncError: when the share cannot be read.
        """
        from azure.core.exceptions import AzureError as SdkError

        try:
            top = [entry.name for entry in self._entries("") or []]
            files, _ = self._remote(top)
        except SdkError as exc:
            raise _share_error(exc, self._share) from None
        return sorted(p for p, entry in files.items()
                      if p != MANIFEST and not _below(p, (ENV_DIR,)) and not self._vouched(p, entry.etag))

    def _same(self, local: LocalFile, remote: FileProperties) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        if remote.size != local.size:
            return False
        known = self.manifest().get(local.path)
        if known and remote.etag and known["etag"] == remote.etag:
            return bool(known["md5"] == base64.b64encode(local.md5).decode())
        try:
            properties = self._share.get_file_client(local.path).get_file_properties()
        except ResourceNotFoundError:
            return False
        md5 = properties.content_settings.content_md5
        if md5 is not None and bytes(md5) == local.md5:
            # The content is the local file's, but who put it there is not known: not azinfer's to delete.
            self.manifest()[local.path] = {"md5": base64.b64encode(local.md5).decode(), "size": local.size,
                                           "etag": properties.etag or "", "uploaded": False}
            return True
        return False

    def plan(self, files: Mapping[str, LocalFile], *, roots: Iterable[str], delete: bool = False,
             owned_whole: Iterable[str] = ()) -> SyncPlan:
        """Compare ``files`` with the share below ``roots`` (folders or top-level files it owns).

        :param delete: also delete files below the roots that an earlier sync uploaded (the manifest
            has them) and ``files`` no longer has; a file azinfer never put there stays.
        :param owned_whole: roots whose other files are deleted even without ``delete``.
        :raises SyncError: when the share cannot be read.
        """
        from azure.core.exceptions import AzureError as SdkError

        roots = tuple(sorted(set(roots)))
        outside = [p for p in files if not _below(p, roots)]
        if outside:
            raise ValueError(f"{outside[0]} is outside the roots the sync owns")
        check_names(files)
        try:
            remote, dirs = self._remote(roots)  # reads the manifest too, before the files are compared with it
            with ThreadPoolExecutor(self._workers) as pool:
                same = dict(zip(files, pool.map(
                    lambda f: f.path in remote and self._same(f, remote[f.path]), files.values())))
        except SdkError as exc:
            raise _share_error(exc, self._share) from None
        upload = tuple(f for p, f in sorted(files.items()) if not same[p])
        unchanged = tuple(sorted(p for p, s in same.items() if s))
        whole = tuple(owned_whole)
        gone = tuple(sorted(p for p, entry in remote.items() if p not in files and p != MANIFEST
                            and (_below(p, whole) or (delete and self._vouched(p, entry.etag)))))
        return SyncPlan(upload, gone, unchanged, roots, frozenset(dirs), tuple(self.warnings))

    # -- writing the share -------------------------------------------------------------------------
    def _ensure_dirs(self, paths: Iterable[str], existing: set[str]) -> None:
        from azure.core.exceptions import ResourceExistsError

        wanted: set[str] = set()
        for path in paths:
            parent = posixpath.dirname(path)
            while parent and parent not in existing:
                wanted.add(parent)
                parent = posixpath.dirname(parent)
        for directory in sorted(wanted, key=lambda d: (d.count("/"), d)):
            try:
                self._share.get_directory_client(directory).create_directory()
            except ResourceExistsError:
                pass
            existing.add(directory)

    def _upload(self, file: LocalFile, on_bytes: BytesCallback | None, cancel: threading.Event) -> dict[str, Any]:
        from azure.storage.fileshare import ContentSettings

        sent = 0

        def hook(current: int, _total: int | None) -> None:
            nonlocal sent
            if cancel.is_set():
                raise KeyboardInterrupt
            if on_bytes is not None and current > sent:
                on_bytes(file.path, current - sent)
            sent = max(sent, current)

        if on_bytes is not None:
            on_bytes(file.path, 0)
        client = self._share.get_file_client(file.path)
        with file.open() as stream:
            # Range by range (one at a time, so each is hashed in order): memory stays a few MiB whatever the size.
            reader = _Hashing(stream, file.size)
            try:
                client.upload_file(cast(BinaryIO, reader), length=file.size, max_concurrency=1, progress_hook=hook)
            except OSError as exc:
                if file.source is None:
                    raise
                raise _unreadable(file.source, exc) from None
        if reader.read_bytes != file.size:
            raise SyncError(f"{printable(file.path)} changed while it was uploaded (shorter than the "
                            f"{file.size} bytes compared); run deploy again")
        md5 = reader.md5.digest()  # the bytes sent, even if the file changed since it was compared
        # MD5 last: a file cut off mid-upload has none, so no later run takes it for complete.
        result = client.set_http_headers(content_settings=ContentSettings(content_md5=bytearray(md5)))
        return {"md5": base64.b64encode(md5).decode(), "size": file.size, "etag": str(result.get("etag") or ""),
                "uploaded": True}

    def _save_manifest(self, existing: set[str]) -> None:
        files = dict(sorted(self.manifest().items()))
        body = json.dumps({"version": _MANIFEST_VERSION, "files": files, "mac": self._mac(files)},
                          indent=1).encode()
        self._ensure_dirs([MANIFEST], existing)
        self._share.get_file_client(MANIFEST).upload_file(body)
        self._saved = json.dumps(self.manifest(), sort_keys=True)

    def apply(self, plan: SyncPlan, *, on_bytes: BytesCallback | None = None) -> SyncResult:
        """Upload and delete what ``plan`` says; the manifest records every file that completed.

        :raises SyncError: when a local file vanished or the share refused a write (the next run continues).
        :raises SyncInterrupted: on Ctrl-C (the next run continues).
        """
        from azure.core.exceptions import AzureError as SdkError
        from azure.core.exceptions import ResourceNotFoundError

        # Files the plan recognised by their Content-MD5 are in it already: it is written back with them too.
        manifest = self.manifest()
        existing = set(plan.existing_dirs)  # grows as folders are made
        cancel = threading.Event()
        uploaded: list[LocalFile] = []
        deleted: list[str] = []
        try:
            try:
                self._ensure_dirs((f.path for f in plan.upload), existing)
                with ThreadPoolExecutor(self._workers) as pool:
                    futures = {pool.submit(self._upload, f, on_bytes, cancel): f for f in plan.upload}
                    try:
                        for future, file in futures.items():
                            manifest[file.path] = future.result()
                            uploaded.append(file)
                    except BaseException:
                        cancel.set()
                        for future in futures:
                            future.cancel()
                        raise
                for path in plan.delete:
                    try:
                        self._share.get_file_client(path).delete_file()
                    except ResourceNotFoundError:
                        pass
                    manifest.pop(path, None)
                    deleted.append(path)
            except KeyboardInterrupt:
                raise SyncInterrupted(f"stopped after uploading {len(uploaded)} of {len(plan.upload)} file(s); "
                                      "run deploy again to upload the rest") from None
            except SdkError as exc:
                raise _share_error(exc, self._share) from None
        finally:
            if json.dumps(manifest, sort_keys=True) != self._saved:
                try:
                    self._save_manifest(existing)
                except Exception:  # noqa: BLE001 - the error being raised matters more; HEADs recover
                    pass
        return SyncResult(tuple(f.path for f in uploaded), sum(f.size for f in uploaded), tuple(deleted),
                          len(plan.unchanged))


def _below(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)
