"""What one version of one file says about its encrypted values, read without any key.

Why this module exists: the audit compares versions of files, and everything it may compare
without keys is in the ciphertext itself. A SOPS file keeps the ciphertext of a value unchanged
while its plaintext is unchanged (the engine's stash, and sops' own edit), so equal ``ENC[...]``
strings mean an unchanged value; the data key's wrapped copies (the ``sops`` metadata stanzas)
tell a re-wrap for other recipients apart from a value change. A SealedSecret has no shared data
key: each value carries its own wrapped session key, so a reseal changes every ciphertext.

A snapshot is a list of :class:`ObjectValues`, one per document that holds encrypted values, each
with an *identity*: ``Kind/namespace/name`` for a Kubernetes manifest (so an object moved to
another file is recognised), or its position in the file otherwise. Nothing here decrypts,
and nothing here keeps a plaintext: only ciphertexts and digests of ciphertexts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sealed_gitops.audit.records import object_label
from sealed_gitops.crypto.sealed_document import API_VERSION as SEALED_API_VERSION
from sealed_gitops.crypto.sealed_document import KIND as SEALED_KIND
from sealed_gitops.crypto.sops.document import detect_format, load_tree, split_metadata
from sealed_gitops.crypto.sops.metadata import Metadata
from sealed_gitops.crypto.sops.tree import TreeBranch
from sealed_gitops.crypto.sops.values import Comment, is_encrypted
from sealed_gitops.errors import NotEncryptedError, SealedGitopsError

__all__ = [
    "AUDITED_SUFFIXES",
    "EMPTY",
    "FileSnapshot",
    "ObjectValues",
    "format_key",
    "is_audited_path",
    "plain",
    "read_snapshot",
]

#: File names the audit reads; everything else in the history is skipped without parsing.
AUDITED_SUFFIXES = (".yaml", ".yml", ".json")

#: Path of the values of a SealedSecret, as a sops path prefix.
SEALED_VALUES_PATH = ("spec", "encryptedData")


def is_audited_path(path: str) -> bool:
    return path.lower().endswith(AUDITED_SUFFIXES)


def format_key(path: tuple[str | int, ...]) -> str:
    """sops' path syntax: ``["stringData"]["password"]``, list items as ``[0]``."""
    return "".join(
        f"[{part}]" if isinstance(part, int) else f"[{json.dumps(part, ensure_ascii=False)}]"
        for part in path
    )


@dataclass(frozen=True, slots=True)
class ObjectValues:
    """The encrypted values of one document, by sops path, as ciphertext text.

    ``identity`` matches the same object across versions and files; ``label`` is what the
    record's ``object`` field shows (``None`` for a document that is not a Kubernetes object).
    ``keys_digest`` is a digest of the data key's wrapped copies (SOPS only): it changes when
    the file is re-wrapped for other recipients or gets a new data key.
    """

    identity: tuple[str, ...]
    label: str | None
    index: int
    values: Mapping[str, str]
    keys_digest: str | None = None
    #: the master key ids the data key is wrapped for (SOPS only), sorted
    recipients: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FileSnapshot:
    """Every document with encrypted values in one version of one file."""

    format: str  # "sops", "sealed" or "plain"
    objects: tuple[ObjectValues, ...] = field(default_factory=tuple)


EMPTY = FileSnapshot(format="plain")


def plain(value: Any) -> Any:
    """A tree value as plain dicts and lists, comments dropped."""
    if isinstance(value, TreeBranch):
        return {k: plain(v) for k, v in value if isinstance(k, str)}
    if isinstance(value, list):
        return [plain(v) for v in value if not isinstance(v, Comment)]
    return value


def manifest_identity(doc: TreeBranch) -> tuple[tuple[str, ...], str] | None:
    """(identity, label) of a Kubernetes manifest, or None when the document is not one."""
    kind = doc.get("kind")
    metadata = doc.get("metadata")
    if not isinstance(kind, str) or not isinstance(doc.get("apiVersion"), str):
        return None
    if not isinstance(metadata, TreeBranch):
        return None
    name = metadata.get("name")
    namespace = metadata.get("namespace") or ""
    if not isinstance(name, str) or not isinstance(namespace, str):
        return None
    return ("object", kind, namespace, name), object_label(kind, namespace, name)


def _encrypted_leaves(
    value: Any, path: tuple[str | int, ...], meta: Metadata
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, TreeBranch):
        for key, child in value:
            if isinstance(key, str):
                yield from _encrypted_leaves(child, (*path, key), meta)
    elif isinstance(value, list):
        position = 0
        for child in value:
            if isinstance(child, Comment):
                continue
            yield from _encrypted_leaves(child, (*path, position), meta)
            position += 1
    elif is_encrypted(value):
        yield path, str(value)
    elif value == "" and path:
        # sops never encrypts "" but it is still a value the rules select: an emptied password
        # is a change, not a removal.
        names = tuple(p for p in path if isinstance(p, str))
        if meta.rules.should_encrypt(names, [], False):
            yield path, ""


def keys_digest(meta: Metadata) -> str:
    """Digest of the wrapped data key copies: equal digests mean an untouched key wrapping."""
    groups = [[[s.kind, sorted(s.data.items())] for s in group] for group in meta.key_groups]
    text = json.dumps([groups, meta.shamir_threshold], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _sops_snapshot(branches: list[TreeBranch], meta: Metadata) -> FileSnapshot:
    digest = keys_digest(meta)
    recipients = tuple(sorted(set(meta.key_ids())))
    objects = []
    for index, doc in enumerate(branches):
        found = manifest_identity(doc)
        identity, label = found if found else (("document", str(index)), None)
        values = {format_key(path): text for path, text in _encrypted_leaves(doc, (), meta)}
        objects.append(ObjectValues(identity, label, index, values, digest, recipients))
    return FileSnapshot(format="sops", objects=tuple(objects))


def _sealed_snapshot(branches: list[TreeBranch]) -> FileSnapshot:
    objects = []
    for index, doc in enumerate(branches):
        if doc.get("apiVersion") != SEALED_API_VERSION or doc.get("kind") != SEALED_KIND:
            continue
        found = manifest_identity(doc)
        if found is None:
            continue
        spec = doc.get("spec")
        data = spec.get("encryptedData") if isinstance(spec, TreeBranch) else None
        values: dict[str, str] = {}
        if isinstance(data, TreeBranch):
            for key, text in data:
                if isinstance(key, str) and isinstance(text, str):
                    values[format_key((*SEALED_VALUES_PATH, key))] = text
        objects.append(ObjectValues(found[0], found[1], index, values))
    return FileSnapshot(format="sealed" if objects else "plain", objects=tuple(objects))


def read_snapshot(data: bytes, *, file: str) -> FileSnapshot:
    """The snapshot of one file version; a file that is not valid or not encrypted is empty.

    History holds broken and half-written files; the audit must walk past them rather than stop,
    so parse failures give an empty snapshot (its values then read as removed, then added back).
    """
    if not is_audited_path(file) or not data:
        return EMPTY
    # Cheap pre-check: most manifests in a repository are neither SOPS nor sealed.
    if b"sops" not in data and SEALED_KIND.encode() not in data:
        return EMPTY
    try:
        branches = load_tree(data, fmt=detect_format(file), file=file)
    except SealedGitopsError:
        return EMPTY
    try:
        docs, meta = split_metadata(branches, file=file)
    except NotEncryptedError:
        return _sealed_snapshot(branches)
    except SealedGitopsError:
        return EMPTY
    return _sops_snapshot(docs, meta)
