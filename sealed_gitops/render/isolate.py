"""The isolate policy inside a kustomization: a file that fails to parse is left out, not the whole
build.

Why this module exists: kustomize builds all or nothing. One resource file with a YAML syntax
error made ``kubectl kustomize`` fail, so the whole kustomization (in Flux's layout, the Sync's
whole path) rendered nothing, even under ``--failure-policy isolate``, whose promise is that a
document that fails to render is left out and listed while the rest goes on (issue 12, Must 5).

So when a kustomize build fails, the manifest files it reads are parsed with our own safe loader;
the ones that fail are the failures to report, each naming its file and reason (atomic: the first
is raised, which says more than kustomize's message). Under isolate the build is then run again on
a copy of the files it reads in which each broken file is empty (kustomize accepts an empty
resource file: it declares no object), so everything else of the kustomization is rendered. The
rebuild is the first build's path (:func:`~sealed_gitops.render.generators.build`): encrypted
generator sources and patches are decrypted into the same memory-backed copy, removed at once, so
a generated Secret holds its plaintext, not ciphertext the leftover guard would refuse.
"""

from __future__ import annotations

from pathlib import Path

from sealed_gitops.crypto.sops import Unwrapper
from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.render import generators, kustomize
from sealed_gitops.render.binding import NamespaceBinding
from sealed_gitops.render.cache import ContentCache
from sealed_gitops.render.document import make_document
from sealed_gitops.render.generators import Staged
from sealed_gitops.render.kustomize import KustomizeScan
from sealed_gitops.render.loader import Limits, load_file
from sealed_gitops.render.walk import Unit

__all__ = ["Broken", "build_leaving_out", "unparsable"]

#: a manifest file of a kustomization that does not parse, and why
Broken = tuple[str, SealedGitopsError]


def unparsable(root: Path, unit: Unit, *, limits: Limits) -> list[Broken]:
    """The manifest files ``unit`` reads that fail the safe loader or are not manifests."""
    try:
        scanned = kustomize.scan(root, unit.path)
    except SealedGitopsError:
        return []  # the graph itself is wrong: the unit's own failure says so
    broken: list[Broken] = []
    for rel in scanned.manifests:
        try:
            for index, data in load_file(root / rel, file=rel, limits=limits):
                make_document(data, file=rel, index=index)
        except SealedGitopsError as exc:
            broken.append((rel, exc.with_file(rel)))
    return broken


def build_leaving_out(
    root: Path,
    unit: Unit,
    broken: list[Broken],
    *,
    kubectl: str | None,
    timeout: float,
    unwrapper: Unwrapper | None = None,
    binding: NamespaceBinding = NamespaceBinding.NONE,
    cache: ContentCache | None = None,
) -> tuple[bytes, KustomizeScan, Staged | None]:
    """kustomize's output for ``unit`` with every file of ``broken`` empty; raises as a build.

    The rebuild goes through the same generators path as the first build (encrypted generator
    sources and patches decrypted, MAC verified, into the memory-backed copy), so a Secret
    generated from encrypted sources is the same with or without the broken file; with the first
    build's ``cache``, a source it decrypted is not decrypted again.
    """
    return generators.build(
        root,
        unit.path,
        rel=unit.rel,
        unwrapper=unwrapper,
        kubectl=kubectl,
        timeout=timeout,
        binding=binding,
        blank=[rel for rel, _ in broken],
        cache=cache,
    )
