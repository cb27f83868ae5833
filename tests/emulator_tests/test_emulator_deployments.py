"""Resource-group deployments: template evaluation, outputs, what-if, validate, operations, conflicts."""

from __future__ import annotations

import copy

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

SUFFIX = "[substring(uniqueString(resourceGroup().id), 0, 5)]"


def inference_template() -> dict:
    """Close to what the AI Toolkit's inference template declares, in classic ARM JSON."""
    return {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "location": {"type": "string", "defaultValue": "[resourceGroup().location]"},
            "storageAccountName": {"type": "string", "defaultValue": ""},
            "maximumInstanceCount": {"type": "int", "defaultValue": 2},
            "defaultCommands": {"type": "array", "defaultValue": ["cd /mount", "python3 ./app.py"]},
            "apiKey": {"type": "securestring", "defaultValue": "[newGuid()]"},
            "deployApp": {"type": "bool", "defaultValue": True},
        },
        "variables": {
            "suffix": SUFFIX,
            "storageName": "[if(empty(parameters('storageAccountName')), concat('aistorage', variables('suffix')), parameters('storageAccountName'))]",
            "shareName": "[format('aifileshare{0}', variables('suffix'))]",
            "logName": "[concat('ailog', variables('suffix'))]",
            "envName": "[toLower(concat('aienv', variables('suffix')))]",
            "envStorageName": "[concat('aienvstorage', variables('suffix'))]",
            "appName": "[concat('aiacaapp', variables('suffix'))]",
            "envId": "[resourceId('Microsoft.App/managedEnvironments', variables('envName'))]",
        },
        "resources": [
            {"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01", "name": "[variables('storageName')]",
             "location": "[parameters('location')]", "kind": "StorageV2", "sku": {"name": "Standard_LRS"},
             "properties": {"largeFileSharesState": "Enabled", "allowSharedKeyAccess": True}},
            {"type": "Microsoft.Storage/storageAccounts/fileServices", "apiVersion": "2023-01-01",
             "name": "[concat(variables('storageName'), '/default')]",
             "dependsOn": ["[resourceId('Microsoft.Storage/storageAccounts', variables('storageName'))]"],
             "properties": {"protocolSettings": {"smb": {}}, "shareDeleteRetentionPolicy": {"enabled": True, "days": 7}},
             "resources": [
                 {"type": "shares", "apiVersion": "2023-01-01", "name": "[variables('shareName')]",
                  "properties": {"shareQuota": 1024}},
             ]},
            {"type": "Microsoft.OperationalInsights/workspaces", "apiVersion": "2022-10-01", "name": "[variables('logName')]",
             "location": "[parameters('location')]", "properties": {"sku": {"name": "PerGB2018"}}},
            {"type": "Microsoft.App/managedEnvironments", "apiVersion": "2023-11-02-preview", "name": "[variables('envName')]",
             "location": "[parameters('location')]",
             "properties": {
                 "appLogsConfiguration": {"destination": "log-analytics", "logAnalyticsConfiguration": {
                     "customerId": "[reference(resourceId('Microsoft.OperationalInsights/workspaces', variables('logName')), '2022-10-01').customerId]",
                     "sharedKey": "[listKeys(resourceId('Microsoft.OperationalInsights/workspaces', variables('logName')), '2022-10-01').primarySharedKey]"}},
                 "workloadProfiles": [
                     {"name": "Consumption", "workloadProfileType": "Consumption"},
                     {"name": "GPU", "workloadProfileType": "NC24-A100", "minimumCount": 0,
                      "maximumCount": "[parameters('maximumInstanceCount')]"}]}},
            {"type": "Microsoft.App/managedEnvironments/storages", "apiVersion": "2023-11-02-preview",
             "name": "[concat(variables('envName'), '/', variables('envStorageName'))]",
             "dependsOn": ["[variables('envId')]"],
             "properties": {"azureFile": {
                 "accountName": "[variables('storageName')]",
                 "accountKey": "[listKeys(resourceId('Microsoft.Storage/storageAccounts', variables('storageName')), '2023-01-01').keys[0].value]",
                 "shareName": "[variables('shareName')]", "accessMode": "ReadWrite"}}},
            {"condition": "[parameters('deployApp')]",
             "type": "Microsoft.App/containerApps", "apiVersion": "2023-11-02-preview", "name": "[variables('appName')]",
             "location": "[parameters('location')]",
             "dependsOn": ["[resourceId('Microsoft.App/managedEnvironments/storages', variables('envName'), variables('envStorageName'))]"],
             "properties": {
                 "managedEnvironmentId": "[variables('envId')]", "workloadProfileName": "GPU",
                 "configuration": {"activeRevisionsMode": "Single",
                                   "ingress": {"external": True, "targetPort": 7860},
                                   "secrets": [{"name": "api-key", "value": "[parameters('apiKey')]"}]},
                 "template": {"containers": [{
                     "name": "inference", "image": "docker.io/pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
                     "command": ["/bin/bash", "-c", "[join(parameters('defaultCommands'), '; ')]"],
                     "resources": {"cpu": 24, "memory": "220Gi"},
                     "volumeMounts": [{"volumeName": "share", "mountPath": "/mount"}]}],
                     "volumes": [{"name": "share", "storageType": "AzureFile", "storageName": "[variables('envStorageName')]"}],
                     "scale": {"minReplicas": 1, "maxReplicas": 1}}}},
        ],
        "outputs": {
            "SUBSCRIPTION_ID": {"type": "string", "value": "[subscription().subscriptionId]"},
            "RESOURCE_GROUP_NAME": {"type": "string", "value": "[resourceGroup().name]"},
            "STORAGE_ACCOUNT_NAME": {"type": "string", "value": "[variables('storageName')]"},
            "ACA_APP_ENDPOINT": {"type": "string", "condition": "[parameters('deployApp')]",
                                 "value": "[concat('https://', reference(variables('appName'), '2023-11-02-preview').configuration.ingress.fqdn)]"},
            "PROFILES": {"type": "array", "value": "[createArray('Consumption', 'GPU')]"},
            "SETTINGS": {"type": "object", "value": "[union(createObject('a', 1), json('{\"b\": true}'))]"},
        },
    }


def deploy(deployments, rg, name, template, parameters=None, mode="Incremental"):
    body = {"properties": {"mode": mode, "template": template,
                           "parameters": {k: {"value": v} for k, v in (parameters or {}).items()}}}
    return deployments.deployments.begin_create_or_update(rg, name, body)


def what_if(deployments, rg, name, template, parameters=None):
    body = {"properties": {"mode": "Incremental", "template": template,
                           "parameters": {k: {"value": v} for k, v in (parameters or {}).items()}}}
    return deployments.deployments.begin_what_if(rg, name, body).result()


def changes_by_name(result):
    return {c.resource_id.rsplit("/", 1)[-1]: c for c in result.changes}


def test_deployment_into_an_empty_group_creates_everything(emu, deployments, aca, storage):
    group = emu.add_resource_group(None, "rg-empty", "westus3")
    result = deploy(deployments, "rg-empty", "inference", inference_template()).result()
    props = result.properties
    assert props.provisioning_state == "Succeeded"
    outputs = {k: v["value"] for k, v in props.outputs.items()}
    from azinfer.names import resource_suffix

    suffix = resource_suffix(group["id"])
    assert outputs["STORAGE_ACCOUNT_NAME"] == f"aistorage{suffix}"
    assert outputs["RESOURCE_GROUP_NAME"] == "rg-empty"
    assert outputs["SUBSCRIPTION_ID"] == emu.subscription_id
    # reference() of the app sees its ingress fqdn: the app's own loopback listener
    assert outputs["ACA_APP_ENDPOINT"] == emu.apps.ingress_url(f"aiacaapp{suffix}")
    assert outputs["PROFILES"] == ["Consumption", "GPU"]
    assert outputs["SETTINGS"] == {"a": 1, "b": True}
    assert props.outputs["STORAGE_ACCOUNT_NAME"]["type"] == "String"

    app = aca.container_apps.get("rg-empty", f"aiacaapp{suffix}")
    assert app.properties.template.containers[0].command == ["/bin/bash", "-c", "cd /mount; python3 ./app.py"]
    assert app.location == "westus3"
    env = aca.managed_environments.get("rg-empty", f"aienv{suffix}")
    assert env.properties.workload_profiles[1].maximum_count == 2
    from azinfer.local.emulator.providers import workspace_keys

    ws = emu.state.get(f"{group['id']}/providers/Microsoft.OperationalInsights/workspaces/ailog{suffix}")
    log_config = emu.state.get(env.id).input["properties"]["appLogsConfiguration"]["logAnalyticsConfiguration"]
    assert log_config["sharedKey"] == workspace_keys(ws)["primarySharedKey"]  # read inside ARM with listKeys
    assert log_config["customerId"] == ws.view()["properties"]["customerId"]  # and reference()
    es = emu.state.get(env.id + f"/storages/aienvstorage{suffix}")
    key = storage.storage_accounts.list_keys("rg-empty", f"aistorage{suffix}")["keys"][0]["value"]
    assert es.input["properties"]["azureFile"]["accountKey"] == key
    share = storage.file_shares.get("rg-empty", f"aistorage{suffix}", f"aifileshare{suffix}")
    assert share.name == f"aifileshare{suffix}"

    # the secure parameter is not echoed back
    assert "value" not in props.parameters["apiKey"]
    assert props.parameters["maximumInstanceCount"]["value"] == 2
    # the deployment's writes are in the request log, tagged with the deployment
    puts = emu.requests_matching("PUT", source="deployment:inference")
    assert len(puts) == 7
    assert emu.requests_matching("PUT", "*/deployments/inference")[0].status == 201
    # operations: one per resource, plus the output evaluation
    ops = list(deployments.deployment_operations.list("rg-empty", "inference"))
    targets = [o.properties.target_resource.resource_type for o in ops if o.properties.target_resource]
    assert len(targets) == 7 and "Microsoft.App/containerApps" in targets
    assert all(o.properties.provisioning_state == "Succeeded" for o in ops)
    got = deployments.deployments.get("rg-empty", "inference")
    assert got.properties.provisioning_state == "Succeeded" and got.name == "inference"


def test_condition_false_skips_resource_and_output(emu, deployments, aca):
    emu.add_resource_group(None, "rg-c", "eastus")
    result = deploy(deployments, "rg-c", "d", inference_template(), {"deployApp": False}).result()
    assert "ACA_APP_ENDPOINT" not in result.properties.outputs
    assert not emu.state.list("", "Microsoft.App/containerApps")


def test_what_if_on_finetuning_group_then_no_change_on_second_run(emu, fg, deployments):
    params = {"apiKey": "fixed-key", "maximumInstanceCount": 1}
    first = what_if(deployments, fg.resource_group, "wi", inference_template(), params)
    changes = changes_by_name(first)
    assert changes[f"aiacaapp{fg.suffix}"].change_type == "Create"
    assert changes[fg.environment].change_type == "NoChange"  # the template's env equals the fine-tuning one
    assert changes[fg.environment_storage].change_type == "NoChange"
    assert changes[fg.job].change_type == "Ignore"
    assert changes[fg.file_share].change_type == "NoChange"
    assert changes[fg.storage_account].change_type == "NoChange"

    deploy(deployments, fg.resource_group, "inference", inference_template(), params).result()
    second = what_if(deployments, fg.resource_group, "wi", inference_template(), params)
    kinds = {c.change_type for c in second.changes}
    assert kinds <= {"NoChange", "Ignore"}, [(c.resource_id, c.change_type, c.delta) for c in second.changes]

    third = what_if(deployments, fg.resource_group, "wi", inference_template(), {**params, "maximumInstanceCount": 2})
    env_change = changes_by_name(third)[fg.environment]
    assert env_change.change_type == "Modify"
    delta = env_change.delta[0]
    assert (delta.path, delta.property_change_type) == ("properties.workloadProfiles", "Array")
    inner = delta.children[0]
    assert inner.path == "1" and inner.children[0].path == "maximumCount"
    assert (inner.children[0].before, inner.children[0].after) == (1, 2)
    # secrets never show in clear, yet a changed secret is a change
    fourth = what_if(deployments, fg.resource_group, "wi", inference_template(), {**params, "apiKey": "other"})
    app_change = changes_by_name(fourth)[f"aiacaapp{fg.suffix}"]
    assert app_change.change_type == "Modify"
    assert "fixed-key" not in str(app_change) and "other" not in str(app_change.after)
    env_storage = changes_by_name(fourth)[fg.environment_storage]
    assert env_storage.after["properties"]["azureFile"]["accountKey"].startswith("[secure:")
    # what-if changed nothing
    assert emu.state.get(fg.id("environment")).input["properties"]["workloadProfiles"][1]["maximumCount"] == 1


def test_what_if_shows_unevaluated_reference_for_new_resources(emu, deployments):
    emu.add_resource_group(None, "rg-w", "eastus")
    result = what_if(deployments, "rg-w", "wi", inference_template())
    env = next(c for c in result.changes if c.resource_id.split("/")[-2] == "managedEnvironments")
    assert env.change_type == "Create"
    customer = env.after["properties"]["appLogsConfiguration"]["logAnalyticsConfiguration"]["customerId"]
    assert customer.startswith("[reference(")
    assert not emu.state.list("")


def test_validate(emu, fg, deployments):
    body = {"properties": {"mode": "Incremental", "template": inference_template(), "parameters": {}}}
    ok = deployments.deployments.begin_validate(fg.resource_group, "v", body).result()
    assert ok.properties.provisioning_state == "Succeeded"
    assert len(ok.properties.validated_resources) == 7
    bad = copy.deepcopy(inference_template())
    bad["variables"]["appName"] = "[concat('x', parameters('nope'))]"
    with pytest.raises(HttpResponseError) as info:
        deployments.deployments.begin_validate(fg.resource_group, "v", {"properties": {
            "mode": "Incremental", "template": bad, "parameters": {"unknownParam": {"value": 1}}}}).result()
    assert "unknownParam" in str(info.value)


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda t: t["variables"].__setitem__("appName", "[concat('x', parameters('nope'))]"), "nope"),
        (lambda t: t["resources"][0].__setitem__("name", "[substring('ab', 0, 5)]"), "length"),
        (lambda t: t["resources"][5].__setitem__("dependsOn", ["missingResource"]), "not defined"),
        (lambda t: t["resources"][0].__setitem__("location", "[newGuid()]"), "newGuid"),
        (lambda t: t["parameters"]["maximumInstanceCount"].__setitem__("defaultValue", "two"), "Int"),
        (lambda t: t["resources"].append(copy.deepcopy(t["resources"][2])), "multiple"),
        # nullable exists only in languageVersion 2.0 (what Bicep emits for a nullable type)
        (lambda t: t["parameters"]["location"].__setitem__("nullable", True), "nullable"),
        # parameters are evaluated before variables
        (lambda t: t["parameters"]["location"].__setitem__("defaultValue", "[variables('suffix')]"), "suffix"),
    ],
)
def test_invalid_templates_are_rejected_at_put(emu, deployments, mutate, fragment):
    emu.add_resource_group(None, "rg-bad", "eastus")
    template = inference_template()
    mutate(template)
    with pytest.raises(HttpResponseError) as info:
        deploy(deployments, "rg-bad", "bad", template).result()
    assert info.value.status_code == 400
    assert fragment in info.value.message
    assert not emu.state.list("")


@pytest.mark.parametrize("name", ["location", "storageAccountName", "deployApp"])
def test_null_for_a_parameter_that_is_not_nullable_is_refused(emu, deployments, name):
    """ARM takes null only for a nullable parameter; one with a default is no exception."""
    emu.add_resource_group(None, "rg-null", "eastus")
    with pytest.raises(HttpResponseError) as info:
        deploy(deployments, "rg-null", "nulls", inference_template(), {name: None}).result()
    assert info.value.status_code == 400 and info.value.error.code == "InvalidDeploymentParameterValue"
    assert f"The value of deployment parameter '{name}' is null." in info.value.message
    assert not emu.state.list("")


def test_a_default_uses_the_parameters_declared_before_it(emu, deployments):
    emu.add_resource_group(None, "rg-default", "eastus")
    template = inference_template()
    template["parameters"]["storageAccountName"]["defaultValue"] = "[format('st{0}', parameters('location'))]"
    template["outputs"] = {"NAME": {"type": "string", "value": "[parameters('storageAccountName')]"}}
    result = deploy(deployments, "rg-default", "defaults", template, {"location": "westus3"}).result()
    assert result.properties.outputs["NAME"]["value"] == "stwestus3"


def test_failure_inside_a_deployment(emu, fg, deployments, aca):
    emu.faults.fail_deployment_resource(f"aiacaapp{fg.suffix}", code="ContainerAppInvalidProperties",
                                        message="GPU quota exceeded in eastus.")
    poller = deploy(deployments, fg.resource_group, "inference", inference_template())
    with pytest.raises(HttpResponseError) as info:
        poller.result()
    assert "DeploymentFailed" in str(info.value)
    dep = deployments.deployments.get(fg.resource_group, "inference")
    assert dep.properties.provisioning_state == "Failed"
    assert dep.properties.error.code == "DeploymentFailed"
    assert dep.properties.error.details[0].code == "ContainerAppInvalidProperties"
    assert "outputs" not in dep.properties or not dep.properties.outputs
    ops = list(deployments.deployment_operations.list(fg.resource_group, "inference"))
    failed = [o for o in ops if o.properties.provisioning_state == "Failed"]
    assert len(failed) == 1
    target = failed[0].properties.target_resource
    assert (target.resource_type, target.resource_name) == ("Microsoft.App/containerApps", f"aiacaapp{fg.suffix}")
    assert failed[0].properties.status_message.error.code == "ContainerAppInvalidProperties"
    assert failed[0].properties.status_code == "BadRequest"
    with pytest.raises(ResourceNotFoundError):
        aca.container_apps.get(fg.resource_group, f"aiacaapp{fg.suffix}")


def test_provider_error_inside_a_deployment_skips_dependents(emu, deployments):
    emu.add_resource_group(None, "rg-f", "eastus")
    template = inference_template()
    template["resources"][3]["properties"]["workloadProfiles"][1]["name"] = "Other"  # the app asks for GPU
    with pytest.raises(HttpResponseError):
        deploy(deployments, "rg-f", "d", template).result()
    ops = list(deployments.deployment_operations.list("rg-f", "d"))
    failed = [o for o in ops if o.properties.provisioning_state == "Failed"]
    assert [o.properties.status_message.error.code for o in failed] == ["WorkloadProfileNotFound"]
    assert len([o for o in ops if o.properties.provisioning_state == "Succeeded"]) == 6

    # a failed resource's dependents are not attempted
    emu.faults.fail_deployment_resource("aienv*", code="ManagedEnvironmentProvisioningError", message="boom")
    with pytest.raises(HttpResponseError):
        deploy(deployments, "rg-f", "d2", inference_template()).result()
    ops = list(deployments.deployment_operations.list("rg-f", "d2"))
    attempted = {o.properties.target_resource.resource_type: o.properties.provisioning_state
                 for o in ops if o.properties.target_resource}
    assert attempted["Microsoft.App/managedEnvironments"] == "Failed"
    assert "Microsoft.App/managedEnvironments/storages" not in attempted
    assert "Microsoft.App/containerApps" not in attempted
    assert attempted["Microsoft.OperationalInsights/workspaces"] == "Succeeded"


def test_deployment_of_the_same_name_already_running(emu, fg, deployments):
    emu.deployments.hold_running(fg.subscription_id, fg.resource_group, "inference")
    assert deployments.deployments.get(fg.resource_group, "inference").properties.provisioning_state == "Running"
    with pytest.raises(HttpResponseError) as info:
        deploy(deployments, fg.resource_group, "inference", inference_template()).result()
    assert info.value.status_code == 409 and info.value.error.code == "DeploymentActive"
    deployments.deployments.cancel(fg.resource_group, "inference")
    assert deployments.deployments.get(fg.resource_group, "inference").properties.provisioning_state == "Canceled"
    assert deploy(deployments, fg.resource_group, "inference", inference_template()).result().properties.provisioning_state == "Succeeded"
    with pytest.raises(HttpResponseError) as info:
        deployments.deployments.cancel(fg.resource_group, "inference")
    assert info.value.status_code == 409


def test_slow_deployment_is_running_until_polled(emu, fg, deployments):
    emu.faults.slow_operation(3, method="PUT", path="*/deployments/slow")
    poller = deploy(deployments, fg.resource_group, "slow", inference_template())
    assert deployments.deployments.get(fg.resource_group, "slow").properties.provisioning_state == "Running"
    assert poller.result().properties.provisioning_state == "Succeeded"


def test_copy_loops_and_nested_functions(emu, deployments):
    emu.add_resource_group(None, "rg-copy", "eastus")
    template = {
        "parameters": {"names": {"type": "array", "defaultValue": ["a", "b", "c"]}},
        "resources": [{
            "type": "Microsoft.Storage/storageAccounts", "apiVersion": "2023-01-01",
            "name": "[concat('st', parameters('names')[copyIndex()], string(copyIndex(1)))]",
            "location": "eastus", "copy": {"name": "accounts", "count": "[length(parameters('names'))]"},
            "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}],
        "outputs": {"n": {"type": "int", "value": "[length(parameters('names'))]"}},
    }
    result = deploy(deployments, "rg-copy", "loop", template).result()
    assert result.properties.outputs["n"]["value"] == 3
    assert sorted(r.name for r in emu.state.list("", "Microsoft.Storage/storageAccounts")) == ["sta1", "stb2", "stc3"]
