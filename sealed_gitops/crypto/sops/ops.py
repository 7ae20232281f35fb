"""The operations the CLI and the operator call: bytes in, bytes out.

Why a thin layer: each command of ``sops`` (``-d``, ``-e``, ``--extract``, ``set``, ``unset``,
``updatekeys``, ``rotate``) is one function here, so the CLI only parses flags and prints. Set and
unset re-encrypt with the file's own data key and a stash of the previous ciphertexts, so only
changed values (plus ``mac`` and ``lastmodified``) differ in the output.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sealed_gitops.errors import AlreadyEncrypted, EmptyDocument, InputError, SealedGitopsError

from .document import (
    DEFAULT_STORES,
    StoreSettings,
    decrypt_document,
    detect_format,
    dump_tree,
    dump_value,
    encrypt_tree,
    load_tree,
    new_data_key,
    sops_format,
    split_metadata,
    stored_format,
    wrap_data_key,
)
from .masterkey import MasterKey, Unwrapper
from .metadata import Metadata
from .tree import Rules, TreeBranch
from .tree_paths import lookup, parse_path, set_at, to_tree, unset_at
from .values import Timestamp

__all__ = [
    "KUBERNETES_ENCRYPTED_REGEX",
    "decrypt_bytes",
    "decrypt_file",
    "encrypt_bytes",
    "extract",
    "is_sops_document",
    "master_key_ids",
    "parse_path",
    "reencrypt_plain",
    "rotate",
    "set_value",
    "unset_value",
    "update_keys",
]

#: What a Kubernetes manifest gets when no rule says otherwise: its metadata stays readable.
KUBERNETES_ENCRYPTED_REGEX = "^(data|stringData)$"


def decrypt_file(
    data: bytes,
    *,
    unwrapper: Unwrapper,
    file: str | None = None,
    fmt: str | None = None,
    stores: StoreSettings = DEFAULT_STORES,
) -> bytes:
    """The plaintext of a SOPS file in its own format's bytes, exactly as ``sops -d FILE`` prints.

    The format is ``fmt`` (``yaml``, ``json``, ``dotenv``, ``ini``, ``binary``) or, as sops picks
    it, from ``file``'s extension: ``.yaml``/``.yml``, ``.json``, ``.env``, ``.ini``, anything
    else the binary store (whose plaintext is the raw bytes, not the envelope). The MAC is always
    verified. This is the one call for code that turns an encrypted source into plaintext bytes
    (generators, patches).
    """
    kind = sops_format(file, fmt)
    doc = decrypt_document(data, unwrapper=unwrapper, file=file, fmt=kind)
    return dump_tree(doc.branches, fmt=kind, stores=stores)


def decrypt_bytes(
    data: bytes,
    *,
    unwrapper: Unwrapper,
    file: str | None = None,
    fmt: str | None = None,
    ignore_mac: bool = False,
    stores: StoreSettings = DEFAULT_STORES,
) -> bytes:
    """``sops -d``: the plain document in its own format.

    The store is the one sops picks (:func:`stored_format`), not the manifest rule of
    ``decrypt_document``: a published ``example.txt`` or ``file.properties`` is a binary-store
    file whose plaintext is its raw bytes, where the manifest rule read it as YAML and printed
    the ``data:`` envelope.
    """
    kind = stored_format(data, file=file, fmt=fmt)
    doc = decrypt_document(data, unwrapper=unwrapper, file=file, fmt=kind, ignore_mac=ignore_mac)
    return dump_tree(doc.branches, fmt=doc.fmt, stores=stores)


def extract(
    data: bytes,
    path: str | Sequence[str | int],
    *,
    unwrapper: Unwrapper,
    file: str | None = None,
    fmt: str | None = None,
    stores: StoreSettings = DEFAULT_STORES,
) -> bytes:
    """``sops -d --extract``: a scalar as its raw text, a subtree in the file's format."""
    parts = parse_path(path) if isinstance(path, str) else list(path)
    doc = decrypt_document(
        data, unwrapper=unwrapper, file=file, fmt=stored_format(data, file=file, fmt=fmt)
    )
    value = lookup(doc.branches[0], parts, file=file)
    if isinstance(value, TreeBranch):
        return dump_tree([value], fmt=doc.fmt, stores=stores)
    if isinstance(value, bytes):
        return value
    if isinstance(value, str) and not isinstance(value, Timestamp):
        return value.encode("utf-8", "surrogateescape")
    # Like sops, anything else is the store's own rendering of a lone value (YAML ends in \n).
    return dump_value(value, fmt=doc.fmt)


def _rewrite(
    data: bytes,
    *,
    unwrapper: Unwrapper,
    file: str | None,
    fmt: str | None,
    edit: Any,
    stores: StoreSettings = DEFAULT_STORES,
) -> bytes:
    kind = stored_format(data, file=file, fmt=fmt)
    doc = decrypt_document(data, unwrapper=unwrapper, file=file, fmt=kind, keep_stash=True)
    edit(doc.branches)
    return encrypt_tree(
        doc.branches,
        fmt=doc.fmt,
        metadata=doc.metadata,
        data_key=doc.data_key,
        stash=doc.stash,
        file=file,
        stores=stores,
    )


def set_value(
    data: bytes,
    path: str | Sequence[str | int],
    value_json: str,
    *,
    unwrapper: Unwrapper,
    file: str | None = None,
    fmt: str | None = None,
    stores: StoreSettings = DEFAULT_STORES,
) -> bytes:
    """``sops set FILE PATH VALUE``: VALUE is JSON; unchanged values keep their ciphertext."""
    parts = parse_path(path) if isinstance(path, str) else list(path)
    try:
        # sops unmarshals VALUE into interface{}: every JSON number is a float64 (type:float)
        value = to_tree(json.loads(value_json, parse_int=float))
    except json.JSONDecodeError as exc:
        raise InputError("the value is not valid JSON", file=file) from exc

    def edit(branches: list[TreeBranch]) -> None:
        branches[0] = set_at(branches[0], parts, value)

    return _rewrite(data, unwrapper=unwrapper, file=file, fmt=fmt, edit=edit, stores=stores)


def unset_value(
    data: bytes,
    path: str | Sequence[str | int],
    *,
    unwrapper: Unwrapper,
    file: str | None = None,
    fmt: str | None = None,
    stores: StoreSettings = DEFAULT_STORES,
) -> bytes:
    """``sops unset FILE PATH``."""
    parts = parse_path(path) if isinstance(path, str) else list(path)
    return _rewrite(
        data,
        unwrapper=unwrapper,
        file=file,
        fmt=fmt,
        edit=lambda branches: unset_at(branches[0], parts, file=file),
        stores=stores,
    )


def reencrypt_plain(
    data: bytes,
    new_plain: bytes,
    *,
    unwrapper: Unwrapper,
    file: str | None = None,
    fmt: str | None = None,
    stores: StoreSettings = DEFAULT_STORES,
) -> bytes | None:
    """For ``edit``: encrypt ``new_plain`` with the file's key and stash; None when unchanged."""
    kind = stored_format(data, file=file, fmt=fmt)
    doc = decrypt_document(data, unwrapper=unwrapper, file=file, fmt=kind, keep_stash=True)
    branches = load_tree(new_plain, fmt=doc.fmt, file=file, encrypted=False)
    if dump_tree(branches, fmt=doc.fmt) == dump_tree(doc.branches, fmt=doc.fmt):
        return None
    return encrypt_tree(
        branches,
        fmt=doc.fmt,
        metadata=doc.metadata,
        data_key=doc.data_key,
        stash=doc.stash,
        file=file,
        stores=stores,
    )


def _stored_threshold(threshold: int, groups: Sequence[Sequence[object]]) -> int:
    """The ``shamir_threshold`` sops writes: none for one group, else all groups by default."""
    return (threshold or len(groups)) if len(groups) > 1 else 0


def encrypt_bytes(
    plain: bytes,
    *,
    key_groups: Sequence[Sequence[MasterKey]],
    threshold: int = 0,
    rules: Rules | None = None,
    file: str | None = None,
    fmt: str | None = None,
    stores: StoreSettings = DEFAULT_STORES,
) -> bytes:
    """``sops -e``: encrypt a plain document for the given key groups and rules.

    Without ``rules``, a Kubernetes manifest (``apiVersion`` and ``kind`` at the top) gets
    :data:`KUBERNETES_ENCRYPTED_REGEX`; anything else sops' default ``_unencrypted`` suffix.
    The store is sops' pick by name (:func:`sops_format`); the binary store gets no rule at all,
    as sops ignores rules (and ``mac_only_encrypted``) when it first encrypts such a file.
    """
    kind = sops_format(file, fmt)
    branches = load_tree(plain, fmt=kind, file=file, encrypted=False)
    if not branches:
        raise EmptyDocument(
            "the file cannot be completely empty, it must contain at least one document", file=file
        )
    if any(b.get("sops") is not None for b in branches):
        raise AlreadyEncrypted("the file is already encrypted", file=file)
    if rules is None:
        first = branches[0] if branches else TreeBranch()
        is_manifest = "apiVersion" in first.keys_in_order() and "kind" in first.keys_in_order()
        rules = Rules(encrypted_regex=KUBERNETES_ENCRYPTED_REGEX) if is_manifest else Rules()
    if kind == "binary":
        rules = Rules()
    key = new_data_key()
    stanzas = wrap_data_key(key, key_groups, threshold=threshold, file=file)
    meta = Metadata(
        key_groups=stanzas, shamir_threshold=_stored_threshold(threshold, stanzas), rules=rules
    )
    return encrypt_tree(branches, fmt=kind, metadata=meta, data_key=key, file=file, stores=stores)


def update_keys(
    data: bytes,
    *,
    unwrapper: Unwrapper,
    key_groups: Sequence[Sequence[MasterKey]],
    threshold: int = 0,
    file: str | None = None,
    fmt: str | None = None,
    stores: StoreSettings = DEFAULT_STORES,
) -> bytes:
    """``sops updatekeys``: re-wrap the SAME data key for new recipients; values unchanged."""
    kind = stored_format(data, file=file, fmt=fmt)
    doc = decrypt_document(data, unwrapper=unwrapper, file=file, fmt=kind, keep_stash=True)
    stanzas = wrap_data_key(doc.data_key, key_groups, threshold=threshold, file=file)
    meta = replace(
        doc.metadata, key_groups=stanzas, shamir_threshold=_stored_threshold(threshold, stanzas)
    )
    return encrypt_tree(
        doc.branches,
        fmt=doc.fmt,
        metadata=meta,
        data_key=doc.data_key,
        stash=doc.stash,
        lastmodified=doc.metadata.lastmodified,
        file=file,
        stores=stores,
    )


def rotate(
    data: bytes,
    *,
    unwrapper: Unwrapper,
    key_groups: Sequence[Sequence[MasterKey]] | None = None,
    threshold: int = 0,
    file: str | None = None,
    fmt: str | None = None,
    stores: StoreSettings = DEFAULT_STORES,
) -> bytes:
    """``sops rotate``: a new data key, every value re-encrypted.

    Without ``key_groups`` the file's own recipients are needed, which only the caller can turn
    back into :class:`MasterKey` objects; so they are required here.
    """
    if key_groups is None:
        raise InputError("rotate needs the recipients (key groups) to wrap the new key", file=file)
    doc = decrypt_document(
        data, unwrapper=unwrapper, file=file, fmt=stored_format(data, file=file, fmt=fmt)
    )
    key = new_data_key()
    stanzas = wrap_data_key(key, key_groups, threshold=threshold, file=file)
    meta = replace(
        doc.metadata, key_groups=stanzas, shamir_threshold=_stored_threshold(threshold, stanzas)
    )
    return encrypt_tree(
        doc.branches, fmt=doc.fmt, metadata=meta, data_key=key, file=file, stores=stores
    )


def _metadata(data: bytes, *, file: str | None, fmt: str | None) -> Metadata:
    kind = detect_format(file, fmt)
    return split_metadata(load_tree(data, fmt=kind, file=file, encrypted=True), file=file)[1]


def is_sops_document(data: bytes, *, file: str | None = None, fmt: str | None = None) -> bool:
    """True when the bytes parse and carry a ``sops`` metadata block with a MAC field."""
    try:
        meta = _metadata(data, file=file, fmt=fmt)
    except SealedGitopsError:  # not parseable, or no sops block (NotEncryptedError)
        return False
    return bool(meta.key_groups) and bool(meta.version or meta.mac)


def master_key_ids(data: bytes, *, file: str | None = None, fmt: str | None = None) -> list[str]:
    """The ids of every master key the document's data key is wrapped for, in file order."""
    return _metadata(data, file=file, fmt=fmt).key_ids()
