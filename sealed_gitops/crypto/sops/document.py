"""Whole SOPS documents: load, unwrap the data key, decrypt and verify, encrypt and write.

Why: this is the one place that ties the stores, the tree walk, the MAC and the master keys
together, with the safety limits applied before any parsing and every error naming the file. The
operator's hot path is :func:`decrypt_document`: one parse, one data-key unwrap, one walk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealed_gitops.errors import (
    CryptoError,
    FormatError,
    InputError,
    IntegrityError,
    KeyProviderError,
    LimitExceeded,
    MacMismatch,
    NoMatchingKey,
    NotEncryptedError,
    SealedGitopsError,
)

from . import shamir
from .binary_store import dump_binary, load_binary, looks_encrypted
from .dotenv_store import dump_dotenv, dump_dotenv_value, load_dotenv
from .ini_store import dump_ini, dump_ini_value, load_ini
from .json_store import dump_json, dump_json_value, load_json
from .masterkey import KeyStanza, MasterKey, Unwrapper
from .metadata import Metadata, parse_metadata
from .tree import Stash, TreeBranch, decrypt_branches, encrypt_branches
from .values import decrypt_value, encrypt_value
from .yaml_emit import dump_yaml, dump_yaml_value
from .yaml_load import load_yaml

__all__ = [
    "DEFAULT_STORES",
    "FORMATS",
    "MAX_INPUT_BYTES",
    "Decrypted",
    "StoreSettings",
    "decrypt_document",
    "detect_format",
    "dump_tree",
    "dump_value",
    "encrypt_tree",
    "load_tree",
    "now_rfc3339",
    "sops_format",
    "split_metadata",
    "stored_format",
    "unwrap_data_key",
]

#: Inputs larger than this are refused before parsing (Flux uses the same cap).
MAX_INPUT_BYTES = 5 * 1024 * 1024


@contextmanager
def _naming(file: str | None) -> Iterator[None]:
    """Attach ``file`` to a project error raised inside (the same error, re-raised as is)."""
    try:
        yield
    except SealedGitopsError as exc:
        if file:
            exc.with_file(file)
        raise


#: Every store sops 3.11 has, by the names ``--input-type``/``--output-type`` take.
FORMATS = ("yaml", "json", "dotenv", "ini", "binary")

#: Per-format writing settings from ``.sops.yaml`` ``stores:`` (see :class:`StoreSettings`).


@dataclass(frozen=True)
class StoreSettings:
    """``.sops.yaml`` ``stores:``: ``yaml: indent`` (default 4) and ``json``/``json_binary:
    indent`` (default a tab; ``0`` and up means that many spaces)."""

    yaml_indent: int = 4
    json_indent: int = -1
    json_binary_indent: int = -1

    def json_step(self, *, binary: bool) -> str:
        width = self.json_binary_indent if binary else self.json_indent
        return "\t" if width < 0 else " " * width


DEFAULT_STORES = StoreSettings()


def _check_format(fmt: str, file: str | None) -> str:
    if fmt not in FORMATS:
        raise InputError(f"unsupported format {fmt!r} ({', '.join(FORMATS)})", file=file)
    return fmt


def sops_format(file: str | None, fmt: str | None = None) -> str:
    """The store sops 3.11 picks: the flag, else by extension (case-sensitive, like sops):
    ``.yaml``/``.yml``, ``.json``, ``.env``, ``.ini``, and the binary store for anything else.

    Standard input (no file name) is YAML unless a format is given.
    """
    if fmt:
        return _check_format(fmt, file)
    if not file or file in ("-", "<stdin>"):
        return "yaml"
    if file.endswith((".yaml", ".yml")):
        return "yaml"
    if file.endswith(".json"):
        return "json"
    if file.endswith(".env"):
        return "dotenv"
    if file.endswith(".ini"):
        return "ini"
    return "binary"


def detect_format(file: str | None, fmt: str | None = None) -> str:
    """The store of a file met inside a repository (manifests, audit): like :func:`sops_format`
    for ``.json``, ``.env`` and ``.ini``, but YAML (not binary) for any other name, since the
    callers feed it Kubernetes manifests under whatever name kustomize gave them."""
    if fmt:
        return _check_format(fmt, file)
    lowered = (file or "").lower()
    if lowered.endswith(".json"):
        return "json"
    if file and file.endswith(".env"):
        return "dotenv"
    if file and file.endswith(".ini"):
        return "ini"
    return "yaml"


def stored_format(data: bytes, *, file: str | None, fmt: str | None = None) -> str:
    """The store of an existing SOPS file, picked as sops picks it, lenient for manifests.

    sops (and Flux, for generator sources) reads any name it does not know as the binary store,
    whose encrypted form is a JSON envelope; every rewrite must keep that envelope, or neither
    opens the file again. A file under such a name that is not an envelope keeps the manifest
    rule (YAML), as ``decrypt_document`` reads what kustomize named.
    """
    if fmt:
        return sops_format(file, fmt)
    kind = sops_format(file)
    if kind == "binary" and not looks_encrypted(data):
        return detect_format(file)
    return kind


def load_tree(
    data: bytes, *, fmt: str, file: str | None, encrypted: bool | None = None
) -> list[TreeBranch]:
    """Parse bytes with the size and encoding limits; errors name ``file``.

    ``encrypted`` matters to the binary store only: the envelope (True), the raw bytes (False),
    or look (None).
    """
    if len(data) > MAX_INPUT_BYTES:
        limit = MAX_INPUT_BYTES // (1024 * 1024)
        raise LimitExceeded(f"input is larger than {limit} MiB", file=file)
    if fmt == "binary":
        with _naming(file):
            return load_binary(data, encrypted=encrypted)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"input is not UTF-8 (byte offset {exc.start})", file=file) from exc
    if text.startswith("\ufeff"):
        text = text[1:]
    with _naming(file):
        if fmt == "json":
            return load_json(text)
        if fmt == "dotenv":
            return load_dotenv(text)
        if fmt == "ini":
            return load_ini(text)
        return load_yaml(text)


def dump_tree(
    branches: list[TreeBranch], *, fmt: str, stores: StoreSettings = DEFAULT_STORES
) -> bytes:
    """Write branches in ``fmt``; a ``sops`` key makes the encrypted form (binary: envelope)."""
    if fmt == "json":
        return dump_json(branches, indent=stores.json_step(binary=False))
    if fmt == "binary":
        return dump_binary(branches, indent=stores.json_step(binary=True))
    if fmt == "dotenv":
        return dump_dotenv(branches)
    if fmt == "ini":
        return dump_ini(branches)
    return dump_yaml(branches, indent=stores.yaml_indent)


def dump_value(value: Any, *, fmt: str) -> bytes:
    """A lone value in the store's format (``--extract`` of a number, a bool, a list)."""
    if fmt == "json":
        return dump_json_value(value)
    if fmt == "dotenv":
        return dump_dotenv_value(value)
    if fmt == "binary":
        raise InputError(
            "Binary files are not structured and extracting a single value is not possible"
        )
    if fmt == "ini":
        return dump_ini_value(value)
    return dump_yaml_value(value)


def split_metadata(
    branches: list[TreeBranch], *, file: str | None
) -> tuple[list[TreeBranch], Metadata]:
    """Remove the ``sops`` key from every document; parse the first one found."""
    meta_branch = None
    data: list[TreeBranch] = []
    for branch in branches:
        kept = TreeBranch()
        for key, value in branch:
            if key == "sops" and isinstance(key, str):
                if meta_branch is None:
                    meta_branch = value
                continue
            kept.append((key, value))
        data.append(kept)
    if not isinstance(meta_branch, TreeBranch):
        raise NotEncryptedError("not a SOPS document (no sops metadata)", file=file)
    with _naming(file):
        return data, parse_metadata(meta_branch)


def unwrap_data_key(meta: Metadata, unwrapper: Unwrapper, *, file: str | None) -> bytes:
    """Ask ``unwrapper`` for one stanza per key group; combine Shamir shares when needed."""
    groups = meta.key_groups
    needed = 1 if len(groups) <= 1 else (meta.shamir_threshold or len(groups))
    parts: list[bytes] = []
    tried: list[str] = []
    provider_errors: list[KeyProviderError] = []
    for group in groups:
        for stanza in group:
            tried.append(stanza.key_id)
            try:
                part = unwrapper.unwrap(stanza)
            except KeyProviderError as exc:
                provider_errors.append(exc)
                continue
            except CryptoError as exc:
                # a stanza that is ours but does not open (tampered): say which file
                if file:
                    exc.with_file(file)
                raise
            if part is not None:
                parts.append(part)
                break
        if len(parts) >= needed:
            break
    if len(parts) < needed:
        ids = ", ".join(tried) or "none"
        if provider_errors:
            raise KeyProviderError(
                f"no key could unwrap the data key ({provider_errors[0].reason}); tried: {ids}",
                file=file,
            )
        raise NoMatchingKey(
            f"no available key can decrypt this file (need {needed} of {len(groups)} "
            f"key groups); tried: {ids}",
            file=file,
        )
    key = parts[0] if len(groups) <= 1 else shamir.combine(parts[:needed])
    if len(key) != 32:
        raise CryptoError("the unwrapped data key is not 32 bytes", file=file)
    return key


@dataclass
class Decrypted:
    """A decrypted document and what is needed to write it back with stable ciphertext."""

    branches: list[TreeBranch]
    metadata: Metadata
    data_key: bytes
    fmt: str
    stash: Stash = field(default_factory=dict)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decrypt_document(
    data: bytes,
    *,
    unwrapper: Unwrapper,
    file: str | None = None,
    fmt: str | None = None,
    ignore_mac: bool = False,
    data_key: bytes | None = None,
    keep_stash: bool = False,
    parsed: list[TreeBranch] | None = None,
) -> Decrypted:
    """Decrypt and verify a document. ``ignore_mac=True`` is for recovery only.

    ``parsed``: the YAML tree of exactly ``data`` as :func:`load_tree` builds it, when the
    caller has it already (a build's manifest loader parses a SOPS file once for both readers,
    ``render/loader.py``); the MAC is verified over it all the same. Ignored for other formats.
    """
    kind = detect_format(file, fmt)
    if parsed is not None and kind == "yaml" and len(data) <= MAX_INPUT_BYTES:
        tree = parsed
    else:
        tree = load_tree(data, fmt=kind, file=file, encrypted=True)
    encrypted, meta = split_metadata(tree, file=file)
    key = data_key if data_key is not None else unwrap_data_key(meta, unwrapper, file=file)
    stash: Stash | None = {} if keep_stash else None
    with _naming(file):
        plain, computed = decrypt_branches(encrypted, key=key, rules=meta.rules, stash=stash)
    if not ignore_mac:
        _verify_mac(meta, key, computed, file=file)
    return Decrypted(plain, meta, key, kind, stash or {})


def _verify_mac(meta: Metadata, key: bytes, computed: str, *, file: str | None) -> None:
    if not meta.mac:
        raise MacMismatch("the file has no MAC", file=file)
    try:
        stored, _ = decrypt_value(AESGCM(key), meta.mac, meta.lastmodified)
    except (FormatError, IntegrityError) as exc:
        raise MacMismatch(
            "the MAC does not authenticate (metadata or lastmodified changed)", file=file
        ) from exc
    if not isinstance(stored, str) or stored.upper() != computed:
        raise MacMismatch(
            "MAC mismatch: the file was modified outside sops/sealed-gitops", file=file
        )


def wrap_data_key(
    data_key: bytes, key_groups: Sequence[Sequence[MasterKey]], *, threshold: int, file: str | None
) -> list[list[KeyStanza]]:
    """Wrap ``data_key`` (or its Shamir shares) for every master key, group by group."""
    groups = [list(g) for g in key_groups]
    if not groups or any(not g for g in groups):
        raise InputError("at least one non-empty key group is needed", file=file)
    if len(groups) == 1:
        parts = [data_key]
    else:
        parts = shamir.split(data_key, parts=len(groups), threshold=threshold or len(groups))
    return [[mk.wrap(part) for mk in group] for group, part in zip(groups, parts, strict=True)]


def encrypt_tree(
    branches: list[TreeBranch],
    *,
    fmt: str,
    metadata: Metadata,
    data_key: bytes,
    stash: Stash | None = None,
    lastmodified: str | None = None,
    file: str | None = None,
    stores: StoreSettings = DEFAULT_STORES,
) -> bytes:
    """Encrypt plain branches with ``data_key`` and write them with ``metadata`` (MAC renewed).

    The binary store holds one value that is always encrypted, so its rules are written as
    given, never defaulted: a first encryption passes none (sops writes no rule then), and a
    rewrite passes the file's parsed metadata, which like sops' carries the default
    ``unencrypted_suffix`` (sops 3.11 writes it on every rewrite of a binary file).
    """
    binary = fmt == "binary"
    meta = metadata if binary else metadata.with_rules_default()
    with _naming(file):
        encrypted, mac = encrypt_branches(branches, key=data_key, rules=meta.rules, stash=stash)
    stamp = lastmodified or now_rfc3339()
    aead = AESGCM(data_key)
    sealed_mac = _same_mac(aead, meta, mac, stamp) or encrypt_value(aead, mac, stamp)
    meta = replace(meta, lastmodified=stamp, mac=sealed_mac)
    out = []
    for branch in encrypted:
        with_meta = TreeBranch(branch)
        with_meta.append(("sops", meta.to_branch(json_style=fmt in ("json", "binary"))))
        out.append(with_meta)
    return dump_tree(out, fmt=fmt, stores=stores)


def _same_mac(aead: AESGCM, meta: Metadata, mac: str, stamp: str) -> str | None:
    """The file's own MAC ciphertext when it seals the same MAC under the same stamp.

    ``updatekeys`` keeps values and ``lastmodified``; like sops, it then keeps ``mac`` byte for
    byte instead of re-sealing it under a fresh IV, so the diff shows only the key stanzas.
    """
    if not meta.mac or meta.lastmodified != stamp:
        return None
    try:
        previous, _ = decrypt_value(aead, meta.mac, stamp)
    except SealedGitopsError:
        return None
    return meta.mac if previous == mac else None


def new_data_key() -> bytes:
    return os.urandom(32)
