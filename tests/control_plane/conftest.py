"""One real control plane for this directory's tests (built once per version, then cached).

The fixture skips only when there is neither Go to build the binaries nor a cached build: on a
machine with Go the first run builds (5-10 minutes on two cores) and later runs start in
seconds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sealed_gitops.testing.control_plane import ControlPlane

ROOT = Path(__file__).resolve().parents[2]


def kubectl_binary() -> str:
    beside = Path(sys.executable).parent / "kubectl"  # the venv's, pinned with the project
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl not found next to the interpreter nor on PATH")
    return found


Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kubectl(control_plane: ControlPlane) -> Kubectl:
    """``kubectl(*args, kubeconfig=..., input=..., check=True)`` as the admin by default."""
    binary = kubectl_binary()

    def run(
        *args: str, kubeconfig: Path | None = None, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        config = kubeconfig or control_plane.kubeconfig_path
        result = subprocess.run(
            [binary, "--kubeconfig", str(config), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    return run


def get_json(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(kubectl("get", *args, "-o", "json").stdout)
    return loaded


def wait_until(what: str, predicate: Callable[[], bool], *, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
