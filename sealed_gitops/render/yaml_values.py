"""Python values from a parsed YAML node graph: YAML 1.2 core-schema scalars, with the checks.

Why apart from :mod:`sealed_gitops.render.loader` (limits, decoding, documents): this is the one
linear pass over each document's node graph, and every check that needs the nodes lives here:
aliases measured as expanded (memoised, so linear in the file) and refused above a node or byte
budget, recursive aliases refused, duplicate keys refused, only JSON-like values (no
``!!binary``, ``!!set``; timestamps stay strings), and plain scalars resolved as go-yaml v3 does
(``yes``/``on``/``no`` are strings): the decryption stage recomputes the SOPS MAC over these
values, so reading them as sops does matters.
"""

from __future__ import annotations

import math
import re
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from sealed_gitops.crypto.sops.yaml_load import PLAIN_TAG

__all__ = ["CoreResolver", "Invalid", "Refused", "ValueBuilder", "core_tag"]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


class CoreResolver(BaseResolver):
    """YAML 1.2 core schema: the implicit types go-yaml v3 resolves, nothing else (the table
    only: parsing tags plain scalars :data:`PLAIN_TAG`, and :func:`core_tag` resolves them)."""


CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
CoreResolver.add_implicit_resolver(_MERGE_TAG, re.compile(r"^(?:<<)$"), ["<"])

# The resolvers above by first character, frozen: the parser asks for every scalar's tag, and
# PyYAML's generic resolve() (path resolvers, list concatenation per call) was a tenth of the
# time spent loading a repository of small manifests.
_IMPLICIT_BY_FIRST: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    first: tuple(resolvers) for first, resolvers in CoreResolver.yaml_implicit_resolvers.items()
}


def core_tag(node: Node) -> str:
    """The node's tag, a plain scalar's resolved by the core schema (as ``CoreResolver`` did).

    Why the parser does not resolve it: the parse is shared with the SOPS engine (go-yaml's
    rules, :mod:`sealed_gitops.crypto.sops.yaml_load`), so a SOPS file is parsed once per build
    and each reader resolves plain scalars by its own rules.
    """
    tag: str = node.tag
    if tag != PLAIN_TAG:
        return tag
    value: str = node.value
    for resolved, regexp in _IMPLICIT_BY_FIRST.get(value[:1], ()):
        if regexp.match(value):
            return resolved
    return _STR_TAG


class Refused(Exception):
    """A document over a limit; carries no position (the caller names file and document)."""


class Invalid(Exception):
    """A document that is not acceptable; ``node`` gives the position."""

    def __init__(self, reason: str, node: Node) -> None:
        super().__init__(reason)
        self.reason = reason
        self.node = node


_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_INF = {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf}


def _int(text: str) -> int:
    value = text.replace("_", "")
    sign = -1 if value.startswith("-") else 1
    digits = value.lstrip("+-")
    if digits.startswith(("0x", "0X")):
        return sign * int(digits[2:], 16)
    if digits.startswith(("0o", "0O")):
        return sign * int(digits[2:], 8)
    if len(digits) > 1 and digits.startswith("0") and set(digits) <= set("01234567"):
        # go-yaml v3 still reads 1.1-style octals such as file modes (0644).
        return sign * int(digits, 8)
    return sign * int(digits)


def _float(text: str) -> float:
    lowered = text.lower()
    if lowered in _INF:
        return _INF[lowered]
    if lowered == ".nan":
        return math.nan
    return float(text.replace("_", ""))


class ValueBuilder:
    """Turns one document's node graph into plain Python values, in a single linear pass.

    Why not PyYAML's constructor: it is three times slower here and would need overriding in
    five places to refuse duplicates and odd types anyway. Aliases are libyaml's shared node
    objects: each is built once (so an alias yields the same Python object, as PyYAML does) and
    its *expanded* size is memoised, so a billion-laughs is measured, not expanded.
    """

    def __init__(self, limit: int, *, byte_limit: int) -> None:
        self.limit = limit
        self.byte_limit = byte_limit
        self.built: dict[int, Any] = {}
        self.sizes: dict[int, int] = {}
        #: expanded UTF-8 bytes of each node's scalars, memoised like ``sizes``
        self.bytes: dict[int, int] = {}
        self.active: set[int] = set()

    def over(self, size: int, nbytes: int) -> bool:
        return size > self.limit or nbytes > self.byte_limit

    def build(self, node: Node) -> Any:
        key = id(node)
        if key in self.built:
            return self.built[key]
        if key in self.active:
            raise Refused("recursive alias")
        if isinstance(node, ScalarNode):
            value = self._scalar(node)
            self.sizes[key] = 1
            text = node.value
            self.bytes[key] = len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
        elif isinstance(node, SequenceNode):
            self.active.add(key)
            items = []
            size = 1
            nbytes = 0
            for child in node.value:
                items.append(self.build(child))
                size += self.sizes[id(child)]
                nbytes += self.bytes[id(child)]
                if self.over(size, nbytes):
                    break  # refused below; building the rest would only cost time
            value = items
            self.sizes[key], self.bytes[key] = size, nbytes
            self.active.discard(key)
        elif isinstance(node, MappingNode):
            self.active.add(key)
            value, self.sizes[key], self.bytes[key] = self._mapping(node)
            self.active.discard(key)
        else:  # pragma: no cover - libyaml produces only the three node kinds
            raise Invalid("unknown node", node)
        if self.sizes[key] > self.limit:
            raise Refused(f"more than {self.limit} nodes with aliases expanded (alias bomb?)")
        if self.bytes[key] > self.byte_limit:
            raise Refused(
                f"values expand to more than {self.byte_limit} bytes with aliases expanded"
                " (alias bomb?)"
            )
        self.built[key] = value
        return value

    def _scalar(self, node: ScalarNode) -> Any:
        tag, text = core_tag(node), node.value
        try:
            if tag == _STR_TAG:
                return text
            if tag == "tag:yaml.org,2002:int":
                return _int(text)
            if tag == "tag:yaml.org,2002:bool":
                if text in _TRUE or text in _FALSE:
                    return text in _TRUE
                raise ValueError(text)
            if tag == "tag:yaml.org,2002:null":
                return None
            if tag == "tag:yaml.org,2002:float":
                return _float(text)
            if tag == "tag:yaml.org,2002:timestamp":
                return text  # timestamps stay strings, as the API server and sops see them
        except ValueError:
            raise Invalid(f"invalid {tag.rpartition(':')[2]} value", node) from None
        raise Invalid(f"unsupported tag {tag}", node)

    def _mapping(self, node: MappingNode) -> tuple[dict[Any, Any], int, int]:
        """The mapping, its expanded size in nodes and in bytes (merged-in mappings counted in
        full)."""
        merged: dict[Any, Any] = {}
        explicit: dict[Any, Any] = {}
        size = 1
        nbytes = 0
        for key_node, value_node in node.value:
            if core_tag(key_node) == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
                # Earlier sources win over later ones; explicit keys win over all of them.
                for source in reversed(sources):
                    value = self.build(source)
                    if not isinstance(value, dict):
                        raise Invalid("a merge key needs a mapping", source)
                    merged.update(value)
                    size += self.sizes[id(source)]
                    nbytes += self.bytes[id(source)]
                if self.over(size, nbytes):
                    break
                continue
            if not isinstance(key_node, ScalarNode):
                raise Invalid("a mapping key must be a scalar", key_node)
            key = self.build(key_node)
            if key in explicit:
                raise Invalid(f"duplicate key {key!r}", key_node)
            explicit[key] = self.build(value_node)
            size += 1 + self.sizes[id(value_node)]
            nbytes += self.bytes[id(key_node)] + self.bytes[id(value_node)]
            if self.over(size, nbytes):
                break  # the caller refuses it; no need to build the rest
        if not merged:
            return explicit, size, nbytes
        merged.update(explicit)
        return merged, size, nbytes
