"""The ``helm`` binary for the chart's tests, and how they run it.

Helm is built from its Go module (``helm.sh/helm/v4``, pinned in
sealed_gitops/testing/peers/versions.py) and cached like the peers; ``make test`` builds it before
pytest (``python -m sealed_gitops.testing build``), so a test only waits here when run on its own
the first time. Each run gets its own HELM_CACHE_HOME, HELM_CONFIG_HOME and HELM_DATA_HOME below
the test's temporary directory: helm writes repository indexes and plugins there, and must not
read or write the user's.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sealed_gitops.testing.peers import versions
from sealed_gitops.testing.peers.build import cached, ensure_built, find_go

__all__ = ["CHART", "Helm", "helm_fixture"]

CHART = Path(__file__).resolve().parents[2] / "deploy" / "chart"
#: helm install waits for nothing (no --wait); this bounds a hung API call.
_TIMEOUT = 180

Helm = Callable[..., subprocess.CompletedProcess[str]]


def _progress(line: str) -> None:
    sys.stderr.write(f"helm: {line}\n")


def helm_binary() -> Path:
    """The cached helm, built first if missing; skips when neither it nor Go is there."""
    if cached(versions.HELM) is None and find_go() is None:
        pytest.skip(
            f"helm {versions.HELM.version} is not built and no Go 1.26 or newer was found "
            "(/usr/local/go/bin/go, `go` on PATH) to build it"
        )
    return ensure_built(versions.HELM, progress=_progress).binary("helm")


def helm_fixture(home: Path) -> Helm:
    """``helm(*args, check=True)``: run helm with its homes below ``home``; the finished process."""
    binary = helm_binary()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(binary), *args],
            capture_output=True,
            text=True,
            check=False,
            env=env,
            timeout=_TIMEOUT,
        )
        if check:
            assert done.returncode == 0, f"helm {' '.join(args)}:\n{done.stderr}{done.stdout}"
        return done

    return run
