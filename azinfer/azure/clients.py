"""Clouds, credentials and the official Azure SDK clients azinfer uses.

Library code never builds a credential behind the caller's back: pass any
``TokenCredential``; :func:`default_credential` is what the CLI uses
(``DefaultAzureCredential`` for the chosen cloud, no browser pop-up).
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Any

from azinfer._arguments import check_member, check_optional_text, check_text, check_type
from azinfer.errors import ArgumentError, CredentialError

if TYPE_CHECKING:  # pragma: no cover - the SDK is imported when a client is first built
    from azure.core.credentials import TokenCredential
    from azure.mgmt.appcontainers import ContainerAppsAPIClient
    from azure.mgmt.loganalytics import LogAnalyticsManagementClient
    from azure.mgmt.resource.deployments import DeploymentsMgmtClient
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.mgmt.storage import StorageManagementClient

__all__ = ["Cloud", "AzureTarget", "target_for", "default_credential", "check_credential", "AzureClients",
           "SIGN_IN_HELP", "enum_text"]

SIGN_IN_HELP = (
    "sign in with one of: 'az login' (Azure CLI); the environment variables AZURE_TENANT_ID, AZURE_CLIENT_ID "
    "and AZURE_CLIENT_SECRET (a service principal); a managed identity when running in Azure"
)


class Cloud(str, Enum):
    """The Azure cloud to talk to."""

    PUBLIC = "public"
    """Azure (management.azure.com)."""
    CHINA = "china"
    """Azure operated by 21Vianet (management.chinacloudapi.cn)."""
    US_GOVERNMENT = "usgovernment"
    """Azure Government (management.usgovcloudapi.net)."""


_ENDPOINTS = {
    Cloud.PUBLIC: ("https://management.azure.com", "https://login.microsoftonline.com"),
    Cloud.CHINA: ("https://management.chinacloudapi.cn", "https://login.chinacloudapi.cn"),
    Cloud.US_GOVERNMENT: ("https://management.usgovcloudapi.net", "https://login.microsoftonline.us"),
}


@dataclass(frozen=True)
class AzureTarget:
    """Where ARM and the sign-in authority are."""

    arm_endpoint: str
    authority_host: str

    @property
    def scope(self) -> str:
        """The token scope for ARM."""
        return self.arm_endpoint.rstrip("/") + "/.default"


def target_for(cloud: Cloud | str = Cloud.PUBLIC, *, arm_endpoint: str | None = None,
               authority_host: str | None = None) -> AzureTarget:
    """The endpoints of a cloud, or of a custom ARM endpoint (Azure Stack, an emulator).

    :raises ArgumentError: for an unknown cloud name, or an endpoint that is no ``https://`` URL.
    """
    arm, authority = _ENDPOINTS[check_member("target_for", "cloud", cloud, Cloud)]
    check_endpoint("target_for", "arm_endpoint", arm_endpoint)
    check_endpoint("target_for", "authority_host", authority_host)
    return AzureTarget((arm_endpoint or arm).rstrip("/"), (authority_host or authority).rstrip("/"))


def default_credential(target: AzureTarget) -> TokenCredential:
    """``DefaultAzureCredential`` for the target's authority, never opening a browser."""
    from azure.identity import DefaultAzureCredential

    known = target.authority_host in {authority for _, authority in _ENDPOINTS.values()}
    # MSAL would ask login.microsoftonline.com about any other authority (Azure Stack, ADFS, an emulator).
    return DefaultAzureCredential(
        authority=target.authority_host,
        exclude_interactive_browser_credential=True,
        disable_instance_discovery=not known,
    )


def check_credential(credential: TokenCredential, target: AzureTarget, *, timeout: float = 30.0) -> None:
    """Get one token now, so a missing sign-in fails fast and clearly instead of mid-way.

    :raises CredentialError: when no token can be had within ``timeout`` seconds; the
        message lists the ways to sign in.
    """
    from azure.core.exceptions import AzureError as SdkError

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    future = pool.submit(credential.get_token, target.scope)
    try:
        future.result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        raise CredentialError(f"no Azure credential answered within {timeout:.0f} s; {SIGN_IN_HELP}") from None
    except SdkError as exc:  # ClientAuthenticationError, or the authority could not be reached
        first = (str(exc.message or exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CredentialError(f"no usable Azure credential ({first}); {SIGN_IN_HELP}") from None
    finally:
        pool.shutdown(wait=False)


def check_endpoint(function: str, argument: str, value: object) -> str | None:
    """``value`` when it is an ``https://`` URL (tokens never travel over plain HTTP) or ``None``.

    :raises ArgumentError: otherwise.
    """
    url = check_optional_text(function, argument, value)
    if url is not None and not url.lower().startswith("https://"):
        raise ArgumentError(function, argument, "an https:// URL or None", value)
    return url


def check_credential_argument(function: str, credential: object) -> None:
    """Check that ``credential`` looks like a ``TokenCredential`` (it has ``get_token``).

    :raises ArgumentError: otherwise.
    """
    if not callable(getattr(credential, "get_token", None)):
        raise ArgumentError(function, "credential", "a TokenCredential (e.g. azure.identity.DefaultAzureCredential)",
                            credential)


def enum_text(value: str | Enum | None) -> str | None:
    """The text of a field the SDK types ``Union[str, SomeEnum]``: an enum member's value, or the string."""
    return str(value.value) if isinstance(value, Enum) else value


class AzureClients:
    """The official SDK clients for one subscription, built on first use and shared.

    :raises ArgumentError: when ``credential`` has no ``get_token``, ``subscription_id`` is no
        non-empty string or ``target`` no :class:`AzureTarget`.
    """

    def __init__(self, credential: TokenCredential, subscription_id: str, target: AzureTarget,
                 **client_kwargs: Any) -> None:
        check_credential_argument("AzureClients", credential)
        check_text("AzureClients", "subscription_id", subscription_id)
        check_type("AzureClients", "target", target, AzureTarget, "an AzureTarget (azinfer.azure.target_for)")
        self.credential = credential
        self.subscription_id = subscription_id
        self.target = target
        self._kwargs: dict[str, Any] = {"base_url": target.arm_endpoint, "credential_scopes": [target.scope],
                                        **client_kwargs}

    def scope(self, resource_group: str | None = None) -> str:
        """The ARM id of the subscription, or of one of its resource groups (where a role is granted)."""
        subscription = f"/subscriptions/{self.subscription_id}"
        return subscription if resource_group is None else f"{subscription}/resourceGroups/{resource_group}"

    def build(self) -> AzureClients:
        """Build every client now (their imports cost about 0.1 s), before threads share them."""
        _ = (self.resources, self.deployments, self.apps, self.storage, self.logs)
        return self

    @cached_property
    def resources(self) -> ResourceManagementClient:
        """``azure.mgmt.resource.resources.ResourceManagementClient``."""
        from azure.mgmt.resource.resources import ResourceManagementClient

        return ResourceManagementClient(self.credential, self.subscription_id, **self._kwargs)

    @cached_property
    def deployments(self) -> DeploymentsMgmtClient:
        """``azure.mgmt.resource.deployments.DeploymentsMgmtClient``."""
        from azure.mgmt.resource.deployments import DeploymentsMgmtClient

        return DeploymentsMgmtClient(self.credential, self.subscription_id, **self._kwargs)

    @cached_property
    def apps(self) -> ContainerAppsAPIClient:
        """``azure.mgmt.appcontainers.ContainerAppsAPIClient``."""
        from azure.mgmt.appcontainers import ContainerAppsAPIClient

        return ContainerAppsAPIClient(self.credential, self.subscription_id, **self._kwargs)

    @cached_property
    def storage(self) -> StorageManagementClient:
        """``azure.mgmt.storage.StorageManagementClient``."""
        from azure.mgmt.storage import StorageManagementClient

        return StorageManagementClient(self.credential, self.subscription_id, **self._kwargs)

    @cached_property
    def logs(self) -> LogAnalyticsManagementClient:
        """``azure.mgmt.loganalytics.LogAnalyticsManagementClient``."""
        from azure.mgmt.loganalytics import LogAnalyticsManagementClient

        return LogAnalyticsManagementClient(self.credential, self.subscription_id, **self._kwargs)
