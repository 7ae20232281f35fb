"""Issue 15, Must 9: ``spec.wait`` / ``spec.healthChecks`` / ``spec.timeout``, as Flux has them.

After applying, a Sync with ``wait`` waits for every applied object, one with ``healthChecks`` for
the listed ones, to be healthy by kstatus; it is Ready=True only then, Ready=False reason
Progressing while it waits, and Ready=False reason HealthCheckFailed naming the object and why
once ``spec.timeout`` passes (or at once when an object is Failed). No controller runs the
objects here (the emulator has none; the control plane has no scheduler), so the tests play the
controller: they write the objects' status through the status subresource, on both tiers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from sealed_gitops.cluster import KubeClient
from sealed_gitops.errors import ConfigError
from sealed_gitops.operator.runner import OperatorThread
from sealed_gitops.operator.specs import HealthCheckRef, SyncSpec

from .conftest import Setup, ready, wait_for
from .manifests import config_doc

OperatorFactory = Callable[..., OperatorThread]

# -- the spec ------------------------------------------------------------------------------------


def _parse(spec: dict[str, Any]) -> SyncSpec:
    return SyncSpec.parse(
        {
            "metadata": {"namespace": "team-a", "name": "app"},
            "spec": {"repositoryRef": {"name": "repo"}, **spec},
        }
    )


def test_fields_are_parsed_with_flux_defaults() -> None:
    parsed = _parse({"interval": "2m"})
    assert (parsed.wait, parsed.health_checks, parsed.timeout) == (False, (), 120.0)
    parsed = _parse(
        {
            "wait": True,
            "timeout": "90s",
            "healthChecks": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
        }
    )
    assert parsed.wait and parsed.timeout == 90.0
    assert parsed.health_checks == (HealthCheckRef("apps/v1", "Deployment", "team-a", "web"),)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param({"timeout": "forever"}, "spec.timeout", id="timeout"),
        pytest.param({"timeout": "9" * 10_000}, "spec.timeout", id="timeout-huge"),
        pytest.param(
            {"healthChecks": [{"apiVersion": "../v1", "kind": "Secret", "name": "x"}]},
            "spec.healthChecks[0].apiVersion",
            id="api-version",
        ),
        pytest.param(
            {"healthChecks": [{"apiVersion": "v1", "kind": "Se cret", "name": "x"}]},
            "spec.healthChecks[0].kind",
            id="kind",
        ),
        pytest.param(
            {"healthChecks": [{"apiVersion": "v1", "kind": "Secret", "name": "../x"}]},
            "spec.healthChecks[0].name",
            id="name",
        ),
        pytest.param(
            {
                "healthChecks": [
                    {"apiVersion": "v1", "kind": "Secret", "name": "x", "namespace": ".."}
                ]
            },
            "spec.healthChecks[0].namespace",
            id="namespace",
        ),
        pytest.param(
            {
                "healthChecks": [
                    {"apiVersion": "v1", "kind": "S", "name": f"x{i}"} for i in range(101)
                ]
            },
            "at most 100",
            id="too-many",
        ),
    ],
)
def test_hostile_values_are_refused_naming_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _parse(spec)
    assert field in str(caught.value)
    assert len(str(caught.value)) < 400  # a huge value is not echoed whole


# -- through the operator ------------------------------------------------------------------------

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


@contextlib.contextmanager
def widget_kind(client: KubeClient, group: str) -> Iterator[str]:
    """A custom kind ``Widget`` of ``group`` with a status subresource and no controller; yields
    its apiVersion. Deleted afterwards (CRDs are cluster-wide; the group is the test's own)."""
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                                "status": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                },
                            },
                        }
                    },
                }
            ],
        },
    }
    client.request("POST", CRD_PATH, body=crd, action="create", what="crd")
    try:

        def served() -> bool:
            try:
                client.request("GET", f"/apis/{group}/v1/widgets", action="list", what="widgets")
            except Exception:
                return False
            return True

        wait_for(served, timeout=60, what="Widget served")
        yield f"{group}/v1"
    finally:
        client.request("DELETE", f"{CRD_PATH}/widgets.{group}", action="delete", what="crd")


def _widget(api_version: str, namespace: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace},
        "spec": dict(spec),
    }


def _set_status(setup: Setup, path: str, status: dict[str, Any]) -> None:
    setup.kube.client.request(
        "PATCH",
        f"{path}/status",
        body={"status": status},
        content_type="application/merge-patch+json",
        action="patch",
        what=path,
    )


def _ready_cond(status: str, message: str = "") -> dict[str, Any]:
    return {
        "type": "Ready",
        "status": status,
        "reason": "Test",
        "message": message,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


def _failed_with(setup: Setup, *phrases: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        cond = ready(setup.kube.sync())
        if (
            cond
            and cond["status"] == "False"
            and cond["reason"] == "HealthCheckFailed"
            and all(p in cond["message"] for p in phrases)
        ):
            return cond
        return None

    return check


def _ready_at(setup: Setup, sha: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        sync = setup.kube.sync()
        cond = ready(sync) or {}
        applied = (sync.get("status") or {}).get("lastAppliedRevision")
        if cond.get("status") == "True" and applied == f"main@sha1:{sha}":
            return sync
        return None

    return check


@pytest.mark.e2e
def test_wait_holds_ready_until_every_applied_object_is_healthy(
    setup: Setup, operator_factory: OperatorFactory
) -> None:
    ns = setup.namespace
    with widget_kind(setup.kube.client, f"{ns}.health.test") as api_version:
        # An existing Widget, not healthy, that the Sync adopts (no controller will change it).
        path = f"/apis/{api_version}/namespaces/{ns}/widgets/w"
        setup.kube.client.request(
            "POST",
            f"/apis/{api_version}/namespaces/{ns}/widgets",
            body=_widget(api_version, ns, "w", size=1),
            action="create",
            what="widget",
        )
        _set_status(setup, path, {"conditions": [_ready_cond("False", "warming up")]})
        sha = setup.push(
            {
                "deploy/cm.yaml": config_doc("settings", ns, level="info"),
                "deploy/w.yaml": yaml.safe_dump(_widget(api_version, ns, "w", size=2)),
            }
        )
        setup.objects(extra_spec={"wait": True, "timeout": "2m"})
        operator_factory(ns)

        wait_for(
            lambda: ((setup.kube.get(path) or {}).get("spec") or {}).get("size") == 2,
            timeout=90,
            what="Widget applied",
        )
        # Still within the timeout: Progressing, naming what it waits for (a reconcile waits a
        # few seconds, then hands its thread back and looks again soon).
        group = api_version.partition("/")[0]

        def waiting() -> dict[str, Any] | None:
            cond = ready(setup.kube.sync())
            if (
                cond
                and cond["status"] == "False"
                and cond["reason"] == "Progressing"
                and f"waiting for health checks: Widget.{group} {ns}/w" in cond["message"]
            ):
                return cond
            return None

        cond = wait_for(waiting, timeout=90, what="Progressing while the Widget warms up")
        assert "InProgress: Ready is False: warming up" in cond["message"]
        time.sleep(8)  # longer than one reconcile's patience: still waiting, not failed
        status = setup.kube.status()
        assert "lastAppliedRevision" not in status
        assert (ready(setup.kube.sync()) or {}).get("reason") == "Progressing"
        assert not [e for e in setup.kube.events() if e.get("reason") == "HealthCheckFailed"]

        _set_status(setup, path, {"conditions": [_ready_cond("True", "warm")]})
        wait_for(_ready_at(setup, sha), timeout=90, what="Ready once the Widget is healthy")


@pytest.mark.e2e
def test_health_checks_time_out_naming_the_object_and_why(
    setup: Setup, operator_factory: OperatorFactory
) -> None:
    ns = setup.namespace
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "example.invalid/web:1"}]},
            },
        },
    }
    sha = setup.push({"deploy/web.yaml": yaml.safe_dump(deployment)})
    setup.objects(
        extra_spec={
            "timeout": "3s",
            "healthChecks": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}],
        }
    )
    operator_factory(ns)
    # Nothing runs pods here (no controller on the emulator, no scheduler on the control
    # plane), so the Deployment never becomes available: the check times out.
    cond = wait_for(
        _failed_with(setup, f"Deployment.apps {ns}/web", "timed out after 3s", "InProgress"),
        timeout=90,
        what="HealthCheckFailed",
    )
    assert "replicas" in cond["message"] or "available" in cond["message"]
    status = setup.kube.status()
    assert status.get("lastAttemptedRevision") == f"main@sha1:{sha}"
    assert "lastAppliedRevision" not in status
    # the objects were applied and are tracked, whatever their health
    assert any("web" in e["id"] for e in status["inventory"]["entries"])
    # the Event is recorded after the status: wait for it, never read it once
    events = wait_for(
        lambda: [e for e in setup.kube.events() if e.get("reason") == "HealthCheckFailed"],
        timeout=60,
        what="HealthCheckFailed Event",
    )
    assert events[0]["type"] == "Warning"


@pytest.mark.e2e
def test_health_checks_pass_once_the_listed_object_is_healthy_and_fail_fast_when_failed(
    setup: Setup, operator_factory: OperatorFactory
) -> None:
    ns = setup.namespace
    with widget_kind(setup.kube.client, f"{ns}.checks.test") as api_version:
        # Not the Sync's own object: a health check may watch what another controller makes.
        path = f"/apis/{api_version}/namespaces/{ns}/widgets/db"
        setup.kube.client.request(
            "POST",
            f"/apis/{api_version}/namespaces/{ns}/widgets",
            body=_widget(api_version, ns, "db"),
            action="create",
            what="widget",
        )
        _set_status(setup, path, {"conditions": [_ready_cond("False", "starting")]})
        sha = setup.push({"deploy/cm.yaml": config_doc("settings", ns, level="info")})
        setup.objects(
            extra_spec={
                "timeout": "1h",  # a Failed object must not wait for this
                "healthChecks": [{"apiVersion": api_version, "kind": "Widget", "name": "db"}],
            }
        )
        operator_factory(ns)
        wait_for(
            lambda: setup.kube.get(f"/api/v1/namespaces/{ns}/configmaps/settings"),
            timeout=90,
            what="ConfigMap applied",
        )
        _set_status(setup, path, {"conditions": [_ready_cond("True", "up")]})
        wait_for(_ready_at(setup, sha), timeout=90, what="Ready once db is healthy")

        stalled = {
            "type": "Stalled",
            "status": "True",
            "reason": "DiskFull",
            "message": "volume full",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
        _set_status(setup, path, {"conditions": [_ready_cond("False", "down"), stalled]})
        started = time.monotonic()
        wait_for(
            _failed_with(
                setup,
                "health check failed",
                f"Widget.{api_version.partition('/')[0]} {ns}/db",
                "Failed",
                "volume full",
            ),
            timeout=90,
            what="HealthCheckFailed at once",
        )
        assert time.monotonic() - started < 90


@pytest.mark.e2e
def test_a_health_check_reads_only_where_the_sync_may_write(
    setup: Setup, operator_factory: OperatorFactory
) -> None:
    ns = setup.namespace
    setup.push({"deploy/cm.yaml": config_doc("settings", ns, level="info")})
    setup.objects(
        extra_spec={
            "healthChecks": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "coredns",
                    "namespace": "kube-system",
                }
            ],
        }
    )
    operator_factory(ns)
    cond = wait_for(
        _failed_with(setup, "Deployment.apps kube-system/coredns", "without serviceAccountName"),
        timeout=90,
    )
    assert "InProgress" not in cond["message"]  # nothing about the object was read
