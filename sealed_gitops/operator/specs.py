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

import re
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
    "DELETION_POLICIES",
    "DependencyRef",
    "HealthCheckRef",
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


#: ``spec.deletionPolicy`` values, as Flux spells them; MirrorPrune (the default) follows prune.
DELETION_POLICIES = ("MirrorPrune", "Delete", "WaitForTermination", "Orphan")
#: Most entries of ``dependsOn`` / ``healthChecks`` (the CRD's maxItems says the same): each
#: entry costs a GET per reconcile, so a tenant cannot make one Sync cost thousands.
MAX_REFS = 100
_API_VERSION = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?v[0-9]+((alpha|beta)[0-9]+)?$")
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]{0,62}$")


@dataclass(frozen=True)
class DependencyRef:
    """One ``spec.dependsOn`` entry: a Sync that must be Ready first (namespace defaulted)."""

    namespace: str
    name: str

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class HealthCheckRef:
    """One ``spec.healthChecks`` entry: an object whose kstatus decides the Sync's readiness.
    ``namespace`` is the Sync's own when not given (ignored for a cluster-scoped kind)."""

    api_version: str
    kind: str
    namespace: str
    name: str


def _items(spec: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = spec.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_REFS:
        raise ConfigError(f"spec.{key} must be a list of at most {MAX_REFS} objects")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise ConfigError(f"spec.{key}[{index}] must be an object")
    return value


def _depends_on(spec: Mapping[str, Any], meta: Metadata) -> tuple[DependencyRef, ...]:
    refs: list[DependencyRef] = []
    for index, item in enumerate(_items(spec, "dependsOn")):
        field = f"spec.dependsOn[{index}]"
        name = names.object_name(item.get("name"), field=f"{field}.name")
        ns = item.get("namespace")
        ns = meta.namespace if ns in (None, "") else names.namespace(ns, field=f"{field}.namespace")
        if (ns, name) == (meta.namespace, meta.name):
            raise ConfigError(f"{field} names this Sync itself ({ns}/{name}): it would never run")
        if DependencyRef(ns, name) not in refs:
            refs.append(DependencyRef(ns, name))
    return tuple(refs)


def _health_checks(spec: Mapping[str, Any], meta: Metadata) -> tuple[HealthCheckRef, ...]:
    refs: list[HealthCheckRef] = []
    for index, item in enumerate(_items(spec, "healthChecks")):
        field = f"spec.healthChecks[{index}]"
        api_version, kind = item.get("apiVersion"), item.get("kind")
        if not isinstance(api_version, str) or not _API_VERSION.match(api_version):
            raise ConfigError(f"{field}.apiVersion must be GROUP/VERSION or v1, e.g. apps/v1")
        if not isinstance(kind, str) or not _KIND.match(kind):
            raise ConfigError(f"{field}.kind must be a kind such as Deployment")
        ns = item.get("namespace")
        refs.append(
            HealthCheckRef(
                api_version=api_version,
                kind=kind,
                namespace=(
                    meta.namespace
                    if ns in (None, "")
                    else names.namespace(ns, field=f"{field}.namespace")
                ),
                name=names.object_name(item.get("name"), field=f"{field}.name"),
            )
        )
    return tuple(refs)


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
    #: ``spec.dependsOn``: Syncs that must be Ready at their latest revision before this one runs
    depends_on: tuple[DependencyRef, ...] = ()
    #: ``spec.wait``: every applied object must be healthy (kstatus Current) for Ready=True
    wait: bool = False
    #: ``spec.healthChecks``: the objects that must be healthy (ignored when ``wait`` is on)
    health_checks: tuple[HealthCheckRef, ...] = ()
    #: ``spec.timeout`` in seconds: bounds apply plus the health checks (Flux: the interval)
    timeout: float = 300.0
    #: ``spec.deletionPolicy``: what deleting the Sync does to its inventory
    deletion_policy: str = "MirrorPrune"
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
        interval = parse_duration(spec.get("interval"), default=300.0, what="spec.interval")
        deletion_policy = spec.get("deletionPolicy") or "MirrorPrune"
        if deletion_policy not in DELETION_POLICIES:
            raise ConfigError(
                f"spec.deletionPolicy {str(deletion_policy)[:64]!r} is not one of "
                + ", ".join(DELETION_POLICIES)
            )
        timeout = spec.get("timeout")
        return cls(
            meta=meta,
            repository=repository,
            interval=interval,
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
            depends_on=_depends_on(spec, meta),
            wait=bool(spec.get("wait")),
            health_checks=_health_checks(spec, meta),
            timeout=parse_duration(
                None if timeout is None else str(timeout)[:64],
                default=interval,
                what="spec.timeout",
            ),
            deletion_policy=str(deletion_policy),
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
