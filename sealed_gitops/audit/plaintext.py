"""Keyed hashes of plaintext values, so ``--decrypt`` can tell a re-encryption from a change.

Why keyed hashes and not plain ones: a digest of a password is a password oracle (anyone can
hash guesses and compare). Each run draws a fresh random HMAC key that lives only in this
process's memory and is never printed or stored, so the hashes are useless outside the run; they
are only ever compared with each other, and never leave this module except as equal/not equal.

Decryption uses the same engine and keyrings as ``decrypt`` and ``build``: the SOPS data key is
unwrapped by a :class:`~sealed_gitops.crypto.sops.Unwrapper` (a ``KeyRing``, which caches data
keys, so a history of one file costs one unwrap per distinct data key), SealedSecret values are
opened by a :class:`~sealed_gitops.keys.sealing.SealingKeyring`. Plaintext values are registered
with the redaction layer by the engine as they are produced. A version that does not decrypt
gives no hashes: its values are then compared by ciphertext, and the failure is kept as a
notice naming the file and the error class (never a value).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sealed_gitops.audit.snapshot import SEALED_VALUES_PATH, format_key, plain
from sealed_gitops.crypto.sealed_document import API_VERSION as SEALED_API_VERSION
from sealed_gitops.crypto.sealed_document import KIND as SEALED_KIND
from sealed_gitops.crypto.sealed_document import parse_sealed_secret
from sealed_gitops.crypto.sops import TreeBranch, Unwrapper, decrypt_document
from sealed_gitops.crypto.sops.document import detect_format, load_tree
from sealed_gitops.crypto.sops.values import Comment, to_bytes
from sealed_gitops.errors import NotEncryptedError, SealedGitopsError
from sealed_gitops.keys.sealing import SealingKeyring

__all__ = ["KeyedHasher"]


def _leaves(value: Any, path: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(value, TreeBranch):
        for key, child in value:
            if isinstance(key, str):
                yield from _leaves(child, (*path, key))
    elif isinstance(value, list):
        position = 0
        for child in value:
            if isinstance(child, Comment):
                continue
            yield from _leaves(child, (*path, position))
            position += 1
    elif value is not None:
        yield path, value


@dataclass
class KeyedHasher:
    """Implements :class:`~sealed_gitops.audit.compare.PlaintextJudge` with the given keys."""

    sops: Unwrapper | None = None
    sealing: SealingKeyring | None = None
    #: "file: ErrorClass" for each version that could not be decrypted (no values, no reasons
    #: that could quote one)
    failures: list[str] = field(default_factory=list)
    _key: bytes = field(default_factory=lambda: os.urandom(32), repr=False)

    def _hash(self, value: Any) -> bytes:
        raw = value if isinstance(value, bytes) else to_bytes(value)
        kind = type(value).__name__.encode()
        return hmac.new(self._key, kind + b"\0" + raw, hashlib.sha256).digest()

    def hashes(
        self, *, blob: str, file: str, data: bytes
    ) -> Mapping[tuple[int, str], bytes] | None:
        try:
            if self.sops is not None:
                try:
                    return self._sops_hashes(data, self.sops, file=file)
                except NotEncryptedError:
                    pass
            if self.sealing is not None:
                return self._sealed_hashes(data, self.sealing, file=file)
        except SealedGitopsError as exc:
            self.failures.append(f"{file} ({blob[:12]}): {type(exc).__name__}")
        return None

    def _sops_hashes(
        self, data: bytes, unwrapper: Unwrapper, *, file: str
    ) -> dict[tuple[int, str], bytes]:
        doc = decrypt_document(data, unwrapper=unwrapper, file=file)
        out: dict[tuple[int, str], bytes] = {}
        for index, branch in enumerate(doc.branches):
            for path, value in _leaves(branch, ()):
                out[(index, format_key(path))] = self._hash(value)
        return out

    def _sealed_hashes(
        self, data: bytes, sealing: SealingKeyring, *, file: str
    ) -> dict[tuple[int, str], bytes] | None:
        out: dict[tuple[int, str], bytes] = {}
        for index, branch in enumerate(load_tree(data, fmt=detect_format(file), file=file)):
            if branch.get("apiVersion") != SEALED_API_VERSION or branch.get("kind") != SEALED_KIND:
                continue
            result = sealing.unseal(parse_sealed_secret(plain(branch), file=file), file=file)
            for key, value in result.values.items():
                out[(index, format_key((*SEALED_VALUES_PATH, key)))] = self._hash(value)
        return out or None
