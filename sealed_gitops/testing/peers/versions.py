"""The pinned releases of the peers: Flux's controllers and Bitnami Sealed Secrets.

The one place to change to test against a newer peer. Each pin is the newest release the Go module
proxy serves whose ``go.mod`` the machine's Go (1.26) builds without a toolchain download:

- ``github.com/fluxcd/source-controller`` and ``kustomize-controller`` **v1.9.6**: both v1.10.x ask
  for ``go 1.27.0``; v1.9.6 asks for ``go 1.26.0``. Both are the same minor release, so
  kustomize-controller's ``source-controller/api`` requirement speaks the served
  ``source.toolkit.fluxcd.io/v1`` GitRepository, and kustomize-controller serves
  ``kustomize.toolkit.fluxcd.io/v1`` Kustomization. It decrypts with getsops/sops v3.13.2 and
  filippo.io/age v1.3.1 (its go.mod); the project's reference ``sops`` binary is 3.12.
- ``github.com/bitnami-labs/sealed-secrets`` **v0.40.0** (``go 1.26.8``, exactly the machine's Go;
  the proxy's only other release is v0.27.1 from 2024). Its go.mod declares the module path
  ``github.com/bitnami/sealed-secrets`` while the proxy serves it under ``bitnami-labs``; Go accepts
  such a module only through a ``replace`` whose left side is the declared path, as for a fork, so
  :data:`SEALED_SECRETS` carries that mapping.

One substitution: the module proxy this project uses serves ``github.com/fluxcd/pkg/artifact``
only at v0.3.0, v0.5.0, v0.8.0, v0.18.0 and v0.29.0, and every source-controller release names a
version in between (v1.9.6: v0.18.3). The build replaces it with v0.18.0, the same minor release:
the go.mod files of v0.18.0 to v0.18.3 differ only in the patch versions of fluxcd/pkg modules they
require (apis/meta v1.30.0 -> v1.30.2, oci v0.68.0 -> v0.68.1), so the artifact storage and server
code source-controller runs is v0.18's. Everything else builds at the versions the peers' go.mod
files select.

Flux's two go.mod files replace their own ``api`` sub-module with ``./api`` (a directory of the
repository, which a dependency cannot use; the published ``api`` module at the required version is
the same code) and pin a few third-party modules; the build copies every replace that names a
module version and drops the directory ones. The CRDs come from each module as its developers
apply them: ``config/crd/bases`` for Flux, the Helm chart's ``crds`` for Sealed Secrets.

Tools built the same way (:data:`TOOLS`), not run beside us but used by the tests on our own
install: ``helm.sh/helm/v4`` **v4.3.2** (``go 1.26.0``; its go.mod has no replace, the wrapper is
only the common path), ``helm`` for the chart in ``deploy/chart`` (lint, template, install).
Helm 4, not 3: the current major release, the one new clusters get; the chart is ``apiVersion: v2``,
which Helm 3 reads too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "HELM",
    "KUSTOMIZE_CONTROLLER",
    "MINIMUM_GO",
    "PEERS",
    "SEALED_SECRETS",
    "SOURCE_CONTROLLER",
    "TOOLS",
    "Peer",
]

#: The lowest Go every pin accepts (the highest ``go`` line among them: sealed-secrets' 1.26.8).
MINIMUM_GO: Final = (1, 26)


@dataclass(frozen=True)
class Peer:
    """One Go module built into one cache directory."""

    #: The cache directory's prefix and the name tests use.
    name: str
    #: The module path as the proxy serves it.
    module: str
    version: str
    #: ``(binary name, package path relative to the module root)``; "" is the root package.
    commands: tuple[tuple[str, str], ...]
    #: CRD manifests, as directories or files relative to the module root.
    crds: tuple[str, ...]
    #: The path the module's own go.mod declares, when it differs from :attr:`module`.
    declared_path: str = ""
    #: ``(module, version)`` replaces the build adds: dependency versions the module proxy this
    #: project uses does not serve, each swapped for the nearest one it does (see the docstring).
    substitutes: tuple[tuple[str, str], ...] = ()
    #: The string variable ``go build -X`` sets to :attr:`version` (what ``--version`` prints).
    version_variable: str = "main.VERSION"

    @property
    def import_path(self) -> str:
        """The path Go code (and the generated wrapper's require) names the module by."""
        return self.declared_path or self.module

    @property
    def cache_key(self) -> str:
        """The cache sub-directory: a new pin never reuses old binaries."""
        return f"{self.name}-{self.version}"


SOURCE_CONTROLLER: Final = Peer(
    name="source-controller",
    module="github.com/fluxcd/source-controller",
    version="v1.9.6",
    commands=(("source-controller", ""),),
    crds=("config/crd/bases",),
    # v1.9.6 requires fluxcd/pkg/artifact v0.18.3 (v1.9.4: v0.18.2), whose zips the proxy does not
    # serve; v0.18.0 differs from them only in its own dependency bumps (their go.mod files).
    substitutes=(("github.com/fluxcd/pkg/artifact", "v0.18.0"),),
)

KUSTOMIZE_CONTROLLER: Final = Peer(
    name="kustomize-controller",
    module="github.com/fluxcd/kustomize-controller",
    version="v1.9.6",
    commands=(("kustomize-controller", ""),),
    crds=("config/crd/bases",),
)

SEALED_SECRETS: Final = Peer(
    name="sealed-secrets",
    module="github.com/bitnami-labs/sealed-secrets",
    version="v0.40.0",
    commands=(("controller", "cmd/controller"), ("kubeseal", "cmd/kubeseal")),
    crds=("helm/sealed-secrets/crds",),
    declared_path="github.com/bitnami/sealed-secrets",
)

#: Every peer by name.
PEERS: Final = {
    peer.name: peer for peer in (SOURCE_CONTROLLER, KUSTOMIZE_CONTROLLER, SEALED_SECRETS)
}

HELM: Final = Peer(
    name="helm",
    module="helm.sh/helm/v4",
    version="v4.3.2",
    commands=(("helm", "cmd/helm"),),
    crds=(),
    # as helm's own Makefile sets it; without it `helm version` says v4.3 (the source default)
    version_variable="helm.sh/helm/v4/internal/version.version",
)

#: Go tools built like the peers for the tests of our own install (deploy/chart).
TOOLS: Final = {tool.name: tool for tool in (HELM,)}
