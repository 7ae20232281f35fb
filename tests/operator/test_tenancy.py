"""Multi-tenancy (issue 6 item 6, invariant 4): a Sync writes only where it is allowed to, as
the identity it is given, and reads its decryption keys only from its own namespace."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Kube, Setup, condition, decoded, is_ready, ready, wait_failed, wait_for
from .manifests import config_doc, secret_doc

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def _other_namespace(kube: Kube) -> Iterator[str]:
    name = f"sg-other-{uuid.uuid4().hex[:8]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            kube.delete(f"/api/v1/namespaces/{name}")


def _deployer(kube: Kube, ns: str) -> None:
    """ServiceAccount ``deployer`` allowed to manage ConfigMaps and Secrets in ``ns`` only."""
    kube.create({"apiVersion": "v1", "kind": "ServiceAccount",
                 "metadata": {"name": "deployer", "namespace": ns}})
    kube.create({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "deployer", "namespace": ns},
        "rules": [{"apiGroups": [""], "resources": ["configmaps", "secrets"],
                   "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}],
    })
    kube.create({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "deployer", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": ns}],
    })


def test_service_account_acts_under_its_own_rbac(
    rbac_setup: Setup, operator_factory: Any, rbac_kubeconfig: Path
) -> None:
    setup = rbac_setup
    ns = setup.namespace
    with _other_namespace(setup.kube) as other:
        _deployer(setup.kube, ns)
        setup.push({
            "deploy/own.yaml": config_doc("own", ns, level="info"),
            "deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="tenant-own-pass")),
            "deploy/foreign.yaml": config_doc("foreign", other, level="info"),
        })
        setup.objects(policy="Isolate", extra_spec={"serviceAccountName": "deployer"})
        operator_factory(ns, kubeconfig=str(rbac_kubeconfig))

        wait_for(lambda: setup.kube.secret("db"), what="own-namespace Secret applied")
        assert [cm["metadata"]["name"] for cm in setup.kube.configmaps()] == ["own"]
        cond = wait_failed(setup.kube)
        assert "foreign" in cond["message"] and "403" in cond["message"], cond
        assert setup.kube.configmaps(other) == []
        # the objects carry no trace of the operator's own identity being used instead
        assert decoded(setup.kube.secret("db") or {}) == {"password": "tenant-own-pass"}


def test_service_account_without_rights_applies_nothing_atomic(
    rbac_setup: Setup, operator_factory: Any, rbac_kubeconfig: Path
) -> None:
    setup = rbac_setup
    ns = setup.namespace
    setup.kube.create({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "nobody", "namespace": ns}})
    setup.push({"deploy/own.yaml": config_doc("own", ns, level="info")})
    setup.objects(extra_spec={"serviceAccountName": "nobody"})
    operator_factory(ns, kubeconfig=str(rbac_kubeconfig))
    cond = wait_failed(setup.kube)
    assert cond["reason"] == "ApplyFailed" and "own" in cond["message"], cond
    assert setup.kube.configmaps() == []


@pytest.mark.parametrize(
    ("allowlist", "allowed"),
    [
        pytest.param([], False, id="no-allowlist"),
        pytest.param(["some-other-ns"], False, id="not-listed"),
        pytest.param(["OTHER"], True, id="listed"),
        pytest.param(["*"], True, id="wildcard"),
    ],
)
def test_without_a_service_account_only_the_own_namespace_or_the_allowlist(
    setup: Setup, operator_factory: Any, allowlist: list[str], allowed: bool
) -> None:
    ns = setup.namespace
    with _other_namespace(setup.kube) as other:
        setup.push({
            "deploy/own.yaml": config_doc("own", ns, level="info"),
            "deploy/foreign.yaml": config_doc("foreign", other, level="info"),
        })
        setup.objects()
        operator_factory(
            ns, target_namespace_allowlist=[other if a == "OTHER" else a for a in allowlist]
        )
        if allowed:
            wait_for(lambda: is_ready(setup.kube.sync()), what="Ready=True")
            assert [cm["metadata"]["name"] for cm in setup.kube.configmaps(other)] == ["foreign"]
            return
        sync = (wait_failed(setup.kube), setup.kube.sync())[1]
        cond = ready(sync) or {}
        assert cond["reason"] == "AccessDenied", cond
        assert f"{other}/foreign" in cond["message"]
        assert (condition(sync, "Stalled") or {}).get("status") == "True"
        time.sleep(1.0)
        assert setup.kube.configmaps() == [] and setup.kube.configmaps(other) == []


def test_decryption_keys_never_come_from_another_namespace(
    setup: Setup, operator_factory: Any
) -> None:
    ns = setup.namespace
    with _other_namespace(setup.kube) as other:
        setup.secret_object("sops-keys", {"identity.agekey": setup.age_secret}, namespace=other)
        setup.push({"deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="cross-ns-pw"))})
        setup.objects(
            keys_secret=False,
            extra_spec={"decryption": {"secretRef": {"name": "sops-keys", "namespace": other}}},
        )
        operator_factory(ns, watch=[ns, other])
        cond = wait_failed(setup.kube)
        assert f"{ns}/sops-keys" in cond["message"], cond
        time.sleep(1.0)
        assert setup.kube.secret("db") is None
