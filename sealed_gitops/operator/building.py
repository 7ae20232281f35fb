"""The render and decrypt phases of a Sync, with what the Sync remembers from its last run.

Why: a no-op reconcile (same commit, same spec, same keys) must cost no parsing and no decryption,
and a one-file commit must cost one file. The last complete build is reused when nothing it was
built from changed (a commit id names the files exactly); otherwise the build runs with the Sync's
content cache, so only files whose bytes changed are parsed and decrypted (MAC checked) again.
Both are dropped when the keys change, and a build with failures is never reused, since its
failure may be transient (Vault unreachable). Plaintext stays in this process's memory only.

Where the objects land (``targetNamespace``, the Sync's namespace) is part of what a build is made
from: encrypted objects are opened only for the namespace they land in, so a build made for one
placement is never reused for another (issue 11, finding 2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sealed_gitops.operator.context import SyncMemory
from sealed_gitops.pipeline import BuildResult, FailurePolicy, build
from sealed_gitops.render.cache import DECRYPTED_SUPERSEDES_PARSED, ContentCache
from sealed_gitops.render.decrypt import DecryptionKeys
from sealed_gitops.render.placement import Placement
from sealed_gitops.render.substitute import Substitution, Variables
from sealed_gitops.source import Artifact

__all__ = ["build_for_sync"]


def _same_keys(memory: SyncMemory, keys: DecryptionKeys) -> bool:
    owners = (keys.sops, keys.sealing)
    return len(memory.cache_keys) == 2 and all(
        a is b for a, b in zip(memory.cache_keys, owners, strict=True)
    )


def build_for_sync(
    memory: SyncMemory,
    *,
    artifact: Artifact,
    spec: dict[str, Any],
    policy: FailurePolicy,
    keys: DecryptionKeys,
    namespace: str,
    target_namespace: str | None,
    variables: Variables | None = None,
    observe_decrypted: Callable[[int], None] | None = None,
) -> BuildResult:
    """Phases 2 and 3 (render, decrypt) for one Sync, reusing what is still valid.

    ``namespace`` is the Sync's own: where its namespaced objects without one land;
    ``target_namespace`` the checked ``spec.targetNamespace`` (:class:`~.specs.SyncSpec`);
    ``variables`` the Sync's ``postBuild`` variables (:mod:`.post_build`), part of what a build
    is made from like the placement. ``observe_decrypted(n)``: told how many SOPS files this
    call really opened (the operator's ``sealed_gitops_sops_files_decrypted`` metric).
    """
    if not _same_keys(memory, keys):
        memory.cache = ContentCache(superseded=DECRYPTED_SUPERSEDES_PARSED)
        memory.cache_keys = (keys.sops, keys.sealing)
        memory.built, memory.build_key = None, ()
    path = str(spec.get("path") or ".")
    allow_plain = bool(spec.get("allowPlainSecrets"))
    placement = Placement(
        target_namespace=target_namespace,
        default_namespace=namespace,
    )
    key: tuple[object, ...] = (
        artifact.commit,
        path,
        allow_plain,
        policy,
        placement,  # a build opened for one placement never serves another
        keys.sops_binding,
        variables,  # a changed ConfigMap value is a new build, without a new commit
    )
    if memory.built is not None and memory.build_key == key:
        return memory.built
    cache = memory.cache
    opened_before = cache.computed.get("decrypted", 0)
    built = build(
        root=artifact.path,
        path=path,
        keys=keys,
        policy=policy,
        allow_plain_secrets=allow_plain,
        artifact=artifact,
        cache=cache,
        placement=placement,
        substitution=None if variables is None else Substitution(variables),
    )
    if observe_decrypted is not None:
        observe_decrypted(cache.computed.get("decrypted", 0) - opened_before)
    memory.built, memory.build_key = (built, key) if built.complete else (None, ())
    return built
