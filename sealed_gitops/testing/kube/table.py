"""Server-side printing: the ``meta.k8s.io/v1`` Table kubectl asks for with ``kubectl get``.

kubectl requests ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io,...`` for human output,
also on watches (``kubectl get -w``), and prints the columns the server chose: a real server
renders them itself. For a custom resource they come from the CRD version's
``additionalPrinterColumns`` (a ``Name`` column first, then one per printer column, each cell the
first result of its JSONPath, typed by the column's ``type``; a CRD without columns gets ``Age``);
built-in kinds get the columns kube-apiserver's printers give them (:mod:`printers`). Every column
is sent, ``priority`` included: kubectl hides priority > 0 unless ``-o wide``.
"""

from __future__ import annotations

from typing import Any

from sealed_gitops.testing.kube.cells import NAME_COLUMN, age
from sealed_gitops.testing.kube.jsonpath import compile_path, text_of
from sealed_gitops.testing.kube.printers import builtin_columns
from sealed_gitops.testing.kube.resources import ResourceType

__all__ = ["default_columns", "to_table", "wants_table"]

_CREATION_DESCRIPTION = "CreationTimestamp is the time the object was created."


def default_columns() -> list[dict[str, Any]]:
    """What a CRD version without ``additionalPrinterColumns`` is served with: Age alone."""
    return [
        {
            "name": "Age",
            "type": "date",
            "jsonPath": ".metadata.creationTimestamp",
            "description": _CREATION_DESCRIPTION,
        }
    ]


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def _typed_cell(kind: str, value: Any) -> Any:
    """A non-string column's cell: the value when it has the column's JSON type, else null."""
    if kind == "date":
        return age(value) if isinstance(value, str) else None
    if kind == "integer" and isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    return None


def _custom_columns(
    printer_columns: tuple[dict[str, Any], ...],
) -> list[tuple[dict[str, Any], Any]]:
    columns: list[tuple[dict[str, Any], Any]] = []
    for column in printer_columns or default_columns():
        path = column.get("jsonPath", "")
        definition = {
            "name": column.get("name", ""),
            "type": column.get("type", ""),
            "format": column.get("format", ""),
            "description": column.get("description")
            or f"Custom resource definition column (in JSONPath format): {path}",
            "priority": int(column.get("priority", 0)),
        }
        columns.append((definition, compile_path(path)))
    return columns


def _cells_for_custom(columns: list[tuple[dict[str, Any], Any]], obj: dict[str, Any]) -> list[Any]:
    cells: list[Any] = [obj["metadata"].get("name", "")]
    for definition, evaluate in columns:
        results = evaluate(obj)
        if not results:
            cells.append(None)
        elif definition["type"] == "string":
            cells.append(text_of(results[0]))
        else:
            cells.append(_typed_cell(definition["type"], results[0]))
    return cells


def to_table(
    rt: ResourceType, objects: list[dict[str, Any]], *, meta: dict[str, Any], include: str
) -> dict[str, Any]:
    """A Table of ``objects``; ``include`` is the ``includeObject`` parameter (Metadata default)."""
    if rt.crd:
        custom = _custom_columns(rt.printer_columns)
        definitions = [NAME_COLUMN] + [definition for definition, _ in custom]

        def cells_of(obj: dict[str, Any]) -> list[Any]:
            return _cells_for_custom(custom, obj)

    else:
        printed = builtin_columns(rt.group, rt.plural)
        definitions = [column for column, _ in printed]

        def cells_of(obj: dict[str, Any]) -> list[Any]:
            return [cell(obj) for _, cell in printed]

    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": cells_of(obj)}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": definitions,
        "rows": rows,
    }
