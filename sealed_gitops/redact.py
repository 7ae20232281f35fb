"""The single redaction layer: every log line, Event, status message and error passes through here.

Why one place: a secret leaks through whichever path was forgotten. Instead of asking each caller
to be careful, every plaintext value the decryption stage produces is *registered* here, and every
text that leaves the process (``str()`` of any :class:`~sealed_gitops.errors.SealedGitopsError`,
every log record through :class:`RedactingFilter`, every Event and status message the operator
writes) is passed through :func:`redact`, which replaces each registered value, and its base64
form, with ``[REDACTED]``.

Values shorter than :data:`MIN_LENGTH` are not registered: redacting every ``1`` or ``true`` in
every message would make all output unreadable while protecting nothing a guesser could not
guess. Such values still never reach messages by construction: no code path formats values.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
import threading
from collections.abc import Iterable

__all__ = [
    "MASK",
    "MIN_LENGTH",
    "RedactingFilter",
    "install_logging_filter",
    "is_registered",
    "redact",
    "register",
    "register_many",
    "registered_count",
    "restore",
    "snapshot",
]

#: What a redacted value is replaced with.
MASK = "[REDACTED]"

#: Shortest value (in characters) that is registered; see the module docstring for why.
MIN_LENGTH = 4


class _Chunk:
    """Some registered forms and one compiled pattern matching any of them, longest first."""

    def __init__(self, values: list[str]) -> None:
        self.values = values
        ordered = sorted(values, key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(v) for v in ordered))


class _Registry:
    """The registered forms, compiled in chunks that merge like a log-structured tree.

    Why chunks: one pattern over every value must be recompiled whenever a value is added, and
    with thousands of values that costs half a second per new secret. New values go into a small
    chunk; a chunk merges with the one before it once it is at least half its size, so there are
    only O(log n) chunks and each value is recompiled O(log n) times in all.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: set[str] = set()
        self.chunks: list[_Chunk] = []
        self.pending: list[str] = []

    def add(self, forms: list[str]) -> None:
        with self.lock:
            for form in forms:
                if form not in self.values:
                    self.values.add(form)
                    self.pending.append(form)

    def reset(self, values: frozenset[str]) -> None:
        with self.lock:
            self.values = set(values)
            self.chunks = []
            self.pending = list(values)

    def patterns(self) -> list[re.Pattern[str]]:
        with self.lock:
            if self.pending:
                self.chunks.append(_Chunk(self.pending))
                self.pending = []
                while (
                    len(self.chunks) >= 2
                    and len(self.chunks[-2].values) <= 2 * len(self.chunks[-1].values)
                ):
                    last = self.chunks.pop()
                    self.chunks[-1] = _Chunk(self.chunks[-1].values + last.values)
            return [chunk.pattern for chunk in self.chunks]


_registry = _Registry()


def _forms(value: str | bytes) -> list[str]:
    """The textual forms in which a value may show up in a message."""
    forms: list[str] = []
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    if isinstance(value, str):
        forms.append(value)
    else:
        with contextlib.suppress(UnicodeDecodeError):
            forms.append(value.decode("utf-8"))
    # Secret.data carries base64; a value may also appear in that form in an API error.
    forms.append(base64.b64encode(raw).decode("ascii"))
    # Each line of a multi-line value (a PEM key) is a secret on its own in a truncated message.
    for text in list(forms):
        if "\n" in text:
            forms.extend(line.strip() for line in text.splitlines())
    return [f for f in forms if len(f) >= MIN_LENGTH]


def register(value: str | bytes) -> None:
    """Remember a plaintext value so that :func:`redact` masks it from now on."""
    forms = _forms(value)
    if forms:
        _registry.add(forms)


def register_many(values: Iterable[str | bytes]) -> None:
    for value in values:
        register(value)


def is_registered(value: str | bytes) -> bool:
    forms = _forms(value)
    with _registry.lock:
        return bool(forms) and forms[0] in _registry.values


def registered_count() -> int:
    with _registry.lock:
        return len(_registry.values)


def snapshot() -> frozenset[str]:
    """The registered forms now; with :func:`restore`, lets a test suite isolate its tests."""
    with _registry.lock:
        return frozenset(_registry.values)


def restore(saved: frozenset[str]) -> None:
    """Put the registry back to a :func:`snapshot` (tests only: production never forgets)."""
    with _registry.lock:
        unchanged = _registry.values == saved
    if not unchanged:
        _registry.reset(saved)


def redact(text: str) -> str:
    """Return ``text`` with every registered value replaced by :data:`MASK`.

    Where registered values overlap (one contains or runs into another), the whole covered
    stretch becomes one mask, so no part of a longer value is left visible.
    """
    if not text:
        return text
    patterns = _registry.patterns()
    if not patterns:
        return text
    if len(patterns) == 1:
        return patterns[0].sub(MASK, text)
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
        out.append(MASK)
        position, (start, end) = end, (s_start, s_end)
    out.append(text[position:start])
    out.append(MASK)
    out.append(text[end:])
    return "".join(out)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the fully formatted message of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not take logging down
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            # The formatter would print the exception text unredacted; keep only a redacted form.
            record.msg = f"{record.msg}: {redact(f'{type(exc).__name__}: {exc}')}"
            record.exc_info = None
            record.exc_text = None
        return True


def install_logging_filter(logger: logging.Logger | None = None) -> None:
    """Attach :class:`RedactingFilter` to every handler of ``logger`` (the root by default)."""
    target = logger or logging.getLogger()
    flt = RedactingFilter()
    target.addFilter(flt)
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(flt)
