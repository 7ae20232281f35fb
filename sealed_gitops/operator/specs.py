"""The Repository, Sync and KeyRing specs as typed, checked values, parsed once on arrival.

Why: ARCHITECTURE.md's "parse, don't pass dicts". Issue 11 (finding 1) showed what a raw dict
costs: a reference name such as ``../../team-a/secrets/sops-keys`` travelled from the spec to an
API path unchecked, and the HTTP client normalised it into another tenant's Secret. Here every
reference, name, namespace, duration and Vault path of a spec is checked where the reconcilers
receive the object (``plan/names`` for names: what Kubernetes itself admits), and the code below
takes these models. A spec that fails a check is refused as a whole with a
:class:`~sealed_gitops.plan.names.InvalidName` (or another ConfigError) naming the field, before
any request is sent with it.

Only fields the operator uses are modelled; the ones the pipeline reads from the raw spec (path,
failure policy, allowPlainSecrets) keep their existing readers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sealed_gitops.errors import ConfigError
from sealed_gitops.operator.settings import parse_duration
from sealed_gitops.operator.specs_post_build import (
    KubeConfigRef,
    PostBuildSpec,
    parse_kube_config,
    parse_post_build,
)
from sealed_gitops.plan import names

__all__ = [
    "KeyRingRef",
    "KeyRingSpec",
    "Metadata",
    "RepositorySpec",
    "SyncSpec",
    "VaultSpec",
]


def _block(spec: Mapping[str, Any], key: str, *, field: str) -> Mapping[str, Any]:
    value = spec.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{field}.{key} must be an object")
    return value


def _ref_name(block: Mapping[str, Any], *, field: str) -> str | None:
    """``block.name`` checked as an object name; None when the block names nothing."""
    value = block.get("name")
    if value is None or value == "":
        return None
    return names.object_name(value, field=f"{field}.name")


@dataclass(frozen=True)
class Metadata:
    """Where an object lives; checked too (the API server admits only such names, but the
    object may have come from a cache or a test)."""

    namespace: str
    name: str

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> Metadata:
        meta = obj.get("metadata") or {}
        return cls(
            namespace=names.namespace(meta.get("namespace"), field="metadata.namespace"),
            name=names.object_name(meta.get("name"), field="metadata.name"),
        )


# -- Repository ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepositorySpec:
    """``Repository.spec``: where the Git remote is and which Secrets (in its own namespace)
    hold the credentials and signers' keys."""

    meta: Metadata
    url: str
    secret_name: str | None
    #: None: no ``verify`` block (verification off); else the block's mode (default HEAD)
    verify_mode: str | None
    verify_secret_name: str | None
    ref: Mapping[str, Any] | None
    interval: float
    #: seconds, or None for the operator's default
    timeout: float | None
    suspend: bool

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> RepositorySpec:
        meta = Metadata.parse(obj)
        spec = obj.get("spec") or {}
        verify = spec.get("verify")
        verify_block = _block(spec, "verify", field="spec") if verify is not None else {}
        timeout_text = spec.get("timeout")
        return cls(
            meta=meta,
            url=str(spec.get("url") or ""),
            secret_name=_ref_name(_block(spec, "secretRef", field="spec"), field="spec.secretRef"),
            verify_mode=None if verify is None else str(verify_block.get("mode") or "HEAD"),
            verify_secret_name=_ref_name(
                _block(verify_block, "secretRef", field="spec.verify"),
                field="spec.verify.secretRef",
            ),
            ref=spec.get("ref"),
            interval=parse_duration(spec.get("interval"), default=60.0, what="spec.interval"),
            timeout=(
                None
                if timeout_text in (None, "")
                else parse_duration(str(timeout_text), default=0.0, what="spec.timeout")
            ),
            suspend=bool(spec.get("suspend")),
        )


# -- Sync ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRingRef:
    """``spec.decryption.keyRingRef``: the KeyRing's namespace (the Sync's own when not given)
    and whether the reference crosses into another namespace."""

    namespace: str
    name: str
    cross_namespace: bool


@dataclass(frozen=True)
class SyncSpec:
    meta: Metadata
    repository: str
    interval: float
    retry_interval: float
    target_namespace: str | None
    service_account: str | None
    #: ``spec.decryption.secretRef.name``: a Secret in the Sync's own namespace
    decryption_secret: str | None
    keyring: KeyRingRef | None
    suspend: bool
    prune: bool
    #: ``spec.postBuild``: variables substituted into the build (:mod:`.specs_post_build`)
    post_build: PostBuildSpec | None = None
    #: ``spec.kubeConfig.secretRef``: apply to the remote cluster that Secret's kubeconfig names
    kube_config: KubeConfigRef | None = None

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> SyncSpec:
        meta = Metadata.parse(obj)
        spec = obj.get("spec") or {}
        repository = _ref_name(
            _block(spec, "repositoryRef", field="spec"), field="spec.repositoryRef"
        )
        if repository is None:
            raise ConfigError("spec.repositoryRef.name is empty")
        decryption = _block(spec, "decryption", field="spec")
        keyring = None
        ring = _block(decryption, "keyRingRef", field="spec.decryption")
        if ring:
            ring_name = _ref_name(ring, field="spec.decryption.keyRingRef")
            if ring_name is None:
                raise ConfigError("spec.decryption.keyRingRef.name is empty")
            ring_ns = ring.get("namespace")
            ring_ns = (
                meta.namespace
                if ring_ns in (None, "")
                else names.namespace(ring_ns, field="spec.decryption.keyRingRef.namespace")
            )
            keyring = KeyRingRef(
                namespace=ring_ns, name=ring_name, cross_namespace=ring_ns != meta.namespace
            )
        target = spec.get("targetNamespace")
        account = spec.get("serviceAccountName")
        return cls(
            meta=meta,
            repository=repository,
            interval=parse_duration(spec.get("interval"), default=300.0, what="spec.interval"),
            retry_interval=parse_duration(
                spec.get("retryInterval"), default=30.0, what="spec.retryInterval"
            ),
            target_namespace=(
                None if not target else names.namespace(target, field="spec.targetNamespace")
            ),
            service_account=(
                None if not account else names.object_name(account, field="spec.serviceAccountName")
            ),
            # A namespace in secretRef is not part of the schema (the API server drops it):
            # the decryption Secret is always the Sync's own namespace's.
            decryption_secret=_ref_name(
                _block(decryption, "secretRef", field="spec.decryption"),
                field="spec.decryption.secretRef",
            ),
            keyring=keyring,
            suspend=bool(spec.get("suspend")),
            prune=bool(spec.get("prune", True)),
            post_build=parse_post_build(spec),
            kube_config=parse_kube_config(spec),
        )


# -- KeyRing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VaultSpec:
    address: str
    #: ``spec.vault.kvPath`` as written, or None (the path derived from namespace and name)
    kv_path: str | None
    token_secret: str | None
    token_key: str
    kubernetes_role: str | None
    kubernetes_mount: str

    @classmethod
    def parse(cls, vault: Mapping[str, Any]) -> VaultSpec:
        auth = _block(vault, "auth", field="spec.vault")
        token = _block(auth, "tokenSecretRef", field="spec.vault.auth")
        kube = _block(auth, "kubernetes", field="spec.vault.auth")
        kv_path = vault.get("kvPath")
        return cls(
            address=str(vault.get("address") or ""),
            kv_path=str(kv_path) if kv_path not in (None, "") else None,
            token_secret=_ref_name(token, field="spec.vault.auth.tokenSecretRef"),
            token_key=str(token.get("key") or "token"),
            kubernetes_role=str(kube["role"]) if kube.get("role") else None,
            kubernetes_mount=str(kube.get("mountPath") or "kubernetes"),
        )


@dataclass(frozen=True)
class KeyRingSpec:
    meta: Metadata
    uid: str | None
    backend: str
    vault: VaultSpec | None
    #: namespaces whose Syncs may use this KeyRing besides its own; "*" for all
    allowed_namespaces: tuple[str, ...]

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> KeyRingSpec:
        meta = Metadata.parse(obj)
        spec = obj.get("spec") or {}
        backend = str(spec.get("backend") or "kubernetes")
        if backend not in ("kubernetes", "vault"):
            raise ConfigError(f"spec.backend {backend!r} is not kubernetes or vault")
        allowed = tuple(
            a if a == "*" else names.namespace(a, field="spec.allowedNamespaces[]")
            for a in spec.get("allowedNamespaces") or ()
        )
        uid = (obj.get("metadata") or {}).get("uid")
        return cls(
            meta=meta,
            uid=str(uid) if uid else None,
            backend=backend,
            vault=VaultSpec.parse(_block(spec, "vault", field="spec"))
            if backend == "vault"
            else None,
            allowed_namespaces=allowed,
        )
