"""Manifests the operator tests commit to Git, and readers of the operator's own counters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
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


def run_audit_cluster(kubeconfig: Path, ns: str) -> subprocess.CompletedProcess[str]:
    """`sealed-gitops audit --cluster -n NS --output json`, run as a user runs it (exit 0)."""
    result = subprocess.run(
        [sys.executable, "-m", "sealed_gitops", "audit", "--cluster", "--kubeconfig",
         str(kubeconfig), "-n", ns, "--output", "json"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result
