"""The single redaction layer: every log line, Event, status message and error passes through here.

Why one place: a secret leaks through whichever path was forgotten. Instead of asking each caller
to be careful, every plaintext value the decryption stage produces is *registered* here, and every
text that leaves the process (``str()`` of any :class:`~sealed_gitops.errors.SealedGitopsError`,
every log record through :class:`RedactingFilter`, every Event and status message the operator
writes) is passed through :func:`redact`, which replaces each registered value, in every form an
encoder gives it (base64, JSON, ``repr()``, Go ``%q``: :mod:`.forms`), with ``[REDACTED]``.

Three rules keep redaction from hiding what it should not (issue 11, findings 8 and 10):

- **Redact, then cut.** A value cut in half is no longer recognised, so a text is never shortened
  before it is redacted: :func:`cut` is the one way to do both, and every sink with a size limit
  (API error text, conditions, Events) uses it.
- **Scopes.** The operator reconciles each tenant's objects inside :func:`scope` (the tenant's
  namespace). A value registered there masks that tenant's status and Events and every log line,
  but not another tenant's status: a committer of team-b who commits the value ``Applied`` blanks
  nothing of team-a. Forms of at least :data:`GLOBAL_LENGTH` characters are registered for every
  scope: those are keys and long credentials, which no ordinary text matches by chance, and a
  cache that carries key material from one reconcile to another keeps them masked everywhere.
  Outside any scope (the CLI, tests, log records) every registered form applies.
- **Identities are not values** (invariant 8). Commit, revision, author and object names come from
  Git and the API; a message that names them is built with :func:`compose`, which redacts the free
  text between them and inserts each :class:`Identity` afterwards, so no registered value can
  blank who changed what.

Whole values shorter than :data:`~.forms.MIN_LENGTH` and lines of multi-line values shorter than
:data:`~.forms.MIN_LINE_LENGTH` are not registered; see :mod:`.forms` for the trade-off. Such
values still never reach messages by construction: no code path formats values.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from sealed_gitops.redact.forms import MIN_LENGTH, MIN_LINE_LENGTH, expand
from sealed_gitops.redact.registry import Registry, mask

__all__ = [
    "GLOBAL_LENGTH",
    "MASK",
    "MIN_LENGTH",
    "MIN_LINE_LENGTH",
    "Identity",
    "Redacted",
    "RedactingFilter",
    "Snapshot",
    "compose",
    "cut",
    "enter_scope",
    "install_logging_filter",
    "is_registered",
    "redact",
    "redact_everywhere",
    "register",
    "restore",
    "scope",
    "snapshot",
]

#: What a redacted value is replaced with.
MASK = "[REDACTED]"

#: Forms at least this long are registered for every scope (see the module docstring): 32
#: characters is shorter than any key (an age identity is 74, a PEM line 64) and longer than any
#: word or name a committer could use to blank another tenant's text.
GLOBAL_LENGTH = 32

#: Longest identity inserted by :func:`compose`; a Git author can be any length.
_MAX_IDENTITY = 256

_GLOBAL = Registry()
_scoped: dict[str, Registry] = {}
_scopes_lock = threading.Lock()
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "sealed_gitops_redaction_scope", default=None
)


@contextlib.contextmanager
def scope(name: str) -> Iterator[None]:
    """Register and redact as tenant ``name`` (a namespace) inside the ``with`` block.

    A context variable: it follows ``asyncio.to_thread`` and tasks, and ends with the block.
    """
    token = _current.set(name)
    try:
        yield
    finally:
        _current.reset(token)


def enter_scope(name: str) -> None:
    """Register and redact as tenant ``name`` for the rest of the current context.

    For a task or thread that serves one tenant for its whole life (the operator's reconcile loop
    of one object is an asyncio task of its own, and ``asyncio.to_thread`` carries the scope into
    its worker thread); elsewhere use :func:`scope`.
    """
    _current.set(name)


def _scoped_registry(name: str) -> Registry:
    with _scopes_lock:
        found = _scoped.get(name)
        if found is None:
            found = _scoped[name] = Registry()
        return found


def _visible() -> list[Registry]:
    """The registries whose forms mask text here: one scope's and the global one, or all."""
    name = _current.get()
    with _scopes_lock:
        if name is None:
            return [_GLOBAL, *_scoped.values()]
        own = _scoped.get(name)
    return [_GLOBAL] if own is None else [_GLOBAL, own]


def register(value: str | bytes) -> None:
    """Remember a plaintext value so that :func:`redact` masks it (in all its forms) from now on."""
    name = _current.get()
    # A value registered before in the same place is not expanded again (several stages
    # register the same plaintext); which registry remembers that is the one that got the
    # value's short forms, and a restore makes every registry forget (see restore()).
    target = _GLOBAL if name is None else _scoped_registry(name)
    if target.holds_value(value):
        return
    forms = expand(value)
    if name is None:
        _GLOBAL.add_value(value, forms)
        return
    _GLOBAL.add(f for f in forms if len(f) >= GLOBAL_LENGTH)
    target.add_value(value, [f for f in forms if len(f) < GLOBAL_LENGTH])


def is_registered(value: str | bytes) -> bool:
    """Whether ``value`` itself is masked here (in the current scope, or anywhere outside one)."""
    # expand(value)[0] is the text itself (or nothing when it is too short): no need to
    # compute the other forms just to look that one up
    text = value if isinstance(value, str) else value.decode("utf-8", "surrogateescape")
    if len(text) < MIN_LENGTH:
        return False
    return any(text in registry for registry in _visible())


@dataclass(frozen=True)
class Snapshot:
    """The registered forms at one moment, per scope (tests only: production never forgets)."""

    global_forms: frozenset[str]
    scoped: tuple[tuple[str, frozenset[str]], ...]


def snapshot() -> Snapshot:
    with _scopes_lock:
        scoped = tuple((name, reg.frozen()) for name, reg in _scoped.items())
    return Snapshot(_GLOBAL.frozen(), scoped)


def restore(saved: Snapshot) -> None:
    """Put the registry back to a :func:`snapshot`; with it a test suite isolates its tests."""
    if _GLOBAL.frozen() != saved.global_forms:
        _GLOBAL.reset(saved.global_forms)
    _GLOBAL.forget_values()
    with _scopes_lock:
        wanted = dict(saved.scoped)
        for name in list(_scoped):
            if name not in wanted:
                del _scoped[name]
            elif _scoped[name].frozen() != wanted[name]:
                _scoped[name] = Registry(wanted[name])
            else:
                # its forms are as saved, but a value it remembers may have lost its long
                # forms from the global registry: the next registration expands it again
                _scoped[name].forget_values()
        for name, forms in wanted.items():
            _scoped.setdefault(name, Registry(forms))


class Redacted(str):
    """A text that has been through redaction already (built by :func:`compose`).

    :func:`redact` returns it unchanged, so the identities :func:`compose` put in after the
    redaction stay as they are when a sink redacts again. Any operation on it (slicing,
    concatenation) gives a plain ``str``, which is redacted again: the safe way round.
    """

    __slots__ = ()


class Identity(str):
    """A name that comes from Git or the API: a commit, revision, author or object name.

    Never matched against registered values (invariant 8): :func:`compose` inserts it after the
    free text around it was redacted. Control characters become spaces and it is cut to a bounded
    length, so an author name cannot forge a second line of an Event or fill a status.
    """

    __slots__ = ()


def redact(text: str) -> str:
    """Return ``text`` with every registered value visible here replaced by :data:`MASK`."""
    if not text or isinstance(text, Redacted):
        return text
    return mask(text, [r.index for r in _visible()], MASK)


def redact_everywhere(text: str) -> str:
    """Like :func:`redact`, with the forms of every scope: for sinks every tenant reads (logs)."""
    if not text or isinstance(text, Redacted):
        return text
    with _scopes_lock:
        registries = [_GLOBAL, *_scoped.values()]
    return mask(text, [r.index for r in registries], MASK)


def _identity(text: str) -> str:
    clean = "".join(ch if ch.isprintable() else " " for ch in text)
    return clean if len(clean) <= _MAX_IDENTITY else clean[: _MAX_IDENTITY - 3] + "..."


def compose(*parts: str) -> Redacted:
    """Join ``parts``: plain ``str`` parts redacted, :class:`Identity` parts inserted as is."""
    return Redacted("".join(_identity(p) if isinstance(p, Identity) else redact(p) for p in parts))


def cut(text: str, *, limit: int, unit: str = "chars", marker: str = "...") -> str:
    """``text`` redacted, *then* cut to ``limit`` characters (``unit="bytes"``: UTF-8 bytes).

    The one way to shorten a message: cutting first would leave half a value that no longer
    matches its registered forms. Cutting a redacted text can only drop characters.
    """
    text = redact(text)
    if unit == "bytes":
        data = text.encode("utf-8")
        if len(data) <= limit:
            return text
        return data[: limit - len(marker.encode())].decode("utf-8", "ignore") + marker
    if len(text) <= limit:
        return text
    return text[: limit - len(marker)] + marker


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the fully formatted message of every record it sees.

    Log lines go to one stream every tenant's operator shares: the forms of every scope apply.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not take logging down
            message = str(record.msg)
        record.msg = redact_everywhere(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            # The formatter would print the exception text unredacted; keep only a redacted form.
            text = redact_everywhere(f"{type(exc).__name__}: {exc}")
            record.msg = f"{record.msg}: {text}"
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
