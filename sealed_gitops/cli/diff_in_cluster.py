"""``diff --sync NS/NAME --in-cluster``: ask the operator, which has the keys, for the diff.

Why this module exists: the operator can compare what the published revision would apply with
the live objects value by value, and nobody else can when the files are encrypted only for the
cluster (issue 15, Must 6). The request works as ``reconcile``'s does: an annotation on the
Sync (``patch`` on Syncs is all it needs, no read of any Secret), answered in
``status.diff`` with the same value in ``requestedAt`` (:mod:`sealed_gitops.operator.diff_request`).
The answer holds key names and verdicts only; names are printed as identities (printable,
bounded), since a tenant chose them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sealed_gitops.cli.conventions import format_duration, split_ref
from sealed_gitops.cli.preview import CipherDifference
from sealed_gitops.errors import ClusterError, ConfigError
from sealed_gitops.plan import ObjectId
from sealed_gitops.plan.cipher_diff import KeyDiff
from sealed_gitops.redact import Identity, compose

if TYPE_CHECKING:
    from sealed_gitops.cluster import KubeClient

__all__ = ["request_cluster_diff"]

#: How often the answer is looked for, in seconds.
POLL = 0.25


def _request(client: KubeClient, namespace: str, name: str) -> str:
    from sealed_gitops.operator.resources import DIFF_REQUESTED, annotate_now, get_object

    if get_object(client, "Sync", namespace, name) is None:
        raise ConfigError(f"Sync {namespace}/{name} not found")
    # As reconcile asks (resources.request_reconcile): a new time, so the annotation changes.
    return annotate_now(client, "Sync", namespace, name, annotation=DIFF_REQUESTED)


def _wait(client: KubeClient, namespace: str, name: str, *, token: str,
          timeout: float) -> dict[str, Any] | None:  # fmt: skip
    from sealed_gitops.operator.resources import get_object

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sync = get_object(client, "Sync", namespace, name)
        if sync is None:
            raise ConfigError(f"Sync {namespace}/{name} was deleted while waiting")
        answer = (sync.get("status") or {}).get("diff") or {}
        if answer.get("requestedAt") == token:
            return dict(answer)
        time.sleep(POLL)
    return None


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _difference(entry: dict[str, Any]) -> CipherDifference:
    oid = ObjectId(
        group=str(entry.get("group") or ""),
        kind=str(entry.get("kind") or ""),
        namespace=str(entry.get("namespace") or ""),
        name=str(entry.get("name") or ""),
    )
    keys = entry.get("keys") or {}
    verdicts = KeyDiff(
        added=_strings(keys.get("added")),
        changed=_strings(keys.get("changed")),
        removed=_strings(keys.get("removed")),
    )
    label = str(compose(Identity(oid.describe())))
    action = str(entry.get("action") or "update")
    secret = oid.is_core_secret
    return CipherDifference(label, oid, action, verdicts, secret or bool(keys), "")


def request_cluster_diff(
    *, kubeconfig: str | Path | None, context: str | None, sync_text: str, timeout: float
) -> list[CipherDifference]:
    """Ask the Sync's operator for its diff and wait up to ``timeout`` seconds for it."""
    from sealed_gitops.cluster import connect

    namespace, name = split_ref(sync_text, what="--sync")
    client = connect(kubeconfig, context=context)
    try:
        token = _request(client, namespace, name)
        click.echo(f"◎ asked the operator for the diff of Sync {namespace}/{name}", err=True)
        answer = _wait(client, namespace, name, token=token, timeout=timeout)
    finally:
        client.close()
    if answer is None:
        raise ClusterError(
            f"no answer from the operator within {format_duration(timeout)}: is it running, "
            f"and does its shard own Sync {namespace}/{name}?"
        )
    if answer.get("error"):
        raise ClusterError(f"the operator could not compute the diff: {answer['error']}")
    revision = str(compose(Identity(str(answer.get("revision") or "-"))))
    click.echo(f"  at revision {revision}", err=True)
    if answer.get("truncated"):
        click.echo(
            "  (the answer was cut to its size bounds: more objects or keys differ)", err=True
        )
    return [_difference(dict(e)) for e in answer.get("objects") or () if isinstance(e, dict)]
