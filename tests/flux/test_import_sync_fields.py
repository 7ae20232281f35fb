"""``import flux`` carries the Kustomization fields a Sync has had since issue 15.

``dependsOn``, ``healthChecks``, ``wait``, ``timeout``, ``postBuild``, ``kubeConfig`` and
``deletionPolicy`` are Sync fields with Flux's shapes and meanings; an import that reported them
as "cannot carry over" made a migrating user re-type them by hand (or lose them). What still has
no counterpart (a health check without ``apiVersion``, ``healthCheckExprs``, a kubeConfig read
from a ConfigMap) is still named, per field, and the value is never printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sealed_gitops.cli.flux_import import convert
from sealed_gitops.cli.main import cli
from sealed_gitops.errors import InputError
from sealed_gitops.plan.names import InvalidName

from .test_import import kustomization, write_docs

CARRIED: dict[str, Any] = {
    "dependsOn": [{"name": "infra"}, {"name": "crds", "namespace": "platform"}],
    "healthChecks": [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "apps"},
        {"apiVersion": "v1", "kind": "Service", "name": "web"},
    ],
    "wait": True,
    "timeout": "5m",
    "postBuild": {
        "substitute": {"cluster_env": "prod-canary-value", "replicas": "3"},
        "substituteFrom": [
            {"kind": "ConfigMap", "name": "cluster-vars"},
            {"kind": "Secret", "name": "cluster-secrets", "optional": True},
        ],
    },
    "kubeConfig": {"secretRef": {"name": "remote", "key": "value.yaml"}},
    "deletionPolicy": "Orphan",
}


def _sync(**spec: Any) -> tuple[dict[str, Any], list[str]]:
    conversion = convert([("f.yaml, document 0", kustomization(**spec))])
    (sync,) = conversion.items
    return sync, [n.field for n in conversion.not_carried]


def test_every_sync_field_of_issue_15_carries_over_unchanged() -> None:
    sync, notes = _sync(**CARRIED)
    assert notes == []
    for key, value in CARRIED.items():
        assert sync["spec"][key] == value, key


def test_wait_false_is_written_and_an_empty_list_asks_for_nothing() -> None:
    sync, notes = _sync(wait=False, dependsOn=[], healthChecks=[])
    assert notes == []
    assert "dependsOn" not in sync["spec"] and "healthChecks" not in sync["spec"]
    assert sync["spec"].get("wait", False) is False


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        # Flux looks a referent up by kind alone; a Sync's health check needs the apiVersion.
        ({"healthChecks": [{"kind": "Deployment", "name": "web"}]}, "spec.healthChecks[0]"),
        (
            {"healthCheckExprs": [{"apiVersion": "v1", "kind": "X", "current": "true"}]},
            "spec.healthCheckExprs",
        ),
        ({"kubeConfig": {"configMapRef": {"name": "workload-identity"}}}, "spec.kubeConfig"),
        ({"dependsOn": [{"name": "infra", "readyExpr": "true"}]}, "spec.dependsOn[0].readyExpr"),
    ],
)
def test_what_still_has_no_counterpart_is_named(spec: dict[str, Any], field: str) -> None:
    _, notes = _sync(**spec)
    assert notes == [field]


@pytest.mark.parametrize(
    "spec",
    [
        {"dependsOn": "infra"},
        {"dependsOn": [{"name": "Not_A_Name"}]},
        {"healthChecks": [{"apiVersion": "apps/v1", "kind": "Deployment"}]},
        {"timeout": "five minutes"},
        {"deletionPolicy": "Shred"},
        {"postBuild": {"substitute": {"bad-name": "x"}}},
        {"postBuild": {"substitute": {"n": 3}}},
        {"postBuild": {"substituteFrom": [{"kind": "Pod", "name": "x"}]}},
        {"kubeConfig": {"secretRef": {"name": "remote", "key": "../etc"}}},
        {"wait": "yes"},
    ],
)
def test_a_malformed_field_is_refused_naming_the_object_and_the_field(spec: dict[str, Any]) -> None:
    (key,) = spec
    with pytest.raises((InputError, InvalidName)) as caught:
        convert([("f.yaml, document 0", kustomization(**spec))])
    message = str(caught.value)
    assert "f.yaml, document 0" in message and f"spec.{key}" in message


def test_the_cli_writes_them_without_a_warning(tmp_path: Path) -> None:
    flux = write_docs(tmp_path / "flux.yaml", kustomization(**CARRIED))
    result = CliRunner().invoke(cli, ["import", "flux", "-f", str(flux)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    (sync,) = yaml.safe_load_all(result.stdout)
    assert sync["spec"]["postBuild"] == CARRIED["postBuild"]
