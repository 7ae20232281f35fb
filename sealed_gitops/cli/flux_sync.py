"""Flux ``Kustomization`` -> ``Sync``, for ``import flux``.

Why a module of its own: a Kustomization carries most of what a migration can lose (ordering,
health gates, substitution, a remote cluster, what deleting it does), and since issue 15 a Sync
has each of these with Flux's shape and meaning, so each is carried over as it is, after its
shape is checked here (names through ``plan/names``, durations, variable names, enums). What
still has no counterpart (a health check without ``apiVersion``, ``healthCheckExprs``, a
kubeConfig from a ConfigMap, a ``readyExpr``) is named per field. Values are never put in a
message: ``postBuild.substitute`` may hold anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sealed_gitops.plan import names

from .flux_reader import API_VERSION, NotCarried, Origin, Reader, asks_nothing

__all__ = ["DELETION_POLICIES", "sync_from_kustomization"]

#: ``spec.deletionPolicy`` values, Flux's and ours (crds/sync.yaml).
DELETION_POLICIES = ("MirrorPrune", "Delete", "WaitForTermination", "Orphan")
#: Flux's variable names (and ours, render/substitute.py).
_VARIABLE = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
#: What crds/sync.yaml accepts for a health check's apiVersion and kind.
_API_VERSION = re.compile(r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?v[0-9]+((alpha|beta)[0-9]+)?$")
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]{0,62}$")
#: A key of the kubeconfig Secret (a Secret data key).
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")


def sync_from_kustomization(
    origin: Origin, obj: Mapping[str, Any], default_namespace: str, notes: list[NotCarried]
) -> dict[str, Any] | None:
    r = Reader(origin, obj, default_namespace)
    source = r.mapping("sourceRef")
    source_kind = source.get("kind") or "GitRepository"
    if source_kind != "GitRepository":
        r.note(
            notes,
            "sourceRef.kind",
            f"a {source_kind} source: only Git repositories are read (no Sync written)",
        )
        return None
    repository = names.object_name(source.get("name"), field=r.where("sourceRef.name"))
    source_ns = source.get("namespace")
    if source_ns and source_ns != r.namespace:
        names.namespace(source_ns, field=r.where("sourceRef.namespace"))
        r.note(
            notes,
            "sourceRef.namespace",
            f"a Sync reads a Repository of its own namespace: import the GitRepository "
            f"{source_ns}/{repository} into {r.namespace} as well",
        )
    spec: dict[str, Any] = {"repositoryRef": {"name": repository}}
    path = r.string("path")
    if path is not None:
        spec["path"] = path
    for key in ("interval", "retryInterval"):
        value = r.duration(key)
        if value is not None:
            spec[key] = value
    # Flux's prune is required and has no default; ours defaults to true, so it is always written.
    spec["prune"] = bool(r.boolean("prune"))
    target = r.string("targetNamespace")
    if target is not None:
        spec["targetNamespace"] = names.namespace(target, field=r.where("targetNamespace"))
    account = r.string("serviceAccountName")
    if account is not None:
        spec["serviceAccountName"] = names.object_name(account, field=r.where("serviceAccountName"))
    if r.boolean("suspend"):
        spec["suspend"] = True
    decryption = _decryption(r, notes)
    if decryption:
        spec["decryption"] = decryption
    spec.update(_gates(r, notes))
    post_build = _post_build(r)
    if post_build:
        spec["postBuild"] = post_build
    kube_config = _kube_config(r, notes)
    if kube_config:
        spec["kubeConfig"] = kube_config
    policy = r.string("deletionPolicy")
    if policy is not None:
        spec["deletionPolicy"] = _deletion_policy(r, policy)
    r.rest(notes)
    return {"apiVersion": API_VERSION, "kind": "Sync", "metadata": r.metadata(), "spec": spec}


def _decryption(r: Reader, notes: list[NotCarried]) -> dict[str, Any]:
    decryption = r.mapping("decryption")
    if not decryption:
        return {}
    provider = decryption.get("provider") or "sops"
    if provider != "sops":
        r.note(notes, "decryption.provider", f"{provider!r}: only sops is read")
        return {}
    out: dict[str, Any] = {}
    secret = r.secret_ref(decryption.get("secretRef"), path="decryption.secretRef")
    if secret:
        # Same Secret, same entry names (*.agekey, *.asc, sops.vault-token): nothing re-encrypted.
        out["secretRef"] = secret
    else:
        r.note(
            notes,
            "decryption",
            "without secretRef Flux uses its controller's own keys (global sops-age Secret, "
            "cloud KMS identity); give the Sync decryption.secretRef or keyRingRef",
        )
    if not asks_nothing(decryption.get("serviceAccountName")):
        r.note(notes, "decryption.serviceAccountName", "no KMS workload identity per Sync")
    return out


def _items(r: Reader, key: str) -> list[Mapping[str, Any]]:
    """A list of mappings (``dependsOn``, ``healthChecks``...), each checked to be one."""
    value = r.get(key)
    if asks_nothing(value):
        return []
    if not isinstance(value, list):
        raise r.origin.fail(f"{r.where(key)} must be a list")
    return [r.mapping_at(item, path=f"{key}[{i}]") for i, item in enumerate(value)]


def _deletion_policy(r: Reader, policy: str) -> str:
    if policy not in DELETION_POLICIES:
        known = ", ".join(DELETION_POLICIES)
        raise r.origin.fail(f"{r.where('deletionPolicy')}: {policy!r} is not one of {known}")
    return policy


def _gates(r: Reader, notes: list[NotCarried]) -> dict[str, Any]:
    """``dependsOn``, ``healthChecks``, ``wait`` and ``timeout``: when a Sync counts as Ready."""
    out: dict[str, Any] = {}
    depends = _depends_on(r, notes)
    if depends:
        out["dependsOn"] = depends
    checks = _health_checks(r, notes)
    if checks:
        out["healthChecks"] = checks
    if r.boolean("wait"):
        out["wait"] = True
    timeout = r.duration("timeout")
    if timeout is not None:
        out["timeout"] = timeout
    return out


def _depends_on(r: Reader, notes: list[NotCarried]) -> list[dict[str, str]]:
    depends = []
    for i, dep in enumerate(_items(r, "dependsOn")):
        path = f"dependsOn[{i}]"
        ref = {"name": names.object_name(dep.get("name"), field=r.where(f"{path}.name"))}
        if dep.get("namespace"):
            ref["namespace"] = names.namespace(
                dep.get("namespace"), field=r.where(f"{path}.namespace")
            )
        for extra in sorted(set(dep) - {"name", "namespace"}):
            if not asks_nothing(dep[extra]):
                r.note(notes, f"{path}.{extra}", "a dependency is Ready at its latest revision")
        depends.append(ref)
    return depends


def _health_checks(r: Reader, notes: list[NotCarried]) -> list[dict[str, str]]:
    checks = []
    for i, check in enumerate(_items(r, "healthChecks")):
        path = f"healthChecks[{i}]"
        kind = r.string_at(check.get("kind"), path=f"{path}.kind")
        if kind is None or not _KIND.fullmatch(kind):
            raise r.origin.fail(f"{r.where(path + '.kind')} must be a Kubernetes kind")
        ref = {"name": names.object_name(check.get("name"), field=r.where(f"{path}.name"))}
        version = r.string_at(check.get("apiVersion"), path=f"{path}.apiVersion")
        if version is None:
            r.note(notes, path, "a health check needs apiVersion: add it to the Sync by hand")
            continue
        if not _API_VERSION.fullmatch(version):
            raise r.origin.fail(f"{r.where(path + '.apiVersion')} is not an apiVersion")
        entry = {"apiVersion": version, "kind": kind, **ref}
        if check.get("namespace"):
            entry["namespace"] = names.namespace(
                check.get("namespace"), field=r.where(f"{path}.namespace")
            )
        checks.append(entry)
    return checks


def _post_build(r: Reader) -> dict[str, Any]:
    """``postBuild.substitute`` (name -> string) and ``substituteFrom`` (ConfigMaps, Secrets)."""
    post = r.mapping("postBuild")
    out: dict[str, Any] = {}
    inline = r.mapping_at(post.get("substitute"), path="postBuild.substitute")
    for name, value in inline.items():
        where = r.where("postBuild.substitute")
        if not isinstance(name, str) or not _VARIABLE.fullmatch(name):
            raise r.origin.fail(f"{where}: a variable name must match {_VARIABLE.pattern}")
        if not isinstance(value, str):
            raise r.origin.fail(f"{where}: the value of {name} must be a string")
    if inline:
        out["substitute"] = dict(inline)
    sources = []
    raw = post.get("substituteFrom")
    if not asks_nothing(raw):
        if not isinstance(raw, list):
            raise r.origin.fail(f"{r.where('postBuild.substituteFrom')} must be a list")
        for i, item in enumerate(raw):
            path = f"postBuild.substituteFrom[{i}]"
            ref = r.mapping_at(item, path=path)
            kind = ref.get("kind")
            if kind not in ("ConfigMap", "Secret"):
                raise r.origin.fail(f"{r.where(path + '.kind')} must be ConfigMap or Secret")
            entry: dict[str, Any] = {
                "kind": kind,
                "name": names.object_name(ref.get("name"), field=r.where(f"{path}.name")),
            }
            optional = ref.get("optional")
            if optional is not None and not isinstance(optional, bool):
                raise r.origin.fail(f"{r.where(path + '.optional')} must be true or false")
            if optional:
                entry["optional"] = True
            sources.append(entry)
    if sources:
        out["substituteFrom"] = sources
    return out


def _kube_config(r: Reader, notes: list[NotCarried]) -> dict[str, Any]:
    """``kubeConfig.secretRef``: the remote cluster's kubeconfig in a Secret of the namespace."""
    config = r.mapping("kubeConfig")
    if not config:
        return {}
    secret = r.mapping_at(config.get("secretRef"), path="kubeConfig.secretRef")
    if not secret:
        r.note(
            notes,
            "kubeConfig",
            "only a kubeconfig in a Secret (secretRef) is read, not a cloud workload identity",
        )
        return {}
    ref = {
        "name": names.object_name(secret.get("name"), field=r.where("kubeConfig.secretRef.name"))
    }
    key = r.string_at(secret.get("key"), path="kubeConfig.secretRef.key")
    if key is not None:
        if not _SECRET_KEY.fullmatch(key):
            raise r.origin.fail(f"{r.where('kubeConfig.secretRef.key')} is not a Secret key")
        ref["key"] = key
    for extra in sorted(set(config) - {"secretRef"}):
        if not asks_nothing(config[extra]):
            r.note(notes, f"kubeConfig.{extra}", "only kubeConfig.secretRef is read")
    return {"secretRef": ref}
