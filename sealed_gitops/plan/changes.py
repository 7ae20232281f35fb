"""Change sets: what applying a revision would create, update, leave alone and prune.

Why this module exists: the operator must write nothing when nothing changed (issue 6: a no-op
reconcile makes zero writes), must prune only what left the inventory and is not protected, and
must be able to say *which keys* of a Secret changed without ever holding a value in its output.
All of that is a pure function of three inputs: the desired objects, the live objects and the
previous inventory. No I/O happens here; :mod:`sealed_gitops.cluster` fetches the live objects and
carries the plan out.

Secret values are compared by SHA-256 digest of their decoded bytes; the digests stay inside this
module's comparisons and are never put in a result, because a bare hash of a short value (a PIN)
is as good as the value to anyone who can guess.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sealed_gitops.plan.ids import Inventory, InventoryEntry, ObjectId

__all__ = [
    "PRUNE_ANNOTATION",
    "PRUNE_DISABLED",
    "Change",
    "ChangeSet",
    "KeyChange",
    "ObjectChange",
    "digest",
    "is_contained",
    "key_changes",
    "plan_changes",
    "secret_key_changes",
]

#: Annotation on a live object that protects it from pruning when set to :data:`PRUNE_DISABLED`.
PRUNE_ANNOTATION = "sealed-gitops.io/prune"
PRUNE_DISABLED = "disabled"

#: Fields the API server owns; they never count as a difference.
_SERVER_METADATA = frozenset(
    {
        "creationTimestamp",
        "deletionGracePeriodSeconds",
        "deletionTimestamp",
        "generation",
        "managedFields",
        "resourceVersion",
        "selfLink",
        "uid",
    }
)


class Change(StrEnum):
    """What happens to an object, or to one key of a Secret."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    PRUNE = "prune"
    KEEP = "keep"  # left the inventory but protected by the prune annotation
    ADDED = "added"
    CHANGED = "changed"
    REMOVED = "removed"


def digest(obj: Mapping[str, Any], *, key: bytes | None = None) -> str:
    """A stable digest of a desired object: SHA-256 over canonical JSON, hex.

    Canonical: keys sorted, no whitespace, UTF-8. The operator records it at apply time and skips
    the next apply when the digest (and the live resourceVersion) are unchanged. Pass ``key`` to
    get an HMAC-SHA-256 instead: the digest of a Secret covers its values, and a keyed digest
    cannot be brute-forced by someone who reads it from a status but lacks the key.
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    data = text.encode("utf-8")
    if key is not None:
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, order=True)
class KeyChange:
    """One key of a Secret and what happens to it. Deliberately has no room for a value."""

    key: str
    change: Change


def _secret_value_digests(obj: Mapping[str, Any] | None) -> dict[str, bytes]:
    """Digest of every key's decoded value; ``stringData`` wins over ``data`` as the API does."""
    if not obj:
        return {}
    out: dict[str, bytes] = {}
    for key, value in (obj.get("data") or {}).items():
        raw: bytes
        try:
            raw = base64.b64decode(str(value or ""), validate=True)
        except (binascii.Error, ValueError):
            # Not valid base64: the API would refuse it; compare the text so a change still shows.
            raw = b"\x00invalid-base64\x00" + str(value).encode("utf-8", "surrogatepass")
        out[str(key)] = hashlib.sha256(raw).digest()
    for key, value in (obj.get("stringData") or {}).items():
        text = "" if value is None else str(value)
        out[str(key)] = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return out


def key_changes(
    new: Mapping[str, Any],
    old: Mapping[str, Any],
    *,
    equal: Callable[[Any, Any], bool] = operator.eq,
) -> list[KeyChange]:
    """Each key of either mapping as added, removed, unchanged or changed, sorted by key."""
    changes = []
    for key in sorted(new.keys() | old.keys()):
        if key not in old:
            change = Change.ADDED
        elif key not in new:
            change = Change.REMOVED
        elif equal(new[key], old[key]):
            change = Change.UNCHANGED
        else:
            change = Change.CHANGED
        changes.append(KeyChange(key, change))
    return changes


def secret_key_changes(
    desired: Mapping[str, Any] | None, live: Mapping[str, Any] | None
) -> list[KeyChange]:
    """Per-key changes between two Secrets (either may be None), sorted by key."""
    return key_changes(
        _secret_value_digests(desired), _secret_value_digests(live), equal=hmac.compare_digest
    )


def _without_secret_values(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("data", "stringData")}


def is_contained(desired: Any, live: Any, *, path: tuple[str, ...] = ()) -> bool:
    """Whether applying ``desired`` would leave ``live`` as it is.

    Server-side apply only sets the fields it sends; every other field of the live object (defaults,
    status, fields of other managers) stays. So the desired object is "unchanged" when each of its
    fields is present in the live object with an equal value. Lists are compared item by item and
    must have the same length (we cannot know list merge keys without the schema). Server-owned
    metadata is ignored.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        for key, value in desired.items():
            if path == ("metadata",) and key in _SERVER_METADATA:
                continue
            if key not in live:
                if value in (None, {}, []):
                    continue  # an empty value and an absent field mean the same to the API
                return False
            if not is_contained(value, live[key], path=(*path, str(key))):
                return False
        return True
    if isinstance(desired, list):
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(is_contained(d, lv, path=path) for d, lv in zip(desired, live, strict=True))
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return desired == live
    return bool(desired == live)


@dataclass(frozen=True)
class ObjectChange:
    """One object of the plan. ``keys`` is filled for Secrets only, and never holds values."""

    id: ObjectId
    change: Change
    version: str = ""
    keys: tuple[KeyChange, ...] = ()

    def describe(self) -> str:
        """One line for logs and Events: ``update Secret team-a/db (changed: password)``."""
        text = f"{self.change.value} {self.id.describe()}"
        touched = [k for k in self.keys if k.change is not Change.UNCHANGED]
        if touched:
            parts = []
            for kind in (Change.ADDED, Change.CHANGED, Change.REMOVED):
                names = [k.key for k in touched if k.change is kind]
                if names:
                    parts.append(f"{kind.value}: {', '.join(names)}")
            text += f" ({'; '.join(parts)})"
        return text


@dataclass(frozen=True)
class ChangeSet:
    """The plan: every desired object once, plus what leaves the inventory."""

    create: tuple[ObjectChange, ...] = ()
    update: tuple[ObjectChange, ...] = ()
    unchanged: tuple[ObjectChange, ...] = ()
    prune: tuple[ObjectChange, ...] = ()
    keep: tuple[ObjectChange, ...] = ()
    inventory: Inventory = field(default_factory=Inventory)

    @property
    def changes(self) -> tuple[ObjectChange, ...]:
        """Everything that writes: creates, updates, prunes (in that order)."""
        return self.create + self.update + self.prune

    @property
    def empty(self) -> bool:
        return not self.changes


def _version(obj: Mapping[str, Any]) -> str:
    return str(obj.get("apiVersion", "")).rpartition("/")[2]


def _prune_disabled(obj: Mapping[str, Any] | None) -> bool:
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(PRUNE_ANNOTATION, "")).lower() == PRUNE_DISABLED


def plan_changes(
    desired: Sequence[Mapping[str, Any]],
    live: Mapping[ObjectId, Mapping[str, Any]],
    *,
    previous: Inventory | None = None,
    recorded: Mapping[ObjectId, tuple[str, str]] | None = None,
    digest_key: bytes | None = None,
) -> ChangeSet:
    """Compare desired with live objects and the previous inventory.

    - ``live``: the cluster's current objects by id (absent: does not exist).
    - ``previous``: the inventory of the last successful apply; what is in it but not desired is
      pruned, unless the live object carries ``sealed-gitops.io/prune: disabled`` (then ``keep``).
      An id that is no longer live needs no prune and is left out.
    - ``recorded``: per id, the (digest, resourceVersion) written at the last apply. When both still
      match, the object is unchanged without looking at its fields: the cheap path of a no-op
      reconcile. Otherwise the desired object is compared field by field with the live one.

    The result's lists are sorted by id; ``inventory`` is the inventory of the desired objects.
    """
    buckets: dict[Change, list[ObjectChange]] = {c: [] for c in Change}
    for obj in desired:
        oid = ObjectId.of(obj)
        current = live.get(oid)
        is_secret = oid.is_core_secret
        keys = tuple(secret_key_changes(obj, current)) if is_secret else ()
        if current is None:
            change = Change.CREATE
        else:
            record = (recorded or {}).get(oid)
            rv = str((current.get("metadata") or {}).get("resourceVersion", ""))
            if record is not None and record == (digest(obj, key=digest_key), rv):
                change = Change.UNCHANGED
            elif is_secret:
                values_same = all(k.change is Change.UNCHANGED for k in keys)
                rest_same = is_contained(_without_secret_values(obj), current)
                change = Change.UNCHANGED if values_same and rest_same else Change.UPDATE
            else:
                change = Change.UPDATE if not is_contained(obj, current) else Change.UNCHANGED
        buckets[change].append(ObjectChange(oid, change, _version(obj), keys))

    inventory = Inventory.new(desired)
    gone: Iterable[InventoryEntry] = previous.diff(inventory) if previous else ()
    for entry in gone:
        current = live.get(entry.id)
        if current is None:
            continue
        change = Change.KEEP if _prune_disabled(current) else Change.PRUNE
        keys = ()
        if entry.id.is_core_secret and change is Change.PRUNE:
            keys = tuple(secret_key_changes(None, current))
        buckets[change].append(ObjectChange(entry.id, change, entry.version, keys))

    def done(change: Change) -> tuple[ObjectChange, ...]:
        return tuple(sorted(buckets[change], key=lambda c: c.id))

    return ChangeSet(
        create=done(Change.CREATE),
        update=done(Change.UPDATE),
        unchanged=done(Change.UNCHANGED),
        prune=done(Change.PRUNE),
        keep=done(Change.KEEP),
        inventory=inventory,
    )
