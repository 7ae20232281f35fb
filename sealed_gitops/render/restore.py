"""Putting a SOPS document that went through kustomize back on its committed file.

Why this module exists: kustomize re-emits each document with its keys sorted, and the SOPS MAC
covers the values in their original order, so the document kustomize prints can no longer be
verified. Every manifest file the build reads is known from the kustomization scan; its SOPS
documents are loaded as written and matched to kustomize's output by their MAC. When the output
equals the original (key order aside) the original is used, with its own file and index. When a
transformer changed it (``namespace``, ``namePrefix``, ``commonLabels``, a patch...) the output
is kept, marked ``transformed`` and tied to its source file and index: the decryption stage
verifies the source's MAC as committed and accepts from the output only the source's own
ciphertexts under their own key paths (:mod:`sealed_gitops.render.transformed`). A document that
matches no file it read is refused: its MAC could not be checked anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sealed_gitops.errors import RenderError, SealedGitopsError
from sealed_gitops.render import generators
from sealed_gitops.render.committed import CommittedFiles
from sealed_gitops.render.document import DocKind, Document, make_document

__all__ = ["restore", "sops_originals"]


def sops_originals(files: CommittedFiles, manifests: Iterable[str]) -> dict[str, list[Document]]:
    """SOPS documents of the files a build reads, as written, by MAC."""
    found: dict[str, list[Document]] = {}
    for rel in manifests:
        try:
            parsed = files.documents(rel)
        except SealedGitopsError:
            continue  # kustomize read it fine or failed on it; either way it is reported there
        for index, data in parsed:
            if not isinstance(data, Mapping) or not isinstance(data.get("sops"), Mapping):
                continue
            mac = data["sops"].get("mac")
            if isinstance(mac, str):
                try:
                    doc = make_document(data, file=rel, index=index)
                except SealedGitopsError:
                    continue
                found.setdefault(mac, []).append(doc)
    return found


def _shared_ciphertexts(a: Mapping[str, Any], b: Mapping[str, Any]) -> int:
    return len(set(_enc_strings(a)) & set(_enc_strings(b)))


def _enc_strings(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [s for k, v in value.items() if k != "sops" for s in _enc_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _enc_strings(v)]
    return [value] if isinstance(value, str) and value.startswith("ENC[") else []


def restore(
    doc: Document,
    originals: Mapping[str, list[Document]],
    *,
    via: str,
    staged: generators.Staged | None = None,
) -> Document:
    """The document as committed when kustomize left it unchanged (key order aside); else
    kustomize's document marked ``transformed``, tied to its source file and index, for the
    decryption stage to check against the MAC-verified source (see render/transformed.py)."""
    mac = doc.data["sops"].get("mac") if isinstance(doc.data.get("sops"), Mapping) else None
    candidates = originals.get(mac, []) if isinstance(mac, str) else []
    for original in candidates:
        if original.data == doc.data:  # dict equality ignores key order, as we want here
            return Document(
                original.file, original.index, original.data, original.kind, original.id, via
            )
    if not candidates:
        # Not one of the files the build read, as committed: its MAC cannot be checked there.
        raise RenderError(
            "kustomize built a SOPS-encrypted document that matches no file it read by its MAC "
            "(a patch changed its sops metadata, or a generator made it): its MAC cannot be "
            "verified",
            file=via,
            location=f"document {doc.index}",
        )
    # The documents of one SOPS file share its MAC: the source is the one whose (random-IV,
    # so unique) ciphertexts the output holds. A wrong pick can only fail, never open.
    source = max(candidates, key=lambda c: _shared_ciphertexts(c.data, doc.data))
    # what the build's encrypted patches set on this object, as its committed file names it
    patched = staged.patches.for_object(source.data) if staged is not None else None
    return Document(
        source.file,
        source.index,
        doc.data,
        DocKind.SOPS,
        doc.id,
        via,
        transformed=True,
        patched=patched,
    )
