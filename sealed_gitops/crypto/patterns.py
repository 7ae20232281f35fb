"""Patterns a repository supplies, matched in time linear in the text: the one place they compile.

Why: a SOPS file's ``encrypted_regex`` and its three siblings sit in metadata the MAC does not
cover, ``.sops.yaml`` and ``.sgignore`` are whatever a committer wrote, and Python's ``re`` is a
backtracking engine. ``^(a+)+$`` against forty ``a`` and a ``!`` is 2**40 steps, and since ``re``
holds the interpreter while it matches, the operator's health endpoint froze with it (issue 11,
finding 6). Every such pattern therefore goes through :func:`compile_pattern`, which uses RE2: an
automaton, so matching is linear in the text whatever the pattern, and compiling is bounded by
:data:`MAX_PATTERN_BYTES` and :data:`MAX_PROGRAM_MEMORY`.

RE2 is also the right dialect: sops is written in Go, and Go's ``regexp`` *is* RE2 syntax and
semantics. What changes against Python's ``re`` is what Go already does: no backreferences or
lookaround (refused with an error that names the field), ``$`` is the end of the text (``re``
also matches before a final newline), ``\\d``/``\\w``/``\\s`` are ASCII, and ``\\pL``, ``\\Q…\\E``,
``[[:alpha:]]`` and ``(?U)`` work. :func:`glob_regex` turns a gitignore glob into the same syntax,
so ``.sgignore`` lines cost linear time too.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from sealed_gitops.errors import FormatError, SealedGitopsError

if TYPE_CHECKING:
    import re2

__all__ = [
    "MAX_PATTERN_BYTES",
    "MAX_PROGRAM_MEMORY",
    "Pattern",
    "compile_pattern",
    "glob_regex",
    "literal",
]

#: UTF-8 bytes of one pattern. Real sops rules are a few dozen characters; the cap keeps the
#: automaton small, because matching costs (text length) x (program size) in RE2's worst case.
MAX_PATTERN_BYTES = 1024

#: Bytes RE2 may spend on one compiled program and its DFA cache (RE2's own default is 8 MiB).
#: A pattern that needs more is refused as too large; when the DFA cache fills while matching,
#: RE2 falls back to its NFA, which is slower but still linear.
MAX_PROGRAM_MEMORY = 2 << 20


class Pattern:
    """A compiled pattern; :meth:`search` answers like Go's ``MatchString``."""

    __slots__ = ("_regex", "source")

    def __init__(self, source: str, regex: re2._Regexp[bytes]) -> None:
        self.source = source
        self._regex = regex

    def search(self, text: str) -> bool:
        """True when the pattern matches anywhere in ``text``.

        The text is matched as UTF-8; a lone surrogate (an undecodable file-name byte, or a
        ``\\udc80`` escape in JSON) becomes one unmatched-by-literals character, as Go turns an
        invalid byte into U+FFFD, instead of an error.
        """
        return self._regex.search(text.encode("utf-8", "surrogatepass")) is not None

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"


class _Refused(Exception):
    """Why RE2 would not compile a pattern (internal: mapped to the caller's error class)."""


def _options() -> re2.Options:
    import re2  # here, not at the top: see _compiled

    options = re2.Options()
    options.max_mem = MAX_PROGRAM_MEMORY
    options.log_errors = False  # RE2 would print the pattern on stderr: the error says enough
    return options


@lru_cache(maxsize=256)
def _compiled(source: str) -> Pattern:
    try:
        encoded = source.encode("utf-8", "surrogatepass")
    except UnicodeEncodeError as exc:  # pragma: no cover - surrogatepass encodes every str
        raise _Refused("not UTF-8") from exc
    if len(encoded) > MAX_PATTERN_BYTES:
        raise _Refused(f"longer than {MAX_PATTERN_BYTES} bytes")
    # Imported on the first pattern, not with the module: RE2 costs ~2 ms at start-up, and
    # decrypting a file whose metadata names no pattern never needs it (issue 16, start-up).
    import re2

    try:
        return Pattern(source, re2.compile(encoded, _options()))
    except re2.error as exc:
        detail = exc.args[0] if exc.args else "invalid"
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise _Refused(str(detail)) from None


def compile_pattern(
    source: str,
    *,
    what: str,
    error: type[SealedGitopsError] = FormatError,
    file: str | None = None,
) -> Pattern:
    """Compile ``source`` with RE2, or raise ``error`` naming ``what`` (the field) and ``file``.

    The message names the field and RE2's reason; it quotes the pattern only in part, since a
    pattern is configuration, not a value, but can be long.
    """
    try:
        return _compiled(source)
    except _Refused as exc:
        shown = source if len(source) <= 80 else source[:77] + "..."
        raise error(
            f"{what}: invalid regular expression {shown!r} ({exc}); patterns use Go's RE2 "
            "syntax, as sops does: no backreferences or lookaround",
            file=file,
        ) from None


def literal(text: str) -> str:
    """``text`` as RE2 syntax that matches exactly it (every ASCII symbol escaped)."""
    out = []
    for char in text:
        if not char.isascii() or char.isalnum() or char == "_":
            out.append(char)
        elif char.isprintable():
            out.append("\\" + char)
        else:  # a control character: spelled as a code point, never as raw syntax
            out.append(f"\\x{{{ord(char):x}}}")
    return "".join(out)


def glob_regex(glob: str) -> str:
    """A gitignore glob as unanchored RE2 syntax (the caller anchors it and adds ``(?s)``).

    ``*`` and ``?`` stay inside one path segment, ``**/`` at a segment start spans directories,
    a trailing ``**`` matches everything below, ``[...]`` is a class (``[!...]`` negated) and a
    backslash makes the next character literal. An automaton runs the result, so ten stars
    against a long name cost what one does.
    """
    out: list[str] = []
    i = 0
    while i < len(glob):
        at_segment_start = i == 0 or glob[i - 1] == "/"
        if at_segment_start and glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif at_segment_start and glob.startswith("**", i) and i + 2 == len(glob):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        elif glob[i] == "[" and "]" in glob[i + 2 :]:
            end = glob.index("]", i + 2)
            body = glob[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
        elif glob[i] == "\\" and i + 1 < len(glob):
            out.append(literal(glob[i + 1]))
            i += 2
        else:
            out.append(literal(glob[i]))
            i += 1
    return "".join(out)
