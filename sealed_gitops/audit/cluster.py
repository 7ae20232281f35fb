"""``audit --cluster``: for each Secret the operator manages, the commit and author of its values.

Why from the cluster and not from Git: the question "who set the password that is live right now?"
is about the cluster's state, which may lag or lead any branch. The operator writes the commit and
its author on a Secret only when it writes the Secret's values (``cluster.apply``), so these
annotations always describe the live values. Only names are read and printed, never data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sealed_gitops.cluster import (
    AUTHOR_ANNOTATION,
    COMMIT_ANNOTATION,
    SOURCE_PATH_ANNOTATION,
    SYNC_ANNOTATION,
    SYNC_NAME_LABEL,
    KubeClient,
)

__all__ = ["LiveSecret", "live_secrets"]


@dataclass(frozen=True)
class LiveSecret:
    """One managed Secret and where its live values came from."""

    namespace: str
    name: str
    sync: str | None
    source_path: str | None
    commit: str | None
    author: str | None
    keys: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "object": f"Secret/{self.namespace}/{self.name}",
            "sync": self.sync,
            "file": self.source_path,
            "commit": self.commit,
            "author": self.author,
            "keys": list(self.keys),
        }


def live_secrets(client: KubeClient, *, namespace: str | None = None) -> list[LiveSecret]:
    """Every Secret labelled as managed by a Sync, sorted by namespace and name."""
    base = f"/api/v1/namespaces/{namespace}/secrets" if namespace else "/api/v1/secrets"
    answer = client.request(
        "GET",
        base,
        query={"labelSelector": SYNC_NAME_LABEL},
        action="list",
        what="managed Secrets",
        sensitive=True,
    )
    rows = []
    for item in answer.get("items") or []:
        meta = item.get("metadata") or {}
        notes = meta.get("annotations") or {}
        rows.append(
            LiveSecret(
                namespace=str(meta.get("namespace") or ""),
                name=str(meta.get("name") or ""),
                sync=notes.get(SYNC_ANNOTATION),
                source_path=notes.get(SOURCE_PATH_ANNOTATION),
                commit=notes.get(COMMIT_ANNOTATION),
                author=notes.get(AUTHOR_ANNOTATION),
                keys=tuple(sorted((item.get("data") or {}).keys())),
            )
        )
    return sorted(rows, key=lambda r: (r.namespace, r.name))
