"""The columns kube-apiserver prints for built-in kinds, and the age format every Table uses.

Why: ``kubectl get`` prints whatever Table the server sends, so a Table with the wrong columns is
a difference a person sees at once (``kubectl get events`` showing NAME AGE where a cluster shows
LAST SEEN, TYPE, REASON, OBJECT, MESSAGE). The server builds built-in rows with its printers in
wide mode, so every column is in every row and kubectl hides those with ``priority`` > 0 unless
``-o wide``. Kinds not listed here get NAME and AGE (listed in docs/emulator.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["NAME_COLUMN", "age", "builtin_columns", "human_duration"]

Cell = Callable[[dict[str, Any]], Any]

NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}


def human_duration(seconds: float) -> str:
    """A duration as apimachinery's ``HumanDuration`` writes it (``5m30s``, ``3h``, ``2d4h``).

    Two units while the larger is small (minutes under 10, hours under 8, days under 8, years
    under 8), one unit beyond; a clock up to a second ahead reads ``0s``, further ``<invalid>``.
    """
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        return f"{minutes}m{whole % 60}s" if whole % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, (hours // 24) % 365
        return f"{years}y{days}d" if days else f"{years}y"
    return f"{hours // 24 // 365}y"


def _parse_time(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def age(created: Any) -> str:
    """A timestamp's age as a Table cell: ``<unknown>`` when unset, ``<invalid>`` when garbled."""
    if not created:
        return "<unknown>"
    then = _parse_time(created) if isinstance(created, str) else None
    if then is None:
        return "<invalid>"
    return human_duration((datetime.now(UTC) - then).total_seconds())


def _rfc3339(obj: dict[str, Any]) -> str:
    """``Created At`` cells: the creation time as RFC 3339 in UTC."""
    then = _parse_time(obj["metadata"].get("creationTimestamp") or "")
    return then.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if then else "<unknown>"


def _col(name: str, kind: str = "string", *, priority: int = 0, fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


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
        if _get(o, "series", "lastObservedTime"):
            return age(_get(o, "series", "lastObservedTime"))
        last = o.get(field("lastTimestamp"))
        return age(last) if last else first_seen(o)

    def count(o: dict[str, Any]) -> int:
        if isinstance(o.get("series"), dict):
            return int(o["series"].get("count") or 0)
        return int(o.get(field("count")) or 1)

    def target(o: dict[str, Any]) -> str:
        kind = str(_get(o, ref, "kind") or "").lower()
        name = _get(o, ref, "name")
        return f"{kind}/{name}" if name else kind

    controller = "reportingController" if legacy else "reportingComponent"
    source_field = field("source")

    def source(o: dict[str, Any]) -> str:
        component = _get(o, source_field, "component") or o.get(controller) or ""
        instance = _get(o, source_field, "host") or o.get("reportingInstance") or ""
        return f"{component}, {instance}" if instance else str(component)

    return [
        (_col("Last Seen"), last_seen),
        (_col("Type"), lambda o: o.get("type", "")),
        (_col("Reason"), lambda o: o.get("reason", "")),
        (_col("Object"), target),
        (_col("Subobject", priority=1), lambda o: _get(o, ref, "fieldPath") or ""),
        (_col("Source", priority=1), source),
        (_col("Message"), lambda o: str(o.get(note) or "").strip()),
        (_col("First Seen", priority=1), first_seen),
        (_col("Count", priority=1), count),
        (_col("Name", priority=1, fmt="name"), _name),
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
        (_col("Role"), lambda o: f"{_get(o, 'roleRef', 'kind')}/{_get(o, 'roleRef', 'name')}"),
        (_col("Age"), _age),
        (_col("Users", priority=1), _subjects("User")),
        (_col("Groups", priority=1), _subjects("Group")),
        (_col("ServiceAccounts", priority=1), _subjects("ServiceAccount")),
    ]


def _containers(o: dict[str, Any], key: str) -> str:
    containers = _get(o, "spec", "template", "spec", "containers") or []
    return ",".join(str(c.get(key, "")) for c in containers)


def _selector(o: dict[str, Any]) -> str:
    labels = _get(o, "spec", "selector", "matchLabels") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>"


def _crd_versions(o: dict[str, Any]) -> str:
    """Served versions, the storage one marked: ``v1alpha1(storage)``."""
    served = [v for v in _get(o, "spec", "versions") or [] if v.get("served")]
    return ",".join(v["name"] + ("(storage)" if v.get("storage") else "") for v in served)


def _established(o: dict[str, Any]) -> bool:
    conditions = _get(o, "status", "conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


_CREATED_AT = (_col("Created At", "date"), _rfc3339)
_KINDS: dict[tuple[str, str], list[tuple[dict[str, Any], Cell]]] = {
    ("", "secrets"): [
        (_col("Type"), lambda o: o.get("type", "")),
        (_col("Data"), lambda o: len(o.get("data") or {})),
    ],
    ("", "configmaps"): [
        (_col("Data"), lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))
    ],
    ("", "namespaces"): [(_col("Status"), lambda o: _get(o, "status", "phase") or "")],
    ("coordination.k8s.io", "leases"): [
        (_col("Holder"), lambda o: _get(o, "spec", "holderIdentity") or "")
    ],
    ("apps", "deployments"): [
        (
            _col("Ready"),
            lambda o: (
                f"{_get(o, 'status', 'readyReplicas') or 0}/"
                f"{_get(o, 'spec', 'replicas') if _get(o, 'spec', 'replicas') is not None else 1}"
            ),
        ),
        (_col("Up-to-date"), lambda o: _get(o, "status", "updatedReplicas") or 0),
        (_col("Available"), lambda o: _get(o, "status", "availableReplicas") or 0),
    ],
}
_AGE_LAST_WIDE: dict[tuple[str, str], list[tuple[dict[str, Any], Cell]]] = {
    ("apps", "deployments"): [
        (_col("Containers", priority=1), lambda o: _containers(o, "name")),
        (_col("Images", priority=1), lambda o: _containers(o, "image")),
        (_col("Selector", priority=1), _selector),
    ],
}
_WHOLE: dict[tuple[str, str], list[tuple[dict[str, Any], Cell]]] = {
    ("", "events"): _event_cells(ref="involvedObject", note="message", legacy=""),
    ("events.k8s.io", "events"): _event_cells(ref="regarding", note="note", legacy="deprecated"),
    ("apiextensions.k8s.io", "customresourcedefinitions"): [
        (NAME_COLUMN, _name),
        (_col("Scope"), lambda o: _get(o, "spec", "scope") or ""),
        (_col("Versions"), _crd_versions),
        _CREATED_AT,
        (_col("Group", priority=1), lambda o: _get(o, "spec", "group") or ""),
        (_col("Kind", priority=1), lambda o: _get(o, "spec", "names", "kind") or ""),
        (
            _col("ShortNames", priority=1),
            lambda o: ",".join(_get(o, "spec", "names", "shortNames") or []),
        ),
        (_col("Established", "boolean", priority=1), _established),
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
        *_AGE_LAST_WIDE.get((group, plural), []),
    ]
