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
  object gets its own outcome, and errors never carry a value (see ``apierrors.py``);
* honesty: an object another Sync owns is not written (``conflicts.py``), and a write that only
  restores what a live edit changed is marked as drift and keeps the commit that set the values
  (``drift.py``). The outcome types are in ``outcomes.py``.

We always apply with server-side apply (``PATCH`` as ``application/apply-patch+yaml``), field
manager ``sealed-gitops`` and ``force=true``: the fields we send are ours even if someone edited
them, and there is never a ``last-applied-configuration`` annotation holding a copy of a Secret.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sealed_gitops.cluster.client import APPLY_PATCH, KubeClient
from sealed_gitops.cluster.conflicts import Claims, find_conflicts
from sealed_gitops.cluster.discovery import Discovery
from sealed_gitops.cluster.drift import find_drift
from sealed_gitops.cluster.handover import release_sealed_secret_owner
from sealed_gitops.cluster.live import read_live
from sealed_gitops.cluster.outcomes import ApplyResult, ObjectOutcome, Policy, Result
from sealed_gitops.cluster.ownership import FIELD_MANAGER, SyncRef, is_core_secret, with_commit
from sealed_gitops.errors import ClusterError
from sealed_gitops.plan.changes import Change, ObjectChange, digest, plan_changes
from sealed_gitops.plan.ids import ObjectId, split_api_version
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
    #: per id, the repository path the object came from (for messages that name the file)
    sources: Mapping[ObjectId, str] = field(default_factory=dict)

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
        sources=dict(sources or {}),
    )


def _established(crd: Mapping[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def _served(discovery: Discovery, crd: Mapping[str, Any]) -> bool:
    """Whether discovery lists the CRD's kind in each served version. A real kube-apiserver
    sets Established a moment before its discovery document lists the new resource; an object
    of the kind applied in between failed with "the server does not serve kind" (seen on the
    control-plane tier of tests/cluster/test_prune.py)."""
    spec = crd.get("spec") or {}
    group, kind = str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", ""))
    for version in spec.get("versions") or ():
        if not isinstance(version, Mapping) or not version.get("served", True):
            continue
        api_version = f"{group}/{version.get('name')}"
        discovery.invalidate(api_version)
        if discovery.find(api_version, kind) is None:
            return False
    return True


def wait_established(
    client: KubeClient, discovery: Discovery, name: str, *, timeout: float
) -> None:
    """Wait until the CRD ``name`` is Established and discovery serves its kind; ClusterError
    after ``timeout`` seconds."""
    resource = discovery.resource(f"{_CRD_GROUP}/v1", "CustomResourceDefinition")
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        crd = client.request(
            "GET", resource.path(name=name), action="read", what=f"CustomResourceDefinition {name}"
        )
        if _established(crd) and _served(discovery, crd):
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


@functools.lru_cache(maxsize=256)
def _version(api_version: str) -> str:
    """The version part of an apiVersion (a Sync has a few distinct ones and many objects)."""
    return split_api_version(api_version)[1]


def _plan(
    desired: Desired,
    live: Mapping[ObjectId, Mapping[str, Any]],
    *,
    recorded: Mapping[ObjectId, tuple[str, str]],
    digest_key: bytes | None,
) -> tuple[dict[ObjectId, ObjectChange], int]:
    """The change of every object, and how many needed the field comparison (it runs only
    where the record differs).

    An object whose recorded (digest, resourceVersion) still matches is unchanged without
    looking further (the cheap path that keeps a no-op reconcile fast); the others go through
    :func:`sealed_gitops.plan.plan_changes`, which compares fields and Secret keys.
    """
    changes: dict[ObjectId, ObjectChange] = {}
    rest = []
    marks, versions = desired.marks, desired.versions
    for _, items in desired.stages:
        for oid, obj in items:
            current = live.get(oid)
            record = recorded.get(oid)
            if (
                current is not None
                and record is not None
                and record[0] == marks[oid]
                and record[1] == _rv(current)
            ):
                changes[oid] = ObjectChange(oid, Change.UNCHANGED, _version(versions[oid]))
            else:
                rest.append(obj)
    plan = plan_changes(rest, live, digest_key=digest_key)
    changes.update((c.id, c) for c in plan.create + plan.update + plan.unchanged)
    return changes, len(rest)


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
    if is_core_secret(obj):
        # a Secret taken over from the Sealed Secrets controller must not stay its child
        released = release_sealed_secret_owner(client, resource, answer, oid)
        if released is not None:
            return released
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
    set_by: Mapping[ObjectId, tuple[str | None, str | None]] | None = None,
    claims: Claims | None = None,
    policy: Policy = Policy.ATOMIC,
    crd_timeout: float = 60.0,
    digest_key: bytes | None = None,
    discovery: Discovery | None = None,
) -> ApplyResult:
    """Apply ``objects`` for ``sync`` and return one outcome per object, in apply order.

    - ``objects``: the desired manifests, or a :class:`Desired` from :func:`prepare_desired`
      with the same ``sync``, ``sources`` and ``digest_key`` (then those two are not used).
    - ``revision``: written on Secrets as the commit annotation (``main@sha1:<id>``), and
      ``author`` (``Name <email>``) as the commit-author annotation, when Git changed them.
    - ``recorded``: the previous result's :attr:`ApplyResult.records`; an object whose digest
      and live resourceVersion both match is not written, and a write of an object whose digest
      matches is a drift correction (:mod:`.drift`): it keeps the commit that set the values
      (``set_by``, the previous result's :attr:`ApplyResult.set_by`, else the live annotation).
    - ``claims``: whether another Sync still claims an object it owns (:mod:`.conflicts`); such
      an object fails with OwnershipConflict and is not written.
    - ``discovery``: pass a long-lived one to keep its cache between reconciles.

    API failures become FAILED outcomes, never exceptions: an object that cannot be read or
    written fails on its own; with ``Policy.ATOMIC`` everything after the first failure (and
    everything, when a read failed or an object is another Sync's) is SKIPPED, with
    ``Policy.ISOLATE`` the rest goes on. Discovery failures (the API server is down) do raise
    ClusterError: nothing can be planned.
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
    recorded = recorded or {}
    failures: dict[ObjectId, ClusterError] = {}
    live = read_live(client, discovery, versions, sync=sync, failures=failures)
    # Known before anything is written, like an unreadable object: under Atomic, nothing is.
    failures.update(find_conflicts(live, desired.ids, sync=sync, claims=claims))
    changes, rest_planned = _plan(desired, live, recorded=recorded, digest_key=digest_key)

    outcomes: list[ObjectOutcome] = []
    stopped = bool(failures) and policy is Policy.ATOMIC
    for _, items in desired.stages:
        written_crds: list[tuple[int, str]] = []
        for oid, obj in items:
            version = _version(versions[oid])
            change = changes[oid]
            mark = desired.marks[oid]
            if oid in failures:
                outcomes.append(
                    ObjectOutcome(oid, Result.FAILED, version, change=change, error=failures[oid])
                )
                continue
            if stopped:
                outcomes.append(ObjectOutcome(oid, Result.SKIPPED, version, change=change))
                continue
            if change.change is Change.UNCHANGED:
                rv = _rv(live[oid])
                outcomes.append(ObjectOutcome(oid, Result.UNCHANGED, version, mark, rv, change))
                continue
            drift = find_drift(
                obj,
                live.get(oid),
                mark=mark,
                recorded=recorded.get(oid),
                set_by=(set_by or {}).get(oid),
            )
            commit, by = (drift.commit, drift.author) if drift else (revision, author)
            try:
                rv = _write(client, discovery, obj, oid, revision=commit, author=by)
            except ClusterError as exc:
                outcomes.append(
                    ObjectOutcome(oid, Result.FAILED, version, change=change, error=exc)
                )
                stopped = policy is Policy.ATOMIC
                continue
            result = Result.CREATED if change.change is Change.CREATE else Result.CONFIGURED
            secret = is_core_secret(obj) and bool(commit)
            outcomes.append(
                ObjectOutcome(
                    oid,
                    result,
                    version,
                    mark,
                    rv,
                    change,
                    drift=drift,
                    # a Secret's commit annotation as now written: who set its values
                    commit=commit if secret else None,
                    author=by if secret else None,
                )
            )
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
    # Unchanged by record, every one, and nothing failed: the records given are the records now.
    quiet = (
        not failures and not rest_planned and all(o.result is Result.UNCHANGED for o in outcomes)
    )
    return ApplyResult(tuple(outcomes), quiet=quiet)
