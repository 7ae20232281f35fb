"""The pinned releases of the control plane: the one place to change to move to a new Kubernetes.

Why these: Kubernetes v1.37.2 is the newest release the module proxy serves whose ``go.mod`` asks
for Go 1.26 (``go 1.26.0``), so the machine's Go 1.26 builds it without a toolchain download.
etcd v3.7.0 is the version that release names itself: ``build/dependencies.yaml`` and
``hack/lib/etcd.sh`` (``ETCD_VERSION``), and its ``go.mod`` requires ``go.etcd.io/etcd/*`` v3.7.0.

Each Kubernetes staging module (``k8s.io/api``, ``k8s.io/client-go``, ...) is published as
``v0.<minor>.<patch>`` for release ``v1.<minor>.<patch>``; :func:`staging_version` derives it.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BUILD_RECIPE",
    "ETCD_MAIN_PACKAGE",
    "ETCD_MODULE",
    "ETCD_VERSION",
    "KUBERNETES_COMMANDS",
    "KUBERNETES_MODULE",
    "KUBERNETES_VERSION",
    "MINIMUM_GO",
    "cache_key",
    "staging_version",
    "version_ldflags",
]

#: The Kubernetes release built; its own go.mod lists the staging modules that need a replace.
KUBERNETES_VERSION: Final = "v1.37.2"
#: The etcd release that Kubernetes release runs against in its own tests.
ETCD_VERSION: Final = "v3.7.0"
#: The lowest Go the chosen releases accept (the ``go`` line of both go.mod files).
MINIMUM_GO: Final = (1, 26)

KUBERNETES_MODULE: Final = "k8s.io/kubernetes"
#: The two commands built from KUBERNETES_MODULE, in one ``go build`` so they share compile work.
KUBERNETES_COMMANDS: Final = ("kube-apiserver", "kube-controller-manager")
ETCD_MODULE: Final = "go.etcd.io/etcd/server/v3"
#: etcd's ``main`` package is the root of its server module (``server/main.go`` in the repository).
ETCD_MAIN_PACKAGE: Final = ETCD_MODULE


def staging_version(kubernetes_version: str = KUBERNETES_VERSION) -> str:
    """``v1.37.2`` -> ``v0.37.2``: the tag every staging module carries for that release."""
    major, _, rest = kubernetes_version.partition(".")
    if major != "v1" or not rest:
        raise ValueError(f"not a Kubernetes v1 release: {kubernetes_version!r}")
    return f"v0.{rest}"


#: Bumped when the build itself changes (flags), so a cache from the old recipe is not reused.
BUILD_RECIPE: Final = "r2"


def cache_key(
    kubernetes_version: str = KUBERNETES_VERSION, etcd_version: str = ETCD_VERSION
) -> str:
    """The cache sub-directory for one pair of releases: a new pin never reuses old binaries."""
    return f"{kubernetes_version}-{etcd_version}-{BUILD_RECIPE}"


def version_ldflags(kubernetes_version: str = KUBERNETES_VERSION) -> list[str]:
    """``-X`` settings that make the binaries report their release, as Kubernetes' own build
    (``hack/lib/version.sh``) stamps it. Without them ``/version`` says ``v0.0.0-master``, and
    clients that check the server's version (Helm's ``kubeVersion``, kubectl's skew warning)
    judge a cluster that does not exist."""
    major, minor, _ = kubernetes_version.lstrip("v").split(".", 2)
    values = {
        "gitVersion": kubernetes_version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "clean",
    }
    return [
        f"-X {package}.{name}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for name, value in values.items()
    ]
