"""SealedSecret documents (``bitnami.com/v1alpha1``): reading, writing and sealing a Secret.

Why this module exists: the value format (``sealed.py``) is Bitnami's; the *document* is where our
extensions live, and they must not break Bitnami's controller. Everything we add is a
``metadata.annotations`` entry on the SealedSecret itself (never on ``spec.template``, whose
metadata is copied into the Secret), because the controller ignores unknown annotations while its
CRD schema might reject an unknown ``spec`` field.

Our annotations (all values are compact JSON or plain text)::

    sealed-gitops.io/key-ids
        {"<value key>": "<fingerprint>", ...}
        which public key sealed each ``spec.encryptedData`` value; the fingerprint is the hex
        SHA-256 of the key's DER SubjectPublicKeyInfo. The decryptor tries that key first;
        values without an entry are opened by trying each key, as Bitnami's controller does.

    sealed-gitops.io/additional-encrypted-data
        {"<fingerprint>": {"<value key>": "<base64 sealed value>", ...}, ...}
        the same values sealed for further clusters (``seal --cert A --cert B``). Bitnami's
        controller uses ``spec.encryptedData`` only, which holds the ciphertexts for the first
        certificate, so a Bitnami cluster with that key keeps working.

    sealed-gitops.io/scope-sha256
        hex SHA-256 of the scope label the values were sealed under ("ns/name", "ns" or "").
        Only a diagnostic: it lets unseal say "sealed for another scope" rather than "wrong
        key" when a file was copied to another name or namespace. A digest, not the label in
        clear, so that renaming a namespace throughout a file (``sed s/team-a/team-b/``) does
        not rewrite the record of where the values were sealed.

The scope itself is Bitnami's: ``sealedsecrets.bitnami.com/namespace-wide: "true"`` or
``.../cluster-wide: "true"`` on the SealedSecret's metadata (read from there, as the controller
does), and, as kubeseal writes it, also on the template's metadata.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from sealed_gitops.crypto.sealed import RandomSource, Scope, scope_label, seal_value
from sealed_gitops.crypto.sealing_keys import fingerprint
from sealed_gitops.errors import FormatError

__all__ = [
    "ANNOTATION_ADDITIONAL",
    "ANNOTATION_CLUSTER_WIDE",
    "ANNOTATION_KEY_IDS",
    "ANNOTATION_NAMESPACE_WIDE",
    "ANNOTATION_SCOPE_DIGEST",
    "API_VERSION",
    "KIND",
    "PlainSecret",
    "SealedSecretDoc",
    "label_scope",
    "parse_sealed_secret",
    "parse_secret",
    "scope_digest",
    "scope_from_annotations",
    "seal_secret",
    "secret_manifest",
    "set_scope_annotations",
]

API_VERSION = "bitnami.com/v1alpha1"
KIND = "SealedSecret"
ANNOTATION_NAMESPACE_WIDE = "sealedsecrets.bitnami.com/namespace-wide"
ANNOTATION_CLUSTER_WIDE = "sealedsecrets.bitnami.com/cluster-wide"
ANNOTATION_KEY_IDS = "sealed-gitops.io/key-ids"
ANNOTATION_ADDITIONAL = "sealed-gitops.io/additional-encrypted-data"
ANNOTATION_SCOPE_DIGEST = "sealed-gitops.io/scope-sha256"
_OUR_ANNOTATIONS = (ANNOTATION_KEY_IDS, ANNOTATION_ADDITIONAL, ANNOTATION_SCOPE_DIGEST)
_SCOPE_ANNOTATIONS = (ANNOTATION_NAMESPACE_WIDE, ANNOTATION_CLUSTER_WIDE)

# Server-set or leak-prone metadata that must not be copied into a template: last-applied
# annotations hold a full plaintext copy of the Secret (Sealed Secrets issue #227).
_DROP_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "ownerReferences",
    "selfLink",
)
_DROP_ANNOTATIONS = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "kubecfg.ksonnet.io/last-applied-configuration",
)


def scope_from_annotations(annotations: Mapping[str, Any] | None) -> Scope:
    """The scope a metadata block declares; cluster-wide wins, as in the controller."""
    annotations = annotations or {}
    if annotations.get(ANNOTATION_CLUSTER_WIDE) == "true":
        return Scope.CLUSTER_WIDE
    if annotations.get(ANNOTATION_NAMESPACE_WIDE) == "true":
        return Scope.NAMESPACE_WIDE
    return Scope.STRICT


def scope_digest(label: bytes) -> str:
    """What the ``scope-sha256`` annotation records for a scope label."""
    return hashlib.sha256(label).hexdigest()


def label_scope(label: bytes) -> str:
    """Human form of a scope label, for error messages."""
    text = label.decode("utf-8", "replace")
    if not text:
        return "cluster-wide"
    if "/" in text:
        return f"strict {text}"
    return f"namespace-wide {text}"


def set_scope_annotations(annotations: dict[str, str], scope: Scope) -> None:
    """Set the Bitnami scope annotation for ``scope`` in place, removing any other."""
    for name in _SCOPE_ANNOTATIONS:
        annotations.pop(name, None)
    if scope is Scope.NAMESPACE_WIDE:
        annotations[ANNOTATION_NAMESPACE_WIDE] = "true"
    elif scope is Scope.CLUSTER_WIDE:
        annotations[ANNOTATION_CLUSTER_WIDE] = "true"


def _mapping(value: Any, *, what: str, file: str | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise FormatError(f"{what} must be a mapping", file=file)
    return value


def _str_map(value: Any, *, what: str, file: str | None) -> dict[str, str]:
    result: dict[str, str] = {}
    for key, item in _mapping(value, what=what, file=file).items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise FormatError(f"{what} must map strings to strings", file=file)
        result[key] = item
    return result


@dataclass
class PlainSecret:
    """A Kubernetes Secret to be sealed (or just unsealed). ``data`` holds raw bytes."""

    name: str
    namespace: str | None
    data: dict[str, bytes]
    metadata: dict[str, Any] = field(default_factory=dict)
    type: str | None = None
    immutable: bool | None = None


def parse_secret(doc: Mapping[str, Any], *, file: str | None = None) -> PlainSecret:
    """Read a ``v1`` Secret manifest; ``stringData`` entries win over ``data``, as in the API."""
    if doc.get("kind") != "Secret":
        raise FormatError(f"expected kind Secret, found {doc.get('kind')!r}", file=file)
    metadata = copy.deepcopy(_mapping(doc.get("metadata"), what="metadata", file=file))
    data: dict[str, bytes] = {}
    for key, text in _str_map(doc.get("data"), what="data", file=file).items():
        try:
            data[key] = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FormatError(f"data.{key} is not valid base64", file=file) from exc
    for key, text in _str_map(doc.get("stringData"), what="stringData", file=file).items():
        data[key] = text.encode("utf-8")
    immutable = doc.get("immutable")
    return PlainSecret(
        name=str(metadata.get("name") or ""),
        namespace=metadata.get("namespace"),
        data=data,
        metadata=metadata,
        type=doc.get("type"),
        immutable=immutable if isinstance(immutable, bool) else None,
    )


@dataclass
class SealedSecretDoc:
    """One SealedSecret, with our annotations parsed out of ``metadata.annotations``.

    ``metadata`` keeps every other top-level field (labels, other annotations) so a rewrite
    does not lose them; ``template`` is ``spec.template`` as read, kept whole for the same reason.
    """

    name: str
    namespace: str | None
    scope: Scope
    encrypted_data: dict[str, str]
    key_ids: dict[str, str] = field(default_factory=dict)
    additional: dict[str, dict[str, str]] = field(default_factory=dict)
    scope_digest: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    template: dict[str, Any] = field(default_factory=dict)

    def label(self, *, file: str | None = None) -> bytes:
        """The OAEP label this document's values must open under."""
        if self.scope is not Scope.CLUSTER_WIDE and not self.namespace:
            raise FormatError(
                f"a {self.scope.value} SealedSecret needs metadata.namespace", file=file
            )
        return scope_label(self.scope, namespace=self.namespace or "", name=self.name)

    def to_manifest(self) -> dict[str, Any]:
        """The document as kubeseal lays it out, with ``encryptedData`` sorted by key."""
        metadata = copy.deepcopy(self.metadata)
        metadata.pop("name", None)
        metadata.pop("namespace", None)
        annotations = {
            k: v
            for k, v in (metadata.pop("annotations", None) or {}).items()
            if k not in _OUR_ANNOTATIONS
        }
        set_scope_annotations(annotations, self.scope)
        if self.key_ids:
            annotations[ANNOTATION_KEY_IDS] = _compact(self.key_ids)
        if any(self.additional.values()):
            annotations[ANNOTATION_ADDITIONAL] = _compact(
                {fp: values for fp, values in self.additional.items() if values}
            )
        if self.scope_digest is not None:
            annotations[ANNOTATION_SCOPE_DIGEST] = self.scope_digest
        head: dict[str, Any] = {"name": self.name}
        if self.namespace:
            head["namespace"] = self.namespace
        head.update(metadata)
        if annotations:
            head["annotations"] = dict(sorted(annotations.items()))
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": head,
            "spec": {
                "encryptedData": dict(sorted(self.encrypted_data.items())),
                "template": copy.deepcopy(self.template),
            },
        }


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _json_annotation(annotations: Mapping[str, Any], name: str, *, file: str | None) -> Any:
    text = annotations.get(name)
    if text is None:
        return None
    try:
        return json.loads(str(text))
    except json.JSONDecodeError as exc:
        raise FormatError(f"annotation {name} is not valid JSON", file=file) from exc


def parse_sealed_secret(doc: Mapping[str, Any], *, file: str | None = None) -> SealedSecretDoc:
    """Read a SealedSecret manifest; refuse the deprecated single-blob ``spec.data`` form."""
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != KIND:
        raise FormatError(
            f"expected {API_VERSION} {KIND}, found {doc.get('apiVersion')} {doc.get('kind')}",
            file=file,
        )
    metadata = copy.deepcopy(_mapping(doc.get("metadata"), what="metadata", file=file))
    spec = _mapping(doc.get("spec"), what="spec", file=file)
    if spec.get("data"):
        raise FormatError(
            "uses the deprecated spec.data form (the whole Secret in one sealed blob), "
            "which is not supported: re-seal it with kubeseal or sealed-gitops seal, "
            "which write per-value spec.encryptedData",
            file=file,
        )
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise FormatError("metadata.name is missing", file=file)
    annotations = _str_map(metadata.get("annotations"), what="metadata.annotations", file=file)
    key_ids = _str_map(
        _json_annotation(annotations, ANNOTATION_KEY_IDS, file=file),
        what=f"annotation {ANNOTATION_KEY_IDS}",
        file=file,
    )
    raw_additional = _mapping(
        _json_annotation(annotations, ANNOTATION_ADDITIONAL, file=file),
        what=f"annotation {ANNOTATION_ADDITIONAL}",
        file=file,
    )
    additional = {
        str(fp): _str_map(values, what=f"annotation {ANNOTATION_ADDITIONAL}", file=file)
        for fp, values in raw_additional.items()
    }
    return SealedSecretDoc(
        name=name,
        namespace=metadata.get("namespace") or None,
        scope=scope_from_annotations(annotations),
        encrypted_data=_str_map(spec.get("encryptedData"), what="spec.encryptedData", file=file),
        key_ids=key_ids,
        additional=additional,
        scope_digest=annotations.get(ANNOTATION_SCOPE_DIGEST),
        metadata=metadata,
        template=copy.deepcopy(_mapping(spec.get("template"), what="spec.template", file=file)),
    )


def _template_metadata(secret: PlainSecret, scope: Scope) -> dict[str, Any]:
    meta = {k: v for k, v in copy.deepcopy(secret.metadata).items() if k not in _DROP_METADATA}
    annotations = {
        k: v for k, v in (meta.pop("annotations", None) or {}).items() if k not in _DROP_ANNOTATIONS
    }
    set_scope_annotations(annotations, scope)
    ordered: dict[str, Any] = {"name": secret.name}
    if secret.namespace:
        ordered["namespace"] = secret.namespace
    meta.pop("name", None)
    meta.pop("namespace", None)
    ordered.update(meta)
    if annotations:
        ordered["annotations"] = dict(sorted(annotations.items()))
    return ordered


def seal_secret(
    secret: PlainSecret,
    *,
    recipients: Sequence[rsa.RSAPublicKey],
    scope: Scope,
    rand: RandomSource = os.urandom,
) -> SealedSecretDoc:
    """Seal every value of ``secret`` for each recipient; the first one goes to encryptedData."""
    if not recipients:
        raise ValueError("at least one recipient certificate is needed")
    if not secret.name:
        raise FormatError("the Secret has no metadata.name")
    if scope is not Scope.CLUSTER_WIDE and not secret.namespace:
        raise FormatError(f"a {scope.value} SealedSecret needs a namespace (use --namespace)")
    label = scope_label(scope, namespace=secret.namespace or "", name=secret.name)
    prints = [fingerprint(key) for key in recipients]
    if len(set(prints)) != len(prints):
        raise FormatError("the same certificate was given twice")
    encrypted: dict[str, str] = {}
    additional: dict[str, dict[str, str]] = {fp: {} for fp in prints[1:]}
    for key in sorted(secret.data):
        value = secret.data[key]
        encrypted[key] = seal_value(value, public_key=recipients[0], label=label, rand=rand)
        for fp, public in zip(prints[1:], recipients[1:], strict=True):
            additional[fp][key] = seal_value(value, public_key=public, label=label, rand=rand)
    template: dict[str, Any] = {"metadata": _template_metadata(secret, scope)}
    if secret.type:
        template["type"] = secret.type
    if secret.immutable is not None:
        template["immutable"] = secret.immutable
    return SealedSecretDoc(
        name=secret.name,
        namespace=secret.namespace,
        scope=scope,
        encrypted_data=encrypted,
        key_ids=dict.fromkeys(encrypted, prints[0]),
        additional=additional,
        scope_digest=scope_digest(label),
        template=template,
    )


def secret_manifest(doc: SealedSecretDoc, values: Mapping[str, bytes]) -> dict[str, Any]:
    """The Secret the controller would create from ``doc`` once its values are opened."""
    if doc.template.get("data"):
        raise FormatError(
            "spec.template.data (Go templates over the values) is not supported by unseal"
        )
    meta = copy.deepcopy(
        _mapping(doc.template.get("metadata"), what="spec.template.metadata", file=None)
    )
    meta.pop("creationTimestamp", None)
    # Our hints describe the SealedSecret's ciphertext, never the Secret. They belong on the
    # SealedSecret's own metadata, but Bitnami's re-encryption (``kubeseal --re-encrypt``, the
    # controller's /v1/rotate) copies that metadata into the template, stale: keep them off.
    annotations = {
        k: v for k, v in (meta.pop("annotations", None) or {}).items() if k not in _OUR_ANNOTATIONS
    }
    if annotations:
        meta["annotations"] = annotations
    # The controller forces these to the SealedSecret's own, whatever the template says.
    meta["name"] = doc.name
    if doc.namespace:
        meta["namespace"] = doc.namespace
    ordered = {"name": meta.pop("name")}
    if "namespace" in meta:
        ordered["namespace"] = meta.pop("namespace")
    ordered.update(meta)
    manifest: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": ordered}
    if doc.template.get("type"):
        manifest["type"] = doc.template["type"]
    if doc.template.get("immutable") is not None:
        manifest["immutable"] = doc.template["immutable"]
    manifest["data"] = {
        key: base64.b64encode(values[key]).decode("ascii") for key in sorted(values)
    }
    return manifest
