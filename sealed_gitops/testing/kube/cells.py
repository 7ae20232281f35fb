"""What a Table cell is made of: ages as kube-apiserver writes them, column definitions, lookups.

Shared by the printers of built-in kinds (:mod:`printers`, :mod:`workload_printers`) and the
custom-resource Tables (:mod:`table`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["NAME_COLUMN", "Cell", "age", "col", "get", "human_duration", "parse_time"]

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


def parse_time(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def age(created: Any) -> str:
    """A timestamp's age as a Table cell: ``<unknown>`` when unset, ``<invalid>`` when garbled."""
    if not created:
        return "<unknown>"
    then = parse_time(created) if isinstance(created, str) else None
    if then is None:
        return "<invalid>"
    return human_duration((datetime.now(UTC) - then).total_seconds())


def col(name: str, kind: str = "string", *, priority: int = 0, fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": kind, "format": fmt, "description": name, "priority": priority}


def get(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj
