"""The textual forms in which one secret value can show up in a message.

Why this module exists: a value is rarely quoted as it is. An API server quotes an invalid value
with Go's ``%q`` (``field.Invalid``), and the whole patched object as Go-quoted JSON; a Python
error shows ``repr()``; a JSON log line or status escapes it as JSON; Secret ``data`` carries it in
base64. Redaction that knows only the exact value misses every one of those, so each registered
value is expanded here into the forms it takes in those encoders, and each of them is registered.
The expansions are exact re-implementations of the encoders (checked in the tests against vectors
produced by Go's ``strconv.Quote`` and ``encoding/json``), not guesses.

Which lines of a multi-line value count: a line is registered on its own only if it is at least
:data:`MIN_LINE_LENGTH` characters long and is not PEM armour. Lines exist as forms because a
message cut by someone else (a git error, an API server) may show one line of a PEM key; such
lines are long and random. Short lines of a multi-line value (``user = admin``, ``Mallory <m@x>``)
are structure that ordinary text shares, and registering them let a committer blank the same text
in every later message (issue 11, finding 10); a short line is still masked inside the whole value.
"""

from __future__ import annotations

import base64
import json

__all__ = ["MIN_LENGTH", "MIN_LINE_LENGTH", "expand", "go_json", "go_quote", "py_repr_forms"]

#: Shortest whole value (in characters) that is registered. Shorter values (``1``, ``yes``) are
#: words ordinary text is full of: masking them would make messages unreadable and protect
#: nothing a guesser could not guess. They never reach messages by construction.
MIN_LENGTH = 4

#: Shortest line of a multi-line value that is registered on its own (see the module docstring).
#: 16 characters: a PEM body line is 64, a token or password line worth hiding is rarely shorter,
#: while a name-and-address line or a ``key = value`` line of a config file usually is.
MIN_LINE_LENGTH = 16

_GO_SHORT = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}
_GO_JSON_EXTRA = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def go_quote(text: str) -> str:
    """The inside of Go's ``strconv.Quote(text)`` (what ``%q`` prints), without the quotes.

    Lone surrogates from ``surrogateescape`` stand for undecodable bytes, which Go prints as
    ``\\xHH``.
    """
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if ch in _GO_SHORT:
            out.append(_GO_SHORT[ch])
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif ch.isprintable():  # the same classes as Go's unicode.IsPrint
            out.append(ch)
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def go_json(text: str) -> str:
    """The inside of Go's ``json.Marshal(text)`` (HTML-safe escaping), without the quotes."""
    inner = json.dumps(text, ensure_ascii=False)[1:-1]
    return "".join(_GO_JSON_EXTRA.get(ch, ch) for ch in inner)


def py_repr_forms(text: str) -> list[str]:
    """The inside of ``repr(text)`` both ways Python quotes: as ``repr`` picks for this text
    alone, and with ``'`` escaped (as it appears inside a longer repr that holds both quotes)."""
    alone = repr(text)[1:-1]
    # repr picks single quotes and escapes ' when the text holds both kinds of quote.
    both = repr(text + "'\"")[1:-1][:-3]
    return [alone, both]


#: characters some quoting below changes; printable ASCII without them is the same in every form
_QUOTED = frozenset("\"'\\<>&")


def _escaped(text: str) -> list[str]:
    """``text`` as JSON (ASCII and not), Go JSON, Go %q, Go %q of Go JSON, and repr() show it."""
    # Most secret values (tokens, passwords, base64) are printable ASCII that no quoting
    # changes: every form is the text itself. Skipping the ten quotings is most of the cost of
    # registering a value (a build of 300 Secrets spent a third of its time here).
    if text.isascii() and text.isprintable() and _QUOTED.isdisjoint(text):
        return [text]
    return _escaped_all(text)


def _escaped_all(text: str) -> list[str]:
    """:func:`_escaped` without the shortcut (every quoting computed)."""
    try:
        text.encode("utf-8")
        decodable = True
    except UnicodeEncodeError:  # lone surrogates: undecodable bytes
        decodable = False
    forms = [text, go_quote(text), *py_repr_forms(text)]
    if decodable:
        for as_json in (
            json.dumps(text)[1:-1],  # what the Python client sends
            json.dumps(text, ensure_ascii=False)[1:-1],
            go_json(text),  # what an API server or kubectl writes
        ):
            # an API server's 422 for a patch quotes the patched object's JSON with %q
            forms += [as_json, go_quote(as_json)]
    return forms


def _base64(raw: bytes) -> list[str]:
    padded = base64.b64encode(raw).decode("ascii")
    # the URL-safe alphabet differs in two characters only: replacing them is what
    # urlsafe_b64encode does, without encoding a second time and a bytes.translate
    urlsafe = padded.replace("+", "-").replace("/", "_")
    return [padded, padded.rstrip("="), urlsafe, urlsafe.rstrip("=")]


def _is_armour(line: str) -> bool:
    return line.startswith("-----BEGIN ") or line.startswith("-----END ")


def expand(value: str | bytes) -> list[str]:
    """Every form of ``value`` worth registering, the value itself first, without duplicates.

    Empty when the value is shorter than :data:`MIN_LENGTH`.
    """
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    text = value if isinstance(value, str) else value.decode("utf-8", "surrogateescape")
    if len(text) < MIN_LENGTH:
        return []
    forms = _escaped(text) + _base64(raw)
    if isinstance(value, bytes):
        forms += [repr(value)[2:-1], repr(value + b"'\"")[2:-1][:-3]]
    if "\n" in text or "\r" in text:
        for raw_line in text.splitlines():
            line = raw_line.strip()
            if len(line) >= MIN_LINE_LENGTH and not _is_armour(line):
                forms += _escaped(line)
    seen: dict[str, None] = {}
    for form in forms:
        if len(form) >= MIN_LENGTH:
            seen.setdefault(form, None)
    return list(seen)
