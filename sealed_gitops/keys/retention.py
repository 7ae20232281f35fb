"""How long a retired key's private parts are kept, and what stays visible once they are gone.

Why: a retired key is "kept for a grace period for backup, no longer used to decrypt" (issue 7).
Kept for ever, it is a private key that nothing needs and that anyone who reads the KeyRing's
Secrets (or its Vault path) can still take. ``spec.retiredKeyRetention`` (a Go-style duration,
default :data:`DEFAULT_RETENTION`) is that grace period, counted from the key's retirement time
(``ClusterKey.retired``, recorded when the operator retires it).

After the period the operator deletes the private parts (the key's Secret, or its entry in the
Vault KV record). The key's *public* record stays in ``status.keys`` with state ``deleted``
(:data:`DELETED`): fingerprint, age recipient, created, retired and deleted times, so ``keys
list``, ``keys fetch`` and audits can still name it. The certificate is not kept: the fingerprint
names the key, and the status should not grow by a certificate per rotation for ever.

Only keys in state ``retired`` with a retirement time are ever due: never the active key, never a
previous one. The decision is pure (this module); ``operator/keyring.py`` calls the store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sealed_gitops.keys.cluster_keys import (
    ClusterKey,
    KeyState,
    format_time,
    parse_time,
    public_status,
)

__all__ = [
    "DECRYPTING_STATES",
    "DEFAULT_RETENTION",
    "DELETED",
    "deleted_entry",
    "due_for_deletion",
    "status_keys",
]

#: ``spec.retiredKeyRetention`` when absent, in seconds (720h = 30 days: one default rotation
#: period, long enough to notice a premature retirement and restore the key from the cluster).
DEFAULT_RETENTION = 720 * 3600.0
#: State of a ``status.keys`` entry whose private parts were deleted.
DELETED = "deleted"
#: The ``status.keys`` states whose keys still decrypt (for callers reading the status).
DECRYPTING_STATES = frozenset({KeyState.ACTIVE.value, KeyState.PREVIOUS.value})


def due_for_deletion(
    keys: Iterable[ClusterKey], *, retention: float, now: dt.datetime
) -> tuple[list[ClusterKey], float | None]:
    """Retired keys retired at least ``retention`` seconds before ``now``, and the seconds until
    the next retired key becomes due (None: none waiting)."""
    due: list[ClusterKey] = []
    waiting: float | None = None
    for key in keys:
        if key.state is not KeyState.RETIRED or not key.retired:
            continue
        deadline = parse_time(key.retired) + dt.timedelta(seconds=retention)
        if deadline <= now:
            due.append(key)
        else:
            left = (deadline - now).total_seconds()
            waiting = left if waiting is None else min(waiting, left)
    return due, waiting


def deleted_entry(entry: Mapping[str, Any], *, now: dt.datetime) -> dict[str, str]:
    """The public record a ``status.keys`` entry becomes once its private parts are gone."""
    return {
        "fingerprint": str(entry.get("fingerprint") or ""),
        "state": DELETED,
        "created": str(entry.get("created") or ""),
        "retired": str(entry.get("retired") or ""),
        "deleted": str(entry.get("deleted") or format_time(now)),
        "ageRecipient": str(entry.get("ageRecipient") or ""),
    }


def status_keys(
    keys: Sequence[ClusterKey], previous: Iterable[Mapping[str, Any]], *, now: dt.datetime
) -> list[dict[str, str]]:
    """``status.keys``: the stored keys' public parts, then the keys whose private parts are gone.

    A key is shown as deleted when the last status listed it as ``retired`` or ``deleted`` and
    the store no longer holds it (the operator deleted it, or someone removed it by hand). A
    key the store holds again (restored from a backup) is shown from the store. Active and
    previous keys that vanish are left out, as before: that is a lost key, not one whose grace
    period ended.
    """
    present = {k.fingerprint for k in keys}
    gone = [
        deleted_entry(entry, now=now)
        for entry in previous
        if entry.get("state") in (KeyState.RETIRED.value, DELETED)
        and entry.get("fingerprint")
        and entry.get("fingerprint") not in present
    ]
    gone.sort(key=lambda e: (e["deleted"], e["fingerprint"]), reverse=True)
    return [*public_status(keys), *gone]
