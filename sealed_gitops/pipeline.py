"""One reconcile as a straight list of phases: source, render, decrypt, plan, apply.

Why this module is so short: each phase is a function with plain inputs and outputs in its own
package, and this file only says in which order they run and what each hands to the next. The CLI's
``build`` runs :func:`build` (no cluster); the operator runs the same phases and then plans and
applies. Nothing here formats a value: plaintext stays inside the objects it returns.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sealed_gitops.plan import ObjectId, order_key
from sealed_gitops.render import Document, Failure, render
from sealed_gitops.render.cache import ContentCache
from sealed_gitops.render.committed import CommittedFiles
from sealed_gitops.render.decrypt import DecryptionKeys, RenderedObject, decrypt_documents
from sealed_gitops.render.loader import DEFAULT_LIMITS, Limits
from sealed_gitops.render.placement import Placement
from sealed_gitops.render.substitute import Substitution

if TYPE_CHECKING:
    # Only a type here: importing the source package pulls in GitPython, which a local
    # ``sealed-gitops build`` never uses, and a person waits for every import at start-up.
    from sealed_gitops.source import Artifact

__all__ = ["BuildResult", "FailurePolicy", "build"]


class FailurePolicy(enum.Enum):
    """What a failing document does to the revision."""

    #: any failure fails the revision; nothing of it is used (the default)
    ATOMIC = "atomic"
    #: failing documents are left out and listed; the rest goes on
    ISOLATE = "isolate"

    @classmethod
    def parse(cls, text: str) -> FailurePolicy:
        return cls(text.strip().lower())


@dataclass
class BuildResult:
    """The objects a revision asks for, in apply order, and what was left out (isolate only)."""

    objects: list[RenderedObject]
    failures: list[Failure] = field(default_factory=list)
    artifact: Artifact | None = None

    @property
    def complete(self) -> bool:
        """True when every document rendered and decrypted: the precondition for pruning."""
        return not self.failures

    def ids(self) -> list[ObjectId]:
        return [obj.id for obj in self.objects]


def build(
    *,
    root: Path,
    path: str = ".",
    keys: DecryptionKeys,
    policy: FailurePolicy = FailurePolicy.ATOMIC,
    allow_plain_secrets: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    artifact: Artifact | None = None,
    cache: ContentCache | None = None,
    placement: Placement | None = None,
    substitution: Substitution | None = None,
) -> BuildResult:
    """Render and decrypt the manifests under ``root/path``: the pipeline without the cluster.

    ``cache`` (the operator keeps one per Sync and keyring) makes unchanged files free.
    ``placement`` (a Sync's target and own namespace) says where objects land, so an encrypted
    one is opened only for the namespace it will really be written to. ``substitution`` (a
    Sync's ``postBuild`` variables) is applied to plain documents before decryption and to
    decrypted objects after it (see :mod:`sealed_gitops.render.substitute`).
    """
    failures: list[Failure] | None = [] if policy is FailurePolicy.ISOLATE else None
    # every file this build reads, read and parsed once for both phases (render/committed.py)
    files = CommittedFiles(root.resolve(), limits=limits)

    try:
        # Phase 1, render: files or a kustomize build -> documents, still encrypted.
        documents: list[Document] = render(
            root,
            path,
            failures=failures,
            limits=limits,
            cache=cache,
            sops_keys=keys.sops,
            sops_binding=keys.sops_binding,
            files=files,
        )

        if substitution is not None:
            # Phase 1b, postBuild on plain documents: their ids may hold variables.
            documents = substitution.documents(documents, failures=failures)

        # Phase 2, decrypt: documents -> objects; plaintext exists from here on, in memory only.
        objects = decrypt_documents(
            documents,
            root=root,
            keys=keys,
            allow_plain_secrets=allow_plain_secrets,
            failures=failures,
            cache=cache,
            placement=placement,
            files=files,
        )
        if substitution is not None:
            # Phase 2b, postBuild on decrypted objects: values from Secrets only into Secrets.
            objects = substitution.objects(objects, failures=failures)
    finally:
        if cache is not None:
            cache.sweep()  # what this build did not read is gone: one repository's worth at most

    # Phase 3, order: Namespaces and CRDs first, then cluster-scoped, then namespaced objects.
    ordered = sorted(objects, key=lambda obj: order_key(obj.id))
    return BuildResult(objects=ordered, failures=failures or [], artifact=artifact)
