"""The ``sops`` metadata block flattened to ``key=value`` pairs, as sops 3.11 writes it in dotenv
and INI files (``sops_age__list_0__map_recipient=...``, ``[sops]`` section keys).

Why a module of its own: the dotenv and INI stores cannot nest, so sops flattens its metadata
struct (``stores.FlattenMetadata``): maps add ``__map_KEY``, lists ``__list_N``; ``null`` and empty
lists vanish; ``shamir_threshold`` and ``mac_only_encrypted`` become strings; newlines in values
(the armoured PGP and age stanzas) become the two characters ``\\n``. Reading reverses each step
(``DecodeNewLines``, ``DecodeNonStrings``, ``Unflatten``). Both stores share this, so their
metadata cannot drift apart.
"""

from __future__ import annotations

import math
import re
from typing import Any

from sealed_gitops.errors import FormatError

from .tree import TreeBranch
from .values import Comment

__all__ = ["LIST_SEPARATOR", "MAP_SEPARATOR", "flatten_metadata", "unflatten_metadata"]

MAP_SEPARATOR = "__map_"
LIST_SEPARATOR = "__list_"

#: Guards the list indexes a committer writes (``__list_99999999``) before a list is allocated:
#: per list, and for all the list slots of one file together (many keys, each with its own list).
_MAX_LIST_INDEX = 10_000
_MAX_LIST_SLOTS = 100_000
#: Guards the nesting a committer writes (``__map_a__map_a...``): the branch is built and written
#: by recursion. sops' deepest key (``key_groups__list_0__map_age__list_0__map_recipient``) has 4.
_MAX_DEPTH = 32

_TOKEN = re.compile(f"({MAP_SEPARATOR}|{LIST_SEPARATOR})")


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, TreeBranch):
        for key, item in value:
            if isinstance(key, str):
                _flatten(item, f"{prefix}{MAP_SEPARATOR}{key}", out)
    elif isinstance(value, list):
        items = [v for v in value if not isinstance(v, Comment)]
        for index, item in enumerate(items):
            _flatten(item, f"{prefix}{LIST_SEPARATOR}{index}", out)
    else:
        out[prefix] = value


def flatten_metadata(branch: TreeBranch) -> list[tuple[str, str]]:
    """The ``(key, value)`` pairs sops writes for a metadata branch, sorted by key like sops.

    Values are strings with newlines escaped; ``None`` and empty containers leave no pair.
    """
    flat: dict[str, Any] = {}
    for key, value in branch:
        if not isinstance(key, str):
            continue
        if isinstance(value, TreeBranch | list):
            _flatten(value, key, flat)
        else:
            flat[key] = value
    out = []
    for key in sorted(flat, key=lambda k: k.encode("utf-8")):
        value = flat[key]
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = f"{value:.0f}" if key == "shamir_threshold" else str(value)
        else:
            text = str(value)
        out.append((key, text.replace("\n", "\\n")))
    return out


def _shown(key: str) -> str:
    """A committed key as an error message names it: bounded, as the key itself is not."""
    return f"{key[:64]!r}..." if len(key) > 64 else repr(key)


def _tokens(key: str) -> list[str | int]:
    parts = _TOKEN.split(key)
    if len(parts) > 2 * _MAX_DEPTH + 1:
        raise FormatError(f"sops metadata: key nested too deep ({_shown(key)})")
    tokens: list[str | int] = [parts[0]]
    for sep, text in zip(parts[1::2], parts[2::2], strict=True):
        if sep == MAP_SEPARATOR:
            tokens.append(text)
        else:
            try:
                index = int(text)
            except ValueError:
                index = 0  # Go's strconv.Atoi error is ignored by sops: index 0
            if not 0 <= index <= _MAX_LIST_INDEX:
                raise FormatError(f"sops metadata: list index out of range in {_shown(key)}")
            tokens.append(index)
    return tokens


def _place(
    root: dict[str, Any], tokens: list[str | int], value: Any, key: str, slots: list[int]
) -> None:
    node: Any = root
    for token, following in zip(tokens, [*tokens[1:], None], strict=True):
        # a map takes a str token, a list an int one: anything else (a value met on the way
        # included) mixes the two
        if not isinstance(node, dict | list) or isinstance(node, dict) != isinstance(token, str):
            raise FormatError(f"sops metadata: {_shown(key)} mixes a map, a list or a value")
        fresh: Any = {} if isinstance(following, str) else []
        if isinstance(node, dict) and isinstance(token, str):
            if following is None:
                node[token] = value
                return
            child = node.setdefault(token, fresh)
        elif isinstance(node, list) and isinstance(token, int):
            if following is None:
                node[token] = value
                return
            if node[token] is None:
                node[token] = fresh
            child = node[token]
        else:  # pragma: no cover - excluded by the check above
            raise FormatError(f"sops metadata: {_shown(key)} mixes a map, a list or a value")
        if isinstance(child, list) and isinstance(following, int) and following >= len(child):
            slots[0] += following + 1 - len(child)
            if slots[0] > _MAX_LIST_SLOTS:
                raise FormatError("sops metadata: too many list items")
            child.extend([None] * (following + 1 - len(child)))
        node = child


def _to_branch(value: Any) -> Any:
    if isinstance(value, dict):
        return TreeBranch((k, _to_branch(v)) for k, v in sorted(value.items()))
    if isinstance(value, list):
        return [_to_branch(v) for v in value]
    return value


def unflatten_metadata(pairs: list[tuple[str, str]]) -> TreeBranch:
    """The metadata branch from the ``sops_``-less pairs of a dotenv file or ``[sops]`` section."""
    root: dict[str, Any] = {}
    slots = [0]
    for key, raw in pairs:
        value: Any = raw.replace("\\n", "\n")
        if key == "mac_only_encrypted":
            value = value == "true"
        elif key == "shamir_threshold":
            try:
                value = int(value)
            except ValueError:
                try:
                    number = float(value)
                except ValueError:
                    number = 0.5
                if not math.isfinite(number) or number != int(number):
                    raise FormatError("sops metadata: shamir_threshold is not an integer") from None
                value = int(number)
        _place(root, _tokens(key), value, key, slots)
    branch: TreeBranch = _to_branch(root)
    return branch
