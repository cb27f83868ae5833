"""Stage 4a: the plan as an ARM template (JSON).

The template keeps the AI Toolkit's contract: its parameters are exactly the
inference parameters (names null means the default ``<prefix><suffix>``
name, computed inside ARM from ``uniqueString(resourceGroup().id)``), and its
outputs are exactly the six keys of ``infra/inference.config.json``. What the
plan decided is baked in: resources to create or update are declared,
reused ones are only referred to (their ids, keys and properties read inside
ARM), and ``metadata.azinfer.existing`` lists those references. Secrets never
pass through the client: the storage and workspace keys are read with
``listKeys`` inside ARM, and the API key is a secure parameter.
"""

from __future__ import annotations

from typing import Any

from azinfer.names import DEFAULT_PREFIXES, ResourceKind
from azinfer.plan import Action, Plan
from azinfer.templates.resources import (
    API_KEY_SECRET,
    FILE_SERVICE,
    GPU_SPECS,
    SHARE_VOLUME,
    SPECS,
    TAGS,
    Probe,
    ResourceSpec,
    probes_for,
)

__all__ = ["arm_template", "template_parameters", "PARAMETER_DOCS"]

PARAMETER_DOCS = {
    "defaultCommands": "Shell commands that start the server; joined with '; ' and run as /bin/bash -c.",
    "maximumInstanceCount": "Maximum node count of the dedicated GPU workload profile.",
    "location": "Azure region; null means the resource group's.",
    "storageAccountName": "Storage account name; null means aistorage<suffix>.",
    "fileShareName": "File share name; null means aifileshare<suffix>.",
    "acaLogAnalyticsName": "Log Analytics workspace name; null means ailog<suffix>.",
    "acaEnvironmentName": "Container Apps environment name; null means aienv<suffix>.",
    "acaEnvironmentStorageName": "Environment storage name; null means aienvstorage<suffix>.",
    "acaAppName": "Container app name; null means aiacaapp<suffix>.",
    "gpuProfileType": "GPU workload profile type.",
    "minReplicas": "Minimum replicas; null means 1 on a dedicated profile, 0 on a serverless one.",
    "maxReplicas": "Maximum replicas.",
    "image": "Container image.",
    "targetPort": "Port the server listens on.",
    "authentication": "apiKey: the API needs 'Authorization: Bearer <key>'; none: public.",
    "apiKey": "The API key (a Container Apps secret). Pass it at deployment; never put it in a file.",
}


def template_parameters(plan: Plan) -> dict[str, Any]:
    """The template's ``parameters`` section (types, the plan's values as defaults, allowed values)."""
    defaults = plan.parameters

    def p(kind: str, doc_key: str, **extra: Any) -> dict[str, Any]:
        return {"type": kind, **extra, "metadata": {"description": PARAMETER_DOCS[doc_key]}}

    section: dict[str, Any] = {
        "defaultCommands": p("array", "defaultCommands", defaultValue=list(plan.start.commands)),
        "maximumInstanceCount": p("int", "maximumInstanceCount", defaultValue=defaults.maximum_instance_count, minValue=1),
        "location": p("string", "location", nullable=True),
    }
    for kind in ResourceKind:
        section[kind.parameter] = p("string", kind.parameter, nullable=True)
    section.update(
        gpuProfileType=p(
            "string", "gpuProfileType", defaultValue=plan.gpu.profile_type.value.value,
            allowedValues=[t.value for t in GPU_SPECS],
        ),
        minReplicas=p("int", "minReplicas", nullable=True, minValue=0),
        maxReplicas=p("int", "maxReplicas", defaultValue=defaults.max_replicas, minValue=1),
        image=p("string", "image", defaultValue=defaults.image),
        targetPort=p("int", "targetPort", defaultValue=defaults.target_port, minValue=1, maxValue=65535),
        authentication=p(
            "string", "authentication", defaultValue=defaults.authentication.value, allowedValues=["apiKey", "none"]
        ),
        apiKey=p("securestring", "apiKey", defaultValue="[newGuid()]"),
    )
    return section


def _rid(kind_or_spec: ResourceKind | ResourceSpec) -> str:
    """``resourceId(...)`` expression (without brackets) of one of our resources."""
    spec = SPECS[kind_or_spec] if isinstance(kind_or_spec, ResourceKind) else kind_or_spec
    if spec is SPECS[ResourceKind.FILE_SHARE]:
        return f"resourceId('{spec.type}', variables('storageName'), 'default', variables('shareName'))"
    if spec is FILE_SERVICE:
        return f"resourceId('{spec.type}', variables('storageName'), 'default')"
    if spec is SPECS[ResourceKind.ENVIRONMENT_STORAGE]:
        return f"resourceId('{spec.type}', variables('environmentName'), variables('environmentStorageName'))"
    return f"resourceId('{spec.type}', variables('{spec.name_var}'))"


def _variables(plan: Plan) -> dict[str, Any]:
    gpu_profiles = {
        t.value: {"name": s.profile_name, "cpu": s.cpu, "memory": s.memory, "serverless": s.serverless}
        for t, s in GPU_SPECS.items()
    }
    variables: dict[str, Any] = {
        "resourceSuffix": "[substring(uniqueString(resourceGroup().id), 0, 5)]",
        "location": "[coalesce(parameters('location'), resourceGroup().location)]",
    }
    for kind in ResourceKind:
        spec = SPECS[kind]
        variables[spec.name_var] = (
            f"[coalesce(parameters('{kind.parameter}'), format('{DEFAULT_PREFIXES[kind]}{{0}}', variables('resourceSuffix')))]"
        )
    # The share's schema caps its name at 63 characters, expressions included: keep the long form in a variable.
    variables["shareFullName"] = "[format('{0}/default/{1}', variables('storageName'), variables('shareName'))]"
    variables["gpuProfiles"] = gpu_profiles
    variables["gpu"] = "[variables('gpuProfiles')[parameters('gpuProfileType')]]"
    if plan.action(ResourceKind.ENVIRONMENT) is not Action.CREATE:
        # The existing environment's own profile of that type, found (or added) by the planner.
        variables["gpuProfileName"] = plan.gpu_profile_name
    else:
        variables["gpuProfileName"] = "[variables('gpu').name]"
    if plan.action(ResourceKind.ENVIRONMENT) is Action.UPDATE:
        # An existing environment keeps every profile it has (plus the serverless GPU profile added).
        variables["workloadProfiles"] = [p.to_json() for p in plan.gpu.environment_profiles()]
        return _finish_variables(variables)
    # Serverless GPU profiles have no node counts; dedicated ones scale between 0 and maximumInstanceCount.
    variables["workloadProfiles"] = (
        "[createArray(createObject('name', 'Consumption', 'workloadProfileType', 'Consumption'), "
        "if(variables('gpu').serverless, "
        "createObject('name', variables('gpu').name, 'workloadProfileType', parameters('gpuProfileType')), "
        "createObject('name', variables('gpu').name, 'workloadProfileType', parameters('gpuProfileType'), "
        "'minimumCount', 0, 'maximumCount', parameters('maximumInstanceCount'))))]"
    )
    return _finish_variables(variables)


def _finish_variables(variables: dict[str, Any]) -> dict[str, Any]:
    variables["minReplicas"] = "[coalesce(parameters('minReplicas'), if(variables('gpu').serverless, 0, 1))]"
    variables["useApiKey"] = "[equals(parameters('authentication'), 'apiKey')]"
    return variables


def _tracked(kind: ResourceKind, body: dict[str, Any]) -> dict[str, Any]:
    """A top-level resource of ours: type, api-version, name, location and tags, then its body."""
    spec = SPECS[kind]
    return {
        "type": spec.type,
        "apiVersion": spec.api_version,
        "name": f"[variables('{spec.name_var}')]",
        "location": "[variables('location')]",
        "tags": dict(TAGS),
        **body,
    }


def _storage_account() -> dict[str, Any]:
    return _tracked(
        ResourceKind.STORAGE_ACCOUNT,
        {
            "kind": "StorageV2",
            "sku": {"name": "Standard_LRS"},
            "properties": {
                "largeFileSharesState": "Enabled",
                "minimumTlsVersion": "TLS1_2",
                "supportsHttpsTrafficOnly": True,
                "allowBlobPublicAccess": False,
                # An Azure Files mount in Container Apps authenticates with the account key.
                "allowSharedKeyAccess": True,
            },
        },
    )


def _file_service() -> dict[str, Any]:
    return {
        "type": FILE_SERVICE.type,
        "apiVersion": FILE_SERVICE.api_version,
        "name": "[format('{0}/{1}', variables('storageName'), 'default')]",
        "properties": {"shareDeleteRetentionPolicy": {"enabled": True, "days": 7}},
        "dependsOn": [f"[{_rid(ResourceKind.STORAGE_ACCOUNT)}]"],
    }


def _depends_on(resource: dict[str, Any], plan: Plan, *kinds: ResourceKind) -> dict[str, Any]:
    """Add ``dependsOn`` for those of ``kinds`` the template declares (reused ones are not in it)."""
    declared = [kind for kind in kinds if plan.action(kind) is not Action.REUSE]
    if declared:
        resource["dependsOn"] = [f"[{_rid(kind)}]" for kind in declared]
    return resource


def _file_share(plan: Plan) -> dict[str, Any]:
    share: dict[str, Any] = {
        "type": SPECS[ResourceKind.FILE_SHARE].type,
        "apiVersion": SPECS[ResourceKind.FILE_SHARE].api_version,
        "name": "[variables('shareFullName')]",
        "properties": {"shareQuota": 1024, "enabledProtocols": "SMB"},
    }
    if plan.action(ResourceKind.STORAGE_ACCOUNT) is not Action.REUSE:
        share["dependsOn"] = [f"[{_rid(FILE_SERVICE)}]"]  # declared with the account
    return share


def _log_analytics() -> dict[str, Any]:
    return _tracked(
        ResourceKind.LOG_ANALYTICS,
        {
            "properties": {"sku": {"name": "PerGB2018"}, "retentionInDays": 30},
        },
    )


def _environment(plan: Plan) -> dict[str, Any]:
    logs = SPECS[ResourceKind.LOG_ANALYTICS]
    env: dict[str, Any] = _tracked(
        ResourceKind.ENVIRONMENT,
        {
            "properties": {
                "appLogsConfiguration": {
                    "destination": "log-analytics",
                    "logAnalyticsConfiguration": {
                        "customerId": f"[reference({_rid(ResourceKind.LOG_ANALYTICS)}, '{logs.api_version}').customerId]",
                        "sharedKey": f"[listKeys({_rid(ResourceKind.LOG_ANALYTICS)}, '{logs.api_version}').primarySharedKey]",
                    },
                },
                "workloadProfiles": "[variables('workloadProfiles')]",
            },
        },
    )
    return _depends_on(env, plan, ResourceKind.LOG_ANALYTICS)


def _environment_storage(plan: Plan) -> dict[str, Any]:
    storage = SPECS[ResourceKind.STORAGE_ACCOUNT]
    resource: dict[str, Any] = {
        "type": SPECS[ResourceKind.ENVIRONMENT_STORAGE].type,
        "apiVersion": SPECS[ResourceKind.ENVIRONMENT_STORAGE].api_version,
        "name": "[format('{0}/{1}', variables('environmentName'), variables('environmentStorageName'))]",
        "properties": {
            "azureFile": {
                "accountName": "[variables('storageName')]",
                "accountKey": f"[listKeys({_rid(ResourceKind.STORAGE_ACCOUNT)}, '{storage.api_version}').keys[0].value]",
                "shareName": "[variables('shareName')]",
                "accessMode": "ReadWrite",
            }
        },
    }
    return _depends_on(resource, plan, ResourceKind.ENVIRONMENT, ResourceKind.FILE_SHARE)


def _probe(probe: Probe) -> dict[str, Any]:
    port = "[parameters('targetPort')]"
    check = {"tcpSocket": {"port": port}} if probe.path is None else {"httpGet": {"path": probe.path, "port": port}}
    return {"type": probe.type, **check, **probe.timing}


def _container_app(plan: Plan) -> dict[str, Any]:
    app: dict[str, Any] = _tracked(
        ResourceKind.CONTAINER_APP,
        {
            "properties": {
                "managedEnvironmentId": f"[{_rid(ResourceKind.ENVIRONMENT)}]",
                "workloadProfileName": "[variables('gpuProfileName')]",
                "configuration": {
                    "activeRevisionsMode": "Single",
                    "ingress": {
                        "external": True,
                        "targetPort": "[parameters('targetPort')]",
                        "transport": "auto",
                        "allowInsecure": False,
                    },
                    "secrets": "[if(variables('useApiKey'), createArray(createObject('name', "
                    f"'{API_KEY_SECRET}', 'value', parameters('apiKey'))), createArray())]",
                },
                "template": {
                    "containers": [
                        {
                            "name": "inference",
                            "image": "[parameters('image')]",
                            "command": ["/bin/bash", "-c", "[join(parameters('defaultCommands'), '; ')]"],
                            "env": "[concat(createArray(createObject('name', 'AZINFER_MOUNT', 'value', '/mount'), "
                            "createObject('name', 'AZINFER_PORT', 'value', string(parameters('targetPort')))), "
                            "if(variables('useApiKey'), createArray(createObject('name', 'AZINFER_API_KEY', "
                            f"'secretRef', '{API_KEY_SECRET}')), createArray(createObject('name', "
                            "'AZINFER_INSECURE_NO_AUTH', 'value', 'true'))))]",
                            "resources": {"cpu": "[variables('gpu').cpu]", "memory": "[variables('gpu').memory]"},
                            "probes": [_probe(probe) for probe in probes_for(plan.start.serves_azinfer)],
                            "volumeMounts": [{"volumeName": SHARE_VOLUME, "mountPath": "/mount"}],
                        }
                    ],
                    "scale": {"minReplicas": "[variables('minReplicas')]", "maxReplicas": "[parameters('maxReplicas')]"},
                    "volumes": [
                        {
                            "name": SHARE_VOLUME,
                            "storageType": "AzureFile",
                            "storageName": "[variables('environmentStorageName')]",
                        }
                    ],
                },
            },
        },
    )
    return _depends_on(app, plan, ResourceKind.ENVIRONMENT, ResourceKind.ENVIRONMENT_STORAGE)


def existing_references(plan: Plan) -> list[ResourceSpec]:
    """The reused resources the template refers to (Bicep declares them ``existing``)."""
    written = {kind for kind in ResourceKind if plan.action(kind) is not Action.REUSE}
    needed: list[ResourceSpec] = []
    if ResourceKind.ENVIRONMENT_STORAGE in written and ResourceKind.STORAGE_ACCOUNT not in written:
        needed.append(SPECS[ResourceKind.STORAGE_ACCOUNT])
    if ResourceKind.FILE_SHARE in written and ResourceKind.STORAGE_ACCOUNT not in written:
        if SPECS[ResourceKind.STORAGE_ACCOUNT] not in needed:
            needed.append(SPECS[ResourceKind.STORAGE_ACCOUNT])
        needed.append(FILE_SERVICE)
    if ResourceKind.ENVIRONMENT in written and ResourceKind.LOG_ANALYTICS not in written:
        needed.append(SPECS[ResourceKind.LOG_ANALYTICS])
    if written & {ResourceKind.ENVIRONMENT_STORAGE, ResourceKind.CONTAINER_APP} and ResourceKind.ENVIRONMENT not in written:
        needed.append(SPECS[ResourceKind.ENVIRONMENT])
    return needed


def _existing_name(spec: ResourceSpec) -> str:
    if spec is FILE_SERVICE:
        return "[format('{0}/{1}', variables('storageName'), 'default')]"
    return f"[variables('{spec.name_var}')]"


def arm_template(plan: Plan) -> dict[str, Any]:
    """The plan as an ARM deployment template (a JSON-ready dict, deterministic).

    :raises PlanBlockedError: when the plan is blocked.
    """
    from azinfer.errors import PlanBlockedError

    if plan.blocked:
        raise PlanBlockedError(plan)
    builders = {
        ResourceKind.STORAGE_ACCOUNT: lambda: [_storage_account(), _file_service()],
        ResourceKind.FILE_SHARE: lambda: [_file_share(plan)],
        ResourceKind.LOG_ANALYTICS: lambda: [_log_analytics()],
        ResourceKind.ENVIRONMENT: lambda: [_environment(plan)],
        ResourceKind.ENVIRONMENT_STORAGE: lambda: [_environment_storage(plan)],
        ResourceKind.CONTAINER_APP: lambda: [_container_app(plan)],
    }
    resources: list[dict[str, Any]] = []
    for kind in ResourceKind:
        if plan.action(kind) is not Action.REUSE:
            resources.extend(builders[kind]())
    app_api = SPECS[ResourceKind.CONTAINER_APP].api_version
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "metadata": {
            "description": "Inference endpoint for an AI Toolkit fine-tuned model, rendered by azinfer.",
            "azinfer": {
                "plan": {c.kind.value: c.action.value for c in plan.changes},
                "existing": [
                    {"type": s.type, "apiVersion": s.api_version, "name": _existing_name(s)}
                    for s in existing_references(plan)
                ],
            },
        },
        "parameters": template_parameters(plan),
        "variables": _variables(plan),
        "resources": resources,
        "outputs": {
            "SUBSCRIPTION_ID": {"type": "string", "value": "[subscription().subscriptionId]"},
            "RESOURCE_GROUP_NAME": {"type": "string", "value": "[resourceGroup().name]"},
            "STORAGE_ACCOUNT_NAME": {"type": "string", "value": "[variables('storageName')]"},
            "FILE_SHARE_NAME": {"type": "string", "value": "[variables('shareName')]"},
            "ACA_APP_NAME": {"type": "string", "value": "[variables('appName')]"},
            "ACA_APP_ENDPOINT": {
                "type": "string",
                "value": f"[reference({_rid(ResourceKind.CONTAINER_APP)}, '{app_api}').configuration.ingress.fqdn]",
            },
        },
    }
