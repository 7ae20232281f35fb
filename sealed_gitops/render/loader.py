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
  :attr:`Limits.max_nodes` nodes or :attr:`Limits.max_expanded_bytes` bytes of scalars; recursive
  aliases are refused outright. Both counts matter: a 100 KB anchor aliased 100,000 times is only
  200,000 nodes but 10 GB the moment anything serialises it (a digest, a printer, the API
  request), so nodes alone let a 1.4 MB file exhaust the operator's memory (issue 11, finding 7);
- duplicate mapping keys refused; only plain JSON-like values (no ``!!binary``, ``!!set``,
  timestamps stay strings);
- YAML 1.2 core-schema scalars, as go-yaml v3 (used by sops and kustomize) reads them: ``yes``,
  ``on`` and ``no`` are strings, not booleans. The decryption stage recomputes the SOPS MAC over
  these values, so reading them as sops does matters.

Errors name the file, the document index (0-based) and what is wrong. The parser is libyaml's
(``CParser``) when PyYAML was built with it; building Python values is one linear pass (no
PyYAML constructor) in :mod:`sealed_gitops.render.yaml_values`, which is where the node checks
live; this module owns the limits, the decoding, the documents and the JSON path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import Node

from sealed_gitops.crypto.sops.tree import TreeBranch
from sealed_gitops.crypto.sops.yaml_load import branches_from_nodes, make_loader
from sealed_gitops.errors import FormatError, LimitExceeded, SealedGitopsError
from sealed_gitops.render.yaml_values import Invalid, Refused, ValueBuilder

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "Loaded",
    "load_bytes",
    "load_file",
    "load_with_sops",
    "read_limited",
]

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
    #: UTF-8 bytes of the scalars (keys and values) of one document with aliases expanded: four
    #: times the file cap, room for anchors reused as people use them (a shared env block), while
    #: a 100 KB anchor aliased 100,000 times (10 GB once serialised) is refused
    max_expanded_bytes: int = 20 * MiB


DEFAULT_LIMITS = Limits()


def _decode(data: bytes, *, file: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not UTF-8 (invalid byte at offset {exc.start})", file=file) from None


def _yaml_documents(
    text: str, *, file: str, limits: Limits, nodes: list[Node | None] | None = None
) -> Iterator[tuple[int, Any]]:
    """(index, value) of each document; each document's node graph is appended to ``nodes``
    when given (for the SOPS engine to build its own tree from the same parse)."""
    loader = make_loader(text)
    index = -1
    try:
        while True:
            index += 1
            try:
                if not loader.check_node():
                    return
                if index >= limits.max_documents:
                    raise LimitExceeded(
                        f"more than {limits.max_documents} documents",
                        file=file,
                        location=f"document {index}",
                    )
                node = loader.get_node()
                if nodes is not None:
                    nodes.append(node)
                if node is None:
                    continue
                value = ValueBuilder(limits.max_nodes, byte_limit=limits.max_expanded_bytes).build(
                    node
                )
            except Invalid as exc:
                mark = exc.node.start_mark
                raise FormatError(
                    f"{exc.reason} (line {mark.line + 1}, column {mark.column + 1})",
                    file=file,
                    location=f"document {index}",
                ) from None
            except Refused as exc:
                raise LimitExceeded(str(exc), file=file, location=f"document {index}") from None
            except yaml.YAMLError as exc:
                raise FormatError(
                    _yaml_reason(exc), file=file, location=f"document {index}"
                ) from None
            except RecursionError:
                raise LimitExceeded(
                    "nesting too deep", file=file, location=f"document {index}"
                ) from None
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
            raise Refused(f"duplicate key {key!r}")
        out[key] = value
    return out


def _json_document(text: str, *, file: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates)
    except Refused as exc:
        raise FormatError(str(exc), file=file, location="document 0") from None
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"{exc.msg} (line {exc.lineno}, column {exc.colno})", file=file, location="document 0"
        ) from None
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


@dataclass(frozen=True)
class Loaded:
    """A file's documents, and the SOPS engine's tree of the same parse when it holds SOPS."""

    documents: list[tuple[int, Any]]
    #: one branch per YAML document (as ``load_yaml`` builds it) when a document has a ``sops``
    #: mapping; None for JSON, for a file without SOPS metadata, or when the engine's own
    #: limits refuse the tree (the decryption stage then parses it again and says why)
    sops: list[TreeBranch] | None = None


def load_with_sops(
    data: bytes, *, file: str, json_format: bool = False, limits: Limits = DEFAULT_LIMITS
) -> Loaded:
    """:func:`load_bytes`, plus the SOPS tree of a SOPS file from the same parse.

    Why: a build reads every SOPS file as a manifest (to classify and name it) and the
    decryption stage reads it again as a SOPS tree (go-yaml's scalar rules, comments, for the
    MAC). Both are built from one libyaml node graph here, so the file is parsed once.
    """
    if json_format:
        return Loaded(load_bytes(data, file=file, json_format=True, limits=limits))
    if len(data) > limits.max_bytes:
        raise LimitExceeded(f"file is larger than {limits.max_bytes} bytes", file=file)
    text = _decode(data, file=file)
    nodes: list[Node | None] = []
    documents = [
        (i, v)
        for i, v in _yaml_documents(text, file=file, limits=limits, nodes=nodes)
        if v is not None
    ]
    if not any(isinstance(v, dict) and isinstance(v.get("sops"), dict) for _, v in documents):
        return Loaded(documents)
    try:
        return Loaded(documents, branches_from_nodes(text, nodes))
    except SealedGitopsError:
        return Loaded(documents)


def read_limited(path: Path, *, file: str, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """A file's bytes, never more than one byte past the size limit (load_bytes refuses those)."""
    try:
        with path.open("rb") as fh:
            return fh.read(limits.max_bytes + 1)
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror}", file=file) from None


def load_file(path: Path, *, file: str, limits: Limits = DEFAULT_LIMITS) -> list[tuple[int, Any]]:
    """Read and parse a file; the size is checked before it is read whole."""
    data = read_limited(path, file=file, limits=limits)
    return load_bytes(data, file=file, json_format=path.suffix == ".json", limits=limits)
