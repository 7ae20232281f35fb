"""Flux ``GitRepository`` and ``Kustomization`` objects, converted to ``Repository`` and ``Sync``.

Why a module of its own: moving from Flux must not mean re-typing every object by hand, and it
must never lose a setting silently. A Flux field either has an exact counterpart here (url, ref,
intervals, path, prune, target namespace, service account, the SOPS decryption Secret, ...) or it
is reported, per object and field, as one that cannot carry over. A setting that asks for nothing
(``force: false``, an empty list) is not reported: it has nothing to lose.

The facts come from Flux's API types (source-controller ``api/v1/gitrepository_types.go`` and
kustomize-controller ``api/v1/kustomization_types.go``, and their ``v1beta2``); no code is
shared. Pure: objects in, objects and notes out, so the command (``import_cmds``) does the I/O.
Every name and namespace goes through ``plan/names`` before it is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sealed_gitops.errors import InputError
from sealed_gitops.plan import names

__all__ = [
    "GIT_REPOSITORY_VERSIONS",
    "KUSTOMIZATION_VERSIONS",
    "Conversion",
    "NotCarried",
    "convert",
]

GROUP = "sealed-gitops.io"
API_VERSION = f"{GROUP}/v1alpha1"
#: The Flux API versions read; older ones (v1beta1) have other field names and are refused.
GIT_REPOSITORY_VERSIONS = ("source.toolkit.fluxcd.io/v1", "source.toolkit.fluxcd.io/v1beta2")
KUSTOMIZATION_VERSIONS = (
    "kustomize.toolkit.fluxcd.io/v1",
    "kustomize.toolkit.fluxcd.io/v1beta2",
)

#: Our duration pattern (crds/*.yaml): Go durations in h, m, s and ms, which is what Flux users
#: write and what ``kubectl get`` prints (``10m0s``).
_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$")

#: Why each Flux field that has no counterpart cannot carry over; fields not listed get a
#: generic reason (Flux adds fields; an unknown one is reported, never dropped).
_REASONS: dict[str, str] = {
    # GitRepository
    "ignore": "sealed-gitops reads the Sync's path, with no .sourceignore rules",
    "include": "a Repository cannot include another repository",
    "recurseSubmodules": "submodules are not fetched",
    "proxySecretRef": "no proxy setting for git",
    "provider": "no cloud provider authentication for git (use secretRef credentials)",
    "sparseCheckout": "the whole tree is fetched",
    "accessFrom": "cross-namespace access is not granted this way",
    "gitImplementation": "one git implementation",
    # Kustomization
    "dependsOn": "no ordering between Syncs",
    "healthChecks": "no health checks after apply",
    "healthCheckExprs": "no health checks after apply",
    "wait": "no waiting for readiness after apply",
    "timeout": "a Sync has no apply timeout",
    "postBuild": "no variable substitution after the build",
    "patches": "put the patches in a kustomization.yaml in the repository",
    "patchesStrategicMerge": "put the patches in a kustomization.yaml in the repository",
    "patchesJson6902": "put the patches in a kustomization.yaml in the repository",
    "images": "put the images: override in a kustomization.yaml in the repository",
    "components": "list the components in a kustomization.yaml in the repository",
    "ignoreMissingComponents": "list the components in a kustomization.yaml in the repository",
    "namePrefix": "put namePrefix: in a kustomization.yaml in the repository",
    "nameSuffix": "put nameSuffix: in a kustomization.yaml in the repository",
    "commonMetadata": "put labels:/commonAnnotations: in a kustomization.yaml in the repository",
    "force": "objects are never deleted and recreated on an immutable-field change",
    "kubeConfig": "a Sync applies to the cluster the operator runs in",
    "deletionPolicy": "deleting a Sync prunes what it applied when prune is on",
    "buildMetadata": "no build metadata",
    "validation": "objects are validated by the API server on apply",
}


@dataclass(frozen=True)
class NotCarried:
    """One Flux setting that the converted object does not have."""

    kind: str
    namespace: str
    name: str
    field: str
    reason: str

    def line(self) -> str:
        what = f"{self.kind} {self.namespace}/{self.name}"
        return f"{what}: {self.field} cannot carry over: {self.reason}"

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "field": self.field,
            "reason": self.reason,
        }


@dataclass
class Conversion:
    """The objects written and what could not be carried over, in input order."""

    items: list[dict[str, Any]] = field(default_factory=list)
    not_carried: list[NotCarried] = field(default_factory=list)


@dataclass(frozen=True)
class _Origin:
    """Where an object came from, for error messages: ``clusters/prod.yaml, document 2``."""

    where: str

    def fail(self, message: str) -> InputError:
        return InputError(f"{self.where}: {message}")


def convert(
    objects: Iterable[tuple[str, Any]], *, default_namespace: str = "default"
) -> Conversion:
    """Convert ``(where, object)`` pairs; objects of other kinds are skipped.

    ``where`` names the origin (file and document) for errors. A ``List`` (what ``kubectl get
    -o yaml`` prints) is unpacked. Raises :class:`InputError` on an object that is not a mapping
    or a Flux object whose fields have the wrong shape, naming ``where``.
    """
    result = Conversion()
    for where, obj in objects:
        _convert_one(_Origin(where), obj, default_namespace, result)
    return result


def _convert_one(origin: _Origin, obj: Any, default_namespace: str, out: Conversion) -> None:
    if obj is None:
        return  # an empty YAML document
    if not isinstance(obj, Mapping):
        raise origin.fail("not a Kubernetes object (a mapping with apiVersion and kind)")
    kind = obj.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list):
        for index, item in enumerate(obj["items"]):
            _convert_one(_Origin(f"{origin.where}, item {index}"), item, default_namespace, out)
        return
    api_version = obj.get("apiVersion")
    if kind == "GitRepository" and str(api_version).startswith("source.toolkit.fluxcd.io/"):
        _check_version(origin, api_version, GIT_REPOSITORY_VERSIONS)
        out.items.append(_repository(origin, obj, default_namespace, out.not_carried))
    elif kind == "Kustomization" and str(api_version).startswith("kustomize.toolkit.fluxcd.io/"):
        _check_version(origin, api_version, KUSTOMIZATION_VERSIONS)
        sync = _sync(origin, obj, default_namespace, out.not_carried)
        if sync is not None:
            out.items.append(sync)


def _check_version(origin: _Origin, api_version: object, known: tuple[str, ...]) -> None:
    if api_version not in known:
        raise origin.fail(f"apiVersion {api_version!r} is not read (known: {', '.join(known)})")


# -- pieces shared by both kinds ---------------------------------------------------------------


class _Reader:
    """Typed access to one object's spec; each accessor marks its field as carried over."""

    def __init__(self, origin: _Origin, obj: Mapping[str, Any], default_namespace: str) -> None:
        self.origin = origin
        self.kind = str(obj["kind"])
        meta = obj.get("metadata")
        if not isinstance(meta, Mapping):
            raise origin.fail(f"{self.kind} has no metadata")
        self.name = names.object_name(meta.get("name"), field=f"{origin.where}: metadata.name")
        self.namespace = names.namespace(
            meta.get("namespace") or default_namespace, field=f"{origin.where}: metadata.namespace"
        )
        labels = meta.get("labels")
        self.labels = dict(labels) if isinstance(labels, Mapping) and labels else None
        spec = obj.get("spec")
        if not isinstance(spec, Mapping):
            raise origin.fail(f"{self.kind} {self.namespace}/{self.name} has no spec")
        self.spec = spec
        self.used: set[str] = set()

    def where(self, path: str) -> str:
        return f"{self.origin.where}: {self.kind} {self.namespace}/{self.name}: spec.{path}"

    def get(self, key: str) -> Any:
        self.used.add(key)
        return self.spec.get(key)

    def string(self, key: str) -> str | None:
        return self.string_at(self.get(key), path=key)

    def string_at(self, value: Any, *, path: str) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.origin.fail(f"{self.where(path)} must be a string")
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise self.origin.fail(f"{self.where(key)} must be true or false")
        return value

    def duration(self, key: str) -> str | None:
        value = self.string(key)
        if value is not None and not _DURATION.fullmatch(value):
            raise self.origin.fail(
                f"{self.where(key)}: {value!r} is not a duration sealed-gitops reads "
                "(hours, minutes, seconds and milliseconds, e.g. 10m or 1h30m)"
            )
        return value

    def mapping(self, key: str) -> Mapping[str, Any]:
        return self.mapping_at(self.get(key), path=key)

    def mapping_at(self, value: Any, *, path: str) -> Mapping[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.origin.fail(f"{self.where(path)} must be a mapping")
        return value

    def secret_ref(self, value: Any, *, path: str) -> dict[str, str] | None:
        ref = self.mapping_at(value, path=path)
        if not ref:
            return None
        name = names.object_name(ref.get("name"), field=self.where(f"{path}.name"))
        return {"name": name}

    def rest(self, notes: list[NotCarried]) -> None:
        """Report every field of the spec not read: nothing is dropped without a word."""
        for key, value in self.spec.items():
            if key in self.used or _asks_nothing(value):
                continue
            self.note(notes, key, _REASONS.get(key) or "sealed-gitops has no such setting")

    def note(self, notes: list[NotCarried], path: str, reason: str) -> None:
        notes.append(NotCarried(self.kind, self.namespace, self.name, f"spec.{path}", reason))

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            meta["labels"] = self.labels
        return meta


def _asks_nothing(value: Any) -> bool:
    return value is None or value is False or value in ("", [], {})


# -- GitRepository -> Repository ---------------------------------------------------------------

#: Flux's ``ref.name`` is a full git reference; these prefixes have a counterpart.
_REF_PREFIXES = (("refs/heads/", "branch"), ("refs/tags/", "tag"))


def _repository(
    origin: _Origin, obj: Mapping[str, Any], default_namespace: str, notes: list[NotCarried]
) -> dict[str, Any]:
    r = _Reader(origin, obj, default_namespace)
    spec: dict[str, Any] = {}
    url = r.string("url")
    if url is None:
        raise origin.fail(f"{r.where('url')} is required")
    spec["url"] = url
    ref = _ref(r, notes)
    if ref:
        spec["ref"] = ref
    for key in ("interval", "timeout"):
        value = r.duration(key)
        if value is not None:
            spec[key] = value
    secret = r.secret_ref(r.get("secretRef"), path="secretRef")
    if secret:
        spec["secretRef"] = secret
    verify = _verify(r, notes)
    if verify:
        spec["verify"] = verify
    if r.boolean("suspend"):
        spec["suspend"] = True
    r.rest(notes)
    return {"apiVersion": API_VERSION, "kind": "Repository", "metadata": r.metadata(), "spec": spec}


def _ref(r: _Reader, notes: list[NotCarried]) -> dict[str, str]:
    ref = r.mapping("ref")
    out: dict[str, str] = {}
    # Flux's precedence (gitrepository_types.go): commit, then name, then semver, tag, branch.
    commit = r.string_at(ref.get("commit"), path="ref.commit")
    name = r.string_at(ref.get("name"), path="ref.name")
    semver = r.string_at(ref.get("semver"), path="ref.semver")
    tag = r.string_at(ref.get("tag"), path="ref.tag")
    branch = r.string_at(ref.get("branch"), path="ref.branch")
    if commit is not None:
        if not re.fullmatch(r"[0-9a-f]{7,40}", commit):
            raise r.origin.fail(f"{r.where('ref.commit')}: {commit!r} is not a commit id")
        out["commit"] = commit
        if branch is not None:
            # With a commit, Flux fetches the branch only to find the commit in it.
            r.note(notes, "ref.branch", "the commit is fetched directly; the branch is not checked")
    elif name is not None:
        for prefix, key in _REF_PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                out[key] = name[len(prefix) :]
                break
        else:
            r.note(
                notes, "ref.name", f"only refs/heads/* and refs/tags/* are followed, not {name!r}"
            )
    elif semver is not None:
        out["semver"] = semver
    elif tag is not None:
        out["tag"] = tag
    elif branch is not None:
        out["branch"] = branch
    for key in ref:
        if key not in ("commit", "name", "semver", "tag", "branch") and not _asks_nothing(ref[key]):
            r.note(notes, f"ref.{key}", "sealed-gitops has no such setting")
    return out


def _verify(r: _Reader, notes: list[NotCarried]) -> dict[str, Any]:
    verify = r.mapping("verify")
    if not verify:
        return {}
    mode = verify.get("mode") or "HEAD"
    out: dict[str, Any] = {"mode": "HEAD"}
    if mode in ("Tag", "TagAndHEAD"):
        # Only commit signatures are checked here. Writing HEAD keeps a check (stricter for Tag:
        # the commit itself must then be signed) rather than none.
        r.note(
            notes,
            "verify.mode",
            f"{mode}: tag signatures are not checked; the commit's signature (HEAD) is",
        )
    elif mode != "HEAD":
        raise r.origin.fail(f"{r.where('verify.mode')}: {mode!r} is not HEAD, Tag or TagAndHEAD")
    secret = r.secret_ref(verify.get("secretRef"), path="verify.secretRef")
    if secret:
        out["secretRef"] = secret
    return out


# -- Kustomization -> Sync ---------------------------------------------------------------------


def _sync(
    origin: _Origin, obj: Mapping[str, Any], default_namespace: str, notes: list[NotCarried]
) -> dict[str, Any] | None:
    r = _Reader(origin, obj, default_namespace)
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
    r.rest(notes)
    return {"apiVersion": API_VERSION, "kind": "Sync", "metadata": r.metadata(), "spec": spec}


def _decryption(r: _Reader, notes: list[NotCarried]) -> dict[str, Any]:
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
    if not _asks_nothing(decryption.get("serviceAccountName")):
        r.note(notes, "decryption.serviceAccountName", "no KMS workload identity per Sync")
    return out
