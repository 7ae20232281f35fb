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
import json
from functools import lru_cache
from typing import Any

from yaml.nodes import ScalarNode
from yaml.resolver import Resolver

from .tree import TreeBranch
from .values import Comment, Timestamp, format_float_g
from .yaml_load import resolve_plain

__all__ = ["dump_yaml", "scalar_text"]

_INDENT = 4
_OLD_BOOLS = frozenset(
    "y Y yes Yes YES n N no No NO on On ON off Off OFF".split()
)
_YAML11 = Resolver()
_STR_TAG = "tag:yaml.org,2002:str"


def _printable(ch: str) -> bool:
    code = ord(ch)
    if ch in "\t":
        return True
    if code < 0x20 or code == 0x7F or 0x80 <= code <= 0x9F:
        return False
    return code not in (0x2028, 0x2029, 0xFEFF) and not 0xD800 <= code <= 0xDFFF and code not in (
        0xFFFE,
        0xFFFF,
    )


@lru_cache(maxsize=4096)
def _reads_as_other_type(text: str) -> bool:
    """go-yaml double-quotes a string that would read back as something else."""
    if text in _OLD_BOOLS or not isinstance(resolve_plain(text), str):
        return True
    if resolve_plain(text) != text:
        return True
    return _YAML11.resolve(ScalarNode, text, (True, False)) != _STR_TAG


def _plain_ok(text: str) -> bool:
    if not text or text != text.strip(" \t"):
        return False
    if any(not _printable(c) or c == "\t" for c in text):
        return False
    first = text[0]
    if first in ",[]{}#&*!|>'\"%@`":
        return False
    if first in "-?:" and (len(text) == 1 or text[1] in " \t"):
        return False
    return not (
        text.startswith(("---", "..."))
        or ": " in text
        or " #" in text
        or text.endswith(":")
    )


def _single_ok(text: str) -> bool:
    return bool(text) and all(_printable(c) and c != "\t" for c in text)


def _quoted(text: str) -> str:
    out = json.dumps(text, ensure_ascii=False)
    if all(_printable(c) or c in "\n\r" for c in text):
        return out
    return "".join(
        c if _printable(c) or c in '"\\' else f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else
        f"\\U{ord(c):08x}"
        for c in out
    )


def _literal_ok(text: str) -> bool:
    if "\n" not in text or text.strip("\n") == "" or "\r" in text:
        return False
    if text[0] in " \t" or text.startswith("\n"):
        return False
    lines = text.split("\n")
    return all(line == line.rstrip(" \t") for line in lines) and all(
        _printable(c) or c == "\t" for c in text if c != "\n"
    )


def scalar_text(value: Any) -> str | list[str]:
    """The text of a scalar, or for a literal block its header followed by its lines."""
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
        return _quoted(value.value)
    text = str(value)
    if "\n" in text:
        return _literal(text) if _literal_ok(text) else _quoted(text)
    if _reads_as_other_type(text):
        return _quoted(text)
    if _plain_ok(text):
        return text
    if _single_ok(text):
        return "'" + text.replace("'", "''") + "'"
    return _quoted(text)


def _literal(text: str) -> list[str]:
    if text.endswith("\n\n"):
        header, body = "|+", text[:-1]
    elif text.endswith("\n"):
        header, body = "|", text[:-1]
    else:
        header, body = "|-", text
    return [header, *body.split("\n")]


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def scalar_after(self, prefix: str, value: Any, nested: int, inline: list[str]) -> None:
        text = scalar_text(value)
        tail = (" #" + inline.pop(0)) if len(inline) == 1 else ""
        self._flush_inline(inline, len(prefix) - len(prefix.lstrip(" ")))
        if isinstance(text, str):
            self.lines.append(f"{prefix} {text}{tail}" if prefix else text)
            return
        self.lines.append(f"{prefix} {text[0]}{tail}")
        self.lines.extend((" " * nested + line) if line else "" for line in text[1:])

    def _flush_inline(self, inline: list[str], indent: int) -> None:
        self.lines.extend(" " * indent + "#" + c for c in inline)
        inline.clear()

    def mapping(self, branch: TreeBranch, base: int, *, dash: bool = False) -> None:
        """Write a mapping whose nested content sits at base + 4; keys at base (+2 after a dash)."""
        key_col = base + 2 if dash else base
        first = True
        inline: list[str] = []
        for key, value in branch:
            lead = (" " * base + "- ") if (dash and first) else " " * key_col
            if isinstance(key, Comment):
                if key.inline:
                    inline.append(key.value)
                else:
                    self.lines.append(" " * key_col + "#" + key.value)
                    if dash and first:
                        # a comment cannot follow the dash: put the dash on the next entry
                        pass
                continue
            first = False
            key_text = scalar_text(key)
            if not isinstance(key_text, str):
                key_text = _quoted(str(key))
            prefix = f"{lead}{key_text}:"
            self.value(prefix, value, base + _INDENT, inline)
        if inline:
            self._flush_inline(inline, key_col)
        if first and dash:
            self.lines.append(" " * base + "- {}")

    def sequence(self, items: list[Any], dash_col: int) -> None:
        for item in items:
            if isinstance(item, Comment):
                self.lines.append(" " * dash_col + "#" + item.value)
                continue
            lead = " " * dash_col + "-"
            if isinstance(item, TreeBranch) and any(isinstance(k, str) for k, _ in item):
                self.mapping(item, dash_col, dash=True)
            elif isinstance(item, list) and item and not isinstance(item, TreeBranch):
                self.lines.append(lead)
                self.sequence(item, dash_col + _INDENT)
            else:
                self.value(lead, item, dash_col + _INDENT, [])

    def value(self, prefix: str, value: Any, nested: int, inline: list[str]) -> None:
        if isinstance(value, TreeBranch):
            if not any(isinstance(k, str) for k, _ in value):
                self.scalar_after_raw(prefix, "{}", inline)
                self.mapping(value, nested) if value else None
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


def dump_yaml(branches: list[TreeBranch]) -> bytes:
    """Write one YAML document per branch, separated by ``---`` like sops."""
    docs = []
    for branch in branches:
        writer = _Writer()
        if any(isinstance(k, str) for k, _ in branch):
            writer.mapping(branch, 0)
        else:
            writer.lines.extend("#" + k.value for k, _ in branch if isinstance(k, Comment))
            writer.lines.append("{}")
        docs.append("\n".join(writer.lines) + "\n")
    return "---\n".join(docs).encode("utf-8", "surrogateescape")
