"""The SOPS tree: ordered maps, lists and comments, walked in document order.

Why: both the MAC and the additional data of every value depend on *where* a value sits and in
which order the leaves are met, so encryption, decryption and the MAC share one walk that mirrors
sops' ``walkBranch``/``walkSlice`` (``sops.go``) step for step, including its quirks:

* the path is the list of map keys; list items add nothing to it (AAD = ``a:b:``);
* ``null`` is neither encrypted nor hashed; comments are encrypted but never hashed;
* an encrypted comment inside a *list* comes back from sops' walk as a plain string item
  (``- ENC[…,type:comment]``), and sops' decrypt then hashes it — mirrored so MACs agree;
* the encrypted/unencrypted suffix and regex rules are applied in sops' order, on every key of
  the path; the comment rules look at the stack of comments seen before the value.

The tree types are plain Python: :class:`TreeBranch` is a list of ``(key, value)`` pairs (a key is
a ``str`` or a :class:`~.values.Comment`), lists are ``list``, leaves are ``str``/``int``/
``float``/``bool``/``bytes``/``None``/:class:`~.values.Timestamp`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealed_gitops.errors import FormatError, IntegrityError
from sealed_gitops.redact import register

from .values import Comment, decrypt_value, encrypt_value, to_bytes

__all__ = [
    "MAC_ONLY_ENCRYPTED_INIT",
    "RULE_FIELDS",
    "Rules",
    "Stash",
    "TreeBranch",
    "decrypt_branches",
    "encrypt_branches",
]

#: sha256("sops"): prefixes the MAC when ``mac_only_encrypted`` is on, so the two MACs never
#: collide.
MAC_ONLY_ENCRYPTED_INIT = hashlib.sha256(b"sops").digest()

#: (additional data, digest of type + plaintext) -> the previous ciphertexts of that pair, in
#: document order; see :func:`encrypt_branches`. A list, because equal values under one path (list
#: items add nothing to the path) each keep their own ciphertext.
Stash = dict[tuple[str, bytes], list[str]]

Path = tuple[str, ...]
Leaf = Callable[[Any, Path, list[list[str]]], Any]


class TreeBranch(list[tuple[Any, Any]]):
    """An ordered mapping: ``(key, value)`` pairs; comment items have a Comment key and None."""

    def get(self, key: str, default: Any = None) -> Any:
        for k, v in self:
            if k == key and isinstance(k, str):
                return v
        return default

    def keys_in_order(self) -> list[str]:
        return [k for k, _ in self if isinstance(k, str)]


#: The six encryption rules of :class:`Rules`, in the order sops writes them to the metadata and
#: reads them from ``.sops.yaml``.
RULE_FIELDS = (
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
)


@dataclass(frozen=True)
class Rules:
    """Which values get encrypted; at most one of the six rules is set (sops refuses more)."""

    unencrypted_suffix: str = ""
    encrypted_suffix: str = ""
    unencrypted_regex: str = ""
    encrypted_regex: str = ""
    unencrypted_comment_regex: str = ""
    encrypted_comment_regex: str = ""
    mac_only_encrypted: bool = False

    def should_encrypt(self, path: Path, stack: list[list[str]], is_comment: bool) -> bool:
        encrypted = True
        if self.unencrypted_suffix and any(p.endswith(self.unencrypted_suffix) for p in path):
            encrypted = False
        if self.encrypted_suffix:
            encrypted = any(p.endswith(self.encrypted_suffix) for p in path)
        if self.unencrypted_regex and any(
            _regex(self.unencrypted_regex).search(p) for p in path
        ):
            encrypted = False
        if self.encrypted_regex:
            encrypted = any(_regex(self.encrypted_regex).search(p) for p in path)
        if self.unencrypted_comment_regex:
            rx = _regex(self.unencrypted_comment_regex)
            if any(rx.search(c) for level in stack for c in level):
                encrypted = False
        if self.encrypted_comment_regex:
            rx = _regex(self.encrypted_comment_regex)
            encrypted = False
            last_level = len(stack) - 1
            for i, level in enumerate(stack):
                for j, c in enumerate(level):
                    # The comment that carries the marker is not itself encrypted.
                    if is_comment and i == last_level and j == len(level) - 1:
                        continue
                    if rx.search(c):
                        return True
        return encrypted


@lru_cache(maxsize=64)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise FormatError(f"invalid regular expression {pattern!r} in the sops metadata") from exc


def _walk_value(value: Any, path: Path, stack: list[list[str]], leaf: Leaf) -> Any:
    if isinstance(value, TreeBranch):
        return _walk_branch(value, path, stack, leaf)
    if isinstance(value, list):
        return _walk_list(value, path, stack, leaf)
    if value is None:
        return None
    if isinstance(value, bytes):  # sops walks []byte as a string
        value = value.decode("utf-8", "surrogateescape")
    return leaf(value, path, stack)


def _walk_list(items: list[Any], path: Path, stack: list[list[str]], leaf: Leaf) -> list[Any]:
    stack = [*stack, []]
    out = []
    for item in items:
        is_comment = isinstance(item, Comment)
        if is_comment:
            stack[-1].append(item.value)
        out.append(_walk_value(item, path, stack, leaf))
        if not is_comment:
            stack[-1] = []
    return out


def _walk_branch(branch: TreeBranch, path: Path, stack: list[list[str]], leaf: Leaf) -> TreeBranch:
    stack = [*stack, []]
    out = TreeBranch()
    for key, value in branch:
        if isinstance(key, Comment):
            stack[-1].append(key.value)
            new = leaf(key, path, stack)
            out.append((new if isinstance(new, Comment) else Comment(str(new), key.inline), None))
            continue
        if not isinstance(key, str):
            raise FormatError(f"only string keys are supported (found a {type(key).__name__} key)")
        value_is_comment = isinstance(value, Comment)
        if value_is_comment:
            stack[-1].append(value.value)
        out.append((key, _walk_value(value, (*path, key), stack, leaf)))
        if not value_is_comment:
            stack[-1] = []
    return out


def _digest(value: Any) -> bytes:
    kind = type(value).__name__.encode()
    return hashlib.blake2b(kind + b"\0" + to_bytes(value), digest_size=16).digest()


def encrypt_branches(
    branches: list[TreeBranch],
    *,
    key: bytes,
    rules: Rules,
    stash: Stash | None = None,
) -> tuple[list[TreeBranch], str]:
    """Encrypt every leaf the rules select; return the new tree and the upper-case hex MAC.

    ``stash`` (from :func:`decrypt_branches` with the same data key) maps a value's path and
    plaintext to its previous ciphertexts, which are reused so unchanged values stay
    byte-identical. The n-th occurrence of a (path, plaintext) pair takes the n-th previous
    ciphertext; one occurrence more than before gets a fresh IV, so no ciphertext is ever shared
    by two values (that would show they are equal). ``stash`` itself is not changed.
    """
    aead = AESGCM(key)
    mac = hashlib.sha512()
    if rules.mac_only_encrypted:
        mac.update(MAC_ONLY_ENCRYPTED_INIT)
    used: dict[tuple[str, bytes], int] = {}

    def leaf(value: Any, path: Path, stack: list[list[str]]) -> Any:
        is_comment = isinstance(value, Comment)
        encrypted = rules.should_encrypt(path, stack, is_comment)
        if not is_comment and (encrypted or not rules.mac_only_encrypted):
            mac.update(to_bytes(value))
        if not encrypted:
            return value
        aad = ":".join(path) + ":"
        if stash is not None:
            slot = (aad, _digest(value))
            previous = stash.get(slot, [])
            nth = used.get(slot, 0)
            if nth < len(previous):
                used[slot] = nth + 1
                return previous[nth]
        return encrypt_value(aead, value, aad)

    out = [_walk_branch(b, (), [], leaf) for b in branches]
    return out, mac.hexdigest().upper()


def decrypt_branches(
    branches: list[TreeBranch],
    *,
    key: bytes,
    rules: Rules,
    stash: Stash | None = None,
) -> tuple[list[TreeBranch], str]:
    """Decrypt every leaf the rules select; return the plain tree and the MAC it hashes to.

    Every decrypted string is registered with the redaction layer. When ``stash`` is given it is
    filled for :func:`encrypt_branches`.
    """
    aead = AESGCM(key)
    mac = hashlib.sha512()
    if rules.mac_only_encrypted:
        mac.update(MAC_ONLY_ENCRYPTED_INIT)

    def leaf(value: Any, path: Path, stack: list[list[str]]) -> Any:
        is_comment = isinstance(value, Comment)
        encrypted = rules.should_encrypt(path, stack, is_comment)
        plain = value
        if encrypted:
            aad = ":".join(path) + ":"
            if is_comment:
                try:
                    plain, _ = decrypt_value(aead, value.value, aad)
                except (FormatError, IntegrityError):
                    plain = value  # sops: a comment that does not decrypt was never encrypted
                else:
                    if stash is not None and isinstance(plain, Comment):
                        stash.setdefault((aad, _digest(plain)), []).append(value.value)
            elif isinstance(value, str):
                plain, _ = decrypt_value(aead, value, aad)
                if isinstance(plain, str | bytes):
                    register(plain)
                if stash is not None and value:
                    stash.setdefault((aad, _digest(plain)), []).append(value)
            else:
                raise FormatError(
                    "a value that the encryption rules select is not encrypted "
                    f"(at {':'.join(path) or 'top level'})"
                )
        if not isinstance(plain, Comment) and (encrypted or not rules.mac_only_encrypted):
            mac.update(to_bytes(plain))
        return plain

    out = [_walk_branch(b, (), [], leaf) for b in branches]
    return out, mac.hexdigest().upper()
