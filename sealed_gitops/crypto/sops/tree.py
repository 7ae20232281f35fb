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

Two things are ours, not sops': the regex rules run on RE2 (:class:`Selector`), since the metadata
that carries them is not authenticated; and each value also gets a :data:`Location` (document,
keys *and* list indexes), the only key under which stable ciphertext reuses a previous value.

The tree types are plain Python: :class:`TreeBranch` is a list of ``(key, value)`` pairs (a key is
a ``str`` or a :class:`~.values.Comment`), lists are ``list``, leaves are ``str``/``int``/
``float``/``bool``/``bytes``/``None``/:class:`~.values.Timestamp`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealed_gitops.crypto.patterns import Pattern, compile_pattern
from sealed_gitops.errors import FormatError, IntegrityError
from sealed_gitops.redact import register

from .values import Comment, decrypt_value, encrypt_value, to_bytes

__all__ = [
    "MAC_ONLY_ENCRYPTED_INIT",
    "RULE_FIELDS",
    "Location",
    "Rules",
    "Selector",
    "Stash",
    "TreeBranch",
    "decrypt_branches",
    "encrypt_branches",
]

#: sha256("sops"): prefixes the MAC when ``mac_only_encrypted`` is on, so the two MACs never
#: collide.
MAC_ONLY_ENCRYPTED_INIT = hashlib.sha256(b"sops").digest()

#: Where a value sits: the document's index, then per level a map key (``str``), a list index
#: (``int`` >= 0, counting every item) or, for a comment among a map's keys, ``-1 - n`` for its
#: n-th comment. Unlike the additional data (map keys only, as in sops), it tells list items and
#: documents apart.
Location = tuple[str | int, ...]

#: (location, digest of type + plaintext) -> the ciphertext that value had there; see
#: :func:`encrypt_branches`.
Stash = dict[tuple[Location, bytes], str]

Path = tuple[str, ...]
Leaf = Callable[[Any, Path, list[list[str]], Location], Any]


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
_REGEX_FIELDS = tuple(name for name in RULE_FIELDS if name.endswith("_regex"))


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
        """One question on its own; a walk asks through one :class:`Selector` instead."""
        return Selector(self).should_encrypt(path, stack, is_comment)


#: What a path rule's pattern says of a map key, shared by every walk in the process: the files
#: of a repository repeat a few keys (``apiVersion``, ``metadata``, ``data``...) under one rule,
#: and RE2 searched each again in every file of every build. Only map keys are kept (a file
#: shows them in clear: never a value or a decrypted comment), only short ones, and at most
#: :data:`_KEY_VERDICTS_MAX` of them (the dict is emptied when full: a hostile file can only
#: make it useless, not large).
_KEY_VERDICTS: dict[tuple[str, str], bool] = {}
_KEY_VERDICTS_MAX = 4096
_KEY_VERDICT_LENGTH = 128


class Selector:
    """The rules of one walk, their patterns compiled once (RE2, linear time).

    The regex rules come from metadata the MAC does not cover, so a committer chooses them: they
    go through :func:`~sealed_gitops.crypto.patterns.compile_pattern` (issue 11, finding 6). A walk
    asks about every key of the path and every comment of the stack for each value, so a long
    key would be searched once per value below it; each answer is remembered for the walk (and
    only for the walk: a decrypted comment is plaintext and must not outlive it). Short map keys'
    answers are remembered for the process (:data:`_KEY_VERDICTS`).
    """

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self._patterns: dict[str, Pattern] = {}
        for name in _REGEX_FIELDS:
            source = getattr(rules, name)
            if source:
                self._patterns[name] = compile_pattern(source, what=f"sops metadata: {name}")
        self._seen: dict[tuple[str, str], bool] = {}

    def _found(self, name: str, texts: Iterable[str]) -> bool:
        pattern = self._patterns[name]
        for text in texts:
            answer = self._seen.get((name, text))
            if answer is None:
                answer = self._seen[(name, text)] = pattern.search(text)
            if answer:
                return True
        return False

    def _found_in_path(self, name: str, path: Path) -> bool:
        """:meth:`_found` for map keys: the answers for short keys are kept across walks."""
        pattern = self._patterns[name]
        for key in path:
            if len(key) > _KEY_VERDICT_LENGTH:
                if self._found(name, (key,)):
                    return True
                continue
            slot = (pattern.source, key)
            answer = _KEY_VERDICTS.get(slot)
            if answer is None:
                answer = pattern.search(key)
                if len(_KEY_VERDICTS) >= _KEY_VERDICTS_MAX:
                    _KEY_VERDICTS.clear()
                _KEY_VERDICTS[slot] = answer
            if answer:
                return True
        return False

    def should_encrypt(self, path: Path, stack: list[list[str]], is_comment: bool) -> bool:
        rules = self.rules
        encrypted = True
        if rules.unencrypted_suffix and any(p.endswith(rules.unencrypted_suffix) for p in path):
            encrypted = False
        if rules.encrypted_suffix:
            encrypted = any(p.endswith(rules.encrypted_suffix) for p in path)
        if rules.unencrypted_regex and self._found_in_path("unencrypted_regex", path):
            encrypted = False
        if rules.encrypted_regex:
            encrypted = self._found_in_path("encrypted_regex", path)
        if rules.unencrypted_comment_regex and self._found(
            "unencrypted_comment_regex", (c for level in stack for c in level)
        ):
            encrypted = False
        if rules.encrypted_comment_regex:
            encrypted = False
            last_level = len(stack) - 1
            for i, level in enumerate(stack):
                for j, c in enumerate(level):
                    # The comment that carries the marker is not itself encrypted.
                    if is_comment and i == last_level and j == len(level) - 1:
                        continue
                    if self._found("encrypted_comment_regex", (c,)):
                        return True
        return encrypted


def _walk_value(value: Any, path: Path, stack: list[list[str]], where: Location, leaf: Leaf) -> Any:
    if isinstance(value, TreeBranch):
        return _walk_branch(value, path, stack, where, leaf)
    if isinstance(value, list):
        return _walk_list(value, path, stack, where, leaf)
    if value is None:
        return None
    if isinstance(value, bytes):  # sops walks []byte as a string
        value = value.decode("utf-8", "surrogateescape")
    return leaf(value, path, stack, where)


def _walk_list(
    items: list[Any], path: Path, stack: list[list[str]], where: Location, leaf: Leaf
) -> list[Any]:
    stack = [*stack, []]
    out = []
    # Every item counts, comments too: an encrypted comment in a list is a string item in the
    # encrypted tree and a Comment in the plain one, and both walks must give it one index.
    for index, item in enumerate(items):
        is_comment = isinstance(item, Comment)
        if is_comment:
            stack[-1].append(item.value)
        out.append(_walk_value(item, path, stack, (*where, index), leaf))
        if not is_comment:
            stack[-1] = []
    return out


def _walk_branch(
    branch: TreeBranch, path: Path, stack: list[list[str]], where: Location, leaf: Leaf
) -> TreeBranch:
    stack = [*stack, []]
    out = TreeBranch()
    comments = 0
    for key, value in branch:
        if isinstance(key, Comment):
            stack[-1].append(key.value)
            new = leaf(key, path, stack, (*where, -1 - comments))
            comments += 1
            out.append((new if isinstance(new, Comment) else Comment(str(new), key.inline), None))
            continue
        if not isinstance(key, str):
            raise FormatError(f"only string keys are supported (found a {type(key).__name__} key)")
        value_is_comment = isinstance(value, Comment)
        if value_is_comment:
            stack[-1].append(value.value)
        out.append((key, _walk_value(value, (*path, key), stack, (*where, key), leaf)))
        if not value_is_comment:
            stack[-1] = []
    return out


def _walk_documents(branches: list[TreeBranch], leaf: Leaf) -> list[TreeBranch]:
    # The path (and so the additional data) starts afresh in every document; the location does
    # not, so a document inserted before another cannot take over the other's ciphertexts.
    return [_walk_branch(b, (), [], (n,), leaf) for n, b in enumerate(branches)]


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

    ``stash`` (from :func:`decrypt_branches` with the same data key) gives the ciphertext each
    value had at its location, reused when the plaintext there is unchanged so unchanged values
    stay byte-identical. Only the same location counts (issue 11, finding 13): a value that moved
    to another list index or document, or a copy of another item, gets a fresh IV, or the
    history would show which items are equal. Each stashed ciphertext is used at most once, so
    no two values ever share one. ``stash`` itself is not changed.
    """
    selector = Selector(rules)
    aead = AESGCM(key)
    mac = hashlib.sha512()
    if rules.mac_only_encrypted:
        mac.update(MAC_ONLY_ENCRYPTED_INIT)
    used: set[tuple[Location, bytes]] = set()

    def leaf(value: Any, path: Path, stack: list[list[str]], where: Location) -> Any:
        is_comment = isinstance(value, Comment)
        encrypted = selector.should_encrypt(path, stack, is_comment)
        if not is_comment and (encrypted or not rules.mac_only_encrypted):
            mac.update(to_bytes(value))
        if not encrypted:
            return value
        aad = ":".join(path) + ":"
        if stash is not None:
            slot = (where, _digest(value))
            previous = stash.get(slot)
            if previous is not None and slot not in used:
                used.add(slot)
                return previous
        return encrypt_value(aead, value, aad)

    out = _walk_documents(branches, leaf)
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
    selector = Selector(rules)
    aead = AESGCM(key)
    mac = hashlib.sha512()
    if rules.mac_only_encrypted:
        mac.update(MAC_ONLY_ENCRYPTED_INIT)

    def leaf(value: Any, path: Path, stack: list[list[str]], where: Location) -> Any:
        is_comment = isinstance(value, Comment)
        encrypted = selector.should_encrypt(path, stack, is_comment)
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
                        stash[(where, _digest(plain))] = value.value
            elif isinstance(value, str):
                plain, _ = decrypt_value(aead, value, aad)
                if isinstance(plain, str | bytes):
                    register(plain)
                if stash is not None and value:
                    stash[(where, _digest(plain))] = value
            else:
                raise FormatError(
                    "a value that the encryption rules select is not encrypted "
                    f"(at {':'.join(path) or 'top level'})"
                )
        if not isinstance(plain, Comment) and (encrypted or not rules.mac_only_encrypted):
            mac.update(to_bytes(plain))
        return plain

    out = _walk_documents(branches, leaf)
    return out, mac.hexdigest().upper()
