"""The rows and the table of ``sealed-gitops status``: what a person or a tool reads.

Why apart from :mod:`.status_cmds`: the commands there talk to the cluster; this turns the objects
they read into rows (a stable field list for ``--output json``) and into a table, coloured on a
terminal and tab-separated when piped. Messages are redacted here, again, even though the
operator redacts a condition before it stores it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from sealed_gitops.operator.conditions import READY
from sealed_gitops.redact import redact

__all__ = ["STATUS_FIELDS", "applied_revision", "object_rows", "print_table", "ready_condition"]

#: Fields of each row of ``status --output json``, in this order (a stable interface for tools).
STATUS_FIELDS = (
    "kind",
    "namespace",
    "name",
    "ready",
    "reason",
    "revision",
    "lastAttemptedRevision",
    "suspended",
    "message",
)


def ready_condition(obj: dict[str, Any]) -> dict[str, Any]:
    """The object's Ready condition as a new dict, or an empty one when it has none yet."""
    for cond in (obj.get("status") or {}).get("conditions") or ():
        if cond.get("type") == READY:
            return dict(cond)
    return {}


def applied_revision(obj: dict[str, Any]) -> str:
    """A Repository's published artifact revision, or a Sync's last applied revision."""
    status = obj.get("status") or {}
    if obj.get("kind") == "Repository":
        return str((status.get("artifact") or {}).get("revision") or "")
    return str(status.get("lastAppliedRevision") or "")


def object_rows(objects: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row with :data:`STATUS_FIELDS` per object, sorted by kind, namespace and name."""
    rows = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        ready = ready_condition(obj)
        rows.append(
            {
                "kind": str(obj.get("kind") or ""),
                "namespace": str(meta.get("namespace") or ""),
                "name": str(meta.get("name") or ""),
                "ready": str(ready.get("status") or "Unknown"),
                "reason": str(ready.get("reason") or ""),
                "revision": applied_revision(obj),
                "lastAttemptedRevision": str(
                    (obj.get("status") or {}).get("lastAttemptedRevision") or ""
                ),
                "suspended": bool((obj.get("spec") or {}).get("suspend")),
                "message": redact(str(ready.get("message") or "")),
            }
        )
    return sorted(rows, key=lambda r: (r["kind"], r["namespace"], r["name"]))


def _short(revision: str) -> str:
    """``main@sha1:0123456789ab`` instead of the full 40 hex digits, for a table."""
    head, sep, sha = revision.rpartition(":")
    return f"{head}{sep}{sha[:12]}" if sep and len(sha) > 12 else revision


_TABLE = (
    ("NAMESPACE", "namespace"),
    ("NAME", "name"),
    ("READY", "ready"),
    ("REVISION", "revision"),
    ("SUSPENDED", "suspended"),
    ("MESSAGE", "message"),
)


def _cell(row: dict[str, Any], key: str) -> str:
    if key == "revision":
        return _short(str(row[key]))
    if key == "suspended":
        return "True" if row[key] else "False"
    return str(row[key]).replace("\n", " ")


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    if not sys.stdout.isatty():
        # Piped: tab-separated columns without colour or box drawing, one object per line.
        click.echo("\t".join(h for h, _ in _TABLE))
        for row in rows:
            click.echo("\t".join(_cell(row, k) for _, k in _TABLE))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for header, _ in _TABLE:
        table.add_column(header, overflow="fold", ratio=3 if header == "MESSAGE" else None)
    colour = {"True": "green", "False": "red"}
    for row in rows:
        cells = [escape(_cell(row, k)) for _, k in _TABLE]
        style = colour.get(row["ready"], "yellow")
        cells[2] = f"[{style}]{cells[2]}[/]"
        table.add_row(*cells)
    Console(highlight=False).print(table)
