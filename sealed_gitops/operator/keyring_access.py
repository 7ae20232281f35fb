"""Who may reach a KeyRing's private keys, and how: its key store, its Vault login, and Syncs.

Why a module of its own: this is where the operator hands a credential to a server named in a
custom resource, and where a Sync of one namespace is given another namespace's keys. The rules
that keep both safe sit together here, apart from the KeyRing loop (``operator/keyring.py``) that
generates, rotates, retires and deletes keys:

- the operator's own service-account JWT (Vault Kubernetes auth) only goes to an address in
  ``settings.vault_addresses``; an empty list refuses it everywhere, since a tenant writes
  ``spec.vault.address`` and must not be able to collect the operator's token;
- a tenant's token from a Secret in its own namespace may go anywhere unless that list is set;
- Kubernetes-auth logins are cached per operator and renewed after :data:`RENEW_FRACTION` of
  their lease (as Vault Agent does), re-reading the JWT file each time because kubelet rotates
  projected tokens, so a cached client never carries an expired token;
- a Sync gets a KeyRing's decryption keys only from the KeyRing's own namespace or one in its
  ``allowedNamespaces``, and a reference into another namespace only when the admin allows it
  (``settings.cross_namespace_refs``, or a KeyRing in ``settings.shared_keyring_namespaces``);
  the keys are cached until the key states change or the Vault login must be renewed;
- a KeyRing's Vault KV path is its own (derived from namespace and name) unless the admin's
  ``settings.vault_kv_path_prefixes`` allow the one it names, checked before any login: one
  operator identity serves every KeyRing, so Vault's policy cannot keep them apart.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from sealed_gitops.errors import ClusterError, ConfigError, FormatError, NoMatchingKey
from sealed_gitops.keys.cluster_keys import decrypting_keys, format_time, parse_time
from sealed_gitops.keys.key_store import KeyStore, SecretStore
from sealed_gitops.keys.vault import VaultUnwrapper
from sealed_gitops.keys.vault_addresses import normalize_address
from sealed_gitops.keys.vault_kv_store import (
    VaultKvStore,
    default_kv_path,
    kv_path_allowed,
    vault_session,
)
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.resources import get_object, read_secret_data
from sealed_gitops.operator.specs import KeyRingRef, KeyRingSpec, VaultSpec
from sealed_gitops.render.binding import NamespaceBinding
from sealed_gitops.render.decrypt import DecryptionKeys

__all__ = [
    "JWT_FILE_ENV",
    "RENEW_FRACTION",
    "SERVICE_ACCOUNT_TOKEN",
    "forget",
    "keyring_decryption_keys",
    "kubernetes_login",
    "store_for",
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


def _vault_client(ctx: OperatorContext, namespace: str, vault: VaultSpec) -> tuple[Any, float]:
    """The KeyRing's Vault client and the monotonic time it must be replaced by (inf: never).

    The operator's own credential (Kubernetes auth) only goes to an address in
    ``settings.vault_addresses``; a tenant's token from its own Secret may go anywhere unless
    that list is set (then only there too).
    """
    address = vault.address
    if not address:
        raise ConfigError("spec.vault.address is empty")
    if vault.token_secret:
        if ctx.settings.vault_addresses and not _allowed(ctx, address):
            raise ConfigError(
                f"spec.vault.address {address} is not one of the operator's Vault addresses "
                f"({', '.join(ctx.settings.vault_addresses)})"
            )
        # The name was checked when the spec was parsed: always the KeyRing's own namespace.
        data, _ = read_secret_data(ctx.client, namespace, vault.token_secret, purpose="Vault token")
        token = data.get(vault.token_key)
        if not token:
            raise ConfigError(f"Secret {namespace}/{vault.token_secret} has no Vault token entry")
        return vault_session(address, token=token.decode().strip()).client, float("inf")
    if vault.kubernetes_role:
        if not _allowed(ctx, address):
            raise ConfigError(
                f"Kubernetes auth to {address} refused: the operator sends its own "
                "service-account token only to the Vault addresses it was started with "
                f"(--vault-address: {', '.join(ctx.settings.vault_addresses) or 'none'})"
            )
        return kubernetes_login(
            ctx, address, role=vault.kubernetes_role, mount=vault.kubernetes_mount
        )
    raise ConfigError("spec.vault.auth needs tokenSecretRef or kubernetes.role")


# -- the KeyRing's own store -----------------------------------------------------------------------


def _kv_path(ctx: OperatorContext, ring: KeyRingSpec, vault: VaultSpec) -> str:
    """The KeyRing's KV path: its own (derived from namespace and name) unless the admin's
    ``vault_kv_path_prefixes`` allow the one it names. Checked before any login, so a KeyRing
    naming another's path never gets the operator's Vault identity (issue 11, finding 5)."""
    ns, name = ring.meta.namespace, ring.meta.name
    own = default_kv_path(namespace=ns, name=name)
    if vault.kv_path is None:
        return own
    prefixes = ctx.settings.vault_kv_path_prefixes
    if not kv_path_allowed(vault.kv_path, namespace=ns, name=name, prefixes=prefixes):
        raise ConfigError(
            f"spec.vault.kvPath {vault.kv_path[:120]!r} refused: a KeyRing keeps its keys at "
            f"its own path {own}"
            + (f" or below {', '.join(prefixes)}" if prefixes else "")
            + " (the operator's --vault-kv-path-prefix allows more)"
        )
    return vault.kv_path


def _store(ctx: OperatorContext, ring: KeyRingSpec) -> tuple[KeyStore, float]:
    """The KeyRing's key store and the monotonic time its credential must be renewed by."""
    namespace, name = ring.meta.namespace, ring.meta.name
    if ring.vault is not None:
        kv_path = _kv_path(ctx, ring, ring.vault)
        client, renew_at = _vault_client(ctx, namespace, ring.vault)
        store = VaultKvStore(client, kv_path=kv_path, address=ring.vault.address)
        return store, renew_at
    store_ = SecretStore(ctx.client, namespace=namespace, name=name, owner_uid=ring.uid)
    return store_, float("inf")


def store_for(ctx: OperatorContext, keyring: Mapping[str, Any]) -> KeyStore:
    """Where the KeyRing's private keys live (Secrets, or Vault KV v2 with a fresh login)."""
    return _store(ctx, KeyRingSpec.parse(keyring))[0]


# -- Syncs using a KeyRing -----------------------------------------------------------------------

_cache_lock = threading.Lock()
#: per operator: (namespace, name) -> (the key states the keys were built for, the keys, the
#: monotonic time they must be rebuilt by: a Kubernetes-auth Vault token's renewal time)
_Cached = tuple[tuple[tuple[str, str], ...], DecryptionKeys, float]
_caches: weakref.WeakKeyDictionary[OperatorContext, dict[tuple[str, str], _Cached]] = (
    weakref.WeakKeyDictionary()
)


def forget(ctx: OperatorContext, namespace: str, name: str) -> None:
    with _cache_lock:
        _caches.get(ctx, {}).pop((namespace, name), None)


def _check_reference(ctx: OperatorContext, sync_namespace: str, ref: KeyRingRef) -> None:
    """Refuse a reference into another namespace unless the admin allows it: all of them
    (``cross_namespace_refs``), or those to the admin's shared KeyRing namespaces."""
    if not ref.cross_namespace or ctx.settings.cross_namespace_refs:
        return
    if ref.namespace in ctx.settings.shared_keyring_namespaces:
        return
    raise ConfigError(
        f"spec.decryption.keyRingRef.namespace {ref.namespace}: cross-namespace references are "
        f"refused by the operator (--no-cross-namespace-refs); a Sync of {sync_namespace} may use "
        "KeyRings of its own namespace or of "
        f"{', '.join(ctx.settings.shared_keyring_namespaces) or 'no shared namespace'}"
    )


def keyring_decryption_keys(
    ctx: OperatorContext, sync_namespace: str, ref: KeyRingRef
) -> DecryptionKeys:
    """The keys of every non-retired key of the referenced KeyRing, if this namespace may use it.

    Refused with a :class:`ConfigError` naming both namespaces when the Sync's namespace is
    neither the KeyRing's own nor in its ``allowedNamespaces``, or when the reference crosses
    namespaces and the operator does not allow that; nothing is decrypted then.
    """
    _check_reference(ctx, sync_namespace, ref)
    namespace, name = ref.namespace, ref.name
    keyring = get_object(ctx.client, "KeyRing", namespace, name)
    if keyring is None:
        raise ConfigError(f"KeyRing {namespace}/{name} not found")
    spec = KeyRingSpec.parse(keyring)
    allowed = list(spec.allowed_namespaces)
    if sync_namespace != namespace and "*" not in allowed and sync_namespace not in allowed:
        raise ConfigError(
            f"KeyRing {namespace}/{name} does not serve namespace {sync_namespace}: only "
            f"{namespace} and its allowedNamespaces ({', '.join(allowed) or 'none'}) may use it"
        )
    # Read on every call, not cached with the keys: turning it on takes effect at once.
    binding = NamespaceBinding.parse(
        ((keyring.get("spec") or {}).get("sops") or {}).get("namespaceBinding"),
        what=f"KeyRing {namespace}/{name} spec.sops.namespaceBinding",
    )
    states = tuple(
        (str(k.get("fingerprint")), str(k.get("state")))
        for k in (keyring.get("status") or {}).get("keys") or []
    )
    with _cache_lock:
        cache = _caches.setdefault(ctx, {})
        hit = cache.get((namespace, name))
    if hit is not None and hit[0] == states and time.monotonic() < hit[2]:
        return dataclasses.replace(hit[1], sops_binding=binding)
    store, renew_at = _store(ctx, spec)
    keys = store.load()
    if not keys:
        raise ConfigError(f"KeyRing {namespace}/{name} has no keys yet")
    ring, sealing = decrypting_keys(keys)
    if isinstance(store, VaultKvStore):
        # The KeyRing's Vault identity also opens hc_vault (transit) stanzas, but only for
        # its own Vault: a file must not make the operator send the token anywhere else.
        ring.add(
            VaultUnwrapper(token=str(store.client.token), allowed_addresses=[store.address]),
            source=f"Vault transit of KeyRing {namespace}/{name}",
        )
    found = DecryptionKeys(sops=ring, sealing=sealing, sops_binding=binding)
    with _cache_lock:
        _caches.setdefault(ctx, {})[(namespace, name)] = (states, found, renew_at)
    return found


def explain_retired(ctx: OperatorContext, ref: KeyRingRef, exc: NoMatchingKey) -> NoMatchingKey:
    """``exc`` with the cause named when a file was encrypted for a key this KeyRing retired:
    "no available key" alone sent people looking for a missing Secret (issue 15: a key retired
    after ``reencrypt`` was run but not committed)."""
    try:
        keyring = get_object(ctx.client, "KeyRing", ref.namespace, ref.name)
    except ClusterError:
        return exc  # only an explanation: the error itself must still reach the status
    notes = []
    for key in ((keyring or {}).get("status") or {}).get("keys") or ():
        if not isinstance(key, Mapping):
            continue
        recipient = str(key.get("ageRecipient") or "")
        # A SOPS file names its age recipients; a SealedSecret value its key-id hint.
        ours = (recipient and recipient in exc.reason) or (
            exc.key_id and exc.key_id == key.get("fingerprint")
        )
        if key.get("state") in ("retired", "deleted") and ours:
            # status is writable by others: only a well-formed time reaches the Sync's status
            try:
                when = format_time(parse_time(str(key.get("retired") or "")))
            except FormatError:
                when = "an unknown time"
            notes.append(
                f"key {str(key.get('fingerprint'))[:16]} of KeyRing {ref.namespace}/{ref.name}, "
                f"which this file is encrypted for, was retired at {when}"
            )
    if not notes:
        return exc
    return NoMatchingKey(
        f"{exc.reason}; {'; '.join(notes)}: re-encrypt the file for the active key "
        "(sealed-gitops reencrypt, then commit and push)",
        file=exc.file,
        key_id=exc.key_id,
        location=exc.location,
    )
