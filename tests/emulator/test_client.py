"""The official Python client (``kubernetes``) against the server: typed, dynamic, and watch."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from typing import Any, Protocol

import pytest
from kubernetes import client, dynamic, watch
from kubernetes.client.exceptions import ApiException

from tests.emulator.waiting import crd_established, wait_for

pytestmark = pytest.mark.e2e


class _HasMetadata(Protocol):
    @property
    def metadata(self) -> client.V1ObjectMeta | None: ...


def _meta(obj: _HasMetadata) -> client.V1ObjectMeta:
    """The object's metadata; the typed models declare it optional, a server always sends it."""
    assert obj.metadata is not None, f"{type(obj).__name__} came back without metadata"
    return obj.metadata


def test_typed_crud(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name="creds", labels={"app": "x"}),
        string_data={"token": "s3cr3t"},
    )
    created = core.create_namespaced_secret(namespace, secret)
    assert created.data is not None
    assert base64.b64decode(created.data["token"]) == b"s3cr3t"
    read = core.read_namespaced_secret("creds", namespace)
    assert _meta(read).uid == _meta(created).uid
    listed = core.list_namespaced_secret(namespace, label_selector="app=x")
    assert [_meta(s).name for s in listed.items] == ["creds"]
    patched = core.patch_namespaced_secret("creds", namespace, {"metadata": {"labels": {"b": "c"}}})
    assert _meta(patched).labels == {"app": "x", "b": "c"}
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_secret(namespace, secret)
    assert exc.value.status == 409
    core.delete_namespaced_secret("creds", namespace)
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_secret("creds", namespace)
    assert exc.value.status == 404


def test_apps_and_server_side_apply(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            },
        },
    }
    applied = apps.patch_namespaced_deployment(
        "web",
        namespace,
        body,
        field_manager="sealed-gitops",
        force=True,
        _content_type="application/apply-patch+yaml",
    )
    assert applied.spec.replicas == 2
    assert _meta(applied).generation == 1
    managers = {m.manager: m.operation for m in _meta(applied).managed_fields or []}
    assert managers == {"sealed-gitops": "Apply"}


def test_dynamic_client_with_a_crd(api: client.ApiClient, namespace: str) -> None:
    group = f"dyn{uuid.uuid4().hex[:6]}.sealed-gitops.io"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"things.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
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
    ext = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition(client.V1CustomResourceDefinition.model_validate(crd))
    try:
        wait_for(
            lambda: crd_established(ext, f"things.{group}"), what="CRD established", timeout=20
        )
        # kubernetes.dynamic is unannotated.
        dyn = dynamic.DynamicClient(api)  # type: ignore[no-untyped-call]
        things = wait_for(
            lambda: _resource(dyn, f"{group}/v1", "Thing"), what="discovery of Thing", timeout=20
        )
        made = things.create(
            namespace=namespace,
            body={
                "apiVersion": f"{group}/v1",
                "kind": "Thing",
                "metadata": {"name": "t1"},
                "spec": {"n": 1},
            },
        )
        assert made.metadata.generation == 1
        assert [t.metadata.name for t in things.get(namespace=namespace).items] == ["t1"]
    finally:
        ext.delete_custom_resource_definition(f"things.{group}")
    custom = client.CustomObjectsApi(api)
    gone = wait_for(
        lambda: _missing(custom, group, namespace), what="CRD resources removed", timeout=20
    )
    assert gone


def test_watch_stream(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    first = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="first"))
    core.create_namespaced_config_map(namespace, first)
    seen: list[tuple[str, str]] = []
    # kubernetes.watch is unannotated.
    w = watch.Watch()  # type: ignore[no-untyped-call]

    def produce() -> None:
        time.sleep(0.5)
        second = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="second"))
        core.create_namespaced_config_map(namespace, second)

    threading.Thread(target=produce, daemon=True).start()
    stream = w.stream(  # type: ignore[no-untyped-call]
        core.list_namespaced_config_map, namespace, timeout_seconds=10
    )
    for event in stream:
        name = event["object"].metadata.name
        if name == "kube-root-ca.crt":
            continue
        seen.append((event["type"], name))
        if name == "second":
            w.stop()  # type: ignore[no-untyped-call]
    assert seen == [("ADDED", "first"), ("ADDED", "second")]


def _resource(dyn: dynamic.DynamicClient, api_version: str, kind: str) -> Any:
    try:
        dyn.resources.invalidate_cache()
        return dyn.resources.get(api_version=api_version, kind=kind)
    except Exception:
        return None


def _missing(custom: client.CustomObjectsApi, group: str, namespace: str) -> bool:
    try:
        custom.list_namespaced_custom_object(group, "v1", namespace, "things")
    except ApiException as exc:
        status: int | None = exc.status  # ApiException's attributes are unannotated
        return status == 404
    return False
