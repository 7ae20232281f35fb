"""The sealing keyring: a set of RSA private keys that opens SealedSecrets.

Why this module exists: Bitnami's controller opens a value by trying every key it holds, because
the ciphertext does not say which key made it, and when nothing opens it all it can say is
"no key could decrypt". We use the key-id hint our sealer writes to go straight to the right key,
fall back to trying each key for files without hints, and, when nothing opens a value, find out
*why*, so the error says "scope mismatch" or "tampered" instead of only "wrong key".

How the cause is found without a padding oracle: OAEP decryption fails the same way for another
key, another label or altered bytes, and must stay that way. So we only ever ask the library
"does this open, fully, under this key and label?" for the other scopes of the names the file
records (its own name and namespace, and those kubeseal copied into ``spec.template``): a full
success under one of them proves a scope mismatch. Beyond that we read what our sealer
recorded: a scope digest that differs from the scope tried means the file was sealed
elsewhere; a matching digest with a hinted key that does not open the value means the RSA part
was altered. A kubeseal-made value (no hint, no digest) whose file no longer records the name
and namespace it was sealed for stays "no key opens it": without the label, another scope and
another key look the same to OAEP. Only undoing the OAEP padding ourselves would tell them apart
(it reveals the hash of the label used); ``cryptography`` offers no unpadded RSA decryption, and
doing the private-key operation in Python would give up the library's side-channel defences, so
we do not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NoReturn

from cryptography.hazmat.primitives.asymmetric import rsa

from sealed_gitops.crypto import sealed
from sealed_gitops.crypto.sealed import Scope, scope_label
from sealed_gitops.crypto.sealed_document import SealedSecretDoc, label_scope, scope_digest
from sealed_gitops.crypto.sealing_keys import fingerprint
from sealed_gitops.errors import (
    IntegrityError,
    NoMatchingKey,
    ScopeMismatch,
    SealedGitopsError,
)
from sealed_gitops.redact import register

__all__ = ["SealingKeyring", "UnsealResult", "candidate_labels"]


@dataclass
class UnsealResult:
    """The opened values of one SealedSecret, and which key opened each."""

    values: dict[str, bytes] = field(default_factory=dict)
    #: value key -> fingerprint of the private key that opened it
    opened_by: dict[str, str] = field(default_factory=dict)
    #: value key -> fingerprint, only for values opened from ``spec.encryptedData`` itself
    primary_key_ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Candidate:
    """One ciphertext of a value: the primary one or one for an additional cluster."""

    hint: str | None
    value: sealed.SealedValue


class SealingKeyring:
    """Private sealing keys by fingerprint, in the order given (the first is tried first)."""

    def __init__(self, keys: Iterable[rsa.RSAPrivateKey]) -> None:
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        for key in keys:
            self._keys.setdefault(fingerprint(key.public_key()), key)

    @property
    def fingerprints(self) -> list[str]:
        return list(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def unseal(self, doc: SealedSecretDoc, *, file: str | None = None) -> UnsealResult:
        """Open every value of ``doc`` under its own scope, or raise for the first that fails.

        Opened values are registered with the redaction layer before they are returned.
        """
        label = doc.label(file=file)
        result = UnsealResult()
        for key in sorted(doc.encrypted_data):
            location = f"spec.encryptedData.{key}"
            try:
                candidates = self._candidates(doc, key)
                plaintext, used, primary = self._open(candidates, label=label)
                if used is None:
                    self._diagnose(doc, key, candidates, label=label)
            except SealedGitopsError as exc:
                exc.location = exc.location or location
                if file:
                    exc.with_file(file)
                raise
            register(plaintext)
            result.values[key] = plaintext
            result.opened_by[key] = used
            if primary:
                result.primary_key_ids[key] = used
        return result

    def _candidates(self, doc: SealedSecretDoc, key: str) -> list[_Candidate]:
        found = [
            _Candidate(
                hint=doc.key_ids.get(key),
                value=sealed.parse(sealed.decode_value(doc.encrypted_data[key])),
            )
        ]
        for fp, values in doc.additional.items():
            if key in values:
                value = sealed.parse(sealed.decode_value(values[key]))
                found.append(_Candidate(hint=fp, value=value))
        return found

    def _open(
        self, candidates: list[_Candidate], *, label: bytes
    ) -> tuple[bytes, str | None, bool]:
        """(plaintext, fingerprint, from-primary) or (b"", None, False) when nothing opens."""
        tried: set[tuple[int, str]] = set()
        # Hinted keys first: one RSA operation in the common case.
        order = [
            (i, c.hint)
            for i, c in enumerate(candidates)
            if c.hint is not None and c.hint in self._keys
        ]
        order += [(i, fp) for i in range(len(candidates)) for fp in self._keys]
        for index, fp in order:
            if (index, fp) in tried:
                continue
            tried.add((index, fp))
            value = candidates[index].value
            session_key = sealed.unwrap_session_key(value, private_key=self._keys[fp], label=label)
            if session_key is None:
                continue
            try:
                plaintext = sealed.open_value(value, session_key=session_key)
            except IntegrityError as exc:
                exc.key_id = fp
                raise
            return plaintext, fp, index == 0
        return b"", None, False

    def _diagnose(
        self, doc: SealedSecretDoc, key: str, candidates: list[_Candidate], *, label: bytes
    ) -> NoReturn:
        """Raise the most precise error for a value that no key opens under ``label``."""
        tried_as = label_scope(label)
        others = candidate_labels(doc, own=label)
        for other in others:
            for candidate in candidates:
                for fp, private in self._keys.items():
                    if sealed.unwrap_session_key(candidate.value, private_key=private, label=other):
                        raise ScopeMismatch(
                            f"scope mismatch: value {key!r} was sealed for "
                            f"{label_scope(other)}, not for {tried_as} it was opened as",
                            key_id=fp,
                        )
        hint = next((c.hint for c in candidates if c.hint), None)
        hinted = [c.hint for c in candidates if c.hint in self._keys]
        if doc.scope_digest is not None and doc.scope_digest != scope_digest(label):
            recorded = next((o for o in others if scope_digest(o) == doc.scope_digest), None)
            where = label_scope(recorded) if recorded is not None else "another scope"
            held = "" if hinted else ", and by a key not given here"
            raise ScopeMismatch(
                f"scope mismatch: value {key!r} was sealed for {where}{held}, not for "
                f"{tried_as} it was opened as (per the scope digest the file records)",
                key_id=hinted[0] if hinted else hint,
            )
        if hinted and doc.scope_digest is not None:
            raise IntegrityError(
                f"value {key!r} does not open under {tried_as}, the scope it was sealed for, "
                "with the key that sealed it: its RSA part was altered",
                key_id=hinted[0],
            )
        if hinted:
            raise ScopeMismatch(
                f"scope mismatch or tampering: value {key!r} does not open under {tried_as} "
                "with the key that sealed it (per its key-id hint)",
                key_id=hinted[0],
            )
        reason = (
            f"no key opens value {key!r} under {tried_as} (tried {len(self._keys)} key(s), "
            f"and {len(others)} other scope(s) of the names the file records): it was sealed "
            "for another key, or for a scope this file no longer records"
        )
        raise NoMatchingKey(reason, key_id=hint)


def candidate_labels(doc: SealedSecretDoc, *, own: bytes) -> list[bytes]:
    """Scope labels other than ``own`` under which a value of ``doc`` may have been sealed.

    Only names the file itself records: the three scopes of the SealedSecret's name and
    namespace, and of the name and namespace in ``spec.template.metadata``. kubeseal writes the
    latter when it seals, and tools that move a manifest (kustomize's ``namespace:`` and
    ``namePrefix:``, a hand edit of ``metadata``) usually leave them alone, so they still say
    where a kubeseal-made value, which carries no scope record of ours, was sealed.
    """
    names, namespaces = [doc.name], [doc.namespace or ""]
    meta = doc.template.get("metadata")
    if isinstance(meta, dict):
        name, namespace = meta.get("name"), meta.get("namespace")
        if isinstance(name, str) and name and name not in names:
            names.append(name)
        if isinstance(namespace, str) and namespace and namespace not in namespaces:
            namespaces.append(namespace)
    found: list[bytes] = []
    for scope in Scope:
        for namespace in namespaces:
            if not namespace and scope is not Scope.CLUSTER_WIDE:
                continue  # "/name" or "" would not be this scope's label
            for name in names:
                label = scope_label(scope, namespace=namespace, name=name)
                if label != own and label not in found:
                    found.append(label)
    return found
