"""A small cluster for the web view's unit tests: CRDs, Syncs, a KeyRing and a managed Secret.

Why its own module: the views' tests need objects in every state a page shows (a failing Sync
whose message a tenant wrote to look like HTML, a Sync with an inventory and a keys record, a
KeyRing in mid-rotation, a Secret with values that must never be shown), written through the API
of the in-process emulator as the operator would write them (status through ``/status``).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from sealed_gitops.cluster import (
    COMMIT_ANNOTATION,
    SOURCE_PATH_ANNOTATION,
    SYNC_ANNOTATION,
    SYNC_NAME_LABEL,
    SYNC_NAMESPACE_LABEL,
    Discovery,
    KubeClient,
    wait_established,
)

__all__ = ["CANARY", "DRIFT_MANAGER", "HOSTILE", "NS", "populate"]

NS = "ui-t1"
#: a value that must never reach a page, in any form
CANARY = "canary-value-5f1d0c"
#: what a tenant may write into a message: it must arrive as text, never as markup
HOSTILE = '<script>alert("owned")</script><img src=x onerror=alert(1)>'
#: the field manager whose live edit the operator reverted
DRIFT_MANAGER = "kubectl-edit"
FP_OLD = "a" * 64
FP_NEW = "b" * 64
CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
GROUP = "/apis/sealed-gitops.io/v1alpha1"


def _post(client: KubeClient, path: str, obj: dict[str, Any]) -> None:
    client.request("POST", path, body=obj, action="create", what=obj["kind"])


def _status(client: KubeClient, plural: str, name: str, status: dict[str, Any]) -> None:
    path = f"{GROUP}/namespaces/{NS}/{plural}/{name}"
    current = client.request("GET", path, action="read", what=name)
    current["status"] = status
    client.request("PUT", f"{path}/status", body=current, action="update", what=name)


def _crds(client: KubeClient) -> None:
    discovery = Discovery(client)
    for path in sorted(CRD_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            continue
        name = str(doc["metadata"]["name"])
        client.request(
            "PATCH",
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}",
            body=doc,
            query={"fieldManager": "ui-tests", "force": "true"},
            content_type="application/apply-patch+yaml",
            action="apply",
            what=name,
        )
        wait_established(client, discovery, name, timeout=30)


def _ready(status: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-12-05T10:00:00Z",
    }


def populate(client: KubeClient) -> None:
    """Everything the unit tests' pages show."""
    _crds(client)
    _post(
        client,
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
    )
    base = f"{GROUP}/namespaces/{NS}"
    _post(client, f"{base}/repositories", {
        "apiVersion": "sealed-gitops.io/v1alpha1", "kind": "Repository",
        "metadata": {"name": "repo", "namespace": NS},
        "spec": {"url": "https://git.example.invalid/r.git", "interval": "1m"},
    })  # fmt: skip
    for name in ("broken", "good"):
        _post(client, f"{base}/syncs", {
            "apiVersion": "sealed-gitops.io/v1alpha1", "kind": "Sync",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"repositoryRef": {"name": "repo"}, "path": "./deploy", "interval": "1m"},
        })  # fmt: skip
    _status(client, "syncs", "broken", {
        "conditions": [_ready("False", "BuildFailed", f"build failed: {HOSTILE}")],
        "lastAttemptedRevision": "main@sha1:" + "1" * 40,
        "failures": [
            {"file": "deploy/<b>bad</b>.sops.yaml", "index": 0, "object": "Secret/ui-t1/x",
             "reason": "MAC mismatch"},
        ],
    })  # fmt: skip
    record = {
        "revision": "main@sha1:" + "2" * 40,
        "keyRing": f"{NS}/ring",
        "files": 3,
        "groups": [
            {"keySets": [[FP_OLD]], "unknown": False, "files": 2,
             "examples": ["deploy/a.sops.yaml", "deploy/b.sops.yaml"]},
            {"keySets": [[FP_OLD, FP_NEW]], "unknown": False, "files": 1,
             "examples": ["deploy/c.sops.yaml"]},
        ],
    }  # fmt: skip
    _status(client, "syncs", "good", {
        "conditions": [_ready("True", "ReconciliationSucceeded", "applied")],
        "lastAppliedRevision": "main@sha1:" + "2" * 40,
        "inventory": {"entries": [
            {"id": f"{NS}_db__Secret", "v": "v1"},
            {"id": f"{NS}_settings__ConfigMap", "v": "v1"},
            {"id": f"_{NS}__Namespace", "v": "v1"},
        ]},
        "decryptionKeys": {"lastApplied": record, "lastAttempted": record},
    })  # fmt: skip
    _post(client, f"{base}/keyrings", {
        "apiVersion": "sealed-gitops.io/v1alpha1", "kind": "KeyRing",
        "metadata": {"name": "ring", "namespace": NS}, "spec": {"backend": "kubernetes"},
    })  # fmt: skip
    _status(client, "keyrings", "ring", {
        "activeFingerprint": FP_NEW,
        "keys": [
            {"fingerprint": FP_OLD, "state": "previous", "created": "2026-11-01T00:00:00Z"},
            {"fingerprint": FP_NEW, "state": "active", "created": "2026-12-01T00:00:00Z"},
        ],
    })  # fmt: skip
    _post(client, f"/api/v1/namespaces/{NS}/secrets", {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": "db", "namespace": NS,
            "labels": {SYNC_NAME_LABEL: "good", SYNC_NAMESPACE_LABEL: NS},
            "annotations": {
                SYNC_ANNOTATION: f"{NS}/good",
                SOURCE_PATH_ANNOTATION: "deploy/db.sops.yaml",
                COMMIT_ANNOTATION: "main@sha1:" + "2" * 40,
            },
        },
        "data": {"password": base64.b64encode(CANARY.encode()).decode()},
    })  # fmt: skip
    # The operator's account of a drift correction it made to that Secret.
    _post(client, f"/api/v1/namespaces/{NS}/events", {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "good.drift", "namespace": NS},
        "involvedObject": {"apiVersion": "sealed-gitops.io/v1alpha1", "kind": "Sync",
                           "namespace": NS, "name": "good"},
        "reason": "DriftCorrected", "type": "Normal",
        "message": f"Restored the last applied state (live change by {DRIFT_MANAGER})\n"
                   f"configured Secret {NS}/db",
        "lastTimestamp": "2026-12-05T10:05:00Z",
    })  # fmt: skip
