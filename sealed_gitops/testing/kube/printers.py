"""The columns kube-apiserver prints for built-in kinds (workloads in :mod:`workload_printers`).

Why: ``kubectl get`` prints whatever Table the server sends, so a Table with the wrong columns is
a difference a person sees at once (``kubectl get events`` showing NAME AGE where a cluster shows
LAST SEEN, TYPE, REASON, OBJECT, MESSAGE). The server builds built-in rows with its printers in
wide mode, so every column is in every row and kubectl hides those with ``priority`` > 0 unless
``-o wide``. Kinds not listed get NAME and AGE. Each Table was compared with a kube-apiserver built
from source (issue 13).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from sealed_gitops.testing.kube.cells import NAME_COLUMN, Cell, age, col, get, parse_time
from sealed_gitops.testing.kube.workload_printers import WORKLOAD_COLUMNS, WORKLOAD_WIDE

__all__ = ["builtin_columns"]


def _rfc3339(obj: dict[str, Any]) -> str:
    """``Created At`` cells: the creation time as RFC 3339 in UTC."""
    then = parse_time(obj["metadata"].get("creationTimestamp") or "")
    return then.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if then else "<unknown>"


def _name(obj: dict[str, Any]) -> Any:
    return obj["metadata"].get("name", "")


def _age(obj: dict[str, Any]) -> str:
    return age(obj["metadata"].get("creationTimestamp"))


def _event_cells(*, ref: str, note: str, legacy: str) -> list[tuple[dict[str, Any], Cell]]:
    """Both Event APIs print alike (the server converts events.k8s.io rows to core Events).

    ``legacy`` prefixes the core fields events.k8s.io/v1 renamed (``deprecatedCount``...).
    """

    def field(name: str) -> str:
        return legacy + name[0].upper() + name[1:] if legacy else name

    def first_seen(o: dict[str, Any]) -> str:
        first = o.get(field("firstTimestamp"))
        return age(first) if first else age(o.get("eventTime"))

    def last_seen(o: dict[str, Any]) -> str:
        if get(o, "series", "lastObservedTime"):
            return age(get(o, "series", "lastObservedTime"))
        last = o.get(field("lastTimestamp"))
        return age(last) if last else first_seen(o)

    def count(o: dict[str, Any]) -> int:
        if isinstance(o.get("series"), dict):
            return int(o["series"].get("count") or 0)
        return int(o.get(field("count")) or 1)

    def target(o: dict[str, Any]) -> str:
        kind = str(get(o, ref, "kind") or "").lower()
        name = get(o, ref, "name")
        return f"{kind}/{name}" if name else kind

    controller = "reportingController" if legacy else "reportingComponent"
    source_field = field("source")

    def source(o: dict[str, Any]) -> str:
        component = get(o, source_field, "component") or o.get(controller) or ""
        instance = get(o, source_field, "host") or o.get("reportingInstance") or ""
        return f"{component}, {instance}" if instance else str(component)

    return [
        (col("Last Seen"), last_seen),
        (col("Type"), lambda o: o.get("type", "")),
        (col("Reason"), lambda o: o.get("reason", "")),
        (col("Object"), target),
        (col("Subobject", priority=1), lambda o: get(o, ref, "fieldPath") or ""),
        (col("Source", priority=1), source),
        (col("Message"), lambda o: str(o.get(note) or "").strip()),
        (col("First Seen", priority=1), first_seen),
        (col("Count", priority=1), count),
        (col("Name", priority=1, fmt="name"), _name),
    ]


def _subjects(kind: str) -> Cell:
    def cell(o: dict[str, Any]) -> str:
        subjects = [s for s in o.get("subjects") or [] if s.get("kind") == kind]
        if kind == "ServiceAccount":
            return ", ".join(f"{s.get('namespace', '')}/{s.get('name', '')}" for s in subjects)
        return ", ".join(str(s.get("name", "")) for s in subjects)

    return cell


def _binding() -> list[tuple[dict[str, Any], Cell]]:
    return [
        (NAME_COLUMN, _name),
        (col("Role"), lambda o: f"{get(o, 'roleRef', 'kind')}/{get(o, 'roleRef', 'name')}"),
        (col("Age"), _age),
        (col("Users", priority=1), _subjects("User")),
        (col("Groups", priority=1), _subjects("Group")),
        (col("ServiceAccounts", priority=1), _subjects("ServiceAccount")),
    ]


def _crd_versions(o: dict[str, Any]) -> str:
    """Served versions, the storage one marked: ``v1alpha1(storage)``."""
    served = [v for v in get(o, "spec", "versions") or [] if v.get("served")]
    return ",".join(v["name"] + ("(storage)" if v.get("storage") else "") for v in served)


def _established(o: dict[str, Any]) -> bool:
    conditions = get(o, "status", "conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


_CREATED_AT = (col("Created At", "date"), _rfc3339)
_KINDS: dict[tuple[str, str], list[tuple[dict[str, Any], Cell]]] = {
    ("", "secrets"): [
        (col("Type"), lambda o: o.get("type", "")),
        (col("Data"), lambda o: len(o.get("data") or {})),
    ],
    ("", "configmaps"): [
        (col("Data"), lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))
    ],
    ("", "namespaces"): [(col("Status"), lambda o: get(o, "status", "phase") or "")],
    ("coordination.k8s.io", "leases"): [
        (col("Holder"), lambda o: get(o, "spec", "holderIdentity") or "")
    ],
}
_WHOLE: dict[tuple[str, str], list[tuple[dict[str, Any], Cell]]] = {
    ("", "events"): _event_cells(ref="involvedObject", note="message", legacy=""),
    ("events.k8s.io", "events"): _event_cells(ref="regarding", note="note", legacy="deprecated"),
    ("apiextensions.k8s.io", "customresourcedefinitions"): [
        (NAME_COLUMN, _name),
        (col("Scope"), lambda o: get(o, "spec", "scope") or ""),
        (col("Versions"), _crd_versions),
        _CREATED_AT,
        (col("Group", priority=1), lambda o: get(o, "spec", "group") or ""),
        (col("Kind", priority=1), lambda o: get(o, "spec", "names", "kind") or ""),
        (
            col("ShortNames", priority=1),
            lambda o: ",".join(get(o, "spec", "names", "shortNames") or []),
        ),
        (col("Established", "boolean", priority=1), _established),
    ],
    ("rbac.authorization.k8s.io", "roles"): [(NAME_COLUMN, _name), _CREATED_AT],
    ("rbac.authorization.k8s.io", "clusterroles"): [(NAME_COLUMN, _name), _CREATED_AT],
    ("rbac.authorization.k8s.io", "rolebindings"): _binding(),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): _binding(),
}


def builtin_columns(group: str, plural: str) -> list[tuple[dict[str, Any], Cell]]:
    """(column definition, cell of an object) for each column of a built-in kind's Table."""
    whole = _WHOLE.get((group, plural))
    if whole is not None:
        return whole
    return [
        (NAME_COLUMN, _name),
        *_KINDS.get((group, plural), []),
        *WORKLOAD_COLUMNS.get((group, plural), []),
        (
            {
                "name": "Age",
                "type": "string",
                "format": "",
                "description": "CreationTimestamp is the time the object was created.",
                "priority": 0,
            },
            _age,
        ),
        *WORKLOAD_WIDE.get((group, plural), []),
    ]
