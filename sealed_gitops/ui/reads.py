"""What the web view reads from the cluster, turned into rows a template can show.

Why apart from the handlers: each page is one or two GETs through the project's client (with the
user's own kubeconfig, so the view never shows more than ``kubectl get`` would), then pure
functions from API objects to small frozen rows. The pure half is what the unit tests check
without a server; the handlers only glue the two to a template.

Nothing here keeps a Secret's values: Secrets are read for their names, annotations and key
names (:func:`sealed_gitops.audit.cluster.live_secrets` drops the data as the answer arrives),
and the one read that needs values (comparing the live Secret with Git) lives in
:mod:`sealed_gitops.ui.compare`. Every message shown passes through the redaction layer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sealed_gitops.cluster import KubeClient, event_time
from sealed_gitops.errors import ApiNotFound
from sealed_gitops.keys.usage_record import needs
from sealed_gitops.plan import Inventory
from sealed_gitops.plan.names import namespace as valid_namespace
from sealed_gitops.plan.names import object_name, segment
from sealed_gitops.redact import redact

__all__ = [
    "GROUP",
    "Failure",
    "KeyRingRow",
    "KeyRow",
    "ObjectRow",
    "SyncDetail",
    "event_rows",
    "fetch_events",
    "fetch_list",
    "fetch_object",
    "inventory_tree",
    "keyring_rows",
    "object_rows",
    "sync_detail",
]

GROUP = "sealed-gitops.io/v1alpha1"
_PLURALS = {"Sync": "syncs", "Repository": "repositories", "KeyRing": "keyrings"}
#: key states whose keys still decrypt (``keys retire`` counts on the same two)
USABLE_STATES = frozenset({"active", "previous"})
#: Events shown on a Sync's page (the newest)
MAX_EVENTS = 20


def _path(kind: str, namespace: str | None, name: str | None = None) -> str:
    base = f"/apis/{GROUP}"
    if namespace:
        base += f"/namespaces/{segment(valid_namespace(namespace, field='namespace'))}"
    base += f"/{_PLURALS[kind]}"
    if name is not None:
        base += f"/{segment(object_name(name, field='name'))}"
    return base


def fetch_list(client: KubeClient, kind: str, *, namespace: str | None = None) -> list[Any]:
    """Every ``kind`` the user may list (all namespaces unless ``namespace``); 404: none."""
    try:
        answer = client.request("GET", _path(kind, namespace), action="list", what=kind)
    except ApiNotFound:  # the CRD is not installed
        return []
    return list(answer.get("items") or [])


def fetch_object(client: KubeClient, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return client.request(
            "GET", _path(kind, namespace, name), action="read", what=f"{kind} {namespace}/{name}"
        )
    except ApiNotFound:
        return None


def fetch_events(client: KubeClient, *, namespace: str, kind: str, name: str) -> list[Any]:
    """Events about one object, oldest first (the user may lack the right: then none)."""
    ns = segment(valid_namespace(namespace, field="namespace"))
    # checked here, where it meets the selector: a ',' in it would add a term of its own
    name = object_name(name, field="name")
    answer = client.request(
        "GET",
        f"/api/v1/namespaces/{ns}/events",
        query={"fieldSelector": f"involvedObject.kind={kind},involvedObject.name={name}"},
        action="list",
        what=f"Events of {kind} {namespace}/{name}",
    )
    items = [
        e for e in answer.get("items") or [] if (e.get("involvedObject") or {}).get("name") == name
    ]
    return sorted(items, key=event_time)


# -- Syncs and Repositories --------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """One failing file (or the whole reconcile, when ``file`` is empty) and why."""

    file: str
    object: str
    reason: str


@dataclass(frozen=True)
class ObjectRow:
    """One Sync or Repository on the overview."""

    kind: str
    namespace: str
    name: str
    ready: str  # "True", "False" or "Unknown"
    reason: str
    message: str
    revision: str
    last_reconcile: str
    suspended: bool
    failures: tuple[Failure, ...] = ()


def _ready(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            return cond
    return {}


def _revision(obj: Mapping[str, Any]) -> str:
    status = obj.get("status") or {}
    if obj.get("kind") == "Repository":
        return str((status.get("artifact") or {}).get("revision") or "")
    return str(status.get("lastAppliedRevision") or "")


def _failures(obj: Mapping[str, Any], ready: Mapping[str, Any]) -> tuple[Failure, ...]:
    rows = [
        Failure(
            file=str(f.get("file") or ""),
            object=str(f.get("object") or ""),
            reason=redact(str(f.get("reason") or "")),
        )
        for f in (obj.get("status") or {}).get("failures") or ()
        if isinstance(f, Mapping)
    ]
    if not rows and ready.get("status") == "False":
        # The whole reconcile failed (a tampered file, a missing key): the condition says why.
        rows.append(Failure(file="", object="", reason=redact(str(ready.get("message") or ""))))
    return tuple(rows)


def object_rows(items: Sequence[Mapping[str, Any]], *, kind: str) -> list[ObjectRow]:
    """Overview rows, sorted by namespace and name."""
    rows = []
    for obj in items:
        meta = obj.get("metadata") or {}
        ready = _ready({**obj, "kind": kind})
        rows.append(
            ObjectRow(
                kind=kind,
                namespace=str(meta.get("namespace") or ""),
                name=str(meta.get("name") or ""),
                ready=str(ready.get("status") or "Unknown"),
                reason=str(ready.get("reason") or ""),
                message=redact(str(ready.get("message") or "")),
                revision=_revision({**obj, "kind": kind}),
                last_reconcile=str(ready.get("lastTransitionTime") or ""),
                suspended=bool((obj.get("spec") or {}).get("suspend")),
                failures=_failures(obj, ready),
            )
        )
    return sorted(rows, key=lambda r: (r.namespace, r.name))


@dataclass(frozen=True)
class SyncDetail:
    """One Sync's page: its row, the tree of what it applied, its recent Events."""

    row: ObjectRow
    repository: str
    path: str
    attempted: str
    #: namespace ("" for cluster-scoped) -> kind -> names
    tree: dict[str, dict[str, list[str]]]
    events: list[dict[str, str]] = field(default_factory=list)


def inventory_tree(status_inventory: Any) -> dict[str, dict[str, list[str]]]:
    """``status.inventory`` as namespace -> kind -> sorted names."""
    tree: dict[str, dict[str, list[str]]] = {}
    inventory = Inventory.from_status(
        status_inventory if isinstance(status_inventory, Mapping) else None
    )
    for entry in inventory.entries:
        tree.setdefault(entry.id.namespace, {}).setdefault(entry.id.kind, []).append(entry.id.name)
    return {
        ns: {kind: sorted(names) for kind, names in sorted(kinds.items())}
        for ns, kinds in sorted(tree.items())
    }


def sync_detail(sync: Mapping[str, Any], events: Sequence[Mapping[str, Any]]) -> SyncDetail:
    spec = sync.get("spec") or {}
    status = sync.get("status") or {}
    return SyncDetail(
        row=object_rows([sync], kind="Sync")[0],
        repository=str((spec.get("repositoryRef") or {}).get("name") or ""),
        path=str(spec.get("path") or ""),
        attempted=str(status.get("lastAttemptedRevision") or ""),
        tree=inventory_tree(status.get("inventory")),
        events=event_rows(events)[-MAX_EVENTS:],
    )


def event_rows(events: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Events as the pages show them: time, type, reason and the redacted message."""
    return [
        {
            "time": event_time(e),
            "type": str(e.get("type") or ""),
            "reason": str(e.get("reason") or ""),
            "message": redact(str(e.get("message") or "")),
        }
        for e in events
    ]


# -- KeyRings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRow:
    """One key of a KeyRing: public facts, and the files that could not open without it."""

    fingerprint: str
    state: str
    created: str
    age: str
    #: (Sync "ns/name", files that need this key, a few of their paths); "?" when undecidable
    needed_by: tuple[tuple[str, str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class KeyRingRow:
    namespace: str
    name: str
    backend: str
    ready: str
    active: str
    keys: tuple[KeyRow, ...]


def _age(created: str, *, now: dt.datetime) -> str:
    try:
        when = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return ""
    seconds = max(int((now - when).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def keyring_rows(
    keyrings: Sequence[Mapping[str, Any]],
    syncs: Sequence[Mapping[str, Any]],
    *,
    now: dt.datetime | None = None,
) -> list[KeyRingRow]:
    """Each KeyRing's keys, with which Syncs' applied revisions still need each key.

    From ``status.decryptionKeys.lastApplied`` of every Sync the user can see that names the
    KeyRing: the record of what the running revision is encrypted for
    (:mod:`sealed_gitops.keys.usage_record`).
    """
    moment = now or dt.datetime.now(dt.UTC)
    records: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for sync in syncs:
        meta = sync.get("metadata") or {}
        used = ((sync.get("status") or {}).get("decryptionKeys") or {}).get("lastApplied")
        if isinstance(used, Mapping) and used.get("keyRing"):
            label = f"{meta.get('namespace')}/{meta.get('name')}"
            records.setdefault(str(used["keyRing"]), []).append((label, used))
    rows = []
    for ring in keyrings:
        meta = ring.get("metadata") or {}
        status = ring.get("status") or {}
        ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        entries = [e for e in status.get("keys") or () if isinstance(e, Mapping)]
        usable = [str(e.get("fingerprint")) for e in entries if e.get("state") in USABLE_STATES]
        keys = []
        for entry in entries:
            fp = str(entry.get("fingerprint") or "")
            needed: list[tuple[str, str, tuple[str, ...]]] = []
            for label, record in records.get(f"{ns}/{name}", ()):
                need = needs(record, fp, usable=usable)
                if need.undecidable:
                    needed.append((label, "?", ()))
                elif need.files:
                    needed.append((label, str(need.files), need.examples))
            created = str(entry.get("created") or "")
            keys.append(
                KeyRow(
                    fingerprint=fp,
                    state=str(entry.get("state") or ""),
                    created=created,
                    age=_age(created, now=moment),
                    needed_by=tuple(needed),
                )
            )
        rows.append(
            KeyRingRow(
                namespace=ns,
                name=name,
                backend=str((ring.get("spec") or {}).get("backend") or "kubernetes"),
                ready=str(_ready(ring).get("status") or "Unknown"),
                active=str(status.get("activeFingerprint") or ""),
                keys=tuple(keys),
            )
        )
    return sorted(rows, key=lambda r: (r.namespace, r.name))
