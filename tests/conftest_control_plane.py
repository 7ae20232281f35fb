"""The real control plane as pytest fixtures, for every test directory that needs it.

Plain module (not a conftest): a directory's conftest imports the fixtures it uses by name, as
with tests/conftest_tools.py. The binaries are built once per version and cached
(sealed_gitops/testing/control_plane/build.py); `make test` builds them before pytest starts, so a
test never waits for a build inside its timeout. The fixture skips only when there is neither Go
to build with nor a cached build.

``SEALED_GITOPS_TEST_TIERS`` (default ``emulator,control-plane``) picks the tiers that the
API-touching suites run on: ``emulator`` alone is the fast loop while editing.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sealed_gitops.testing import KubeEmulator
from sealed_gitops.testing.control_plane import (
    Binaries,
    ControlPlane,
    cached_binaries,
    ensure_binaries,
    find_go,
)

E2E_ENV = "SEALED_GITOPS_E2E_KUBECONFIG"
TIERS_ENV = "SEALED_GITOPS_TEST_TIERS"
EMULATOR = "emulator"
CONTROL_PLANE = "control-plane"
E2E = "e2e"


def cluster_tiers() -> list[Any]:
    """The ``params`` of a session fixture that gives a cluster: one per tier, or only the
    cluster that SEALED_GITOPS_E2E_KUBECONFIG names."""
    if os.environ.get(E2E_ENV):
        return [E2E]
    wanted = os.environ.get(TIERS_ENV, f"{EMULATOR},{CONTROL_PLANE}")
    tiers = [t.strip() for t in wanted.split(",") if t.strip()]
    unknown = set(tiers) - {EMULATOR, CONTROL_PLANE}
    if unknown or not tiers:
        raise pytest.UsageError(
            f"{TIERS_ENV}={wanted!r}: expected {EMULATOR} and/or {CONTROL_PLANE}"
        )
    return [pytest.param(t, marks=pytest.mark.control_plane) if t == CONTROL_PLANE else t
            for t in tiers]  # fmt: skip


def _progress(line: str) -> None:
    sys.stderr.write(f"control-plane: {line}\n")


@pytest.fixture(scope="session")
def control_plane_binaries() -> Binaries:
    if cached_binaries() is None and find_go() is None:
        pytest.skip(
            "Go toolchain not found (no `go` on PATH, no /usr/local/go/bin/go) and no cached build"
        )
    return ensure_binaries(progress=_progress)


@pytest.fixture(scope="session")
def control_plane(
    control_plane_binaries: Binaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    with ControlPlane.start(
        workdir=tmp_path_factory.mktemp("control-plane"), binaries=control_plane_binaries
    ) as plane:
        yield plane


@contextlib.contextmanager
def tier_cluster(
    request: pytest.FixtureRequest, *, rbac: bool = False
) -> Iterator[tuple[Path, KubeEmulator | None]]:
    """The cluster of ``request.param`` (one of :func:`cluster_tiers`): its kubeconfig, and the
    emulator when the tier is one (None on a real API server, where fault injection is not
    available). For a fixture with ``params=cluster_tiers()``: ``with tier_cluster(request) as
    (kubeconfig, emulator): yield ...``."""
    if request.param == E2E:
        yield Path(os.environ[E2E_ENV]), None
    elif request.param == CONTROL_PLANE:
        plane: ControlPlane = request.getfixturevalue("control_plane")
        yield plane.kubeconfig_path, None
    else:
        with KubeEmulator(rbac=rbac).run_in_thread() as api:
            yield api.kubeconfig_path, api
