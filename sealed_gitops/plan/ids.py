"""Object ids and the inventory of applied objects.

Why this module exists: pruning is only safe if "what did we apply last time" is recorded in a
form that survives a restart and compares exactly. Flux's kustomize-controller keeps that record in
``status.inventory`` as a list of ``{id, v}`` entries whose id is the cli-utils object-metadata
string ``<namespace>_<name>_<group>_<kind>``; we keep the same shape so people (and tools) that know
Flux can read it. The module is pure: ids and inventories in, ids and inventories out.

The string form: cluster-scoped objects have an empty namespace and core objects an empty group
(``_admin__Namespace``, ``team-a_db__Secret``). A ``:`` in a name (RBAC names such as
``system:auth-delegator``) is written as ``__``, as cli-utils does. Kubernetes names never contain
``_`` and namespaces, groups and kinds never contain ``_`` or ``:``, which is what makes the form
parse back unambiguously: namespace before the first separator, kind after the last, group before
that, and the name is what remains.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sealed_gitops.errors import FormatError
from sealed_gitops.plan import names

__all__ = ["Inventory", "InventoryEntry", "ObjectId", "split_api_version", "status_fingerprint"]

_SEP = "_"
_COLON = "__"


@functools.lru_cache(maxsize=4096)
def _namespace_ok(namespace: str) -> bool:
    # A cluster has few namespaces and ids are made per object: check each one once.
    return not namespace or names.is_label(namespace)


def split_api_version(api_version: str) -> tuple[str, str]:
    """``apps/v1`` -> (``apps``, ``v1``); ``v1`` -> (``""``, ``v1``)."""
    group, slash, version = api_version.rpartition("/")
    return (group, version) if slash else ("", api_version)


@dataclass(frozen=True, order=True, slots=True)
class ObjectId:
    """What identifies an object in a cluster, independent of its API version.

    Field order makes the natural sort (namespace, name, group, kind) match the string form, so a
    sorted inventory reads the same as a sorted list of ids. Slots: the operator keeps a few ids
    per applied object between reconciles (records, inventory, prepared objects), 20,000 objects
    and more; without a ``__dict__`` each one is about 100 bytes smaller.
    """

    namespace: str
    name: str
    group: str
    kind: str
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Ids are made thousands of times per reconcile: one combined test, details only on error.
        head = self.namespace + self.group + self.kind
        # Hashed about twenty times each per reconcile (dict and set lookups of the apply plan):
        # the generated __hash__ would build and hash the field tuple every time.
        object.__setattr__(self, "_hash", hash((self.namespace, self.name, self.group, self.kind)))
        if (
            self.kind
            and "_" not in head
            and ":" not in head
            and "_" not in self.name
            and names.is_path_segment_name(self.name)  # the same test as below: length too
            and _namespace_ok(self.namespace)
        ):
            return
        for label, value, forbidden in (
            ("namespace", self.namespace, "_:"),
            ("group", self.group, "_:"),
            ("kind", self.kind, "_:"),
            ("name", self.name, "_"),
        ):
            bad = [c for c in forbidden if c in value]
            if bad:
                raise FormatError(f"object {label} {value!r} contains {bad[0]!r}")
        if not self.name or not self.kind:
            raise FormatError("an object id needs a kind and a name")
        # Names from Git reach API paths: refuse here, where every object is identified, what
        # the API server would refuse anyway (issue 11), with an error naming the object.
        if not _namespace_ok(self.namespace):
            raise FormatError(f"object namespace {self.namespace[:80]!r} is not a valid namespace")
        if not names.is_path_segment_name(self.name):
            raise FormatError(f"object name {self.name[:80]!r} is not a valid object name")

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[ObjectId], tuple[str, str, str, str]]:
        # Rebuilt through __init__ when unpickled: a string's hash differs between processes.
        return (ObjectId, (self.namespace, self.name, self.group, self.kind))

    @property
    def is_core_secret(self) -> bool:
        """A core ``v1`` Secret: the one kind whose values are secret (compared by key, masked)."""
        return self.kind == "Secret" and not self.group

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectId:
        """The id of a manifest (a mapping with apiVersion, kind and metadata)."""
        meta = obj.get("metadata") or {}
        if not isinstance(meta, Mapping):  # YAML from Git may say "metadata: x"
            raise FormatError("metadata is not a mapping")
        group, _ = split_api_version(str(obj.get("apiVersion", "")))
        return cls(
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            group=group,
            kind=str(obj.get("kind") or ""),
        )

    def __str__(self) -> str:
        name = self.name.replace(":", _COLON)
        return _SEP.join((self.namespace, name, self.group, self.kind))

    @classmethod
    def parse(cls, text: str) -> ObjectId:
        """Read back :meth:`__str__`; a malformed id is a :class:`FormatError`."""
        namespace, sep1, rest = text.partition(_SEP)
        rest, sep2, kind = rest.rpartition(_SEP)
        rest, sep3, group = rest.rpartition(_SEP)
        if not (sep1 and sep2 and sep3):
            raise FormatError(f"object id {text!r} is not namespace_name_group_kind")
        name = rest.replace(_COLON, ":")
        # A Sync's inventory, parsed from its status, is kept between reconciles: a cluster has
        # few namespaces, groups and kinds, so one copy of each serves every id read back.
        return cls(
            namespace=sys.intern(namespace),
            name=name,
            group=sys.intern(group),
            kind=sys.intern(kind),
        )

    def describe(self) -> str:
        """How messages name the object: ``Secret team-a/db`` or ``Namespace admin``."""
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{kind} {where}"


@dataclass(frozen=True, order=True, slots=True)
class InventoryEntry:
    """One applied object: its id and the API version it was applied with (Flux's ``v``)."""

    id: ObjectId
    version: str

    def to_dict(self) -> dict[str, str]:
        return {"id": str(self.id), "v": self.version}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InventoryEntry:
        try:
            return cls(ObjectId.parse(str(data["id"])), str(data.get("v", "")))
        except KeyError as exc:
            raise FormatError("inventory entry without an id") from exc


def _entry_order(entry: InventoryEntry) -> tuple[str, str, str, str, str]:
    """The dataclass order of entries (id fields, then version) as one tuple: sorting by it
    compares in C, where the generated ``__lt__`` builds two tuples per comparison."""
    oid = entry.id
    return (oid.namespace, oid.name, oid.group, oid.kind, entry.version)


@dataclass(frozen=True)
class Inventory:
    """The set of objects a Sync applied, kept sorted so that status writes are stable.

    Entries are unique by id; when two entries have the same id the later one wins (an object
    re-applied with a newer API version replaces the older record).
    """

    entries: tuple[InventoryEntry, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        by_id: dict[ObjectId, InventoryEntry] = {}
        for entry in self.entries:
            by_id[entry.id] = entry
        object.__setattr__(self, "entries", tuple(sorted(by_id.values(), key=_entry_order)))

    @classmethod
    def new(cls, objects: Iterable[Mapping[str, Any]]) -> Inventory:
        """The inventory of a set of manifests about to be applied."""
        entries = []
        for obj in objects:
            _, version = split_api_version(str(obj.get("apiVersion", "")))
            entries.append(InventoryEntry(ObjectId.of(obj), version))
        return cls(tuple(entries))

    @classmethod
    def from_status(cls, data: Mapping[str, Any] | None) -> Inventory:
        """Read ``status.inventory`` (``{"entries": [{"id": ..., "v": ...}]}``); None is empty."""
        if not data:
            return cls()
        return cls(tuple(InventoryEntry.from_dict(e) for e in data.get("entries") or ()))

    def to_status(self) -> dict[str, list[dict[str, str]]]:
        return {"entries": [e.to_dict() for e in self.entries]}

    @functools.cached_property
    def ids(self) -> frozenset[ObjectId]:
        # Made once per inventory: membership tests and diffs ask for it per reconcile.
        return frozenset(e.id for e in self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, item: object) -> bool:
        return item in self.ids

    def merge(self, other: Inventory) -> Inventory:
        """Union of both; for an id in both, ``other``'s version wins.

        Used with the Isolate policy: a document that failed this time keeps its previous entry
        (merged in from the old inventory) so that it is neither changed nor pruned.
        """
        return Inventory(self.entries + other.entries)

    def diff(self, newer: Inventory) -> list[InventoryEntry]:
        """Entries of ``self`` whose id is not in ``newer``: the prune candidates, sorted."""
        keep = newer.ids
        return [e for e in self.entries if e.id not in keep]

    def restrict(self, ids: Iterable[ObjectId]) -> Inventory:
        """Only the entries whose id is in ``ids``."""
        wanted = set(ids)
        return Inventory(tuple(e for e in self.entries if e.id in wanted))


def status_fingerprint(data: Any) -> bytes:
    """SHA-256 of ``data`` (a status field as read: JSON values) as canonical JSON.

    Why: the operator compares each Sync's ``status.inventory`` with the one it parsed last time;
    a fingerprint of that one is all it needs to keep, where the status itself holds an entry per
    applied object. Equal fingerprints mean equal values (what differs only as ``1`` and
    ``1.0`` fingerprints differently: a parse more, never a wrong one).
    """
    # the standard library's: it writes NaN as NaN (orjson as null, the same as None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
