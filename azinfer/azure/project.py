"""The user's main job from Python: plan against Azure, preview, provision, deploy, status, logs, destroy.

::

    from azinfer.azure import AzureProject

    project = AzureProject("my-phi3-project")          # DefaultAzureCredential, public cloud
    plan = project.plan()                               # inventory + preflight, nothing written
    print(project.preview().to_text())                  # the plan and ARM's what-if, nothing written
    result = project.provision(on_event=print)          # deploy, then infra/inference.config.json
    key = project.api_key()                             # the endpoint's key, from the app's secret

:class:`AzureProject` is a facade: it checks its arguments once, here, and
calls one module per operation (:mod:`.provision`, :mod:`.deploy`,
:mod:`.rollout`, :mod:`.status`, :mod:`.logs`, :mod:`.destroy`) with one
:class:`~azinfer.azure.context.AzureContext` built at construction.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any, Literal, overload

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
from azinfer.azure import deploy as deploy_op
from azinfer.azure import destroy as destroy_op
from azinfer.azure import key as key_op
from azinfer.azure import logs as logs_op
from azinfer.azure import provision as provision_op
from azinfer.azure import rollout as rollout_op
from azinfer.azure import status as status_op
from azinfer.azure import up as up_op
from azinfer.azure.app import EndpointStatus
from azinfer.azure.clients import AzureClients, AzureTarget, Cloud, check_credential_argument, check_endpoint, target_for
from azinfer.azure.context import AzureContext
from azinfer.azure.deploy import DeployResult, SyncSummary
from azinfer.azure.destroy import DestroyResult
from azinfer.azure.events import ConfirmCallback, EventCallback
from azinfer.azure.failures import translated, translated_iterator
from azinfer.azure.logstream import MAX_TAIL
from azinfer.azure.provision import Preview, ProvisionResult
from azinfer.azure.rollout import RollbackResult, RolloutResult
from azinfer.azure.scope import ProjectScope
from azinfer.azure.teardown import TeardownPlan
from azinfer.azure.up import UpResult
from azinfer.errors import ArgumentError
from azinfer.inventory import InMemoryInventory
from azinfer.plan import Plan
from azinfer.project import InferenceConfig, Project, load_project
from azinfer.resources import ResourceKind

if TYPE_CHECKING:  # pragma: no cover
    from azure.core.credentials import TokenCredential

    from azinfer.azure.app import Verify

__all__ = ["AzureProject"]


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

    Progress goes to ``on_event`` (one :class:`~azinfer.azure.Event` per step,
    for every operation); ``confirm`` gets one :class:`~azinfer.azure.Question`
    before anything is written, and answering ``False`` returns a result with
    ``declined=True``.
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
        self._scope = ProjectScope.of(self.project, update=tuple(update), subscription_id=subscription_id,
                                      resource_group=resource_group, location=location)
        self.target: AzureTarget = target_for(cloud, arm_endpoint=arm_endpoint, authority_host=authority_host)
        self.context = AzureContext(self.target, self._scope.base.subscription_id.value, credential=credential,
                                    credential_timeout=credential_timeout, poll_interval=poll_interval,
                                    client_kwargs=client_kwargs)
        """The :class:`~azinfer.azure.context.AzureContext` every operation gets."""

    @property
    def clients(self) -> AzureClients:
        """The SDK clients (the credential is checked on first use).

        :raises CredentialError: when no credential gives a token; the message says how to sign in.
        """
        return self.context.clients

    @property
    def client_kwargs(self) -> dict[str, Any]:
        """The keyword arguments every SDK client gets (transport, retries, TLS trust)."""
        return self.context.client_kwargs

    @property
    def verify(self) -> Verify:
        """What plain HTTPS calls (``/ready``, the log stream) trust: the same as the SDK clients."""
        return self.context.verify

    @property
    def poll_interval(self) -> float:
        """Seconds between polls of Azure's state."""
        return self.context.poll_interval

    @property
    def resource_group(self) -> str:
        """The target resource group."""
        return self._scope.resource_group

    def config(self) -> InferenceConfig:
        """``infra/inference.config.json`` as it is on disk now (empty when absent)."""
        return self._scope.config()

    def inventory(self) -> InMemoryInventory:
        """A snapshot of the resource group (concurrent reads).

        :raises AzureError: when the resource group does not exist or Azure fails to answer.
        :raises AzurePermissionError: when the caller may not read it (the message names the role).
        """
        return self.context.inventory(self.resource_group)

    def plan(self, inventory: InMemoryInventory | None = None) -> Plan:
        """The plan against what exists, with the problems preflight finds. Writes nothing.

        :param inventory: a snapshot to plan against; ``None`` reads one now.
        :raises ArgumentError: when ``inventory`` is no :class:`~azinfer.inventory.InMemoryInventory`.
        :raises AzureError: when Azure fails to answer.
        """
        _check_inventory("AzureProject.plan", inventory)
        with translated("plan against the resource group"):
            return provision_op.plan(self.context, self._scope,
                                     inventory if inventory is not None else self.inventory())

    def preview(self, inventory: InMemoryInventory | None = None) -> Preview:
        """The plan and ARM's what-if for it, and the snapshot they were made for. Writes nothing.

        :raises PlanBlockedError: when the plan is blocked.
        :raises DeploymentFailedError: when ARM rejects the template.
        :raises ArgumentError: when ``inventory`` is no :class:`~azinfer.inventory.InMemoryInventory`.
        :raises AzureError: when Azure fails to answer.
        """
        _check_inventory("AzureProject.preview", inventory)
        with translated("preview the deployment"):
            return provision_op.preview(self.context, self._scope, inventory)

    def provision(self, preview: Preview | None = None, *, confirm: ConfirmCallback | None = None,
                  on_event: EventCallback | None = None) -> ProvisionResult:
        """Deploy a preview (a fresh one when none is given), then write ``infra/inference.config.json``.

        A preview made earlier is deployed as it is, only while the resource
        group still matches what it saw. When what-if shows nothing to
        create, modify or delete, nothing is deployed and the config is
        written from what exists. azinfer's server goes to the share (only
        what changed) before the deployment when the share exists already,
        else right after it.

        :param preview: a :meth:`preview` to deploy as it is; ``None`` plans and previews now.
        :param confirm: called with a :class:`~azinfer.azure.Question` (its ``subject`` the
            :class:`Preview`) before anything is written; ``False`` returns a result with ``declined=True``.
        :param on_event: called with each resource state change during the deployment
            (``EventKind.RESOURCE``) and the server's upload (``TRANSFER``, ``BYTES``).
        :raises PlanBlockedError: when the plan (or preflight) is blocked.
        :raises PreviewOutdatedError: when the resource group changed since ``preview``; nothing is written.
        :raises DeploymentFailedError: when ARM fails; the config file is left as it was.
        :raises DeploymentInterrupted: on Ctrl-C; the deployment goes on in Azure.
        :raises AzureError: when Azure fails to answer.
        :raises ArgumentError: when ``preview`` is no :class:`Preview` or a callback is not callable.
        """
        fn = "AzureProject.provision"
        if preview is not None:
            check_type(fn, "preview", preview, Preview, "a Preview (AzureProject.preview()) or None")
        check_callback(fn, "confirm", confirm)
        check_callback(fn, "on_event", on_event)
        with translated("provision"):
            return provision_op.provision(self.context, self._scope, preview, confirm=confirm, on_event=on_event)

    def up(self, *, timeout: float = 900.0, confirm: ConfirmCallback | None = None,
           on_event: EventCallback | None = None) -> UpResult:
        """Plan, ask, provision, wait for ``/ready``, then one short chat completion through the endpoint.

        A composition of :meth:`provision`, :meth:`deploy` (a restart only when the share changed under a
        running revision) and :meth:`wait_ready`, each stage timed (``result.stages``) and announced as an
        ``Operation.UP`` stage event; the operations it runs report their own events. A rerun resumes:
        what exists and matches is not redone, a deployment still running is attached to.

        :param timeout: seconds to wait for ``/ready``.
        :param confirm: called once with a :class:`~azinfer.azure.Question` (``subject`` the
            :class:`Preview`; ``worth_asking`` only when something would be written); ``False`` returns a
            result with ``declined=True``.
        :param on_event: every stage and every operation's events.
        :raises UpInterrupted: on Ctrl-C (nothing local is half-written; run it again to continue).
        :raises PlanBlockedError: when the plan (or preflight) is blocked.
        :raises DeploymentFailedError: when ARM fails; the config file is left as it was.
        :raises ReadyTimeout: the endpoint did not get ready (its state and the last log lines).
        :raises AzureError: when Azure fails to answer, or the smoke test gets no answer.
        :raises ArgumentError: when an argument has the wrong type or value.
        """
        fn = "AzureProject.up"
        check_number(fn, "timeout", timeout)
        check_callback(fn, "confirm", confirm)
        check_callback(fn, "on_event", on_event)
        with translated("bring the endpoint up"):
            return up_op.up(self.context, self._scope, timeout=timeout, confirm=confirm, on_event=on_event)

    def wait_ready(self, *, timeout: float = 900.0, on_event: EventCallback | None = None) -> DeployResult:
        """Wait, restarting nothing, until the app's newest revision runs and ``/ready`` answers 200
        (what :meth:`provision` leaves starting).

        :raises ReadyTimeout: the endpoint did not get ready (its state and the last log lines).
        :raises AzureError: nothing provisioned, or the app is missing.
        :raises ArgumentError: when an argument has the wrong type or value.
        """
        check_number("AzureProject.wait_ready", "timeout", timeout)
        check_callback("AzureProject.wait_ready", "on_event", on_event)
        with translated("wait for the endpoint"):
            return deploy_op.wait_ready(self.context, self._scope, timeout=timeout, on_event=on_event)

    def api_key(self) -> str:
        """The endpoint's API key, read from the container app's secret.

        :raises AzureError: when the app does not exist or has no key (authentication none).
        """
        with translated("read the API key"):
            return key_op.api_key(self.context, self._scope)

    # -- after provisioning: the endpoint's life ----------------------------------------------------
    @overload
    def deploy(self, *, adapter: str | os.PathLike[str] | None = ..., adapter_name: str | None = ...,
               delete: bool = ..., restart: bool | None = ...,
               wait: bool = ..., timeout: float = ..., on_event: EventCallback | None = ...,
               confirm: ConfirmCallback | None = ..., canary: Literal[False] = ..., steps: int = ...,
               step_wait: float = ...) -> DeployResult: ...

    @overload
    def deploy(self, *, adapter: str | os.PathLike[str] | None = ..., adapter_name: str | None = ...,
               delete: bool = ..., restart: bool | None = ...,
               wait: bool = ..., timeout: float = ..., on_event: EventCallback | None = ...,
               confirm: ConfirmCallback | None = ..., canary: Literal[True], steps: int = ...,
               step_wait: float = ...) -> RolloutResult: ...

    def deploy(
        self,
        *,
        adapter: str | os.PathLike[str] | None = None,
        adapter_name: str | None = None,
        delete: bool = False,
        restart: bool | None = None,
        wait: bool = True,
        timeout: float = 900.0,
        on_event: EventCallback | None = None,
        confirm: ConfirmCallback | None = None,
        canary: bool = False,
        steps: int = 1,
        step_wait: float = 60.0,
    ) -> DeployResult | RolloutResult:
        """Put what the container runs on the share, restart, and wait until ``/ready`` answers.

        With ``canary`` nothing restarts: a new revision starts beside the serving
        one (multiple revision mode, label ``canary``, 0 % of the traffic), is
        smoke-tested at its own address with the key (``/ready``, then the short chat
        completion of :mod:`azinfer.azure.smoke`), then gets the traffic in ``steps``
        equal steps, ``step_wait`` seconds apart, smoke-tested again before each
        further step. A failed smoke test puts the traffic back where it was and
        raises :class:`~azinfer.errors.SmokeTestFailed`. The replaced revision keeps
        running with 0 % (label ``previous``) for :meth:`rollback`; see
        :mod:`azinfer.azure.rollout`.

        Uploads azinfer's server (a wheel of the installed package and the
        constraints of its serving dependencies); with a start command the
        user wrote, also mirrors the project folder at the share root
        (``.git``, virtual environments, caches, ``infra/``, ``models/`` and
        ``model-cache/`` left out). Only files whose content changed are
        uploaded. Then restarts the serving revision (or waits for a newer
        one when the template changed) and waits for a new replica and
        ``GET https://<endpoint>/ready`` answering 200 with the key.

        :param adapter: a local adapter folder to publish under ``models/azinfer/<name>``.
        :param adapter_name: the adapter's name (the folder's name when ``None``); the server serves it as
            model ``<name>``, and with it alone changed there is no restart: replicas watching the share load it.
        :param delete: delete files on the share that are gone locally (only in the folders deploy owns).
        :param restart: ``None``: restart when something changed; ``True``: always; ``False``: never.
        :param wait: wait for ``/ready`` after the restart.
        :param timeout: seconds to wait for ``/ready``.
        :param on_event: called with each stage in words (``EventKind.STAGE``), the upload's totals
            (``TRANSFER``) and bytes reaching the share (``BYTES``).
        :param confirm: called with a :class:`~azinfer.azure.Question` (its ``subject`` the
            :class:`SyncSummary`) before any write; ``False`` returns a result with ``declined=True``.
        :raises AzureError: nothing provisioned, the app is missing, or the share cannot be reached.
        :raises SyncError: a local file vanished or a write failed (the next run continues).
        :raises SyncInterrupted: Ctrl-C during the upload (the next run continues).
        :raises ReadyTimeout: the endpoint did not get ready; names the revision's state and the last log lines.
        :raises SmokeTestFailed: (``canary``) the new revision failed its smoke test; the traffic is where it was.
        :raises ArgumentError: when an argument has the wrong type or value (the message names it).
        """
        fn = "AzureProject.deploy"
        folder = check_optional_path(fn, "adapter", adapter)
        if adapter_name is not None:
            check_type(fn, "adapter_name", adapter_name, str, "a str or None")
        check_type(fn, "delete", delete, bool, "a bool")
        if restart is not None:
            check_type(fn, "restart", restart, bool, "a bool or None")
        check_type(fn, "wait", wait, bool, "a bool")
        check_number(fn, "timeout", timeout)
        check_callback(fn, "on_event", on_event)
        check_callback(fn, "confirm", confirm)
        check_type(fn, "canary", canary, bool, "a bool")
        check_number(fn, "steps", steps, minimum=1, maximum=100, integer=True)
        check_number(fn, "step_wait", step_wait)
        if canary:
            if restart is not None or not wait:  # a canary always starts a new revision and waits for it
                argument, value = ("restart", restart) if restart is not None else ("wait", wait)
                raise ArgumentError(fn, argument, "left at its default with canary=True", value)
            with translated("deploy a canary revision"):
                return rollout_op.rollout(self.context, self._scope, adapter=folder, adapter_name=adapter_name,
                                          delete=delete, steps=steps, step_wait=step_wait, timeout=timeout,
                                          on_event=on_event, confirm=confirm)
        with translated("deploy"):
            return deploy_op.deploy(self.context, self._scope, adapter=folder, delete=delete, restart=restart,
                                    wait=wait, timeout=timeout, on_event=on_event, confirm=confirm,
                                    adapter_name=adapter_name)

    def rollback(self, *, timeout: float = 900.0, on_event: EventCallback | None = None) -> RollbackResult:
        """All the traffic back to the revision the last ``deploy(canary=True)`` replaced (label ``previous``).

        The revision that served until now keeps running with 0 % (and becomes ``previous``: a second
        rollback goes forward again). An inactive revision is activated first and waited for.

        :raises AzureError: no revision to go back to (only a canary deploy keeps one), or Azure fails to answer.
        :raises ReadyTimeout: the revision activated again did not get ready; the traffic did not move.
        :raises ArgumentError: when an argument has the wrong type or value (the message names it).
        """
        check_number("AzureProject.rollback", "timeout", timeout)
        check_callback("AzureProject.rollback", "on_event", on_event)
        with translated("roll back"):
            return rollout_op.rollback(self.context, self._scope, timeout=timeout, on_event=on_event)

    def deploy_preview(self, *, adapter: str | os.PathLike[str] | None = None, adapter_name: str | None = None,
                       delete: bool = False) -> SyncSummary:
        """What :meth:`deploy` would upload and delete (and the user's start commands). Writes nothing.

        :raises AzureError: nothing provisioned, or the share cannot be reached.
        :raises ArgumentError: when ``adapter`` is no path or ``delete`` no bool.
        """
        folder = check_optional_path("AzureProject.deploy_preview", "adapter", adapter)
        check_type("AzureProject.deploy_preview", "delete", delete, bool, "a bool")
        with translated("read the file share"):
            return deploy_op.preview(self.context, self._scope, adapter=folder, delete=delete, adapter_name=adapter_name)

    def status(self, *, ask_ready: bool = True) -> EndpointStatus:
        """The app's provisioning and running state, its serving revision and replicas, GPU profile,
        scale limits, endpoint, and whether ``/ready`` answers (a value with ``to_json`` and ``_repr_html_``).

        :raises AzureError: nothing provisioned, or the app is missing.
        :raises ArgumentError: when ``ask_ready`` is no bool.
        """
        check_type("AzureProject.status", "ask_ready", ask_ready, bool, "a bool")
        with translated("read the endpoint's status"):
            return status_op.status(self.context, self._scope, ask_ready=ask_ready)

    def logs(self, *, follow: bool = False, tail: int = 20, system: bool = False,
             on_event: EventCallback | None = None) -> Iterator[str]:
        """The container's console log lines (or the app's system events with ``system``).

        With ``follow`` the iterator goes on until the caller stops; a dropped stream is reopened
        (an ``EventKind.RECONNECT`` event to ``on_event`` says why).

        :param tail: lines of history first, 0 to 300 (the log stream's limit).
        :raises AzureError: nothing provisioned, the app is missing or has no replica, or the stream keeps failing.
        :raises ArgumentError: when an argument has the wrong type or value (the message names it).
        """
        fn = "AzureProject.logs"
        check_type(fn, "follow", follow, bool, "a bool")
        check_number(fn, "tail", tail, maximum=MAX_TAIL, integer=True)
        check_type(fn, "system", system, bool, "a bool")
        check_callback(fn, "on_event", on_event)
        with translated("read the logs"):
            lines = logs_op.logs(self.context, self._scope, follow=follow, tail=tail, system=system, on_event=on_event)
        return translated_iterator(lines, "read the logs")

    def destroy_plan(self) -> TeardownPlan:
        """What :meth:`destroy` would delete and keep, and why. Deletes nothing.

        :raises AzureError: when Azure fails to answer.
        """
        with translated("plan the teardown"):
            return destroy_op.destroy_plan(self.context, self._scope)

    def destroy(self, *, confirm: ConfirmCallback | None = None,
                on_event: EventCallback | None = None) -> DestroyResult:
        """Delete what azinfer created for inference (app first) and nothing else; clear the config's owned keys.

        A reused resource is never deleted, nor the fine-tuning share. A second run finds nothing to do.

        :param confirm: called with a :class:`~azinfer.azure.Question` (its ``subject`` the
            :class:`TeardownPlan`) when something would be deleted; ``False`` returns a result with ``declined=True``.
        :param on_event: called with each resource (``EventKind.RESOURCE``, state ``deleting`` / ``deleted``).
        :raises AzureError: when Azure fails to answer.
        :raises ArgumentError: when a callback is not callable.
        """
        check_callback("AzureProject.destroy", "confirm", confirm)
        check_callback("AzureProject.destroy", "on_event", on_event)
        return destroy_op.destroy(self.context, self._scope, confirm=confirm, on_event=on_event)


def _check_inventory(function: str, inventory: object) -> None:
    if inventory is not None:
        check_type(function, "inventory", inventory, InMemoryInventory,
                   "an InMemoryInventory (AzureProject.inventory()) or None")
