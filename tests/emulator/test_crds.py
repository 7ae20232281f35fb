"""CustomResourceDefinitions: creating one serves its resources; deleting it removes them."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.emulator.kubehttp import Http

pytestmark = pytest.mark.e2e

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def _crd(group: str, *, scope: str, status: bool) -> dict[str, Any]:
    version: dict[str, Any] = {
        "name": "v1",
        "served": True,
        "storage": True,
        "schema": {
            "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        },
    }
    if status:
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"knobs.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"plural": "knobs", "singular": "knob", "kind": "Knob", "shortNames": ["kb"]},
            "versions": [version],
        },
    }


async def _until(probe: Any, what: str) -> Any:
    for _ in range(200):
        result = await probe()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.parametrize(("scope", "status"), [("Namespaced", True), ("Cluster", False)])
async def test_crd_life_cycle(http: Http, namespace: str, scope: str, status: bool) -> None:
    group = f"c{uuid.uuid4().hex[:8]}.sealed-gitops.io"
    code, crd = await http.post(CRDS, _crd(group, scope=scope, status=status))
    assert code == 201, crd
    name = crd["metadata"]["name"]

    async def established() -> bool:
        _, got = await http.get(f"{CRDS}/{name}")
        conditions = {c["type"]: c["status"] for c in got.get("status", {}).get("conditions", [])}
        return conditions.get("Established") == "True" and conditions.get("NamesAccepted") == "True"

    await _until(established, "Established and NamesAccepted")

    async def discovered() -> dict[str, Any] | None:
        code, doc = await http.get(f"/apis/{group}/v1")
        return doc if code == 200 else None

    doc = await _until(discovered, "discovery of the new group")
    entries = {r["name"]: r for r in doc["resources"]}
    assert entries["knobs"]["namespaced"] is (scope == "Namespaced")
    assert entries["knobs"]["kind"] == "Knob"
    assert ("knobs/status" in entries) is status
    _, groups = await http.get("/apis")
    assert group in [g["name"] for g in groups["groups"]]

    base = f"/apis/{group}/v1" + (f"/namespaces/{namespace}" if scope == "Namespaced" else "")
    body = {"apiVersion": f"{group}/v1", "kind": "Knob", "metadata": {"name": "k1"}, "spec": {}}
    code, obj = await http.post(f"{base}/knobs", body)
    assert code == 201, obj
    assert ("namespace" in obj["metadata"]) is (scope == "Namespaced")
    code, _ = await http.get(f"{base}/knobs/k1/status")
    assert code == (200 if status else 404)
    # custom resources have no strategic merge patch
    code, err = await http.patch(
        f"{base}/knobs/k1", {"spec": {"a": 1}}, "application/strategic-merge-patch+json"
    )
    assert code == 415
    assert err["reason"] == "UnsupportedMediaType"

    code, _ = await http.delete(f"{CRDS}/{name}")
    assert code == 200

    async def gone() -> bool:
        code, _ = await http.get(f"{base}/knobs")
        return code == 404

    await _until(gone, "the resources of a deleted CRD to disappear")


async def test_invalid_crd_is_422(http: Http) -> None:
    body = _crd("x.sealed-gitops.io", scope="Namespaced", status=False)
    body["metadata"]["name"] = "wrong.name"
    code, err = await http.post(CRDS, body)
    assert code == 422
    assert err["reason"] == "Invalid"
