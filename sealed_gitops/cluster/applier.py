"""Server-side apply of a set of desired objects, in stages, writing only what changed.

Why this module exists: this is the one place that writes the desired state into the cluster, and
the three things issue 6 asks of it are about order, economy and containment:

* order: Namespaces and CRDs first, waiting until each CRD is ``Established`` so the custom
  resources of the same apply can be served, then cluster-scoped and namespaced objects in the
  order :mod:`sealed_gitops.plan.order` gives;
* economy: an object whose digest and live ``resourceVersion`` are both what they were at the last
  apply is not written at all, so a no-op reconcile makes zero writes (the comparison itself is
  :func:`sealed_gitops.plan.plan_changes`);
* containment: with the ``Isolate`` policy one refused object does not stop the others; every
  object gets its own outcome, and errors never carry a value (see ``apierrors.py``).

We always apply with server-side apply (``PATCH`` as ``application/apply-patch+yaml``), field
manager ``sealed-gitops`` and ``force=true``: the fields we send are ours even if someone edited
them, and there is never a ``last-applied-configuration`` annotation holding a copy of a Secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sealed_gitops.cluster.client import APPLY_PATCH, KubeClient
from sealed_gitops.cluster.discovery import Discovery
from sealed_gitops.cluster.live import read_live
from sealed_gitops.cluster.ownership import FIELD_MANAGER, SyncRef, is_core_secret, with_commit
from sealed_gitops.errors import ClusterError
from sealed_gitops.plan.changes import Change, ObjectChange, digest, plan_changes
from sealed_gitops.plan.ids import Inventory, InventoryEntry, ObjectId, split_api_version
from sealed_gitops.plan.order import apply_stages

__all__ = [
    "ApplyResult",
    "Desired",
    "ObjectOutcome",
    "Policy",
    "Result",
    "apply",
    "prepare_desired",
    "wait_established",
]

_CRD_GROUP = "apiextensions.k8s.io"


class Policy(StrEnum):
    """What one failing object does to the rest (the Sync's ``failurePolicy``)."""

    ATOMIC = "Atomic"  # stop at the first failure; what follows is skipped
    ISOLATE = "Isolate"  # leave the failing object out, apply the rest


class Result(StrEnum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    SKIPPED = "skipped"  # not attempted: an earlier object failed under the Atomic policy


@dataclass(frozen=True)
class ObjectOutcome:
    """What happened to one desired object. ``change`` holds a Secret's changed key names."""

    id: ObjectId
    result: Result
    version: str
    digest: str = ""
    resource_version: str = ""
    change: ObjectChange | None = None
    error: ClusterError | None = None

    def describe(self) -> str:
        if self.error is not None:
            return f"{self.result.value} {self.id.describe()}: {self.error}"
        if self.change is not None and self.result in (Result.CREATED, Result.CONFIGURED):
            return self.change.describe()
        return f"{self.result.value} {self.id.describe()}"


@dataclass(frozen=True)
class ApplyResult:
    outcomes: tuple[ObjectOutcome, ...]

    def _count(self, *results: Result) -> int:
        return sum(1 for o in self.outcomes if o.result in results)

    @property
    def applied(self) -> int:
        return self._count(Result.CREATED, Result.CONFIGURED)

    @property
    def unchanged(self) -> int:
        return self._count(Result.UNCHANGED)

    @property
    def failed(self) -> int:
        return self._count(Result.FAILED)

    @property
    def skipped(self) -> int:
        return self._count(Result.SKIPPED)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped

    @property
    def errors(self) -> tuple[ObjectOutcome, ...]:
        return tuple(o for o in self.outcomes if o.result is Result.FAILED)

    @property
    def records(self) -> dict[ObjectId, tuple[str, str]]:
        """Per applied or unchanged id, (digest, resourceVersion): next call's ``recorded``."""
        return {
            o.id: (o.digest, o.resource_version)
            for o in self.outcomes
            if o.result in (Result.CREATED, Result.CONFIGURED, Result.UNCHANGED)
        }

    @property
    def inventory(self) -> Inventory:
        """The objects now live as desired (failed and skipped ones left out).

        With Isolate, merge the previous inventory's entries for the failed ids back in (see
        :meth:`sealed_gitops.plan.Inventory.merge`) so that they are not pruned.
        """
        return Inventory(
            tuple(
                InventoryEntry(o.id, o.version)
                for o in self.outcomes
                if o.result not in (Result.FAILED, Result.SKIPPED)
            )
        )

    def next_inventory(self, previous: Inventory) -> Inventory:
        """The inventory to record and prune against: what is live as desired, plus the
        previous entries of objects that failed or were skipped (so they are not pruned and
        their previously applied version stays, issue 6 item 7)."""
        held = {o.id for o in self.outcomes if o.result in (Result.FAILED, Result.SKIPPED)}
        if not held:
            return self.inventory  # the common case: one sort of the entries, not two
        return self.inventory.merge(previous.restrict(held))


@dataclass(frozen=True)
class Desired:
    """The objects of one apply as they are sent: ownership labels and annotations added, with
    their ids, API versions, digests, in apply stages.

    Why a value of its own: computing it costs about as much as the rest of a no-op reconcile
    (a copy, a digest and an id per object, the stage sort), and a caller that applies the same
    objects again (the operator, same commit and spec) keeps it instead of recomputing it.
    """

    #: per stage (``definitions``, ``cluster``, ``namespaced``), (id, prepared object) in order
    stages: tuple[tuple[str, tuple[tuple[ObjectId, Mapping[str, Any]], ...]], ...]
    versions: Mapping[ObjectId, str]
    marks: Mapping[ObjectId, str]

    @property
    def ids(self) -> list[ObjectId]:
        return [oid for _, items in self.stages for oid, _ in items]


def prepare_desired(
    objects: Sequence[Mapping[str, Any]],
    *,
    sync: SyncRef,
    sources: Mapping[ObjectId, str] | None = None,
    digest_key: bytes | None = None,
    discovery: Discovery,
) -> Desired:
    """Prepare ``objects`` for :func:`apply` (see :class:`Desired`)."""
    ids = [ObjectId.of(obj) for obj in objects]
    prepared = [
        sync.prepare(obj, source_path=(sources or {}).get(oid))
        for oid, obj in zip(ids, objects, strict=True)
    ]
    id_of = {id(obj): oid for oid, obj in zip(ids, prepared, strict=True)}
    stages = apply_stages(prepared, is_cluster_scoped=_scope_function(discovery, prepared))
    return Desired(
        stages=tuple((st.name, tuple((id_of[id(o)], o) for o in st.objects)) for st in stages),
        versions={oid: str(o.get("apiVersion", "")) for oid, o in zip(ids, prepared, strict=True)},
        marks={oid: digest(obj, key=digest_key) for oid, obj in zip(ids, prepared, strict=True)},
    )


def _established(crd: Mapping[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def wait_established(
    client: KubeClient, discovery: Discovery, name: str, *, timeout: float
) -> None:
    """Wait until the CRD ``name`` is Established; ClusterError after ``timeout`` seconds."""
    resource = discovery.resource(f"{_CRD_GROUP}/v1", "CustomResourceDefinition")
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        crd = client.request(
            "GET", resource.path(name=name), action="read", what=f"CustomResourceDefinition {name}"
        )
        if _established(crd):
            return
        if time.monotonic() >= deadline:
            raise ClusterError(
                f"CustomResourceDefinition {name} was not Established within {timeout:g}s"
            )
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def _scope_function(
    discovery: Discovery, objects: Sequence[Mapping[str, Any]]
) -> Callable[[ObjectId], bool]:
    """Cluster-scoped or not, for ordering: CRDs in this apply first, then discovery."""
    crd_scopes: dict[tuple[str, str], bool] = {}
    versions: dict[ObjectId, str] = {}
    for obj in objects:
        versions[ObjectId.of(obj)] = str(obj.get("apiVersion", ""))
        if obj.get("kind") == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            kind = str((spec.get("names") or {}).get("kind", ""))
            crd_scopes[(str(spec.get("group", "")), kind)] = spec.get("scope") == "Cluster"

    def is_cluster_scoped(oid: ObjectId) -> bool:
        if (oid.group, oid.kind) in crd_scopes:
            return crd_scopes[(oid.group, oid.kind)]
        resource = discovery.find(versions.get(oid, ""), oid.kind)
        return (not resource.namespaced) if resource is not None else not oid.namespace

    return is_cluster_scoped


def _rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _plan(
    desired: Desired,
    live: Mapping[ObjectId, Mapping[str, Any]],
    *,
    recorded: Mapping[ObjectId, tuple[str, str]],
    digest_key: bytes | None,
) -> dict[ObjectId, ObjectChange]:
    """The change of every object; the field comparison runs only where the record differs.

    An object whose recorded (digest, resourceVersion) still matches is unchanged without
    looking further (the cheap path that keeps a no-op reconcile fast); the others go through
    :func:`sealed_gitops.plan.plan_changes`, which compares fields and Secret keys.
    """
    changes: dict[ObjectId, ObjectChange] = {}
    rest = []
    for _, items in desired.stages:
        for oid, obj in items:
            current = live.get(oid)
            if current is not None and recorded.get(oid) == (desired.marks[oid], _rv(current)):
                version = split_api_version(desired.versions[oid])[1]
                changes[oid] = ObjectChange(oid, Change.UNCHANGED, version)
            else:
                rest.append(obj)
    plan = plan_changes(rest, live, digest_key=digest_key)
    changes.update((c.id, c) for c in plan.create + plan.update + plan.unchanged)
    return changes


def _write(
    client: KubeClient,
    discovery: Discovery,
    obj: Mapping[str, Any],
    oid: ObjectId,
    *,
    revision: str | None,
    author: str | None = None,
) -> str:
    """Server-side apply of one object; returns the new resourceVersion."""
    resource = discovery.for_object(obj)
    if resource.namespaced and not oid.namespace:
        raise ClusterError(f"{oid.describe()} is namespaced but has no namespace")
    answer = client.request(
        "PATCH",
        resource.path(namespace=oid.namespace, name=oid.name),
        query={"fieldManager": FIELD_MANAGER, "force": "true"},
        body=with_commit(obj, revision, author),
        content_type=APPLY_PATCH,
        action="apply",
        what=oid.describe(),
        sensitive=is_core_secret(obj),
    )
    return str((answer.get("metadata") or {}).get("resourceVersion", ""))


def apply(
    client: KubeClient,
    objects: Sequence[Mapping[str, Any]] | Desired,
    *,
    sync: SyncRef,
    revision: str | None = None,
    author: str | None = None,
    sources: Mapping[ObjectId, str] | None = None,
    recorded: Mapping[ObjectId, tuple[str, str]] | None = None,
    policy: Policy = Policy.ATOMIC,
    crd_timeout: float = 60.0,
    digest_key: bytes | None = None,
    discovery: Discovery | None = None,
) -> ApplyResult:
    """Apply ``objects`` for ``sync`` and return one outcome per object, in apply order.

    - ``objects``: the desired manifests, or a :class:`Desired` from :func:`prepare_desired`
      with the same ``sync``, ``sources`` and ``digest_key`` (then those two are not used).
    - ``revision``: written on Secrets as the commit annotation (``main@sha1:<id>``), and
      ``author`` (``Name <email>``) as the commit-author annotation.
    - ``sources``: per id, the repository path the object came from (annotated on Secrets).
    - ``recorded``: the previous result's :attr:`ApplyResult.records`; an object whose digest
      and live resourceVersion both match is not written.
    - ``discovery``: pass a long-lived one to keep its cache between reconciles.

    API failures become FAILED outcomes, never exceptions: an object that cannot be read or
    written fails on its own; with ``Policy.ATOMIC`` everything after the first failure (and
    everything, when a read failed) is SKIPPED, with ``Policy.ISOLATE`` the rest goes on.
    Discovery failures (the API server is down) do raise ClusterError: nothing can be planned.
    """
    discovery = discovery or Discovery(client)
    desired = (
        objects
        if isinstance(objects, Desired)
        else prepare_desired(
            objects, sync=sync, sources=sources, digest_key=digest_key, discovery=discovery
        )
    )
    versions = desired.versions
    unreadable: dict[ObjectId, ClusterError] = {}
    live = read_live(client, discovery, versions, sync=sync, failures=unreadable)
    changes = _plan(desired, live, recorded=recorded or {}, digest_key=digest_key)

    outcomes: list[ObjectOutcome] = []
    # Atomic: an object we cannot even read means nothing is written this time.
    stopped = bool(unreadable) and policy is Policy.ATOMIC
    for _, items in desired.stages:
        written_crds: list[tuple[int, str]] = []
        for oid, obj in items:
            version = split_api_version(versions[oid])[1]
            change = changes[oid]
            mark = desired.marks[oid]
            if oid in unreadable:
                outcomes.append(
                    ObjectOutcome(oid, Result.FAILED, version, change=change, error=unreadable[oid])
                )
                continue
            if stopped:
                outcomes.append(ObjectOutcome(oid, Result.SKIPPED, version, change=change))
                continue
            if change.change is Change.UNCHANGED:
                rv = _rv(live[oid])
                outcomes.append(ObjectOutcome(oid, Result.UNCHANGED, version, mark, rv, change))
                continue
            try:
                rv = _write(client, discovery, obj, oid, revision=revision, author=author)
            except ClusterError as exc:
                outcomes.append(
                    ObjectOutcome(oid, Result.FAILED, version, change=change, error=exc)
                )
                stopped = policy is Policy.ATOMIC
                continue
            result = Result.CREATED if change.change is Change.CREATE else Result.CONFIGURED
            outcomes.append(ObjectOutcome(oid, result, version, mark, rv, change))
            if oid.kind == "CustomResourceDefinition" and oid.group == _CRD_GROUP:
                written_crds.append((len(outcomes) - 1, oid.name))
        for index, name in written_crds:
            try:
                wait_established(client, discovery, name, timeout=crd_timeout)
            except ClusterError as exc:
                done = outcomes[index]
                outcomes[index] = ObjectOutcome(
                    done.id, Result.FAILED, done.version, change=done.change, error=exc
                )
                stopped = stopped or policy is Policy.ATOMIC
        if written_crds:
            # New kinds are served now; forget what discovery said before they existed.
            discovery.invalidate()
    return ApplyResult(tuple(outcomes))
