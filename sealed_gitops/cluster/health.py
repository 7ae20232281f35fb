"""Is a live object healthy? kstatus's answer (Current, InProgress, Failed, ...) computed here.

Why this module exists: ``spec.wait`` and ``spec.healthChecks`` make a Sync Ready only once what
it applied is actually running, and Flux users expect the answer Flux gives, which is kstatus
(``sigs.k8s.io/cli-utils/pkg/kstatus``). Rather than a dependency on a Go library, the rules are
written down here from its documented behaviour: generic rules first (a deletion in progress, a
``status.observedGeneration`` behind ``metadata.generation``, the ``Reconciling`` / ``Stalled``
conditions), then a rule per built-in kind that has a status worth reading (Deployment,
StatefulSet, DaemonSet, Job, PersistentVolumeClaim, CustomResourceDefinition), then the generic
``Ready`` condition for everything else; an object without any of these is Current.

Two choices differ from plain kstatus and follow Flux: a Job is Current only once Complete (Flux
waits for Jobs to finish), and a custom resource's ``Ready`` condition counts (True: Current,
False or Unknown: InProgress).

:func:`compute` is pure (an object in, a :class:`Health` out) so every rule has a unit test;
:func:`read_health` reads the objects and computes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sealed_gitops.cluster.client import KubeClient
from sealed_gitops.cluster.discovery import Discovery
from sealed_gitops.cluster.live import read_live
from sealed_gitops.errors import ClusterError
from sealed_gitops.plan.ids import ObjectId

__all__ = ["Health", "Status", "compute", "read_health"]


class Status(StrEnum):
    CURRENT = "Current"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    NOT_FOUND = "NotFound"
    #: the object could not be read (403, 5xx): not healthy, and the reason is the error
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Health:
    status: Status
    message: str

    @property
    def current(self) -> bool:
        return self.status is Status.CURRENT


def _current(message: str) -> Health:
    return Health(Status.CURRENT, message)


def _progress(message: str) -> Health:
    return Health(Status.IN_PROGRESS, message)


def _map(value: object) -> Mapping[str, Any]:
    """``value`` if it is an object, else empty: a status is whatever its writer put there."""
    return value if isinstance(value, Mapping) else {}


def _int(block: Mapping[str, Any], key: str, default: int) -> int:
    value = block.get(key)
    # bool is an int in Python; a status field is never a bool, so treat one as absent
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _conditions(obj: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The object's ``status.conditions`` by type (the last of a type wins, as a list would)."""
    status = obj.get("status")
    found = status.get("conditions") if isinstance(status, Mapping) else None
    out: dict[str, Mapping[str, Any]] = {}
    for cond in found if isinstance(found, list) else ():
        if isinstance(cond, Mapping) and isinstance(cond.get("type"), str):
            out[cond["type"]] = cond
    return out


def _is_true(cond: Mapping[str, Any] | None) -> bool:
    return cond is not None and cond.get("status") == "True"


def _said(cond: Mapping[str, Any]) -> str:
    """A condition as a short phrase: its message, else its reason."""
    return str(cond.get("message") or cond.get("reason") or "")


def _generic(obj: Mapping[str, Any]) -> Health | None:
    """Rules that hold for every kind; None when they decide nothing."""
    meta = _map(obj.get("metadata"))
    if meta.get("deletionTimestamp"):
        return Health(Status.TERMINATING, "being deleted")
    found = obj.get("status")
    status: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    # A controller that reports observedGeneration has not seen the latest spec until it
    # matches; one that never reports it cannot be judged by it (kstatus skips the check).
    if isinstance(generation, int) and isinstance(observed, int) and observed != generation:
        return _progress(f"generation {generation} not observed yet (observed {observed})")
    conditions = _conditions(obj)
    if _is_true(conditions.get("Reconciling")):
        return _progress(_said(conditions["Reconciling"]) or "reconciling")
    if _is_true(conditions.get("Stalled")):
        return Health(Status.FAILED, _said(conditions["Stalled"]) or "stalled")
    return None


def _deployment(obj: Mapping[str, Any]) -> Health:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    # Without a progress deadline the controller never sets Progressing: do not wait for it.
    progressing = "progressDeadlineSeconds" not in spec
    available = False
    for type_, cond in _conditions(obj).items():
        if type_ == "Progressing":
            if cond.get("reason") == "ProgressDeadlineExceeded":
                return Health(Status.FAILED, _said(cond) or "progress deadline exceeded")
            if _is_true(cond) and cond.get("reason") == "NewReplicaSetAvailable":
                progressing = True
        elif type_ == "Available" and _is_true(cond):
            available = True
    wanted = _int(spec, "replicas", 1)  # the controller's default
    replicas = _int(status, "replicas", 0)
    updated = _int(status, "updatedReplicas", 0)
    ready = _int(status, "readyReplicas", 0)
    free = _int(status, "availableReplicas", 0)
    if wanted > replicas:
        return _progress(f"replicas: {replicas}/{wanted}")
    if wanted > updated:
        return _progress(f"updated: {updated}/{wanted}")
    if replicas > wanted:
        return _progress(f"pending termination: {replicas - wanted}")
    if updated > free:
        return _progress(f"available: {free}/{updated}")
    if wanted > ready:
        return _progress(f"ready: {ready}/{wanted}")
    if not progressing:
        return _progress("new ReplicaSet not available yet")
    if not available:
        return _progress("Deployment not Available")
    return _current(f"available, {replicas} replicas")


def _statefulset(obj: Mapping[str, Any]) -> Health:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    if _map(spec.get("updateStrategy")).get("type") == "OnDelete":
        return _current("OnDelete update strategy: updates are the user's")
    wanted = _int(spec, "replicas", 1)
    replicas = _int(status, "replicas", 0)
    ready = _int(status, "readyReplicas", 0)
    if wanted > replicas:
        return _progress(f"replicas: {replicas}/{wanted}")
    if wanted > ready:
        return _progress(f"ready: {ready}/{wanted}")
    if replicas > wanted:
        return _progress(f"pending termination: {replicas - wanted}")
    partition = _int(_map(_map(spec.get("updateStrategy")).get("rollingUpdate")), "partition", -1)
    updated = _int(status, "updatedReplicas", 0)
    if partition >= 0:
        if updated < wanted - partition:
            return _progress(f"updated: {updated}/{wanted - partition}")
        return _current(f"partitioned rollout complete, {updated} updated")
    if wanted > _int(status, "currentReplicas", 0):
        return _progress(f"current: {_int(status, 'currentReplicas', 0)}/{wanted}")
    if status.get("currentRevision") != status.get("updateRevision"):
        return _progress("update revision not current yet")
    return _current(f"{replicas} replicas")


def _daemonset(obj: Mapping[str, Any]) -> Health:
    meta, status = _map(obj.get("metadata")), _map(obj.get("status"))
    # The controller always writes these once it has seen the object: their absence means it
    # has not yet (kstatus is strict here, unlike the generic rule).
    if "generation" not in meta or "observedGeneration" not in status:
        return _progress("not observed by its controller yet")
    desired = _int(status, "desiredNumberScheduled", -1)
    if desired < 0:
        return _progress("desiredNumberScheduled not reported yet")
    for key, what in (
        ("currentNumberScheduled", "scheduled"),
        ("updatedNumberScheduled", "updated"),
        ("numberAvailable", "available"),
        ("numberReady", "ready"),
    ):
        have = _int(status, key, 0)
        if desired > have:
            return _progress(f"{what}: {have}/{desired}")
    return _current(f"{desired} scheduled")


def _job(obj: Mapping[str, Any]) -> Health:
    spec, status = _map(obj.get("spec")), _map(obj.get("status"))
    completions = _int(spec, "completions", _int(spec, "parallelism", 1))
    succeeded, failed = _int(status, "succeeded", 0), _int(status, "failed", 0)
    conditions = _conditions(obj)
    if _is_true(conditions.get("Failed")):
        why = _said(conditions["Failed"])
        return Health(Status.FAILED, f"failed ({failed} failed pods)" + (f": {why}" if why else ""))
    if _is_true(conditions.get("Complete")):
        return _current(f"complete, {succeeded}/{completions} succeeded")
    if _is_true(conditions.get("Suspended")):
        return _current("suspended")
    # Flux waits for a Job to finish (kstatus alone would call a started Job Current).
    active = _int(status, "active", 0)
    return _progress(f"not complete: {succeeded}/{completions} succeeded, {active} active")


def _pvc(obj: Mapping[str, Any]) -> Health:
    phase = _map(obj.get("status")).get("phase")
    if phase == "Bound":
        return _current("bound")
    return _progress(f"not Bound (phase {phase or 'unknown'})")


def _crd(obj: Mapping[str, Any]) -> Health:
    conditions = _conditions(obj)
    names = conditions.get("NamesAccepted")
    if names is not None and names.get("status") == "False":
        return Health(Status.FAILED, _said(names) or "names not accepted")
    established = conditions.get("Established")
    if established is not None:
        if _is_true(established):
            return _current("established")
        if established.get("status") == "False" and established.get("reason") != "Installing":
            return Health(Status.FAILED, _said(established) or "not established")
    return _progress("being installed")


#: The kinds with a rule of their own, by (group, kind).
_TYPED: dict[tuple[str, str], Callable[[Mapping[str, Any]], Health]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("batch", "Job"): _job,
    ("", "PersistentVolumeClaim"): _pvc,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}


def compute(obj: Mapping[str, Any]) -> Health:
    """The kstatus of one live object (see the module docstring for the rules and their order)."""
    decided = _generic(obj)
    if decided is not None:
        return decided
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rpartition("/")[0]
    rule = _TYPED.get((group, str(obj.get("kind") or "")))
    if rule is not None:
        return rule(obj)
    ready = _conditions(obj).get("Ready")
    if ready is not None:
        if _is_true(ready):
            return _current(_said(ready) or "ready")
        return _progress(
            f"Ready is {ready.get('status')}" + (f": {_said(ready)}" if _said(ready) else "")
        )
    return _current("no status to wait for")


def read_health(
    client: KubeClient, discovery: Discovery, targets: Mapping[ObjectId, str]
) -> dict[ObjectId, Health]:
    """The health of each target (id -> apiVersion), read live with ``client``.

    A missing object (or a kind the server does not serve) is NotFound; one the identity may
    not read is Unknown with the error, so a health check never reports what it could not see.
    """
    failures: dict[ObjectId, ClusterError] = {}
    live = read_live(client, discovery, targets, failures=failures)
    out: dict[ObjectId, Health] = {}
    for oid in targets:
        if oid in failures:
            out[oid] = Health(Status.UNKNOWN, f"cannot read it: {failures[oid]}")
        elif oid in live:
            out[oid] = compute(live[oid])
        else:
            out[oid] = Health(Status.NOT_FOUND, "not found")
    return out
