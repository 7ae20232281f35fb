"""Which keys of an encrypted object changed between two versions, told from ciphertext alone.

Why this module exists: with the recommended KeyRing model nobody but the cluster can decrypt,
yet a reviewer still asks "which keys does this change touch?". The ciphertext answers part of
that honestly, and this module says exactly that part and no more (issue 15, Must 6):

* A key only on one side is ``added`` or ``removed``: key names are not encrypted.
* SOPS keeps a value's ciphertext unchanged while its plaintext is unchanged (sops' stash, and
  this project's editing), and every value of a file is encrypted with the file's one data key.
  When the two versions share the data key (one of its wrapped copies is byte-equal, or some
  value's ciphertext is), a value whose ciphertext differs was set anew: ``changed``.
* When no wrapped copy and no ciphertext is shared, the file was re-encrypted with a new data key
  and every ciphertext differs whatever happened to the plaintext: the common keys are
  ``unknown`` and the object is marked re-encrypted, rather than claiming every key changed.
* A SealedSecret seals each value on its own, so a differing ciphertext is a value sealed anew
  (``changed``); when *every* common value of an object with several was sealed anew, that is a
  whole re-seal, which says nothing of the values: ``unknown``, re-encrypted.

Nothing here decrypts, and nothing returned holds a ciphertext or a digest of a plaintext: only
key names and verdicts, so the result can be printed, logged or written to a status.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sealed_gitops.crypto.sealed_document import API_VERSION as SEALED_API_VERSION
from sealed_gitops.crypto.sealed_document import KIND as SEALED_KIND
from sealed_gitops.crypto.sops.masterkey import STANZA_KINDS
from sealed_gitops.crypto.sops.values import is_encrypted

__all__ = [
    "PLACEHOLDER",
    "Ciphertexts",
    "KeyDiff",
    "ciphertexts",
    "compare",
    "placeholders",
]

#: What a preview shows in place of an encrypted value (never the ciphertext itself).
PLACEHOLDER = "<encrypted>"

#: The sections of a v1 Secret whose entries are named by their key alone.
_SECRET_SECTIONS = ("data", "stringData")


@dataclass(frozen=True)
class Ciphertexts:
    """What one version of one encrypted object says without a key.

    ``values`` maps a key name (a Secret's data key, or a dotted path elsewhere) to its
    ciphertext, which is compared and never shown; ``wrapped`` holds the SOPS data key's wrapped
    copies (empty for a SealedSecret, which has no shared data key).
    """

    format: str  # "sops" or "sealed"
    values: Mapping[str, str]
    wrapped: frozenset[str] = frozenset()


@dataclass(frozen=True)
class KeyDiff:
    """Key names by verdict; no value, ciphertext or digest."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    #: keys whose ciphertext changed with the whole object's: the values cannot be told apart
    unknown: tuple[str, ...] = ()
    #: every common value got a new ciphertext under a new data key (or a whole re-seal)
    reencrypted: bool = False
    #: SOPS: the data key was wrapped for other recipients, the values kept their ciphertexts
    rewrapped: bool = False

    @property
    def empty(self) -> bool:
        return not (
            self.added
            or self.changed
            or self.removed
            or self.unknown
            or self.reencrypted
            or self.rewrapped
        )

    def as_dict(self) -> dict[str, list[str]]:
        """The four lists, as ``--output json`` and a Sync's ``status.diff`` carry them."""
        return {
            "added": list(self.added),
            "changed": list(self.changed),
            "removed": list(self.removed),
            "unknown": list(self.unknown),
        }

    def note(self) -> str | None:
        """What a person should read about the object as a whole, if anything."""
        if self.reencrypted:
            return "re-encrypted, values unknown"
        if self.rewrapped:
            return "data key re-wrapped for other recipients, values unchanged"
        return None


def _is_secret(data: Mapping[str, Any]) -> bool:
    return data.get("kind") == "Secret" and data.get("apiVersion") == "v1"


def _is_sealed(data: Mapping[str, Any]) -> bool:
    return data.get("apiVersion") == SEALED_API_VERSION and data.get("kind") == SEALED_KIND


def _leaves(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(value, Mapping):
        for key, child in value.items():
            yield from _leaves(child, (*path, str(key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _leaves(child, (*path, f"[{index}]"))
    else:
        yield path, value


def _key_name(path: tuple[str, ...], *, secret: bool) -> str:
    if secret and len(path) == 2 and path[0] in _SECRET_SECTIONS:
        return path[1]
    return ".".join(path)


def _wrapped_copies(meta: Mapping[str, Any]) -> frozenset[str]:
    """Every wrapped data key (``enc``) in the SOPS metadata, from key groups too."""
    found: set[str] = set()

    def stanzas(block: Mapping[str, Any]) -> None:
        for kind in STANZA_KINDS:
            for stanza in block.get(kind) or ():
                if isinstance(stanza, Mapping) and isinstance(stanza.get("enc"), str):
                    found.add(stanza["enc"])

    stanzas(meta)
    for group in meta.get("key_groups") or ():
        if isinstance(group, Mapping):
            stanzas(group)
    return frozenset(found)


def ciphertexts(data: Mapping[str, Any]) -> Ciphertexts | None:
    """The ciphertexts of a SOPS document or a SealedSecret; None for anything else."""
    meta = data.get("sops")
    if isinstance(meta, Mapping):
        secret = _is_secret(data)
        values = {
            _key_name(path, secret=secret): str(value)
            for path, value in _leaves({k: v for k, v in data.items() if k != "sops"}, ())
            if is_encrypted(value)
        }
        return Ciphertexts("sops", values, _wrapped_copies(meta))
    if _is_sealed(data):
        spec = data.get("spec")
        encrypted = spec.get("encryptedData") if isinstance(spec, Mapping) else None
        values = (
            {str(k): str(v) for k, v in (encrypted or {}).items() if isinstance(v, str)}
            if isinstance(encrypted, Mapping)
            else {}
        )
        return Ciphertexts("sealed", values)
    return None


def compare(old: Ciphertexts | None, new: Ciphertexts | None) -> KeyDiff:
    """The key-level change from ``old`` to ``new`` (None: the object is absent on that side)."""
    before = dict(old.values) if old else {}
    after = dict(new.values) if new else {}
    added = tuple(sorted(k for k in after if k not in before))
    removed = tuple(sorted(k for k in before if k not in after))
    common = [k for k in after if k in before]
    differing = tuple(sorted(k for k in common if before[k] != after[k]))
    if old is None or new is None or not common:
        return KeyDiff(added=added, removed=removed)
    if old.format != new.format:
        # SOPS on one side, sealed on the other: no ciphertext can be compared across formats.
        return KeyDiff(
            added=added, removed=removed, unknown=tuple(sorted(common)), reencrypted=True
        )
    if new.format == "sops":
        shared_key = bool(old.wrapped & new.wrapped) or len(differing) < len(common)
        if not shared_key:
            return KeyDiff(added=added, removed=removed, unknown=differing, reencrypted=True)
        rewrapped = old.wrapped != new.wrapped and not differing
        return KeyDiff(added=added, changed=differing, removed=removed, rewrapped=rewrapped)
    if len(common) > 1 and len(differing) == len(common):
        return KeyDiff(added=added, removed=removed, unknown=differing, reencrypted=True)
    return KeyDiff(added=added, changed=differing, removed=removed)


def placeholders(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a SOPS document with its metadata dropped and every ciphertext replaced by
    :data:`PLACEHOLDER`: the object's shape as the operator would apply it, values unknown."""

    def walk(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return PLACEHOLDER if is_encrypted(value) else value

    return {k: walk(v) for k, v in data.items() if k != "sops"}
