"""Verbs (issue 4, item 5) over plain HTTP: selectors, paging, watch, patches, server-side apply."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest

from tests.emulator.kubehttp import Http

pytestmark = pytest.mark.e2e

CM = "/api/v1/namespaces/{ns}/configmaps"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
ROOT_CA = "kube-root-ca.crt"


def cm(name: str, labels: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, **fields}


@pytest.fixture
async def labelled(http: Http, namespace: str) -> str:
    path = CM.format(ns=namespace)
    for name, labels in [
        ("a", {"tier": "web", "env": "prod"}),
        ("b", {"tier": "db", "env": "prod"}),
        ("c", {"tier": "web"}),
        ("d", {}),
    ]:
        status, _ = await http.post(path, cm(name, labels))
        assert status == 201
    return path


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=web", ["a", "c"]),
        ("tier==web", ["a", "c"]),
        ("tier!=web", ["b", "d"]),
        ("tier in (web,db)", ["a", "b", "c"]),
        ("tier notin (web)", ["b", "d"]),
        ("env", ["a", "b"]),
        ("!env", ["c", "d"]),
        ("tier=web,env=prod", ["a"]),
    ],
)
async def test_label_selectors(
    http: Http, labelled: str, selector: str, expected: list[str]
) -> None:
    status, listed = await http.get(f"{labelled}?labelSelector={_q(selector)}")
    assert status == 200
    assert _names(listed) == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [("metadata.name=b", ["b"]), ("metadata.name!=b", ["a", "c", "d"])],
)
async def test_field_selectors(
    http: Http, labelled: str, selector: str, expected: list[str]
) -> None:
    status, listed = await http.get(f"{labelled}?fieldSelector={_q(selector)}")
    assert status == 200
    assert _names(listed) == expected


async def test_field_selector_on_namespace_across_namespaces(
    http: Http, labelled: str, namespace: str
) -> None:
    status, listed = await http.get(
        f"/api/v1/configmaps?fieldSelector=metadata.namespace%3D{namespace}"
    )
    assert status == 200
    names = sorted(i["metadata"]["name"] for i in listed["items"])
    assert {"a", "b", "c", "d"} <= set(names)
    assert {i["metadata"]["namespace"] for i in listed["items"]} == {namespace}


async def test_limit_and_continue(http: Http, labelled: str) -> None:
    names, token, pages = [], "", 0
    while True:
        url = f"{labelled}?limit=3" + (f"&continue={token}" if token else "")
        status, page = await http.get(url)
        assert status == 200
        assert len(page["items"]) <= 3
        names += [i["metadata"]["name"] for i in page["items"]]
        pages += 1
        token = page["metadata"].get("continue", "")
        if not token:
            break
    names = [n for n in names if n != ROOT_CA]
    assert names == ["a", "b", "c", "d"]
    assert pages >= 2


async def test_delete_collection(http: Http, labelled: str) -> None:
    status, _ = await http.delete(f"{labelled}?labelSelector=tier%3Dweb")
    assert status == 200
    _, listed = await http.get(f"{labelled}?labelSelector=tier")
    assert _names(listed) == ["b"]


# -- watch ---------------------------------------------------------------------------------------


async def _watch(http: Http, url: str, *, until: int, timeout: float = 10) -> list[dict[str, Any]]:
    """Read watch events until ``until`` arrived or the stream ended."""
    endpoint = http.endpoint
    events: list[dict[str, Any]] = []

    async def read() -> None:
        async with http.session.get(
            endpoint.server + url, headers=endpoint.headers, ssl=endpoint.ssl
        ) as response:
            assert response.status == 200
            async for line in response.content:
                if line.strip():
                    events.append(json.loads(line))
                if len(events) >= until:
                    return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read(), timeout)
    return events


async def test_watch_resumes_from_a_resource_version(http: Http, namespace: str) -> None:
    path = CM.format(ns=namespace)
    _, first = await http.post(path, cm("w1"))
    rv = first["metadata"]["resourceVersion"]
    await http.post(path, cm("w2"))
    await http.patch(f"{path}/w1", {"data": {"k": "v"}}, MERGE)
    await http.delete(f"{path}/w2")
    events = await _watch(http, f"{path}?watch=true&resourceVersion={rv}", until=3)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w2"),
        ("MODIFIED", "w1"),
        ("DELETED", "w2"),
    ]


async def test_watch_without_version_starts_with_current_state(http: Http, namespace: str) -> None:
    path = CM.format(ns=namespace)
    await http.post(path, cm("now", {"pick": "me"}))
    task = asyncio.create_task(_watch(http, f"{path}?watch=1&labelSelector=pick", until=2))
    await asyncio.sleep(0.5)
    await http.post(path, cm("later", {"pick": "me"}))
    await http.post(path, cm("ignored"))
    events = await task
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "now"),
        ("ADDED", "later"),
    ]


async def test_watch_with_a_too_old_version_is_gone(http: Http, namespace: str) -> None:
    events = await _watch(http, f"{CM.format(ns=namespace)}?watch=true&resourceVersion=1", until=1)
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["code"] == 410
    assert events[0]["object"]["reason"] in ("Expired", "Gone")


async def test_watch_timeout_ends_the_stream(http: Http, namespace: str) -> None:
    _, listed = await http.get(CM.format(ns=namespace))
    rv = listed["metadata"]["resourceVersion"]
    loop = asyncio.get_running_loop()
    started = loop.time()
    url = f"{CM.format(ns=namespace)}?watch=true&timeoutSeconds=1&resourceVersion={rv}"
    events = await _watch(http, url, until=100, timeout=15)
    assert loop.time() - started < 10
    assert events == []


async def test_watch_list_ends_initial_events_with_a_bookmark(http: Http, namespace: str) -> None:
    path = CM.format(ns=namespace)
    await http.post(path, cm("x"))
    url = (
        f"{path}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true"
        "&resourceVersionMatch=NotOlderThan&fieldSelector=metadata.name%3Dx"
    )
    events = await _watch(http, url, until=2)
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    bookmark = events[1]["object"]["metadata"]
    assert bookmark["annotations"]["k8s.io/initial-events-end"] == "true"
    assert int(bookmark["resourceVersion"]) >= int(
        events[0]["object"]["metadata"]["resourceVersion"]
    )


# -- patches -------------------------------------------------------------------------------------


async def test_json_patch_and_failed_test_is_422(http: Http, namespace: str) -> None:
    path = CM.format(ns=namespace)
    _, obj = await http.post(path, cm("j", data={"a": "1"}))
    rv = obj["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/data/b", "value": "2"},
        {"op": "remove", "path": "/data/a"},
    ]
    status, obj = await http.patch(f"{path}/j", ops, JSON_PATCH)
    assert status == 200
    assert obj["data"] == {"b": "2"}
    status, err = await http.patch(f"{path}/j", ops, JSON_PATCH)  # rv changed: the test fails
    assert status == 422
    assert err["kind"] == "Status"


async def test_merge_patch_null_deletes(http: Http, namespace: str) -> None:
    path = CM.format(ns=namespace)
    await http.post(path, cm("m", data={"a": "1", "b": "2"}))
    _, obj = await http.patch(f"{path}/m", {"data": {"a": None, "c": "3"}}, MERGE)
    assert obj["data"] == {"b": "2", "c": "3"}


async def test_strategic_merge_merges_lists_by_name(http: Http, namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "app:1"},
                        {"name": "side", "image": "side:1"},
                    ]
                },
            },
        },
    }
    status, created = await http.post(path, deployment)
    assert status == 201, created
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}}
    _, obj = await http.patch(f"{path}/web", patch, STRATEGIC)
    images = {c["name"]: c["image"] for c in obj["spec"]["template"]["spec"]["containers"]}
    assert images == {"app": "app:2", "side": "side:1"}
    assert obj["metadata"]["generation"] == 2
    delete = {
        "spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}
    }
    _, obj = await http.patch(f"{path}/web", delete, STRATEGIC)
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["app"]


# -- server-side apply ---------------------------------------------------------------------------


def _fields(obj: dict[str, Any], manager: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(
        e for e in obj["metadata"]["managedFields"] if e["manager"] == manager
    )
    assert entry["fieldsType"] == "FieldsV1"
    return entry


async def test_apply_creates_owns_conflicts_and_prunes(http: Http, namespace: str) -> None:
    url = f"{CM.format(ns=namespace)}/ssa?fieldManager=alice"
    status, obj = await http.patch(url, cm("ssa", data={"a": "1", "b": "2"}), APPLY)
    assert status == 201
    alice = _fields(obj, "alice")
    assert alice["operation"] == "Apply"
    assert set(alice["fieldsV1"]["f:data"]) == {"f:a", "f:b"}
    # bob applies a different value for a field alice owns: 409 naming the field
    bob = f"{CM.format(ns=namespace)}/ssa?fieldManager=bob"
    status, err = await http.patch(bob, cm("ssa", data={"a": "9"}), APPLY)
    assert status == 409
    assert err["reason"] == "Conflict"
    assert [c["field"] for c in err["details"]["causes"]] == [".data.a"]
    # the same value is shared ownership, not a conflict
    status, obj = await http.patch(bob, cm("ssa", data={"b": "2", "c": "3"}), APPLY)
    assert status == 200
    # alice stops applying a and b: a goes away, b stays because bob still owns it
    status, obj = await http.patch(url, cm("ssa", data={}), APPLY)
    assert status == 200
    assert obj["data"] == {"b": "2", "c": "3"}
    # force takes the field over
    status, obj = await http.patch(f"{bob}&force=true", cm("ssa", data={"b": "7", "c": "3"}), APPLY)
    assert status == 200
    assert obj["data"] == {"b": "7", "c": "3"}


async def test_apply_to_keyed_lists(http: Http, namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/api"

    def deployment(containers: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "api"},
            "spec": {
                "selector": {"matchLabels": {"app": "api"}},
                "template": {
                    "metadata": {"labels": {"app": "api"}},
                    "spec": {"containers": containers},
                },
            },
        }

    status, obj = await http.patch(
        f"{path}?fieldManager=ci", deployment([{"name": "app", "image": "app:1"}]), APPLY
    )
    assert status == 201, obj
    fields = _fields(obj, "ci")["fieldsV1"]
    item = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"app"}']
    assert "f:image" in item
    status, obj = await http.patch(
        f"{path}?fieldManager=sidecar", deployment([{"name": "side", "image": "side:1"}]), APPLY
    )
    assert status == 200
    names = [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]]
    assert sorted(names) == ["app", "side"]


async def test_apply_with_yaml_body(http: Http, namespace: str) -> None:
    body = (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n  namespace: {namespace}\n"
        "data:\n  k: v\n"
    )
    status, obj = await http.patch(
        f"{CM.format(ns=namespace)}/y?fieldManager=yaml", body.encode(), APPLY
    )
    assert status == 201
    assert obj["data"] == {"k": "v"}


def _names(listed: dict[str, Any]) -> list[str]:
    # every namespace of a cluster holds this ConfigMap (published by a controller)
    return [i["metadata"]["name"] for i in listed["items"] if i["metadata"]["name"] != ROOT_CA]


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


async def test_watch_with_a_selector_sees_objects_enter_and_leave(
    http: Http, namespace: str
) -> None:
    path = CM.format(ns=namespace)
    _, obj = await http.post(path, cm("flip"))
    rv = obj["metadata"]["resourceVersion"]
    await http.patch(f"{path}/flip", {"metadata": {"labels": {"on": "yes"}}}, MERGE)
    await http.patch(f"{path}/flip", {"data": {"k": "v"}}, MERGE)
    await http.patch(f"{path}/flip", {"metadata": {"labels": {"on": None}}}, MERGE)
    events = await _watch(http, f"{path}?watch=1&resourceVersion={rv}&labelSelector=on", until=3)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
