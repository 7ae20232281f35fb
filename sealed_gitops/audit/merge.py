"""Three-way merge of SOPS files, value by value, with the MAC recomputed.

Why: git merges text, and every edit of a SOPS file rewrites ``mac`` and ``lastmodified``, so two
branches that changed different values of one file always conflict on those two lines, and even a
hand-resolved result is refused because its MAC no longer matches. Here the three versions are
decrypted in memory, merged key by key (a value changed on one side only is taken from that side;
changed on both sides to different values is a conflict naming the key path, never a value), and
the result is encrypted with the data key of the side whose key wrapping is current. The stash of
each side that shares that data key keeps every untouched value's ciphertext byte-identical, so
the merge result differs from each parent only where the other parent changed something; the MAC
is new, which is why a key is needed. Without a key the merge fails with a clear message and git
reports an ordinary conflict.
"""

from __future__ import annotations

from typing import Any

from sealed_gitops.audit.snapshot import format_key, keys_digest
from sealed_gitops.crypto.sops import (
    Decrypted,
    TreeBranch,
    Unwrapper,
    decrypt_document,
    stored_format,
)
from sealed_gitops.crypto.sops.document import encrypt_tree
from sealed_gitops.crypto.sops.values import Comment
from sealed_gitops.errors import AuditError

__all__ = ["merge_sops"]


class _Missing:
    """A key absent on one side (distinct from a ``null`` value)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING = _Missing()


def _conflict(path: tuple[str | int, ...], why: str) -> AuditError:
    where = format_key(path) or "the document list"
    return AuditError(f"both branches changed {where} {why}")


def _merge_value(base: Any, ours: Any, theirs: Any, path: tuple[str | int, ...]) -> Any:
    if ours == theirs:
        return ours
    if ours == base:
        return theirs
    if theirs == base:
        return ours
    if isinstance(ours, TreeBranch) and isinstance(theirs, TreeBranch):
        return _merge_branch(
            base if isinstance(base, TreeBranch) else TreeBranch(), ours, theirs, path
        )
    raise _conflict(path, "differently")


def _merge_branch(
    base: TreeBranch, ours: TreeBranch, theirs: TreeBranch, path: tuple[str | int, ...]
) -> TreeBranch:
    out = TreeBranch()
    for key, value in ours:
        if isinstance(key, Comment):
            out.append((key, value))
            continue
        merged = _merge_value(base.get(key, MISSING), value, theirs.get(key, MISSING), (*path, key))
        if merged is not MISSING:
            out.append((key, merged))
    ours_keys = set(ours.keys_in_order())
    for key, value in theirs:
        if isinstance(key, Comment) or key in ours_keys:
            continue
        merged = _merge_value(base.get(key, MISSING), MISSING, value, (*path, key))
        if merged is not MISSING:
            out.append((key, merged))
    return out


def _merge_documents(
    base: list[TreeBranch], ours: list[TreeBranch], theirs: list[TreeBranch]
) -> list[TreeBranch]:
    if len(ours) == len(theirs) and len(base) in (0, len(ours)):
        bases = base or [TreeBranch() for _ in ours]
        return [_merge_value(b, o, t, ()) for b, o, t in zip(bases, ours, theirs, strict=True)]
    merged = _merge_value(base, ours, theirs, ())
    return list(merged)


def merge_sops(
    base: bytes | None, ours: bytes, theirs: bytes, *, unwrapper: Unwrapper, file: str
) -> bytes:
    """The merged file; raises :class:`AuditError` on a conflict or when no key opens a side.

    Each side is read in the store sops reads it with (a binary-store file under any name sops
    does not know keeps its JSON envelope), so the merge writes back what sops opens."""

    def opened(data: bytes) -> Decrypted:
        fmt = stored_format(data, file=file)
        return decrypt_document(data, unwrapper=unwrapper, file=file, fmt=fmt, keep_stash=True)

    mine, other = opened(ours), opened(theirs)
    origin: Decrypted | None = opened(base) if base else None
    wrap_base = keys_digest(origin.metadata) if origin else None
    wrap_ours, wrap_theirs = keys_digest(mine.metadata), keys_digest(other.metadata)
    if wrap_theirs in (wrap_ours, wrap_base):
        chosen = mine
    elif wrap_ours == wrap_base:
        chosen = other
    else:
        raise AuditError("both branches changed the file's recipients or data key", file=file)
    if mine.fmt != other.fmt:
        raise AuditError("the branches use different formats", file=file)
    try:
        merged = _merge_documents(origin.branches if origin else [], mine.branches, other.branches)
    except AuditError as exc:
        raise exc.with_file(file) from None
    stash = {}
    for side in (other, mine):  # ours last: its ciphertext wins where both have one
        if side.data_key == chosen.data_key:
            stash.update(side.stash)
    return encrypt_tree(
        merged,
        fmt=chosen.fmt,
        metadata=chosen.metadata,
        data_key=chosen.data_key,
        stash=stash,
        file=file,
    )
