"""The render phase's documents as objects a person may look at without any key.

Why this module exists: the decryption stage (:mod:`sealed_gitops.render.decrypt`) needs the
cluster's keys, and with the recommended KeyRing model nobody else has them, so ``build`` and
``diff`` could preview nothing (issue 15, Must 6). Every other field of an encrypted object is
plain in Git, though: its kind, name, labels and key names. Here each rendered document becomes
the object the operator would apply with every encrypted value replaced by a placeholder (a
SealedSecret becomes the Secret it unseals to), together with its ciphertexts, which
:mod:`sealed_gitops.plan.cipher_diff` compares between two versions. No value is opened and no
ciphertext is put in the shown object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sealed_gitops.crypto.sealed_document import parse_sealed_secret, secret_manifest
from sealed_gitops.errors import NotEncryptedError, SealedGitopsError
from sealed_gitops.plan.cipher_diff import PLACEHOLDER, Ciphertexts, ciphertexts, placeholders
from sealed_gitops.plan.ids import ObjectId
from sealed_gitops.redact import MASK
from sealed_gitops.render.document import DocKind, Document, Failure
from sealed_gitops.render.placement import Placement

__all__ = ["UndecryptedObject", "undecrypted_objects"]


@dataclass(frozen=True)
class UndecryptedObject:
    """One object as far as it can be known without a key.

    ``id`` is None for a SOPS document whose kind or name is itself encrypted; ``data`` is the
    object with placeholders for its encrypted values; ``cipher`` its ciphertexts (None for a
    plain object), to compare and never to show.
    """

    id: ObjectId | None
    data: dict[str, Any]
    file: str
    index: int
    source: DocKind
    cipher: Ciphertexts | None = None

    @property
    def encrypted(self) -> bool:
        return self.cipher is not None

    def describe(self) -> str:
        what = self.id.describe() if self.id else "encrypted document"
        return f"{what} from {self.file} (document {self.index})"


def _sealed_shape(data: Mapping[str, Any], *, file: str) -> dict[str, Any]:
    """The Secret a SealedSecret unseals to, each value a placeholder."""
    sealed = parse_sealed_secret(data, file=file)
    manifest = secret_manifest(sealed, dict.fromkeys(sealed.encrypted_data, b""))
    manifest["data"] = dict.fromkeys(sorted(sealed.encrypted_data), PLACEHOLDER)
    return manifest


def _masked_plain_secret(data: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for section in ("data", "stringData"):
        values = out.get(section)
        if isinstance(values, Mapping):
            out[section] = dict.fromkeys(values, MASK)
    return out


def _mask_plain_leftovers(shape: dict[str, Any]) -> dict[str, Any]:
    """A SOPS Secret may keep some values unencrypted (``unencrypted_suffix``): values of a
    Secret are never shown, encrypted or not."""
    if shape.get("kind") != "Secret":
        return shape
    for section in ("data", "stringData"):
        values = shape.get(section)
        if isinstance(values, Mapping):
            shape[section] = {k: v if v == PLACEHOLDER else MASK for k, v in values.items()}
    return shape


def _one(doc: Document, placement: Placement, allow_plain_secrets: bool) -> UndecryptedObject:
    if doc.kind is DocKind.SOPS:
        shape = _mask_plain_leftovers(placement.place(placeholders(doc.data)))
        oid = ObjectId.of(shape) if doc.id is not None else None
        return UndecryptedObject(oid, shape, doc.file, doc.index, doc.kind, ciphertexts(doc.data))
    if doc.kind is DocKind.SEALED:
        shape = placement.place(_sealed_shape(doc.data, file=doc.file))
        return UndecryptedObject(
            ObjectId.of(shape), shape, doc.file, doc.index, doc.kind, ciphertexts(doc.data)
        )
    if doc.kind is DocKind.PLAIN_SECRET and not allow_plain_secrets:
        raise NotEncryptedError(
            "a plain Secret in Git is refused: encrypt it with `sealed-gitops encrypt` or "
            "`seal` (or allow plain secrets explicitly)"
        )
    data = dict(doc.data)
    if doc.kind in (DocKind.PLAIN_SECRET, DocKind.DECRYPTED):
        data = _masked_plain_secret(data)
    shape = placement.place(data)
    return UndecryptedObject(ObjectId.of(shape), shape, doc.file, doc.index, doc.kind)


def undecrypted_objects(
    documents: Sequence[Document],
    *,
    placement: Placement | None = None,
    allow_plain_secrets: bool = False,
    failures: list[Failure] | None = None,
) -> list[UndecryptedObject]:
    """Every document as an :class:`UndecryptedObject`, placed as the operator would place it.

    A document that cannot be shown (a malformed SealedSecret, a plain Secret in Git) is
    appended to ``failures`` when given, else raised, as the decryption stage does.
    """
    where = placement or Placement()
    out: list[UndecryptedObject] = []
    for doc in documents:
        try:
            out.append(_one(doc, where, allow_plain_secrets))
        except SealedGitopsError as exc:
            exc.with_file(doc.file)
            if failures is None:
                raise
            what = doc.id.describe() if doc.id else None
            failures.append(Failure(doc.file, doc.index, what, exc.reason, exc))
    return out
