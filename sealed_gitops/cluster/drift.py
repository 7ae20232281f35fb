"""Telling a correction of a live change (drift) from a change that came from Git.

Why this module exists: when the operator writes an object, two different things can have
happened, and the audit must not confuse them (issue 15, Must 3). Either Git changed the object
(a commit author set the new values), or Git did not and someone changed the live object, which
the operator now puts back. The second is *drift*: it must never be recorded as a change by the
author of the commit being reconciled, and the commit annotation on a Secret must keep naming the
commit that last *set* its values, not move to the current one.

How it is decided: the operator remembers, per object, the digest of what it last applied (the
``recorded`` records of :func:`sealed_gitops.cluster.apply`). When the desired object's digest is
still that one, Git did not change the object, so a write is a drift correction. Who made the live
change comes from the API: server-side apply moves a field to the manager that last wrote it, so
the managers other than ours that now own a field we send are the ones whose edit we revert
(``kubectl edit`` records ``kubectl-edit``, ``kubectl patch`` ``kubectl-patch`` or its
``--field-manager``). Only manager names and times are read from ``managedFields``, never a value.
The records live in memory: after an operator restart the first write of an object is taken as a
Git change (there is no digest to compare with, and the digest key is per process).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sealed_gitops.cluster.ownership import AUTHOR_ANNOTATION, COMMIT_ANNOTATION, FIELD_MANAGER

__all__ = ["Drift", "editors", "find_drift"]


@dataclass(frozen=True)
class Drift:
    """A write that restores the last applied state of an object Git did not change.

    ``managers``: the field managers whose live edits are reverted, most recent first (empty
    when the API does not say, e.g. the object was deleted). ``commit`` and ``author``: the commit
    that last set the object's values, kept on the object as it is restored (None if unknown).
    """

    managers: tuple[str, ...]
    commit: str | None = None
    author: str | None = None

    @property
    def by(self) -> str:
        """The managers as one label value ("unknown" when the API does not name one)."""
        return ",".join(self.managers) or "unknown"


def _overlaps(owned: Any, sent: Any) -> bool:
    """Whether a FieldsV1 tree ``owned`` names a field set in the object ``sent``."""
    if not isinstance(owned, Mapping) or not owned:
        return True  # a leaf: the field itself is owned
    if not isinstance(sent, Mapping):
        return True  # owns parts of a value we send whole (a list, a scalar replaced by a map)
    for step, child in owned.items():
        if not isinstance(step, str) or not step.startswith("f:"):
            continue  # "." (the node itself); list items (k:, v:, i:) are under an f: we matched
        name = step[2:]
        if name in sent and _overlaps(child, sent[name]):
            return True
    return False


def editors(live: Mapping[str, Any], sent: Mapping[str, Any]) -> tuple[str, ...]:
    """The field managers other than ours owning a field of ``sent``, most recent first."""
    entries = (live.get("metadata") or {}).get("managedFields") or ()
    found: list[tuple[str, str]] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        manager = str(entry.get("manager") or "")
        if not manager or manager == FIELD_MANAGER or entry.get("subresource"):
            continue
        if _overlaps(entry.get("fieldsV1") or {}, sent):
            found.append((str(entry.get("time") or ""), manager))
    names: list[str] = []
    for _, manager in sorted(found, reverse=True):
        if manager not in names:
            names.append(manager)
    return tuple(names)


def find_drift(
    sent: Mapping[str, Any],
    live: Mapping[str, Any] | None,
    *,
    mark: str,
    recorded: tuple[str, str] | None,
    set_by: tuple[str | None, str | None] | None = None,
) -> Drift | None:
    """The drift a write of ``sent`` corrects, or None when Git changed the object.

    - ``mark``: the digest of ``sent``; ``recorded``: (digest, resourceVersion) of our last apply.
    - ``set_by``: the (commit, author) we last wrote on it; preferred to the live annotations,
      which whoever made the live change could have edited too (they are read only when this
      process has not written the object).
    """
    if recorded is None or recorded[0] != mark:
        return None  # never applied by this process, or Git changed it: not drift
    if set_by and set_by[0]:
        # what we wrote first: the live annotations are the live editor's to change as well
        commit, author = set_by
    else:
        notes = ((live or {}).get("metadata") or {}).get("annotations") or {}
        commit = notes.get(COMMIT_ANNOTATION)
        author = notes.get(AUTHOR_ANNOTATION) if commit else None
    managers = editors(live, sent) if live is not None else ()
    return Drift(managers, commit, author)
