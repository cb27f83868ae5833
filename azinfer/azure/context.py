"""One value every Azure operation takes: where Azure is, who signs in, the SDK clients, and how to wait.

:class:`AzureContext` holds the target (cloud or custom ARM endpoint), the
credential, the subscription, the SDK clients (built once, on first use, while
the credential's first token is fetched), the poll interval, what plain HTTPS
calls trust, the keyword arguments for SDK clients, and the clock. It is also
the seam under the operations: the side effects they need (SDK clients, the
inventory, the share, ``GET /ready``, the smoke test's chat completion, the log stream, sleeping) go through it,
so a test can hand an operation a context of its own making.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import TYPE_CHECKING, Any

from azinfer.azure.app import check_ready
from azinfer.azure.clients import AzureClients, AzureTarget, check_credential, default_credential
from azinfer.azure.inventory import read_inventory
from azinfer.azure.logstream import log_lines
from azinfer.azure.share import ShareSync, open_share
from azinfer.azure.smoke import SmokeTest, smoke_test

if TYPE_CHECKING:  # pragma: no cover
    from azure.core.credentials import TokenCredential

    from azinfer.azure.app import Verify
    from azinfer.inventory import InMemoryInventory

__all__ = ["AzureContext", "trusted"]


def trusted(client_kwargs: Mapping[str, Any]) -> Verify:
    """What plain HTTPS calls trust: the SDK's ``connection_verify``, else ``REQUESTS_CA_BUNDLE``, else the default."""
    import ssl

    verify = client_kwargs.get("connection_verify")
    if verify is None:
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or True
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    if isinstance(verify, ssl.SSLContext):
        return verify
    return bool(verify)


class AzureContext:
    """Azure as the operations see it; built once (by :class:`~azinfer.azure.AzureProject`) and passed to each.

    :param target: where ARM and the sign-in authority are.
    :param subscription_id: the subscription the clients work in.
    :param credential: any ``TokenCredential``; ``None``: ``DefaultAzureCredential`` for the target.
    :param credential_timeout: seconds to wait for the credential's first token.
    :param poll_interval: seconds between polls of Azure's state.
    :param client_kwargs: passed to every SDK client (retry, transport and TLS settings).
    :param clock: monotonic seconds (deadlines); :param sleep: waits between polls.
    """

    def __init__(self, target: AzureTarget, subscription_id: str, *, credential: TokenCredential | None = None,
                 credential_timeout: float = 30.0, poll_interval: float = 2.0,
                 client_kwargs: Mapping[str, Any] | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.target = target
        self.subscription_id = subscription_id
        self.poll_interval = poll_interval
        self.clock = clock
        self.sleep = sleep
        self._credential = credential
        self._credential_timeout = credential_timeout
        self._client_kwargs = dict(client_kwargs or {})

    @property
    def client_kwargs(self) -> dict[str, Any]:
        """The keyword arguments every SDK client gets (transport, retries, TLS trust)."""
        return dict(self._client_kwargs)

    @cached_property
    def clients(self) -> AzureClients:
        """The SDK clients (the credential is checked on first use).

        :raises CredentialError: when no credential gives a token; the message says how to sign in.
        """
        credential = self._credential or default_credential(self.target)
        # Sign in while the SDK clients are imported and built: two waits become one.
        with ThreadPoolExecutor(max_workers=1) as pool:
            signed_in = pool.submit(check_credential, credential, self.target, timeout=self._credential_timeout)
            clients = AzureClients(credential, self.subscription_id, self.target, **self._client_kwargs).build()
            signed_in.result()
        return clients

    @cached_property
    def verify(self) -> Verify:
        """What plain HTTPS calls (``/ready``, the log stream) trust: the same as the SDK clients."""
        return trusted(self._client_kwargs)

    def inventory(self, resource_group: str) -> InMemoryInventory:
        """A snapshot of the resource group."""
        return read_inventory(self.clients, resource_group)

    def share_sync(self, resource_group: str, account: str, share: str) -> ShareSync:
        """The storage account's file share, ready to sync (URL and key from ARM)."""
        return open_share(self.clients, resource_group, account, share, **self._client_kwargs)

    def check_ready(self, url: str, api_key: str | None, *, timeout: float = 10.0) -> tuple[bool, str]:
        """``GET <url>/ready`` with the key: (answered 200, what it answered in words)."""
        return check_ready(url, api_key, verify=self.verify, timeout=timeout)

    def smoke_test(self, url: str, api_key: str | None, *, timeout: float = 120.0) -> SmokeTest:
        """One short chat completion through the endpoint (see :func:`azinfer.azure.smoke.smoke_test`)."""
        return smoke_test(url, api_key, verify=self.verify, timeout=timeout, clock=self.clock)

    def log_lines(self, resource_group: str, app: str, **options: Any) -> Iterator[str]:
        """The app's log stream (see :func:`azinfer.azure.logstream.log_lines` for the options)."""
        return log_lines(self.clients, resource_group, app, verify=self.verify, **options)
