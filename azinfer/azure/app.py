"""The running container app: its revisions and replicas, a restart, ``/ready`` and its status.

Revisions and replicas go through ``azure-mgmt-appcontainers``;
``GET https://<endpoint>/ready`` is plain HTTPS (``httpx``), trusting what the
SDK trusts (``connection_verify``, ``REQUESTS_CA_BUNDLE``). The log stream is
in :mod:`azinfer.azure.logstream`.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from azinfer.azure.clients import AzureClients, enum_text
from azinfer.errors import AzureError, ReadyTimeout

if TYPE_CHECKING:  # pragma: no cover
    import ssl
    from typing import TypeAlias

    from azure.mgmt.appcontainers.models import ContainerApp, ContainerAppProperties, TrafficWeight

    Verify: TypeAlias = ssl.SSLContext | bool
    """What plain HTTPS calls trust: a TLS context, or ``True`` (the system's) / ``False`` (nothing checked)."""

__all__ = [
    "ReplicaStatus",
    "RevisionStatus",
    "EndpointStatus",
    "ReadyTimeout",
    "read_app",
    "endpoint_url",
    "active_revision",
    "revision_status",
    "check_ready",
    "revision_url",
    "traffic_of",
    "restart_revision",
    "endpoint_status",
]

@dataclass(frozen=True)
class ReplicaStatus:
    """One replica of a revision."""

    name: str
    running_state: str
    ready: bool
    restarts: int
    details: str = ""
    """Container Apps' words for the state (``runningStateDetails`` of the replica and its containers)."""


@dataclass(frozen=True)
class RevisionStatus:
    """One revision: Container Apps' states for it and its replicas."""

    name: str
    active: bool
    provisioning_state: str
    running_state: str
    health_state: str
    replicas: tuple[ReplicaStatus, ...] = ()
    provisioning_error: str = ""
    """Why the revision failed to provision, in Container Apps' words (empty when it did not)."""

    def describe(self) -> str:
        """One line: the revision's states and its replicas'."""
        replicas = ", ".join(f"{r.name} {r.running_state}{' ready' if r.ready else ''}"
                             f"{f' ({r.restarts} restarts)' if r.restarts else ''}" for r in self.replicas)
        return (f"revision {self.name!r} is {self.provisioning_state}, running state {self.running_state}, "
                f"health {self.health_state}; replicas: {replicas or 'none'}")


@dataclass(frozen=True)
class EndpointStatus:
    """What ``azinfer status`` shows. ``to_json`` is its stable form; ``_repr_html_`` draws it in a notebook."""

    app: str
    resource_group: str
    provisioning_state: str
    running_status: str
    endpoint: str | None
    workload_profile: str | None
    min_replicas: int | None
    max_replicas: int | None
    revision: RevisionStatus | None
    ready: bool | None
    """``GET /ready`` answered 200 (``None``: not asked, the app has no endpoint)."""
    ready_detail: str = ""
    gpu_profile_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    environment_state: str | None = None
    """The environment's ``provisioningState`` (``None``: not read)."""
    diagnosis: str | None = None
    """Why the endpoint does not serve, in one line with the fix (:mod:`azinfer.azure.diagnosis`); ``None``: nothing
    found, or it serves."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)

    def _rows(self) -> list[tuple[str, str]]:
        revision = self.revision
        rows = [
            ("app", f"{self.app} (resource group {self.resource_group})"),
            ("provisioning", self.provisioning_state),
            ("running", self.running_status),
            ("endpoint", self.endpoint or "none"),
            ("ready", {True: "yes", False: "no", None: "not asked"}[self.ready]
             + (f" ({self.ready_detail})" if self.ready_detail else "")),
            ("GPU profile", f"{self.workload_profile or '?'}"
             + (f" ({self.gpu_profile_type})" if self.gpu_profile_type else "")),
            ("replicas", f"min {self.min_replicas if self.min_replicas is not None else '?'}, "
                         f"max {self.max_replicas if self.max_replicas is not None else '?'}"),
        ]
        if revision is None:
            rows.append(("revision", "none"))
        else:
            rows.append(("revision", f"{revision.name}: {revision.provisioning_state}, running "
                                     f"{revision.running_state}, health {revision.health_state}"))
            for replica in revision.replicas:
                rows.append(("  replica", f"{replica.name}: {replica.running_state}"
                                          f"{', ready' if replica.ready else ', not ready'}, "
                                          f"{replica.restarts} restart(s)"))
        if self.diagnosis:
            rows.append(("diagnosis", self.diagnosis))
        return rows

    def to_text(self) -> str:
        """The status as aligned lines."""
        rows = self._rows()
        width = max(len(k) for k, _ in rows)
        return "".join(f"{k:<{width}}  {v}\n" for k, v in rows)

    def _repr_html_(self) -> str:
        cells = "".join(f"<tr><th style='text-align:left'>{html.escape(k.strip())}</th>"
                        f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in self._rows())
        return f"<table>{cells}</table>"


def read_app(clients: AzureClients, resource_group: str, name: str) -> ContainerApp:
    """The container app (SDK model).

    :raises AzureError: when it does not exist (the message says to provision).
    """
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return clients.apps.container_apps.get(resource_group, name)
    except ResourceNotFoundError:
        raise AzureError(f"container app {name!r} does not exist in resource group {resource_group!r}; "
                         "run 'azinfer provision' (or fix ACA_APP_NAME in infra/inference.config.json)") from None


def app_properties(app: ContainerApp) -> ContainerAppProperties:
    """The app's properties (ARM always sends them; an empty set when it did not)."""
    from azure.mgmt.appcontainers.models import ContainerAppProperties

    return app.properties if app.properties is not None else ContainerAppProperties()


def _state(value: str | Enum | None) -> str:
    return enum_text(value) or "Unknown"


def revision_status(clients: AzureClients, resource_group: str, app: str, revision: str) -> RevisionStatus:
    """The revision's states and its replicas'."""
    from azure.mgmt.appcontainers.models import ReplicaProperties, RevisionProperties

    rev = clients.apps.container_apps_revisions.get_revision(resource_group, app, revision)
    rev_props = rev.properties if rev.properties is not None else RevisionProperties()
    replicas = []
    for replica in clients.apps.container_apps_revision_replicas.list_replicas(resource_group, app, revision).value or []:
        props = replica.properties if replica.properties is not None else ReplicaProperties()
        containers = props.containers or []
        details = [props.running_state_details or "", *(c.running_state_details or "" for c in containers)]
        replicas.append(ReplicaStatus(
            replica.name or "", _state(props.running_state),
            bool(containers) and all(bool(c.ready) for c in containers),
            sum(int(c.restart_count or 0) for c in containers),
            "; ".join(dict.fromkeys(d for d in details if d)),
        ))
    return RevisionStatus(rev.name or revision, bool(rev_props.active), _state(rev_props.provisioning_state),
                          _state(rev_props.running_state), _state(rev_props.health_state), tuple(replicas),
                          rev_props.provisioning_error or "")


def endpoint_url(app: ContainerApp) -> str | None:
    """``https://<fqdn>`` of the app's ingress as ARM reports it (``None`` without an external endpoint).

    The only URL the API key is sent to: ``ACA_APP_ENDPOINT`` in the config is
    a file anyone can edit, ARM's answer is not.
    """
    configuration = app_properties(app).configuration
    ingress = configuration.ingress if configuration is not None else None
    fqdn = ingress.fqdn if ingress is not None else None
    return f"https://{fqdn}" if fqdn else None


def check_ready(url: str, api_key: str | None, *, verify: Verify = True, timeout: float = 10.0) -> tuple[bool, str]:
    """``GET <url>/ready`` with the key: (answered 200, what it answered in words).

    The key goes over HTTPS only: for any other URL nothing is sent.
    """
    import httpx

    if api_key and not url.lower().startswith("https://"):
        return False, f"{url} is not an https:// URL: the API key is not sent there"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(f"{url.rstrip('/')}/ready", headers=headers, verify=verify, timeout=timeout)
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no answer'}"
    if response.status_code == 200:
        return True, "200"
    return False, f"{response.status_code} {response.text.strip()[:80]}".strip()


def revision_url(clients: AzureClients, resource_group: str, app: str, revision: str) -> str | None:
    """``https://<fqdn>`` of one revision as ARM reports it: that revision only, whatever the traffic weights."""
    props = clients.apps.container_apps_revisions.get_revision(resource_group, app, revision).properties
    fqdn = props.fqdn if props is not None else None
    return f"https://{fqdn}" if fqdn else None


def traffic_of(app: ContainerApp) -> list[TrafficWeight]:
    """The app's traffic rules as ARM reports them (empty without ingress)."""
    configuration = app_properties(app).configuration
    ingress = configuration.ingress if configuration is not None else None
    return list(ingress.traffic or []) if ingress is not None else []


def restart_revision(clients: AzureClients, resource_group: str, app: str, revision: str) -> None:
    """Restart the revision's replicas (Container Apps replaces them)."""
    clients.apps.container_apps_revisions.restart_revision(resource_group, app, revision)


def endpoint_status(clients: AzureClients, resource_group: str, app_name: str, api_key: str | None, *,
                    verify: Verify = True, ask_ready: bool = True) -> EndpointStatus:
    """Everything ``azinfer status`` shows, read now.

    :raises AzureError: when the app does not exist.
    """
    app = read_app(clients, resource_group, app_name)
    props = app_properties(app)
    scale = props.template.scale if props.template is not None else None
    revision_name = active_revision(clients, resource_group, app)
    revision = revision_status(clients, resource_group, app_name, revision_name) if revision_name else None
    url = endpoint_url(app)
    ready: bool | None = None
    detail = ""
    if url and ask_ready:
        ready, detail = check_ready(url, api_key, verify=verify)
    profile = props.workload_profile_name
    profile_type = environment_state = None
    environment_id = props.environment_id or props.managed_environment_id
    if environment_id:
        env_group, env_name = environment_id.split("/")[4], environment_id.rstrip("/").split("/")[-1]
        environment = clients.apps.managed_environments.get(env_group, env_name)
        env_props = environment.properties
        environment_state = enum_text(env_props.provisioning_state) if env_props is not None else None
        profiles = (env_props.workload_profiles if env_props is not None else None) or []
        profile_type = next((p.workload_profile_type for p in profiles if p.name == profile), None)
    return EndpointStatus(
        app=app_name, resource_group=resource_group, provisioning_state=_state(props.provisioning_state),
        running_status=_state(props.running_status), endpoint=url, workload_profile=profile,
        min_replicas=scale.min_replicas if scale is not None else None,
        max_replicas=scale.max_replicas if scale is not None else None,
        revision=revision, ready=ready, ready_detail=detail, gpu_profile_type=profile_type,
        environment_state=environment_state,
    )


def active_revision(clients: AzureClients, resource_group: str, app: ContainerApp) -> str | None:
    """The revision serving traffic: the one a traffic rule names with the most weight (multiple revision
    mode), else the newest active one (single revision mode has one); ``None`` if none."""
    named = [(t.weight or 0, t.revision_name) for t in traffic_of(app) if t.revision_name and not t.latest_revision]
    if named and max(named)[0] > 0:
        return max(named)[1]
    active = [(r.properties.created_time, r.name)
              for r in clients.apps.container_apps_revisions.list_revisions(resource_group, name_of(app))
              if r.properties is not None and r.properties.active and r.name]
    if not active:
        return app_properties(app).latest_revision_name
    # The newest: a revision with a creation time after one without.
    return max(active, key=lambda pair: (pair[0] is not None, pair[0] or datetime.min))[1]


def name_of(app: ContainerApp) -> str:
    """The app's name (the SDK types it optional: ARM sets it, the caller cannot)."""
    if not app.name:
        raise AzureError(f"Azure returned a container app without a name ({app.id})")
    return app.name
