"""Reading YAML into the SOPS tree, with comments, go-yaml's scalar rules and safety limits.

Why not ``yaml.safe_load``: sops (go-yaml v3) resolves plain scalars differently from PyYAML's YAML
1.1 rules (``yes`` is a string, ``0777`` is 511, ``1_000`` is 1000, timestamps become ``time``), and
a value's type decides its ciphertext type and MAC bytes. We also need key order, duplicate-key
refusal, bounded alias expansion and the comments (sops encrypts them as ``#ENC[…]``).

Alias expansion is bounded twice: in nodes reached again (:data:`MAX_ALIAS_NODES`) and in the
bytes of the scalars with aliases expanded (:data:`MAX_EXPANDED_BYTES`). The node count alone let
9,000 aliases of a 100 KB anchor through: 900 MB of values to MAC, decrypt and print, from a
1 MB file (issue 11, finding 7).

Comments: PyYAML drops them, so they are found in the text (a ``#`` after whitespace that is not
inside any scalar) and placed into the innermost block collection that encloses them by position
and indentation, before the next entry, the way go-yaml's head/foot comments end up in sops' tree.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from sealed_gitops.errors import FormatError, LimitExceeded

from .tree import TreeBranch
from .values import Comment, Timestamp

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_EXPANDED_BYTES",
    "PLAIN_TAG",
    "branches_from_nodes",
    "compose",
    "load_yaml",
    "make_loader",
]

#: Nodes that may be reached a second time through aliases before the document is refused.
MAX_ALIAS_NODES = 10_000
#: UTF-8 bytes of all scalars (keys, values) of a text with aliases expanded: four times the
#: input cap (``document.MAX_INPUT_BYTES``), the same bound the manifest loader applies.
MAX_EXPANDED_BYTES = 20 * 1024 * 1024

#: The tag :func:`compose` gives an untagged plain scalar: each reader resolves it by its own
#: rules (go-yaml's here, the YAML 1.2 core schema in the manifest loader).
PLAIN_TAG = "!sops-plain"
_PLAIN = PLAIN_TAG
_INT_RE = re.compile(r"^[-+]?(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|[0-9][0-9_]*)$")
_FLOAT_RE = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_TS_RE = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:(?:[Tt]|[ \t]+)(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d*))?"
    r"(?:[ \t]*(Z|[-+]\d{1,2}(?::?\d{2})?))?)?$"
)
_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_TRUES = frozenset(("true", "True", "TRUE"))
_FALSES = frozenset(("false", "False", "FALSE"))
_INFS = frozenset((".inf", ".Inf", ".INF"))
_NANS = frozenset((".nan", ".NaN", ".NAN"))


class _Resolver(BaseResolver):
    """Marks every untagged plain scalar so that go-yaml's rules (not PyYAML's) resolve it."""

    def resolve(self, kind: type[Node], value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            return _PLAIN
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call,unused-ignore]


try:  # libyaml's parser is several times faster; the pure-Python one gives identical nodes.
    from yaml._yaml import CParser as _Parser  # type: ignore[import-not-found,unused-ignore]

    class _Loader(_Parser, _Resolver):  # type: ignore[misc,unused-ignore]
        def __init__(self, stream: str) -> None:
            _Parser.__init__(self, stream)
            _Resolver.__init__(self)

except ImportError:
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Loader(Reader, Scanner, Parser, Composer, _Resolver):  # type: ignore[no-redef,misc,unused-ignore]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            _Resolver.__init__(self)


def timestamp_text(match: re.Match[str]) -> Timestamp:
    """Go's ``time.MarshalText`` (RFC 3339 with trimmed nanoseconds) of a YAML timestamp."""
    year, month, day, hour, minute, second, frac, zone = match.groups()
    base = f"{int(year):04d}-{int(month):02d}-{int(day):02d}"
    if hour is None:
        return Timestamp(base + "T00:00:00Z")
    text = f"{base}T{int(hour):02d}:{minute}:{second}"
    frac = (frac or "")[:9].rstrip("0")
    if frac:
        text += "." + frac
    if not zone or zone == "Z":
        return Timestamp(text + "Z")
    sign = zone[0]
    digits = zone[1:].replace(":", "")
    hours = int(digits[:-2] or 0) if len(digits) > 2 else int(digits)
    minutes = int(digits[-2:]) if len(digits) > 2 else 0
    if hours == 0 and minutes == 0:
        return Timestamp(text + "Z")
    return Timestamp(f"{text}{sign}{hours:02d}:{minutes:02d}")


def resolve_plain(text: str) -> Any:
    """The value go-yaml v3 gives an untagged plain scalar when decoding into ``interface{}``."""
    if text in _NULLS:
        return None
    if text in _TRUES:
        return True
    if text in _FALSES:
        return False
    first = text[0]
    if first.isdigit() or first in "+-.":
        if _INT_RE.match(text):
            cleaned = text.replace("_", "")
            try:
                number = _go_int(cleaned)
            except ValueError:
                number = None
            if number is not None:
                if -(2**63) <= number < 2**64:
                    return number if number < 2**63 else float(number)
                return float(number)
        if _FLOAT_RE.match(text.replace("_", "")):
            return float(text.replace("_", ""))
        lowered = text.lstrip("+-")
        if lowered in _INFS:
            return float("-inf") if text.startswith("-") else float("inf")
        if text in _NANS:
            return float("nan")
        match = _TS_RE.match(text)
        if match:
            return timestamp_text(match)
    return text


def _go_int(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    lower = body.lower()
    if lower.startswith("0x"):
        return sign * int(body[2:], 16)
    if lower.startswith("0o"):
        return sign * int(body[2:], 8)
    if lower.startswith("0b"):
        return sign * int(body[2:], 2)
    if len(body) > 1 and body.startswith("0"):
        return sign * int(body, 8)  # Go's ParseInt(s, 0, 64): a leading 0 means octal
    return sign * int(body, 10)


@dataclass
class _Box:
    """A block collection of the tree and where it sits in the text (for placing comments)."""

    obj: list[Any]
    column: int
    start: int
    end: int
    entries: list[tuple[int, _Box | None]] = field(default_factory=list)
    comments: list[tuple[int, Comment]] = field(default_factory=list)


class _Builder:
    def __init__(self, *, aliases: bool = True) -> None:
        #: False when the text has no ``*``: then no node can be reached twice, nothing to count
        self.aliases = aliases
        self.seen: set[int] = set()
        self.revisits = 0
        #: scalar bytes built so far, every alias visit counted again
        self.expanded = 0
        self.spans: list[tuple[int, int]] = []

    def count(self, node: ScalarNode) -> None:
        text = node.value
        self.expanded += len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
        if self.expanded > MAX_EXPANDED_BYTES:
            raise LimitExceeded(
                f"YAML values expand to more than {MAX_EXPANDED_BYTES} bytes with aliases expanded"
            )

    def visit(self, node: Node) -> None:
        if not self.aliases:
            return
        if id(node) in self.seen:
            self.revisits += 1
            if self.revisits > MAX_ALIAS_NODES:
                raise LimitExceeded(
                    f"YAML aliases expand to more than {MAX_ALIAS_NODES} extra nodes"
                )
        else:
            self.seen.add(id(node))

    def value(self, node: Node) -> tuple[Any, _Box | None]:
        self.visit(node)
        if isinstance(node, ScalarNode):
            self.count(node)
            self.spans.append((node.start_mark.index, node.end_mark.index))
            return self.scalar(node), None
        if isinstance(node, SequenceNode):
            items: list[Any] = []
            box = self.box(items, node)
            for child in node.value:
                item, child_box = self.value(child)
                items.append(item)
                box.entries.append((child.start_mark.index, child_box))
            return items, box if not node.flow_style else None
        if isinstance(node, MappingNode):
            branch = TreeBranch()
            box = self.box(branch, node)
            keys: set[str] = set()
            for key_node, value_node in node.value:
                self.visit(key_node)
                if not isinstance(key_node, ScalarNode):
                    raise FormatError("only scalar mapping keys are supported")
                self.count(key_node)
                self.spans.append((key_node.start_mark.index, key_node.end_mark.index))
                key = self.scalar(key_node)
                if not isinstance(key, str):
                    key = key_node.value  # sops turns non-string keys into their text
                if key in keys:
                    raise FormatError(
                        f"duplicate key {key!r}", location=f"line {key_node.start_mark.line + 1}"
                    )
                keys.add(key)
                value, child_box = self.value(value_node)
                branch.append((key, value))
                box.entries.append((key_node.start_mark.index, child_box))
            return branch, box if not node.flow_style else None
        raise FormatError(f"unsupported YAML node {type(node).__name__}")

    def box(self, obj: list[Any], node: Node) -> _Box:
        return _Box(obj, node.start_mark.column, node.start_mark.index, node.end_mark.index)

    def scalar(self, node: ScalarNode) -> Any:
        tag, text = node.tag, node.value
        if tag == _PLAIN:
            return resolve_plain(text)
        short = tag.rsplit(":", 1)[-1] if tag.startswith("tag:yaml.org,2002:") else None
        if short == "binary":
            try:
                raw = base64.b64decode("".join(text.split()), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise FormatError("invalid !!binary scalar") from exc
            return raw.decode("utf-8", "surrogateescape")
        if short in ("int", "float", "bool", "null", "timestamp"):
            value = resolve_plain(text)
            if value is text:
                raise FormatError(f"scalar does not match its !!{short} tag")
            return value
        return text


def _comments(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int, Comment]]:
    spans.sort()
    starts = [s for s, _ in spans]
    found = []
    for match in re.finditer(r"(?:^|(?<=[ \t]))#([^\n\r]*)", text, re.MULTILINE):
        index = match.start()
        pos = bisect.bisect_right(starts, index) - 1
        if pos >= 0 and spans[pos][0] <= index < spans[pos][1]:
            continue
        line_start = text.rfind("\n", 0, index) + 1
        inline = text[line_start:index].strip() not in ("", "-", "---")
        column = index - line_start
        found.append((index, column, Comment(match.group(1).rstrip(), inline)))
    return found


def _place(box: _Box, index: int, column: int, comment: Comment) -> None:
    starts = [s for s, _ in box.entries]
    pos = bisect.bisect_right(starts, index)  # entries that start before the comment
    if pos:
        child = box.entries[pos - 1][1]
        if (
            child is not None
            and index <= child.end
            and (comment.inline or column >= child.column)
            and child.entries
        ):
            _place(child, index, column, comment)
            return
    box.comments.append((pos - 1 if comment.inline and pos else pos, comment))


def _merge(box: _Box) -> None:
    for _, child in box.entries:
        if child is not None:
            _merge(child)
    if not box.comments:
        return
    is_map = isinstance(box.obj, TreeBranch)
    original = list(box.obj)
    merged: list[Any] = []
    pending = sorted(box.comments, key=lambda c: c[0])
    k = 0
    for i in range(len(original) + 1):
        while k < len(pending) and pending[k][0] <= i:
            merged.append((pending[k][1], None) if is_map else pending[k][1])
            k += 1
        if i < len(original):
            merged.append(original[i])
    box.obj[:] = merged


def compose(text: str) -> list[Node | None]:
    """libyaml's node graph of every document of ``text``, plain scalars tagged :data:`PLAIN_TAG`.

    The one parse of a file: :func:`branches_from_nodes` builds the SOPS tree from it, and the
    manifest loader (``render/loader.py``) its own view of the same nodes, so a SOPS file met by
    a build is parsed once.
    """
    nodes: list[Node | None] = []
    try:
        loader = make_loader(text)
        try:
            while loader.check_node():
                nodes.append(loader.get_node())
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc) from exc
    except RecursionError as exc:
        raise LimitExceeded("YAML nesting is too deep") from exc
    return nodes


def make_loader(text: str) -> Any:
    """A composer over ``text`` whose resolver marks untagged plain scalars :data:`PLAIN_TAG`."""
    return _Loader(text)


def _yaml_error(exc: yaml.YAMLError) -> FormatError:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}" if mark is not None else None
    problem = getattr(exc, "problem", None) or "invalid YAML"
    return FormatError(f"invalid YAML: {problem}", location=where)


def branches_from_nodes(text: str, nodes: list[Node | None]) -> list[TreeBranch]:
    """One branch per document of ``text`` from its :func:`compose`-d ``nodes``."""
    builder = _Builder(aliases="*" in text)
    branches: list[TreeBranch] = []
    boxes: list[_Box] = []
    try:
        for node in nodes:
            if node is None:
                continue
            if isinstance(node, ScalarNode) and node.tag == _PLAIN and node.value == "":
                branches.append(TreeBranch())
                continue
            if not isinstance(node, MappingNode):
                raise FormatError("a YAML document must be a mapping")
            value, box = builder.value(node)
            branches.append(value)
            boxes.append(box or _Box(value, 0, 0, len(text)))
    except RecursionError as exc:
        raise LimitExceeded("YAML nesting is too deep") from exc
    if "#" in text and boxes:
        for index, column, comment in _comments(text, builder.spans):
            target = next((b for b in boxes if index <= b.end), boxes[-1])
            _place(target, index, column, comment)
        for box in boxes:
            _merge(box)
    return branches


def load_yaml(text: str) -> list[TreeBranch]:
    """Parse a (multi-document) YAML text into one branch per document."""
    return branches_from_nodes(text, compose(text))
