"""What an operator tells about its work (issue 6 item 4): Events on the Sync naming the objects
and, for Secrets, the keys that changed (never values), a Warning for a failure, and Prometheus
metrics served over HTTP: reconciles by kind and result with their durations, decryptions by
provider and result, objects applied and pruned."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import Setup, decoded, wait_failed, wait_for
from .manifests import config_doc, secret_doc

pytestmark = pytest.mark.e2e


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(metrics: dict[Any, float], name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def _events(setup: Setup) -> list[tuple[str, str, str]]:
    return [
        (e.get("type", ""), e.get("reason", ""), e.get("message", ""))
        for e in setup.kube.events()
        if (e.get("involvedObject") or {}).get("kind") == "Sync"
    ]


def test_events_and_metrics_tell_what_changed_and_never_a_value(
    setup: Setup, operator_factory: Any
) -> None:
    ns = setup.namespace
    setup.push(
        {
            "deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="events-value-one")),
            "deploy/cm.yaml": config_doc("settings", ns, level="info"),
        }
    )
    setup.objects()
    thread = operator_factory(ns)
    wait_for(lambda: setup.kube.secret("db"), what="first apply")

    setup.push(
        {"deploy/db.yaml": setup.encrypt(
            secret_doc("db", ns, password="events-value-two", user="app"))}
    )
    wait_for(
        lambda: decoded(setup.kube.secret("db") or {}).get("user") == "app", what="update"
    )
    setup.remove("deploy/cm.yaml")
    wait_for(
        lambda: setup.kube.get(f"/api/v1/namespaces/{ns}/configmaps/settings") is None,
        what="prune",
    )
    setup.push({"deploy/cm.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: plain}\n"
                "stringData: {token: events-plain-value}\n"})
    wait_failed(setup.kube)

    events = wait_for(
        lambda: (ev := _events(setup)) and any(t == "Warning" for t, _, _ in ev) and ev,
        what="a Warning event",
    )
    messages = "\n".join(m for _, _, m in events)
    assert ("Normal", "Applied") in {(t, r) for t, r, _ in events}
    assert f"create Secret {ns}/db (added: password)" in messages
    assert f"create ConfigMap {ns}/settings" in messages
    assert f"update Secret {ns}/db (added: user; changed: password)" in messages, messages
    assert any(r == "Pruned" and f"ConfigMap {ns}/settings" in m for _, r, m in events)
    assert any(t == "Warning" and r == "DecryptionFailed" for t, r, _ in events)
    for value in ("events-value-one", "events-value-two", "events-plain-value"):
        assert value not in messages

    metrics = _scrape(thread.ports.metrics)
    assert _value(metrics, "sealed_gitops_objects_applied_total", namespace=ns) == 3
    assert _value(metrics, "sealed_gitops_objects_pruned_total", namespace=ns) == 1
    assert _value(metrics, "sealed_gitops_reconcile_total", kind="Sync", result="success") >= 3
    assert _value(metrics, "sealed_gitops_reconcile_total", kind="Sync", result="failure") >= 1
    assert _value(
        metrics, "sealed_gitops_reconcile_total", kind="Repository", result="success"
    ) >= 4
    assert _value(
        metrics, "sealed_gitops_reconcile_duration_seconds_count", kind="Sync", result="success"
    ) == _value(metrics, "sealed_gitops_reconcile_total", kind="Sync", result="success")
    assert _value(
        metrics, "sealed_gitops_decryption_operations_total", provider="age", result="ok"
    ) >= 2
    assert not any("events-value" in str(key) for key in metrics)
