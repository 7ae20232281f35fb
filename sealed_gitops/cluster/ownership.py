"""Who owns an object in the cluster: the labels and annotations sealed-gitops writes.

Why this module exists: pruning deletes objects, so "is this ours?" must be answered from the live
object itself, not only from our own inventory (someone may have re-labelled or adopted it, or two
Syncs may have listed the same id). Every applied object carries a pair of labels naming the owning
Sync; prune deletes only objects that still carry both. A pair, not one ``NS.NAME`` label: label
values are limited to 63 characters, and a pair keeps each part within that limit and selectable
on its own (``sealed-gitops.io/sync-namespace=team-a`` finds everything a tenant applied). This is
the same choice Flux's kustomize-controller made for its ``name``/``namespace`` labels. The same
labels decide which Sync may write an object another Sync also renders (:mod:`.conflicts`).

Secrets also carry annotations saying which Sync wrote them, from which source path and at which
commit (issue 8: ``audit --cluster`` answers "which commit are the values now live from"). The
commit annotation is added only when an object is actually written, so it keeps naming the commit
whose values are live, and it is left out of the digest that decides whether to write at all.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sealed_gitops.errors import ConfigError
from sealed_gitops.plan.changes import PRUNE_ANNOTATION, PRUNE_DISABLED

__all__ = [
    "AUTHOR_ANNOTATION",
    "COMMIT_ANNOTATION",
    "FIELD_MANAGER",
    "LAST_APPLIED_ANNOTATION",
    "PRUNE_ANNOTATION",
    "PRUNE_DISABLED",
    "SOURCE_PATH_ANNOTATION",
    "SYNC_ANNOTATION",
    "SYNC_NAMESPACE_LABEL",
    "SYNC_NAME_LABEL",
    "SyncRef",
    "is_core_secret",
    "prune_disabled",
    "with_commit",
]

#: The field manager of every server-side apply we make.
FIELD_MANAGER = "sealed-gitops"

SYNC_NAME_LABEL = "sealed-gitops.io/sync-name"
SYNC_NAMESPACE_LABEL = "sealed-gitops.io/sync-namespace"
#: On Secrets: ``NAMESPACE/NAME`` of the Sync that wrote it.
SYNC_ANNOTATION = "sealed-gitops.io/sync"
#: On Secrets: the path in the repository of the file the Secret came from.
SOURCE_PATH_ANNOTATION = "sealed-gitops.io/source-path"
#: On Secrets: the revision whose values were written (``main@sha1:<commit>``, as given).
COMMIT_ANNOTATION = "sealed-gitops.io/commit"
#: on Secrets: who authored that commit ("Name <email>"), so `audit --cluster` answers without Git
AUTHOR_ANNOTATION = "sealed-gitops.io/commit-author"

#: kubectl's client-side apply record: it would hold a full copy of a Secret's values.
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"

_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def is_core_secret(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Secret" and str(obj.get("apiVersion", "")) == "v1"


def prune_disabled(obj: Mapping[str, Any] | None) -> bool:
    annotations = ((obj or {}).get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(PRUNE_ANNOTATION, "")).lower() == PRUNE_DISABLED


@dataclass(frozen=True)
class SyncRef:
    """The Sync that owns what is applied: its namespace and name."""

    namespace: str
    name: str

    def __post_init__(self) -> None:
        for label, value in (("namespace", self.namespace), ("name", self.name)):
            if len(value) > 63 or not _LABEL_VALUE.match(value):
                raise ConfigError(
                    f"Sync {label} {value!r} cannot be a label value (at most 63 characters, "
                    "alphanumerics, '-', '_' or '.')"
                )

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def labels(self) -> dict[str, str]:
        return {SYNC_NAMESPACE_LABEL: self.namespace, SYNC_NAME_LABEL: self.name}

    @property
    def selector(self) -> str:
        """A label selector that matches exactly the objects this Sync applied."""
        return ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))

    @functools.cached_property
    def _shared_labels(self) -> dict[str, str]:
        # written to the instance's __dict__ (not through the frozen __setattr__) on first use
        return self.labels

    def owns(self, obj: Mapping[str, Any] | None) -> bool:
        """Whether the live object still carries both of this Sync's labels."""
        labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in self.labels.items())

    def prepare(self, obj: Mapping[str, Any], *, source_path: str | None = None) -> dict[str, Any]:
        """A copy of a desired object as we apply it (without the commit annotation).

        Server-owned metadata and the last-applied annotation are dropped, the ownership labels
        added, and for Secrets the Sync and source-path annotations.
        """
        # Shallow copies of the levels changed here; nested values are shared, never mutated.
        out = dict(obj)
        meta = dict(out.get("metadata") or {})
        for key in (
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "managedFields",
            "generation",
            "selfLink",
        ):
            meta.pop(key, None)
        out.pop("status", None)  # the server owns status; an apply of it is ignored or refused
        annotations = dict(meta.get("annotations") or {})
        annotations.pop(LAST_APPLIED_ANNOTATION, None)
        annotations.pop(COMMIT_ANNOTATION, None)
        if is_core_secret(obj):
            _fold_string_data(out)
            annotations[SYNC_ANNOTATION] = str(self)
            if source_path:
                annotations[SOURCE_PATH_ANNOTATION] = source_path
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations", None)
        own = meta.get("labels")
        # An object without labels of its own gets the one dict of this SyncRef's labels, shared
        # by every object it prepares (prepared objects are never mutated): 2,000 objects of a
        # Sync would otherwise keep 2,000 equal dicts for as long as they stay prepared.
        meta["labels"] = {**own, **self.labels} if own else self._shared_labels
        out["metadata"] = meta
        return out


def _fold_string_data(secret: dict[str, Any]) -> None:
    """Move ``stringData`` into base64 ``data``, in place, as the API server would.

    Server-side apply tracks ``stringData`` keys as fields of their own that the server never
    stores, so a key later removed from Git would never be removed from the Secret; applying
    ``data`` only keeps field ownership exact. ``stringData`` wins over ``data``, as in the API.
    """
    string_data = secret.pop("stringData", None)
    if not string_data:
        return
    data = dict(secret.get("data") or {})
    for key, value in string_data.items():
        text = "" if value is None else str(value)
        data[str(key)] = base64.b64encode(text.encode("utf-8")).decode("ascii")
    secret["data"] = data


def with_commit(
    obj: Mapping[str, Any], revision: str | None, author: str | None = None
) -> dict[str, Any]:
    """The object as written: a Secret gets the commit (and author) annotations (a shallow copy)."""
    if not revision or not is_core_secret(obj):
        return dict(obj)
    meta = dict(obj.get("metadata") or {})
    added = {COMMIT_ANNOTATION: revision}
    if author:
        added[AUTHOR_ANNOTATION] = author
    meta["annotations"] = {**(meta.get("annotations") or {}), **added}
    return {**obj, "metadata": meta}
