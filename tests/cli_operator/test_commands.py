"""``reconcile``, ``suspend``, ``resume`` and ``status`` against the cluster (and an operator)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from sealed_gitops.cli.main import cli
from sealed_gitops.cli.status_cmds import (
    HANDLED_AT_FIELD,
    STATUS_FIELDS,
    request_reconcile,
    wait_reconciled,
)
from sealed_gitops.cluster import KubeClient
from sealed_gitops.operator.resources import REQUESTED_AT, object_path
from sealed_gitops.operator.runner import OperatorThread
from tests.operator.conftest import Setup, ready, wait_for
from tests.operator.manifests import config_doc, secret_doc

from .conftest import CANARY, tamper

pytestmark = pytest.mark.e2e


def run(kubeconfig: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--kubeconfig", str(kubeconfig)], catch_exceptions=False)


def sync_path(setup: Setup, kind: str = "Sync", name: str = "app") -> str:
    return object_path(kind, setup.namespace, name)


def sync_annotations(setup: Setup, kind: str = "Sync") -> dict[str, str]:
    obj = setup.kube.get(sync_path(setup, kind)) or {}
    return dict(obj["metadata"].get("annotations") or {})


@pytest.mark.parametrize("kind", ["sync", "repository"])
def test_reconcile_sets_requested_at_to_now(setup: Setup, kubeconfig: Path, kind: str) -> None:
    setup.objects()
    before = datetime.now().astimezone()
    result = run(kubeconfig, "reconcile", f"{setup.namespace}/app", "--kind", kind)
    assert result.exit_code == 0, result.output
    value = sync_annotations(setup, kind.capitalize())[REQUESTED_AT]
    assert value.endswith("Z")
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert before.timestamp() - 1 <= when.timestamp() <= time.time() + 1
    assert value in result.output


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no-slash", "is not NAMESPACE/NAME"),
        ("ns/", "is not NAMESPACE/NAME"),
        ("a/b/c", "is not NAMESPACE/NAME"),
        ("missing-ns/app", "not found"),
    ],
)
def test_reconcile_refuses_bad_references(
    kubeconfig: Path, crds: None, ref: str, message: str
) -> None:
    result = run(kubeconfig, "reconcile", ref)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_reconcile_wait_follows_new_commits_and_fails_on_a_tampered_one(
    setup: Setup, kubeconfig: Path, operator_factory: Callable[..., OperatorThread]
) -> None:
    ns = setup.namespace
    setup.push({"deploy/db.yaml": setup.encrypt(secret_doc("db", ns, pw=CANARY + "one"))})
    # Long intervals: only our requests make the operator look again.
    setup.objects(interval="1h")
    operator_factory(ns)
    wait_for(lambda: (ready(setup.kube.sync()) or {}).get("status") == "True", what="Ready")

    sha = setup.push({"deploy/cm.yaml": config_doc("settings", ns, level="debug")})
    result = run(kubeconfig, "reconcile", f"{ns}/app", "--kind", "repository", "--wait")
    assert result.exit_code == 0, result.output
    result = run(kubeconfig, "reconcile", f"{ns}/app", "--wait", "--timeout", "30s")
    assert result.exit_code == 0, result.output
    assert f"main@sha1:{sha}" in result.output
    assert setup.kube.sync()["status"]["lastAppliedRevision"] == f"main@sha1:{sha}"

    good = setup.encrypt(secret_doc("db", ns, pw=CANARY + "two"))
    setup.push({"deploy/db.yaml": tamper(good)}, message="tamper")
    assert run(kubeconfig, "reconcile", f"{ns}/app", "--kind", "repository", "--wait")
    result = run(kubeconfig, "reconcile", f"{ns}/app", "--wait", "--timeout", "30s")
    assert result.exit_code == 1
    assert "DecryptionFailed" in result.output and "deploy/db.yaml" in result.output
    assert CANARY not in result.output


def test_reconcile_wait_times_out_without_an_operator(setup: Setup, kubeconfig: Path) -> None:
    setup.objects()
    result = run(kubeconfig, "reconcile", f"{setup.namespace}/app", "--wait", "--timeout", "1s")
    assert result.exit_code == 1
    assert "not reconciled within 1s" in result.output


def _write_status(client: KubeClient, path: str, status: dict[str, Any]) -> None:
    client.request(
        "PATCH",
        path + "/status",
        body={"status": status},
        content_type="application/merge-patch+json",
        action="patch",
        what=path,
    )


@pytest.mark.parametrize(
    ("written", "handled"),
    [
        # an operator that echoes the request: exact
        ({"echo": True, "generation": "current"}, True),
        ({"echo": "stale", "generation": "current"}, False),
        ({"echo": True, "generation": "old"}, False),
        # an operator that does not: a current Ready that changed, or settled
        ({"echo": None, "generation": "current"}, True),
        ({"echo": None, "generation": "old"}, False),
    ],
)
def test_wait_reconciled_decides_from_status(
    setup: Setup, client: KubeClient, written: dict[str, Any], handled: bool
) -> None:
    setup.objects()
    ns = setup.namespace
    path = sync_path(setup)
    before = setup.kube.sync().get("status") or {}
    requested = request_reconcile(client, "Sync", ns, "app")
    generation = setup.kube.sync()["metadata"]["generation"]
    status: dict[str, Any] = {
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Succeeded",
                "message": "Applied revision: main@sha1:0",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
                "observedGeneration": generation if written["generation"] == "current" else 0,
            }
        ]
    }
    if written["echo"] is True:
        status[HANDLED_AT_FIELD] = requested
    elif written["echo"] == "stale":
        status[HANDLED_AT_FIELD] = "2020-01-01T00:00:00Z"
    timer = threading.Timer(0.3, _write_status, args=(client, path, status))
    timer.start()
    try:
        obj = wait_reconciled(
            client,
            "Sync",
            ns,
            "app",
            requested=requested,
            before=before,
            timeout=2.0,
            settle=10.0,
        )
    finally:
        timer.join()
    assert (obj is not None) is handled


def test_wait_reconciled_takes_an_unchanged_current_status_as_a_no_op(
    setup: Setup, client: KubeClient
) -> None:
    setup.objects()
    generation = setup.kube.sync()["metadata"]["generation"]
    _write_status(client, sync_path(setup), {"conditions": [{
        "type": "Ready", "status": "True", "reason": "Succeeded", "message": "ok",
        "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": generation,
    }]})  # fmt: skip
    before = setup.kube.sync()["status"]
    requested = request_reconcile(client, "Sync", setup.namespace, "app")
    started = time.monotonic()
    obj = wait_reconciled(
        client,
        "Sync",
        setup.namespace,
        "app",
        requested=requested,
        before=before,
        timeout=5.0,
        settle=0.5,
    )
    assert obj is not None
    assert 0.5 <= time.monotonic() - started < 3.0


@pytest.mark.parametrize("kind", ["sync", "repository"])
def test_suspend_and_resume_patch_spec_suspend(setup: Setup, kubeconfig: Path, kind: str) -> None:
    setup.objects()
    kind_name = kind.capitalize()
    for command, expected in (("suspend", True), ("resume", False)):
        result = run(kubeconfig, command, f"{setup.namespace}/app", "--kind", kind)
        assert result.exit_code == 0, result.output
        obj = setup.kube.get(sync_path(setup, kind_name)) or {}
        assert obj["spec"]["suspend"] is expected
        assert obj["spec"]["url" if kind == "repository" else "path"]  # the rest is kept


def test_a_suspended_sync_ignores_new_commits_until_resumed(
    setup: Setup, kubeconfig: Path, operator_factory: Callable[..., OperatorThread]
) -> None:
    ns = setup.namespace
    setup.push({"deploy/cm.yaml": config_doc("settings", ns, level="info")})
    setup.objects()
    operator_factory(ns)
    wait_for(lambda: setup.kube.get(f"/api/v1/namespaces/{ns}/configmaps/settings"), what="cm")
    assert run(kubeconfig, "suspend", f"{ns}/app").exit_code == 0
    sha = setup.push({"deploy/cm.yaml": config_doc("settings", ns, level="debug")})
    wait_for(
        lambda: (
            f"main@sha1:{sha}" in json.dumps(setup.kube.get(sync_path(setup, "Repository")) or {})
        ),
        what="Repository at the new commit",
    )
    time.sleep(1.5)
    cm = setup.kube.get(f"/api/v1/namespaces/{ns}/configmaps/settings") or {}
    assert cm["data"] == {"level": "info"}
    assert run(kubeconfig, "resume", f"{ns}/app").exit_code == 0
    wait_for(
        lambda: (
            (setup.kube.get(f"/api/v1/namespaces/{ns}/configmaps/settings") or {}).get("data")
            == {"level": "debug"}
        ),
        what="the change applied after resume",
    )


def test_status_table_and_json(
    setup: Setup, kubeconfig: Path, operator_factory: Callable[..., OperatorThread]
) -> None:
    ns = setup.namespace
    sha = setup.push({"deploy/db.yaml": setup.encrypt(secret_doc("db", ns, pw=CANARY + "st"))})
    setup.objects()
    operator_factory(ns)
    wait_for(lambda: (ready(setup.kube.sync()) or {}).get("status") == "True", what="Ready")

    table = run(kubeconfig, "status", "-n", ns)
    assert table.exit_code == 0, table.output
    header, *rows = table.stdout.splitlines()
    assert header.split("\t") == ["NAMESPACE", "NAME", "READY", "REVISION", "SUSPENDED", "MESSAGE"]
    [row] = rows
    cells = row.split("\t")
    assert cells[:5] == [ns, "app", "True", f"main@sha1:{sha[:12]}", "False"]
    assert sha in cells[5]  # the message names the full revision

    answer = run(kubeconfig, "status", "-n", ns, "--kind", "all", "--output", "json")
    assert answer.exit_code == 0, answer.output
    items = json.loads(answer.stdout)
    assert [(i["kind"], i["name"]) for i in items] == [("Sync", "app"), ("Repository", "app")]
    for item in items:
        assert tuple(item) == STATUS_FIELDS
        assert item["namespace"] == ns and item["ready"] == "True"
        assert item["revision"] == f"main@sha1:{sha}"
    assert CANARY not in table.output + answer.output


def test_status_of_an_empty_namespace_and_conflicting_flags(setup: Setup, kubeconfig: Path) -> None:
    empty = run(kubeconfig, "status", "-n", setup.namespace, "--output", "json")
    assert empty.exit_code == 0 and json.loads(empty.stdout) == []
    table = run(kubeconfig, "status", "-n", setup.namespace)
    assert table.exit_code == 0 and table.stdout == ""
    both = run(kubeconfig, "status", "-n", setup.namespace, "-A")
    assert both.exit_code == 1 and "either --namespace or --all-namespaces" in both.output


def test_reconcile_with_source_applies_the_commit_just_pushed(
    setup: Setup, kubeconfig: Path, operator_factory: Callable[..., OperatorThread]
) -> None:
    """Issue 15: `reconcile --wait` right after a push reported success on the previous commit.
    Without --with-source it now says which revision it applied (the one the Repository
    published) and how to get the new one; with --with-source the Repository fetches first."""
    ns = setup.namespace
    first = setup.push({"deploy/cm.yaml": config_doc("settings", ns, level="info")})
    setup.objects(interval="1h")
    operator_factory(ns)
    wait_for(lambda: (ready(setup.kube.sync()) or {}).get("status") == "True", what="Ready")

    second = setup.push({"deploy/cm.yaml": config_doc("settings", ns, level="debug")})
    result = run(kubeconfig, "reconcile", f"{ns}/app", "--wait", "--timeout", "30s")
    assert result.exit_code == 0, result.output
    assert f"applied revision main@sha1:{first}" in result.output
    assert "--with-source" in result.output

    result = run(
        kubeconfig, "reconcile", f"{ns}/app", "--with-source", "--wait", "--timeout", "30s"
    )
    assert result.exit_code == 0, result.output
    assert f"Repository {ns}/app at main@sha1:{second}" in result.output
    assert f"applied revision main@sha1:{second}" in result.output
    assert setup.kube.sync()["status"]["lastAppliedRevision"] == f"main@sha1:{second}"


@pytest.mark.parametrize("kind", ["sync", "repository"])
def test_reconcile_of_a_suspended_object_fails_at_once(
    setup: Setup, kubeconfig: Path, kind: str
) -> None:
    """Issue 15: `reconcile --wait` on a suspended Sync waited out the whole timeout."""
    setup.objects()
    assert run(kubeconfig, "suspend", f"{setup.namespace}/app", "--kind", kind).exit_code == 0
    started = time.monotonic()
    result = run(kubeconfig, "reconcile", f"{setup.namespace}/app", "--kind", kind, "--wait",
                 "--timeout", "60s")  # fmt: skip
    assert result.exit_code == 1
    assert time.monotonic() - started < 10
    assert "is suspended: resume it first" in result.output
    assert REQUESTED_AT not in sync_annotations(setup, kind.capitalize())


def test_with_source_is_for_a_sync(setup: Setup, kubeconfig: Path) -> None:
    setup.objects()
    result = run(kubeconfig, "reconcile", f"{setup.namespace}/app", "--kind", "repository",
                 "--with-source")  # fmt: skip
    assert result.exit_code == 1
    assert "--with-source is for a Sync" in result.output
