"""The Microsoft Entra ID endpoints MSAL (and so azure-identity) calls, and bearer-token checks.

MSAL, for an authority host it does not know, asks
``https://login.microsoftonline.com/common/discovery/instance`` unless the
credential is built with ``disable_instance_discovery=True``; with it, MSAL
reads ``{host}/{tenant}/v2.0/.well-known/openid-configuration`` and then POSTs
to the ``token_endpoint`` found there.  Both are served here; the instance
discovery document is served too, for clients pointed at it explicitly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

__all__ = ["Identity", "AuthResult"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class AuthResult:
    status: int
    body: dict[str, Any]


@dataclass
class Identity:
    tenant_id: str = "72f988bf-0000-4000-8000-000000000001"
    client_id: str = "11111111-2222-4333-8444-555555555555"
    client_secret: str = "emulator-secret"
    token_lifetime: int = 3600
    issued: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> claims
    token_requests: int = 0

    def metadata(self, base_url: str, tenant: str) -> dict[str, Any]:
        root = f"{base_url}/{tenant}"
        return {
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base_url}/{tenant}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base_url}/{self.tenant_id}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{base_url}/oidc/userinfo",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "tid", "oid"],
            "kerberos_endpoint": f"{root}/kerberos",
            "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }

    def instance_discovery(self, base_url: str, host: str) -> dict[str, Any]:
        return {
            "tenant_discovery_endpoint": f"{base_url}/{self.tenant_id}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }

    def token(self, tenant: str, form_body: bytes, headers: dict[str, str]) -> AuthResult:
        """The token endpoint: client-credentials grant with a client secret."""
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(form_body.decode("utf-8", "replace")).items()}
        client_id = form.get("client_id")
        secret = form.get("client_secret")
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            raw = base64.b64decode(auth[6:]).decode()
            client_id, _, secret = raw.partition(":")
        if form.get("grant_type") != "client_credentials":
            return AuthResult(400, _aad_error("unsupported_grant_type", "AADSTS70003",
                                              f"The grant type {form.get('grant_type')!r} is not supported here."))
        if tenant.lower() not in (self.tenant_id.lower(), "organizations", "common"):
            return AuthResult(400, _aad_error("invalid_request", "AADSTS90002",
                                              f"Tenant '{tenant}' not found."))
        if client_id != self.client_id:
            return AuthResult(400, _aad_error("unauthorized_client", "AADSTS700016",
                                              f"Application with identifier '{client_id}' was not found."))
        if secret != self.client_secret:
            return AuthResult(401, _aad_error("invalid_client", "AADSTS7000215",
                                              "Invalid client secret provided."))
        scope = form.get("scope", "")
        resource = scope.split()[0].removesuffix("/.default") if scope else "https://management.azure.com"
        now = int(time.time())
        claims = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "appid": client_id,
            "oid": str(uuid.UUID(bytes=hashlib.sha256(client_id.encode()).digest()[:16], version=4)),
            "tid": self.tenant_id,
            "idtyp": "app",
            "uti": uuid.uuid4().hex,
        }
        header = {"typ": "JWT", "alg": "none", "kid": "emulator"}
        token = ".".join([_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()),
                          _b64(b"emulator-signature")])
        self.issued[token] = claims
        return AuthResult(200, {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": token,
        })

    def check_bearer(self, authorization: str | None) -> str | None:
        """None if the header carries a live token issued here; otherwise why not."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return "AuthenticationFailed: the request has no bearer token"
        token = authorization[7:].strip()
        claims = self.issued.get(token)
        if claims is None:
            return "InvalidAuthenticationToken: the access token is not valid"
        if claims["exp"] < time.time():
            return "ExpiredAuthenticationToken: the access token has expired"
        return None


def _aad_error(error: str, code: str, description: str) -> dict[str, Any]:
    return {
        "error": error,
        "error_description": f"{code}: {description} Trace ID: {uuid.uuid4()}",
        "error_codes": [int(code[6:])],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
    }
