"""Updating an existing SealedSecret with new values (``seal --merge-into``).

Why this module exists: kubeseal's ``--merge-into`` re-seals every value it is given, so each
reseal rewrites every line of the file even when no plaintext changed (sealed-secrets #131,
#376), and a Git diff no longer shows what really changed. Here, when the old values can be
opened (``--key``), a value whose plaintext, scope and recipients are unchanged keeps its
ciphertext; without a key, only the values given are re-sealed, as kubeseal does.

Kept apart from ``sealed_document.py`` (reading, writing and sealing one document) because
merging is a policy over two documents, with its own rules about what may be kept.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from sealed_gitops.crypto.sealed import RandomSource, Scope, scope_label
from sealed_gitops.crypto.sealed_document import (
    PlainSecret,
    SealedSecretDoc,
    scope_digest,
    seal_secret,
    set_scope_annotations,
)
from sealed_gitops.crypto.sealing_keys import fingerprint
from sealed_gitops.errors import ConfigError

__all__ = ["merge_into"]


def _recipient_layout(doc: SealedSecretDoc, key: str) -> tuple[str | None, frozenset[str]]:
    extra = frozenset(fp for fp, values in doc.additional.items() if key in values)
    return doc.key_ids.get(key), extra


def merge_into(
    old: SealedSecretDoc,
    secret: PlainSecret,
    *,
    recipients: Sequence[rsa.RSAPublicKey],
    scope: Scope,
    old_values: Mapping[str, bytes] | None = None,
    rand: RandomSource = os.urandom,
) -> SealedSecretDoc:
    """Update ``old`` with the values of ``secret``, as ``kubeseal --merge-into`` does, but
    keep the ciphertext of every value whose plaintext did not change.

    ``old_values`` are ``old``'s opened values (``seal --merge-into --key``); without them we
    cannot know what changed, so every given value is re-sealed and the others are kept as they
    are. The name and namespace are the old document's. Keeping needs the same scope and the
    same recipients, since a kept ciphertext is only valid for the keys and label it was made for.
    """
    new_label = scope_label(scope, namespace=old.namespace or "", name=old.name)
    scope_changed = new_label != old.label()
    if scope_changed and old_values is None:
        raise ConfigError(
            "changing the scope of an existing SealedSecret re-seals every value: "
            "give --key to open the values that are not in the input"
        )
    prints = [fingerprint(key) for key in recipients]
    wanted = (prints[0], frozenset(prints[1:]))
    to_seal: dict[str, bytes] = {}
    for key, value in secret.data.items():
        unchanged = (
            old_values is not None
            and old_values.get(key) == value
            and key in old.encrypted_data
            and _recipient_layout(old, key) == wanted
        )
        if scope_changed or not unchanged:
            to_seal[key] = value
    if scope_changed and old_values is not None:
        for key, value in old_values.items():
            to_seal.setdefault(key, value)
    fresh = seal_secret(
        PlainSecret(
            name=old.name,
            namespace=old.namespace,
            data=to_seal,
            metadata=secret.metadata,
            type=secret.type,
            immutable=secret.immutable,
        ),
        recipients=recipients,
        scope=scope,
        rand=rand,
    )
    merged = copy.deepcopy(old)
    merged.scope = scope
    merged.scope_digest = scope_digest(new_label)
    for key in to_seal:
        for values in merged.additional.values():
            values.pop(key, None)
    merged.encrypted_data.update(fresh.encrypted_data)
    merged.key_ids.update(fresh.key_ids)
    for fp, values in fresh.additional.items():
        merged.additional.setdefault(fp, {}).update(values)
    merged.template = _merge_template(old.template, fresh.template, scope)
    return merged


def _merge_template(
    old: Mapping[str, Any], fresh: Mapping[str, Any], scope: Scope
) -> dict[str, Any]:
    # kubeseal merges the template's annotations, labels and data; the rest stays the old one's.
    merged = copy.deepcopy(dict(old))
    meta = merged.setdefault("metadata", {})
    fresh_meta = fresh.get("metadata", {})
    for part in ("annotations", "labels"):
        if fresh_meta.get(part):
            meta.setdefault(part, {}).update(copy.deepcopy(fresh_meta[part]))
    annotations = meta.setdefault("annotations", {})
    set_scope_annotations(annotations, scope)
    if not annotations:
        del meta["annotations"]
    for part in ("type", "immutable"):
        if part in fresh:
            merged[part] = fresh[part]
    return merged
