"""Which files of a repository depend on which KeyRing key, read from public metadata only.

Why: retiring a key that a file still needs makes that file undecryptable in this cluster, and
``keys list`` should say how much re-encryption is left. No key is needed to answer: a SOPS file
lists the recipients of its data key (:func:`master_key_ids`), and our SealedSecrets carry key-id
hints (``sealed-gitops.io/key-ids`` and the additional-data fingerprints). A sealed value without
a hint (sealed by kubeseal) cannot be attributed; it is counted as *unknown*, and retiring is
refused while any exist, since it might need the key.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sealed_gitops.crypto.sealed_document import ANNOTATION_ADDITIONAL, ANNOTATION_KEY_IDS
from sealed_gitops.crypto.sops import is_sops_document, master_key_ids
from sealed_gitops.errors import ConfigError
from sealed_gitops.keys.retention import DELETED

__all__ = [
    "FileKeys",
    "KeyRef",
    "candidate_files",
    "only_key_users",
    "scan_repository",
    "users_of",
]

_SUFFIXES = (".yaml", ".yml", ".json")
_SKIP_DIRS = {".git", "keys", "node_modules"}
#: Files above this size are not manifests anyone encrypts; skipping keeps a scan fast.
_MAX_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class KeyRef:
    """The public identity of one KeyRing key: what files are matched against."""

    fingerprint: str
    age_recipient: str
    state: str = "active"

    @classmethod
    def from_status(cls, entry: Mapping[str, object]) -> KeyRef:
        return cls(
            fingerprint=str(entry.get("fingerprint") or ""),
            age_recipient=str(entry.get("ageRecipient") or ""),
            state=str(entry.get("state") or "active"),
        )


@dataclass
class FileKeys:
    """One encrypted file (or one value of a SealedSecret) and the keys of ours it is open to.

    ``alternatives`` is the set of our key fingerprints any one of which opens it; for a sealed
    file, one set per value (every value must stay openable).
    """

    file: str
    kind: str  # "sops" or "sealed"
    alternatives: list[set[str]] = field(default_factory=list)
    unknown: int = 0  # sealed values without a key-id hint


def candidate_files(root: Path) -> Iterator[Path]:
    """``root`` itself if it is a file, else the files under it that may hold encrypted manifests.

    The one walk of the keys workflow, so ``keys list``/``keys retire`` count the same files that
    ``reencrypt`` rewrites: YAML and JSON in sorted order, without ``.sops.yaml``, ``.git``, the
    public ``keys/`` directories, or ``node_modules``.
    """
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith(_SUFFIXES) and name != ".sops.yaml":
                yield Path(dirpath) / name


def _sealed_values(data: bytes) -> list[tuple[list[set[str]], int]]:
    try:
        docs = list(yaml.safe_load_all(data))
    except yaml.YAMLError:
        return []
    found = []
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("kind") != "SealedSecret":
            continue
        annotations = (doc.get("metadata") or {}).get("annotations") or {}
        try:
            hints = json.loads(annotations.get(ANNOTATION_KEY_IDS) or "{}")
            extra = json.loads(annotations.get(ANNOTATION_ADDITIONAL) or "{}")
        except (json.JSONDecodeError, TypeError):
            hints, extra = {}, {}
        values = (doc.get("spec") or {}).get("encryptedData") or {}
        per_value: list[set[str]] = []
        unknown = 0
        for key in values:
            fps = {str(hints[key])} if key in hints else set()
            fps |= {str(fp) for fp, vals in extra.items() if isinstance(vals, dict) and key in vals}
            if key not in hints:
                unknown += 1
            per_value.append(fps)
        found.append((per_value, unknown))
    return found


def scan_repository(path: Path, keys: Iterable[KeyRef]) -> list[FileKeys]:
    """Every encrypted file under ``path`` with the KeyRing keys that open it.

    A key whose private parts were deleted (state ``deleted``) opens nothing, so no file is
    counted as depending on it, and it can never be taken for the key that still opens a file.
    """
    refs = [k for k in keys if k.state != DELETED]
    by_recipient = {k.age_recipient: k.fingerprint for k in refs}
    ours = {k.fingerprint for k in refs}
    if not path.exists():
        raise ConfigError(f"{path} does not exist")
    base = path if path.is_dir() else path.parent
    out: list[FileKeys] = []
    for file in candidate_files(path):
        try:
            if file.stat().st_size > _MAX_BYTES:
                continue
            data = file.read_bytes()
        except OSError:
            continue
        name = str(file.relative_to(base)) if file != base else file.name
        if is_sops_document(data, file=name):
            ids = master_key_ids(data, file=name)
            out.append(
                FileKeys(name, "sops", [{by_recipient[i] for i in ids if i in by_recipient}])
            )
            continue
        sealed = _sealed_values(data)
        if sealed:
            entry = FileKeys(name, "sealed")
            for per_value, unknown in sealed:
                entry.alternatives.extend(fps & ours for fps in per_value)
                entry.unknown += unknown
            out.append(entry)
    return out


def users_of(files: Iterable[FileKeys], fingerprint: str) -> list[str]:
    """Files that some of whose parts open with this key."""
    return [f.file for f in files if any(fingerprint in alt for alt in f.alternatives)]


def only_key_users(
    files: Iterable[FileKeys], fingerprint: str, *, usable: Iterable[str]
) -> list[str]:
    """Files this cluster could no longer open without ``fingerprint``.

    ``usable`` are the fingerprints that would still decrypt (the KeyRing's non-retired keys other
    than the one to retire). Sealed values without a hint count as needing the key.
    """
    others = set(usable) - {fingerprint}
    needing = []
    for entry in files:
        if entry.unknown:
            needing.append(entry.file)
            continue
        for alt in entry.alternatives:
            if fingerprint in alt and not alt & others:
                needing.append(entry.file)
                break
    return needing
