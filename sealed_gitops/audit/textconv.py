"""``git diff`` for encrypted files: the document's shape with every ciphertext masked.

Why: a raw diff of a SOPS file shows base64 noise, plus ``mac`` and ``lastmodified`` on every
edit; a SealedSecret diff shows every value rewritten on a reseal. Git's textconv hook lets us
show a readable form instead. Each encrypted value becomes ``<encrypted sha256:…>``, the first 12
hex digits of a SHA-256 of its *ciphertext* (never of the plaintext, which would be a guessing
oracle): equal markers mean an untouched value, a new marker a changed or re-encrypted one, so
the diff shows exactly which keys changed. The ``sops`` block is reduced to its recipients and a
digest of the wrapped data key copies; ``mac`` and ``lastmodified`` are left out because they
change on every edit. Files that are neither SOPS nor sealed pass through unchanged.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sealed_gitops.audit.snapshot import keys_digest
from sealed_gitops.crypto.sealed_document import API_VERSION as SEALED_API_VERSION
from sealed_gitops.crypto.sealed_document import KIND as SEALED_KIND
from sealed_gitops.crypto.sops import TreeBranch
from sealed_gitops.crypto.sops.document import detect_format, dump_tree, load_tree, split_metadata
from sealed_gitops.crypto.sops.values import Comment, is_encrypted
from sealed_gitops.errors import NotEncryptedError, SealedGitopsError

__all__ = ["ciphertext_marker", "masked_text"]

#: Hex digits of the ciphertext digest shown per value: enough to tell values apart in a diff.
MARKER_DIGITS = 12


def ciphertext_marker(ciphertext: str) -> str:
    digest = hashlib.sha256(ciphertext.encode("utf-8", "surrogateescape")).hexdigest()
    return f"<encrypted sha256:{digest[:MARKER_DIGITS]}>"


def _mask_sops(value: Any) -> Any:
    if isinstance(value, TreeBranch):
        out = TreeBranch()
        for key, child in value:
            if isinstance(key, Comment):
                masked = ciphertext_marker(key.value) if is_encrypted(key.value) else key.value
                out.append((Comment(masked, key.inline), None))
            else:
                out.append((key, _mask_sops(child)))
        return out
    if isinstance(value, list):
        return [_mask_sops(v) for v in value]
    if isinstance(value, Comment):
        return (
            Comment(ciphertext_marker(value.value), value.inline)
            if is_encrypted(value.value)
            else value
        )
    if is_encrypted(value):
        return ciphertext_marker(str(value))
    return value


def _mask_values(values: Any) -> Any:
    if not isinstance(values, TreeBranch):
        return values
    return TreeBranch((k, ciphertext_marker(v) if isinstance(v, str) else v) for k, v in values)


def _mask_sealed(doc: TreeBranch) -> TreeBranch:
    out = TreeBranch()
    for key, child in doc:
        if key == "spec" and isinstance(child, TreeBranch):
            out.append(
                (
                    key,
                    TreeBranch(
                        (k, _mask_values(v) if k == "encryptedData" else v) for k, v in child
                    ),
                )
            )
        else:
            out.append((key, child))
    return out


def masked_text(data: bytes, *, file: str) -> bytes:
    """The textconv output for one file version."""
    fmt = detect_format(file)
    try:
        branches = load_tree(data, fmt=fmt, file=file)
    except SealedGitopsError:
        return data
    try:
        docs, meta = split_metadata(branches, file=file)
    except NotEncryptedError:
        if not any(
            b.get("apiVersion") == SEALED_API_VERSION and b.get("kind") == SEALED_KIND
            for b in branches
        ):
            return data
        masked = [_mask_sealed(b) if b.get("kind") == SEALED_KIND else b for b in branches]
        return dump_tree(masked, fmt=fmt)
    except SealedGitopsError:
        return data
    out = [_mask_sops(doc) for doc in docs]
    summary = TreeBranch(
        [
            ("recipients", sorted(set(meta.key_ids()))),
            ("data_key_wrapping", f"sha256:{keys_digest(meta)[:MARKER_DIGITS]}"),
        ]
    )
    if out:
        out[0].append(("sops", summary))
    return dump_tree(out, fmt=fmt)
