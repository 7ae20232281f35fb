"""Safe loading of manifest files: multi-document YAML and JSON, with limits.

Why this module exists: everything in a Git repository is attacker-controlled input to the
operator, which runs with write access to the cluster. A YAML "billion laughs" (aliases that
reference aliases) costs microseconds to parse but gigabytes to walk; a 2 GiB file or a million
empty documents exhaust memory; duplicate keys make two tools read the same file differently (the
SOPS MAC and the API server would disagree about which value counts). So every file passes here:

- a size cap (:attr:`Limits.max_bytes`, 5 MiB like Flux's cap on encrypted files), checked before
  the file is read whole;
- strict UTF-8 (a BOM is tolerated, as kubectl does);
- at most :attr:`Limits.max_documents` documents; empty documents are skipped;
- aliases bounded: each document's node graph is measured *with aliases expanded* (memoised, so
  the measurement is linear in the file, not in the expansion) and refused above
  :attr:`Limits.max_nodes`; recursive aliases are refused outright;
- duplicate mapping keys refused; only plain JSON-like values (no ``!!binary``, ``!!set``,
  timestamps stay strings);
- YAML 1.2 core-schema scalars, as go-yaml v3 (used by sops and kustomize) reads them: ``yes``,
  ``on`` and ``no`` are strings, not booleans. The decryption stage recomputes the SOPS MAC over
  these values, so reading them as sops does matters.

Errors name the file, the document index (0-based) and what is wrong. The parser is libyaml's
(``CParser``) when PyYAML was built with it; construction stays in Python so the checks apply.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from sealed_gitops.errors import FormatError, LimitExceeded

__all__ = ["DEFAULT_LIMITS", "Limits", "load_bytes", "load_file"]

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Safety limits for one file."""

    #: bytes per file; Flux's kustomize-controller caps encrypted files at 5 MiB too
    max_bytes: int = 5 * MiB
    #: documents per file; a real manifest file holds a handful, a kustomize build maybe thousands
    max_documents: int = 1000
    #: nodes per document counted with aliases expanded; a 5 MiB file of plain YAML has well under
    #: a million nodes, while a 9-level billion-laughs has 10**9
    max_nodes: int = 1_000_000


DEFAULT_LIMITS = Limits()

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


class _CoreResolver(BaseResolver):
    """YAML 1.2 core schema: the implicit types go-yaml v3 resolves, nothing else."""


_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_CoreResolver.add_implicit_resolver(_MERGE_TAG, re.compile(r"^(?:<<)$"), ["<"])


class _StrictConstructor(SafeConstructor):
    """SafeConstructor that refuses duplicate keys and non-JSON types."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=False)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise ConstructorError(
                    None, None, "a mapping key must be a scalar", key_node.start_mark
                )
            if key in seen:
                raise ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: ScalarNode) -> int:
        value = str(self.construct_scalar(node)).replace("_", "")
        sign = -1 if value.startswith("-") else 1
        digits = value.lstrip("+-")
        if digits.startswith("0x"):
            return sign * int(digits[2:], 16)
        if digits.startswith("0o"):
            return sign * int(digits[2:], 8)
        if len(digits) > 1 and digits.startswith("0"):
            # go-yaml v3 still reads 1.1-style octals such as file modes (0644).
            return sign * int(digits, 8) if set(digits) <= set("01234567") else sign * int(digits)
        return sign * int(digits)

    def refuse(self, node: Node) -> Any:
        raise ConstructorError(None, None, f"unsupported tag {node.tag}", node.start_mark)


def _register() -> None:
    add = _StrictConstructor.add_constructor
    add("tag:yaml.org,2002:int", _StrictConstructor.construct_yaml_int)  # type: ignore[type-var]
    # Timestamps stay strings, as the API server and sops see them.
    add("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)  # type: ignore[type-var]
    for tag in ("binary", "set", "omap", "pairs"):
        add(f"tag:yaml.org,2002:{tag}", _StrictConstructor.refuse)  # type: ignore[type-var]
    add(None, _StrictConstructor.refuse)  # type: ignore[type-var]


_register()

try:
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    CParser = None  # type: ignore[assignment,misc]

if CParser is not None:

    class _Loader(CParser, _StrictConstructor, _CoreResolver):
        """libyaml parses and composes (fast); construction and checks stay in Python."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _StrictConstructor.__init__(self)
            _CoreResolver.__init__(self)

else:  # pragma: no cover - PyYAML built without libyaml

    class _Loader(  # type: ignore[no-redef]
        yaml.reader.Reader,
        yaml.scanner.Scanner,
        yaml.parser.Parser,
        yaml.composer.Composer,
        _StrictConstructor,
        _CoreResolver,
    ):
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            _StrictConstructor.__init__(self)
            _CoreResolver.__init__(self)


def _expanded_size(root: Node, *, limit: int) -> int:
    """Number of nodes with aliases expanded, memoised per node; raises on cycles or > limit.

    libyaml's composer hands aliases back as the *same* node object, so a node reached twice is an
    alias; memoising by identity keeps this linear while the result counts the expansion.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _Refused("recursive alias")
        active.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            for child in node.value:
                total += size(child)
                if total > limit:
                    break
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > limit:
                    break
        active.discard(key)
        if total > limit:
            raise _Refused(f"more than {limit} nodes with aliases expanded (alias bomb?)")
        sizes[key] = total
        return total

    return size(root)


class _Refused(Exception):
    pass


def _decode(data: bytes, *, file: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 (invalid byte at offset {exc.start})", file=file) from None


def _yaml_documents(text: str, *, file: str, limits: Limits) -> Iterator[tuple[int, Any]]:
    loader = _Loader(text)
    index = -1
    try:
        while True:
            index += 1
            try:
                if not loader.check_node():
                    return
                if index >= limits.max_documents:
                    raise LimitExceeded(
                        f"more than {limits.max_documents} documents", file=file,
                        location=f"document {index}",
                    )
                node = loader.get_node()
                if node is None:
                    continue
                _expanded_size(node, limit=limits.max_nodes)
                value = loader.construct_document(node)
            except _Refused as exc:
                raise LimitExceeded(str(exc), file=file, location=f"document {index}") from None
            except yaml.YAMLError as exc:
                raise FormatError(_yaml_reason(exc), file=file,
                                  location=f"document {index}") from None
            except RecursionError:
                raise LimitExceeded("nesting too deep", file=file,
                                    location=f"document {index}") from None
            yield index, value
    finally:
        loader.dispose()


def _yaml_reason(exc: yaml.YAMLError) -> str:
    # The problem and its position, never the context snippet: a snippet of a plain Secret would
    # carry a value into an error message.
    problem = getattr(exc, "problem", None) or type(exc).__name__
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(problem)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"duplicate key {key!r}")
        out[key] = value
    return out


def _json_document(text: str, *, file: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates)
    except _Refused as exc:
        raise FormatError(str(exc), file=file, location="document 0") from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"{exc.msg} (line {exc.lineno}, column {exc.colno})", file=file,
                          location="document 0") from None
    except RecursionError:
        raise LimitExceeded("nesting too deep", file=file, location="document 0") from None


def load_bytes(
    data: bytes, *, file: str, json_format: bool = False, limits: Limits = DEFAULT_LIMITS
) -> list[tuple[int, Any]]:
    """Parse one file's bytes into (document index, value) pairs, empty documents left out.

    ``file`` is the name errors carry (relative to the repository root). ``json_format`` selects
    JSON; JSON is one document, and ``null`` counts as empty.
    """
    if len(data) > limits.max_bytes:
        raise LimitExceeded(f"file is larger than {limits.max_bytes} bytes", file=file)
    text = _decode(data, file=file)
    if json_format:
        value = _json_document(text, file=file)
        return [] if value is None else [(0, value)]
    return [(i, v) for i, v in _yaml_documents(text, file=file, limits=limits) if v is not None]


def load_file(path: Path, *, file: str, limits: Limits = DEFAULT_LIMITS) -> list[tuple[int, Any]]:
    """Read and parse a file; the size is checked before it is read whole."""
    try:
        with path.open("rb") as fh:
            data = fh.read(limits.max_bytes + 1)
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror}", file=file) from None
    return load_bytes(data, file=file, json_format=path.suffix == ".json", limits=limits)
