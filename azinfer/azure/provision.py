"""The user's main job from Python: plan against Azure, preview, provision, read the API key.

::

    from azinfer.azure import AzureProject

    project = AzureProject("my-phi3-project")          # DefaultAzureCredential, public cloud
    plan = project.plan()                               # inventory + preflight, nothing written
    print(project.preview().what_if.to_text())          # ARM's what-if, nothing written
    result = project.provision(on_progress=print)       # deploy, then infra/inference.config.json
    key = project.api_key()                             # the endpoint's key, from the app's secret
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azinfer._arguments import (
    check_callback,
    check_member,
    check_members,
    check_number,
    check_optional_path,
    check_optional_text,
    check_path,
    check_type,
)
from azinfer.azure import lifecycle, teardown
from azinfer.azure.app import EndpointStatus
from azinfer.azure.clients import (
    AzureClients,
    AzureTarget,
    Cloud,
    check_credential,
    check_credential_argument,
    check_endpoint,
    default_credential,
    target_for,
)
from azinfer.azure.deploy import (
    ProgressCallback,
    WhatIf,
    attach,
    deployment_name,
    existing_api_key,
    run_deployment,
    validate_deployment,
    what_if,
)
from azinfer.azure.failures import translated, translated_iterator
from azinfer.azure.inventory import read_inventory
from azinfer.azure.logstream import MAX_TAIL
from azinfer.azure.preflight import preflight_findings, read_preflight_facts
from azinfer.azure.share import BytesCallback, open_share
from azinfer.config import config_from_outputs, write_config
from azinfer.errors import AzureError, PlanBlockedError, PreviewOutdatedError
from azinfer.inputs import resolve
from azinfer.inventory import JOB_TYPE, InMemoryInventory, inventory_differences
from azinfer.plan import Action, Plan, make_plan
from azinfer.project import (
    INFERENCE_CONFIG,
    Authentication,
    InferenceConfig,
    Project,
    load_inference_config,
    load_project,
)
from azinfer.resources import ResourceKind
from azinfer.templates import RenderedTemplates, render, rendered_parameters

if TYPE_CHECKING:  # pragma: no cover
    from azure.core.credentials import TokenCredential

    from azinfer.azure.app import Verify

__all__ = ["AzureProject", "Preview", "ProvisionResult", "DestroyResult"]

# What a plan depends on: the six kinds and the fine-tuning job (its environment names the reused one).
_PLANNED_TYPES = (*(kind.arm_type for kind in ResourceKind), JOB_TYPE)


@dataclass(frozen=True)
class Preview:
    """What a provision would do: the plan, ARM's what-if, and the resource group they were made for.

    Pass it to :meth:`AzureProject.provision` to deploy exactly this plan (as
    Terraform applies a saved plan): it is refused when the resource group no
    longer matches ``inventory``. Holds no secret.
    """

    plan: Plan
    what_if: WhatIf
    inventory: InMemoryInventory


@dataclass(frozen=True)
class ProvisionResult:
    """What a provision did."""

    plan: Plan
    what_if: WhatIf
    deployment: str | None
    """The deployment name, or ``None`` when what-if showed nothing to change and nothing was deployed."""
    config: InferenceConfig
    config_path: Path


@dataclass(frozen=True)
class DestroyResult:
    """What a destroy did."""

    plan: teardown.TeardownPlan
    deleted: tuple[teardown.TeardownItem, ...]
    config_path: Path | None
    """The config file whose owned keys were cleared (``None`` when there was none)."""


class AzureProject:
    """An AI Toolkit project and the Azure subscription it provisions into.

    :param project_dir: the AI Toolkit project.
    :param credential: any ``TokenCredential``; default ``DefaultAzureCredential`` for the cloud.
    :param cloud: ``public``, ``china`` or ``usgovernment``.
    :param arm_endpoint: a custom ARM endpoint (Azure Stack, an emulator); overrides the cloud's.
    :param authority_host: a custom sign-in authority for the default credential.
    :param subscription_id: overrides the fine-tuning subscription.
    :param resource_group: overrides the fine-tuning resource group.
    :param location: overrides the parameters' location.
    :param update: reused resources whose template is applied anyway.
    :param poll_interval: seconds between polls of Azure's state.
    :param credential_timeout: seconds to wait for the credential's first token.
    :param client_kwargs: passed to every SDK client (retry and transport settings).
    :raises ArgumentError: when an argument has the wrong type or value (the message names it).
    :raises ProjectFileError: when a project file is invalid.
    :raises ResolutionError: when no subscription or resource group can be found.

    Every method that talks to Azure raises azinfer's errors only: a 403 is an
    :class:`~azinfer.errors.AzurePermissionError` naming the role, a refused
    credential a :class:`~azinfer.errors.CredentialError`, any other failure an
    :class:`~azinfer.errors.AzureError` saying what was being done and what Azure answered.
    """

    def __init__(
        self,
        project_dir: str | os.PathLike[str] = ".",
        *,
        credential: TokenCredential | None = None,
        cloud: Cloud | str = Cloud.PUBLIC,
        arm_endpoint: str | None = None,
        authority_host: str | None = None,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        location: str | None = None,
        update: Collection[ResourceKind] = (),
        poll_interval: float = 2.0,
        credential_timeout: float = 30.0,
        **client_kwargs: Any,
    ) -> None:
        fn = "AzureProject"
        project_dir = check_path(fn, "project_dir", project_dir)
        if credential is not None:
            check_credential_argument(fn, credential)
        cloud = check_member(fn, "cloud", cloud, Cloud)
        check_endpoint(fn, "arm_endpoint", arm_endpoint)
        check_endpoint(fn, "authority_host", authority_host)
        for argument, value in (("subscription_id", subscription_id), ("resource_group", resource_group),
                                ("location", location)):
            check_optional_text(fn, argument, value)
        update = check_members(fn, "update", update, ResourceKind)
        check_number(fn, "poll_interval", poll_interval)
        check_number(fn, "credential_timeout", credential_timeout)
        self.project: Project = load_project(project_dir)
        # Subscription, resource group and the app's name need no inventory (and fail early when unknown).
        self._base = resolve(self.project, None, subscription_id=subscription_id, resource_group=resource_group,
                             location=location)
        self.target: AzureTarget = target_for(cloud, arm_endpoint=arm_endpoint, authority_host=authority_host)
        self._credential = credential
        self._options = {"subscription_id": subscription_id, "resource_group": resource_group, "location": location}
        self._update = tuple(update)
        self._poll_interval = poll_interval
        self._credential_timeout = credential_timeout
        self._client_kwargs = client_kwargs
        self._clients: AzureClients | None = None

    @property
    def clients(self) -> AzureClients:
        """The SDK clients (the credential is checked on first use).

        :raises CredentialError: when no credential gives a token; the message says how to sign in.
        :raises ResolutionError: when no subscription can be resolved.
        """
        if self._clients is None:
            subscription = self._base.subscription_id.value
            credential = self._credential or default_credential(self.target)
            # Sign in while the SDK clients are imported and built: two waits become one.
            with ThreadPoolExecutor(max_workers=1) as pool:
                signed_in = pool.submit(check_credential, credential, self.target, timeout=self._credential_timeout)
                clients = AzureClients(credential, subscription, self.target, **self._client_kwargs).build()
                signed_in.result()
            self._clients = clients
        return self._clients

    @property
    def resource_group(self) -> str:
        """The target resource group."""
        return self._base.resource_group.value

    def inventory(self) -> InMemoryInventory:
        """A snapshot of the resource group (concurrent reads).

        :raises AzureError: when the resource group does not exist or Azure fails to answer.
        :raises AzurePermissionError: when the caller may not read it (the message names the role).
        """
        return read_inventory(self.clients, self.resource_group)

    def plan(self, inventory: InMemoryInventory | None = None) -> Plan:
        """The plan against what exists, with the problems preflight finds. Writes nothing.

        :param inventory: a snapshot to plan against; ``None`` reads one now.
        :raises ArgumentError: when ``inventory`` is no :class:`~azinfer.inventory.InMemoryInventory`.
        :raises AzureError: when Azure fails to answer.
        """
        self._check_inventory("AzureProject.plan", inventory)
        with translated("plan against the resource group"):
            return self._plan(inventory if inventory is not None else self.inventory())

    def _plan(self, inventory: InMemoryInventory) -> Plan:
        plan = make_plan(resolve(self.project, inventory, **self._options), inventory, update=self._update)
        if plan.blocked:
            return plan
        problems, warnings = preflight_findings(plan, read_preflight_facts(self.clients, plan))
        return plan.with_findings(problems, warnings)

    @staticmethod
    def _check_inventory(function: str, inventory: object) -> None:
        if inventory is not None:
            check_type(function, "inventory", inventory, InMemoryInventory,
                       "an InMemoryInventory (AzureProject.inventory()) or None")

    def _prepare(self, plan: Plan) -> tuple[RenderedTemplates, dict[str, Any], str]:
        if plan.blocked:
            raise PlanBlockedError(plan)
        rendered = render(plan)
        parameters = rendered_parameters(plan)["parameters"]
        # The template's apiKey has no default, so that no deployment can rotate it by leaving it out.
        if plan.inputs.parameters.authentication is Authentication.API_KEY:
            # Keep the key clients already use; a new app gets a fresh one.
            parameters["apiKey"] = {"value": existing_api_key(self.clients, plan.inputs) or secrets.token_urlsafe(32)}
        else:
            parameters["apiKey"] = {"value": ""}  # authentication none: the template does not use it
        name = deployment_name(plan.inputs)
        validate_deployment(self.clients, self.resource_group, name, rendered.template, parameters)
        return rendered, parameters, name

    def preview(self, inventory: InMemoryInventory | None = None) -> Preview:
        """The plan and ARM's what-if for it, and the snapshot they were made for. Writes nothing.

        :raises PlanBlockedError: when the plan is blocked.
        :raises DeploymentFailedError: when ARM rejects the template.
        :raises ArgumentError: when ``inventory`` is no :class:`~azinfer.inventory.InMemoryInventory`.
        :raises AzureError: when Azure fails to answer.
        """
        self._check_inventory("AzureProject.preview", inventory)
        with translated("preview the deployment"):
            inv = inventory if inventory is not None else self.inventory()
            plan = self._plan(inv)
            rendered, parameters, name = self._prepare(plan)
            return Preview(plan, what_if(self.clients, self.resource_group, name, rendered.template, parameters), inv)

    def provision(
        self,
        preview: Preview | None = None,
        *,
        confirm: Callable[[Preview], bool] | None = None,
        on_progress: ProgressCallback | None = None,
        on_bytes: BytesCallback | None = None,
    ) -> ProvisionResult:
        """Deploy a preview (a fresh one when none is given), then write ``infra/inference.config.json``.

        A preview made earlier is deployed as it is, only while the resource
        group still matches what it saw. When what-if shows nothing to
        create, modify or delete, nothing is deployed and the config is
        written from what exists. azinfer's server goes to the share (only
        what changed) before the deployment when the share exists already,
        else right after it.

        :param preview: a :meth:`preview` to deploy as it is; ``None`` plans and previews now.
        :param confirm: called with the preview before anything is written; return False to stop.
        :param on_progress: called for each resource state change during the deployment.
        :param on_bytes: called as bytes reach the share (path, bytes sent).
        :raises PlanBlockedError: when the plan (or preflight) is blocked.
        :raises PreviewOutdatedError: when the resource group changed since ``preview``; nothing is written.
        :raises DeploymentFailedError: when ARM fails; the config file is left as it was.
        :raises DeploymentInterrupted: on Ctrl-C; the deployment goes on in Azure.
        :raises AzureError: when ``confirm`` declines, or Azure fails to answer.
        :raises ArgumentError: when ``preview`` is no :class:`Preview` or a callback is not callable.
        """
        fn = "AzureProject.provision"
        if preview is not None:
            check_type(fn, "preview", preview, Preview, "a Preview (AzureProject.preview()) or None")
        for argument, callback in (("confirm", confirm), ("on_progress", on_progress), ("on_bytes", on_bytes)):
            check_callback(fn, argument, callback)
        with translated("provision"):
            return self._provision(preview, confirm=confirm, on_progress=on_progress, on_bytes=on_bytes)

    def _provision(self, preview: Preview | None, *, confirm: Callable[[Preview], bool] | None,
                   on_progress: ProgressCallback | None, on_bytes: BytesCallback | None) -> ProvisionResult:
        # An earlier run's deployment may still be running (Ctrl-C leaves ARM working): wait for it first.
        attach(self.clients, self.resource_group, deployment_name(self._base), on_progress=on_progress,
               poll_interval=self._poll_interval)
        inventory = self.inventory()
        if preview is None:
            plan = self._plan(inventory)
            rendered, parameters, name = self._prepare(plan)
            changes = what_if(self.clients, self.resource_group, name, rendered.template, parameters)
            preview = Preview(plan, changes, inventory)
        else:
            differences = inventory_differences(preview.inventory, inventory, _PLANNED_TYPES)
            if differences:
                raise PreviewOutdatedError(differences)
            plan, changes = preview.plan, preview.what_if
            rendered, parameters, name = self._prepare(plan)
        if confirm is not None and not confirm(preview):
            raise AzureError("provisioning cancelled: nothing was changed")
        # azinfer's server goes onto the share before the app exists, so its first start finds it.
        # A share the deployment creates gets it right after (the replica's restarts then find it).
        uploaded = self._share_exists(plan)
        if uploaded:
            lifecycle.upload(self, self._planned_config(plan), on_bytes=on_bytes)
        if changes.writes:
            outputs = run_deployment(self.clients, self.resource_group, name, rendered.template, parameters,
                                     on_progress=on_progress, poll_interval=self._poll_interval)
            config = config_from_outputs(outputs)
            deployed: str | None = name
        else:
            config = self._config_from(plan, inventory)
            deployed = None
        if not uploaded:
            lifecycle.upload(self, config, on_bytes=on_bytes)
        path = write_config(self.project.root, config)
        return ProvisionResult(plan, changes, deployed, config, path)

    @staticmethod
    def _share_exists(plan: Plan) -> bool:
        return all(plan.action(kind) is not Action.CREATE
                   for kind in (ResourceKind.STORAGE_ACCOUNT, ResourceKind.FILE_SHARE))

    @staticmethod
    def _planned_config(plan: Plan) -> InferenceConfig:
        return InferenceConfig(
            subscription_id=plan.inputs.subscription_id.value,
            resource_group=plan.inputs.resource_group.value,
            storage_account_name=plan.inputs.name(ResourceKind.STORAGE_ACCOUNT),
            file_share_name=plan.inputs.name(ResourceKind.FILE_SHARE),
            app_name=plan.inputs.name(ResourceKind.CONTAINER_APP),
        )

    def _config_from(self, plan: Plan, inventory: InMemoryInventory) -> InferenceConfig:
        app = inventory.get(ResourceKind.CONTAINER_APP.arm_type, plan.inputs.name(ResourceKind.CONTAINER_APP))
        if app is None or not app.fqdn:
            raise AzureError("the container app has no ingress FQDN yet; provision again")
        return replace(self._planned_config(plan), app_endpoint=app.fqdn)

    def api_key(self) -> str:
        """The endpoint's API key, read from the container app's secret.

        :raises AzureError: when the app does not exist or has no key (authentication none).
        """
        with translated("read the API key"):
            key = existing_api_key(self.clients, self._base)
        if key is None:
            raise AzureError(
                f"container app {self._base.name(ResourceKind.CONTAINER_APP)!r} has no API key "
                "(not provisioned yet, or authentication is 'none')"
            )
        return key

    # -- after provisioning: the endpoint's life ----------------------------------------------------
    @property
    def client_kwargs(self) -> dict[str, Any]:
        """The keyword arguments every SDK client gets (transport, retries, TLS trust)."""
        return dict(self._client_kwargs)

    @property
    def verify(self) -> Verify:
        """What plain HTTPS calls (``/ready``, the log stream) trust: the same as the SDK clients."""
        from azinfer.azure.app import _verify

        return _verify(self._client_kwargs)

    @property
    def poll_interval(self) -> float:
        """Seconds between polls of Azure's state."""
        return self._poll_interval

    def config(self) -> InferenceConfig:
        """``infra/inference.config.json`` as it is on disk now (empty when absent)."""
        path = self.project.root / INFERENCE_CONFIG
        return load_inference_config(path, display=INFERENCE_CONFIG) if path.exists() else InferenceConfig()

    def deploy(
        self,
        *,
        adapter: str | os.PathLike[str] | None = None,
        delete: bool = False,
        restart: bool | None = None,
        wait: bool = True,
        timeout: float = 900.0,
        on_stage: Callable[[str], None] | None = None,
        on_bytes: BytesCallback | None = None,
        confirm: Callable[[lifecycle.SyncSummary], bool] | None = None,
    ) -> lifecycle.DeployResult:
        """Put what the container runs on the share, restart, and wait until ``/ready`` answers.

        Uploads azinfer's server (a wheel of the installed package and the
        constraints of its serving dependencies); with a start command the
        user wrote, also mirrors the project folder at the share root
        (``.git``, virtual environments, caches, ``infra/``, ``models/`` and
        ``model-cache/`` left out). Only files whose content changed are
        uploaded. Then restarts the serving revision (or waits for a newer
        one when the template changed) and waits for a new replica and
        ``GET https://<endpoint>/ready`` answering 200 with the key.

        :param adapter: a local adapter folder to publish under ``models/azinfer/<name>``.
        :param delete: delete files on the share that are gone locally (only in the folders deploy owns).
        :param restart: ``None``: restart when something changed; ``True``: always; ``False``: never.
        :param wait: wait for ``/ready`` after the restart.
        :param timeout: seconds to wait for ``/ready``.
        :param on_stage: called with each stage, in words.
        :param on_bytes: called as bytes reach the share (path, bytes sent).
        :param confirm: called with what will be uploaded and deleted before any write; False stops.
        :raises AzureError: nothing provisioned, the app is missing, or the share cannot be reached.
        :raises SyncError: a local file vanished or a write failed (the next run continues).
        :raises SyncInterrupted: Ctrl-C during the upload (the next run continues).
        :raises ReadyTimeout: the endpoint did not get ready; names the revision's state and the last log lines.
        :raises ArgumentError: when an argument has the wrong type or value (the message names it).
        """
        fn = "AzureProject.deploy"
        folder = check_optional_path(fn, "adapter", adapter)
        check_type(fn, "delete", delete, bool, "a bool")
        if restart is not None:
            check_type(fn, "restart", restart, bool, "a bool or None")
        check_type(fn, "wait", wait, bool, "a bool")
        check_number(fn, "timeout", timeout)
        for argument, callback in (("on_stage", on_stage), ("on_bytes", on_bytes), ("confirm", confirm)):
            check_callback(fn, argument, callback)
        with translated("deploy"):
            return lifecycle.deploy(self, adapter=folder, delete=delete, restart=restart, wait=wait, timeout=timeout,
                                    on_stage=on_stage, on_bytes=on_bytes, confirm=confirm)

    def deploy_preview(self, *, adapter: str | os.PathLike[str] | None = None,
                       delete: bool = False) -> lifecycle.SyncSummary:
        """What :meth:`deploy` would upload and delete (and the user's start commands). Writes nothing.

        :raises AzureError: nothing provisioned, or the share cannot be reached.
        :raises ArgumentError: when ``adapter`` is no path or ``delete`` no bool.
        """
        folder = check_optional_path("AzureProject.deploy_preview", "adapter", adapter)
        check_type("AzureProject.deploy_preview", "delete", delete, bool, "a bool")
        with translated("read the file share"):
            return lifecycle.preview(self, adapter=folder, delete=delete)

    def status(self, *, ask_ready: bool = True) -> EndpointStatus:
        """The app's provisioning and running state, its serving revision and replicas, GPU profile,
        scale limits, endpoint, and whether ``/ready`` answers (a value with ``to_json`` and ``_repr_html_``).

        :raises AzureError: nothing provisioned, or the app is missing.
        :raises ArgumentError: when ``ask_ready`` is no bool.
        """
        check_type("AzureProject.status", "ask_ready", ask_ready, bool, "a bool")
        with translated("read the endpoint's status"):
            return lifecycle.status(self, ask_ready=ask_ready)

    def logs(self, *, follow: bool = False, tail: int = 20, system: bool = False,
             on_reconnect: Callable[[str], None] | None = None) -> Iterator[str]:
        """The container's console log lines (or the app's system events with ``system``).

        With ``follow`` the iterator goes on until the caller stops; a dropped stream is reopened.

        :param tail: lines of history first, 0 to 300 (the log stream's limit).
        :raises AzureError: nothing provisioned, the app is missing or has no replica, or the stream keeps failing.
        :raises ArgumentError: when an argument has the wrong type or value (the message names it).
        """
        fn = "AzureProject.logs"
        check_type(fn, "follow", follow, bool, "a bool")
        check_number(fn, "tail", tail, maximum=MAX_TAIL, integer=True)
        check_type(fn, "system", system, bool, "a bool")
        check_callback(fn, "on_reconnect", on_reconnect)
        with translated("read the logs"):
            lines = lifecycle.logs(self, follow=follow, tail=tail, system=system, on_reconnect=on_reconnect)
        return translated_iterator(lines, "read the logs")

    def destroy_plan(self) -> teardown.TeardownPlan:
        """What :meth:`destroy` would delete and keep, and why. Deletes nothing.

        :raises AzureError: when Azure fails to answer.
        """
        with translated("plan the teardown"):
            return self._destroy_plan()

    def _destroy_plan(self) -> teardown.TeardownPlan:
        inventory = self.inventory()
        inputs = resolve(self.project, inventory, **self._options)
        names = {kind: inputs.name(kind) for kind in ResourceKind}
        config = self.config()
        if config.app_name:
            names[ResourceKind.CONTAINER_APP] = config.app_name

        def share_extras() -> list[str]:
            return open_share(self.clients, self.resource_group, names[ResourceKind.STORAGE_ACCOUNT],
                              names[ResourceKind.FILE_SHARE], **self._client_kwargs).foreign()

        return teardown.teardown_plan(inventory, self.resource_group, names, share_extras)

    def destroy(self, *, confirm: Callable[[teardown.TeardownPlan], bool] | None = None,
                on_progress: Callable[[teardown.TeardownItem, str], None] | None = None) -> DestroyResult:
        """Delete what azinfer created for inference (app first) and nothing else; clear the config's owned keys.

        A reused resource is never deleted, nor the fine-tuning share. A second run finds nothing to do.

        :param confirm: called with the plan before anything is deleted; False stops.
        :param on_progress: called with each resource and ``"deleting"`` / ``"deleted"``.
        :raises AzureError: when ``confirm`` declines, or Azure fails to answer.
        :raises ArgumentError: when a callback is not callable.
        """
        check_callback("AzureProject.destroy", "confirm", confirm)
        check_callback("AzureProject.destroy", "on_progress", on_progress)
        plan = self.destroy_plan()
        if plan.deletes and confirm is not None and not confirm(plan):
            raise AzureError("destroy cancelled: nothing was deleted")
        with translated("delete the resources"):
            deleted = teardown.run_teardown(self.clients, plan, on_progress)
        config = self.config()
        path = None
        if any(value is not None for value in config.owned().values()):
            path = write_config(self.project.root, config.cleared())
        return DestroyResult(plan, deleted, path)
