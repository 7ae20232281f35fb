"""The decryption stage: rendered documents in, plain Kubernetes objects out, in memory only.

Why a stage of its own: this is the one place in the pipeline where plaintext comes into being, so
the rules that protect it live together here. Every SOPS document and every SealedSecret is opened
with the keys the caller brings (the CLI's from the sops environment and flags, the operator's from
Kubernetes Secrets); the SOPS MAC is always verified, over the whole file exactly as written (a
multi-document SOPS file shares one MAC, so its documents are opened together); every decrypted
leaf is registered with :mod:`sealed_gitops.redact` before anything else can see it; a plain
``Secret`` in Git is refused unless the caller allows it. Failures name the file, the document index
and the object when known; with a ``failures`` list (the isolate policy) the failing documents are
left out and listed, otherwise the first failure is raised (atomic).

Every encrypted object is judged against where it will land in the cluster (a Sync's
``targetNamespace``, the Sync's namespace for a file without one), which the caller's
:class:`~sealed_gitops.render.placement.Placement` says with the same rule tenancy uses: a
SealedSecret opens only under the scope it lands in, and with a KeyRing's SOPS namespace binding a
SOPS object only in the namespace it names (see :mod:`sealed_gitops.render.binding`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sealed_gitops.crypto.sealed_document import parse_sealed_secret, secret_manifest
from sealed_gitops.crypto.sops import Rules, Unwrapper, decrypt_document
from sealed_gitops.crypto.sops.registration import register_encrypted
from sealed_gitops.errors import (
    FormatError,
    NoMatchingKey,
    NotEncryptedError,
    ScopeMismatch,
    SealedGitopsError,
)
from sealed_gitops.keys.sealing import SealingKeyring
from sealed_gitops.plan import ObjectId
from sealed_gitops.render.binding import (
    NamespaceBinding,
    check_sops_binding,
    unseal_where_it_lands,
)
from sealed_gitops.render.cache import ContentCache
from sealed_gitops.render.committed import CommittedFiles
from sealed_gitops.render.document import DocKind, Document, Failure
from sealed_gitops.render.leftover import refuse_leftover_ciphertext
from sealed_gitops.render.placement import Placement
from sealed_gitops.render.sops_sources import tree_to_python
from sealed_gitops.render.transformed import open_transformed

__all__ = [
    "DecryptionKeys",
    "RenderedObject",
    "decrypt_documents",
    "tree_to_python",
]


@dataclass(frozen=True)
class DecryptionKeys:
    """The keys a decryption may use: SOPS master keys and Sealed-Secrets private keys."""

    sops: Unwrapper | None = None
    sealing: SealingKeyring | None = None
    #: the KeyRing's ``spec.sops.namespaceBinding``: must SOPS objects land where they say?
    sops_binding: NamespaceBinding = NamespaceBinding.NONE


@dataclass(frozen=True, slots=True)
class RenderedObject:
    """One object ready to plan and apply; ``data`` holds plaintext for Secrets (memory only).

    Slotted: the operator keeps one per object of each Sync's last build (no ``__dict__``).
    """

    id: ObjectId
    data: dict[str, Any]
    file: str
    index: int
    source: DocKind
    via: str | None = None

    @property
    def location(self) -> str:
        return f"{self.file} (document {self.index})"


@dataclass(frozen=True)
class _OpenedSops:
    """A SOPS file as decrypted, its MAC verified: its documents' plain trees, its encryption
    rules and its data key (kept for documents kustomize transformed, see render/transformed.py;
    in process memory only, like the plaintext beside it)."""

    branches: list[dict[str, Any]]
    rules: Rules
    data_key: bytes


def _identify(obj: dict[str, Any], doc: Document) -> ObjectId:
    if not isinstance(obj, dict):
        raise FormatError(
            "decrypted document is not a mapping", file=doc.file, location=doc.location
        )
    missing = [f for f in ("apiVersion", "kind") if not obj.get(f)]
    if not (obj.get("metadata") or {}).get("name"):
        missing.append("metadata.name")
    if missing:
        raise FormatError(
            f"decrypted document has no {', '.join(missing)}",
            file=doc.file,
            location=f"document {doc.index}",
        )
    return ObjectId.of(obj)


def _refuse_moved_namespace(
    plain: Mapping[str, Any], source: Mapping[str, Any], binding: NamespaceBinding
) -> None:
    """Under a Strict binding, a kustomize transformer may not move a SOPS object to another
    namespace than the one its MAC-verified file names (kustomize's is not authenticated)."""
    if binding is NamespaceBinding.NONE:
        return
    built, written = ((obj.get("metadata") or {}).get("namespace") for obj in (plain, source))
    if built != written:
        raise ScopeMismatch(
            "the KeyRing's spec.sops.namespaceBinding is Strict and a kustomize transformer "
            f"moved this SOPS-encrypted object from namespace {written!r} (the one its MAC "
            f"covers) to {built!r}: write the namespace into the file before encrypting it, or "
            "use the Sync's targetNamespace"
        )


class _Stage:
    """State of one run: file bytes read once, SOPS files decrypted once per file."""

    def __init__(
        self,
        *,
        root: Path,
        keys: DecryptionKeys,
        failures: list[Failure] | None,
        cache: ContentCache | None = None,
        placement: Placement,
        files: CommittedFiles,
    ) -> None:
        self.root = root
        self.keys = keys
        self.failures = failures
        self.cache = cache
        self.placement = placement
        self.files = files
        self.sops_files: dict[str, _OpenedSops | SealedGitopsError] = {}

    def fail(self, doc: Document, error: SealedGitopsError) -> None:
        error.with_file(doc.file)
        if error.location is None:
            error.location = f"document {doc.index}"
        if self.failures is None:
            raise error
        what = doc.id.describe() if doc.id else None
        self.failures.append(
            Failure(file=doc.file, index=doc.index, object=what, reason=error.reason, error=error)
        )

    def sops_branches(self, doc: Document) -> _OpenedSops:
        cached = self.sops_files.get(doc.file)
        if cached is None:
            cached = self._decrypt_sops_file(doc.file)
            self.sops_files[doc.file] = cached
        if isinstance(cached, SealedGitopsError):
            raise cached
        return cached

    def _decrypt_sops_file(self, file: str) -> _OpenedSops | SealedGitopsError:
        if self.keys.sops is None:
            return NoMatchingKey("no SOPS keys were given to decrypt this file", file=file)
        unwrapper = self.keys.sops
        try:
            # the bytes (and SOPS tree) the render stage read, else the file as committed now
            given = self.files.sops_input(file)
            # (bounded by the loader's size limit either way)
            data = given.data if given is not None else self.files.read(file)
            tree = given.tree if given is not None else None

            def opened() -> _OpenedSops:
                document = decrypt_document(data, unwrapper=unwrapper, file=file, parsed=tree)
                branches = [tree_to_python(b) for b in document.branches]
                return _OpenedSops(branches, document.metadata.rules, document.data_key)

            if self.cache is None:
                return opened()
            return self.cache.get_or_compute("decrypted", file, data, opened)
        except SealedGitopsError as exc:
            return exc.with_file(file)
        except OSError as exc:
            return FormatError(f"cannot read: {exc.strerror}", file=file)

    def committed(self, doc: Document) -> Mapping[str, Any]:
        """The source document of a transformed one, parsed as committed (once per build)."""
        for index, data in self.files.documents(doc.file):
            if index == doc.index and isinstance(data, Mapping):
                return data
        raise FormatError(f"document {doc.index} not found in the committed file", file=doc.file)

    def open(self, doc: Document) -> dict[str, Any]:
        if doc.kind is DocKind.SOPS:
            opened = self.sops_branches(doc)  # the MAC of the file as committed, verified
            if not 0 <= doc.index < len(opened.branches):
                raise FormatError(f"document {doc.index} not found after decryption", file=doc.file)
            committed: Mapping[str, Any] = doc.data
            if doc.transformed:
                committed = self.committed(doc)
                plain = open_transformed(
                    doc.data,
                    committed,
                    data_key=opened.data_key,
                    rules=opened.rules,
                    patched=doc.patched,
                )
                # The binding trusts only a MAC-covered namespace: the committed one.
                _refuse_moved_namespace(plain, opened.branches[doc.index], self.keys.sops_binding)
            else:
                plain = dict(opened.branches[doc.index])
                register_encrypted(doc.data, plain)
            check_sops_binding(
                plain,
                committed,
                binding=self.keys.sops_binding,
                mac_only_encrypted=opened.rules.mac_only_encrypted,
                placement=self.placement,
            )
            # after decryption: kind and apiVersion may be encrypted too (the MAC covers them)
            _refuse_plaintext_outside_a_secret(plain, file=doc.file)
            return plain
        if doc.kind is DocKind.SEALED:
            if self.keys.sealing is None or len(self.keys.sealing) == 0:
                raise NoMatchingKey("no sealing keys were given to unseal this SealedSecret")
            sealed = parse_sealed_secret(doc.data, file=doc.file)
            # Opened under the scope of where the Secret lands, not where the file says.
            placed, result = unseal_where_it_lands(
                self.keys.sealing, sealed, placement=self.placement, file=doc.file
            )
            # The keyring registered every opened value (raw and base64) already.
            return secret_manifest(placed, result.values)
        return dict(doc.data)


def decrypt_documents(
    documents: Sequence[Document],
    *,
    root: Path,
    keys: DecryptionKeys,
    allow_plain_secrets: bool = False,
    failures: list[Failure] | None = None,
    cache: ContentCache | None = None,
    placement: Placement | None = None,
    files: CommittedFiles | None = None,
) -> list[RenderedObject]:
    """Open every encrypted document; plain ones pass through unchanged.

    ``root`` is the repository root the documents' ``file`` fields are relative to (SOPS files are
    re-read from there, so the MAC is checked over the bytes as committed). With ``failures`` given,
    a failing document is appended there and left out (isolate); without it the first failure
    raises (atomic). Objects whose ids were hidden by encryption are checked for duplicates here.
    ``cache`` reuses what the same bytes decrypted to before: drop it when ``keys`` change.
    ``placement`` says where the objects will land (a Sync's target and own namespace); without
    it each object is judged where its file puts it. ``files``: the build's
    :class:`CommittedFiles` that rendered ``documents`` (the bytes and SOPS trees it read are
    used instead of reading and parsing each file again).
    """
    stage = _Stage(
        root=root,
        keys=keys,
        failures=failures,
        cache=cache,
        placement=placement or Placement(),
        files=files if files is not None else CommittedFiles(root),
    )
    out: list[RenderedObject] = []
    seen: dict[ObjectId, RenderedObject] = {}
    for doc in documents:
        try:
            if doc.kind is DocKind.PLAIN_SECRET and not allow_plain_secrets:
                raise NotEncryptedError(
                    "a plain Secret in Git is refused: encrypt it with `sealed-gitops encrypt` or "
                    "`seal` (or allow plain secrets explicitly)"
                )
            obj = stage.open(doc)
            obj_id = _identify(obj, doc)
            # Nothing that still holds ciphertext or SOPS metadata leaves this stage.
            refuse_leftover_ciphertext(obj, what=obj_id.describe())
            if obj_id in seen:
                raise FormatError(f"{obj_id.describe()} is also defined in {seen[obj_id].location}")
        except SealedGitopsError as exc:
            stage.fail(doc, exc)
            continue
        rendered = RenderedObject(
            id=obj_id, data=obj, file=doc.file, index=doc.index, source=doc.kind, via=doc.via
        )
        seen[obj_id] = rendered
        out.append(rendered)
    return out


def _refuse_plaintext_outside_a_secret(plain: Mapping[str, Any], *, file: str) -> None:
    """Invariant 1: plaintext reaches nothing but Secrets. A SOPS-encrypted ConfigMap or custom
    resource would carry its decrypted values into an object anyone who may read that kind
    reads (Flux decrypts only Secrets too, and applies the others still encrypted)."""
    kind, version = plain.get("kind"), plain.get("apiVersion")
    if kind == "Secret" and version == "v1":
        return
    raise NotEncryptedError(
        f"a SOPS-encrypted {kind or 'document'} ({version or 'no apiVersion'}) is not decrypted: "
        "plaintext goes only into v1 Secrets; keep the values in an encrypted Secret and refer "
        "to it",
        file=file,
    )
