"""Turning one commit's file changes into per-value changes, following objects between files.

Why this module exists: git knows files; the audit reports values of objects. For each parent of
a commit, the old and new snapshot of every changed file are matched document by document: first
the same object in the same file (after git's rename detection), then the same object removed
from one file and added to another in that commit (a move, not a removal plus an addition), and
only then what is left counts as removed or added.

How a value's change is classified:

* a value only on one side is ``added`` or ``removed``;
* equal ciphertext means an unchanged value (stable ciphertext), so no row;
* different ciphertext is ``changed``, unless a :class:`PlaintextJudge` (``--decrypt``) shows with
  keyed hashes that the plaintext is the same, which makes it ``re-encrypted``;
* the data key's wrapped copies changed while no value's ciphertext did: one
  ``recipients-changed`` row for the object (key ``None``); also when the recipients changed
  together with a new data key.

A merge commit reports only the values that differ from *every* parent, i.e. what the merge
itself decided; the rest was reported on the branch commits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sealed_gitops.audit.history import Commit, FileChange
from sealed_gitops.audit.records import Change
from sealed_gitops.audit.snapshot import (
    EMPTY,
    FileSnapshot,
    ObjectValues,
    is_audited_path,
    read_snapshot,
)

__all__ = ["CommitComparer", "PlaintextJudge", "ValueChange"]


@dataclass(frozen=True, slots=True)
class ValueChange:
    """One row before the commit's people are attached."""

    file: str
    object: str | None
    key: str | None
    change: Change


class PlaintextJudge(Protocol):
    """Keyed hashes of the plaintext values of one file version (``--decrypt``)."""

    def hashes(
        self, *, blob: str, file: str, data: bytes
    ) -> Mapping[tuple[int, str], bytes] | None:
        """(document index, sops key path) -> keyed hash; ``None`` when it cannot decrypt."""


@dataclass
class _Side:
    change: FileChange
    obj: ObjectValues
    blob: str | None
    file: str


@dataclass
class CommitComparer:
    """Compares file versions of commits; caches parsed snapshots by blob."""

    read_blob: Callable[[str], bytes]
    judge: PlaintextJudge | None = None
    #: objects whose every value got a new ciphertext together with a new data key wrapping,
    #: seen without a judge: "file (object)" -> commit; the CLI explains these once
    whole_file_reencryptions: list[str] = field(default_factory=list)
    _snapshots: dict[tuple[str, str], FileSnapshot] = field(default_factory=dict)
    _hashes: dict[tuple[str, str], Mapping[tuple[int, str], bytes] | None] = field(
        default_factory=dict
    )

    def snapshot(self, blob: str | None, path: str) -> FileSnapshot:
        if blob is None or not is_audited_path(path):
            return EMPTY
        kind = "json" if path.lower().endswith(".json") else "yaml"
        cached = self._snapshots.get((blob, kind))
        if cached is None:
            cached = read_snapshot(self.read_blob(blob), file=path)
            self._snapshots[(blob, kind)] = cached
        return cached

    def commit_changes(self, commit: Commit) -> list[ValueChange]:
        """The value changes ``commit`` made; for a merge, those that differ from every parent."""
        per_parent = [self.diff_changes(diff, commit=commit.sha) for diff in commit.diffs]
        if not per_parent:
            return []
        if len(per_parent) == 1:
            return per_parent[0]
        others = [{(r.file, r.object, r.key) for r in rows} for rows in per_parent[1:]]
        return [r for r in per_parent[0] if all((r.file, r.object, r.key) in o for o in others)]

    def diff_changes(self, diff: list[FileChange], *, commit: str = "") -> list[ValueChange]:
        pairs: list[tuple[_Side, _Side]] = []
        removed: list[_Side] = []
        added: list[_Side] = []
        for change in diff:
            if not (is_audited_path(change.old_path) or is_audited_path(change.new_path)):
                continue
            old = self.snapshot(change.old_blob, change.old_path)
            new = self.snapshot(change.new_blob, change.new_path)
            if not old.objects and not new.objects:
                continue
            news = {o.identity: o for o in new.objects}
            seen: set[tuple[str, ...]] = set()
            for obj in old.objects:
                mate = news.get(obj.identity)
                old_side = _Side(change, obj, change.old_blob, change.old_path)
                if mate is not None and obj.identity not in seen:
                    seen.add(obj.identity)
                    pairs.append((old_side, _Side(change, mate, change.new_blob, change.new_path)))
                else:
                    removed.append(old_side)
            added.extend(
                _Side(change, o, change.new_blob, change.new_path)
                for o in new.objects
                if o.identity not in seen
            )
        # An object removed from one file and added to another in the same commit was moved.
        unmatched: list[_Side] = []
        for side in removed:
            mate_index = next(
                (
                    i
                    for i, a in enumerate(added)
                    if a.obj.identity == side.obj.identity and side.obj.identity[0] == "object"
                ),
                None,
            )
            if mate_index is None:
                unmatched.append(side)
            else:
                pairs.append((side, added.pop(mate_index)))
        rows: list[ValueChange] = []
        for side in unmatched:
            rows.extend(
                ValueChange(side.file, side.obj.label, key, Change.REMOVED)
                for key in side.obj.values
            )
        for side in added:
            rows.extend(
                ValueChange(side.file, side.obj.label, key, Change.ADDED) for key in side.obj.values
            )
        for old_side, new_side in pairs:
            rows.extend(self._compare(old_side, new_side, commit=commit))
        return rows

    def _compare(self, old: _Side, new: _Side, *, commit: str) -> list[ValueChange]:
        label, file = new.obj.label, new.file
        before, after = old.obj.values, new.obj.values
        rows = [ValueChange(file, label, k, Change.REMOVED) for k in before if k not in after]
        differing = [k for k in after if k in before and before[k] != after[k]]
        keys_changed = old.obj.keys_digest != new.obj.keys_digest
        common = [k for k in after if k in before]
        whole_file = keys_changed and bool(common) and len(differing) == len(common)
        same_plain = self._same_plaintext(old, new, differing) if differing else set()
        for key in after:
            if key not in before:
                rows.append(ValueChange(file, label, key, Change.ADDED))
            elif key in same_plain:
                rows.append(ValueChange(file, label, key, Change.RE_ENCRYPTED))
            elif before[key] != after[key]:
                rows.append(ValueChange(file, label, key, Change.CHANGED))
        if keys_changed and (not differing or old.obj.recipients != new.obj.recipients):
            rows.insert(0, ValueChange(file, label, None, Change.RECIPIENTS_CHANGED))
        if whole_file and self.judge is None:
            self.whole_file_reencryptions.append(f"{commit[:12]} {file} ({label or 'document'})")
        return rows

    def _file_hashes(self, side: _Side) -> Mapping[tuple[int, str], bytes] | None:
        if self.judge is None or side.blob is None:
            return None
        key = (side.blob, side.file)
        if key not in self._hashes:
            self._hashes[key] = self.judge.hashes(
                blob=side.blob, file=side.file, data=self.read_blob(side.blob)
            )
        return self._hashes[key]

    def _same_plaintext(self, old: _Side, new: _Side, keys: list[str]) -> set[str]:
        before, after = self._file_hashes(old), self._file_hashes(new)
        if before is None or after is None:
            return set()
        same = set()
        for key in keys:
            a = before.get((old.obj.index, key))
            b = after.get((new.obj.index, key))
            if a is not None and a == b:
                same.add(key)
        return same
