"""Object semantics (issue 4, item 4) over plain HTTP, as a real API server has them."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from tests.emulator.kubehttp import Http
from tests.emulator.waiting import wait_for

pytestmark = pytest.mark.e2e

CM = "/api/v1/namespaces/{ns}/configmaps"
SECRETS = "/api/v1/namespaces/{ns}/secrets"


def cm(name: str, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **fields}


async def test_server_sets_identity_fields_and_versions_increase(
    http: Http, namespace: str
) -> None:
    path = CM.format(ns=namespace)
    status, a = await http.post(path, cm("a", data={"k": "1"}))
    assert status == 201
    status, b = await http.post(path, cm("b"))
    assert status == 201
    for obj in (a, b):
        meta = obj["metadata"]
        assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert a["metadata"]["uid"] != b["metadata"]["uid"]
    assert int(b["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
    a["data"] = {"k": "2"}
    status, a2 = await http.put(f"{path}/a", a)
    assert status == 200
    assert int(a2["metadata"]["resourceVersion"]) > int(b["metadata"]["resourceVersion"])
    assert a2["metadata"]["uid"] == a["metadata"]["uid"]


@pytest.mark.parametrize(
    ("method", "body_of"),
    [
        ("PUT", lambda obj: {**obj, "data": {"k": "stale"}}),
        (
            "PATCH",
            lambda obj: {
                "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
                "data": {"k": "stale"},
            },
        ),
    ],
)
async def test_stale_resource_version_is_a_conflict(
    http: Http, namespace: str, method: str, body_of: Any
) -> None:
    path = CM.format(ns=namespace)
    _, obj = await http.post(path, cm("c", data={"k": "1"}))
    status, _ = await http.patch(f"{path}/c", {"data": {"k": "2"}}, "application/merge-patch+json")
    assert status == 200
    content_type = "application/merge-patch+json" if method == "PATCH" else "application/json"
    status, err = await http.request(method, f"{path}/c", body_of(obj), content_type=content_type)
    assert status == 409
    assert err["kind"] == "Status"
    assert err["reason"] == "Conflict"


async def test_already_exists(http: Http, namespace: str) -> None:
    path = CM.format(ns=namespace)
    await http.post(path, cm("dup"))
    status, err = await http.post(path, cm("dup"))
    assert status == 409
    assert err["reason"] == "AlreadyExists"
    assert err["details"]["name"] == "dup"


async def test_not_found(http: Http, namespace: str) -> None:
    status, err = await http.get(f"{CM.format(ns=namespace)}/missing")
    assert status == 404
    assert err["reason"] == "NotFound"
    assert err["details"]["name"] == "missing"
    missing_ns = f"missing-{uuid.uuid4().hex[:8]}"
    status, err = await http.post(CM.format(ns=missing_ns), cm("x"))
    assert status == 404
    assert err["reason"] == "NotFound"
    assert missing_ns in err["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (CM, cm("Bad_Name"), "metadata.name"),
        (CM, cm("bad-key", data={"no/slash": "x"}), "data[no/slash]"),
        (SECRETS, {"metadata": {"name": "bad-key"}, "stringData": {"a b": "x"}}, "data[a b]"),
    ],
)
async def test_invalid_objects_answer_422_with_causes(
    http: Http, namespace: str, path: str, body: dict[str, Any], field: str
) -> None:
    status, err = await http.post(path.format(ns=namespace), body)
    assert status == 422
    assert err["kind"] == "Status"
    assert err["reason"] == "Invalid"
    assert err["code"] == 422
    assert field in [c["field"] for c in err["details"]["causes"]]


# Secret data that is not base64 fails on a real server while the body is decoded into the Go
# type, before validation: POST and PUT answer 400 (the apiserver's transformDecodeError), while a
# JSON, merge or strategic-merge patch whose result fails to decode answers 422 with a "patch"
# cause (the patch handler wraps the decode error in NewInvalid). Server-side apply is left out:
# there the failure comes from a type conversion inside the field manager (no Status error).
_BAD = "not base64!"


@pytest.mark.parametrize(
    ("method", "content_type", "body", "code", "reason"),
    [
        (
            "POST",
            "application/json",
            {"metadata": {"name": "s"}, "data": {"k": _BAD}},
            400,
            "BadRequest",
        ),
        (
            "PUT",
            "application/json",
            {"metadata": {"name": "s"}, "data": {"k": _BAD}},
            400,
            "BadRequest",
        ),
        ("PATCH", "application/merge-patch+json", {"data": {"k": _BAD}}, 422, "Invalid"),
        ("PATCH", "application/strategic-merge-patch+json", {"data": {"k": _BAD}}, 422, "Invalid"),
        (
            "PATCH",
            "application/json-patch+json",
            [{"op": "replace", "path": "/data/k", "value": _BAD}],
            422,
            "Invalid",
        ),
        (
            "POST",
            "application/json",
            {"metadata": {"name": "s"}, "data": {"k": "YQ"}},
            400,
            "BadRequest",
        ),
        (
            "PUT",
            "application/json",
            {"metadata": {"name": "s"}, "data": {"k": 1}},
            400,
            "BadRequest",
        ),
    ],
    ids=[
        "post",
        "put",
        "merge-patch",
        "strategic-patch",
        "json-patch",
        "post-no-padding",
        "put-number",
    ],
)
async def test_secret_data_must_be_base64(
    http: Http, namespace: str, method: str, content_type: str, body: Any, code: int, reason: str
) -> None:
    path = SECRETS.format(ns=namespace)
    status, stored = await http.post(path, {"metadata": {"name": "s"}, "data": {"k": "YQ=="}})
    assert status == 201, stored
    url = path if method == "POST" else f"{path}/s"
    if method == "POST":
        await http.delete(f"{path}/s")
    status, err = await http.request(method, url, body, content_type=content_type)
    assert status == code, err
    assert err["kind"] == "Status"
    assert err["reason"] == reason
    if code == 422:
        assert [c["field"] for c in err["details"]["causes"]] == ["patch"]
    status, now = await http.get(f"{path}/s")
    if method == "POST":
        assert status == 404  # nothing was created
    else:
        assert now["data"] == {"k": "YQ=="}
        assert now["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]


@pytest.mark.parametrize(
    ("sent", "returned"),
    [
        ("YWJj\nZGVm", "YWJjZGVm"),  # Go's decoder skips line breaks
        ("YWJj\r\nZGVm\n", "YWJjZGVm"),
        ("YR==", "YQ=="),  # non-zero padding bits decode, and come back canonical
        ("", ""),
    ],
)
async def test_secret_data_comes_back_as_the_server_encodes_it(
    http: Http, namespace: str, sent: str, returned: str
) -> None:
    status, created = await http.post(
        SECRETS.format(ns=namespace), {"metadata": {"name": "w"}, "data": {"k": sent}}
    )
    assert status == 201, created
    assert created["data"] == {"k": returned}


async def test_string_data_is_folded_into_data(http: Http, namespace: str) -> None:
    body = {
        "metadata": {"name": "s"},
        "data": {"a": base64.b64encode(b"1").decode()},
        "stringData": {"b": "2", "a": "override"},
    }
    status, obj = await http.post(SECRETS.format(ns=namespace), body)
    assert status == 201
    assert "stringData" not in obj
    decoded = {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}
    assert decoded == {"a": "override", "b": "2"}
    assert obj["type"] == "Opaque"


async def test_generate_name(http: Http, namespace: str) -> None:
    body = {"metadata": {"generateName": "gen-"}}
    _, first = await http.post(CM.format(ns=namespace), body)
    _, second = await http.post(CM.format(ns=namespace), body)
    for obj in (first, second):
        assert obj["metadata"]["name"].startswith("gen-")
        assert len(obj["metadata"]["name"]) == len("gen-") + 5
    assert first["metadata"]["name"] != second["metadata"]["name"]


async def test_finalizers_hold_deletion_until_removed(http: Http, namespace: str) -> None:
    path = CM.format(ns=namespace)
    await http.post(path, cm("held", metadata={"name": "held", "finalizers": ["example.com/hold"]}))
    status, obj = await http.delete(f"{path}/held")
    assert status in (200, 202)
    status, obj = await http.get(f"{path}/held")
    assert status == 200
    assert obj["metadata"]["deletionTimestamp"]
    status, _ = await http.patch(
        f"{path}/held", {"metadata": {"finalizers": None}}, "application/merge-patch+json"
    )
    assert status == 200
    status, _ = await http.get(f"{path}/held")
    assert status == 404


async def test_deleting_a_namespace_removes_its_objects(http: Http) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    await http.post("/api/v1/namespaces", {"metadata": {"name": name}})
    await http.post(CM.format(ns=name), cm("inside"))
    status, ns = await http.delete(f"/api/v1/namespaces/{name}")
    assert status == 200
    assert ns["status"]["phase"] == "Terminating"
    status, _ = await http.post(CM.format(ns=name), cm("late"))
    assert status in (403, 404)  # Forbidden while terminating, NotFound once gone
    for _ in range(300):
        status, _ = await http.get(f"{CM.format(ns=name)}/inside")
        if status == 404:
            break
        await _sleep()
    assert status == 404


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.1)


@pytest.mark.parametrize("verb", ["POST", "PUT", "PATCH", "DELETE"])
async def test_dry_run_persists_nothing(http: Http, namespace: str, verb: str) -> None:
    path = CM.format(ns=namespace)
    if verb != "POST":
        await http.post(path, cm("d", data={"k": "1"}))
    _, before = await http.get(path)
    url = f"{path}?dryRun=All" if verb == "POST" else f"{path}/d?dryRun=All"
    body = {
        "POST": cm("d", data={"k": "2"}),
        "PUT": cm("d", data={"k": "2"}),
        "PATCH": {"data": {"k": "2"}},
        "DELETE": None,
    }[verb]
    content_type = "application/merge-patch+json" if verb == "PATCH" else "application/json"
    status, _ = await http.request(verb, url, body, content_type=content_type)
    assert status in (200, 201)
    _, after = await http.get(path)
    assert [i.get("data") for i in after["items"]] == [i.get("data") for i in before["items"]]
    assert [i["metadata"]["resourceVersion"] for i in after["items"]] == [
        i["metadata"]["resourceVersion"] for i in before["items"]
    ]


async def test_generation_bumps_on_spec_changes_only(http: Http, namespace: str, crd: str) -> None:
    path = f"/apis/{GROUP}/v1/namespaces/{namespace}/{crd}"
    status, obj = await http.post(
        path,
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Gadget",
            "metadata": {"name": "g"},
            "spec": {"size": 1},
        },
    )
    assert status == 201, obj
    assert obj["metadata"]["generation"] == 1
    _, obj = await http.patch(
        f"{path}/g", {"metadata": {"labels": {"a": "b"}}}, "application/merge-patch+json"
    )
    assert obj["metadata"]["generation"] == 1
    _, obj = await http.patch(f"{path}/g", {"spec": {"size": 2}}, "application/merge-patch+json")
    assert obj["metadata"]["generation"] == 2
    _, obj = await http.patch(
        f"{path}/g/status", {"status": {"ready": True}}, "application/merge-patch+json"
    )
    assert obj["metadata"]["generation"] == 2


async def test_status_subresource_split(http: Http, namespace: str, crd: str) -> None:
    path = f"/apis/{GROUP}/v1/namespaces/{namespace}/{crd}"
    status, obj = await http.post(
        path,
        {
            "apiVersion": f"{GROUP}/v1",
            "kind": "Gadget",
            "metadata": {"name": "s"},
            "spec": {"size": 1},
            "status": {"ready": True},
        },
    )
    assert status == 201
    assert "ready" not in (obj.get("status") or {})  # status is ignored on create
    _, obj = await http.patch(
        f"{path}/s",
        {"spec": {"size": 2}, "status": {"ready": True}},
        "application/merge-patch+json",
    )
    assert obj["spec"]["size"] == 2
    assert "ready" not in (obj.get("status") or {})  # the main resource ignores status
    _, obj = await http.patch(
        f"{path}/s/status",
        {"spec": {"size": 3}, "status": {"ready": True}},
        "application/merge-patch+json",
    )
    assert obj["status"]["ready"] is True
    assert obj["spec"]["size"] == 2  # the status subresource ignores everything else


GROUP = "semantics.sealed-gitops.io"


@pytest.fixture(scope="module")
def crd(endpoint: Any) -> str:
    """A namespaced CRD with a status subresource, created once (and left in place)."""
    plural = "gadgets"
    body = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    status, _ = endpoint.call(
        "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body
    )
    assert status in (201, 409)
    name = f"{plural}.{GROUP}"
    wait_for(lambda: _established(endpoint, name), what=f"CRD {name} to be Established", timeout=10)
    return plural


def _established(endpoint: Any, name: str) -> bool:
    _, obj = endpoint.call("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    conditions = {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions", [])}
    return conditions.get("Established") == "True"


async def test_namespace_waits_for_finalizers_of_its_objects(http: Http) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    await http.post("/api/v1/namespaces", {"metadata": {"name": name}})
    held = {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    await http.post(CM.format(ns=name), held)
    await http.delete(f"/api/v1/namespaces/{name}")
    for _ in range(20):  # give a real cluster's namespace controller time to reach the object
        _, obj = await http.get(f"{CM.format(ns=name)}/held")
        if obj["metadata"].get("deletionTimestamp"):
            break
        await _sleep()
    assert obj["metadata"]["deletionTimestamp"]
    status, ns = await http.get(f"/api/v1/namespaces/{name}")
    assert status == 200
    assert ns["status"]["phase"] == "Terminating"
    await http.patch(
        f"{CM.format(ns=name)}/held",
        {"metadata": {"finalizers": None}},
        "application/merge-patch+json",
    )
    for _ in range(300):
        status, _ = await http.get(f"/api/v1/namespaces/{name}")
        if status == 404:
            break
        await _sleep()
    assert status == 404


async def test_immutable_secret_refuses_changes(http: Http, namespace: str) -> None:
    path = SECRETS.format(ns=namespace)
    body = {"metadata": {"name": "frozen"}, "stringData": {"k": "v"}, "immutable": True}
    status, _ = await http.post(path, body)
    assert status == 201
    status, err = await http.patch(
        f"{path}/frozen", {"stringData": {"k": "w"}}, "application/merge-patch+json"
    )
    assert status == 422
    assert "data" in [c["field"] for c in err["details"]["causes"]]
    status, _ = await http.patch(
        f"{path}/frozen", {"metadata": {"labels": {"a": "b"}}}, "application/merge-patch+json"
    )
    assert status == 200  # metadata stays mutable


async def test_a_patch_type_on_post_is_415(http: Http, namespace: str) -> None:
    status, err = await http.post(
        CM.format(ns=namespace), cm("p"), content_type="application/merge-patch+json"
    )
    assert status == 415
    assert err["reason"] == "UnsupportedMediaType"


async def test_a_verb_the_resource_lacks_is_405(http: Http) -> None:
    status, err = await http.delete("/api/v1/namespaces")  # namespaces have no deletecollection
    assert status == 405
    assert err["reason"] == "MethodNotAllowed"


async def test_a_no_op_write_keeps_the_resource_version(http: Http, namespace: str) -> None:
    path = CM.format(ns=namespace)
    _, obj = await http.post(path, cm("same", data={"k": "v"}))
    _, patched = await http.patch(
        f"{path}/same", {"data": {"k": "v"}}, "application/merge-patch+json"
    )
    assert patched["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    _, put = await http.put(f"{path}/same", patched)
    assert put["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
