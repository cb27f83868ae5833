"""The ARM emulator: HTTPS servers on 127.0.0.1 and the :class:`ArmEmulator` test API.

Each server is the standard library's threading HTTP server behind TLS (a
``trustme`` CA, one certificate for ``127.0.0.1`` and ``localhost``); they start
in milliseconds and stop cleanly.  One listener per service, as Azure has one
host per service:

* ``emu.url``: Entra ID (token endpoint and metadata), ARM (subscriptions,
  resource groups, resources of the types in :mod:`.providers`, asynchronous
  operations, deployments, revisions and replicas) and ``/_emulator`` (admin);
* ``emu.file_url``: the Azure Files data plane (:mod:`.fileshare`), path-style;
* ``emu.logstream_url``: Container Apps' log stream (:mod:`.containerapps`);
* one listener per container app with external ingress (its ``fqdn``).

Every request goes through :meth:`ArmEmulator.dispatch`, which logs it,
applies latency and faults and routes it to its service.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import socket
import ssl
import struct
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from . import providers, traffic
from .auth import Identity
from .containerapps import ContainerAppsRuntime
from .faults import FaultSet
from .fileshare import FileService, ShareData, StorageError, error_headers
from .logstream import StreamAborted
from .messages import ArmError, Request, RequestRecord, Response
from .state import Operation, Resource, ResourceId, State, parse_resource_id

if TYPE_CHECKING:  # pragma: no cover
    from azure.identity import ClientSecretCredential

__all__ = ["ArmEmulator", "ArmError", "Request", "Response", "RequestRecord"]

DEFAULT_SUBSCRIPTION = "00000000-0000-4000-8000-00000000000a"

# ------------------------------------------------------------------------------------------------
# HTTP plumbing


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ArmEmulator/1.0"
    server: _Server

    def setup(self) -> None:
        self.request.settimeout(30)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle/delayed-ACK stalls
        raw = self.request
        try:
            self.request = self.server.ssl_context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            with contextlib.suppress(OSError):
                raw.close()
            raise
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        emu: ArmEmulator = self.server.emulator
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        req = Request(
            method=self.command.upper(),
            path=parts.path,
            query={k.lower(): v for k, v in parse_qsl(parts.query, keep_blank_values=True)},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            raw_query=parts.query,
            service=self.server.service,
            target=self.server.target,
        )
        resp = emu.dispatch(req)
        if resp.reset:
            self._hang_up(reset=True)
            return
        headers = {k.lower(): (k, v) for k, v in resp.headers.items()}
        if isinstance(resp.body, (dict, list)):
            data = json.dumps(resp.body).encode()
            ctype = "application/json; charset=utf-8"
        elif isinstance(resp.body, bytes):
            data, ctype = resp.body, "application/octet-stream"
        else:
            data, ctype = b"", None
        self.send_response(resp.status)
        if ctype and (data or resp.stream is not None) and "content-type" not in headers:
            self.send_header("Content-Type", ctype)
        if resp.stream is not None:
            self.send_header("Transfer-Encoding", "chunked")
        elif "content-length" not in headers:
            self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        self.send_header("x-ms-correlation-request-id", req.headers.get("x-ms-client-request-id", str(uuid.uuid4())))
        if req.service == "file":
            self.send_header("x-ms-version", req.headers.get("x-ms-version", "2026-10-06"))
            self.send_header("Date", self.date_time_string())
        for name, value in headers.values():
            self.send_header(name, value)
        self.end_headers()
        if resp.stream is not None:
            self._write_stream(resp.stream)
        elif req.method != "HEAD":
            self.wfile.write(data)

    def _write_stream(self, stream: Iterator[bytes]) -> None:
        try:
            for chunk in stream:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except StreamAborted:
            self._hang_up(reset=False)
        except OSError:  # the client went away
            self.close_connection = True
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    def _hang_up(self, *, reset: bool) -> None:
        if reset:
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    service = "arm"
    target: str | None = None
    ssl_context: ssl.SSLContext
    emulator: ArmEmulator


@dataclass
class UsageOverrides:
    """What :meth:`ArmEmulator.set_usage` changed at one location (usage name -> value)."""

    current: dict[str, float] = field(default_factory=dict)
    limit: dict[str, float] = field(default_factory=dict)
    remove: set[str] = field(default_factory=set)
    not_applicable: set[str] = field(default_factory=set)


# ------------------------------------------------------------------------------------------------


class ArmEmulator:
    """A stateful Azure Resource Manager + Entra ID emulator for tests.

    Use :meth:`start` as a context manager::

        with ArmEmulator.start() as emu:
            emu.add_resource_group(sub, "rg", "eastus")
            client = ContainerAppsAPIClient(emu.credential(), sub, base_url=emu.url,
                                            connection_verify=emu.ca_path)

    ``port``: the ARM listener's port (0: any free one); the other listeners always take free ports.
    """

    def __init__(self, *, latency: float = 0.0, lro_polls: int = 1, retry_after: int = 0,
                 require_auth: bool = True, subscription_id: str = DEFAULT_SUBSCRIPTION, port: int = 0) -> None:
        self.port = port
        self.latency = latency
        self.lro_polls = lro_polls
        self.retry_after = retry_after
        self.require_auth = require_auth
        self.subscription_id = subscription_id
        self.identity = Identity()
        self.state = State()
        self.faults = FaultSet()
        self.taken_storage_names: set[str] = set()  # storage names "taken" in other subscriptions
        self.location_usages: dict[str, UsageOverrides] = {}  # location -> what set_usage changed there
        # location -> the workload profile types offered there (absent: every type is offered)
        self.location_profile_types: dict[str, set[str]] = {}
        self._log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self._servers: list[_Server] = []
        self._ssl: ssl.SSLContext | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.stopping = threading.Event()
        self.ca_path = ""
        self.url = ""
        self.file_url = ""
        self.logstream_url = ""
        from .deployments import DeploymentEngine

        self.deployments = DeploymentEngine(self)
        self.fileservice = FileService(self)
        self.apps = ContainerAppsRuntime(self)

    # lifecycle ----------------------------------------------------------------------------------
    @classmethod
    @contextlib.contextmanager
    def start(cls, **kwargs: Any) -> Iterator[ArmEmulator]:
        emu = cls(**kwargs)
        emu.serve()
        try:
            yield emu
        finally:
            emu.stop()

    _CA_CACHE: tuple[Any, Any] | None = None

    @classmethod
    def _ca(cls) -> tuple[Any, Any]:
        """One trustme CA and server certificate per process (key generation is the slow part)."""
        if cls._CA_CACHE is None:
            import trustme

            ca = trustme.CA()
            cls._CA_CACHE = (ca, ca.issue_cert("127.0.0.1", "localhost"))
        return cls._CA_CACHE

    def serve(self) -> ArmEmulator:
        ca, cert = self._ca()
        self._tmp = tempfile.TemporaryDirectory(prefix="armemu-")
        self.ca_path = os.path.join(self._tmp.name, "ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        self._ssl = ctx
        self.stopping.clear()
        self.url = self._url(self.listen("arm", port=self.port))
        self.file_url = self._url(self.listen("file"))
        self.logstream_url = self._url(self.listen("logstream"))
        return self

    @staticmethod
    def _url(server: _Server | None) -> str:
        assert server is not None
        return f"https://127.0.0.1:{server.server_address[1]}"

    def listen(self, service: str, *, target: str | None = None, port: int = 0) -> _Server | None:
        """Start one more HTTPS listener for a service (None when the emulator is not serving)."""
        if self._ssl is None:
            return None
        server = _Server(("127.0.0.1", port), _Handler)
        server.ssl_context = self._ssl
        server.emulator = self
        server.service, server.target = service, target
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         name=f"arm-emulator-{service}", daemon=True).start()
        self._servers.append(server)
        return server

    def stop(self) -> None:
        """Stop every listener; open log streams end."""
        self.stopping.set()
        self.apps.close()
        stoppers = [threading.Thread(target=server.shutdown) for server in self._servers]
        for thread in stoppers:  # in parallel: each waits up to one poll interval
            thread.start()
        for thread in stoppers:
            thread.join()
        for server in self._servers:
            server.server_close()
        self._servers.clear()
        self._ssl = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # credentials & environment --------------------------------------------------------------------
    @property
    def tenant_id(self) -> str:
        return self.identity.tenant_id

    def credential(self, **kwargs: Any) -> ClientSecretCredential:
        """A real ``ClientSecretCredential`` that gets its tokens from the emulator."""
        from azure.identity import ClientSecretCredential

        kwargs.setdefault("authority", self.url)
        kwargs.setdefault("disable_instance_discovery", True)
        kwargs.setdefault("connection_verify", self.ca_path)
        return ClientSecretCredential(self.identity.tenant_id, self.identity.client_id,
                                      self.identity.client_secret, **kwargs)

    def env(self) -> dict[str, str]:
        """Environment variables for a subprocess that should talk to the emulator.

        azure-identity's ``EnvironmentCredential`` reads the first four; such a
        process must build its credential with ``disable_instance_discovery=True``
        (MSAL otherwise asks login.microsoftonline.com about the unknown authority).
        """
        return {
            "AZURE_TENANT_ID": self.identity.tenant_id,
            "AZURE_CLIENT_ID": self.identity.client_id,
            "AZURE_CLIENT_SECRET": self.identity.client_secret,
            "AZURE_AUTHORITY_HOST": self.url,
            "AZURE_SUBSCRIPTION_ID": self.subscription_id,
            "AZURE_RESOURCE_MANAGER_ENDPOINT": self.url,
            "ARM_ENDPOINT": self.url,
            "REQUESTS_CA_BUNDLE": self.ca_path,
            "SSL_CERT_FILE": self.ca_path,
        }

    # Azure Files ----------------------------------------------------------------------------------
    def file_endpoint(self, account: str) -> str:
        """The account's ``primaryEndpoints.file``: ``https://127.0.0.1:{port}/{account}/`` (path-style)."""
        if not self.file_url:
            return f"https://{account}.file.core.windows.net/"
        return f"{self.file_url}/{account}/"

    def storage_client_kwargs(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for an ``azure-storage-file-share`` client: ``connection_verify`` and a retry
        policy without the SDK's 15 s first backoff (``ExponentialRetry(initial_backoff=0, ...)``)."""
        from azure.storage.fileshare import ExponentialRetry

        out = {"connection_verify": self.ca_path,
               "retry_policy": ExponentialRetry(initial_backoff=0, increment_base=0, random_jitter_range=0)}
        out.update(extra)
        return out

    def share(self, account: str, share: str, *, create: bool = False) -> ShareData:
        """A share's contents, to seed or inspect: ``.put(path, data, content_md5=)``, ``.mkdir(path, parents=)``,
        ``.remove(path)``, ``.file_bytes()``, ``.directories()``, ``.files`` (lower path -> entry).

        :raises KeyError: when the account or share does not exist (``create=True`` makes the share).
        """
        with self.state.lock:
            return self.fileservice.share(account, share, create=create)

    def files(self, account: str, share: str) -> dict[str, bytes]:
        """Every file of a share: ``{path: bytes}``, paths as created (``dir/sub/file.txt``)."""
        with self.state.lock:
            return self.fileservice.share(account, share).file_bytes()

    def seed_files(self, account: str, share: str, files: Mapping[str, bytes | str], *,
                   content_md5: bool = False) -> None:
        """Write files into a share (parent directories made), bypassing HTTP; ``content_md5=True`` stores
        each file's MD5 as a client setting ``ContentSettings(content_md5=...)`` would."""
        with self.state.lock:
            data = self.fileservice.share(account, share)
            for path, content in files.items():
                data.put(path, content, content_md5=True if content_md5 else None)
            self.apps.containers.sync_share(account, share)

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSL context trusting the emulator's CA (for httpx and friends)."""
        return ssl.create_default_context(cafile=self.ca_path)

    def client_kwargs(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for an azure-mgmt client: base_url, connection_verify, fast retries and polling."""
        out = {"base_url": self.url, "connection_verify": self.ca_path, "retry_backoff_factor": 0.01,
               "retry_backoff_max": 0.05, "polling_interval": 0.01}
        out.update(extra)
        return out

    # seeding ---------------------------------------------------------------------------------------
    def add_resource_group(self, sub: str | None, rg: str, location: str = "eastus",
                           tags: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.state.add_resource_group(sub or self.subscription_id, rg, location, tags)

    def seed(self, *resources: dict[str, Any]) -> list[Resource]:
        """Put resources directly into the state (as Succeeded), bypassing the HTTP API and faults.

        Each dict is a resource body with ``id`` (and optionally ``location``,
        ``properties`` ...).  The resource group is created if missing.
        """
        out = []
        for body in resources:
            rid = parse_resource_id(body["id"])
            if rid.resource_group is None or not rid.types:
                raise ValueError(f"seed() takes resource ids under a resource group: {body['id']!r}")
            group = self.state.resource_group(rid.subscription, rid.resource_group)
            if group is None:
                group = self.state.add_resource_group(rid.subscription, rid.resource_group,
                                                      body.get("location", "eastus"))
            spec = providers.spec_for(rid.type)
            if spec.tracked:
                body = {"location": group["location"], **body}
            out.append(self.state.put(providers.make_resource(rid, body, self.state.get(body["id"]), self)))
            self._after_put(out[-1])
        return out

    # request log -----------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    def record(self, rec: RequestRecord) -> RequestRecord:
        with self._log_lock:
            self._log.append(rec)
        return rec

    def requests_matching(self, method: str | None = None, path: str | None = None,
                          source: str | None = None, service: str | None = None) -> list[RequestRecord]:
        """Logged requests by method and path glob (case-insensitive); ``source``: "http" or a prefix like
        "deployment"; ``service``: arm, file, logstream or ingress."""
        import fnmatch

        out = []
        for r in self.requests:
            if method and r.method != method.upper():
                continue
            if path and not fnmatch.fnmatchcase(r.path.lower(), path.lower()):
                continue
            if source and not r.source.startswith(source):
                continue
            if service and r.service != service:
                continue
            out.append(r)
        return out

    def writes_to(self, resource_id: str) -> list[RequestRecord]:
        """Every ARM write that reached the resource (or a child), over HTTP or from inside a deployment."""
        return [r for r in self.requests if r.is_write and r.targets(resource_id)]

    def file_writes(self, account: str, share: str) -> list[RequestRecord]:
        """Every data-plane write (PUT, DELETE) into a share; ``record.path`` is ``/{account}/{share}/{path}``."""
        prefix = f"/{account}/{share}".lower()
        return [r for r in self.requests if r.service == "file" and r.is_write
                and (r.path.lower() == prefix or r.path.lower().startswith(prefix + "/"))]

    # ------------------------------------------------------------------------------------------------
    def dispatch(self, req: Request) -> Response:
        """Log the request, apply latency and faults, route it to its service."""
        body: Any
        path = req.path
        if req.service == "file":  # binary bodies are not kept; the decoded path is easier to match
            path, body = unquote(req.path), None
        else:
            try:
                body = json.loads(req.body) if req.body and req.headers.get("content-type", "").startswith("application/json") else (req.body.decode("utf-8", "replace") if req.body else None)
            except ValueError:
                body = req.body.decode("utf-8", "replace")
        rec = RequestRecord(req.method, path, req.api_version, body, dict(req.query),
                            dict(req.headers), service=req.service, size=len(req.body))
        if not (req.service == "arm" and req.path.startswith("/_emulator")):
            self.record(rec)
        delay = self.latency
        lat = self.faults.take("latency", req.method, path)
        if lat is not None:
            delay += lat.seconds
        if delay:
            time.sleep(delay)
        if self.faults.take("reset", req.method, path) is not None:
            rec.status = 0
            return Response(reset=True)
        fault = self.faults.take("http", req.method, path)
        if fault is not None:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            rec.status = fault.status
            if req.service == "file":  # the storage SDK reads the error code from this header
                err = StorageError(fault.status, fault.code, fault.message)
                return Response(fault.status, None if req.method == "HEAD" else err.xml().encode(),
                                {**error_headers(err), **headers})
            return Response(fault.status, fault.error_body(), headers)
        try:
            with self.state.lock:  # one request at a time inside the state: a provider is consistent
                self.apps.tick()
                if req.service == "file":
                    resp = self.fileservice.handle(req)
                elif req.service == "logstream":
                    resp = self.apps.logstream(req)
                elif req.service == "ingress":
                    resp = self.apps.ingress(req)
                else:
                    resp = self._route(req)
                self.apps.tick()  # a deleted app's containers stop now, not at the next request
        except ArmError as err:
            resp = Response(err.status, err.body(), dict(err.headers))
        except Exception as exc:  # an emulator bug: say so, ARM-shaped
            import traceback

            traceback.print_exc()
            resp = Response(500, {"error": {"code": "EmulatorError", "message": f"{type(exc).__name__}: {exc}", "details": []}})
        if resp.forward is not None:
            resp = resp.forward()
        elif req.service == "file" and req.method in ("PUT", "DELETE") and resp.status < 300:
            account, _, rest = unquote(req.path).lstrip("/").partition("/")
            with self.state.lock:  # a running container sees the share as a folder
                self.apps.containers.sync_share(account, rest.partition("/")[0])
        rec.status = resp.status
        return resp

    # routing -----------------------------------------------------------------------------------------
    def _route(self, req: Request) -> Response:
        segs = [s for s in req.path.split("/") if s]
        low = [s.lower() for s in segs]
        if low and low[0] == "_emulator":
            return self._admin(req, low[1:])
        # Entra ID
        if len(low) >= 2 and low[-2:] == [".well-known", "openid-configuration"]:
            return Response(200, self.identity.metadata(self.url, segs[0]))
        if len(low) == 4 and low[1:] == ["oauth2", "v2.0", "token"] and req.method == "POST":
            result = self.identity.token(segs[0], req.body, req.headers)
            return Response(result.status, result.body)
        if low[:3] == ["common", "discovery", "instance"]:
            return Response(200, self.identity.instance_discovery(self.url, urlsplit(self.url).netloc))
        if not low or low[0] != "subscriptions":
            raise ArmError(404, "NotFound", f"The path '{req.path}' is not served by the ARM emulator.")
        # ARM
        if self.require_auth:
            why = self.identity.check_bearer(req.headers.get("authorization"))
            if why is not None:
                code, _, msg = why.partition(": ")
                raise ArmError(401, code, msg, headers={
                    "WWW-Authenticate": f'Bearer authorization_uri="{self.url}/{self.tenant_id}", '
                                        f'error="invalid_token", error_description="{msg}"'})
        if not req.api_version:
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        if len(low) == 1:
            return Response(200, {"value": list(self.state.subscriptions.values())})
        sub = segs[1]
        subscription = self.state.subscriptions.get(sub.lower())
        if subscription is None:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        rest, rest_low = segs[2:], low[2:]
        if not rest:
            return Response(200, subscription)
        if rest_low[0] == "providers":
            return self._subscription_provider(req, sub, rest, rest_low)
        if rest_low[0] == "resourcegroups":
            if len(rest) == 1:
                groups = [g for k, g in self.state.resource_groups.items()
                          if k.startswith(f"/subscriptions/{sub.lower()}/")]
                return Response(200, {"value": groups})
            return self._resource_group(req, sub, rest[1], rest[2:], [s.lower() for s in rest[2:]])
        raise ArmError(404, "NotFound", f"No route for '{req.path}'.")

    def _admin(self, req: Request, low: list[str]) -> Response:
        if low == ["faults"] and req.method == "POST":
            spec = req.json() or {}
            kind = spec.pop("kind", "http")
            fault = self.faults.add(kind, **spec)
            return Response(201, {"kind": fault.kind, "method": fault.method, "path": str(fault.path)})
        if low == ["faults"] and req.method == "DELETE":
            self.faults.clear()
            return Response(204)
        if low == ["requests"] and req.method == "GET":
            return Response(200, {"value": [
                {"method": r.method, "path": r.path, "apiVersion": r.api_version, "status": r.status,
                 "source": r.source, "body": r.body} for r in self.requests]})
        if low == ["state"] and req.method == "GET":
            return Response(200, {"value": [r.view(secrets=False) for r in self.state.list()]})
        raise ArmError(404, "NotFound", "unknown admin endpoint")

    # subscription-level providers ------------------------------------------------------------------------
    def _subscription_provider(self, req: Request, sub: str, rest: list[str], low: list[str]) -> Response:
        # /providers/{ns}/locations/{loc}/operationStatuses|operationResults/{id}
        if len(low) == 6 and low[2] == "locations" and low[4] in ("operationstatuses", "operationresults",
                                                                   "azureasyncoperations"):
            return self._operation(req, rest[5], low[4] != "operationresults")
        if low[:2] == ["providers", "microsoft.storage"] and len(low) == 3 and low[2] == "checknameavailability":
            if req.method != "POST":
                raise ArmError(405, "MethodNotAllowed", "checkNameAvailability takes POST")
            return Response(200, self._storage_name_availability((req.json() or {}).get("name", "")))
        if low[:2] == ["providers", "microsoft.app"] and len(low) == 5 and low[2] == "locations":
            if low[4] == "availablemanagedenvironmentsworkloadprofiletypes":
                return Response(200, {"value": self._workload_profile_types(sub, rest[3])})
            if low[4] == "usages":
                return Response(200, {"value": self._location_usages(sub, rest[3])})
        if len(low) == 3 and low[0] == "providers" and req.method == "GET":
            rtype = f"{rest[1]}/{rest[2]}"
            items = [r.view() for r in self.state.list(f"/subscriptions/{sub}/", rtype) if "/providers/" in r.id]
            return Response(200, {"value": items})
        if len(low) == 2 and low[0] == "providers":
            return Response(200, {"id": f"/subscriptions/{sub}/providers/{rest[1]}", "namespace": rest[1],
                                  "registrationState": "Registered", "resourceTypes": []})
        raise ArmError(404, "NotFound", f"No route for '{req.path}'.")

    def _storage_name_availability(self, name: str) -> dict[str, Any]:
        import re

        if not re.fullmatch(r"[a-z0-9]{3,24}", name or ""):
            return {"nameAvailable": False, "reason": "AccountNameInvalid",
                    "message": f"{name} is not a valid storage account name. Storage account name must be between "
                               "3 and 24 characters in length and use numbers and lower-case letters only."}
        taken = name.lower() in {n.lower() for n in self.taken_storage_names} or any(
            r.name.lower() == name.lower() for r in self.state.list("", "Microsoft.Storage/storageAccounts"))
        if taken:
            return {"nameAvailable": False, "reason": "AlreadyExists",
                    "message": f"The storage account named {name} is already taken."}
        return {"nameAvailable": True}

    def _workload_profile_types(self, sub: str, location: str) -> list[dict[str, Any]]:
        rows = [
            ("Consumption", "Consumption", 4, 8, 0, "Consumption"),
            ("D4", "GeneralPurpose", 4, 16, 0, "Dedicated-D4"),
            ("D8", "GeneralPurpose", 8, 32, 0, "Dedicated-D8"),
            ("D16", "GeneralPurpose", 16, 64, 0, "Dedicated-D16"),
            ("E4", "MemoryOptimized", 4, 32, 0, "Dedicated-E4"),
            ("E8", "MemoryOptimized", 8, 64, 0, "Dedicated-E8"),
            ("NC24-A100", "GPU", 24, 220, 1, "GPU NC24-A100"),
            ("NC48-A100", "GPU", 48, 440, 2, "GPU NC48-A100"),
            ("NC96-A100", "GPU", 96, 880, 4, "GPU NC96-A100"),
            ("Consumption-GPU-NC24-A100", "GPU", 24, 220, 1, "Serverless GPU NC24-A100"),
            ("Consumption-GPU-NC8as-T4", "GPU", 8, 56, 1, "Serverless GPU NC8as-T4"),
        ]
        offered = self.location_profile_types.get(location.replace(" ", "").lower())
        if offered is not None:
            rows = [row for row in rows if row[0] in offered]
        return [{
            "id": f"/subscriptions/{sub}/providers/Microsoft.App/locations/{location}/"
                  f"availableManagedEnvironmentsWorkloadProfileTypes/{name}",
            "name": name,
            "type": "Microsoft.App/locations/availableManagedEnvironmentsWorkloadProfileTypes",
            "location": location,
            "properties": {"category": cat, "applicability": "LocationDefault", "cores": cores,
                           "memoryGiB": mem, "gpus": gpus, "displayName": display},
        } for name, cat, cores, mem, gpus, display in rows]

    def _location_usages(self, sub: str, location: str) -> list[dict[str, Any]]:
        """``locations/{region}/usages`` as field reports show it: dedicated A100 nodes, no serverless GPU row."""
        loc = location.replace(" ", "").lower()
        envs = [r for r in self.state.list(f"/subscriptions/{sub}/", "Microsoft.App/managedEnvironments")
                if (r.input.get("location") or "").replace(" ", "").lower() == loc]
        dedicated_gpus = 0
        for env in envs:
            for wp in (env.input.get("properties") or {}).get("workloadProfiles") or []:
                if str(wp.get("workloadProfileType", "")).upper().startswith("NC"):
                    dedicated_gpus += int(wp.get("minimumCount") or 0)
        current: dict[str, float] = {"ManagedEnvironmentCount": len(envs), "ManagedEnvironmentConsumptionCores": 0,
                   "ManagedEnvironmentGeneralPurposeCores": 0, "ManagedEnvironmentMemoryOptimizedCores": 0,
                   "SubscriptionDedicatedNCA100Gpus": dedicated_gpus}
        limits: dict[str, float] = {"ManagedEnvironmentCount": 50, "ManagedEnvironmentConsumptionCores": 100,
                  "ManagedEnvironmentGeneralPurposeCores": 100, "ManagedEnvironmentMemoryOptimizedCores": 100,
                  "SubscriptionDedicatedNCA100Gpus": 4}
        return self._usage_rows(loc, current, limits)

    def _environment_usages(self, location: str) -> list[dict[str, Any]]:
        """``managedEnvironments/{env}/usages``: the serverless GPU rows live here."""
        current: dict[str, float] = {"ManagedEnvironmentConsumptionCores": 0, "ManagedEnvironmentConsumptionNCA100Gpus": 0,
                   "ManagedEnvironmentConsumptionT4Gpus": 0}
        limits: dict[str, float] = {"ManagedEnvironmentConsumptionCores": 100, "ManagedEnvironmentConsumptionNCA100Gpus": 4,
                  "ManagedEnvironmentConsumptionT4Gpus": 4}
        return self._usage_rows(location.replace(" ", "").lower(), current, limits)

    _ENVIRONMENT_ROWS = ("ManagedEnvironmentConsumptionCores", "ManagedEnvironmentConsumptionNCA100Gpus",
                         "ManagedEnvironmentConsumptionT4Gpus")

    def _usage_rows(self, loc: str, current: dict[str, float], limits: dict[str, float]) -> list[dict[str, Any]]:
        import re

        overrides = self.location_usages.get(loc, UsageOverrides())
        environment_scope = "ManagedEnvironmentCount" not in current
        for name in {*overrides.current, *overrides.limit}:
            # A row the defaults lack joins the region's list, or the environment's for its rows.
            if name in current or (name in self._ENVIRONMENT_ROWS) == environment_scope:
                current[name] = overrides.current.get(name, current.get(name, 0))
                limits[name] = overrides.limit.get(name, limits.get(name, 0))
        rows = []
        for name, value in current.items():
            if name in overrides.remove:
                continue
            row: dict[str, Any] = {
                "unit": "Count", "currentValue": value, "limit": limits.get(name, 0),
                "name": {"value": name, "localizedValue": re.sub(r"(?<!^)(?=[A-Z][a-z])", " ", name)}}
            if name in overrides.not_applicable:
                row["isQuotaApplicable"] = False
            rows.append(row)
        return rows

    def set_usage(self, location: str, name: str, *, current: float | None = None,
                  limit: float | None = None, applicable: bool = True, present: bool = True) -> None:
        """Override one Microsoft.App usage row at a location (``ManagedEnvironment*`` rows: every environment there).

        ``applicable=False`` marks the row ``isQuotaApplicable: false``; ``present=False`` removes it.
        """
        entry = self.location_usages.setdefault(location.replace(" ", "").lower(), UsageOverrides())
        if current is not None:
            entry.current[name] = current
        if limit is not None:
            entry.limit[name] = limit
        if not applicable:
            entry.not_applicable.add(name)
        if not present:
            entry.remove.add(name)

    # operations ----------------------------------------------------------------------------------------------
    def _op_urls(self, op: Operation, api_version: str | None) -> tuple[str, str]:
        base = f"{self.url}/subscriptions/{op.subscription}/providers/{op.namespace}/locations/{op.location}"
        q = f"?api-version={api_version or '2023-01-01'}"
        return f"{base}/operationStatuses/{op.id}{q}", f"{base}/operationResults/{op.id}{q}"

    def start_operation(self, req: Request | None, *, kind: str, resource_id: str, namespace: str,
                        location: str, on_complete: Any = None, polls: int | None = None) -> Operation:
        rid = parse_resource_id(resource_id)
        method, path = (req.method, req.path) if req is not None else ("PUT", resource_id)
        slow = self.faults.take("slow_operation", method, path)
        fail = self.faults.take("fail_operation", method, path)
        return self.state.new_operation(
            namespace=namespace, location=(location or "eastus").replace(" ", "").lower(),
            subscription=rid.subscription, kind=kind, resource_id=resource_id,
            polls_left=slow.polls if slow is not None else (self.lro_polls if polls is None else polls),
            fail_with=({"code": fail.code, "message": fail.message, "details": []} if fail is not None else None),
            on_complete=on_complete)

    def lro_headers(self, op: Operation, req: Request, *, async_op: bool = True, location: bool = True) -> dict[str, str]:
        status_url, result_url = self._op_urls(op, req.api_version)
        headers = {"Retry-After": str(self.retry_after)}
        if async_op:
            headers["Azure-AsyncOperation"] = status_url
        if location:
            headers["Location"] = result_url
        return headers

    def _operation(self, req: Request, op_id: str, status_view: bool) -> Response:
        op = self.state.operation(op_id)
        if op is None:
            raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
        self.state.advance(op)
        if status_view:
            body: dict[str, Any] = {
                "id": req.path, "name": op.id, "status": op.status,
                "startTime": providers.iso_now(op.start),
            }
            if op.done:
                body["endTime"] = providers.iso_now(op.end)
                body["percentComplete"] = 100
            if op.error is not None:
                body["error"] = op.error
            headers = {} if op.done else {"Retry-After": str(self.retry_after)}
            return Response(200, body, headers)
        if not op.done:
            _, result_url = self._op_urls(op, req.api_version)
            return Response(202, None, {"Location": result_url, "Retry-After": str(self.retry_after)})
        if op.status == "Failed":
            return Response(400 if op.error and op.error.get("code") != "InternalServerError" else 500,
                            {"error": op.error})
        if op.result is not None:
            return Response(200, op.result)
        if op.kind == "delete":
            return Response(204)
        view = self.state.view(op.resource_id)
        return Response(200, view) if view is not None else Response(204)

    # resource groups & resources ---------------------------------------------------------------------------------
    def _resource_group(self, req: Request, sub: str, rg: str, rest: list[str], low: list[str]) -> Response:
        group = self.state.resource_group(sub, rg)
        if not rest:
            if req.method in ("GET", "HEAD"):
                if group is None:
                    if req.method == "HEAD":
                        return Response(404)
                    raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
                return Response(200 if req.method == "GET" else 204, group)
            if req.method == "PUT":
                body = req.json() or {}
                if not body.get("location") and group is None:
                    raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
                created = group is None
                location = str(body.get("location") or (group or {})["location"])  # one of them: checked above
                group = self.state.add_resource_group(sub, rg, location,
                                                      body.get("tags"))
                return Response(201 if created else 200, group)
            if req.method == "DELETE":
                if not self.state.delete_resource_group(sub, rg):
                    raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
                return Response(200)
            raise ArmError(405, "MethodNotAllowed", f"{req.method} is not supported on resource groups here")
        if group is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        rg = group["name"]
        if low == ["resources"] and req.method == "GET":
            top = [r for r in self.state.list_in_group(sub, rg) if parse_resource_id(r.id).parent is None]
            return Response(200, {"value": [self._list_entry(r) for r in top]})
        # deployment operations: /resourcegroups/{rg}/deployments/{name}/operations[/{id}]
        if low[:1] == ["deployments"] or low[:3] == ["providers", "microsoft.resources", "deployments"]:
            tail = rest[1:] if low[0] == "deployments" else rest[3:]
            return self.deployments.route(req, sub, rg, tail)
        if low[0] != "providers" or len(rest) < 3:
            raise ArmError(404, "NotFound", f"No route for '{req.path}'.")
        namespace, pairs = rest[1], rest[2:]
        if len(pairs) % 2 == 0:
            rid = parse_resource_id(f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/" + "/".join(pairs))
            return self._resource(req, rid)
        # odd: a collection or an action on a resource
        if len(pairs) == 1:
            if req.method != "GET":
                raise ArmError(405, "MethodNotAllowed", "collections take GET")
            items = self.state.list(f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{pairs[0]}/")
            items = [r for r in items if len(parse_resource_id(r.id).types) == 1]
            return Response(200, {"value": [r.view() for r in items]})
        parent = parse_resource_id(f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/" + "/".join(pairs[:-1]))
        return self._collection_or_action(req, parent, pairs[-1])

    def _list_entry(self, res: Resource) -> dict[str, Any]:
        view = res.view()
        return {k: view[k] for k in ("id", "name", "type", "location", "tags", "kind", "sku") if k in view}

    def _require_group(self, rid: ResourceId) -> dict[str, Any]:
        group = self.state.resource_group(rid.subscription, rid.resource_group)
        if group is None:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rid.resource_group}' could not be found.")
        return group

    def not_found(self, rid: ResourceId) -> ArmError:
        return ArmError(404, "ResourceNotFound",
                        f"The Resource '{rid.type}/{'/'.join(rid.names)}' under resource group "
                        f"'{rid.resource_group}' was not found. For more details please go to "
                        "https://aka.ms/ARMResourceNotFoundFix")

    def _get_or_implicit(self, rid: ResourceId) -> Resource | None:
        res = self.state.get(str(rid))
        if res is None and rid.type.lower() == "microsoft.storage/storageaccounts/fileservices" \
                and rid.name.lower() == "default" and self.state.get(rid.parent) is not None:
            # every storage account has its file service
            res = self.state.put(providers.make_resource(rid, {"properties": {}}, None, self))
        return res

    def _resource(self, req: Request, rid: ResourceId) -> Response:
        self._require_group(rid)
        spec = providers.spec_for(rid.type)
        rtype = rid.type.lower()
        if rtype in ("microsoft.app/containerapps/revisions", "microsoft.app/containerapps/revisions/replicas"):
            if req.method != "GET":
                raise ArmError(405, "MethodNotAllowed", f"{req.method} is not supported on {rid.type}")
            assert rid.parent is not None  # a revision's (or replica's) id has its app's above it
            app_id = parse_resource_id(rid.parent if rtype.endswith("revisions") else
                                       parse_resource_id(rid.parent).parent or "")
            app = self.state.get(str(app_id))
            if app is None:
                raise self.not_found(app_id)
            if rtype.endswith("revisions"):
                return self.apps.get_revision(app, rid)
            return self.apps.get_replica(app, rid)
        existing = self._get_or_implicit(rid)
        if req.method in ("GET", "HEAD"):
            if existing is None:
                raise self.not_found(rid)
            return Response(200, existing.view())
        if req.method == "DELETE":
            if existing is None:
                return Response(204)
            if rtype == "microsoft.app/managedenvironments":
                self._refuse_busy_environment(existing)
            if spec.delete == "sync":
                self.state.delete(existing.id)
                return Response(200)
            existing.computed.setdefault("properties", {})["provisioningState"] = (
                "ScheduledForDelete" if rtype == "microsoft.app/managedenvironments" else "Deleting")
            op = self.start_operation(req, kind="delete", resource_id=existing.id, namespace=rid.namespace or "",
                                      location=existing.input.get("location", ""),
                                      on_complete=lambda o: self.state.delete(o.resource_id) if o.status == "Succeeded" else None)
            return Response(202, None, self.lro_headers(op, req))
        if req.method in ("PUT", "PATCH"):
            body = req.json()
            if not isinstance(body, dict):
                raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized.")
            if req.method == "PATCH":
                if existing is None:
                    raise self.not_found(rid)
                body = providers.patch_body(existing, body)
                style = spec.patch
            else:
                style = spec.put
            res = self.provider_put(rid, body, existing)
            if style == "sync" or (style == "location" and existing is not None and req.method == "PUT"):
                return Response(200 if existing is not None else 201, res.view())
            ns = rid.namespace
            state_word = spec.in_progress_state
            final = copy.deepcopy(res.computed.get("properties", {}).get("provisioningState", "Succeeded"))
            res.computed.setdefault("properties", {})["provisioningState"] = state_word

            def done(o: Operation, res_id: str = res.id, final: str = final) -> None:
                cur = self.state.get(res_id)
                if cur is not None:
                    cur.computed.setdefault("properties", {})["provisioningState"] = (
                        final if o.status == "Succeeded" else "Failed")

            op = self.start_operation(req, kind=req.method.lower(), resource_id=res.id, namespace=ns or "",
                                      location=res.input.get("location", ""), on_complete=done)
            if style == "async":
                return Response(200 if existing is not None else 201, res.view(),
                                self.lro_headers(op, req, location=False))
            return Response(202, None, self.lro_headers(op, req, async_op=False))
        if req.method == "POST":
            raise ArmError(405, "MethodNotAllowed", "POST needs an action")
        raise ArmError(405, "MethodNotAllowed", f"{req.method} is not supported")

    def _refuse_busy_environment(self, env: Resource) -> None:
        """ARM refuses to delete an environment that still holds apps or jobs (409)."""
        for rtype, code, label in (("Microsoft.App/containerApps", "ManagedEnvironmentHasContainerApps",
                                    "Container Apps"),
                                   ("Microsoft.App/jobs", "ManagedEnvironmentHasContainerAppsJobs",
                                    "Container Apps Jobs")):
            members = [r for r in self.state.list(f"/subscriptions/{parse_resource_id(env.id).subscription}/", rtype)
                       if str((r.input.get("properties") or {}).get("environmentId")
                               or (r.input.get("properties") or {}).get("managedEnvironmentId") or "").lower()
                       == env.id.lower()]
            if members:
                raise ArmError(409, code, f"The specified environment {env.name} cannot be deleted because it still "
                                          f"contains {len(members)} {label}.")

    def provider_put(self, rid: ResourceId, body: dict[str, Any], existing: Resource | None) -> Resource:
        """Validate and store a PUT body as the resource provider would (used by HTTP and deployments)."""
        spec = providers.spec_for(rid.type)
        group = self._require_group(rid)
        if rid.parent is not None and self._get_or_implicit(parse_resource_id(rid.parent)) is None:
            parent = parse_resource_id(rid.parent)
            raise ArmError(404, "ParentResourceNotFound",
                           f"Can not perform requested operation on nested resource. Parent resource "
                           f"'{'/'.join(parent.names)}' not found.")
        if spec.tracked and not body.get("location"):
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        if rid.type.lower() == "microsoft.storage/storageaccounts" and existing is None:
            if not self._storage_name_availability(rid.name)["nameAvailable"]:
                avail = self._storage_name_availability(rid.name)
                code = "StorageAccountAlreadyTaken" if avail["reason"] == "AlreadyExists" else "AccountNameInvalid"
                raise ArmError(409 if code == "StorageAccountAlreadyTaken" else 400, code, avail["message"])
        if rid.type.lower() in ("microsoft.app/containerapps", "microsoft.app/jobs"):
            props = body.get("properties") or {}
            env_id = props.get("managedEnvironmentId") or props.get("environmentId")
            env = self.state.get(env_id) if env_id else None
            if env_id and env is None:
                raise ArmError(404, "ManagedEnvironmentNotFound", f"Managed environment '{env_id}' was not found.")
            refused = traffic.check(props)
            if refused:
                raise ArmError(400, "ContainerAppInvalidTraffic", refused)
            wp = props.get("workloadProfileName")
            if wp and env is not None:
                profiles = (env.input.get("properties") or {}).get("workloadProfiles") or []
                if not any(str(p.get("name", "")).lower() == wp.lower() for p in profiles):
                    raise ArmError(400, "WorkloadProfileNotFound",
                                   f"Workload profile '{wp}' does not exist in managed environment '{env_id}'.")
        del group
        res = self.state.put(providers.make_resource(rid, body, existing, self))
        self._after_put(res)
        return res

    def _after_put(self, res: Resource) -> None:
        if res.type.lower() == "microsoft.app/containerapps":
            self.apps.after_put(res)

    def _collection_or_action(self, req: Request, parent: ResourceId, last: str) -> Response:
        self._require_group(parent)
        res = self._get_or_implicit(parent)
        low = last.lower()
        ptype = parent.type.lower()
        # revisions/{rev}/restart|activate|deactivate|replicas: parent = the revision
        if ptype == "microsoft.app/containerapps/revisions":
            app = self.state.get(parent.parent)
            if app is None:
                raise self.not_found(parse_resource_id(parent.parent or ""))
            return self.apps.revision_action(req, app, parent, low)
        if res is None:
            raise self.not_found(parent)
        if req.method == "POST":
            if ptype == "microsoft.storage/storageaccounts" and low == "listkeys":
                return Response(200, providers.storage_keys(res))
            if ptype == "microsoft.storage/storageaccounts" and low == "regeneratekey":
                res.extra["keyVersion"] = res.extra.get("keyVersion", 0) + 1
                return Response(200, providers.storage_keys(res))
            if ptype == "microsoft.operationalinsights/workspaces" and low in ("sharedkeys", "listkeys"):
                return Response(200, providers.workspace_keys(res))
            if ptype in ("microsoft.app/containerapps", "microsoft.app/managedenvironments") \
                    and low == "getauthtoken":
                return self.apps.auth_token(res)
            if ptype in ("microsoft.app/containerapps", "microsoft.app/jobs") and low == "listsecrets":
                secrets = ((res.input.get("properties") or {}).get("configuration") or {}).get("secrets") or []
                return Response(200, {"value": [{k: v for k, v in s.items()} for s in secrets]})
            if ptype == "microsoft.app/jobs" and low == "start":
                execution = f"{res.name}-{uuid.uuid4().hex[:7]}"
                res.extra.setdefault("executions", []).append(execution)
                return Response(202, {"id": f"{res.id}/executions/{execution}", "name": execution},
                                {"Location": f"{self.url}{res.id}/executions/{execution}?api-version={req.api_version}"})
            raise ArmError(404, "NotFound", f"The action '{last}' is not supported by the emulator on {parent.type}.")
        if req.method != "GET":
            raise ArmError(405, "MethodNotAllowed", f"{req.method} on a collection")
        if ptype == "microsoft.app/containerapps" and low == "revisions":
            return self.apps.list_revisions(req, res)
        if ptype == "microsoft.app/managedenvironments" and low == "usages":
            return Response(200, {"value": self._environment_usages(res.input.get("location") or "")})
        # child collection: e.g. managedEnvironments/{env}/storages, fileServices/default/shares
        items = [r for r in self.state.list(res.id + "/" + last + "/")
                 if len(parse_resource_id(r.id).types) == len(parent.types) + 1]
        return Response(200, {"value": [r.view() for r in items]})

    def revisions(self, app_id: str) -> list[dict[str, Any]]:
        """The app's revisions as the emulator tracks them: name, created, active, restarts, template,
        replicas (names), ready, running_state."""
        return self.apps.revisions(app_id)
