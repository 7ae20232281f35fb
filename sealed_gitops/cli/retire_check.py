"""Whether the cluster still needs a KeyRing key: what ``keys retire`` asks before retiring it.

Why from the cluster: the working tree is not what the cluster applies. In issue 15 a key was
retired after ``reencrypt`` had rewritten the files locally but before anyone committed and
pushed them; the published revision still needed the key, and the next reconcile failed. So the
answer comes from every Sync that decrypts with the KeyRing (``spec.decryption.keyRingRef``) and
the revision its Repository has published (``status.artifact``), through what the operator
recorded for that revision in the Sync's ``status.decryptionKeys``
(:mod:`sealed_gitops.keys.usage_record`).

When a Sync has not reconciled the published revision yet, nobody can know what that revision
needs: that blocks too, and says how to catch up (``reconcile --with-source``). Everything read
here (revisions, file paths) was written by someone else: it is shown printable and bounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sealed_gitops.errors import ApiForbidden, ApiNotFound, SealedGitopsError
from sealed_gitops.keys.usage_record import needs
from sealed_gitops.plan import names
from sealed_gitops.redact import Identity, compose

if TYPE_CHECKING:
    from sealed_gitops.cluster import KubeClient

__all__ = ["Blocker", "blockers"]

API = "/apis/sealed-gitops.io/v1alpha1"
#: File paths named per Sync in a refusal.
MAX_SHOWN = 10


@dataclass(frozen=True)
class Blocker:
    """One Sync that needs the key, or whose need cannot be known: ``message`` says which."""

    sync: str
    message: str
    #: files of the published revision that need the key (0 when it cannot be known)
    files: int = 0


def _shown(text: object) -> str:
    return compose(Identity(str(text)))


def _list_syncs(
    client: KubeClient, *, namespace: str, allowed: Iterable[str]
) -> tuple[list[dict[str, Any]], list[Blocker]]:
    """Every Sync in the cluster; without the right to list them all, those of the namespaces
    the KeyRing serves (its own and ``allowedNamespaces``), or a blocker when that is "*"."""
    try:
        answer = client.request("GET", f"{API}/syncs", action="list", what="Syncs")
        return list(answer.get("items") or []), []
    except ApiForbidden:
        pass
    spaces = [namespace, *(a for a in allowed if a != namespace)]
    if "*" in spaces:
        return [], [
            Blocker(
                "*",
                "the KeyRing serves every namespace (allowedNamespaces: *) and you may not list "
                "Syncs in all namespaces: cannot tell which Syncs use it",
            )
        ]
    items: list[dict[str, Any]] = []
    for space in spaces:
        names.namespace(space, field="KeyRing spec.allowedNamespaces")
        answer = client.request(
            "GET", f"{API}/namespaces/{space}/syncs", action="list", what=f"Syncs in {space}"
        )
        items += list(answer.get("items") or [])
    return items, []


def _uses(sync: Mapping[str, Any], *, namespace: str, name: str) -> bool:
    ref = ((sync.get("spec") or {}).get("decryption") or {}).get("keyRingRef") or {}
    own = (sync.get("metadata") or {}).get("namespace")
    return bool(ref) and ref.get("name") == name and (ref.get("namespace") or own) == namespace


def _published(client: KubeClient, namespace: str, repository: Any) -> str | None:
    """The revision the Sync's Repository has published, or None (none yet, or no Repository)."""
    name = names.object_name(repository, field="Sync spec.repositoryRef.name")
    try:
        repo = client.request(
            "GET",
            f"{API}/namespaces/{namespace}/repositories/{name}",
            action="get",
            what=f"Repository {namespace}/{name}",
        )
    except ApiNotFound:
        return None
    artifact = (repo.get("status") or {}).get("artifact") or {}
    revision = artifact.get("revision") or artifact.get("commit")
    return str(revision) if revision else None


def _record_for(status: Mapping[str, Any], revision: str, keyring: str) -> Mapping[str, Any] | None:
    recorded = status.get("decryptionKeys")
    if not isinstance(recorded, Mapping):
        return None
    for which in ("lastAttempted", "lastApplied"):
        record = recorded.get(which)
        if (
            isinstance(record, Mapping)
            and record.get("revision") == revision
            and record.get("keyRing") == keyring
        ):
            return record
    return None


def _check_sync(
    client: KubeClient,
    sync: Mapping[str, Any],
    *,
    keyring: str,
    fingerprint: str,
    usable: Iterable[str],
) -> Blocker | None:
    meta = sync.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    ref = f"{namespace}/{name}"
    shown = _shown(ref)
    spec = sync.get("spec") or {}
    repository = (spec.get("repositoryRef") or {}).get("name")
    try:
        names.namespace(namespace, field="Sync namespace")
        revision = _published(client, namespace, repository)
    except SealedGitopsError as exc:
        return Blocker(ref, f"Sync {shown}: cannot read its Repository: {exc}")
    if revision is None:
        return Blocker(
            ref,
            f"Sync {shown}: its Repository {_shown(repository)} has published no revision "
            "yet, so what it will decrypt is unknown",
        )
    record = _record_for(sync.get("status") or {}, revision, keyring)
    if record is None:
        catch_up = (
            f"resume it (sealed-gitops resume {shown})"
            if spec.get("suspend")
            else f"run sealed-gitops reconcile --with-source {shown} --wait"
        )
        return Blocker(
            ref,
            f"Sync {shown} has not yet reconciled revision {_shown(revision)} that its "
            f"Repository published, so the keys it needs are unknown: {catch_up}, then retry",
        )
    need = needs(record, fingerprint, usable=usable)
    if need.undecidable:
        return Blocker(
            ref,
            f"Sync {shown}: the keys recorded for revision {_shown(revision)} are incomplete "
            "(too many groups of files, or malformed)",
        )
    if not need.files:
        return None
    listed = need.examples[:MAX_SHOWN]
    paths = ", ".join(_shown(p) for p in listed)
    more = f" and {need.files - len(listed)} more" if need.files > len(listed) else ""
    return Blocker(
        ref,
        f"Sync {shown} at revision {_shown(revision)}: {need.files} file(s) can only be "
        f"decrypted with this key" + (f": {paths}{more}" if paths else ""),
        files=need.files,
    )


def blockers(
    client: KubeClient,
    keyring_body: Mapping[str, Any],
    *,
    fingerprint: str,
    usable: Iterable[str],
) -> tuple[list[Blocker], int]:
    """The Syncs that keep ``fingerprint`` of this KeyRing from being retired, and how many
    Syncs use the KeyRing at all. ``usable`` are the KeyRing's keys that decrypt now."""
    meta = keyring_body.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    allowed = [str(a) for a in (keyring_body.get("spec") or {}).get("allowedNamespaces") or ()]
    syncs, found = _list_syncs(client, namespace=namespace, allowed=allowed)
    using = [s for s in syncs if _uses(s, namespace=namespace, name=name)]
    usable = list(usable)
    for sync in using:
        blocker = _check_sync(
            client, sync, keyring=f"{namespace}/{name}", fingerprint=fingerprint, usable=usable
        )
        if blocker is not None:
            found.append(blocker)
    return found, len(using)
