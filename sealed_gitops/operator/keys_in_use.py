"""The KeyRing keys the revision a Sync decrypts needs, for ``status.decryptionKeys``.

Why: ``sealed-gitops keys retire`` decides from what the cluster applies (issue 15, Must 4), and
only the operator knows which revision each Sync decrypts with which KeyRing. For every reconcile
of a Sync that names a ``spec.decryption.keyRingRef``, this module scans the fetched revision for
the files the KeyRing's keys open (public metadata only: SOPS recipients, SealedSecret key-id
hints; :mod:`sealed_gitops.keys.dependencies`) and returns the record of
:mod:`sealed_gitops.keys.usage_record`, which ``sync_status`` writes next to the revision.

The whole revision is scanned, not only the Sync's ``path``: a kustomization may take resources
and generator sources from anywhere in the repository, and missing one would let a key be retired
that a Sync still needs. Counting a file no Sync applies errs the safe way (``--force`` overrides).

A scan is a pure function of the commit and the KeyRing's keys, so its result is kept per (commit,
keys): a no-op reconcile, or a second Sync of the same Repository, reads no file again. A failure
here never fails the reconcile: without a record, ``keys retire`` refuses, which is the safe side.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.keys.dependencies import FileKeys, KeyRef, scan_repository
from sealed_gitops.keys.usage_record import usage_record
from sealed_gitops.operator.context import OperatorContext
from sealed_gitops.operator.resources import get_object
from sealed_gitops.operator.specs import KeyRingRef

__all__ = ["MAX_SCANS", "keys_in_use"]

log = logging.getLogger(__name__)

#: Scans kept: one per (commit, key set) in use; a few dozen Repositories' worth.
MAX_SCANS = 64

_ScanKey = tuple[str, tuple[tuple[str, str, str], ...]]
_lock = threading.Lock()
_scans: OrderedDict[_ScanKey, list[FileKeys]] = OrderedDict()


def _refs(keyring: Mapping[str, Any]) -> list[KeyRef]:
    entries = (keyring.get("status") or {}).get("keys") or []
    return [KeyRef.from_status(e) for e in entries if isinstance(e, Mapping)]


def _scan(commit: str, root: Path, refs: list[KeyRef]) -> list[FileKeys]:
    key: _ScanKey = (commit, tuple((r.fingerprint, r.age_recipient, r.state) for r in refs))
    with _lock:
        hit = _scans.get(key)
        if hit is not None:
            _scans.move_to_end(key)
            return hit
    files = scan_repository(root, refs)
    with _lock:
        _scans[key] = files
        while len(_scans) > MAX_SCANS:
            _scans.popitem(last=False)
    return files


def keys_in_use(
    ctx: OperatorContext,
    *,
    keyring: KeyRingRef | None,
    commit: str,
    root: Path,
    revision: str,
) -> dict[str, Any] | None:
    """The ``status.decryptionKeys`` record of ``revision`` (checked out at ``root``) for the
    KeyRing ``keyring``; None for a Sync without a KeyRing, or when it cannot be known now."""
    if keyring is None:
        return None
    name = f"{keyring.namespace}/{keyring.name}"
    try:
        body = get_object(ctx.client, "KeyRing", keyring.namespace, keyring.name)
        if body is None:
            return None
        files = _scan(commit, root, _refs(body))
    except (SealedGitopsError, OSError) as exc:
        # Only a report for `keys retire`, which refuses without one: never fail the reconcile.
        log.info("KeyRing %s: cannot record the keys revision %s needs: %s", name, revision, exc)
        return None
    return usage_record(files, keyring=name, revision=revision)
