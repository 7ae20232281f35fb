"""Prometheus metrics of one operator process.

Why a registry per operator (not the library's global one): tests, the demo and benchmarks run
several operators in one process, and each must count only its own work. Labels carry kinds,
names of objects and results, never a value: metric labels are one of the places invariant 1
names.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from sealed_gitops.operator.state_metrics import StateMetrics

__all__ = ["Metrics"]

_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
#: Distinct ``manager`` label values kept: anyone who may edit a managed object names the field
#: manager (``--field-manager``), so each new name would otherwise be a new series, for good.
MAX_DRIFT_MANAGERS = 64


class Metrics:
    """The counters and histograms the operator updates, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconcile_duration = Histogram(
            "sealed_gitops_reconcile_duration_seconds",
            "Time one reconcile took, by kind and result.",
            ["kind", "result"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.reconciles = Counter(
            "sealed_gitops_reconcile",
            "Reconciles by kind and result (success, failure).",
            ["kind", "result"],
            registry=self.registry,
        )
        self.decryptions = Counter(
            "sealed_gitops_decryption_operations",
            "Data-key unwraps that reached a key provider, by provider kind and result.",
            ["provider", "result"],
            registry=self.registry,
        )
        self.applied = Counter(
            "sealed_gitops_objects_applied",
            "Objects written by server-side apply, by Sync namespace.",
            ["namespace"],
            registry=self.registry,
        )
        self.pruned = Counter(
            "sealed_gitops_objects_pruned",
            "Objects deleted because they left Git, by Sync namespace.",
            ["namespace"],
            registry=self.registry,
        )
        self.drift_corrected = Counter(
            "sealed_gitops_drift_corrected",
            "Objects restored after a live change Git did not make, by Sync namespace and the "
            "field manager that made it ('unknown' when the API does not say).",
            ["namespace", "manager"],
            registry=self.registry,
        )
        self._drift_managers: set[str] = set()
        #: per-object state the alerts read (Ready, key ages, webhook refusals)
        self.state = StateMetrics(self.registry)
        self.sops_files_decrypted = Counter(
            "sealed_gitops_sops_files_decrypted",
            "SOPS files opened (MAC checked, every value decrypted) by Sync builds; a file whose "
            "bytes did not change since the Sync's last build is not opened again, so a no-op "
            "reconcile adds 0 (data-key unwraps alone would miss decryptions with a cached key).",
            registry=self.registry,
        )
        self.fetches = Counter(
            "sealed_gitops_git_fetches",
            "Repository checks by result (unchanged, fetched, failure).",
            ["result"],
            registry=self.registry,
        )

    def observe_reconcile(self, kind: str, result: str, *, started: float) -> None:
        """Count one finished reconcile and its duration since ``started`` (time.monotonic)."""
        self.reconciles.labels(kind=kind, result=result).inc()
        self.reconcile_duration.labels(kind=kind, result=result).observe(time.monotonic() - started)

    def observe_decryption(self, provider: str, result: str) -> None:
        """The KeyRing observer: called once per real unwrap (cache hits are not counted)."""
        self.decryptions.labels(provider=provider, result=result).inc()

    def observe_drift(self, namespace: str, manager: str) -> None:
        """Count one drift correction; past MAX_DRIFT_MANAGERS names, new ones count as "other"."""
        if manager not in self._drift_managers:
            if len(self._drift_managers) >= MAX_DRIFT_MANAGERS:
                manager = "other"
            else:
                self._drift_managers.add(manager)
        self.drift_corrected.labels(namespace=namespace, manager=manager).inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
