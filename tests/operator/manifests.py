"""Manifests the operator tests commit to Git, and readers of the operator's own counters."""

from __future__ import annotations

from typing import Any

import yaml

from sealed_gitops.operator.runner import OperatorThread


def secret_doc(name: str, namespace: str, **values: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "stringData": dict(values),
    }


def config_doc(name: str, namespace: str, **values: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
            "data": dict(values),
        }
    )


def sample(thread: OperatorThread, name: str, **labels: str) -> float:
    """A metric of the operator's own registry (0 when never observed)."""
    value = thread.context.metrics.registry.get_sample_value(name, labels)
    return float(value or 0.0)


def reconciles(thread: OperatorThread, result: str = "success") -> float:
    return sample(thread, "sealed_gitops_reconcile_total", kind="Sync", result=result)


def decryptions(thread: OperatorThread) -> float:
    registry = thread.context.metrics.registry
    return sum(
        s.value
        for metric in registry.collect()
        if metric.name == "sealed_gitops_decryption_operations"
        for s in metric.samples
        if s.name.endswith("_total")
    )


def writes(thread: OperatorThread) -> int:
    """Write requests (POST, PUT, PATCH, DELETE) the operator's reconciles sent."""
    return thread.context.client.writes
