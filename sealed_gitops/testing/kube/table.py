"""Server-side printing: the ``meta.k8s.io/v1`` Table kubectl asks for with ``kubectl get``.

kubectl requests ``Accept: application/json;as=Table;g=meta.k8s.io;v=v1`` for human output, also on
watches (``kubectl get -w``). A real server renders the columns itself; the emulator renders the
NAME and AGE columns every kind has, plus the few kind-specific ones people look at.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["to_table", "wants_table"]

_EXTRA: dict[str, list[tuple[str, Callable[[dict[str, Any]], str]]]] = {
    "secrets": [
        ("Type", lambda o: str(o.get("type", ""))),
        ("Data", lambda o: str(len(o.get("data") or {}))),
    ],
    "configmaps": [
        ("Data", lambda o: str(len(o.get("data") or {}) + len(o.get("binaryData") or {})))
    ],
    "namespaces": [("Status", lambda o: str((o.get("status") or {}).get("phase", "")))],
}


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def _age(created: str | None) -> str:
    if not created:
        return "<unknown>"
    try:
        then = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return "<unknown>"
    seconds = max(0, int((datetime.now(UTC) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def to_table(
    plural: str, objects: list[dict[str, Any]], *, meta: dict[str, Any], include: str
) -> dict[str, Any]:
    """A Table of ``objects``; ``include`` is the ``includeObject`` parameter (Metadata default)."""
    extra = _EXTRA.get(plural, [])
    columns = [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "priority": 0,
            "description": "Name must be unique within a namespace.",
        }
    ]
    columns += [
        {"name": title, "type": "string", "format": "", "priority": 0, "description": title}
        for title, _ in extra
    ]
    columns.append(
        {
            "name": "Age",
            "type": "string",
            "format": "",
            "priority": 0,
            "description": "CreationTimestamp is the time the object was created.",
        }
    )
    rows = []
    for obj in objects:
        metadata = obj["metadata"]
        cells = [metadata.get("name", "")] + [get(obj) for _, get in extra]
        cells.append(_age(metadata.get("creationTimestamp")))
        row: dict[str, Any] = {"cells": cells}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata,
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns,
        "rows": rows,
    }
