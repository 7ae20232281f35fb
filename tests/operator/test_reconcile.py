"""The product end to end: an encrypted secret committed to Git becomes a Secret in the cluster."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sealed_gitops.operator.runner import OperatorThread

from .conftest import Setup, decoded, ready, wait_for
from .manifests import config_doc, secret_doc

pytestmark = pytest.mark.e2e

OperatorFactory = Callable[..., OperatorThread]


def test_create_update_prune(setup: Setup, operator_factory: OperatorFactory) -> None:
    ns = setup.namespace
    sha1 = setup.push(
        {
            "deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="first-e2e-password")),
            "deploy/cm.yaml": config_doc("settings", ns, level="info"),
        }
    )
    setup.objects()
    operator_factory(ns)

    secret = wait_for(lambda: setup.kube.secret("db"), what="Secret db")
    assert decoded(secret) == {"password": "first-e2e-password"}
    assert "kubectl.kubernetes.io/last-applied-configuration" not in (
        secret["metadata"].get("annotations") or {}
    )
    sync = wait_for(
        lambda: (s := setup.kube.sync()) and (ready(s) or {}).get("status") == "True" and s,
        what="Ready=True",
    )
    assert sync["status"]["lastAppliedRevision"] == f"main@sha1:{sha1}"
    assert len(sync["status"]["inventory"]["entries"]) == 2

    # a second author changes the value
    sha2 = setup.push(
        {"deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="second-e2e-password"))},
        author=("Dev Two", "dev2@example.invalid"),
    )
    wait_for(
        lambda: decoded(setup.kube.secret("db") or {}) == {"password": "second-e2e-password"},
        what="updated Secret",
    )
    wait_for(
        lambda: setup.kube.sync()["status"].get("lastAppliedRevision") == f"main@sha1:{sha2}",
        what="revision recorded",
    )

    # removing the ConfigMap from Git prunes it
    setup.remove("deploy/cm.yaml")
    wait_for(
        lambda: setup.kube.get(f"/api/v1/namespaces/{ns}/configmaps/settings") is None,
        what="ConfigMap pruned",
    )
    assert setup.kube.secret("db") is not None

    # no plaintext in status or Events
    texts = str(setup.kube.sync()) + str(setup.kube.events())
    assert "second-e2e-password" not in texts and "first-e2e-password" not in texts


def test_tampered_file_keeps_the_old_secret_and_says_why(
    setup: Setup, operator_factory: OperatorFactory
) -> None:
    ns = setup.namespace
    setup.push({"deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="good-old-value"))})
    setup.objects()
    operator_factory(ns)
    wait_for(lambda: setup.kube.secret("db"), what="Secret db")

    good = setup.encrypt(secret_doc("db", ns, password="tampered-new-value"))
    start = good.index("ENC[AES256_GCM,data:") + len("ENC[AES256_GCM,data:")
    bad = good[:start] + ("A" if good[start] != "A" else "B") + good[start + 1 :]
    setup.push({"deploy/db.yaml": bad}, message="tamper")

    cond = wait_for(
        lambda: (c := ready(setup.kube.sync())) and c["status"] == "False" and c, what="Ready=False"
    )
    assert cond["reason"] == "DecryptionFailed"
    assert "deploy/db.yaml" in cond["message"]
    assert decoded(setup.kube.secret("db") or {}) == {"password": "good-old-value"}
    assert "tampered-new-value" not in str(setup.kube.sync()) + str(setup.kube.events())


def test_isolate_applies_the_rest_and_names_the_failure(
    setup: Setup, operator_factory: OperatorFactory
) -> None:
    ns = setup.namespace
    setup.push(
        {
            "deploy/good.yaml": setup.encrypt(secret_doc("good", ns, k="good-value-x")),
            "deploy/broken.yaml": (
                "apiVersion: v1\nkind: Secret\nmetadata: {name: broken}\n"
                "stringData: {k: plain-leak-v}\n"
            ),
        }
    )
    setup.objects(policy="Isolate")
    operator_factory(ns)
    wait_for(lambda: setup.kube.secret("good"), what="good Secret")
    sync = wait_for(
        lambda: (s := setup.kube.sync()) and (s.get("status") or {}).get("failures") and s,
        what="failures in status",
    )
    [failure] = sync["status"]["failures"]
    assert failure["file"] == "deploy/broken.yaml"
    assert setup.kube.secret("broken") is None
    assert "plain-leak-v" not in str(sync)


def test_deleting_the_sync_prunes_its_objects(
    setup: Setup, operator_factory: OperatorFactory
) -> None:
    ns = setup.namespace
    setup.push({"deploy/db.yaml": setup.encrypt(secret_doc("db", ns, password="to-be-deleted"))})
    setup.objects()
    operator_factory(ns)
    wait_for(lambda: setup.kube.secret("db"), what="Secret db")
    setup.kube.delete(f"/apis/sealed-gitops.io/v1alpha1/namespaces/{ns}/syncs/app")
    wait_for(lambda: setup.kube.secret("db") is None, what="Secret deleted with its Sync")
