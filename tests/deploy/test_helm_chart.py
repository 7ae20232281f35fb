"""deploy/chart renders what ``kubectl kustomize deploy/`` builds, and its values do what they say.

The comparison is object by object (keyed by kind, namespace and name) on the parsed documents of
``helm template --include-crds`` with the default values against the kustomize build. It ignores
exactly Helm's four standard labels in ``metadata.labels`` (:data:`HELM_LABELS`: helm.sh/chart,
app.kubernetes.io/managed-by, app.kubernetes.io/instance, app.kubernetes.io/version), which only a
Helm release can carry; every other field, label and annotation must be equal.

The chart's CRDs (deploy/chart/crds, which Helm installs verbatim and never templates) are copies of
crds/ with the two labels deploy/kustomization.yaml adds; a test fails when they drift, and
``.venv/bin/python -m tests.deploy.test_helm_chart`` copies them again.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, NAMESPACE, find
from tests.deploy.helm_tool import CHART, Helm, helm_fixture

ROOT = DEPLOY.parent
HELM_LABELS = frozenset(
    {
        "helm.sh/chart",
        "app.kubernetes.io/managed-by",
        "app.kubernetes.io/instance",
        "app.kubernetes.io/version",
    }
)
_KUSTOMIZE_LABELS = (
    "  labels:\n"
    "    app.kubernetes.io/name: sealed-gitops\n"
    "    app.kubernetes.io/part-of: sealed-gitops\n"
)
_CRD_HEADER = (
    "# Copied from crds/{name} with the labels deploy/kustomization.yaml adds; never edit here:\n"
    "# tests/deploy/test_helm_chart.py fails when they differ (it prints the command that copies"
    " them).\n"
)
DIGEST = "sha256:" + "ab" * 32
Docs = list[dict[str, Any]]


def chart_crd_text(source: Path) -> str:
    """What deploy/chart/crds/<name> must hold: crds/<name> with kustomize's two labels."""
    text, count = re.subn(
        r"(?m)^(metadata:\n  name: [^\n]+\n)",
        lambda match: match.group(1) + _KUSTOMIZE_LABELS,
        source.read_text(encoding="utf-8"),
        count=1,
    )
    assert count == 1, f"{source} has no `metadata:` with `name:` first"
    return _CRD_HEADER.format(name=source.name) + text


def _crd_sources() -> list[Path]:
    return sorted(p for p in (ROOT / "crds").glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    return helm_fixture(tmp_path_factory.mktemp("helm-home"))


def render(helm: Helm, *values: str, check: bool = True) -> Docs:
    """``helm template sealed-gitops deploy/chart --include-crds`` with ``--set``-style values."""
    args = ["template", "sealed-gitops", str(CHART), "--include-crds"]
    for value in values:
        args += ["--set-json" if value.split("=", 1)[1][:1] in "[{" else "--set", value]
    done = helm(*args, check=check)
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _key(doc: dict[str, Any]) -> tuple[str, str, str]:
    meta = doc["metadata"]
    return doc["kind"], meta.get("namespace", ""), meta["name"]


def _without_helm_labels(doc: dict[str, Any]) -> dict[str, Any]:
    labels = doc["metadata"].get("labels")
    if labels is not None:
        doc["metadata"]["labels"] = {k: v for k, v in labels.items() if k not in HELM_LABELS}
    return doc


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def _flag_values(args: list[str], flag: str) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == flag]


# -- the CRDs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", _crd_sources(), ids=lambda p: p.name)
def test_chart_crds_are_copies_of_crds(source: Path) -> None:
    chart_copy = CHART / "crds" / source.name
    assert chart_copy.is_file(), f"{chart_copy} is missing; run: {_SYNC_COMMAND}"
    assert chart_copy.read_text(encoding="utf-8") == chart_crd_text(source), (
        f"{chart_copy} differs from {source}; run: {_SYNC_COMMAND}"
    )


def test_chart_has_no_other_crds() -> None:
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == [p.name for p in _crd_sources()]


# -- default values: the kustomize build ----------------------------------------------------------


def test_default_values_render_the_kustomize_build(helm: Helm, built: Docs) -> None:
    chart = {_key(doc): _without_helm_labels(doc) for doc in render(helm)}
    kustomize = {_key(doc): doc for doc in built}
    assert sorted(chart) == sorted(kustomize)
    for key, doc in kustomize.items():
        assert chart[key] == doc, f"{key} differs"


def test_every_templated_object_carries_helms_labels(helm: Helm) -> None:
    for doc in render(helm):
        if doc["kind"] == "CustomResourceDefinition":
            continue  # crds/ is installed verbatim: Helm never templates it
        assert set(doc["metadata"]["labels"]) >= HELM_LABELS, _key(doc)


def test_one_shard_renders_the_shard1_overlay(helm: Helm, kubectl: Path) -> None:
    done = subprocess.run(
        [str(kubectl), "kustomize", str(DEPLOY / "shards" / "shard1")],
        capture_output=True,
        text=True,
        check=True,
    )
    (overlay,) = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    docs = render(helm, 'shards=[{"name": "shard1"}]')
    assert (
        _without_helm_labels(find(docs, "Deployment", "sealed-gitops-operator-shard1")) == overlay
    )


def test_lint_strict(helm: Helm) -> None:
    done = helm("lint", "--strict", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout, done.stdout


# -- other values ---------------------------------------------------------------------------------

VALUES = (
    'shards=[{"name": "shard1"}, {"name": "shard2", "replicas": 3}]',
    'vaultAddresses=["https://vault.example:8200", "https://vault2.example:8200"]',
    'remoteClusterAddresses=["https://edge.example:6443"]',
    # Helm merges maps with the defaults; null drops a default (the CPU limit here)
    'resources={"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": null, '
    '"memory": "1Gi"}}',
    "image.repository=registry.example/sealed-gitops",
    f"image.digest={DIGEST}",
    "image.pullPolicy=Always",
    "replicas=3",
    "leaderElection.leaseDuration=30s",
    "defaultServiceAccount=gitops-deployer",
    "metrics.port=9090",
    "metrics.serviceMonitor.enabled=true",
    "webhook.port=9443",
    'extraArgs=["--log-level", "debug"]',
)


@pytest.fixture(scope="module")
def custom(helm: Helm) -> Docs:
    return render(helm, *VALUES)


def test_each_shard_is_one_more_deployment(custom: Docs) -> None:
    deployments = {d["metadata"]["name"]: d for d in custom if d["kind"] == "Deployment"}
    assert sorted(deployments) == [
        "sealed-gitops-operator",
        "sealed-gitops-operator-shard1",
        "sealed-gitops-operator-shard2",
    ]
    assert deployments["sealed-gitops-operator"]["spec"]["replicas"] == 3
    assert deployments["sealed-gitops-operator-shard1"]["spec"]["replicas"] == 3
    assert deployments["sealed-gitops-operator-shard2"]["spec"]["replicas"] == 3
    components = set()
    for name, deployment in deployments.items():
        shard = name.removeprefix("sealed-gitops-operator").removeprefix("-")
        selector = deployment["spec"]["selector"]["matchLabels"]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
        components.add(selector["app.kubernetes.io/component"])
        args = _container(deployment)["args"]
        assert _flag_values(args, "--shard") == ([shard] if shard else [])
        assert pod_labels.get("sealed-gitops.io/shard") == (shard or None)
    assert components == {"operator", "operator-shard1", "operator-shard2"}  # none shares pods
    service = find(custom, "Service", "sealed-gitops-operator")
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "operator"


def test_shard_replicas_of_their_own(helm: Helm) -> None:
    docs = render(helm, 'shards=[{"name": "a"}, {"name": "b", "replicas": 3}]')
    assert find(docs, "Deployment", "sealed-gitops-operator-a")["spec"]["replicas"] == 2
    assert find(docs, "Deployment", "sealed-gitops-operator-b")["spec"]["replicas"] == 3


@pytest.mark.parametrize(
    "name",
    ["sealed-gitops-operator", "sealed-gitops-operator-shard1", "sealed-gitops-operator-shard2"],
)
def test_values_reach_every_operator(custom: Docs, name: str) -> None:
    deployment = find(custom, "Deployment", name)
    container = _container(deployment)
    args = container["args"]
    assert _flag_values(args, "--vault-address") == [
        "https://vault.example:8200",
        "https://vault2.example:8200",
    ]
    assert _flag_values(args, "--remote-cluster-address") == ["https://edge.example:6443"]
    assert _flag_values(args, "--default-service-account") == ["gitops-deployer"]
    assert _flag_values(args, "--lease-duration") == ["30s"]
    assert _flag_values(args, "--metrics-port") == ["9090"]
    assert _flag_values(args, "--webhook-port") == ["9443"]
    assert args[-2:] == ["--log-level", "debug"]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"memory": "1Gi"},
    }
    assert container["image"] == f"registry.example/sealed-gitops@{DIGEST}"
    assert container["imagePullPolicy"] == "Always"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 9090, "webhook": 9443}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9090"


def test_service_and_service_monitor_follow_the_ports(custom: Docs) -> None:
    service = find(custom, "Service", "sealed-gitops-operator")
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert ports == {"metrics": (9090, "metrics"), "webhook": (9443, "webhook")}
    monitor = find(custom, "ServiceMonitor", "sealed-gitops-operator")
    assert monitor["metadata"]["namespace"] == NAMESPACE
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()


def test_lint_strict_with_other_values(helm: Helm) -> None:
    args = ["lint", "--strict", str(CHART)]
    for value in VALUES:
        args += ["--set-json" if value.split("=", 1)[1][:1] in "[{" else "--set", value]
    helm(*args)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("webhook.enabled=false",), {"--webhook-port": ["off"]}),
        (("leaderElection.enabled=false", "replicas=1"), {"--no-leader-election": []}),
        (("defaultServiceAccount=",), {"--default-service-account": None}),
        (("image.tag=9.9.9",), {}),
        (("namespace.create=false", "namespace.name=ops"), {}),
    ],
)
def test_switches(helm: Helm, values: tuple[str, ...], expected: dict[str, Any]) -> None:
    docs = render(helm, *values)
    container = _container(find(docs, "Deployment", "sealed-gitops-operator"))
    args = container["args"]
    for flag, wanted in expected.items():
        if wanted is None:
            assert flag not in args
        elif wanted:
            assert _flag_values(args, flag) == wanted
        else:
            assert flag in args
    if "webhook.enabled=false" in values:
        assert [p["name"] for p in container["ports"]] == ["metrics"]
        service = find(docs, "Service", "sealed-gitops-operator")
        assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]
    if "image.tag=9.9.9" in values:
        assert container["image"] == "sealed-gitops:9.9.9"
    if "namespace.create=false" in values:
        assert not [d for d in docs if d["kind"] == "Namespace"]
        for doc in docs:
            if doc["kind"] not in {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}:
                assert doc["metadata"]["namespace"] == "ops", _key(doc)
        binding = find(docs, "ClusterRoleBinding", "sealed-gitops-operator")
        assert binding["subjects"][0]["namespace"] == "ops"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (('shards=[{"name": "Shard_1"}]',), "is not a DNS-1123 label"),
        (('shards=[{"name": "a"}, {"name": "a"}]',), 'shard "a" is listed twice'),
        (("shards=[{}]",), "every entry of shards needs a name"),
        (("leaderElection.enabled=false",), "without leader election"),
        (("image.digest=latest",), "image.digest must be sha256:"),
        (("metrics.serviceMonitor.enabled=true", "service.enabled=false"), "needs service.enabled"),
    ],
)
def test_refused_values(helm: Helm, values: tuple[str, ...], message: str) -> None:
    args = ["template", "sealed-gitops", str(CHART)]
    for value in values:
        args += ["--set-json" if value.split("=", 1)[1][:1] in "[{" else "--set", value]
    done = helm(*args, check=False)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr


# -- the flags the chart passes exist -------------------------------------------------------------


@pytest.fixture(scope="module")
def operator_help() -> str:
    done = subprocess.run(
        [sys.executable, "-m", "sealed_gitops", "operator", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def test_every_flag_the_chart_passes_is_an_operator_option(
    custom: Docs, operator_help: str
) -> None:
    flags = set()
    for doc in custom:
        if doc["kind"] == "Deployment":
            flags |= {a for a in _container(doc)["args"] if a.startswith("--")}
    flags.add("--no-leader-election")  # leaderElection.enabled=false (test_switches)
    flags -= {"--log-level"}  # extraArgs, not the chart's own
    missing = {flag for flag in flags if not re.search(rf"(^|[\s/]){flag}\b", operator_help)}
    assert not missing, f"flags the chart passes that `operator --help` does not list: {missing}"


def test_ui_port(helm: Helm, operator_help: str) -> None:
    assert "--ui-port" in operator_help
    docs = render(helm, "ui.enabled=true", "ui.port=8088")
    container = _container(find(docs, "Deployment", "sealed-gitops-operator"))
    assert _flag_values(container["args"], "--ui-port") == ["8088"]
    # named, for `kubectl port-forward deploy/sealed-gitops-operator 8088:ui`
    assert {"name": "ui", "containerPort": 8088, "protocol": "TCP"} in container["ports"]
    # the operator serves the view on the pod's 127.0.0.1 only: no Service port would reach it
    service = find(docs, "Service", "sealed-gitops-operator")
    assert [p["name"] for p in service["spec"]["ports"]] == ["metrics", "webhook"]


_SYNC_COMMAND = ".venv/bin/python -m tests.deploy.test_helm_chart"


def _sync_crds() -> None:
    for source in _crd_sources():
        (CHART / "crds" / source.name).write_text(chart_crd_text(source), encoding="utf-8")
        print(f"copied {source} to {CHART / 'crds' / source.name}")


if __name__ == "__main__":  # pragma: no cover - the command the CRD test names
    _sync_crds()
