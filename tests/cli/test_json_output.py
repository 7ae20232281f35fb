"""``--output json`` on the commands that print data: the documented fields, never a value.

``verify`` runs on local files; ``diff`` and ``keys list`` against the Kubernetes emulator (or
SEALED_GITOPS_E2E_KUBECONFIG) through the operator tests' fixtures. Every Secret value here holds
the canary, and no output may contain it. ``reencrypt --output json`` needs a running operator to
answer; its rows are built by the same code path as the text lines (see reencrypt_cmds.reencrypt).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from sealed_gitops.cli.diff_cmds import DIFF_FIELDS
from sealed_gitops.cli.keys_cmds import KEYS_LIST_FIELDS
from sealed_gitops.cli.main import cli
from sealed_gitops.cli.verify import VERIFY_FIELDS
from sealed_gitops.cluster import KubeClient
from tests.cli.conftest import CANARY, SECRET_YAML, AgeKey, run
from tests.operator.conftest import (  # noqa: F401 - fixtures are found by name
    Setup,
    _cluster,
    client,
    crds,
    kubeconfig,
    kubectl_path,
    setup,
)


def _no_canary(result: Result) -> None:
    assert CANARY not in result.stdout and CANARY not in result.stderr


def test_verify_json_lists_each_file_with_its_result(work: Path, use_key: AgeKey) -> None:
    (work / "plain.yaml").write_text(SECRET_YAML)
    (work / "secret.yaml").write_text(SECRET_YAML)
    assert run("encrypt", "secret.yaml", "--age", use_key.public, "-i").exit_code == 0
    (work / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    result = CliRunner().invoke(cli, ["verify", ".", "-o", "json"])
    _no_canary(result)
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert all(tuple(row) == VERIFY_FIELDS for row in rows)
    by_file = {Path(row["file"]).name: row for row in rows}
    assert by_file["secret.yaml"]["result"] == "mac"
    assert by_file["cm.yaml"] == {"file": "cm.yaml", "result": "plain", "error": ""}
    assert by_file["plain.yaml"]["result"] == "failed"
    assert "Kubernetes Secret is not encrypted" in by_file["plain.yaml"]["error"]
    assert "3 files checked" in result.stderr


def _status(api: KubeClient, path: str, status: dict[str, Any]) -> None:
    api.request(
        "PATCH",
        f"{path}/status",
        body={"status": status},
        content_type="application/merge-patch+json",
        action="patch",
        what="status",
    )


def test_keys_list_json(
    setup: Setup,  # noqa: F811 - the fixture imported above
    client: KubeClient,  # noqa: F811
    kubeconfig: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    ns = setup.namespace
    path = f"/apis/sealed-gitops.io/v1alpha1/namespaces/{ns}/keyrings"
    client.request(
        "POST",
        path,
        body={
            "apiVersion": "sealed-gitops.io/v1alpha1",
            "kind": "KeyRing",
            "metadata": {"name": "cluster", "namespace": ns},
            "spec": {},
        },
        action="create",
        what="KeyRing",
    )
    key = {
        "fingerprint": "ab" * 32,
        "state": "active",
        "created": "2026-12-05T07:00:00Z",
        "ageRecipient": setup.recipient,
    }
    _status(client, f"{path}/cluster", {"keys": [key]})
    args = ["keys", "list", "--keyring", f"{ns}/cluster", "--kubeconfig", str(kubeconfig)]
    result = CliRunner().invoke(cli, [*args, "--repo", str(tmp_path), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{**key, "files": 0}]
    assert list(json.loads(result.stdout)[0]) == list(KEYS_LIST_FIELDS)
    table = CliRunner().invoke(cli, [*args, "--repo", str(tmp_path)])
    assert table.stdout.splitlines()[1].split() == ["ab" * 8, "active", key["created"], "0"]


def test_diff_json_names_objects_and_keys_never_values(
    setup: Setup,  # noqa: F811 - the fixture imported above
    kubeconfig: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    ns = setup.namespace
    setup.kube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": ns},
            "data": {"password": base64.b64encode(f"{CANARY}-old".encode()).decode()},
        }
    )
    deploy = tmp_path / "deploy"
    deploy.mkdir()
    secret = yaml.safe_load(SECRET_YAML)
    secret["metadata"]["namespace"] = ns
    (deploy / "db.yaml").write_text(setup.encrypt(secret))
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": ns}}
    (deploy / "cm.yaml").write_text(yaml.safe_dump({**config, "data": {"a": "b"}}))
    identity = tmp_path / "age.key"
    identity.write_text(setup.age_secret + "\n")
    args = ["diff", str(deploy), "--kubeconfig", str(kubeconfig), "--age-identity", str(identity)]
    result = CliRunner().invoke(cli, [*args, "-o", "json"])
    _no_canary(result)
    assert result.exit_code == 1, result.output
    rows = json.loads(result.stdout)
    assert all(tuple(row) == DIFF_FIELDS for row in rows)
    by_kind = {row["kind"]: row for row in rows}
    assert set(by_kind) == {"ConfigMap", "Secret"}
    assert by_kind["ConfigMap"]["action"] == "create"
    assert by_kind["Secret"]["action"] == "update"
    assert (by_kind["Secret"]["namespace"], by_kind["Secret"]["name"]) == (ns, "db")
    for key in ("password", "user", "port"):
        assert key in by_kind["Secret"]["diff"]


@pytest.mark.parametrize("command", [["keys", "list"], ["diff"], ["verify"], ["reencrypt"]])
def test_json_is_offered(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert "-o, --output [" in result.stdout and "json" in result.stdout
