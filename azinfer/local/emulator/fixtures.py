"""Ready-made states: a resource group as the AI Toolkit's fine-tuning template leaves it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azinfer.names import default_name, resource_suffix
from azinfer.resources import ResourceKind

from . import providers

if TYPE_CHECKING:  # pragma: no cover
    from .server import ArmEmulator

__all__ = ["FinetuningGroup", "seed_finetuning_group", "seed_finetuning_share", "seed_share_from"]


@dataclass(frozen=True)
class FinetuningGroup:
    subscription_id: str
    resource_group: str
    location: str
    rg_id: str
    suffix: str
    storage_account: str
    file_share: str
    log_analytics: str
    environment: str
    environment_storage: str
    job: str

    def id(self, kind: str) -> str:
        """Resource id by kind: storage_account, file_share, file_service, log_analytics, environment,
        environment_storage, job."""
        base = f"{self.rg_id}/providers"
        return {
            "storage_account": f"{base}/Microsoft.Storage/storageAccounts/{self.storage_account}",
            "file_service": f"{base}/Microsoft.Storage/storageAccounts/{self.storage_account}/fileServices/default",
            "file_share": f"{base}/Microsoft.Storage/storageAccounts/{self.storage_account}/fileServices/default/shares/{self.file_share}",
            "log_analytics": f"{base}/Microsoft.OperationalInsights/workspaces/{self.log_analytics}",
            "environment": f"{base}/Microsoft.App/managedEnvironments/{self.environment}",
            "environment_storage": f"{base}/Microsoft.App/managedEnvironments/{self.environment}/storages/{self.environment_storage}",
            "job": f"{base}/Microsoft.App/jobs/{self.job}",
        }[kind]

    @property
    def ids(self) -> dict[str, str]:
        return {k: self.id(k) for k in ("storage_account", "file_service", "file_share", "log_analytics",
                                        "environment", "environment_storage", "job")}


def seed_finetuning_group(emu: ArmEmulator, subscription_id: str | None = None, resource_group: str = "rg-finetune",
                          location: str = "eastus", *, gpu_maximum_count: int = 1,
                          allow_shared_key_access: bool = True, timeout: int = 10800,
                          workload_profiles: list[dict[str, Any]] | None = None,
                          names: Mapping[ResourceKind, str] | None = None, job: str | None = None) -> FinetuningGroup:
    """Create the resource group and the resources the fine-tuning template deploys, with its default names
    (or ``names``, ``job``: those a project's fine-tuning files give).

    The resources' inputs are what the template sets (docs/ai-toolkit-remote-inference.md), so a template
    declaring the same settings is NoChange in what-if; anything else the provider adds is read-only.
    """
    sub = subscription_id or emu.subscription_id
    group = emu.add_resource_group(sub, resource_group, location)
    rg_id = group["id"]
    names = {kind: default_name(kind, rg_id) for kind in ResourceKind} | dict(names or {})
    suffix = resource_suffix(rg_id)
    fg = FinetuningGroup(
        subscription_id=sub, resource_group=group["name"], location=group["location"], rg_id=rg_id, suffix=suffix,
        storage_account=names[ResourceKind.STORAGE_ACCOUNT], file_share=names[ResourceKind.FILE_SHARE],
        log_analytics=names[ResourceKind.LOG_ANALYTICS], environment=names[ResourceKind.ENVIRONMENT],
        environment_storage=names[ResourceKind.ENVIRONMENT_STORAGE], job=job or f"aiacajob{suffix}",
    )
    (storage,) = emu.seed({
        "id": fg.id("storage_account"), "location": location, "kind": "StorageV2",
        "sku": {"name": "Standard_LRS"},
        "properties": {"largeFileSharesState": "Enabled", "allowSharedKeyAccess": allow_shared_key_access},
    })
    emu.seed(
        {"id": fg.id("file_service"),
         "properties": {"protocolSettings": {"smb": {}},
                        "shareDeleteRetentionPolicy": {"enabled": True, "days": 7}}},
        {"id": fg.id("file_share"), "properties": {"shareQuota": 1024}},
    )
    (workspace,) = emu.seed({
        "id": fg.id("log_analytics"), "location": location,
        "properties": {"sku": {"name": "PerGB2018"}},
    })
    keys = providers.workspace_keys(workspace)
    emu.seed({
        "id": fg.id("environment"), "location": location,
        "properties": {
            "appLogsConfiguration": {"destination": "log-analytics", "logAnalyticsConfiguration": {
                "customerId": workspace.view()["properties"]["customerId"],
                "sharedKey": keys["primarySharedKey"]}},
            "workloadProfiles": workload_profiles if workload_profiles is not None else [
                {"name": "Consumption", "workloadProfileType": "Consumption"},
                {"name": "GPU", "workloadProfileType": "NC24-A100", "minimumCount": 0,
                 "maximumCount": gpu_maximum_count},
            ],
        },
    })
    emu.seed({
        "id": fg.id("environment_storage"),
        "properties": {"azureFile": {"accountName": fg.storage_account,
                                     "accountKey": providers.storage_keys(storage)["keys"][0]["value"],
                                     "shareName": fg.file_share, "accessMode": "ReadWrite"}},
    })
    emu.seed({
        "id": fg.id("job"), "location": location,
        "properties": {
            "environmentId": fg.id("environment"),
            "workloadProfileName": (workload_profiles or [{}, {"name": "GPU"}])[-1].get("name", "GPU"),
            "configuration": {"triggerType": "Manual", "replicaTimeout": timeout, "replicaRetryLimit": 0,
                              "manualTriggerConfig": {"parallelism": 1, "replicaCompletionCount": 1},
                              "secrets": []},
            "template": {
                "containers": [{
                    "name": "aiacajob", "image": "docker.io/pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime",
                    "command": ["/bin/bash", "-c", "cd /mount && python3 ./finetuning/invoke_olive.py"],
                    "resources": {"cpu": 24, "memory": "220Gi"},
                    "volumeMounts": [{"volumeName": "azurefile", "mountPath": "/mount"}],
                }],
                "volumes": [{"name": "azurefile", "storageType": "AzureFile",
                             "storageName": fg.environment_storage}],
            },
        },
    })
    return fg


def seed_finetuning_share(emu: ArmEmulator, fg: FinetuningGroup,
                          model: str = "microsoft/Phi-3-mini-4k-instruct") -> dict[str, bytes]:
    """Files a finished remote fine-tuning leaves on the share (docs/ai-toolkit-remote-inference.md): the
    project as the toolkit synced it (``setup/``, ``finetuning/``, ``dataset/``, ``inference/``), the base
    model under ``model-cache/<org>/<model>`` and the adapter under ``models/``.  Small stand-in contents;
    returns ``{path: bytes}`` as written."""
    files = {
        "setup/requirements.txt": b"olive-ai\ntorch\n",
        "finetuning/invoke_olive.py": b"print('fine-tuning')\n",
        "dataset/dataset-classification.json": b'{"phrase": "hi", "tone": "positive"}\n',
        "inference/gradio_chat.py": b"print('chat')\n",
        "inference/requirements.txt": b"gradio\n",
        f"model-cache/{model}/config.json": b'{"model_type": "phi3"}',
        f"model-cache/{model}/model.safetensors": b"\0" * 64,
        "models/qlora/qlora/gpu_model/adapter/adapter_config.json": b'{"peft_type": "LORA", "r": 8}',
        "models/qlora/qlora/gpu_model/adapter/adapter_model.safetensors": b"\0" * 32,
    }
    emu.seed_files(fg.storage_account, fg.file_share, files)
    return files


def seed_share_from(emu: ArmEmulator, fg: FinetuningGroup, folder: Path) -> dict[str, bytes]:
    """The fine-tuning share's model files from a local folder laid out as the toolkit's share
    (``model-cache/``, ``models/``: e.g. a tiny model from :mod:`azinfer.local.tinymodel`), replacing
    the stand-ins under those two folders; returns ``{path: bytes}`` as written.

    :raises ValueError: when the folder has neither ``model-cache/`` nor ``models/``.
    """
    tops = [top for top in ("model-cache", "models") if (folder / top).is_dir()]
    if not tops:
        raise ValueError(f"{folder}: expected a share layout with model-cache/ and models/ folders")
    share = emu.share(fg.storage_account, fg.file_share)
    for top in tops:
        share.remove(top)
    files = {p.relative_to(folder).as_posix(): p.read_bytes()
             for top in tops for p in sorted((folder / top).rglob("*")) if p.is_file()}
    emu.seed_files(fg.storage_account, fg.file_share, files)
    return files
