"""``diff`` for a person without the keys: compare ciphertexts, not values.

Why this module exists: ``diff`` decrypts the desired objects and compares them with the live
ones, which nobody but the cluster can do for files encrypted only for it (issue 15, Must 6).
Two comparisons need no key, and each is honest about what it can know:

* ``diff --base REV``: the working tree's objects against the same path at Git revision REV.
  Plain objects as a normal diff; encrypted ones key by key from their ciphertexts
  (:mod:`sealed_gitops.plan.cipher_diff`).
* ``diff --sync NS/NAME --no-decrypt`` (and ``diff --sync`` when a key is missing): against
  what the Sync applied. Plain objects are compared with their live versions as before;
  encrypted ones with the revision the Sync last applied (``status.lastAppliedRevision``,
  checked out of the local repository or fetched from ``--repo``), and the Sync's inventory
  says which objects are new and which would be pruned. Live Secrets are never read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sealed_gitops.cli.preview import (
    CipherDifference,
    checkout,
    cipher_differences,
    commit_of_revision,
    describe_failures,
    refuse_if_fatal,
    render_undecrypted,
)
from sealed_gitops.errors import ConfigError
from sealed_gitops.plan import Inventory, ObjectId
from sealed_gitops.plan.cipher_diff import KeyDiff, compare
from sealed_gitops.plan.diff import object_diff
from sealed_gitops.redact import redact
from sealed_gitops.render import Failure
from sealed_gitops.render.placement import Placement
from sealed_gitops.render.undecrypted import UndecryptedObject

if TYPE_CHECKING:
    from sealed_gitops.cluster import KubeClient, SyncRef

__all__ = ["git_differences", "sync_differences"]


def _render(root: Path, sub: str, *, placement: Placement, allow_plain_secrets: bool,
            side: str) -> list[UndecryptedObject]:  # fmt: skip
    failures: list[Failure] = []
    objects = render_undecrypted(
        root, sub, placement=placement, allow_plain_secrets=allow_plain_secrets, failures=failures
    )
    lines, _ = describe_failures(failures)
    for line in lines:
        click.echo(redact(f"{side}: {line}"), err=True)
    refuse_if_fatal(failures)
    return objects


def git_differences(
    *, root: Path, sub: str, base: str, placement: Placement, allow_plain_secrets: bool
) -> list[CipherDifference]:
    """The working tree's ``sub`` against the same path at ``base``; no key, no cluster."""
    head = _render(root, sub, placement=placement, allow_plain_secrets=allow_plain_secrets,
                   side="working tree")  # fmt: skip
    with checkout(root, base) as base_root:
        if not (base_root / sub).exists():
            old: list[UndecryptedObject] = []  # the path is new since base: everything is added
        else:
            old = _render(base_root, sub, placement=placement,
                          allow_plain_secrets=allow_plain_secrets, side=base)  # fmt: skip
    return cipher_differences(old, head)


def _read_sync(client: KubeClient, sync: SyncRef) -> dict[str, Any]:
    from sealed_gitops.operator import resources

    found = resources.get_object(client, "Sync", sync.namespace, sync.name)
    if found is None:
        raise ConfigError(f"Sync {sync.namespace}/{sync.name} not found")
    return found


@contextmanager
def _applied_tree(
    root: Path, revision: str | None, *, repo_url: str | None
) -> Iterator[Path | None]:
    """The tree of the revision the Sync last applied (None when it applied none yet)."""
    if not revision:
        yield None
        return
    commit = commit_of_revision(revision)
    if repo_url:
        from sealed_gitops.source import Ref, fetch

        yield fetch(repo_url, Ref(commit=commit)).path
        return
    with checkout(root, commit) as tree:
        yield tree


def sync_differences(
    *,
    client: KubeClient,
    sync: SyncRef,
    root: Path,
    sub: str,
    repo_url: str | None,
    placement: Placement,
    allow_plain_secrets: bool,
) -> list[CipherDifference]:
    """What applying ``sub`` under ``sync`` would change, without a key (see the module doc)."""
    from sealed_gitops.cluster import Discovery, read_live

    found = _read_sync(client, sync)
    status = found.get("status") or {}
    inventory = Inventory.from_status(status.get("inventory"))
    owned = {entry.id for entry in inventory.entries}
    head = _render(root, sub, placement=placement, allow_plain_secrets=allow_plain_secrets,
                   side="working tree")  # fmt: skip
    applied_revision = status.get("lastAppliedRevision")
    with _applied_tree(root, applied_revision, repo_url=repo_url) as tree:
        base = (
            _render(
                tree,
                sub,
                placement=placement,
                allow_plain_secrets=allow_plain_secrets,
                side=str(applied_revision),
            )
            if tree is not None and (tree / sub).exists()
            else []
        )
    encrypted = [o for o in head if o.encrypted]
    plain = [o for o in head if not o.encrypted and o.id is not None]
    found_rows: list[CipherDifference] = []
    # Encrypted objects: against the applied revision, by ciphertext; new unless inventoried.
    for difference in cipher_differences([o for o in base if o.encrypted], encrypted):
        if difference.action == "prune":
            continue  # what is pruned is the inventory's to say, below
        found_rows.append(_by_inventory(difference, owned))
    # Plain objects: against their live versions, as the keyed diff does.
    desired = {o.id: sync.prepare(o.data, source_path=o.file) for o in plain if o.id is not None}
    versions = {oid: str(obj.get("apiVersion", "")) for oid, obj in desired.items()}
    ids = {o.id for o in head if o.id is not None}
    gone = [e for e in inventory.entries if e.id not in ids]
    for entry in gone:
        if not entry.id.is_core_secret:  # a Secret's values are never read: the inventory says
            group = entry.id.group
            versions[entry.id] = f"{group}/{entry.version}" if group else entry.version
    live = read_live(client, Discovery(client), versions, sync=sync)
    for oid in sorted(desired):
        text = object_diff(desired[oid], live.get(oid))
        if text:
            action = "update" if oid in live else "create"
            found_rows.append(CipherDifference(oid.describe(), oid, action, KeyDiff(), False, text))
    base_by_id = {o.id: o for o in base if o.id is not None}
    for entry in gone:
        if entry.id.is_core_secret:
            prior = base_by_id.get(entry.id)
            keys = compare(prior.cipher, None) if prior is not None else KeyDiff()
            found_rows.append(
                CipherDifference(entry.id.describe(), entry.id, "prune", keys, True, "")
            )
        elif entry.id in live:
            text = object_diff(None, live[entry.id])
            found_rows.append(
                CipherDifference(entry.id.describe(), entry.id, "prune", KeyDiff(), False, text)
            )
    return found_rows


def _by_inventory(difference: CipherDifference, owned: set[ObjectId]) -> CipherDifference:
    """Created or updated as the Sync's inventory says, not as the applied revision's files say
    (an object inventoried from another path is not new, though its live values are unknown)."""
    if difference.id is None:
        return difference
    action = "update" if difference.id in owned else "create"
    return dataclasses.replace(difference, action=action)
