"""Opening a SOPS document that kustomize transformed, with its source file's MAC still verified.

Why this module exists: Flux's most common layout is a SOPS-encrypted Secret (only ``data`` and
``stringData`` encrypted) under a kustomization that sets ``namespace:``, labels, a name prefix,
or patches its metadata. The SOPS MAC covers the unencrypted fields too (unless
``mac_only_encrypted``), so the document kustomize prints cannot be verified as it stands; Flux
gives up and turns the MAC check off. We do not. Instead (see docs/pipeline.md, "kustomize
transformers over SOPS documents"):

1. the source file is decrypted and its MAC verified exactly as it is committed, before any
   transformer (the decryption stage does that, as for every SOPS file);
2. kustomize's output document is accepted only if its encrypted values are *the same
   ciphertexts, under the same key paths, in the same order* as the source document's: for every
   key path, the sequence of ``ENC[...]`` strings found there equals the source's (compared as
   parsed strings, so kustomize re-quoting or re-wrapping the YAML changes nothing). So nothing
   was tampered with, borrowed from another file, added, removed, duplicated or moved;
3. each of them is then decrypted with the file's data key under its *output* key path as the
   additional data, so a value that sits anywhere else than where sops put it fails AES-GCM;
4. no value may be in plaintext where the file's encryption rules would have encrypted it (a
   patch adding ``stringData.extra: plain`` is a plaintext secret in Git), and the ``sops``
   metadata block must be the source's, unchanged; it is dropped from the object.

What transformers may change, then, is exactly what a committer without the key could change in
the file anyway by re-encrypting nothing: unencrypted fields. What the MAC protects (the encrypted
values, their places and their order) is checked against the MAC-verified source instead.

One exception, Flux's ``testdata/sops/patches`` layout: a SOPS-encrypted *patch* (decrypted before
kustomize runs, MAC verified) sets values of a SOPS-encrypted resource. Its plaintext then sits
where the resource's ciphertext was. That is accepted only for a value a MAC-verified patch
provides, encrypted, for *this* object (kind, name and namespace as the patch names them under its
MAC, and as the resource's committed file names them) at *this* key path, byte for byte:
:class:`PatchRecord` keeps, per object and key path, keyed digests (HMAC under a random key of the
build, in memory only) of those values. A plain patch, a value moved, or another object's patch
still fails.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealed_gitops.crypto.sops.tree import Rules, Selector
from sealed_gitops.crypto.sops.values import Comment, decrypt_value
from sealed_gitops.errors import FormatError, IntegrityError, NotEncryptedError
from sealed_gitops.redact import register

__all__ = ["PatchRecord", "PatchedValues", "open_transformed"]

KeyPath = tuple[str, ...]

_BUILT = "in the document kustomize built"


def _is_enc(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("ENC[")


#: an object as a patch or a committed file names it: kind, name, namespace (None: none named)
Target = tuple[str, str, str | None]


def _target(doc: Mapping[str, Any]) -> Target | None:
    meta = doc.get("metadata")
    if not isinstance(meta, Mapping):
        return None
    kind, name, namespace = doc.get("kind"), meta.get("name"), meta.get("namespace")
    if not isinstance(kind, str) or not isinstance(name, str) or _is_enc(name):
        return None
    if namespace is not None and not isinstance(namespace, str):
        return None
    return kind, name, namespace


def _digest(key: bytes, value: Any) -> bytes:
    """A keyed digest of a leaf: its type and its exact text (a string's UTF-8 bytes)."""
    body = value.encode("utf-8") if isinstance(value, str) else json.dumps(value, default=repr)
    text = body if isinstance(body, bytes) else body.encode("utf-8")
    return hmac.new(key, type(value).__name__.encode() + b"\0" + text, hashlib.sha256).digest()


@dataclass(frozen=True)
class PatchedValues:
    """The values MAC-verified encrypted patches set on one object, as keyed digests by path."""

    key: bytes = field(repr=False)
    values: Mapping[KeyPath, frozenset[bytes]] = field(repr=False)

    def provides(self, path: KeyPath, value: Any) -> bool:
        digests = self.values.get(path)
        return digests is not None and _digest(self.key, value) in digests


@dataclass
class PatchRecord:
    """Per target object, per key path: what the build's encrypted patches set from ciphertext.

    Filled before kustomize runs (render/generators.py), from each patch file as committed and
    as decrypted (its MAC verified); read by the render stage for a transformed SOPS document.
    """

    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    by_target: dict[Target, dict[KeyPath, set[bytes]]] = field(default_factory=dict, repr=False)

    def add(self, encrypted: Mapping[str, Any], plain: Mapping[str, Any]) -> None:
        """Record one patch document: ``encrypted`` as committed, ``plain`` as decrypted.

        Only values that were ciphertext in the file count, and only when the file's MAC covers
        the target's kind, name and namespace (not ``mac_only_encrypted``).
        """
        target = _target(plain)
        meta = encrypted.get("sops")
        if target is None or not isinstance(meta, Mapping):
            return
        if meta.get("mac_only_encrypted"):
            return  # its MAC does not cover the name and namespace that say which object
        raw, opened = list(_leaves(encrypted, ())), list(_leaves(plain, ()))
        if [p for p, _ in raw] != [p for p, _ in opened]:
            return  # not the same shape: record nothing, so nothing is accepted
        paths = self.by_target.setdefault(target, {})
        for (path, before), (_, after) in zip(raw, opened, strict=True):
            if _is_enc(before):
                paths.setdefault(path, set()).add(_digest(self.key, after))

    def sets(self, path: KeyPath, value: Any) -> bool:
        """Whether an encrypted patch of the build sets exactly ``value`` at ``path``, on any
        object (a generated Secret's name in the output has kustomize's prefix and suffix)."""
        digest = _digest(self.key, value)
        return any(digest in paths.get(path, ()) for paths in self.by_target.values())

    def for_object(self, committed: Mapping[str, Any]) -> PatchedValues | None:
        """What the patches set on the object ``committed`` (a document as its file names it)."""
        target = _target(committed)
        paths = self.by_target.get(target) if target is not None else None
        if not paths:
            return None
        return PatchedValues(self.key, {p: frozenset(d) for p, d in paths.items()})


def _leaves(value: Any, path: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    """(key path, leaf) in document order; list items add nothing to the path (as in sops)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not path and key == "sops":
                continue
            yield from _leaves(item, (*path, str(key)))
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item, path)
    else:
        yield path, value


def _ciphertexts(doc: Mapping[str, Any]) -> dict[KeyPath, list[str]]:
    found: dict[KeyPath, list[str]] = {}
    for path, leaf in _leaves(doc, ()):
        if _is_enc(leaf):
            found.setdefault(path, []).append(leaf)
    return found


def _where(path: KeyPath) -> str:
    return ".".join(path) or "top level"


def _replaced(output: Mapping[str, Any], patched: PatchedValues | None) -> set[KeyPath]:
    """Key paths whose every value in ``output`` is one an encrypted patch provides there."""
    if patched is None:
        return set()
    verdict: dict[KeyPath, bool] = {}
    for path, leaf in _leaves(output, ()):
        ok = leaf is not None and not _is_enc(leaf) and patched.provides(path, leaf)
        verdict[path] = verdict.get(path, True) and ok
    return {path for path, ok in verdict.items() if ok}


def _check_same_ciphertexts(
    output: Mapping[str, Any], source: Mapping[str, Any], patched: PatchedValues | None
) -> None:
    built, committed = _ciphertexts(output), _ciphertexts(source)
    for path in _replaced(output, patched):
        committed.pop(path, None)  # an encrypted patch replaced the values there wholesale
    if built == committed:
        return
    home = {value: path for path, values in committed.items() for value in values}
    for path, values in built.items():
        for value in values:
            if value not in home:
                raise IntegrityError(
                    f"the encrypted value at {_where(path)} {_BUILT} is not this document's "
                    "value in the committed file (tampered, or taken from another document or "
                    "file)"
                )
            if home[value] != path:
                raise IntegrityError(
                    f"the encrypted value of {_where(home[value])} was moved to {_where(path)} "
                    f"{_BUILT}; its key path is its authenticated data, so it cannot move"
                )
    for path in committed:
        if len(built.get(path, ())) < len(committed[path]):
            raise IntegrityError(
                f"an encrypted value at {_where(path)} is missing {_BUILT} (removed, or replaced "
                "by a value that no MAC-verified encrypted patch of this build sets on this "
                "object at that key path)"
            )
    raise IntegrityError(f"encrypted values were duplicated or reordered {_BUILT}")


def _check_no_plaintext(
    output: Mapping[str, Any], rules: Rules, patched: PatchedValues | None
) -> None:
    selector = Selector(rules)
    for path, leaf in _leaves(output, ()):
        if leaf is None or _is_enc(leaf):
            continue
        if patched is not None and patched.provides(path, leaf):
            continue  # set here, from ciphertext, by a MAC-verified patch for this object
        if selector.should_encrypt(path, [], False):
            raise NotEncryptedError(
                f"{_where(path)} is in plaintext {_BUILT}, where this file's encryption rules "
                "encrypt values (added by a patch?)"
            )


def _decrypt(value: Any, path: KeyPath, aead: AESGCM) -> Any:
    if isinstance(value, Mapping):
        return {
            key: _decrypt(item, (*path, str(key)), aead)
            for key, item in value.items()
            if path or key != "sops"
        }
    if isinstance(value, list):
        items = [_decrypt(item, path, aead) for item in value]
        return [item for item in items if not isinstance(item, Comment)]
    if not _is_enc(value):
        return value
    try:
        plain, _ = decrypt_value(aead, value, ":".join(path) + ":")
    except IntegrityError as exc:
        raise IntegrityError(
            f"the encrypted value at {_where(path)} {_BUILT} does not decrypt under that key path"
        ) from exc
    if isinstance(plain, str | bytes):
        register(plain)
        if isinstance(plain, str):
            with contextlib.suppress(ValueError):
                register(base64.b64decode(plain, validate=True))
    elif plain is not None and not isinstance(plain, Comment):
        register(str(plain))
    return plain


def open_transformed(
    output: Mapping[str, Any],
    source: Mapping[str, Any],
    *,
    data_key: bytes,
    rules: Rules,
    patched: PatchedValues | None = None,
) -> dict[str, Any]:
    """The plaintext object for ``output`` (a SOPS document as kustomize printed it).

    ``source`` is the same document as committed, parsed, and ``data_key``/``rules`` those of
    its file, whose MAC the caller has verified. Raises :class:`IntegrityError` (a value
    changed, borrowed, moved, removed or reordered), :class:`NotEncryptedError` (plaintext
    where the rules encrypt) or :class:`FormatError` (the ``sops`` block changed); the caller
    names the file. Every decrypted value is registered for redaction. ``patched``: what the
    build's MAC-verified encrypted patches set on this object (see :class:`PatchRecord`); a
    plaintext value is accepted only where it equals one of those at the same key path.
    """
    if output.get("sops") != source.get("sops"):
        raise FormatError(f"the sops metadata {_BUILT} differs from the file's")
    _check_same_ciphertexts(output, source, patched)
    _check_no_plaintext(output, rules, patched)
    plain = _decrypt(output, (), AESGCM(data_key))
    assert isinstance(plain, dict)  # noqa: S101 - a Mapping in, a dict out
    return plain
