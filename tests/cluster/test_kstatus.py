"""kstatus rules (sealed_gitops/cluster/health.py): one case per rule, as kstatus and Flux decide.

Pure: objects in, (status, message) out; no cluster. The operator tests
(tests/operator/test_health_checks.py) show the same rules deciding a Sync's readiness live.
"""

from __future__ import annotations

from typing import Any

import pytest

from sealed_gitops.cluster.health import Status, compute


def _deploy(
    *,
    replicas: int = 2,
    generation: int = 3,
    status: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "a", "generation": generation},
        "spec": {"replicas": replicas, **(spec or {})},
        **({"status": status} if status is not None else {}),
    }


def _available(replicas: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "observedGeneration": 3,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
        **extra,
    }


DEPLOYMENT_CASES = [
    ("no status yet", _deploy(), Status.IN_PROGRESS, "replicas: 0/2"),
    ("available", _deploy(status=_available()), Status.CURRENT, "available"),
    (
        "generation not observed",
        _deploy(status=_available(observedGeneration=2)),
        Status.IN_PROGRESS,
        "generation 3 not observed",
    ),
    (
        "updated behind",
        _deploy(status={**_available(), "updatedReplicas": 1}),
        Status.IN_PROGRESS,
        "updated: 1/2",
    ),
    (
        "old pods terminating",
        _deploy(status={**_available(), "replicas": 3}),
        Status.IN_PROGRESS,
        "pending termination: 1",
    ),
    (
        "available behind updated",
        _deploy(status={**_available(), "availableReplicas": 1}),
        Status.IN_PROGRESS,
        "available: 1/2",
    ),
    (
        "ready behind",
        _deploy(status={**_available(), "readyReplicas": 1}),
        Status.IN_PROGRESS,
        "ready: 1/2",
    ),
    (
        "deadline set, new ReplicaSet not available",
        _deploy(
            spec={"progressDeadlineSeconds": 600},
            status={**_available(), "conditions": [{"type": "Available", "status": "True"}]},
        ),
        Status.IN_PROGRESS,
        "new ReplicaSet",
    ),
    (
        "counts fine but Available False",
        _deploy(
            status={
                **_available(),
                "conditions": [{"type": "Available", "status": "False", "reason": "Min"}],
            }
        ),
        Status.IN_PROGRESS,
        "not Available",
    ),
    (
        "progress deadline exceeded",
        _deploy(
            status={
                **_available(),
                "conditions": [
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": 'ReplicaSet "web-1" has timed out progressing.',
                    }
                ],
            }
        ),
        Status.FAILED,
        "timed out progressing",
    ),
    ("zero replicas, scaled down", _deploy(replicas=0, status=_available(0)), Status.CURRENT, ""),
]


@pytest.mark.parametrize(
    ("obj", "status", "phrase"),
    [pytest.param(o, s, p, id=i) for i, o, s, p in DEPLOYMENT_CASES],
)
def test_deployment(obj: dict[str, Any], status: Status, phrase: str) -> None:
    health = compute(obj)
    assert health.status is status, health
    assert phrase in health.message


def _job(conditions: list[dict[str, Any]] | None = None, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "a", "generation": 1},
        "spec": {"completions": 1},
        "status": {**status, **({"conditions": conditions} if conditions else {})},
    }


@pytest.mark.parametrize(
    ("obj", "status", "phrase"),
    [
        pytest.param(_job(), Status.IN_PROGRESS, "not complete: 0/1", id="not-started"),
        pytest.param(
            _job(active=1, startTime="2026-01-01T00:00:00Z"),
            Status.IN_PROGRESS,
            "1 active",
            id="running-is-not-done",
        ),
        pytest.param(
            _job([{"type": "Complete", "status": "True"}], succeeded=1),
            Status.CURRENT,
            "complete, 1/1",
            id="complete",
        ),
        pytest.param(
            _job(
                [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}], failed=6
            ),
            Status.FAILED,
            "BackoffLimitExceeded",
            id="failed",
        ),
        pytest.param(
            _job([{"type": "Suspended", "status": "True"}]), Status.CURRENT, "suspended", id="susp"
        ),
    ],
)
def test_job(obj: dict[str, Any], status: Status, phrase: str) -> None:
    health = compute(obj)
    assert health.status is status, health
    assert phrase in health.message


def _custom(status: dict[str, Any] | None, generation: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "a", "generation": generation},
        **({"status": status} if status is not None else {}),
    }


@pytest.mark.parametrize(
    ("obj", "status", "phrase"),
    [
        pytest.param(_custom(None), Status.CURRENT, "no status", id="no-status-is-current"),
        pytest.param(_custom({"phase": "x"}), Status.CURRENT, "", id="no-conditions"),
        pytest.param(
            _custom({"conditions": [{"type": "Ready", "status": "True"}]}),
            Status.CURRENT,
            "ready",
            id="ready-true",
        ),
        pytest.param(
            _custom({"conditions": [{"type": "Ready", "status": "False", "message": "db down"}]}),
            Status.IN_PROGRESS,
            "Ready is False: db down",
            id="ready-false",
        ),
        pytest.param(
            _custom({"conditions": [{"type": "Ready", "status": "Unknown"}]}),
            Status.IN_PROGRESS,
            "Ready is Unknown",
            id="ready-unknown",
        ),
        pytest.param(
            _custom({"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]}),
            Status.IN_PROGRESS,
            "generation 2 not observed yet (observed 1)",
            id="stale-observed-generation",
        ),
        pytest.param(
            _custom({"conditions": [{"type": "Reconciling", "status": "True", "message": "m"}]}),
            Status.IN_PROGRESS,
            "m",
            id="reconciling",
        ),
        pytest.param(
            _custom({"conditions": [{"type": "Stalled", "status": "True", "reason": "Bad"}]}),
            Status.FAILED,
            "Bad",
            id="stalled",
        ),
        pytest.param(
            {**_custom(None), "metadata": {"name": "w", "deletionTimestamp": "2026-01-01T00:00Z"}},
            Status.TERMINATING,
            "deleted",
            id="terminating",
        ),
    ],
)
def test_generic_rules(obj: dict[str, Any], status: Status, phrase: str) -> None:
    health = compute(obj)
    assert health.status is status, health
    assert phrase in health.message


@pytest.mark.parametrize(
    ("obj", "status"),
    [
        pytest.param(
            {"apiVersion": "v1", "kind": "ConfigMap", "data": {}}, Status.CURRENT, id="cm"
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}},
            Status.IN_PROGRESS,
            id="pvc-pending",
        ),
        pytest.param(
            {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {"phase": "Bound"}},
            Status.CURRENT,
            id="pvc-bound",
        ),
        pytest.param(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"generation": 1},
                "spec": {"replicas": 2},
                "status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": 1},
            },
            Status.IN_PROGRESS,
            id="sts-not-ready",
        ),
        pytest.param(
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": {"generation": 1},
                "spec": {"replicas": 2},
                "status": {
                    "observedGeneration": 1,
                    "replicas": 2,
                    "readyReplicas": 2,
                    "currentReplicas": 2,
                    "currentRevision": "r1",
                    "updateRevision": "r1",
                },
            },
            Status.CURRENT,
            id="sts-current",
        ),
        pytest.param(
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"generation": 1}},
            Status.IN_PROGRESS,
            id="ds-unobserved",
        ),
        pytest.param(
            {
                "apiVersion": "apps/v1",
                "kind": "DaemonSet",
                "metadata": {"generation": 1},
                "status": {
                    "observedGeneration": 1,
                    "desiredNumberScheduled": 2,
                    "currentNumberScheduled": 2,
                    "updatedNumberScheduled": 2,
                    "numberAvailable": 2,
                    "numberReady": 2,
                },
            },
            Status.CURRENT,
            id="ds-current",
        ),
        pytest.param(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "status": {"conditions": [{"type": "Established", "status": "True"}]},
            },
            Status.CURRENT,
            id="crd-established",
        ),
        pytest.param(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "status": {
                    "conditions": [
                        {"type": "NamesAccepted", "status": "False", "reason": "Conflict"}
                    ]
                },
            },
            Status.FAILED,
            id="crd-names-conflict",
        ),
    ],
)
def test_other_kinds(obj: dict[str, Any], status: Status) -> None:
    assert compute(obj).status is status


def test_hostile_status_shapes_do_not_crash() -> None:
    """A custom resource's status is whatever its controller (or a tenant) wrote."""
    for status in ("text", ["a"], {"conditions": "x"}, {"conditions": [1, None, {"type": 5}]}):
        assert compute(_custom(status)).status is Status.CURRENT  # type: ignore[arg-type]
    weird = _deploy(status={"replicas": "2", "updatedReplicas": True})
    assert compute(weird).status is Status.IN_PROGRESS
    for junk in ("text", ["a"], 5):
        shaped = {**_deploy(spec={"updateStrategy": junk}), "status": junk, "metadata": junk}
        assert compute(shaped).status is Status.IN_PROGRESS
        sts = {**shaped, "apiVersion": "apps/v1", "kind": "StatefulSet"}
        assert compute(sts).status is Status.IN_PROGRESS
