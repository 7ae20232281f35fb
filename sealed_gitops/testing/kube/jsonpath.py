"""The JSONPath of a CRD's ``additionalPrinterColumns``, evaluated the way kube-apiserver does.

Why: ``kubectl get syncs`` prints what the server's Table says, and for a custom resource the
server computes each cell from the column's ``jsonPath`` (client-go's ``util/jsonpath`` with
missing keys allowed, braces added around the path). Printer columns use a small part of that
language, and this module is that part: child fields (``.a.b``), quoted keys (``['a.b']``),
indexes (``[0]``, ``[-1]``), wildcards (``[*]``, ``.*``) and filters on a list
(``[?(@.type=="Ready")]``, ``[?(@.ready)]``) with ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``
against a quoted string, a number, ``true``/``false`` or another ``@`` path. A path outside the
subset raises :class:`JSONPathError`, which the CRD check turns into a 422, so a column never
prints silently wrong. Only the first result becomes a cell (the server's convertor does the same).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["JSONPathError", "compile_path", "text_of"]

Step = Callable[[Any], Iterator[Any]]

_FIELD = re.compile(r"\.([A-Za-z0-9_\-/]+|\*)")
_BRACKET = re.compile(r"\[(?:'([^']*)'|\"([^\"]*)\"|(-?\d+)|(\*))\]")
_FILTER = re.compile(r"\[\?\(\s*@((?:\.[A-Za-z0-9_\-/]+)*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)\]")
_MISSING = object()


class JSONPathError(ValueError):
    """A path outside the supported subset, or not a JSONPath at all."""


def _child(key: str) -> Step:
    def step(value: Any) -> Iterator[Any]:
        if key == "*":
            if isinstance(value, dict):
                yield from value.values()
            elif isinstance(value, list):
                yield from value
        elif isinstance(value, dict) and key in value:
            yield value[key]

    return step


def _index(at: int) -> Step:
    def step(value: Any) -> Iterator[Any]:
        if isinstance(value, list) and -len(value) <= at < len(value):
            yield value[at]

    return step


def _lookup(value: Any, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError as exc:
        raise JSONPathError(f"unrecognized filter operand {text!r}") from exc


def _compare(left: Any, op: str, right: Any) -> bool:
    if op in ("==", "!="):
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right))
        same = left == right if numbers or type(left) is type(right) else False
        return bool(same) if op == "==" else not same
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (left, right)):
        return False
    return bool(
        {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    )


def _filter(path: str, op: str | None, operand: str | None) -> Step:
    keys = [k for k in path.split(".") if k]
    other: list[str] | None = None
    literal: Any = None
    if operand is not None:
        stripped = operand.strip()
        if stripped.startswith("@"):
            other = [k for k in stripped[1:].split(".") if k]
        else:
            literal = _literal(stripped)

    def keep(item: Any) -> bool:
        left = _lookup(item, keys)
        if op is None:
            return left is not _MISSING
        right = _lookup(item, other) if other is not None else literal
        if left is _MISSING or right is _MISSING:
            return False
        return _compare(left, op, right)

    def step(value: Any) -> Iterator[Any]:
        if isinstance(value, list):
            yield from (item for item in value if keep(item))

    return step


def compile_path(path: str) -> Callable[[Any], list[Any]]:
    """The evaluator of ``path`` (``.status.conditions[?(@.type=="Ready")].status``)."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if not text.startswith(".") and not text.startswith("["):
        raise JSONPathError(f"must be a simple json path starting with .: {path!r}")
    steps: list[Step] = []
    at = 0
    while at < len(text):
        for pattern, build in (
            (_FIELD, lambda m: _child(m.group(1))),
            (_FILTER, lambda m: _filter(m.group(1), m.group(2), m.group(3))),
            (_BRACKET, _bracket),
        ):
            found = pattern.match(text, at)
            if found:
                steps.append(build(found))
                at = found.end()
                break
        else:
            raise JSONPathError(f"unrecognized JSONPath {path!r} at {text[at:]!r}")

    def evaluate(obj: Any) -> list[Any]:
        values = [obj]
        for step in steps:
            values = [out for value in values for out in step(value)]
        return values

    return evaluate


def _bracket(found: re.Match[str]) -> Step:
    single, double, number, star = found.groups()
    if number is not None:
        return _index(int(number))
    if star is not None:
        return _child("*")
    return _child(single if single is not None else double)


def _go_float(value: float) -> str:
    """A float64 as Go's ``fmt.Sprint`` writes it (shortest form, exponent from 1e21)."""
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        return f"{mantissa}e{sign}{abs(int(exponent)):02d}"
    return text


def text_of(value: Any) -> str:
    """A result as client-go's JSONPath prints it: JSON for objects and lists, else plain."""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if value is None:
        return "<nil>"
    return str(value)
