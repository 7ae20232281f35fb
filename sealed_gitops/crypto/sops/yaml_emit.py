"""Writing the SOPS tree as YAML the way sops (go-yaml v3, indent 4) writes it.

Why a hand-written emitter: PyYAML's and ruamel's layouts differ from go-yaml's (sequence
indentation, quoting style, where comments go), and the point of byte-compatibility is that a file
re-encrypted by us shows in ``git diff`` only the values that changed. The rules kept here:

* four spaces per level; a sequence under a key is indented by four (``key:\\n    - a``); in a
  sequence item the mapping's keys follow ``- `` and anything nested under them is indented four
  from the dash;
* a string is written plain when it reads back as the same string under both go-yaml's and YAML
  1.1's rules, as a literal block (``|``, ``|-``, ``|+``) when it is multi-line and printable, and
  double-quoted otherwise;
* floats use Go's ``'g'`` format (``1e+21``), comments are ``#text`` lines at the entry's indent.
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from typing import Any

from .tree import TreeBranch
from .values import Comment, Timestamp, format_float_g
from .yaml_load import resolve_plain

__all__ = ["dump_yaml", "dump_yaml_value", "scalar_text"]

_INDENT = 4
_OLD_BOOLS = frozenset(
    (
        "y",
        "Y",
        "yes",
        "Yes",
        "YES",
        "n",
        "N",
        "no",
        "No",
        "NO",
        "on",
        "On",
        "ON",
        "off",
        "Off",
        "OFF",
    )
)
_BASE60_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$")
_BREAKS = frozenset("\r\n\x85\u2028\u2029")
_FLOW_FIRST = frozenset("#,[]{}&*!|>'\"%@`")
_FLOW_INNER = frozenset(",?[]{}")
_ESCAPES = {
    "\x00": "0",
    "\x07": "a",
    "\x08": "b",
    "\t": "t",
    "\n": "n",
    "\x0b": "v",
    "\x0c": "f",
    "\r": "r",
    "\x1b": "e",
    '"': '"',
    "\\": "\\",
    "\x85": "N",
    "\xa0": "_",
    "\u2028": "L",
    "\u2029": "P",
}
_PLAIN, _SINGLE, _DOUBLE, _LITERAL = range(4)


def _printable(ch: str) -> bool:
    """go-yaml's ``is_printable``: it excludes tabs and everything above the BMP."""
    code = ord(ch)
    return (
        code == 0x0A
        or 0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
    )


@lru_cache(maxsize=8192)
def _can_use_plain(text: str) -> bool:
    """go-yaml's ``stringv``: plain only when the text resolves back to the same string."""
    if text in _OLD_BOOLS or text == "<<" or _BASE60_FLOAT.match(text):
        return False
    resolved = resolve_plain(text)
    return isinstance(resolved, str) and not isinstance(resolved, Timestamp) and resolved == text


@lru_cache(maxsize=8192)
def _allowed(text: str) -> tuple[bool, bool, bool, bool]:  # noqa: PLR0912 (a port, kept flat)
    """(multiline, block_plain, single_quoted, block) allowed: go-yaml's ``analyze_scalar``."""
    if not text:
        return False, True, True, False
    block_ind = flow_ind = line_breaks = special = tabs = False
    leading_space = leading_break = trailing_space = trailing_break = False
    break_space = space_break = previous_space = previous_break = False
    if text.startswith(("---", "...")):
        block_ind = True
    preceded_by_ws = True
    last = len(text) - 1
    for i, ch in enumerate(text):
        followed_by_ws = i == last or text[i + 1] in " \t"
        if i == 0:
            if ch in _FLOW_FIRST or (ch in "?:-" and followed_by_ws):
                block_ind = True
        elif (ch == ":" and followed_by_ws) or (ch == "#" and preceded_by_ws):
            block_ind = True
        if ch == "\t":
            tabs = True
        elif not _printable(ch):
            special = True
        if ch == " ":
            leading_space = leading_space or i == 0
            trailing_space = i == last
            break_space = break_space or previous_break
            previous_space, previous_break = True, False
        elif ch in _BREAKS:
            line_breaks = True
            leading_break = leading_break or i == 0
            trailing_break = i == last
            space_break = space_break or previous_space
            previous_space, previous_break = False, True
        else:
            previous_space = previous_break = False
        preceded_by_ws = ch in " \t\x00" or ch in _BREAKS
    del flow_ind  # only flow collections care; sops writes block style throughout
    plain = single = block = True
    if leading_space or leading_break or trailing_space or trailing_break:
        plain = False
    if trailing_space:
        block = False
    if break_space:
        plain = single = False
    if space_break or tabs or special:
        plain = single = False
    if space_break or special:
        block = False
    if line_breaks or block_ind:
        plain = False
    return line_breaks, plain, single, block


def _style(text: str, *, key: bool) -> int:
    """The style go-yaml ends up with: the one ``stringv`` asks for, downgraded by the emitter."""
    multiline, plain_ok, single_ok, block_ok = _allowed(text)
    if "\n" in text:
        style = _LITERAL
    elif _can_use_plain(text):
        style = _PLAIN
    else:
        style = _DOUBLE
    if key and multiline:
        style = _DOUBLE
    if style == _PLAIN and (not plain_ok or (not text and key)):
        style = _SINGLE
    if style == _SINGLE and not single_ok:
        style = _DOUBLE
    if style == _LITERAL and (not block_ok or key):
        style = _DOUBLE
    return style


def _double_quoted(text: str) -> str:
    out = ['"']
    for ch in text:
        if _printable(ch) and ch not in _BREAKS and ch not in '"\\\ufeff':
            out.append(ch)
            continue
        code = ord(ch)
        short = _ESCAPES.get(ch)
        if short is not None:
            out.append("\\" + short)
        elif code <= 0xFF:
            out.append(f"\\x{code:02X}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04X}")
        else:
            out.append(f"\\U{code:08X}")
    out.append('"')
    return "".join(out)


def _indent_breaks(text: str, indent: int) -> str:
    """Content after a non-``\\n`` line break (U+2028, U+2029) gets the indent, as go-yaml does."""
    if "\u2028" not in text and "\u2029" not in text:
        return text
    return re.sub("([\u2028\u2029])(?=[^\u2028\u2029])", "\\1" + " " * indent, text)


def _single_quoted(text: str, indent: int) -> str:
    return "'" + _indent_breaks(text.replace("'", "''"), indent) + "'"


def _literal(text: str, indent: int, step: int = _INDENT) -> list[str]:
    header = "|"
    if text[0] == " " or text[0] in _BREAKS:
        header += str(step)
    if text[-1] not in _BREAKS:
        header += "-"
    elif len(text) == 1 or text[-2] in _BREAKS:
        header += "+"
    body = text[:-1] if text.endswith("\n") else text
    pad = " " * indent
    return [
        header,
        *((pad + _indent_breaks(line, indent)) if line else "" for line in body.split("\n")),
    ]


def scalar_text(
    value: Any, *, indent: int = _INDENT, key: bool = False, step: int = _INDENT
) -> str | list[str]:
    """The text of a scalar, or for a literal block its header followed by its indented lines."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Timestamp):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float_g(value)
    if isinstance(value, bytes):
        return "!!binary " + base64.b64encode(value).decode("ascii")
    if isinstance(value, Comment):
        return _double_quoted(value.value)
    text = str(value)
    style = _style(text, key=key)
    if style == _PLAIN:
        return text
    if style == _SINGLE:
        return _single_quoted(text, indent)
    if style == _LITERAL:
        return _literal(text, indent, step)
    return _double_quoted(text)


def _deeper(column: int, step: int = _INDENT) -> int:
    """go-yaml's indent for content nested under a key at ``column``: the next multiple of the
    indent (4 unless ``.sops.yaml`` ``stores: yaml: indent`` says otherwise)."""
    return step * ((column + step) // step)


def _has_keys(branch: TreeBranch) -> bool:
    return any(isinstance(k, str) for k, _ in branch)


class _Writer:
    def __init__(self, step: int = _INDENT) -> None:
        self.lines: list[str] = []
        self.step = step

    def scalar_after(self, prefix: str, value: Any, nested: int, inline: list[str]) -> None:
        text = scalar_text(value, indent=nested, step=self.step)
        tail = (" #" + inline.pop(0)) if len(inline) == 1 else ""
        self._flush_inline(inline, len(prefix) - len(prefix.lstrip(" ")))
        if isinstance(text, str):
            self.lines.append(f"{prefix} {text}{tail}" if prefix else text)
            return
        self.lines.append(f"{prefix} {text[0]}{tail}")
        self.lines.extend(text[1:])

    def _flush_inline(self, inline: list[str], indent: int) -> None:
        self.lines.extend(" " * indent + "#" + c for c in inline)
        inline.clear()

    def mapping(self, branch: TreeBranch, key_col: int, *, lead: str | None = None) -> None:
        """Write a mapping with its keys at ``key_col``; ``lead`` starts the first key's line
        (a sequence item's ``- ``, as go-yaml writes a mapping inside a sequence compactly)."""
        inline: list[str] = []
        for key, value in branch:
            if isinstance(key, Comment):
                if key.inline:
                    inline.append(key.value)
                else:
                    self.lines.append(" " * key_col + "#" + key.value)
                continue
            head = lead if lead is not None else " " * key_col
            lead = None
            key_text = scalar_text(
                key, indent=_deeper(key_col, self.step), key=True, step=self.step
            )
            if not isinstance(key_text, str):  # unreachable: a key is never a literal block
                key_text = _double_quoted(str(key))
            self.value(f"{head}{key_text}:", value, _deeper(key_col, self.step), inline)
        if inline:
            self._flush_inline(inline, key_col)
        if lead is not None:
            self.lines.append(lead + "{}")

    def sequence(self, items: list[Any], dash_col: int, *, lead: str | None = None) -> None:
        """Write a sequence with its dashes at ``dash_col``; go-yaml indents an item's content
        by two (past ``- ``) and writes a sequence or mapping inside a sequence on the dash line."""
        for item in items:
            if isinstance(item, Comment):
                self.lines.append(" " * dash_col + "#" + item.value)
                continue
            head = lead if lead is not None else " " * dash_col
            lead = None
            if isinstance(item, TreeBranch) and _has_keys(item):
                self.mapping(item, dash_col + 2, lead=head + "- ")
            elif isinstance(item, list) and [v for v in item if not isinstance(v, Comment)]:
                self.sequence(item, dash_col + 2, lead=head + "- ")
            else:
                self.value(head + "-", item, dash_col + 2, [])
        if lead is not None:
            self.lines.append(lead + "[]")

    def value(self, prefix: str, value: Any, nested: int, inline: list[str]) -> None:
        if isinstance(value, TreeBranch):
            if not _has_keys(value):
                self.scalar_after_raw(prefix, "{}", inline)
                if value:
                    self.mapping(value, nested)
                return
            self._line_with_inline(prefix, inline)
            self.mapping(value, nested)
        elif isinstance(value, list):
            if not [v for v in value if not isinstance(v, Comment)]:
                self.scalar_after_raw(prefix, "[]", inline)
                self.sequence(value, nested)
                return
            self._line_with_inline(prefix, inline)
            self.sequence(value, nested)
        else:
            self.scalar_after(prefix, value, nested, inline)

    def scalar_after_raw(self, prefix: str, text: str, inline: list[str]) -> None:
        self._flush_inline(inline, len(prefix) - len(prefix.lstrip(" ")))
        self.lines.append(f"{prefix} {text}")

    def _line_with_inline(self, prefix: str, inline: list[str]) -> None:
        tail = (" #" + inline.pop(0)) if len(inline) == 1 else ""
        self._flush_inline(inline, len(prefix) - len(prefix.lstrip(" ")))
        self.lines.append(prefix + tail)


def dump_yaml(branches: list[TreeBranch], *, indent: int = _INDENT) -> bytes:
    """Write one YAML document per branch, separated by ``---`` like sops.

    ``indent`` is ``.sops.yaml`` ``stores: yaml: indent`` (sops' default 4).
    """
    docs = []
    for branch in branches:
        writer = _Writer(indent)
        if any(isinstance(k, str) for k, _ in branch):
            writer.mapping(branch, 0)
        else:
            writer.lines.extend("#" + k.value for k, _ in branch if isinstance(k, Comment))
            writer.lines.append("{}")
        docs.append("\n".join(writer.lines) + "\n")
    return "---\n".join(docs).encode("utf-8", "surrogateescape")


def dump_yaml_value(value: Any) -> bytes:
    """One value on its own, as ``sops -d --extract`` prints a non-string (``yaml.Marshal``)."""
    writer = _Writer()
    if isinstance(value, list) and [v for v in value if not isinstance(v, Comment)]:
        writer.sequence(value, 0)
    else:
        writer.value("", value, _INDENT, [])
    return (
        "\n".join(line.lstrip(" ") if i == 0 else line for i, line in enumerate(writer.lines))
        + "\n"
    ).encode("utf-8", "surrogateescape")
