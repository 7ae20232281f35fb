"""postBuild substitution through the operator (issue 15 Must 9): inline variables, variables from
ConfigMaps and Secrets, defaults, the escape, the disabled annotation; a value from a Secret is
refused outside a Secret without ever being shown; a variable cannot move an object into a
namespace the Sync may not write (tenancy runs after substitution)."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealed_gitops.errors import ClusterError

from .conftest import Kube, Setup, decoded, is_ready, ready, wait_failed, wait_for
from .manifests import secret_doc

pytestmark = pytest.mark.e2e

WAIT = 120.0


def _doc(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, sort_keys=False)


def _cm(name: str, namespace: str, data: dict[str, str], **meta: Any) -> str:
    return _doc(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, **meta},
            "data": data,
        }
    )


def _configmap(kube: Kube, name: str, data: dict[str, str]) -> None:
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": kube.namespace},
            "data": data,
        }
    )


def _data(kube: Kube, name: str) -> dict[str, str] | None:
    found = kube.get(f"/api/v1/namespaces/{kube.namespace}/configmaps/{name}")
    return None if found is None else dict(found.get("data") or {})


def test_variables_from_everywhere_reach_the_objects(setup: Setup, operator_factory: Any) -> None:
    ns = setup.namespace
    _configmap(setup.kube, "cluster-vars", {"REGION": "eu-1", "ENV": "staging", "EMPTY": ""})
    setup.secret_object("secret-vars", {"DB_PASS": "s3cret-from-the-cluster"})
    setup.push(
        {
            "deploy/app.yaml": _cm(
                "app-${ENV}",
                ns,
                {
                    "region": "${REGION}",
                    "env": "${ENV}",  # substitute overrides the ConfigMap's value
                    "tier": "${TIER:=web}",
                    "fallback": "${EMPTY:-dflt}",
                    "literal": "$${REGION} stays",
                    "shell": "echo $HOME",
                },
            ),
            "deploy/script.yaml": _cm(
                "script",
                ns,
                {"run": "echo ${REGION}"},
                annotations={"kustomize.toolkit.fluxcd.io/substitute": "disabled"},
            ),
            "deploy/db.yaml": setup.encrypt(
                secret_doc("db", ns, url="postgres://app:${DB_PASS}@db-${ENV}:5432")
            ),
        }
    )
    setup.objects(
        extra_spec={
            "postBuild": {
                "substitute": {"ENV": "prod"},
                "substituteFrom": [
                    {"kind": "ConfigMap", "name": "cluster-vars"},
                    {"kind": "Secret", "name": "secret-vars"},
                    {"kind": "ConfigMap", "name": "not-there", "optional": True},
                ],
            }
        }
    )
    operator_factory(ns)

    wait_for(lambda: is_ready(setup.kube.sync()), timeout=WAIT, what="Ready=True")
    assert _data(setup.kube, "app-prod") == {
        "region": "eu-1",
        "env": "prod",
        "tier": "web",
        "fallback": "dflt",
        "literal": "${REGION} stays",
        "shell": "echo $HOME",
    }
    assert _data(setup.kube, "script") == {"run": "echo ${REGION}"}
    assert decoded(setup.kube.secret("db") or {}) == {
        "url": "postgres://app:s3cret-from-the-cluster@db-prod:5432"
    }


def test_a_required_source_that_is_missing_fails(setup: Setup, operator_factory: Any) -> None:
    setup.push({"deploy/app.yaml": _cm("app", setup.namespace, {"a": "${A}"})})
    setup.objects(
        extra_spec={"postBuild": {"substituteFrom": [{"kind": "ConfigMap", "name": "absent"}]}}
    )
    operator_factory(setup.namespace)
    cond = wait_failed(setup.kube, timeout=WAIT)
    assert "ConfigMap" in cond["message"] and "absent" in cond["message"], cond
    assert _data(setup.kube, "app") is None


def test_a_secret_value_never_reaches_a_configmap(
    setup: Setup, operator_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("sealed_gitops", "kopf", ""):
        caplog.set_level(logging.DEBUG, logger=name)
    canary = f"canary-{uuid.uuid4().hex}"
    ns = setup.namespace
    setup.secret_object("secret-vars", {"DB_PASS": canary})
    setup.push(
        {
            "deploy/leak.yaml": _cm("leak", ns, {"url": "postgres://app:${DB_PASS}@db"}),
            "deploy/ok.yaml": _cm("ok", ns, {"a": "b"}),
        }
    )
    setup.objects(
        extra_spec={"postBuild": {"substituteFrom": [{"kind": "Secret", "name": "secret-vars"}]}}
    )
    thread = operator_factory(ns)
    cond = wait_failed(setup.kube, timeout=WAIT)
    message = cond["message"]
    assert "DB_PASS" in message and "deploy/leak.yaml" in message, cond
    assert "ConfigMap" in message and "Secret" in message, cond
    # atomic: nothing of the revision is applied
    assert _data(setup.kube, "leak") is None and _data(setup.kube, "ok") is None
    operator_lines = "\n".join(
        logging.Formatter("%(name)s %(message)s").format(r)
        for r in caplog.records
        if not r.name.startswith("sealed_gitops.testing")
    )
    assert caplog.records, "no log output was captured"
    texts = {
        "logs": operator_lines,
        "events": str(setup.kube.events()),
        "status": str(setup.kube.sync()),
        "error": repr(thread.error),
    }
    assert [where for where, text in texts.items() if canary in text] == []


@contextlib.contextmanager
def _other_namespace(kube: Kube) -> Iterator[str]:
    name = f"sg-other-{uuid.uuid4().hex[:8]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            kube.delete(f"/api/v1/namespaces/{name}")


def test_a_variable_cannot_move_an_object_into_another_namespace(
    setup: Setup, operator_factory: Any
) -> None:
    ns = setup.namespace
    with _other_namespace(setup.kube) as other:
        # The file names the Sync's own namespace through a variable a committer controls.
        setup.push({"deploy/app.yaml": _cm("app", "${TARGET_NS}", {"a": "b"})})
        setup.objects(extra_spec={"postBuild": {"substitute": {"TARGET_NS": other}}})
        operator_factory(ns)
        cond = wait_failed(setup.kube, timeout=WAIT)
        assert cond["reason"] == "AccessDenied", cond
        assert other in cond["message"], cond
        assert setup.kube.configmaps(other) == []


def test_sources_are_read_as_the_sync(
    rbac_setup: Setup, operator_factory: Any, rbac_kubeconfig: Path
) -> None:
    """With serviceAccountName the variables are read with that account's rights: one that may
    manage ConfigMaps but not read Secrets gets a 403 for the Secret, named in the status."""
    setup = rbac_setup
    ns = setup.namespace
    kube = setup.kube
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "cm-only", "namespace": ns},
        }
    )
    kube.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "cm-only", "namespace": ns},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                }
            ],
        }
    )
    kube.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "cm-only", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-only"},
            "subjects": [{"kind": "ServiceAccount", "name": "cm-only", "namespace": ns}],
        }
    )
    _configmap(kube, "cluster-vars", {"REGION": "eu-1"})
    setup.secret_object("secret-vars", {"DB_PASS": "not-for-this-account"})
    setup.push({"deploy/app.yaml": _cm("app", ns, {"region": "${REGION}"})})
    spec: dict[str, Any] = {
        "serviceAccountName": "cm-only",
        "postBuild": {"substituteFrom": [{"kind": "ConfigMap", "name": "cluster-vars"}]},
    }
    setup.objects(extra_spec=spec)
    operator_factory(ns, kubeconfig=str(rbac_kubeconfig))
    wait_for(lambda: _data(kube, "app") == {"region": "eu-1"}, timeout=WAIT, what="applied")

    spec["postBuild"]["substituteFrom"].append({"kind": "Secret", "name": "secret-vars"})
    kube.patch(kube.sync_path(), {"spec": {"postBuild": spec["postBuild"]}})

    def refused() -> dict[str, Any] | None:
        cond = ready(kube.sync()) or {}
        return cond if cond.get("status") == "False" and "secret-vars" in cond["message"] else None

    cond = wait_for(refused, timeout=WAIT, what="the Secret read refused")
    assert "403" in cond["message"] or "forbidden" in cond["message"].lower(), cond


@pytest.mark.parametrize(
    "post_build",
    [
        {"substitute": {f"V{i}": "x" for i in range(257)}},
        {"substitute": {"A": "x" * 16385}},
        {"substituteFrom": [{"kind": "Pod", "name": "a"}]},
        {"substituteFrom": [{"kind": "Secret", "name": "../x"}]},
        {"substituteFrom": [{"kind": "Secret", "name": "a"}] * 33},
    ],
)
def test_the_api_server_refuses_out_of_bounds_specs(
    setup: Setup, post_build: dict[str, Any]
) -> None:
    """The CRD schema says the same bounds as SyncSpec (crds/sync.yaml)."""
    with pytest.raises(ClusterError):
        setup.kube.create(
            {
                "apiVersion": "sealed-gitops.io/v1alpha1",
                "kind": "Sync",
                "metadata": {"name": "bounded", "namespace": setup.namespace},
                "spec": {"repositoryRef": {"name": "app"}, "postBuild": post_build},
            }
        )
