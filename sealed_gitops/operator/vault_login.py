"""How the operator gets a KeyRing's Vault client: a tenant's token, or its own Kubernetes login.

Why a module of its own: this is the one place where the operator hands a credential to a server
named in a custom resource, so the rules that keep that safe sit together and apart from the
KeyRing loop (``operator/keyring.py``) that merely uses the client:

- the operator's own service-account JWT (Kubernetes auth) only goes to an address in
  ``settings.vault_addresses``; an empty list refuses it everywhere, since a tenant writes
  ``spec.vault.address`` and must not be able to collect the operator's token;
- a tenant's token from a Secret in its own namespace may go anywhere unless that list is set;
- Kubernetes-auth logins are cached per operator and renewed after :data:`RENEW_FRACTION` of
  their lease (as Vault Agent does), re-reading the JWT file each time because kubelet rotates
  projected tokens; a cached client therefore never carries an expired token.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from sealed_gitops.errors import ConfigError
from sealed_gitops.keys.key_store import vault_client, vault_session
from sealed_gitops.keys.vault import normalize_address
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.resources import read_secret_data

__all__ = [
    "JWT_FILE_ENV",
    "RENEW_FRACTION",
    "SERVICE_ACCOUNT_TOKEN",
    "keyring_vault_client",
    "kubernetes_login",
]

#: Where a pod finds its service account token (for Vault's Kubernetes auth).
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105
#: Environment variable naming another token file (an operator run outside a pod, tests).
JWT_FILE_ENV = "SEALED_GITOPS_VAULT_JWT_FILE"
#: Part of a Kubernetes-auth token's lease after which the operator logs in again (as Vault
#: Agent renews at about two thirds), so a cached client never carries an expired token.
RENEW_FRACTION = 2 / 3

_login_lock = threading.Lock()
#: per operator: (address, role, mount) -> (logged-in client, monotonic time to log in again)
_Login = tuple[Any, float]
_logins: weakref.WeakKeyDictionary[OperatorContext, dict[tuple[str, str, str], _Login]] = (
    weakref.WeakKeyDictionary()
)


def _allowed(ctx: OperatorContext, address: str) -> bool:
    listed = {normalize_address(a) for a in ctx.settings.vault_addresses}
    return normalize_address(address) in listed


def kubernetes_login(
    ctx: OperatorContext, address: str, *, role: str, mount: str
) -> tuple[Any, float]:
    """A client logged in with the operator's own JWT, reused until its lease is 2/3 spent."""
    key = (normalize_address(address), role, mount)
    with _login_lock:
        hit = _logins.get(ctx, {}).get(key)
    if hit is not None and time.monotonic() < hit[1]:
        return hit
    # Never from the spec: a tenant must not choose which operator file is sent to Vault.
    jwt_path = os.environ.get(JWT_FILE_ENV) or SERVICE_ACCOUNT_TOKEN
    try:
        with open(jwt_path, encoding="utf-8") as handle:
            jwt = handle.read().strip()  # read each time: kubelet rotates projected tokens
    except OSError as exc:
        raise ConfigError(f"cannot read the service account token {jwt_path}") from exc
    started = time.monotonic()
    session = vault_session(address, kubernetes_role=role, jwt=jwt, mount=mount)
    lease = session.lease_seconds
    renew_at = started + lease * RENEW_FRACTION if lease else float("inf")
    with _login_lock:
        _logins.setdefault(ctx, {})[key] = (session.client, renew_at)
    return session.client, renew_at


def keyring_vault_client(
    ctx: OperatorContext, namespace: str, vault: Mapping[str, Any]
) -> tuple[Any, float]:
    """The KeyRing's Vault client and the monotonic time it must be replaced by (inf: never).

    The operator's own credential (Kubernetes auth) only goes to an address in
    ``settings.vault_addresses``; a tenant's token from its own Secret may go anywhere unless
    that list is set (then only there too).
    """
    address = str(vault.get("address") or "")
    if not address:
        raise ConfigError("spec.vault.address is empty")
    auth = vault.get("auth") or {}
    token_ref = auth.get("tokenSecretRef") or {}
    if token_ref.get("name"):
        if ctx.settings.vault_addresses and not _allowed(ctx, address):
            raise ConfigError(
                f"spec.vault.address {address} is not one of the operator's Vault addresses "
                f"({', '.join(ctx.settings.vault_addresses)})"
            )
        data, _ = read_secret_data(
            ctx.client, namespace, str(token_ref["name"]), purpose="Vault token"
        )
        token = data.get(str(token_ref.get("key") or "token"))
        if not token:
            raise ConfigError(f"Secret {namespace}/{token_ref['name']} has no Vault token entry")
        return vault_client(address, token=token.decode().strip()), float("inf")
    kube = auth.get("kubernetes") or {}
    if kube.get("role"):
        if not _allowed(ctx, address):
            raise ConfigError(
                f"Kubernetes auth to {address} refused: the operator sends its own "
                "service-account token only to the Vault addresses it was started with "
                f"(--vault-address: {', '.join(ctx.settings.vault_addresses) or 'none'})"
            )
        return kubernetes_login(
            ctx, address, role=str(kube["role"]), mount=str(kube.get("mountPath") or "kubernetes")
        )
    raise ConfigError("spec.vault.auth needs tokenSecretRef or kubernetes.role")
