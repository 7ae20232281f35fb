"""The registered forms of one redaction scope, compiled into few patterns, and how to mask.

Why chunks: one pattern over every value must be recompiled whenever a value is added, and with
thousands of values that costs half a second per new secret. New values go into a small chunk; a
chunk merges with the one before it once it is at least half its size, so there are only
O(log n) chunks and each value is recompiled O(log n) times in all.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

__all__ = ["Registry", "mask"]


class _Chunk:
    """Some registered forms and one compiled pattern matching any of them, longest first."""

    def __init__(self, values: list[str]) -> None:
        self.values = values
        ordered = sorted(values, key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(v) for v in ordered))


class Registry:
    """The forms registered in one scope (thread-safe)."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.lock = threading.Lock()
        self.values: set[str] = set(values)
        self.chunks: list[_Chunk] = []
        self.pending: list[str] = list(self.values)

    def add(self, forms: Iterable[str]) -> None:
        with self.lock:
            for form in forms:
                if form not in self.values:
                    self.values.add(form)
                    self.pending.append(form)

    def reset(self, values: Iterable[str]) -> None:
        with self.lock:
            self.values = set(values)
            self.chunks = []
            self.pending = list(self.values)

    def __contains__(self, form: object) -> bool:
        with self.lock:
            return form in self.values

    def __len__(self) -> int:
        with self.lock:
            return len(self.values)

    def frozen(self) -> frozenset[str]:
        with self.lock:
            return frozenset(self.values)

    def patterns(self) -> list[re.Pattern[str]]:
        with self.lock:
            if self.pending:
                self.chunks.append(_Chunk(self.pending))
                self.pending = []
                while len(self.chunks) >= 2 and len(self.chunks[-2].values) <= 2 * len(
                    self.chunks[-1].values
                ):
                    last = self.chunks.pop()
                    self.chunks[-1] = _Chunk(self.chunks[-1].values + last.values)
            return [chunk.pattern for chunk in self.chunks]


def mask(text: str, patterns: list[re.Pattern[str]], replacement: str) -> str:
    """``text`` with every match of any pattern replaced by ``replacement``.

    Where matches overlap (one value contains or runs into another, or two scopes hold related
    values), the whole covered stretch becomes one mask, so no part of a longer value is left.
    """
    if not text or not patterns:
        return text
    if len(patterns) == 1:
        return patterns[0].sub(replacement, text)
    spans = sorted(m.span() for pattern in patterns for m in pattern.finditer(text))
    if not spans:
        return text
    out: list[str] = []
    position = 0
    start, end = spans[0]
    for s_start, s_end in spans[1:]:
        if s_start <= end:
            end = max(end, s_end)
            continue
        out.append(text[position:start])
        out.append(replacement)
        position, (start, end) = end, (s_start, s_end)
    out.append(text[position:start])
    out.append(replacement)
    out.append(text[end:])
    return "".join(out)
