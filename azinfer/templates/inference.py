"""The plan as a template model: what the inference deployment declares, built once for both printers.

The template keeps the AI Toolkit's contract: its parameters are exactly the
inference parameters (a name left out is the default ``<prefix><suffix>``,
computed inside ARM from ``uniqueString(resourceGroup().id)``), and its
outputs are exactly the six keys of ``infra/inference.config.json``. No type is
nullable: every optional parameter has a default, as in the AI Toolkit's own
template, so the ARM JSON is the ``languageVersion`` 1.0 that Bicep emits for
the Bicep file (a nullable type would make Bicep emit 2.0, with symbolic names). What the
plan decided is baked in: resources to create or update are declared, reused
ones are only referred to. Secrets never pass through the client: the storage
and workspace keys are read inside ARM (``listKeys``), and the API key is a
secure parameter without a default, so every deployment passes it.

Each part the plan shapes (probes, workload profiles, the container's
environment) is built by a small function of the plan, so a new plan decision
changes one function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azinfer.errors import PlanBlockedError
from azinfer.plan import Action, Plan
from azinfer.project import GPU_SPECS
from azinfer.resources import FILE_SERVICE, RESOURCES, ResourceKind
from azinfer.serve.settings import env_var
from azinfer.start import azinfer_commands
from azinfer.templates.model import (
    Call,
    Commented,
    Cond,
    Equals,
    Index,
    Interp,
    ListKeys,
    Member,
    Output,
    Param,
    Parameter,
    Properties,
    Resource,
    ResourceId,
    ResourceName,
    Template,
    Var,
    Variable,
)

__all__ = ["API_KEY_SECRET", "REGISTRY_PASSWORD_SECRET", "CREATED_TAG", "SHARE_VOLUME", "TAGS", "inference_template", "probes", "workload_profiles"]

API_KEY_SECRET = "azinfer-api-key"
REGISTRY_PASSWORD_SECRET = "azinfer-registry-password"
SHARE_VOLUME = "model-share"
TAGS = {"managed-by": "azinfer", "azinfer-role": "inference"}
CREATED_TAG = "azinfer-created"
"""The creation record: set only on a resource the plan creates, never added by an update; destroy reads it."""
MOUNT_PATH = "/mount"
ADAPTER_POLL_SECONDS = 5
"""How often the deployed server looks for adapters on the share (``AZINFER_ADAPTER_POLL``)."""

_STORAGE = RESOURCES[ResourceKind.STORAGE_ACCOUNT]
_SHARE = RESOURCES[ResourceKind.FILE_SHARE]
_LOGS = RESOURCES[ResourceKind.LOG_ANALYTICS]
_ENV = RESOURCES[ResourceKind.ENVIRONMENT]
_ENV_STORAGE = RESOURCES[ResourceKind.ENVIRONMENT_STORAGE]
_APP = RESOURCES[ResourceKind.CONTAINER_APP]

_GPU = Var("gpu")
# The AI Toolkit's default-name suffix. A parameter's default cannot use a variable, so each name's default holds it.
_SUFFIX = Call("substring", (Call("uniqueString", (Member(Call("resourceGroup"), "id"),)), 0, 5))
_USE_API_KEY = Var("useApiKey")


def _parameters(plan: Plan) -> tuple[Parameter, ...]:
    defaults = plan.parameters  # the project's values with the plan's start command and GPU profile type
    names = []
    for kind in ResourceKind:
        row, rule = kind.spec, kind.spec.naming
        assert rule is not None and row.default_prefix is not None
        label = row.label[0].upper() + row.label[1:]
        names.append(Parameter(
            kind.parameter, "string",
            f"{label} name; by default {row.default_prefix}<suffix>. Azure's rule: {rule.text}.",
            default=Interp((row.default_prefix, _SUFFIX)), min_length=rule.min_length, max_length=rule.max_length,
        ))
    return (
        Parameter("defaultCommands", "array",
                  "Shell commands that start the server; joined with '; ' and run as /bin/bash -c.",
                  default=list(plan.start.commands)),
        Parameter("maximumInstanceCount", "int", "Maximum node count of the dedicated GPU workload profile.",
                  default=defaults.maximum_instance_count, min_value=1),
        Parameter("location", "string", "Azure region; by default the resource group's.",
                  default=Member(Call("resourceGroup"), "location")),
        *names,
        Parameter("gpuProfileType", "string", "GPU workload profile type.",
                  default=plan.gpu.profile_type.value.value, allowed=tuple(t.value for t in GPU_SPECS)),
        Parameter("minReplicas", "int", "Minimum replicas; by default 1 on a dedicated profile, 0 on a serverless one.",
                  default=Cond(Call("contains", ([t.value for t, s in GPU_SPECS.items() if s.serverless],
                                                 Param("gpuProfileType"))), 0, 1),
                  min_value=0),
        Parameter("maxReplicas", "int", "Maximum replicas.", default=defaults.max_replicas, min_value=1),
        Parameter("image", "string", "Container image.", default=defaults.image),
        Parameter("targetPort", "int", "Port the server listens on.", default=defaults.target_port,
                  min_value=1, max_value=65535),
        Parameter("authentication", "string", "apiKey: the API needs 'Authorization: Bearer <key>'; none: public.",
                  default=defaults.authentication.value, allowed=("apiKey", "none")),
        Parameter("apiKey", "string",
                  "The API key (a Container Apps secret), used when authentication is apiKey. Pass it at every "
                  "deployment (azinfer passes the app's current key); never put it in a file.",
                  secure=True),
        Parameter("registryServer", "string",
                  "Registry the image is pulled from with credentials (e.g. myacr.azurecr.io); empty: an anonymous "
                  "pull.", default=""),
        Parameter("registryUsername", "string", "User name for registryServer (with registryPassword).", default=""),
        Parameter("registryIdentity", "string",
                  "Resource ID of a user-assigned managed identity with AcrPull on registryServer (instead of a "
                  "user name).", default=""),
        Parameter("registryPassword", "string",
                  "Password for registryUsername (a Container Apps secret). Pass it at every deployment that sets "
                  "registryUsername (azinfer passes AZINFER_REGISTRY_PASSWORD, else the app's current one); never "
                  "put it in a file.", secure=True, default=""),
    )


def _variables() -> tuple[Variable, ...]:
    return (
        Variable("tags", {**TAGS, CREATED_TAG: "true"}),  # only on what the plan creates
        Variable("gpuProfiles", {
            t.value: {"name": s.profile_name, "cpu": s.cpu, "memory": s.memory, "serverless": s.serverless}
            for t, s in GPU_SPECS.items()
        }),
        Variable("gpu", Index(Var("gpuProfiles"), Param("gpuProfileType"))),
        Variable("useApiKey", Equals(Param("authentication"), "apiKey")),
        Variable("registries", Cond(Call("empty", (Param("registryServer"),)), [], [Cond(
            Call("empty", (Param("registryIdentity"),)),
            {"server": Param("registryServer"), "username": Param("registryUsername"),
             "passwordSecretRef": REGISTRY_PASSWORD_SECRET},
            {"server": Param("registryServer"), "identity": Param("registryIdentity")},
        )])),
        Variable("azinferStart", list(azinfer_commands())),
    )


def _names() -> dict[Any, Any]:
    return {kind.spec: Param(kind.parameter) for kind in ResourceKind}


def _tags(plan: Plan, kind: ResourceKind) -> Any:
    """azinfer's tags with the creation record on a resource the plan creates; an existing one keeps its own.

    Destroy deletes only what carries the creation record: updating an existing
    app, or a fine-tuning environment (to add a GPU profile), must not make it
    look like azinfer's; an update writes the resource's tags back as they are.
    """
    existing = plan.change(kind).existing_tags
    if existing is None:
        return Var("tags")
    return Commented(dict(existing), "An existing resource keeps its own tags (an update never adds azinfer's).")


def _tracked(plan: Plan, kind: ResourceKind, body: dict[str, Any]) -> dict[str, Any]:
    """A top-level resource's location and tags, then its body."""
    return {"location": Param("location"), "tags": _tags(plan, kind), **body}


def _storage_account(plan: Plan) -> list[Resource]:
    return [
        Resource(_STORAGE, _tracked(plan, ResourceKind.STORAGE_ACCOUNT, {
            "kind": "StorageV2",
            "sku": {"name": "Standard_LRS"},
            "properties": {
                "largeFileSharesState": "Enabled",
                "minimumTlsVersion": "TLS1_2",
                "supportsHttpsTrafficOnly": True,
                "allowBlobPublicAccess": False,
                "allowSharedKeyAccess": Commented(
                    True, "An Azure Files mount in Container Apps authenticates with the account key."),
            },
        })),
        Resource(FILE_SERVICE, {"properties": {"shareDeleteRetentionPolicy": {"enabled": True, "days": 7}}}),
    ]


def _file_share() -> list[Resource]:
    return [Resource(_SHARE, {"properties": {"shareQuota": 1024, "enabledProtocols": "SMB"}})]


def _log_analytics(plan: Plan) -> list[Resource]:
    return [Resource(_LOGS, _tracked(plan, ResourceKind.LOG_ANALYTICS, {"properties": {"sku": {"name": "PerGB2018"}, "retentionInDays": 30}}))]


def workload_profiles(plan: Plan) -> Any:
    """The environment's workload profiles.

    A new environment gets Consumption and the GPU profile of ``gpuProfileType``;
    an existing one keeps every profile it has (plus a serverless GPU profile
    the plan adds).
    """
    if plan.action(ResourceKind.ENVIRONMENT) is Action.UPDATE:
        return Commented([p.to_json() for p in plan.gpu.environment_profiles()],
                         "The existing environment keeps every profile it has (plus the GPU profile the plan adds).")
    gpu_profile = {"name": Member(_GPU, "name"), "workloadProfileType": Param("gpuProfileType")}
    return [
        {"name": "Consumption", "workloadProfileType": "Consumption"},
        Commented(
            Cond(Member(_GPU, "serverless"), gpu_profile,
                 {**gpu_profile, "minimumCount": 0, "maximumCount": Param("maximumInstanceCount")}),
            "Serverless GPU profiles have no node counts; dedicated ones scale between 0 and maximumInstanceCount.",
        ),
    ]


def _environment(plan: Plan) -> list[Resource]:
    change = plan.change(ResourceKind.ENVIRONMENT)
    unmodeled = change.existing_unmodeled if change.action is Action.UPDATE else {}
    kept_identity = (
        {"identity": Commented(dict(unmodeled["identity"]), "The environment's own identity, written back as it is.")}
        if "identity" in unmodeled else {}
    )
    kept_properties = {
        key: Commented(value, f"The environment's own {key}, written back as it is: a deployment replaces the whole resource.")
        for key, value in unmodeled.get("properties", {}).items()
    }
    return [Resource(_ENV, _tracked(plan, ResourceKind.ENVIRONMENT, {
        **kept_identity,
        "properties": {
            **kept_properties,
            "appLogsConfiguration": {
                "destination": "log-analytics",
                "logAnalyticsConfiguration": {
                    "customerId": Member(Properties(_LOGS), "customerId"),
                    "sharedKey": Member(ListKeys(_LOGS), "primarySharedKey"),
                },
            },
            "workloadProfiles": workload_profiles(plan),
        },
    }))]


def _environment_storage() -> list[Resource]:
    return [Resource(_ENV_STORAGE, {
        "properties": {
            "azureFile": {
                "accountName": ResourceName(_STORAGE),
                "accountKey": Member(Index(Member(ListKeys(_STORAGE), "keys"), 0), "value"),
                "shareName": ResourceName(_SHARE),
                "accessMode": "ReadWrite",
            },
        },
    })]


def _gpu_profile_name(plan: Plan) -> Any:
    """The workload profile the app runs on: the reused environment's own (found by the planner), or ours."""
    if plan.action(ResourceKind.ENVIRONMENT) is not Action.CREATE:
        return Commented(plan.gpu_profile_name, "The existing environment's own profile of that type, found (or added) "
                                                "by the planner.")
    return Member(_GPU, "name")


def probes(plan: Plan) -> Any:
    """The container's probes, fitted to the start command.

    azinfer's server: liveness and startup watch the process (``/health``
    answers as soon as it runs); readiness waits for the model (``/ready``), so
    a slow model load never gets the replica killed. Startup allows 10 minutes
    for a first start that installs the serving stack into the share's cache.

    A start command the user wrote: azinfer knows only its port (TCP). Startup
    allows 40 minutes (ACA's largest period and threshold) because such
    commands often install packages first.

    When the plan runs azinfer's server, the template still checks at
    deployment that ``defaultCommands`` is azinfer's start: a deployment by
    hand with other commands gets the port probes, never routes its server
    cannot answer.
    """
    port = Param("targetPort")

    def probe(kind: str, path: str | None, **timing: int) -> dict[str, Any]:
        check = {"tcpSocket": {"port": port}} if path is None else {"httpGet": {"path": path, "port": port}}
        return {"type": kind, **check, **timing}

    port_probes = [
        probe("Startup", None, initialDelaySeconds=10, periodSeconds=240, failureThreshold=10),
        probe("Liveness", None, periodSeconds=30, failureThreshold=3),
        probe("Readiness", None, periodSeconds=10, failureThreshold=3),
    ]
    if not plan.start.serves_azinfer:
        return port_probes
    server_probes = [
        probe("Startup", "/health", initialDelaySeconds=10, periodSeconds=60, failureThreshold=10),
        probe("Liveness", "/health", periodSeconds=30, failureThreshold=3),
        probe("Readiness", "/ready", periodSeconds=10, failureThreshold=3),
    ]
    return Cond(Equals(Param("defaultCommands"), Var("azinferStart")), server_probes, port_probes)


def _container_env(plan: Plan) -> Any:
    """The server's environment variables: the mount, the port, the watch on the share's adapters, and the
    API key or the explicit opt-out.  The batch size is left to the engine (vLLM sizes it from its KV cache)."""
    fixed = [
        {"name": env_var("mount_root"), "value": MOUNT_PATH},
        {"name": env_var("port"), "value": Call("string", (Param("targetPort"),))},
    ]
    if plan.http_scale is not None:
        fixed += [
            # `azinfer deploy --adapter DIR --name NAME` then reaches every replica within seconds, no restart.
            {"name": env_var("adapter_poll"), "value": str(ADAPTER_POLL_SECONDS)},
        ]
    auth = Cond(_USE_API_KEY, [{"name": env_var("api_key"), "secretRef": API_KEY_SECRET}],
                [{"name": env_var("insecure_no_auth"), "value": "true"}])
    return Call("concat", (fixed, auth))


def _identity(plan: Plan) -> dict[str, Any]:
    """The user-assigned identity the image is pulled with, when the project names one.

    Only then does the app get an ``identity``: an app updated without one keeps what it has.
    The identity's resource ID is a key of ``userAssignedIdentities``, so the object is built from text.
    """
    if plan.parameters.registry_identity is None:
        return {}
    return {"identity": {
        "type": "UserAssigned",
        "userAssignedIdentities": Call("json", (Call("format", ('{{"{0}": {{}}}}', Param("registryIdentity"))),)),
    }}


def _scale_rules(plan: Plan) -> dict[str, Any]:
    """An HTTP rule at the engine's batch capacity when azinfer's server runs (the plan says where it came from)."""
    if plan.http_scale is None:
        return {}
    rule = [{"name": "http-batch", "http": {"metadata": {
        "concurrentRequests": str(plan.http_scale.concurrent_requests)}}}]
    return {"rules": Cond(Equals(Param("defaultCommands"), Var("azinferStart")), rule, [])}


def _container_app(plan: Plan) -> list[Resource]:
    return [Resource(_APP, _tracked(plan, ResourceKind.CONTAINER_APP, {
        **_identity(plan),
        "properties": {
            "managedEnvironmentId": ResourceId(_ENV),
            "workloadProfileName": _gpu_profile_name(plan),
            "configuration": {
                "activeRevisionsMode": "Single",
                "ingress": {
                    "external": True,
                    "targetPort": Param("targetPort"),
                    "transport": "auto",
                    "allowInsecure": False,
                },
                "secrets": Call("concat", (
                    Cond(_USE_API_KEY, [{"name": API_KEY_SECRET, "value": Param("apiKey")}], []),
                    Cond(Call("empty", (Param("registryUsername"),)), [],
                         [{"name": REGISTRY_PASSWORD_SECRET, "value": Param("registryPassword")}]),
                )),
                "registries": Var("registries"),
            },
            "template": {
                "containers": [{
                    "name": "inference",
                    "image": Param("image"),
                    "command": ["/bin/bash", "-c", Call("join", (Param("defaultCommands"), "; "))],
                    "env": _container_env(plan),
                    "resources": {"cpu": Member(_GPU, "cpu"), "memory": Member(_GPU, "memory")},
                    "probes": probes(plan),
                    "volumeMounts": [{"volumeName": SHARE_VOLUME, "mountPath": MOUNT_PATH}],
                }],
                "scale": {
                    "minReplicas": Param("minReplicas"),
                    "maxReplicas": Param("maxReplicas"),
                    **_scale_rules(plan),
                },
                "volumes": [{
                    "name": SHARE_VOLUME,
                    "storageType": "AzureFile",
                    "storageName": ResourceName(_ENV_STORAGE),
                }],
            },
        },
    }))]


def _outputs() -> tuple[Output, ...]:
    """Exactly the keys of ``infra/inference.config.json``."""
    return (
        Output("SUBSCRIPTION_ID", "string", Member(Call("subscription"), "subscriptionId")),
        Output("RESOURCE_GROUP_NAME", "string", Member(Call("resourceGroup"), "name")),
        Output("STORAGE_ACCOUNT_NAME", "string", ResourceName(_STORAGE)),
        Output("FILE_SHARE_NAME", "string", ResourceName(_SHARE)),
        Output("ACA_APP_NAME", "string", ResourceName(_APP)),
        Output("ACA_APP_ENDPOINT", "string", Member(Member(Member(Properties(_APP), "configuration"), "ingress"), "fqdn")),
    )


def inference_template(plan: Plan) -> Template:
    """The plan as a template model.

    :raises PlanBlockedError: when the plan is blocked.
    """
    if plan.blocked:
        raise PlanBlockedError(plan)
    builders: dict[ResourceKind, Callable[[], list[Resource]]] = {
        ResourceKind.STORAGE_ACCOUNT: lambda: _storage_account(plan),
        ResourceKind.FILE_SHARE: _file_share,
        ResourceKind.LOG_ANALYTICS: lambda: _log_analytics(plan),
        ResourceKind.ENVIRONMENT: lambda: _environment(plan),
        ResourceKind.ENVIRONMENT_STORAGE: _environment_storage,
        ResourceKind.CONTAINER_APP: lambda: _container_app(plan),
    }
    resources = [r for kind in ResourceKind if plan.action(kind) is not Action.REUSE for r in builders[kind]()]
    api_key = plan.inputs.parameters.authentication.value == "apiKey"
    key_hint = "-p apiKey=<key>" if api_key else "-p apiKey='' (authentication is none: the key is not used)"
    return Template(
        description="Inference endpoint for an AI Toolkit fine-tuned model, rendered by azinfer.",
        metadata={"plan": {c.kind.value: c.action.value for c in plan.changes}},
        parameters=_parameters(plan),
        variables=_variables(),
        names=_names(),
        resources=tuple(resources),
        outputs=_outputs(),
        notes=(
            "Plan: " + ", ".join(f"{c.kind.value}={c.action.value}" for c in plan.changes),
            "Deploy: az deployment group create -g <resource group> -f inference.bicep "
            f"-p inference.parameters.json {key_hint}",
        ),
    )
