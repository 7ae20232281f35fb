"""Issue 8 items 3-4: the operator records who set each live Secret; `audit --cluster` reads it."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from sealed_gitops.operator.runner import OperatorThread

from .conftest import Setup, wait_for
from .manifests import run_audit_cluster

pytestmark = pytest.mark.e2e


def _secret(ns: str, value: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": ns},
        "type": "Opaque",
        "stringData": {"password": value, "user": "app-user-name"},
    }


def test_live_secrets_name_their_commit_and_author(
    setup: Setup,
    operator_factory: Callable[..., OperatorThread],
    kubeconfig: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ns = setup.namespace
    setup.push(
        {"deploy/db.yaml": setup.encrypt(_secret(ns, "alice-set-this-value"))},
        author=("Alice Admin", "alice@example.invalid"),
    )
    setup.objects()
    caplog.set_level(logging.INFO, logger="sealed_gitops.audit")
    operator_factory(ns)
    wait_for(lambda: setup.kube.secret("db"), what="Secret db")
    sha = setup.push(
        {"deploy/db.yaml": setup.encrypt(_secret(ns, "bob-changed-this"))},
        author=("Bob Builder", "bob@example.invalid"),
    )

    def annotated() -> dict[str, str] | None:
        found = setup.kube.secret("db") or {}
        notes = (found.get("metadata") or {}).get("annotations") or {}
        return notes if notes.get("sealed-gitops.io/commit") == f"main@sha1:{sha}" else None

    notes = wait_for(annotated, what="Secret annotated with the new commit")
    assert notes["sealed-gitops.io/commit-author"] == "Bob Builder <bob@example.invalid>"
    assert notes["sealed-gitops.io/source-path"] == "deploy/db.yaml"
    assert notes["sealed-gitops.io/sync"] == f"{ns}/app"

    result = run_audit_cluster(kubeconfig, ns)
    [row] = json.loads(result.stdout)
    assert row == {
        "object": f"Secret/{ns}/db",
        "sync": f"{ns}/app",
        "file": "deploy/db.yaml",
        "commit": f"main@sha1:{sha}",
        "author": "Bob Builder <bob@example.invalid>",
        "keys": ["password", "user"],
    }

    # one structured audit line per change, with the commit, author, object and changed keys
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "sealed_gitops.audit"]
    bob = [line for line in lines if line["commit"] == sha]
    assert bob and bob[-1]["object"] == f"Secret/{ns}/db"
    assert bob[-1]["author"] == "Bob Builder <bob@example.invalid>"
    assert bob[-1]["keys"] == {"password": "changed"}

    # the Applied Event names the revision, its author and the Secret with its changed key
    def applied_by_bob() -> list[str]:
        return [
            str(e.get("message"))
            for e in setup.kube.events()
            if e.get("reason") == "Applied" and f"main@sha1:{sha}" in str(e.get("message"))
        ]

    [message] = wait_for(applied_by_bob, what="Applied Event for Bob's commit")
    assert "by Bob Builder <bob@example.invalid>" in message
    assert "db" in message and "password" in message

    everything = result.stdout + result.stderr + caplog.text + message
    assert "bob-changed-this" not in everything and "alice-set-this-value" not in everything
