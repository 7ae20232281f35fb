"""sops' tree paths (``["data"]["password"]``, ``[0]``): parsing them, and reading, setting and
removing the value one names in a SOPS tree.

Why apart from :mod:`.ops` (the commands): ``--extract``, ``set`` and ``unset`` all walk a
:class:`TreeBranch` by such a path, and the walk has rules of its own that sops follows: comments
kept in a list are not counted as items, a missing key is created by ``set`` and refused by
``unset`` and ``--extract`` (naming the path component, never a value), and a JSON value given to
``set`` becomes ordered branches.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from sealed_gitops.errors import InputError

from .tree import TreeBranch
from .values import Comment

__all__ = ["lookup", "parse_path", "set_at", "to_tree", "unset_at"]

_PATH_RE = re.compile(r'\[\s*(?:"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|(-?\d+))\s*\]')


def parse_path(text: str) -> list[str | int]:
    """Parse sops' path syntax ``["data"]["password"]`` / ``[0]`` into keys and indexes."""
    out: list[str | int] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _PATH_RE.match(text, pos)
        if match is None:
            raise InputError(f'invalid path {text!r}: expected ["key"] or [index] parts')
        double, single, index = match.groups()
        if index is not None:
            out.append(int(index))
        else:
            raw = double if double is not None else single
            out.append(json.loads(f'"{raw}"') if double is not None else str(raw))
        pos = match.end()
    if not out:
        raise InputError("empty path")
    return out


def to_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return TreeBranch((str(k), to_tree(v)) for k, v in value.items())
    if isinstance(value, list):
        return [to_tree(v) for v in value]
    return value


def lookup(root: Any, path: Sequence[str | int], *, file: str | None) -> Any:
    current = root
    for part in path:
        if isinstance(part, int):
            items = (
                [v for v in current if not isinstance(v, Comment)]
                if isinstance(current, list) and not isinstance(current, TreeBranch)
                else None
            )
            if items is None or not -len(items) <= part < len(items):
                raise InputError(f"path component [{part}] not found", file=file)
            current = items[part]
        else:
            if not isinstance(current, TreeBranch) or part not in current.keys_in_order():
                raise InputError(f"path component [{part!r}] not found", file=file)
            current = current.get(part)
    return current


def set_at(node: Any, path: Sequence[str | int], value: Any) -> Any:
    head, rest = path[0], path[1:]
    if isinstance(node, TreeBranch) and isinstance(head, str):
        for i, (k, v) in enumerate(node):
            if k == head and isinstance(k, str):
                node[i] = (k, set_at(v, rest, value) if rest else value)
                return node
        node.append((head, set_at(None, rest, value) if rest else value))
        return node
    if isinstance(node, list) and not isinstance(node, TreeBranch) and isinstance(head, int):
        slots = [i for i, v in enumerate(node) if not isinstance(v, Comment)]
        if head < len(slots):
            node[slots[head]] = set_at(node[slots[head]], rest, value) if rest else value
        else:
            node.append(set_at(None, rest, value) if rest else value)
        return node
    fresh: Any = TreeBranch() if isinstance(head, str) else []
    return set_at(fresh, path, value)


def unset_at(node: Any, path: Sequence[str | int], *, file: str | None) -> None:
    parent = lookup(node, path[:-1], file=file)
    last = path[-1]
    if isinstance(parent, TreeBranch) and isinstance(last, str):
        for i, (k, _) in enumerate(parent):
            if k == last and isinstance(k, str):
                del parent[i]
                return
    elif isinstance(parent, list) and isinstance(last, int):
        slots = [i for i, v in enumerate(parent) if not isinstance(v, Comment)]
        if 0 <= last < len(slots):
            del parent[slots[last]]
            return
    raise InputError(f"path component [{last!r}] not found", file=file)
