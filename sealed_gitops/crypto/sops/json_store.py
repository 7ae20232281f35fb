"""Reading and writing JSON SOPS documents the way sops does (Go ``encoding/json``, tab indent).

Why: number types decide ciphertext types and MAC bytes. sops 3.11 reads JSON with Go's
``Decoder.Token`` (no ``UseNumber``), so every number, ``1`` included, is a ``float64`` and is
encrypted as ``type:float`` (checked against the sops 3.11 binary). Integers stay integers here
(:class:`~.values.JsonInt`, an ``int`` that encrypts as ``type:float``), so an unencrypted
``replicas: 3`` is not turned into ``3.0`` for the rest of the pipeline. Output
mirrors ``json.MarshalIndent(v, "", "\\t")`` including Go's escaping of ``<``, ``>`` and ``&``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sealed_gitops.errors import FormatError, LimitExceeded

from .tree import TreeBranch
from .values import Comment, JsonInt, format_float_json

__all__ = ["dump_json", "dump_json_value", "load_json"]

_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _pairs(pairs: list[tuple[str, Any]]) -> TreeBranch:
    branch = TreeBranch()
    seen: set[str] = set()
    for key, value in pairs:
        if key in seen:
            raise FormatError(f"duplicate key {key!r}")
        seen.add(key)
        branch.append((key, value))
    return branch


def _int(text: str) -> int | float:
    """Go's float64 of the literal: an ``int`` (:class:`JsonInt`) only while the float is exact,
    so the value, its MAC bytes and what sops decrypts agree (2**53 + 1 becomes 2**53)."""
    value = float(text)
    negative_zero = value == 0 and text.startswith("-")  # a float: Go writes it back as -0
    if value.is_integer() and abs(value) <= 2**53 and not negative_zero:
        return JsonInt(int(value))
    return value


def _constant(name: str) -> Any:
    raise FormatError(f"invalid JSON constant {name}")


def load_json(text: str) -> list[TreeBranch]:
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_int=_int, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise FormatError(f"invalid JSON: {exc.msg}", location=f"line {exc.lineno}") from exc
    except RecursionError as exc:
        raise LimitExceeded("JSON nesting is too deep") from exc
    if not isinstance(value, TreeBranch):
        raise FormatError("a JSON SOPS document must be an object")
    return [value]


def _string(text: str) -> str:
    out = json.dumps(text, ensure_ascii=False)
    if any(c in out for c in _GO_ESCAPES):
        out = "".join(_GO_ESCAPES.get(c, c) for c in out)
    return out


def _write(value: Any, indent: str, out: list[str], step: str = "\t") -> None:
    if isinstance(value, TreeBranch):
        items = [(k, v) for k, v in value if isinstance(k, str)]
        if not items:
            out.append("{}")
            return
        inner = indent + step
        out.append("{\n")
        for i, (key, item) in enumerate(items):
            out.append(f"{inner}{_string(key)}: ")
            _write(item, inner, out, step)
            out.append(",\n" if i < len(items) - 1 else "\n")
        out.append(indent + "}")
    elif isinstance(value, list):
        items = [v for v in value if not isinstance(v, Comment)]
        if not items:
            out.append("[]")
            return
        inner = indent + step
        out.append("[\n")
        for i, item in enumerate(items):
            out.append(inner)
            _write(item, inner, out, step)
            out.append(",\n" if i < len(items) - 1 else "\n")
        out.append(indent + "]")
    elif value is None:
        out.append("null")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(format_float_json(value))
    elif isinstance(value, bytes):
        out.append(_string(base64.b64encode(value).decode("ascii")))
    else:
        out.append(_string(str(value)))


def dump_json(branches: list[TreeBranch], *, indent: str = "\t") -> bytes:
    """Write the first branch (JSON holds one document) with a trailing newline.

    ``indent`` is one level: a tab, or the spaces of ``.sops.yaml`` ``stores: json: indent``.
    """
    out: list[str] = []
    _write(branches[0] if branches else TreeBranch(), "", out, indent)
    return ("".join(out) + "\n").encode("utf-8", "surrogateescape")


def dump_json_value(value: Any) -> bytes:
    """One value on its own, as ``sops -d --extract`` prints a non-string (no newline)."""
    out: list[str] = []
    _write(value, "", out)
    return "".join(out).encode("utf-8", "surrogateescape")
