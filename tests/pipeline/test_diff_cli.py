"""`sealed-gitops diff` against a cluster (the emulator, or SEALED_GITOPS_E2E_KUBECONFIG)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sealed_gitops.cluster import KubeClient, connect
from tests.conftest_control_plane import cluster_tiers, tier_cluster

from .conftest import AgeKey, Writer, config_map, secret

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_env")]


@pytest.fixture(scope="module", params=cluster_tiers())
def kubeconfig(request: pytest.FixtureRequest) -> Iterator[Path]:
    """Each test on the emulator and on the real control plane (or the E2E cluster)."""
    with tier_cluster(request) as (path, _):
        yield path


@pytest.fixture
def cluster(kubeconfig: Path) -> Iterator[tuple[KubeClient, str]]:
    client = connect(kubeconfig)
    namespace = f"diff-{uuid.uuid4().hex[:8]}"
    client.request(
        "POST",
        "/api/v1/namespaces",
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        action="create",
        what="namespace",
    )
    yield client, namespace
    client.request("DELETE", f"/api/v1/namespaces/{namespace}", action="delete", what="namespace")
    client.close()


def _diff(path: Path, kubeconfig: Path, age: AgeKey) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOPS_AGE_KEY_FILE": str(age.file)}
    return subprocess.run(
        [sys.executable, "-m", "sealed_gitops", "diff", str(path), "--kubeconfig", str(kubeconfig)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_diff_shows_secret_keys_never_values(
    repo: Path,
    write: Writer,
    sops_encrypt: Callable[[Path], None],
    age_key: AgeKey,
    kubeconfig: Path,
    cluster: tuple[KubeClient, str],
) -> None:
    client, ns = cluster
    live_secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": ns},
        "type": "Opaque",
        "data": {
            "password": base64.b64encode(b"old-diff-password").decode(),
            "gone": base64.b64encode(b"old-gone-value").decode(),
            "same": base64.b64encode(b"same-diff-value").decode(),
        },
    }
    client.request(
        "POST", f"/api/v1/namespaces/{ns}/secrets", body=live_secret, action="create", what="secret"
    )
    sops_encrypt(
        write(
            "deploy/db.yaml",
            secret(
                "db",
                ns,
                password="new-diff-password",
                same="same-diff-value",
                added="added-diff-value",
            ),
        )
    )
    write("deploy/cm.yaml", config_map("settings", ns, level="debug"))

    result = _diff(repo / "deploy", kubeconfig, age_key)
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "password: changed" in out
    assert "gone: removed" in out
    assert "added: added" in out
    assert "same: unchanged" in out
    assert "settings" in out and "level: debug" in out
    for value in (
        "old-diff-password",
        "new-diff-password",
        "same-diff-value",
        "added-diff-value",
        "old-gone-value",
    ):
        assert value not in out + result.stderr
        assert base64.b64encode(value.encode()).decode() not in out + result.stderr


def test_diff_is_empty_when_the_cluster_matches(
    repo: Path,
    write: Writer,
    age_key: AgeKey,
    kubeconfig: Path,
    cluster: tuple[KubeClient, str],
) -> None:
    client, ns = cluster
    client.request(
        "POST",
        f"/api/v1/namespaces/{ns}/configmaps",
        body=config_map("same", ns, a="1"),
        action="create",
        what="cm",
    )
    write("deploy/cm.yaml", config_map("same", ns, a="1"))
    result = _diff(repo / "deploy", kubeconfig, age_key)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_diff_error_exits_2_with_one_line(
    repo: Path, write: Writer, age_key: AgeKey, kubeconfig: Path
) -> None:
    write("deploy/leak.yaml", secret("leak", password="plain-diff-leak"))
    result = _diff(repo / "deploy", kubeconfig, age_key)
    assert result.returncode == 2
    assert result.stderr.startswith("error: leak.yaml (document 0)")
    assert "plain-diff-leak" not in result.stderr + result.stdout


def test_ref_without_repo_is_refused(repo: Path, age_key: AgeKey, kubeconfig: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sealed_gitops",
            "diff",
            str(repo),
            "--kubeconfig",
            str(kubeconfig),
            "--ref",
            "main",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --ref needs --repo"
