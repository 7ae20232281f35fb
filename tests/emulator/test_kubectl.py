"""The real kubectl against the server: what a person types must work as on a cluster."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def _configmap(namespace: str, name: str, data: dict[str, str], **meta: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, **meta},
            "data": data,
        }
    )


def test_create_then_get_json(run_kubectl: Any, namespace: str) -> None:
    run_kubectl("create", "-f", "-", stdin=_configmap(namespace, "cm", {"k": "v"}))
    got = json.loads(run_kubectl("-n", namespace, "get", "configmap", "cm", "-o", "json").stdout)
    assert got["data"] == {"k": "v"}
    assert got["metadata"]["uid"]
    assert int(got["metadata"]["resourceVersion"]) > 0
    again = run_kubectl("create", "-f", "-", stdin=_configmap(namespace, "cm", {}), check=False)
    assert again.returncode != 0
    assert "AlreadyExists" in again.stderr


def test_get_secrets_prints_a_table(run_kubectl: Any, namespace: str) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": namespace},
        "stringData": {"password": "hunter2"},
    }
    run_kubectl("create", "-f", "-", stdin=json.dumps(secret))
    out = run_kubectl("-n", namespace, "get", "secrets").stdout
    header, *rows = out.strip().splitlines()
    assert header.split()[:2] == ["NAME", "TYPE"]
    assert any(row.split()[:2] == ["db", "Opaque"] for row in rows)
    names = run_kubectl("-n", namespace, "get", "secrets", "-o", "name").stdout.split()
    assert "secret/db" in names


def test_apply_server_side_creates_updates_and_conflicts(run_kubectl: Any, namespace: str) -> None:
    first = run_kubectl(
        "apply",
        "--server-side",
        "-f",
        "-",
        stdin=_configmap(namespace, "app", {"a": "1", "b": "2"}),
    )
    assert "serverside-applied" in first.stdout
    # The same manager dropping "b" removes it; a second manager changing "a" conflicts.
    run_kubectl("apply", "--server-side", "-f", "-", stdin=_configmap(namespace, "app", {"a": "1"}))
    got = json.loads(
        run_kubectl(
            "-n", namespace, "get", "cm", "app", "-o", "json", "--show-managed-fields"
        ).stdout
    )
    assert got["data"] == {"a": "1"}
    managers = {e["manager"]: e for e in got["metadata"]["managedFields"]}
    assert managers["kubectl"]["operation"] == "Apply"
    assert "f:a" in managers["kubectl"]["fieldsV1"]["f:data"]
    clash = run_kubectl(
        "apply",
        "--server-side",
        "--field-manager",
        "other",
        "-f",
        "-",
        stdin=_configmap(namespace, "app", {"a": "2"}),
        check=False,
    )
    assert clash.returncode != 0
    assert "conflict" in clash.stderr.lower()
    assert ".data.a" in clash.stderr
    run_kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager",
        "other",
        "-f",
        "-",
        stdin=_configmap(namespace, "app", {"a": "2"}),
    )
    got = json.loads(run_kubectl("-n", namespace, "get", "cm", "app", "-o", "json").stdout)
    assert got["data"] == {"a": "2"}


def test_replace_with_a_stale_version_is_a_conflict(run_kubectl: Any, namespace: str) -> None:
    run_kubectl("create", "-f", "-", stdin=_configmap(namespace, "cm", {"k": "1"}))
    stale = json.loads(run_kubectl("-n", namespace, "get", "cm", "cm", "-o", "json").stdout)
    run_kubectl("-n", namespace, "patch", "cm", "cm", "--type", "merge", "-p", '{"data":{"k":"2"}}')
    stale["data"] = {"k": "3"}
    result = run_kubectl("replace", "-f", "-", stdin=json.dumps(stale), check=False)
    assert result.returncode != 0
    assert "Conflict" in result.stderr or "has been modified" in result.stderr
    fresh = json.loads(run_kubectl("-n", namespace, "get", "cm", "cm", "-o", "json").stdout)
    fresh["data"] = {"k": "4"}
    run_kubectl("replace", "-f", "-", stdin=json.dumps(fresh))
    got = json.loads(run_kubectl("-n", namespace, "get", "cm", "cm", "-o", "json").stdout)
    assert got["data"] == {"k": "4"}


def test_delete(run_kubectl: Any, namespace: str) -> None:
    run_kubectl("create", "-f", "-", stdin=_configmap(namespace, "gone", {}))
    out = run_kubectl("-n", namespace, "delete", "configmap", "gone").stdout
    assert 'configmap "gone" deleted' in out
    missing = run_kubectl("-n", namespace, "get", "configmap", "gone", check=False)
    assert missing.returncode != 0
    assert "NotFound" in missing.stderr


def test_get_watch_streams_changes(
    kubectl: Path, kubeconfig: Path, run_kubectl: Any, namespace: str, tmp_path: Path
) -> None:
    run_kubectl("create", "-f", "-", stdin=_configmap(namespace, "w0", {}))
    with subprocess.Popen(
        [
            str(kubectl),
            "--kubeconfig",
            str(kubeconfig),
            "--cache-dir",
            str(tmp_path / "c"),
            "-n",
            namespace,
            "get",
            "configmaps",
            "-w",
            "-o",
            "name",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            seen = [proc.stdout.readline().strip()]
            run_kubectl("create", "-f", "-", stdin=_configmap(namespace, "w1", {}))
            deadline = time.monotonic() + 20
            while "configmap/w1" not in seen and time.monotonic() < deadline:
                seen.append(proc.stdout.readline().strip())
        finally:
            proc.kill()
            proc.wait(timeout=10)
    assert "configmap/w0" in seen
    assert "configmap/w1" in seen


def test_imperative_commands_sent_as_protobuf(run_kubectl: Any, namespace: str) -> None:
    # kubectl encodes these as protobuf; the emulator must read them like a real server.
    run_kubectl("-n", namespace, "create", "secret", "generic", "pw", "--from-literal=k=v")
    run_kubectl("-n", namespace, "create", "configmap", "conf", "--from-literal=a=b")
    run_kubectl("-n", namespace, "create", "serviceaccount", "robot")
    secret = json.loads(run_kubectl("-n", namespace, "get", "secret", "pw", "-o", "json").stdout)
    assert secret["data"] == {"k": "dg=="}
    assert secret["type"] == "Opaque"
    conf = json.loads(run_kubectl("-n", namespace, "get", "cm", "conf", "-o", "json").stdout)
    assert conf["data"] == {"a": "b"}
    token = run_kubectl("-n", namespace, "create", "token", "robot", "--duration=20m").stdout
    assert token.count(".") == 2  # a JWT-shaped token
    assert run_kubectl("auth", "can-i", "get", "secrets", "-n", namespace).stdout.strip() == "yes"


def test_create_and_delete_namespace(run_kubectl: Any) -> None:
    name = f"t-{uuid.uuid4().hex[:10]}"
    run_kubectl("create", "namespace", name)
    try:
        got = json.loads(run_kubectl("get", "namespace", name, "-o", "json").stdout)
        assert got["status"]["phase"] == "Active"
    finally:
        out = run_kubectl("delete", "namespace", name, "--timeout=60s").stdout
    assert f'namespace "{name}" deleted' in out
    assert run_kubectl("get", "namespace", name, check=False).returncode != 0


def test_scale_a_deployment(run_kubectl: Any, namespace: str) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "nginx"}]},
            },
        },
    }
    run_kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps(deployment))
    assert "scaled" in run_kubectl("-n", namespace, "scale", "deploy", "web", "--replicas=3").stdout
    got = json.loads(run_kubectl("-n", namespace, "get", "deploy", "web", "-o", "json").stdout)
    assert got["spec"]["replicas"] == 3
    assert got["metadata"]["generation"] == 2
    scale = json.loads(
        run_kubectl(
            "get", "--raw", f"/apis/apps/v1/namespaces/{namespace}/deployments/web/scale"
        ).stdout
    )
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 3
    assert scale["status"]["selector"] == "app=web"
