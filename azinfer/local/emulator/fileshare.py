"""The Azure Files data plane (FileREST, ``x-ms-version`` 2026-10-06) for the storage accounts the emulator holds.

Served on its own loopback listener, path-style: a storage account's
``primaryEndpoints.file`` is ``https://127.0.0.1:{port}/{account}/``, which the
official ``azure-storage-file-share`` client takes as ``account_url`` (for a
``127.0.0.1``/``localhost`` host it reads the account name from the first path
segment and signs ``/{account}/{account}/{share}/...``).

Authorization, checked on every request:

* ``SharedKey``: the signature is recomputed (:mod:`.sharedkey`) against the
  account's ``listKeys`` values (either key); a mismatch is 403
  ``AuthenticationFailed`` with the StringToSign the emulator used, as the
  service does; an account with ``allowSharedKeyAccess: false`` answers 403
  ``KeyBasedAuthenticationNotPermitted``.
* ``Bearer``: a token the emulator issued for ``https://storage.azure.com``,
  with ``x-ms-file-request-intent: backup``, on file and directory operations
  only (share operations take a key, as on Azure).

Operations: create/delete/get share (``?restype=share``); create, delete
(``DirectoryNotEmpty``), get and list directories (``?restype=directory[&comp=list]``
with ``prefix``/``marker``/``maxresults`` paging, directories and files in one
name-ordered sequence, opaque markers); create file (``x-ms-type: file``,
``x-ms-content-length``, optional ``x-ms-content-md5`` stored and returned by
HEAD as ``Content-MD5``), put range (``comp=range``: one ``bytes=S-E`` range of at
most 4 MiB, ``x-ms-write: update|clear``, ``Content-MD5`` checked), set properties
(``comp=properties``), get properties (HEAD), download (GET, with ``x-ms-range``),
delete file.  Errors carry ``x-ms-error-code`` and an XML ``<Error>`` body; the
SDK picks its exception from that header.

Paths are case-insensitive and case-preserving, as on Azure Files.  A share's
contents live with its ARM resource (``.../fileServices/default/shares/{share}``):
deleting the share, account or group removes them.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote
from xml.sax.saxutils import escape, quoteattr

from . import providers, sharedkey
from .messages import Request, Response
from .state import Resource

if TYPE_CHECKING:  # pragma: no cover
    from .server import ArmEmulator


__all__ = ["StorageError", "ShareData", "FileEntry", "FileService", "MAX_RANGE"]

API_VERSION = "2026-10-06"
MAX_RANGE = 4 * 1024 * 1024
STORAGE_AUDIENCES = ("https://storage.azure.com",)
_FILE_IDS = itertools.count(13835128424026341376)


class StorageError(Exception):
    """A FileREST error: status, ``x-ms-error-code`` and the XML ``<Error>`` body."""

    def __init__(self, status: int, code: str, message: str, **details: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details

    def xml(self) -> str:
        extra = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in self.details.items())
        message = f"{self.message}\nRequestId:{uuid.uuid4()}\nTime:{_iso(time.time())}"
        return (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{self.code}</Code>'
                f"<Message>{escape(message)}</Message>{extra}</Error>")


def _iso(ts: float) -> str:
    """ISO 8601 with 7 fractional digits, as the file service writes times."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts))
    return f"{whole}.{int((ts % 1) * 10**7):07d}Z"


def _http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def _etag() -> str:
    return f'"0x8DC{uuid.uuid4().hex[:12].upper()}"'


@dataclass
class _Node:
    name: str  # path as created (case kept), "" for the root
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    etag: str = field(default_factory=_etag)
    file_id: str = field(default_factory=lambda: str(next(_FILE_IDS)))

    def touch(self) -> None:
        self.modified = time.time()
        self.etag = _etag()

    @property
    def leaf(self) -> str:
        return self.name.rsplit("/", 1)[-1]


@dataclass
class FileEntry(_Node):
    """One file: its bytes and the properties the service stores."""

    data: bytearray = field(default_factory=bytearray)
    content_md5: bytes | None = None
    content_type: str = "application/octet-stream"
    content_encoding: str | None = None


class ShareData:
    """One share's directories and files (keys are lower-case paths; names keep their case)."""

    def __init__(self) -> None:
        self.dirs: dict[str, _Node] = {"": _Node("")}
        self.files: dict[str, FileEntry] = {}

    # Python API ---------------------------------------------------------------------------------------
    def file_bytes(self) -> dict[str, bytes]:
        """``{path: bytes}`` of every file, paths as created."""
        return {f.name: bytes(f.data) for f in sorted(self.files.values(), key=lambda f: f.name.lower())}

    def directories(self) -> list[str]:
        """Every directory path (the root excluded), as created."""
        return sorted((d.name for k, d in self.dirs.items() if k), key=str.lower)

    def put(self, path: str, data: bytes | str, *, content_md5: bytes | bool | None = None) -> FileEntry:
        """Write a file, creating its parent directories; ``content_md5=True`` stores the MD5 of ``data``."""
        raw = data.encode() if isinstance(data, str) else bytes(data)
        path = _clean(path)
        parent = path.rpartition("/")[0]
        if parent:
            self.mkdir(parent, parents=True)
        old = self.files.get(path.lower())
        entry = FileEntry(old.name if old else self._display(path), data=bytearray(raw))
        if old is not None:  # replaced in place: same name (its case), id and creation time
            entry.created, entry.file_id = old.created, old.file_id
        entry.content_md5 = hashlib.md5(raw).digest() if content_md5 is True else (content_md5 or None)
        self.files[path.lower()] = entry
        return entry

    def mkdir(self, path: str, *, parents: bool = False) -> None:
        path = _clean(path)
        parts = path.split("/")
        for i in range(1, len(parts) + 1) if parents else [len(parts)]:
            sub = "/".join(parts[:i])
            if sub.lower() in self.files:
                raise StorageError(409, "ResourceTypeMismatch", f"'{sub}' is a file.")
            if sub.lower() not in self.dirs:
                self.dirs[sub.lower()] = _Node(self._display(sub))

    def remove(self, path: str) -> None:
        """Delete a file, or a directory and everything under it (no error if absent)."""
        key = _clean(path).lower()
        self.files.pop(key, None)
        if key and key in self.dirs:
            for k in [k for k in self.dirs if k == key or k.startswith(key + "/")]:
                del self.dirs[k]
            for k in [k for k in self.files if k.startswith(key + "/")]:
                del self.files[k]

    # helpers ------------------------------------------------------------------------------------------
    def _display(self, path: str) -> str:
        """The path with the case its existing parent directories were created with."""
        parent, _, leaf = path.rpartition("/")
        if not parent:
            return leaf
        node = self.dirs.get(parent.lower())
        return f"{node.name if node else self._display(parent)}/{leaf}"

    def children(self, directory: str) -> list[_Node]:
        prefix = directory.lower() + "/" if directory else ""
        out: list[_Node] = []
        for table in (self.dirs, self.files):
            for key, node in table.items():
                if key and key.startswith(prefix) and "/" not in key[len(prefix):]:
                    out.append(node)
        return sorted(out, key=lambda n: n.leaf.lower())


def _clean(path: str) -> str:
    return "/".join(p for p in path.replace("\\", "/").split("/") if p)


# ------------------------------------------------------------------------------------------------------


class FileService:
    """Routes FileREST requests to the shares of the storage accounts in the emulator's state."""

    def __init__(self, emu: ArmEmulator) -> None:
        self.emu = emu
        self.page_size = 5000  # List Directories and Files without maxresults (the documented maximum)

    # Python API ----------------------------------------------------------------------------------------
    def account(self, name: str) -> Resource | None:
        """The storage account of that name, in any subscription."""
        low = name.lower()
        return next((r for r in self.emu.state.list("", "Microsoft.Storage/storageAccounts")
                     if r.name.lower() == low), None)

    def share(self, account: str, share: str, *, create: bool = False) -> ShareData:
        """The contents of a share (``create=True``: make the share's ARM resource if it is missing).

        :raises KeyError: when the account, or the share and not ``create``, does not exist.
        """
        acct = self.account(account)
        if acct is None:
            raise KeyError(f"no storage account named {account!r} in the emulator")
        res = self._share_resource(acct, share)
        if res is None:
            if not create:
                raise KeyError(f"storage account {account!r} has no file share {share!r}")
            res = self._create_share_resource(acct, share)
        return _data(res)

    def _share_resource(self, acct: Resource, share: str) -> Resource | None:
        return self.emu.state.get(f"{acct.id}/fileServices/default/shares/{share}")

    def _create_share_resource(self, acct: Resource, share: str, quota: int | None = None) -> Resource:
        body: dict[str, Any] = {"id": f"{acct.id}/fileServices/default/shares/{share}", "properties": {}}
        if quota is not None:
            body["properties"]["shareQuota"] = quota
        (res,) = self.emu.seed(body)
        return res

    # HTTP ----------------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        try:
            return self._handle(req)
        except StorageError as err:
            return Response(err.status, None if req.method == "HEAD" else err.xml().encode(),
                            error_headers(err))

    def _handle(self, req: Request) -> Response:
        segments = [unquote(s) for s in req.path.split("/") if s]
        if not segments:
            raise StorageError(400, "InvalidUri", "The requested URI does not represent any resource on the server.")
        acct = self.account(segments[0])
        if acct is None:
            raise StorageError(404, "ResourceNotFound",
                               f"No storage account '{segments[0]}' (on Azure its host name would not resolve).")
        self._authorize(req, acct)
        if len(segments) < 2:
            raise StorageError(400, "InvalidQueryParameterValue", "Service-level operations are not emulated.")
        share_name = segments[1]
        path = _clean("/".join(segments[2:]))
        restype = req.query.get("restype", "").lower()
        comp = req.query.get("comp", "").lower()
        if restype == "share" and not path:
            if req.headers.get("authorization", "").startswith("Bearer "):
                raise StorageError(403, "AuthorizationFailure",
                                   "This request is not authorized to perform this operation (share operations "
                                   "take a Shared Key or SAS, not OAuth).")
            return self._share_op(req, acct, share_name)
        res = self._share_resource(acct, share_name)
        if res is None:
            raise StorageError(404, "ShareNotFound", "The specified share does not exist.")
        share = _data(res)
        if restype == "directory":
            if comp == "list":
                return self._list(req, acct, share_name, share, path)
            return self._directory_op(req, share, path)
        if not path:
            raise StorageError(400, "InvalidUri", "The requested URI does not represent any resource on the server.")
        return self._file_op(req, share, path, comp)

    # authorization ---------------------------------------------------------------------------------------
    def _authorize(self, req: Request, acct: Resource) -> None:
        auth = req.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            why = self.emu.identity.check_bearer(auth)
            if why is not None:
                raise StorageError(401, "InvalidAuthenticationInfo", why.partition(": ")[2])
            claims = self.emu.identity.issued[auth[7:].strip()]
            if claims["aud"].rstrip("/") not in STORAGE_AUDIENCES:
                raise StorageError(401, "InvalidAuthenticationInfo",
                                   f"Audience validation failed. Audience did not match: {claims['aud']}.")
            if req.headers.get("x-ms-file-request-intent", "").lower() != "backup":
                raise StorageError(400, "MissingRequiredHeader",
                                   "An HTTP header that's mandatory for this request is not specified.",
                                   HeaderName="x-ms-file-request-intent")
            return
        parsed = sharedkey.parse_authorization(auth) if auth else None
        if parsed is None:
            raise StorageError(401, "NoAuthenticationInformation",
                               "Server failed to authenticate the request. Please refer to the information in the "
                               "www-authenticate header.")
        if (acct.input.get("properties") or {}).get("allowSharedKeyAccess") is False:
            raise StorageError(403, "KeyBasedAuthenticationNotPermitted",
                               "Key based authentication is not permitted on this storage account.")
        account, signature = parsed
        to_sign = sharedkey.string_to_sign(req.method, req.path, req.raw_query, req.headers, account)
        keys = [k["value"] for k in providers.storage_keys(acct)["keys"]]
        if account != acct.name or not any(sharedkey.sign(key, to_sign) == signature for key in keys):
            raise StorageError(
                403, "AuthenticationFailed",
                "Server failed to authenticate the request. Make sure the value of Authorization header is formed "
                "correctly including the signature.",
                AuthenticationErrorDetail=f"The MAC signature found in the HTTP request '{signature}' is not the "
                                          f"same as any computed signature. Server used following string to sign: "
                                          f"'{to_sign}'.")

    # shares ---------------------------------------------------------------------------------------------
    def _share_op(self, req: Request, acct: Resource, share_name: str) -> Response:
        res = self._share_resource(acct, share_name)
        if req.method == "PUT" and not req.query.get("comp"):
            if res is not None:
                raise StorageError(409, "ShareAlreadyExists", "The specified share already exists.")
            quota = req.headers.get("x-ms-share-quota")
            res = self._create_share_resource(acct, share_name, int(quota) if quota else None)
            return Response(201, None, {"ETag": res.view().get("etag", _etag()),
                                        "Last-Modified": _http_date(time.time())})
        if res is None:
            raise StorageError(404, "ShareNotFound", "The specified share does not exist.")
        if req.method == "DELETE":
            self.emu.state.delete(res.id)
            return Response(202)
        if req.method in ("GET", "HEAD"):
            props = res.view().get("properties", {})
            return Response(200, None, {"ETag": res.view().get("etag", ""), "Last-Modified": _http_date(res.changed),
                                        "x-ms-share-quota": str(props.get("shareQuota", 102400)),
                                        "x-ms-access-tier": props.get("accessTier", "TransactionOptimized")})
        raise StorageError(400, "UnsupportedHttpVerb", f"{req.method} is not supported on a share here.")

    # directories -----------------------------------------------------------------------------------------
    def _directory_op(self, req: Request, share: ShareData, path: str) -> Response:
        key = path.lower()
        if req.method == "PUT" and not req.query.get("comp"):
            if key in share.dirs:
                raise StorageError(409, "ResourceAlreadyExists", "The specified resource already exists.")
            if key in share.files:
                raise StorageError(409, "ResourceTypeMismatch",
                                   "The specified resource type does not match the type of the existing resource.")
            parent = key.rpartition("/")[0]
            if parent not in share.dirs:
                raise StorageError(404, "ParentNotFound", "The specified parent path does not exist.")
            share.mkdir(path)
            share.dirs[parent].touch()
            return Response(201, None, _node_headers(share.dirs[key], directory=True, parent=share.dirs[parent]))
        node = share.dirs.get(key)
        if node is None:
            parent = key.rpartition("/")[0]
            code = "ResourceNotFound" if parent in share.dirs else "ParentNotFound"
            raise StorageError(404, code, "The specified resource does not exist." if code == "ResourceNotFound"
                               else "The specified parent path does not exist.")
        if req.method == "DELETE":
            if not key:
                raise StorageError(400, "InvalidUri", "The root directory cannot be deleted.")
            if share.children(key):
                raise StorageError(409, "DirectoryNotEmpty", "The specified directory is not empty.")
            del share.dirs[key]
            return Response(202)
        if req.method in ("GET", "HEAD"):
            return Response(200, None, _node_headers(node, directory=True,
                                                     parent=share.dirs.get(key.rpartition("/")[0])))
        raise StorageError(400, "UnsupportedHttpVerb", f"{req.method} is not supported on a directory here.")

    def _list(self, req: Request, acct: Resource, share_name: str, share: ShareData, path: str) -> Response:
        if req.method != "GET":
            raise StorageError(400, "UnsupportedHttpVerb", "List takes GET.")
        key = path.lower()
        if key not in share.dirs:
            raise StorageError(404, "ResourceNotFound" if key.rpartition("/")[0] in share.dirs else "ParentNotFound",
                               "The specified resource does not exist.")
        prefix = req.query.get("prefix", "")
        marker = req.query.get("marker", "")
        try:
            max_results = int(req.query["maxresults"]) if req.query.get("maxresults") else None
        except ValueError:
            raise StorageError(400, "InvalidQueryParameterValue", "maxresults must be an integer.",
                               QueryParameterName="maxresults") from None
        if max_results is not None and max_results < 1:
            raise StorageError(400, "OutOfRangeQueryParameterValue", "maxresults must be at least 1.",
                               QueryParameterName="maxresults")
        start = ""
        if marker:
            try:
                start = base64.urlsafe_b64decode(marker.encode()).decode()
            except ValueError:
                raise StorageError(400, "InvalidContinuationToken", "The specified continuation token is invalid.") from None
        entries = [n for n in share.children(key)
                   if n.leaf.lower().startswith(prefix.lower()) and n.leaf.lower() >= start]
        page_size = min(max_results or self.page_size, self.page_size)
        page, rest = entries[:page_size], entries[page_size:]
        include = {i.strip().lower() for i in req.query.get("include", "").split(",") if i.strip()}
        extended = req.headers.get("x-ms-file-extended-info", "").lower() == "true"
        parts = ['<?xml version="1.0" encoding="utf-8"?>',
                 f"<EnumerationResults ServiceEndpoint={quoteattr(self.emu.file_endpoint(acct.name))} "
                 f"ShareName={quoteattr(share_name)} DirectoryPath={quoteattr(share.dirs[key].name)}>"]
        if prefix:
            parts.append(f"<Prefix>{escape(prefix)}</Prefix>")
        if marker:
            parts.append(f"<Marker>{escape(marker)}</Marker>")
        if max_results is not None:
            parts.append(f"<MaxResults>{max_results}</MaxResults>")
        if extended:
            parts.append(f"<DirectoryId>{share.dirs[key].file_id}</DirectoryId>")
        parts.append("<Entries>")
        parts.extend(_entry_xml(n, include, extended) for n in page)
        parts.append("</Entries>")
        next_marker = base64.urlsafe_b64encode(rest[0].leaf.lower().encode()).decode() if rest else ""
        parts.append(f"<NextMarker>{next_marker}</NextMarker></EnumerationResults>")
        return Response(200, "".join(parts).encode(), {"Content-Type": "application/xml"})

    # files ---------------------------------------------------------------------------------------------------
    def _file_op(self, req: Request, share: ShareData, path: str, comp: str) -> Response:
        key = path.lower()
        parent_key = key.rpartition("/")[0]
        if parent_key not in share.dirs:
            raise StorageError(404, "ParentNotFound", "The specified parent path does not exist.")
        entry = share.files.get(key)
        if req.method == "PUT" and not comp:
            return self._create_file(req, share, path)
        if entry is None:
            if key in share.dirs:
                raise StorageError(409, "ResourceTypeMismatch",
                                   "The specified resource type does not match the type of the existing resource.")
            raise StorageError(404, "ResourceNotFound", "The specified resource does not exist.")
        if req.method == "PUT" and comp == "range":
            return self._put_range(req, entry)
        if req.method == "PUT" and comp == "properties":
            self._set_properties(req, entry)
            return Response(200, None, _node_headers(entry, parent=share.dirs[parent_key]))
        if req.method == "HEAD":
            return Response(200, None, {**_file_headers(entry, parent=share.dirs[parent_key]),
                                        "Content-Length": str(len(entry.data))})
        if req.method == "GET" and not comp:
            return self._download(req, entry, share.dirs[parent_key])
        if req.method == "DELETE":
            del share.files[key]
            share.dirs[parent_key].touch()
            return Response(202)
        raise StorageError(400, "UnsupportedHttpVerb", f"{req.method} with comp={comp!r} is not emulated on files.")

    def _create_file(self, req: Request, share: ShareData, path: str) -> Response:
        if req.headers.get("x-ms-type", "").lower() != "file":
            raise StorageError(400, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is "
                               "not specified.", HeaderName="x-ms-type")
        size = _int_header(req, "x-ms-content-length")
        if size > 4 * 1024 ** 4:
            raise StorageError(400, "OutOfRangeInput", "The file size exceeds 4 TiB.")
        if req.body:
            raise StorageError(400, "InvalidHeaderValue", "Create File takes no body.", HeaderName="Content-Length")
        key = path.lower()
        if key in share.dirs:
            raise StorageError(409, "ResourceTypeMismatch",
                               "The specified resource type does not match the type of the existing resource.")
        entry = share.put(path, b"\0" * size)
        entry.content_md5 = _md5_header(req, "x-ms-content-md5")
        entry.content_type = req.headers.get("x-ms-content-type") or "application/octet-stream"
        entry.content_encoding = req.headers.get("x-ms-content-encoding")
        parent = share.dirs[key.rpartition("/")[0]]
        parent.touch()
        return Response(201, None, {**_node_headers(entry, parent=parent), "x-ms-request-server-encrypted": "true"})

    def _put_range(self, req: Request, entry: FileEntry) -> Response:
        start, end = _one_range(req)
        write = req.headers.get("x-ms-write", "").lower()
        if write not in ("update", "clear"):
            raise StorageError(400, "InvalidHeaderValue", "x-ms-write must be 'update' or 'clear'.",
                               HeaderName="x-ms-write")
        if end >= len(entry.data):
            raise StorageError(416, "InvalidRange", "The range specified is invalid for the current size of the resource.")
        length = end - start + 1
        headers = {}
        if write == "update":
            if length > MAX_RANGE:
                raise StorageError(413, "RequestBodyTooLarge",
                                   "The request body is too large and exceeds the maximum permissible limit.",
                                   MaxLimit=str(MAX_RANGE))
            if len(req.body) != length:
                raise StorageError(400, "InvalidHeaderValue", "The range and Content-Length do not agree.",
                                   HeaderName="Content-Length")
            sent_md5 = _md5_header(req, "content-md5")
            actual = hashlib.md5(req.body).digest()
            if sent_md5 is not None and sent_md5 != actual:
                raise StorageError(400, "Md5Mismatch", "The MD5 value specified in the request did not match with "
                                   "the MD5 value calculated by the server.")
            entry.data[start:end + 1] = req.body
            headers["Content-MD5"] = base64.b64encode(actual).decode()
        else:
            if req.body or req.headers.get("content-md5"):
                raise StorageError(400, "InvalidHeaderValue", "x-ms-write: clear takes no body and no Content-MD5.",
                                   HeaderName="Content-Length")
            entry.data[start:end + 1] = b"\0" * length
        entry.touch()
        return Response(201, None, {"ETag": entry.etag, "Last-Modified": _http_date(entry.modified),
                                    "x-ms-request-server-encrypted": "true", **headers})

    def _set_properties(self, req: Request, entry: FileEntry) -> None:
        # Set File Properties: the content headers it leaves out are cleared (FileREST docs).
        if "x-ms-content-length" in req.headers:
            size = _int_header(req, "x-ms-content-length")
            del entry.data[size:]
            entry.data.extend(b"\0" * (size - len(entry.data)))
        entry.content_md5 = _md5_header(req, "x-ms-content-md5")
        entry.content_type = req.headers.get("x-ms-content-type") or "application/octet-stream"
        entry.content_encoding = req.headers.get("x-ms-content-encoding")
        entry.touch()

    def _download(self, req: Request, entry: FileEntry, parent: _Node) -> Response:
        headers = _file_headers(entry, parent=parent)
        size = len(entry.data)
        if not (req.headers.get("x-ms-range") or req.headers.get("range")):
            return Response(200, bytes(entry.data), headers)
        start, end = _one_range(req, open_end=True)
        if start >= size:
            raise StorageError(416, "InvalidRange", "The range specified is invalid for the current size of the resource.")
        end = min(size - 1 if end is None else end, size - 1)
        chunk = bytes(entry.data[start:end + 1])
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        if entry.content_md5 is not None:
            headers.pop("Content-MD5", None)
            headers["x-ms-content-md5"] = base64.b64encode(entry.content_md5).decode()
        if req.headers.get("x-ms-range-get-content-md5", "").lower() == "true":
            headers["Content-MD5"] = base64.b64encode(hashlib.md5(chunk).digest()).decode()
        return Response(206, chunk, headers)


def _data(res: Resource) -> ShareData:
    data = res.extra.get("data")
    if data is None:
        data = res.extra["data"] = ShareData()
    return data


def error_headers(err: StorageError) -> dict[str, str]:
    return {"x-ms-error-code": err.code, "Content-Type": "application/xml"}


def _int_header(req: Request, name: str) -> int:
    value = req.headers.get(name)
    if value is None:
        raise StorageError(400, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is not "
                           "specified.", HeaderName=name)
    try:
        out = int(value)
    except ValueError:
        out = -1
    if out < 0:
        raise StorageError(400, "InvalidHeaderValue", f"The value for {name} is not valid.", HeaderName=name)
    return out


def _md5_header(req: Request, name: str) -> bytes | None:
    value = req.headers.get(name)
    if not value:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 16:
        raise StorageError(400, "InvalidHeaderValue", f"The value for {name} is not a base64 MD5.", HeaderName=name)
    return raw


def _one_range(req: Request, *, open_end: bool = False) -> tuple[int, Any]:
    """The single ``bytes=S-E`` range (``x-ms-range`` wins over ``Range``)."""
    name = "x-ms-range" if "x-ms-range" in req.headers else "range"
    value = req.headers.get(name, "")
    unit, _, spec = value.partition("=")
    start_s, dash, end_s = spec.partition("-")
    ok = unit.strip() == "bytes" and dash and "," not in spec and start_s.isdigit() and (
        end_s.isdigit() or (open_end and end_s == ""))
    if not ok:
        raise StorageError(400, "InvalidHeaderValue", f"The value for one of the HTTP headers is not in the correct "
                           f"format: {value!r} (one range, bytes=start-end).", HeaderName=name)
    start, end = int(start_s), (int(end_s) if end_s else None)
    if end is not None and end < start:
        raise StorageError(416, "InvalidRange", "The range specified is invalid for the current size of the resource.")
    return start, end


def _node_headers(node: _Node, *, directory: bool = False, parent: _Node | None = None) -> dict[str, str]:
    headers = {
        "ETag": node.etag,
        "Last-Modified": _http_date(node.modified),
        "x-ms-file-creation-time": _iso(node.created),
        "x-ms-file-last-write-time": _iso(node.modified),
        "x-ms-file-change-time": _iso(node.modified),
        "x-ms-file-attributes": "Directory" if directory else "Archive",
        "x-ms-file-permission-key": "4066528134148476695*1",
        "x-ms-file-id": node.file_id,
        "x-ms-server-encrypted": "true",
    }
    if parent is not None:
        headers["x-ms-file-parent-id"] = parent.file_id
    return headers


def _file_headers(entry: FileEntry, *, parent: _Node) -> dict[str, str]:
    headers = {**_node_headers(entry, parent=parent), "x-ms-type": "File", "Content-Type": entry.content_type}
    if entry.content_md5 is not None:
        headers["Content-MD5"] = base64.b64encode(entry.content_md5).decode()
    if entry.content_encoding:
        headers["Content-Encoding"] = entry.content_encoding
    return headers


def _entry_xml(node: _Node, include: Iterable[str], extended: bool) -> str:
    tag = "File" if isinstance(node, FileEntry) else "Directory"
    props = []
    if isinstance(node, FileEntry):
        props.append(f"<Content-Length>{len(node.data)}</Content-Length>")
    if "timestamps" in include:
        props.append(f"<CreationTime>{_iso(node.created)}</CreationTime><LastAccessTime>{_iso(node.modified)}"
                     f"</LastAccessTime><LastWriteTime>{_iso(node.modified)}</LastWriteTime><ChangeTime>"
                     f"{_iso(node.modified)}</ChangeTime><Last-Modified>{_http_date(node.modified)}</Last-Modified>")
    if "etag" in include:
        props.append(f"<Etag>{escape(node.etag)}</Etag>")
    out = f"<{tag}><Name>{escape(node.leaf)}</Name>"
    if extended:
        out += f"<FileId>{node.file_id}</FileId>"
    out += f"<Properties>{''.join(props)}</Properties>"
    if "attributes" in include:
        out += f"<Attributes>{'Archive' if tag == 'File' else 'Directory'}</Attributes>"
    if "permissionkey" in include:
        out += "<PermissionKey>4066528134148476695*1</PermissionKey>"
    return out + f"</{tag}>"
