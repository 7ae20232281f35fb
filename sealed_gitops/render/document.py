"""Rendered documents and what kind of secret handling each one needs.

Why this module exists: after rendering, the pipeline must know, for every document, whether it is
SOPS-encrypted (decrypt it, verify the MAC), a SealedSecret (open it), a plain Secret (refuse it
unless allowed: a plaintext value in Git is a leak) or an ordinary manifest. Deciding that once,
here, keeps the decryption stage and the CLI from each growing their own idea of "encrypted".
Each document also remembers where it came from (file relative to the repository root, index in
that file) because every error and every isolate-policy failure must name it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sealed_gitops.crypto.sops.masterkey import STANZA_KINDS
from sealed_gitops.errors import FormatError, SealedGitopsError
from sealed_gitops.plan.ids import ObjectId
from sealed_gitops.redact import redact

if TYPE_CHECKING:
    from sealed_gitops.render.transformed import PatchedValues

__all__ = ["DocKind", "Document", "Failure", "classify", "make_document", "mark_decrypted"]

SEALED_API_VERSION = "bitnami.com/v1alpha1"


class DocKind(StrEnum):
    PLAIN = "plain"
    SOPS = "sops"
    SEALED = "sealed"
    PLAIN_SECRET = "plain-secret"  # noqa: S105 - a category name, not a password
    #: plaintext that came out of MAC-verified SOPS decryption *before* kustomize ran (a Secret a
    #: secretGenerator made from encrypted sources): see :func:`mark_decrypted`
    DECRYPTED = "decrypted"


@dataclass(frozen=True)
class Document:
    """One rendered manifest.

    ``file`` is relative to the repository root (for a document that came out of a kustomize build
    and could not be traced to its source file, the kustomization's directory) and ``index`` the
    0-based document index in it; ``via`` names the kustomization directory that built it, if
    any. ``data`` is the parsed mapping in file order. ``id`` is None only for a SOPS document whose
    identifying fields are themselves encrypted; it is known after decryption.
    """

    file: str
    index: int
    data: Mapping[str, Any]
    kind: DocKind
    id: ObjectId | None
    via: str | None = None
    #: a SOPS document that kustomize transformed (namespace, labels, prefixes, patches over
    #: unencrypted fields): ``data`` is kustomize's output, ``file``/``index`` its MAC-verified
    #: source, and the decryption stage accepts only the source's own ciphertexts in it
    transformed: bool = False
    #: for a transformed document: what the build's MAC-verified encrypted patches set on it
    #: (keyed digests by key path, render/transformed.py), the only plaintext accepted in place
    #: of its ciphertext
    patched: PatchedValues | None = None

    @property
    def location(self) -> str:
        return f"{self.file} (document {self.index})"

    def describe(self) -> str:
        what = self.id.describe() if self.id else "encrypted document"
        return f"{what} from {self.location}"


@dataclass(frozen=True)
class Failure:
    """A document (or file) left out under the isolate policy, and why.

    ``index`` is None when the whole file or kustomization failed; ``object`` is the
    ``Kind namespace/name`` when known. ``error`` is the exception, for its ``code``.
    """

    file: str
    index: int | None
    object: str | None
    reason: str
    error: SealedGitopsError

    def __str__(self) -> str:
        where = self.file if self.index is None else f"{self.file} (document {self.index})"
        what = f" {self.object}:" if self.object else ""
        # ``reason`` is the error's raw sentence; str(error) is redacted, so this must be too.
        return redact(f"{where}:{what} {self.reason}")


def _is_sops(data: Mapping[str, Any]) -> bool:
    meta = data.get("sops")
    if not isinstance(meta, Mapping):
        return False
    return "mac" in meta or any(meta.get(kind) for kind in STANZA_KINDS)


def _encrypted(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("ENC[")


def classify(data: Mapping[str, Any]) -> DocKind:
    """The :class:`DocKind` of a parsed manifest (before validation)."""
    if _is_sops(data):
        return DocKind.SOPS
    api_version = data.get("apiVersion")
    kind = data.get("kind")
    if api_version == SEALED_API_VERSION and kind == "SealedSecret":
        return DocKind.SEALED
    if (
        kind == "Secret"
        and api_version == "v1"
        and (data.get("data") is not None or data.get("stringData") is not None)
    ):
        return DocKind.PLAIN_SECRET
    return DocKind.PLAIN


def _has_variable(data: Mapping[str, Any]) -> bool:
    """Whether an identifying field holds a postBuild variable (``${...}``)."""
    meta = data.get("metadata")
    fields = [data.get("apiVersion"), data.get("kind")]
    if isinstance(meta, Mapping):
        fields += [meta.get("name"), meta.get("namespace")]
    return any(isinstance(f, str) and "${" in f for f in fields)


def make_document(data: Any, *, file: str, index: int, via: str | None = None) -> Document:
    """Validate one parsed document and wrap it; a :class:`FormatError` names file and index.

    A manifest needs a string ``apiVersion`` and ``kind`` and a ``metadata.name``. A SOPS document
    may have those encrypted (``ENC[...]``); its id is then unknown until decryption.
    """
    location = f"document {index}"
    if not isinstance(data, Mapping):
        raise FormatError(
            f"a manifest must be a mapping, not {type(data).__name__}", file=file, location=location
        )
    doc_kind = classify(data)
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    fields = {"apiVersion": data.get("apiVersion"), "kind": data.get("kind"), "metadata.name": name}
    if doc_kind is DocKind.SOPS and any(_encrypted(v) for v in fields.values()):
        return Document(file, index, data, doc_kind, None, via)
    for field_name, value in fields.items():
        if not isinstance(value, str) or not value:
            raise FormatError(f"no {field_name}", file=file, location=location)
    namespace = meta.get("namespace") if isinstance(meta, Mapping) else None
    if namespace is not None and not isinstance(namespace, str):
        raise FormatError("metadata.namespace is not a string", file=file, location=location)
    try:
        oid = ObjectId.of(data)
    except FormatError as exc:
        if doc_kind is DocKind.PLAIN and _has_variable(data):
            # ``name: app-${ENV}``: known after postBuild substitution (render/substitute.py),
            # which checks the substituted id; unsubstituted, decryption refuses it as before.
            return Document(file, index, data, doc_kind, None, via)
        raise FormatError(exc.reason, file=file, location=location) from None
    return Document(file, index, data, doc_kind, oid, via)


def mark_decrypted(doc: Document) -> Document:
    """``doc`` marked as plaintext that came out of MAC-verified decryption before kustomize.

    The hook for stages that decrypt SOPS sources *before* kustomize (secretGenerator ``envs`` /
    ``files`` over encrypted files, encrypted patches): kustomize's output then holds a plain
    ``Secret`` that is not "a plain Secret in Git", and the decryption stage must neither refuse
    it nor try to open it. The caller promises three things: every source value was opened with
    its file's MAC verified; every plaintext value in ``doc.data`` is already registered with
    :mod:`sealed_gitops.redact` (``register_encrypted`` or ``register``); and ``doc.file`` names
    the source (or kustomization) an error should point at. The leftover guard of the
    decryption stage still applies: a marked document that holds ``ENC[...]`` or SOPS metadata
    fails like any other.
    """
    return Document(doc.file, doc.index, doc.data, DocKind.DECRYPTED, doc.id, doc.via)
