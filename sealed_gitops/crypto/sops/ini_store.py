"""INI SOPS documents the way sops 3.11 reads and writes them (``stores/ini`` over go-ini v1.67).

Why: sops' INI is go-ini's, quirks included, and a file must decrypt to the bytes ``sops -d``
prints and be written so sops reads the same tree back. What go-ini does, and so this module:

* reading: keys before any header belong to ``DEFAULT``; ``=`` or ``:`` splits a key from its
  value; ``#`` or ``;`` *anywhere* in an unquoted value starts an inline comment; a value in
  triple double quotes or backquotes is taken verbatim (the former may span lines); a value in
  matching single or double quotes loses them; a trailing backslash continues the value on the
  next line; comment lines before a key (and its inline comment) become the key's comment,
  those before a header
  the section's; a repeated key keeps its first place and its last value;
* sops turns each section into a branch (the section comment first, each key's comment right
  after the key) and keeps the metadata in a ``[sops]`` section, flattened like dotenv's
  (:mod:`.flat_metadata`);
* writing: the ``DEFAULT`` section without header, and left out when empty; ``key = value``
  with the ``=`` aligned per section (go-ini's PrettyFormat); comments as ``; text`` lines above
  their key or section; a blank line between sections; values quoted with triple double quotes
  (newline or backquote), backquotes (``#``/``;``) or double quotes (edge spaces).

One difference is ours on purpose: sops writes the ``[sops]`` keys in Go's random map order; here
they are sorted, so our files are stable (sops reads any order).
"""

from __future__ import annotations

from typing import Any

from sealed_gitops.errors import FormatError

from .dotenv_store import value_text
from .flat_metadata import flatten_metadata, unflatten_metadata
from .json_store import dump_json, dump_json_value
from .tree import TreeBranch
from .values import Comment, Timestamp

__all__ = ["DEFAULT_SECTION", "dump_ini", "dump_ini_value", "load_ini"]

DEFAULT_SECTION = "DEFAULT"
_DELIMITERS = "=:"


class _Section:
    def __init__(self, name: str) -> None:
        self.name = name
        self.comment = ""
        self.keys: dict[str, tuple[str, str]] = {}  # name -> (value, comment), first-seen order
        self.auto_keys = 0  # go-ini's counter for ``-`` keys: ``#1``, ``#2``...


def _index_any(text: str, chars: str) -> int:
    found = [i for i in (text.find(c) for c in chars) if i >= 0]
    return min(found) if found else -1


def _key_name(line: str, number: int) -> tuple[str, int]:
    quote = ""
    if line.startswith('"'):
        quote = '"""' if len(line) > 6 and line.startswith('"""') else '"'
    elif line.startswith("`"):
        quote = "`"
    if quote:
        start = len(quote)
        pos = line.find(quote, start)
        if pos == -1:
            raise FormatError("missing closing key quote", location=f"line {number}")
        i = _index_any(line[pos + start :], _DELIMITERS)
        if i < 0:
            raise FormatError("key-value delimiter not found", location=f"line {number}")
        return line[start:pos].strip(), pos + i + start + 1
    end = _index_any(line, _DELIMITERS)
    if end < 0:
        # the line may be a secret: name its number only
        raise FormatError("key-value delimiter not found", location=f"line {number}")
    if end == 0:
        raise FormatError("empty key name", location=f"line {number}")
    return line[:end].strip(), end + 1


def _surrounded(text: str, quote: str) -> bool:
    return len(text) >= 2 and text[0] == quote == text[-1] and text.find(quote, 1) == len(text) - 1


class _Parser:
    def __init__(self, text: str) -> None:
        parts = text.split("\n")
        # go-ini reads up to and including each '\n'; the last piece has none
        self.lines = [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
        self.pos = 0
        self.comment: list[str] = []

    def _next(self) -> str | None:
        if self.pos >= len(self.lines):
            return None
        self.pos += 1
        return self.lines[self.pos - 1]

    def _multiline(self, first: str, value: str, quote: str, number: int) -> str:
        while True:
            nxt = self._next()
            if nxt is None:
                raise FormatError("missing closing value quote", location=f"line {number}")
            pos = nxt.rfind(quote)
            if pos > -1:
                value += nxt[:pos]
                i = _index_any(nxt[pos:], "#;")
                if i >= 0:
                    self.comment.append(nxt[pos + i :].strip())
                return value
            value += nxt

    def _continued(self, value: str) -> str:
        # pieces joined once: dropping each backslash from the value so far copied it per line
        parts = [value]
        while (nxt := self._next()) is not None and (text := nxt.strip()):
            if not text.endswith("\\"):
                parts.append(text)
                break
            parts.append(text[:-1])
        return "".join(parts)

    def value(self, raw: str, number: int) -> str:
        line = raw.lstrip()
        if not line:
            return ""
        quote = '"""' if len(line) > 3 and line.startswith('"""') else ""
        if not quote and line.startswith("`"):
            quote = "`"
        if quote:
            start = len(quote)
            pos = line.rfind(quote, start)
            if pos == -1:
                return self._multiline(line, line[start:], quote, number)
            return line[start:pos]
        line = line.strip()
        if line.endswith("\\"):
            return self._continued(line[:-1])
        i = _index_any(line, "#;")
        if i > -1:
            self.comment.append(line[i:])
            line = line[:i].strip()
        if _surrounded(line, "'") or _surrounded(line, '"'):
            line = line[1:-1]
        return line

    def sections(self) -> list[_Section]:
        current = _Section(DEFAULT_SECTION)
        found = [current]
        number = 0
        while (raw := self._next()) is not None:
            number = self.pos
            line = raw.lstrip()
            if not line:
                continue
            if line[0] in "#;":
                self.comment.append(line)
                continue
            if line[0] == "[":
                close = line.rfind("]")
                if close == -1:
                    raise FormatError("unclosed section", location=f"line {number}")
                name = line[1:close]
                if not name:
                    raise FormatError("empty section name", location=f"line {number}")
                current = _Section(name)
                found.append(current)
                i = _index_any(line[close + 1 :], "#;")
                if i >= 0:
                    self.comment.append(line[close + 1 + i :])
                current.comment = "".join(self.comment).strip()
                self.comment = []
                continue
            key, offset = _key_name(line, number)
            if key == "-":
                current.auto_keys += 1
                key = f"#{current.auto_keys}"
            value = self.value(line[offset:], number)
            if not key:
                raise FormatError("empty key name", location=f"line {number}")
            current.keys[key] = (value, "".join(self.comment).strip())
            self.comment = []
        return found


def _strip_comment_char(comment: str) -> str:
    """sops' ``stripCommentChar``: drops every leading ``;``/``#`` and space of the first line."""
    if comment.startswith(";"):
        return comment.lstrip("; ")
    if comment.startswith("#"):
        return comment.lstrip("# ")
    return comment


def load_ini(text: str) -> list[TreeBranch]:
    """One branch of sections (``DEFAULT`` first); a ``[sops]`` section becomes the ``sops``
    metadata branch at the end."""
    branch = TreeBranch()
    meta: TreeBranch | None = None
    for section in _Parser(text).sections():
        items = TreeBranch()
        if section.comment:
            items.append((Comment(_strip_comment_char(section.comment)), None))
        for key, (value, comment) in section.keys.items():
            items.append((key, value))
            if comment:
                items.append((Comment(_strip_comment_char(comment)), None))
        if section.name == "sops":
            if meta is None:
                pairs = [(k, v) for k, (v, _) in section.keys.items()]
                meta = unflatten_metadata(pairs)
            continue
        branch.append((section.name, items))
    if meta is not None:
        branch.append(("sops", meta))
    return [branch]


def _comment_lines(comment: str, *, trim: bool) -> list[str]:
    out = []
    for line in comment.split("\n"):
        if not line:
            raise FormatError("cannot write an empty comment line in an INI file")
        if line[0] not in "#;":
            out.append("; " + (line.strip() if trim else line))
        else:
            out.append(line[0] + " " + line[1:].strip())
    return out


def _quoted_key(name: str) -> str:
    if '"' in name or any(c in name for c in _DELIMITERS):
        return f"`{name}`"
    if "`" in name:
        return f'"""{name}"""'
    return name


def _quoted_value(value: str) -> str:
    if "\n" in value or "`" in value:
        return f'"""{value}"""'
    if "#" in value or ";" in value:
        return f"`{value}`"
    if value.strip() != value:
        return f'"{value}"'
    return value


def _section_keys(items: TreeBranch, start: int) -> dict[str, list[str]]:
    """Key -> [value text, comment] as go-ini holds them: a repeated key keeps its place, a
    comment item belongs to the key before it (none before the first key: dropped)."""
    keys: dict[str, list[str]] = {}
    last_key: str | None = None
    for key, value in items[start:]:
        if isinstance(key, Comment):
            if last_key is not None:
                keys[last_key][1] = key.value
            continue
        if not key:
            raise FormatError("error creating new key: empty key name")
        if isinstance(value, TreeBranch | list):
            raise FormatError(f"cannot use a complex value in an INI file (key {key})")
        text = value if isinstance(value, str) and not isinstance(value, Timestamp) else None
        keys.setdefault(key, ["", ""])[0] = text if text is not None else value_text(value)
        last_key = key
    return keys


def _write_section(name: str, items: Any, *, first: bool, last: bool, out: list[str]) -> None:
    if not isinstance(items, TreeBranch):
        raise FormatError("Error encoding section: Section values should always be TreeBranches")
    comment = ""
    start = 0
    if items and isinstance(items[0][0], Comment):
        comment = items[0][0].value
        start = 1
    keys = _section_keys(items, start)
    if comment:
        out.extend(_comment_lines(comment, trim=False))
    if first and name.upper() == DEFAULT_SECTION:
        if not keys:
            return  # go-ini leaves out an empty default section (and the blank line after it)
    else:
        out.append(f"[{name}]")
    names = {k: _quoted_key(k) for k in keys}
    width = max((len(q.encode("utf-8", "surrogateescape")) for q in names.values()), default=0)
    for key, (value, key_comment) in keys.items():
        if key_comment:
            out.extend(_comment_lines(key_comment, trim=True))
        shown = names[key]
        pad = " " * (width - len(shown.encode("utf-8", "surrogateescape")))
        out.append(f"{shown}{pad} = {_quoted_value(value)}")
    if not last:
        out.append("")


def dump_ini(branches: list[TreeBranch]) -> bytes:
    """The sections of the branch; a ``sops`` branch is written last as the ``[sops]`` section."""
    sections: list[tuple[str, Any]] = []
    meta: TreeBranch | None = None
    for branch in branches:
        for key, value in branch:
            if isinstance(key, Comment):
                continue
            if key == "sops" and isinstance(value, TreeBranch):
                meta = value
                continue
            if not key:
                raise FormatError("Error encoding section: empty section name")
            sections.append((key, value))
    if meta is not None:
        sections.append(("sops", TreeBranch(flatten_metadata(meta))))
    out: list[str] = []
    for index, (name, items) in enumerate(sections):
        _write_section(name, items, first=index == 0, last=index == len(sections) - 1, out=out)
    text = "".join(line + "\n" for line in out)
    return text.encode("utf-8", "surrogateescape")


def dump_ini_value(value: Any) -> bytes:
    """``--extract`` of a non-string from an INI file: sops' INI store writes it as JSON."""
    if isinstance(value, TreeBranch):
        return dump_json([value])
    return dump_json_value(value)
