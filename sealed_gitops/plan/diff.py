"""Redacted, human-readable diffs: what ``sealed-gitops diff`` prints.

Why this module exists: users of Flux and Argo CD either see Secrets compared by key names only or
not at all (fluxcd/flux2 #5197, argoproj/argo-cd #15825), or risk values in the output. Here a
Secret is shown as its key names, each marked added, changed, removed or unchanged (decided by
comparing digests of the values), and everything else of the Secret as an ordinary diff. Objects
that carried encrypted values but are not Secrets (a SOPS-encrypted ConfigMap) are shown the same
way when the caller marks them ``sensitive``.

For non-Secret objects the "after" side is the live object with the desired fields laid over it,
which is what server-side apply produces: fields the server defaulted stay on both sides and do
not show as noise. Every text is passed through :func:`sealed_gitops.redact.redact` as a last line
of defence; by construction no value of a sensitive object is formatted in the first place.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

from sealed_gitops.plan.changes import (
    _SERVER_METADATA,
    Change,
    KeyChange,
    key_changes,
    secret_key_changes,
)
from sealed_gitops.plan.ids import ObjectId
from sealed_gitops.redact import redact

__all__ = ["apply_overlay", "object_diff", "sensitive_leaf_changes"]

_SKIP_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
_SIGNS = {Change.ADDED: "+", Change.REMOVED: "-", Change.CHANGED: "~", Change.UNCHANGED: " "}


def _clean(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """Drop what the server owns (status, server metadata) so it never shows as a change."""
    if not obj:
        return {}
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = dict(out.get("metadata") or {})
    for key in _SERVER_METADATA:
        meta.pop(key, None)
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in _SKIP_ANNOTATIONS
    }
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    if meta:
        out["metadata"] = meta
    return out


def apply_overlay(live: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """``live`` with ``desired`` laid over it: mappings merge, everything else is replaced."""
    out = dict(live)
    for key, value in desired.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = apply_overlay(current, value)
        else:
            out[key] = value
    return out


def _dump(obj: Mapping[str, Any]) -> list[str]:
    if not obj:
        return []
    text = yaml.safe_dump(dict(obj), sort_keys=True, default_flow_style=False, allow_unicode=True)
    return text.splitlines(keepends=True)


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        for key, child in value.items():
            yield from _leaves(child, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for i, child in enumerate(value):
            yield from _leaves(child, f"{path}[{i}]")
    else:
        yield path, value


def sensitive_leaf_changes(
    desired: Mapping[str, Any] | None, live: Mapping[str, Any] | None
) -> list[KeyChange]:
    """Per-leaf changes of an object whose values are secret, keyed by dotted path, no values.

    For anything but ``apiVersion``, ``kind`` and ``metadata``: those are shown in clear by the
    normal diff.
    """

    def body(obj: Mapping[str, Any] | None) -> dict[str, Any]:
        return dict(
            _leaves(
                {
                    k: v
                    for k, v in (obj or {}).items()
                    if k not in ("apiVersion", "kind", "metadata", "status")
                },
                "",
            )
        )

    return key_changes(body(desired), body(live))


def object_diff(
    desired: Mapping[str, Any] | None,
    live: Mapping[str, Any] | None,
    *,
    sensitive: bool | None = None,
    context: int = 3,
) -> str:
    """A unified-diff-like text from ``live`` to what applying ``desired`` gives.

    ``desired`` None means the object is pruned; ``live`` None means it is created. ``sensitive``
    defaults to "is a core Secret". Returns an empty string when nothing changes.
    """
    ref = desired if desired is not None else live
    if ref is None:
        return ""
    oid = ObjectId.of(ref)
    is_secret = oid.is_core_secret
    if sensitive is None:
        sensitive = is_secret
    before = _clean(live)
    after = _clean(apply_overlay(before, desired)) if desired is not None else {}
    lines: list[str] = []
    keys: list[KeyChange] = []
    if sensitive:
        # Values are replaced by key names and change kinds; the rest is diffed normally.
        if is_secret:
            # Our field manager owns the keys it sends, so the desired key set is the new one.
            keys = secret_key_changes(desired, live)
            drop: tuple[str, ...] = ("data", "stringData")
        else:
            keys = sensitive_leaf_changes(
                after if desired is not None else None, before if live is not None else None
            )
            drop = tuple(
                k for k in {**before, **after} if k not in ("apiVersion", "kind", "metadata")
            )
        before = {k: v for k, v in before.items() if k not in drop}
        after = {k: v for k, v in after.items() if k not in drop}
    old_name = f"live/{oid.describe()}" if live is not None else "/dev/null"
    new_name = f"desired/{oid.describe()}" if desired is not None else "/dev/null"
    body = list(difflib.unified_diff(_dump(before), _dump(after), old_name, new_name, n=context))
    key_lines = [
        f"{_SIGNS[k.change]} {'data' if is_secret else 'value'} {k.key}: {k.change.value}\n"
        for k in keys
    ]
    if not body and all(k.change is Change.UNCHANGED for k in keys):
        return ""
    if not body:
        lines.extend([f"--- {old_name}\n", f"+++ {new_name}\n"])
    lines.extend(body)
    lines.extend(key_lines)
    return redact("".join(lines))
