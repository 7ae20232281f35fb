"""Which KeyRing keys a revision needs, as the operator records it in a Sync's status.

Why: ``keys retire`` must decide from what the cluster applies, not from a working tree (issue 15:
a key was retired after ``reencrypt`` ran but before the commit was pushed, and the next
reconcile failed). The operator knows the revision each Sync decrypts; it writes down, in
``status.decryptionKeys``, which of the KeyRing's keys that revision's files are encrypted for,
and the CLI reads it back. Both sides use this one module, so the record's shape and its meaning
are defined once.

The record holds public data only (key fingerprints, file counts, a few file paths from Git),
grouped by *what would open a file*: a SOPS file opens with any one of the keys its data key is
wrapped for; a SealedSecret needs every value openable, each value with its own set of keys. Files
with the same sets form one group, so the record stays small however many files share a key, and
"does this revision still need key K once K is retired?" can be answered later for whichever keys
are still usable then (a file for keys A and C does not need A while C decrypts, but needs C once
A is gone). A sealed value without a key-id hint (sealed by kubeseal) cannot be attributed: its
group is ``unknown`` and counts as needing every key, as :func:`~.dependencies.only_key_users`
does. Over :data:`MAX_GROUPS` groups the record says ``truncated`` and nobody can rely on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sealed_gitops.keys.dependencies import FileKeys

__all__ = [
    "MAX_EXAMPLES",
    "MAX_GROUPS",
    "Need",
    "needs",
    "next_status",
    "usage_record",
]

#: Groups of files kept in one record. Real repositories have a handful (one per rotation in
#: progress); past this the record is marked truncated and ``keys retire`` refuses to rely on it.
MAX_GROUPS = 32
#: File paths named per group, so a refusal can say which files to re-encrypt.
MAX_EXAMPLES = 5
#: Characters of one file path kept (paths come from Git: a committer chooses their length).
MAX_PATH = 200


def _signature(entry: FileKeys) -> tuple[tuple[tuple[str, ...], ...], bool]:
    """What opens ``entry``: its non-empty key sets (sorted), and whether a value is unattributed.

    An empty set is a part encrypted for keys of no concern to this KeyRing (a developer's own
    key): none of the KeyRing's keys is needed for it, so it is left out.
    """
    sets = sorted({tuple(sorted(alt)) for alt in entry.alternatives if alt})
    return tuple(sets), entry.unknown > 0


def usage_record(files: Iterable[FileKeys], *, keyring: str, revision: str) -> dict[str, Any]:
    """The ``status.decryptionKeys`` entry for one revision decrypted with KeyRing ``keyring``."""
    groups: dict[tuple[tuple[tuple[str, ...], ...], bool], list[str]] = {}
    for entry in files:
        signature = _signature(entry)
        if signature[0] or signature[1]:
            groups.setdefault(signature, []).append(entry.file[:MAX_PATH])
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    record: dict[str, Any] = {
        "revision": revision,
        "keyRing": keyring,
        "files": sum(len(paths) for _, paths in ordered),
        "groups": [
            {
                "keySets": [list(keys) for keys in sets],
                "unknown": unknown,
                "files": len(paths),
                "examples": sorted(paths)[:MAX_EXAMPLES],
            }
            for (sets, unknown), paths in ordered[:MAX_GROUPS]
        ],
    }
    if len(ordered) > MAX_GROUPS:
        record["truncated"] = True
    return record


def next_status(previous: Any, record: Mapping[str, Any], *, applied: bool) -> dict[str, Any]:
    """``status.decryptionKeys`` after a reconcile that attempted ``record``'s revision.

    ``lastAttempted`` is always the new record; ``lastApplied`` only when the revision applied,
    otherwise it stays what it was (the revision the cluster still runs).
    """
    before = previous if isinstance(previous, Mapping) else {}
    out: dict[str, Any] = {"lastAttempted": dict(record)}
    if applied:
        out["lastApplied"] = dict(record)
    elif isinstance(before.get("lastApplied"), Mapping):
        out["lastApplied"] = dict(before["lastApplied"])
    return out


@dataclass(frozen=True)
class Need:
    """How many files of a recorded revision could not be opened without one key."""

    files: int
    examples: tuple[str, ...]
    #: the record cannot answer (over :data:`MAX_GROUPS` groups, or malformed)
    undecidable: bool = False


def needs(record: Mapping[str, Any], fingerprint: str, *, usable: Iterable[str]) -> Need:
    """The files of ``record`` that need ``fingerprint`` when only ``usable`` keys remain.

    ``usable`` are the KeyRing's keys that still decrypt (active, previous); the key to retire is
    taken out of it here. The record comes from a status anyone with write access to it may edit:
    a malformed one answers ``undecidable``, never "not needed".
    """
    others = set(usable) - {fingerprint}
    groups = record.get("groups")
    if record.get("truncated") or not isinstance(groups, list):
        return Need(0, (), undecidable=True)
    count, examples = 0, []
    for group in groups:
        sets = _key_sets(group)
        if sets is None:
            return Need(0, (), undecidable=True)
        if group.get("unknown") or any(fingerprint in s and not s & others for s in sets):
            files = group.get("files")
            count += files if isinstance(files, int) and files > 0 else 1
            listed = group.get("examples")
            if isinstance(listed, list):
                examples += [
                    p[:MAX_PATH] for p in listed[:MAX_EXAMPLES] if isinstance(p, str) and p
                ]
    return Need(count, tuple(examples))


def _key_sets(group: object) -> list[set[str]] | None:
    """A group's key sets as :func:`usage_record` writes them, or None for anything else: each
    set a list of fingerprints, and at least one set unless a value is unattributed. Dropping a
    malformed set instead would answer "not needed" for the files it stands for."""
    if not isinstance(group, Mapping) or not isinstance(group.get("keySets"), list):
        return None
    sets = group["keySets"]
    if not all(isinstance(s, list) and all(isinstance(k, str) for k in s) for s in sets):
        return None
    if not sets and not group.get("unknown"):
        return None
    return [set(s) for s in sets]
