"""The registered forms of one redaction scope, indexed by their first characters, and how to mask.

Why an index and not one regular expression: Python's ``re`` tries every branch of an alternation
at every position of the text, so with the ~13-35 forms of each of 1,000 Secrets one short log line
cost some 20 ms to redact (and every new value meant recompiling). Every form is at least
:data:`~.forms.MIN_LENGTH` characters long, so its first :data:`KEY` characters pick the few forms
worth comparing at a position: adding a form is a dictionary insert, and masking a text costs one
lookup per position and scope, whatever the number of forms.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from sealed_gitops.redact.forms import MIN_LENGTH

__all__ = ["KEY", "Registry", "mask"]

#: Characters of a form that index it; forms shorter than this are never registered (``expand``).
KEY = MIN_LENGTH

#: First :data:`KEY` characters -> the forms that start with them, longest first.
Index = dict[str, list[str]]


class Registry:
    """The forms registered in one scope (thread-safe: readers never see a half-updated bucket)."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.lock = threading.Lock()
        self.values: set[str] = set()
        self.index: Index = {}
        self.add(values)

    def add(self, forms: Iterable[str]) -> None:
        with self.lock:
            for form in forms:
                if len(form) < KEY or form in self.values:
                    continue
                self.values.add(form)
                key = form[:KEY]
                # A new list, assigned at once: a concurrent mask() reads the old or the new one.
                self.index[key] = sorted([*self.index.get(key, ()), form], key=len, reverse=True)

    def reset(self, values: Iterable[str]) -> None:
        fresh = Registry(values)
        with self.lock:
            self.values, self.index = fresh.values, fresh.index

    def __contains__(self, form: object) -> bool:
        with self.lock:
            return form in self.values

    def __len__(self) -> int:
        with self.lock:
            return len(self.values)

    def frozen(self) -> frozenset[str]:
        with self.lock:
            return frozenset(self.values)


def mask(text: str, indexes: Sequence[Index], replacement: str) -> str:
    """``text`` with every form in any of ``indexes`` replaced by ``replacement``.

    At each position the longest form that starts there counts. Where matches overlap or touch
    (one value contains or runs into another, or two scopes hold related values), the whole
    covered stretch becomes one mask, so no part of a longer value is left.
    """
    indexes = [index for index in indexes if index]
    if not text or not indexes:
        return text
    out: list[str] = []
    position = 0
    start = end = -1
    for i in range(len(text) - KEY + 1):
        key = text[i : i + KEY]
        longest = 0
        for index in indexes:
            for form in index.get(key, ()):
                if len(form) <= longest:
                    break
                if text.startswith(form, i):
                    longest = len(form)
                    break
        if not longest:
            continue
        if start >= 0 and i <= end:
            end = max(end, i + longest)
            continue
        if start >= 0:
            out += (text[position:start], replacement)
            position = end
        start, end = i, i + longest
    if start < 0:
        return text
    out += (text[position:start], replacement, text[end:])
    return "".join(out)
