"""claims_of reads each owner Sync once per reconcile, also when that read fails."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from sealed_gitops.cluster import SyncRef
from sealed_gitops.errors import ClusterError
from sealed_gitops.operator import ownership
from sealed_gitops.plan.ids import ObjectId


def test_an_unreadable_owner_is_asked_once_and_keeps_its_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[Any] = []

    def fail(*args: Any) -> None:
        reads.append(args)
        raise ClusterError("API down")

    monkeypatch.setattr(ownership, "get_object", fail)
    claims = ownership.claims_of(SimpleNamespace(client=None))  # type: ignore[arg-type]
    owner = SyncRef("team", "other")
    oids = [ObjectId("team", f"c{i}", "", "ConfigMap") for i in range(5)]
    assert all(claims(owner, oid) for oid in oids)
    assert len(reads) == 1
