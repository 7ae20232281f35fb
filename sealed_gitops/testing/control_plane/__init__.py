"""The real Kubernetes control plane for tests: etcd, kube-apiserver and kube-controller-manager,
built from their Go modules at pinned releases (:mod:`.versions`), cached per version
(:mod:`.build`), and started on loopback with fresh certificates (:mod:`.plane`).

Typical use (a pytest fixture, or ``python -m sealed_gitops.testing control-plane``)::

    with ControlPlane.start(workdir=tmp) as plane:
        run(["kubectl", "--kubeconfig", str(plane.kubeconfig_path), "get", "ns"])
"""

from __future__ import annotations

from sealed_gitops.testing.control_plane.build import (
    CACHE_ENV,
    Binaries,
    cache_directory,
    cached_binaries,
    ensure_binaries,
    find_go,
)
from sealed_gitops.testing.control_plane.plane import DEFAULT_AUDIENCE, ControlPlane
from sealed_gitops.testing.control_plane.versions import ETCD_VERSION, KUBERNETES_VERSION

__all__ = [
    "CACHE_ENV",
    "DEFAULT_AUDIENCE",
    "ETCD_VERSION",
    "KUBERNETES_VERSION",
    "Binaries",
    "ControlPlane",
    "cache_directory",
    "cached_binaries",
    "ensure_binaries",
    "find_go",
]
