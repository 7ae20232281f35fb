"""The registered forms of one redaction scope, indexed by their first characters, and how to mask.

Why an index and not one regular expression: Python's ``re`` tries every branch of an alternation
at every position of the text, so with the ~13-35 forms of each of 1,000 Secrets one short log line
cost some 20 ms to redact (and every new value meant recompiling). Every form is at least
:data:`~.forms.MIN_LENGTH` characters long, so its first :data:`KEY` characters pick the few forms
worth comparing at a position: adding a form is a dictionary insert, and masking a text costs one
lookup per position and scope, whatever the number of forms.
"""

from __future__ import annotations

import bisect
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
        #: the values whose every form was added here (see :meth:`holds_value`)
        self.sources: set[str | bytes] = set()
        self.add(values)

    def add(self, forms: Iterable[str]) -> None:
        with self.lock:
            for form in forms:
                if len(form) < KEY or form in self.values:
                    continue
                self.values.add(form)
                key = form[:KEY]
                # A new list, assigned at once: a concurrent mask() reads the old or the new one.
                # Kept longest first by inserting in place, not sorting again: values with a
                # common prefix (URLs, one password scheme) made each add cost a sort of them all.
                bucket = list(self.index.get(key, ()))
                bucket.insert(bisect.bisect_right(bucket, -len(form), key=_minus_len), form)
                self.index[key] = bucket

    def holds_value(self, value: str | bytes) -> bool:
        """Whether :meth:`add_value` added every form of ``value`` here already: the same
        plaintext is registered by several stages (the tree walk, the document walk), and
        expanding it into its forms again is most of the cost of registering it."""
        return value in self.sources

    def add_value(self, value: str | bytes, forms: Iterable[str]) -> None:
        """Add the ``forms`` of ``value`` and remember that it holds all of them."""
        self.add(forms)
        with self.lock:
            self.sources.add(value)

    def forget_values(self) -> None:
        """Forget which values were added whole (their forms stay): the next registration of
        each expands it again (after a restore, whose other registries may have lost forms)."""
        with self.lock:
            self.sources.clear()

    def reset(self, values: Iterable[str]) -> None:
        fresh = Registry(values)
        with self.lock:
            self.values, self.index, self.sources = fresh.values, fresh.index, fresh.sources

    def __contains__(self, form: object) -> bool:
        with self.lock:
            return form in self.values

    def __len__(self) -> int:
        with self.lock:
            return len(self.values)

    def frozen(self) -> frozenset[str]:
        with self.lock:
            return frozenset(self.values)


def _minus_len(form: str) -> int:
    return -len(form)


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
