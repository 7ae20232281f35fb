"""Re-encryption for the current active key, split so that plaintext never leaves the cluster.

Why this module exists: after a rotation every file must be re-wrapped for the new active key,
often when only the cluster still holds the old private key. Both formats allow doing that
without moving any plaintext:

* SOPS: the MAC covers the values, not the key stanzas, so only the data key (or, with key
  groups, each group's Shamir share) has to be re-wrapped. The CLI sends the file's stanzas (never
  the values); the operator unwraps the stanza of its old key and returns a stanza wrapped for its
  active key (:func:`rewrap_groups`); the CLI writes the new stanzas into the file
  (:func:`replace_key_groups`). The data key and the values stay where they were.
* SealedSecrets: each value has its own session key, so the operator opens the values of one
  document and seals them again for the active certificate under the same scope
  (:func:`reseal_document`); only ciphertext goes back.

``--rotate-data-key`` needs the values themselves; :func:`rotate_in_cluster` does it inside the
operator for files that only this KeyRing's keys open (a fresh data key wrapped for anyone else
would have to be wrapped for a recipient the requester names, and the operator must not wrap a
secret for a key a requester chose: that would be a way to read any file).

Everything here is the operator's or the CLI's half of one exchange; the transport (a request
ConfigMap) is the operator's and the CLI's business.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sealed_gitops.crypto import sealed
from sealed_gitops.crypto.age import AgeRecipient
from sealed_gitops.crypto.sealed_document import parse_sealed_secret
from sealed_gitops.crypto.sops import KeyStanza, TreeBranch, rotate
from sealed_gitops.crypto.sops.document import dump_tree, load_tree, split_metadata, stored_format
from sealed_gitops.errors import ConfigError, NoMatchingKey, SealedGitopsError
from sealed_gitops.keys.cluster_keys import ClusterKey, KeyState, decrypting_keys

__all__ = [
    "REQUEST_LABEL",
    "answer_item",
    "file_groups",
    "groups_from_wire",
    "groups_to_wire",
    "replace_key_groups",
    "reseal_document",
    "rewrap_groups",
    "rotate_in_cluster",
]

Wire = list[list[dict[str, Any]]]

#: Label of a request ConfigMap (the transport both halves share): ``pending`` until the operator
#: answers, then ``done``.
REQUEST_LABEL = "sealed-gitops.io/request"


def groups_to_wire(groups: Sequence[Sequence[KeyStanza]]) -> Wire:
    return [[{"kind": s.kind, "data": dict(s.data)} for s in group] for group in groups]


def groups_from_wire(wire: Any) -> list[list[KeyStanza]]:
    if not isinstance(wire, list) or not all(isinstance(g, list) for g in wire):
        raise ConfigError("key groups must be a list of lists")
    groups = []
    for group in wire:
        stanzas = []
        for item in group:
            if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
                raise ConfigError("a stanza must be {kind, data}")
            stanzas.append(KeyStanza(str(item.get("kind")), dict(item["data"])))
        groups.append(stanzas)
    return groups


# -- the CLI's half ------------------------------------------------------------------------------


def file_groups(data: bytes, *, file: str) -> list[list[KeyStanza]]:
    """The key groups of a SOPS file (what the CLI sends; no values)."""
    fmt = stored_format(data, file=file)
    _, meta = split_metadata(load_tree(data, fmt=fmt, file=file), file=file)
    return [list(g) for g in meta.key_groups]


def replace_key_groups(data: bytes, groups: Sequence[Sequence[KeyStanza]], *, file: str) -> bytes:
    """The file with its key stanzas replaced and everything else (values, MAC) as it was, in
    the store sops reads it with (a binary-store file keeps its JSON envelope)."""
    fmt = stored_format(data, file=file)
    branches, meta = split_metadata(load_tree(data, fmt=fmt, file=file), file=file)
    new_meta = replace(meta, key_groups=[list(g) for g in groups])
    out = []
    for branch in branches:
        with_meta = TreeBranch(branch)
        with_meta.append(("sops", new_meta.to_branch(json_style=fmt in ("json", "binary"))))
        out.append(with_meta)
    return dump_tree(out, fmt=fmt)


# -- the operator's half -------------------------------------------------------------------------


def _active(keys: Sequence[ClusterKey]) -> ClusterKey:
    for key in keys:
        if key.state is KeyState.ACTIVE:
            return key
    raise ConfigError("the KeyRing has no active key")


def rewrap_groups(
    groups: Sequence[Sequence[KeyStanza]], keys: Sequence[ClusterKey], *, file: str
) -> tuple[list[list[KeyStanza]], bool]:
    """Each group's stanzas for this KeyRing's older keys replaced by one for its active key.

    Stanzas of other recipients (other clusters, people, Vault) are kept as they are. Returns the
    new groups and whether anything changed. Raises :class:`NoMatchingKey` when a group holds
    only stanzas of retired keys of this KeyRing.
    """
    active = _active(keys)
    ours = {k.age_recipient for k in keys}
    ring, _ = decrypting_keys(keys)
    changed = False
    out: list[list[KeyStanza]] = []
    try:
        for group in groups:
            mine = [s for s in group if s.kind == "age" and s.key_id in ours]
            if not mine or [s.key_id for s in mine] == [active.age_recipient]:
                out.append(list(group))
                continue
            part = None
            for stanza in mine:
                part = ring.unwrap(stanza)
                if part is not None:
                    break
            if part is None:
                raise NoMatchingKey(
                    "only retired keys of this KeyRing can open this file's key group",
                    file=file,
                    key_id=mine[0].key_id,
                )
            kept = [s for s in group if s not in mine]
            out.append([*kept, AgeRecipient(active.age_recipient).wrap(part)])
            changed = True
    finally:
        ring.close()
    return out, changed


def rotate_in_cluster(data: bytes, keys: Sequence[ClusterKey], *, file: str) -> bytes:
    """A new data key, every value re-encrypted, wrapped for the active key only.

    Refused when the file is also encrypted for anyone else (see the module docstring).
    """
    active = _active(keys)
    ours = {k.age_recipient for k in keys}
    foreign = [s.key_id for g in file_groups(data, file=file) for s in g if s.key_id not in ours]
    if foreign:
        raise ConfigError(
            "in-cluster --rotate-data-key only rotates files encrypted for this KeyRing alone; "
            f"this one is also encrypted for {', '.join(foreign[:3])}: rotate it locally "
            "(sealed-gitops rotate) with a key that opens it",
            file=file,
        )
    ring, _ = decrypting_keys(keys)
    try:
        return rotate(
            data, unwrapper=ring, key_groups=[[AgeRecipient(active.age_recipient)]], file=file
        )
    finally:
        ring.close()


def reseal_document(
    manifest: Mapping[str, Any], keys: Sequence[ClusterKey], *, file: str
) -> tuple[dict[str, Any], bool]:
    """The SealedSecret with every value of this KeyRing's older keys sealed for the active key.

    Values are opened and re-sealed here, under the document's own scope; only the new
    ciphertexts leave. Values sealed for other clusters' keys stay as they are.
    """
    active = _active(keys)
    ours = {k.fingerprint for k in keys}
    _, sealing = decrypting_keys(keys)
    doc = parse_sealed_secret(dict(manifest), file=file)
    opened = sealing.unseal(doc, file=file)
    label = doc.label(file=file)
    public = active.sealing_key.public_key()
    new = copy.deepcopy(doc)
    changed = False
    for key, value in opened.values.items():
        primary = doc.key_ids.get(key) or opened.primary_key_ids.get(key)
        if primary in ours and primary != active.fingerprint:
            new.encrypted_data[key] = sealed.seal_value(value, public_key=public, label=label)
            new.key_ids[key] = active.fingerprint
            primary = active.fingerprint
            changed = True
        for fp in ours - {active.fingerprint}:
            if new.additional.get(fp, {}).pop(key, None) is not None:
                changed = True
        if primary != active.fingerprint and key not in new.additional.get(active.fingerprint, {}):
            new.additional.setdefault(active.fingerprint, {})[key] = sealed.seal_value(
                value, public_key=public, label=label
            )
            changed = True
    new.additional = {fp: values for fp, values in new.additional.items() if values}
    return new.to_manifest(), changed


def answer_item(item: Mapping[str, Any], keys: Sequence[ClusterKey]) -> dict[str, Any]:
    """The operator's answer to one request item (errors become an ``error`` entry)."""
    file = str(item.get("file") or "<request>")
    try:
        if "sops" in item:
            groups, changed = rewrap_groups(
                groups_from_wire(item["sops"].get("groups")), keys, file=file
            )
            return {"file": file, "groups": groups_to_wire(groups), "changed": changed}
        if "sopsRotate" in item:
            content = str(item["sopsRotate"].get("content") or "").encode("utf-8")
            rotated = rotate_in_cluster(content, keys, file=file)
            return {"file": file, "content": rotated.decode("utf-8"), "changed": True}
        if "sealed" in item:
            docs, any_changed = [], False
            for doc in item["sealed"].get("documents") or []:
                new, changed = reseal_document(doc, keys, file=file)
                docs.append(new)
                any_changed = any_changed or changed
            return {"file": file, "documents": docs, "changed": any_changed}
        raise ConfigError("unknown request item (sops, sopsRotate or sealed)")
    except SealedGitopsError as exc:
        return {"file": file, "error": str(exc)}
