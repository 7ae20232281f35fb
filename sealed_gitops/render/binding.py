"""Encrypted objects open only for the namespace they land in: SealedSecret scopes, SOPS binding.

Why this module exists: an encrypted object in Git names where it belongs, but the pipeline may
put it elsewhere (a Sync's ``targetNamespace``, the Sync's namespace for a file that names none).
Both formats must be judged against where the object *lands*, which :mod:`.placement` says once
for the decrypt stage and for tenancy alike (issue 11, finding 2).

- **SealedSecret.** The values are bound by their RSA-OAEP label to a scope (``ns/name``, ``ns``
  or cluster-wide). They are opened under the scope of the namespace the Secret lands in and the
  name it has after kustomize, never under the namespace the file names when the two differ: a
  strict value sealed for team-a/db, copied into team-b's repository and moved by
  ``targetNamespace: team-b``, does not open. When it does not open there but does where the file
  says, the error is a :class:`ScopeMismatch` naming both scopes. Cluster-wide values move freely,
  by design (Bitnami's semantics).
- **SOPS.** A SOPS file has no scope: its MAC authenticates the values, not where they are
  applied, so with a KeyRing shared by several namespaces a copied file decrypts anywhere that
  KeyRing serves. A KeyRing with ``spec.sops.namespaceBinding: Strict`` adds the binding: each
  namespaced object it decrypts must name a namespace, that namespace must be covered by the MAC
  (so a committer cannot change it without the key), and it must be where the object lands.
  What it cannot bind is the key *name* under which that value sits (SOPS hashes values, not
  keys); docs/security-model.md says what that leaves and how encrypting the namespace closes it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from sealed_gitops.crypto.sealed import Scope
from sealed_gitops.crypto.sealed_document import SealedSecretDoc, label_scope
from sealed_gitops.errors import ConfigError, NoMatchingKey, ScopeMismatch
from sealed_gitops.keys.sealing import SealingKeyring, UnsealResult
from sealed_gitops.plan.order import CLUSTER_SCOPED_KINDS
from sealed_gitops.render.placement import Placement

__all__ = ["NamespaceBinding", "check_sops_binding", "unseal_where_it_lands"]

#: how a SOPS value encrypted by sops or by us starts (``ENC[AES256_GCM,data:...]``)
_ENCRYPTED_PREFIX = "ENC[AES256_GCM,"


class NamespaceBinding(enum.Enum):
    """A KeyRing's ``spec.sops.namespaceBinding``: must a SOPS object land where it says?"""

    #: SOPS files decrypt wherever the KeyRing serves (SOPS's own semantics; the default)
    NONE = "None"
    #: a namespaced SOPS object must name, under its MAC, the namespace it lands in
    STRICT = "Strict"

    @classmethod
    def parse(cls, value: object, *, what: str) -> NamespaceBinding:
        if value is None or value == "":
            return cls.NONE
        for member in cls:
            if isinstance(value, str) and value.lower() == member.value.lower():
                return member
        raise ConfigError(f"{what} must be None or Strict, not {str(value)[:40]!r}")


def _why_moved(placement: Placement, written: str | None) -> str:
    if placement.target_namespace and placement.target_namespace != written:
        return "the Sync's targetNamespace moves it there"
    return "its file names no namespace, so it goes to the Sync's namespace"


def unseal_where_it_lands(
    keyring: SealingKeyring,
    sealed: SealedSecretDoc,
    *,
    placement: Placement,
    file: str | None,
) -> tuple[SealedSecretDoc, UnsealResult]:
    """Open ``sealed`` under the scope of where its Secret lands; return it as placed, with values.

    Raises :class:`ScopeMismatch` naming both scopes when the values open only where the file
    says; other failures (no key, tampering) are raised as they are.
    """
    landed = placement.namespace_for(sealed.namespace)
    if sealed.scope is Scope.CLUSTER_WIDE or landed == sealed.namespace:
        return sealed, keyring.unseal(sealed, file=file)
    placed = dataclasses.replace(sealed, namespace=landed)
    try:
        return placed, keyring.unseal(placed, file=file)
    except (ScopeMismatch, NoMatchingKey) as exc:
        where = label_scope(placed.label(file=file))
        if sealed.namespace is None:
            if not isinstance(exc, ScopeMismatch):
                raise  # no key opens it at all: not a question of where it lands
            raise ScopeMismatch(
                f"scope mismatch: SealedSecret {sealed.name} lands as {where} "
                f"({_why_moved(placement, None)}) and its values do not open there: {exc.reason}",
                key_id=exc.key_id,
            ) from exc
        try:
            keyring.unseal(sealed, file=file)  # does it open where the file says?
        except (ScopeMismatch, NoMatchingKey):
            raise exc from None  # not a move: the precise cause found for where it lands
        raise ScopeMismatch(
            f"scope mismatch: SealedSecret {sealed.namespace}/{sealed.name} was sealed for "
            f"{label_scope(sealed.label(file=file))}, the scope its file names, but it lands as "
            f"{where} ({_why_moved(placement, sealed.namespace)}): a sealed value opens only in "
            "the scope it was sealed for; seal it for where it lands, or make it cluster-wide",
            key_id=exc.key_id,
        ) from exc


def _namespaced(obj: Mapping[str, Any]) -> bool:
    return str(obj.get("kind", "")) not in CLUSTER_SCOPED_KINDS


def check_sops_binding(
    plain: Mapping[str, Any],
    encrypted: Mapping[str, Any],
    *,
    binding: NamespaceBinding,
    mac_only_encrypted: bool,
    placement: Placement,
) -> None:
    """Refuse a decrypted SOPS object that ``binding`` does not let land where it lands.

    ``plain`` is the object as decrypted (MAC verified), ``encrypted`` as committed (to see
    whether its namespace was itself encrypted), ``mac_only_encrypted`` the file's SOPS option
    that leaves unencrypted values out of the MAC.
    """
    if binding is NamespaceBinding.NONE or not _namespaced(plain):
        return
    rule = "the KeyRing's spec.sops.namespaceBinding is Strict"
    written = (plain.get("metadata") or {}).get("namespace")
    if not isinstance(written, str) or not written:
        raise ScopeMismatch(
            f"{rule} and this SOPS-encrypted object names no namespace: write the namespace it "
            "belongs in into metadata.namespace before encrypting it"
        )
    raw = (encrypted.get("metadata") or {}).get("namespace")
    covered = isinstance(raw, str) and raw.startswith(_ENCRYPTED_PREFIX)
    if mac_only_encrypted and not covered:
        raise ScopeMismatch(
            f"{rule} and this SOPS file sets mac_only_encrypted with metadata.namespace left "
            "unencrypted, so its MAC does not cover the namespace: encrypt the namespace too, "
            "or drop mac_only_encrypted"
        )
    landed = placement.namespace_for(written)
    if landed != written:
        raise ScopeMismatch(
            f"{rule} and this SOPS-encrypted object names namespace {written} but would land in "
            f"namespace {landed} ({_why_moved(placement, written)}): it may only be applied in "
            "the namespace it names"
        )
