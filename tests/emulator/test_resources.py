"""Every built-in resource issue 4 (item 3) names is discovered, created, read back and listed.

One row per resource: discovery must advertise it under its group/version with the right scope,
and a minimal object that a real API server also accepts (hence the complete workload templates)
must round-trip through POST, GET and LIST. Create-only reviews (TokenReview,
SelfSubjectAccessReview) and CustomResourceDefinitions have their own tests in test_auth.py and
test_crds.py; here they only have to be discovered.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.emulator.kubehttp import Http

pytestmark = pytest.mark.e2e

_POD = {
    "metadata": {"labels": {"app": "x"}},
    "spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"},
}
_SELECTOR = {"matchLabels": {"app": "x"}}
_ALWAYS = {
    "metadata": {"labels": {"app": "x"}},
    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
}


def _body(kind: str, ns: str) -> dict[str, Any]:
    """A minimal object of ``kind`` that a real API server's validation accepts."""
    regarding = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "namespace": ns}
    bodies: dict[str, dict[str, Any]] = {
        "Secret": {"stringData": {"k": "v"}},
        "ConfigMap": {"data": {"k": "v"}},
        "ServiceAccount": {},
        "Service": {"spec": {"ports": [{"port": 80}]}},
        "CoreEvent": {
            "involvedObject": regarding,
            "reason": "Tested",
            "message": "m",
            "type": "Normal",
        },
        "Event": {
            "eventTime": "2024-01-01T00:00:00.000000Z",
            "reportingController": "example.com/tests",
            "reportingInstance": "tests-1",
            "action": "Test",
            "reason": "Tested",
            "regarding": regarding,
            "type": "Normal",
            "note": "n",
        },
        "Deployment": {"spec": {"selector": _SELECTOR, "template": _ALWAYS}},
        "StatefulSet": {"spec": {"selector": _SELECTOR, "template": _ALWAYS, "serviceName": "s"}},
        "DaemonSet": {"spec": {"selector": _SELECTOR, "template": _ALWAYS}},
        "Job": {"spec": {"template": _POD}},
        "CronJob": {"spec": {"schedule": "0 0 * * *", "jobTemplate": {"spec": {"template": _POD}}}},
        "Ingress": {"spec": {"defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}}},
        "Role": {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
        "RoleBinding": {
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}],
        },
        "ClusterRole": {"rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]},
        "ClusterRoleBinding": {
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "view",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}],
        },
        "Lease": {"spec": {"holderIdentity": "tests"}},
    }
    return bodies[kind]


# (group/version, plural, kind, namespaced, round trip)
RESOURCES = [
    ("v1", "namespaces", "Namespace", False, False),  # created by every test's fixture
    ("v1", "secrets", "Secret", True, True),
    ("v1", "configmaps", "ConfigMap", True, True),
    ("v1", "serviceaccounts", "ServiceAccount", True, True),
    ("v1", "services", "Service", True, True),
    ("v1", "events", "CoreEvent", True, True),
    ("events.k8s.io/v1", "events", "Event", True, True),
    ("apps/v1", "deployments", "Deployment", True, True),
    ("apps/v1", "statefulsets", "StatefulSet", True, True),
    ("apps/v1", "daemonsets", "DaemonSet", True, True),
    ("batch/v1", "jobs", "Job", True, True),
    ("batch/v1", "cronjobs", "CronJob", True, True),
    ("networking.k8s.io/v1", "ingresses", "Ingress", True, True),
    ("rbac.authorization.k8s.io/v1", "roles", "Role", True, True),
    ("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding", True, True),
    ("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", False, True),
    ("rbac.authorization.k8s.io/v1", "clusterrolebindings", "ClusterRoleBinding", False, True),
    (
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        False,
    ),
    ("coordination.k8s.io/v1", "leases", "Lease", True, True),
    ("authentication.k8s.io/v1", "tokenreviews", "TokenReview", False, False),
    (
        "authorization.k8s.io/v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        False,
        False,
    ),
]


def _prefix(group_version: str) -> str:
    return "/api/v1" if group_version == "v1" else f"/apis/{group_version}"


@pytest.mark.parametrize(
    ("group_version", "plural", "kind", "namespaced", "round_trip"),
    RESOURCES,
    ids=[f"{gv.split('/')[0]}:{plural}" for gv, plural, *_ in RESOURCES],
)
async def test_builtin_resource_is_served(
    http: Http,
    namespace: str,
    group_version: str,
    plural: str,
    kind: str,
    namespaced: bool,
    round_trip: bool,
) -> None:
    status, discovery = await http.get(_prefix(group_version))
    assert status == 200, discovery
    entry = next((r for r in discovery["resources"] if r["name"] == plural), None)
    assert entry is not None, f"{plural} missing from {group_version} discovery"
    assert entry["namespaced"] is namespaced
    wire_kind = "Event" if kind == "CoreEvent" else kind
    assert entry["kind"] == wire_kind
    if not round_trip:
        return

    base = _prefix(group_version)
    collection = f"{base}/namespaces/{namespace}/{plural}" if namespaced else f"{base}/{plural}"
    name = f"r-{uuid.uuid4().hex[:8]}" if not namespaced else "r"
    body = {
        "apiVersion": group_version,
        "kind": wire_kind,
        "metadata": {"name": name},
        **_body(kind, namespace),
    }
    status, created = await http.post(collection, body)
    assert status == 201, created
    try:
        assert created["kind"] == wire_kind
        assert created["metadata"]["uid"]
        assert created["metadata"]["resourceVersion"]
        status, got = await http.get(f"{collection}/{name}")
        assert status == 200, got
        assert got["metadata"]["uid"] == created["metadata"]["uid"]
        status, listed = await http.get(collection)
        assert status == 200, listed
        assert listed["kind"] == f"{wire_kind}List"
        assert name in [item["metadata"]["name"] for item in listed["items"]]
    finally:
        if not namespaced:  # the namespace fixture does not clean cluster-scoped objects up
            await http.delete(f"{collection}/{name}")
