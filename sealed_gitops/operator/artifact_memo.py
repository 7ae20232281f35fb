"""The checkout a Sync used last time, reused while its Repository publishes the same commit.

Why: a no-op reconcile asked the Git cache for the published commit every time, and each ask
started three ``git`` processes (``cat-file`` to see the commit is there, ``cat-file`` for its
metadata, and one reading the worktree's HEAD): about half the operator's CPU for a no-op
reconcile in ``benchmarks/scale.py`` (100 Syncs, every interval). A commit id names its content,
so the answer cannot change while the commit, the URL, the credentials and the cache are the
same; the memo is keyed by exactly those, and a hit is served only while the checkout is still
on disk at that commit (two file reads, no process): the cache prunes old worktrees.

The credentials are part of the key, as they are of the Git cache's own entries (invariant 6):
the same Sync, with the same Secret's material, already proved it may read this commit.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sealed_gitops.source import Artifact

__all__ = ["Remembered", "checkout_head", "remembered_artifact"]


def checkout_head(path: Path) -> str | None:
    """The commit a (linked, detached) worktree has checked out, read from its files; None when
    it is gone or is not one (then the caller asks the Git cache, which knows better)."""
    try:
        pointer = (path / ".git").read_text(encoding="utf-8").strip()
        if not pointer.startswith("gitdir: "):
            return None
        git_dir = Path(pointer.removeprefix("gitdir: "))
        if not git_dir.is_absolute():
            git_dir = path / git_dir
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    # A detached HEAD is the bare commit id; "ref: ..." means a branch: not ours to trust.
    return head if len(head) in (40, 64) and all(c in "0123456789abcdef" for c in head) else None


#: what a Sync keeps: (everything the fetch depended on, the commit included; its artifact)
Remembered = tuple[tuple[object, ...], Artifact]


def remembered_artifact(
    held: Remembered | None,
    *,
    key: tuple[object, ...],
    commit: str,
    fetch: Callable[[], Artifact],
) -> Remembered:
    """The artifact ``held`` for the same ``key`` and ``commit``, or ``fetch()``'s, with its key.

    ``key``: everything the fetch depends on besides the commit (URL, credentials, cache
    directory, allowed schemes), compared with ``==``. Store the result back in the Sync's
    memory; its second item is the artifact.
    """
    full = (*key, commit)
    if held is not None:
        held_key, artifact = held
        if (
            held_key == full
            and artifact.commit == commit
            and checkout_head(artifact.path) == commit
        ):
            return held
    return full, fetch()
