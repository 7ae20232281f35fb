"""Field manager names come from whoever edits a live object: they cannot grow the metrics."""

from __future__ import annotations

from sealed_gitops.operator.metrics import MAX_DRIFT_MANAGERS, Metrics


def test_made_up_field_managers_do_not_make_new_series_without_end() -> None:
    metrics = Metrics()
    for index in range(MAX_DRIFT_MANAGERS + 50):
        metrics.observe_drift("team", f"kubectl-mallory-{index}")
    metrics.observe_drift("team", "kubectl-mallory-0")  # a name already kept stays itself
    [family] = [m for m in metrics.registry.collect() if m.name == "sealed_gitops_drift_corrected"]
    counts = {s.labels["manager"]: s.value for s in family.samples if s.name.endswith("_total")}
    assert len(counts) == MAX_DRIFT_MANAGERS + 1
    assert counts["other"] == 50.0 and counts["kubectl-mallory-0"] == 2.0
