"""Building, without kustomize, the kustomizations whose result kustomize would print unchanged.

Why this module exists: Flux's most common layout is a directory whose ``kustomization.yaml``
only lists its files (``resources:``), maybe with ``namespace:``. For such a kustomization,
``kubectl kustomize`` (a child process) reads every file, re-emits every object and is then
parsed back; it cost 2.4-3.7 times the floor of a SOPS file on its own (issue 16, Must 2), and
every SOPS document it printed had to be matched back to its committed file by MAC. Here the
same result is built from the files the build reads anyway (:class:`CommittedFiles`), so each
document keeps its committed file and index and a plain directory and a listing cost the same.

Only what kustomize provably leaves as it is, is built here; anything else returns None and the
caller runs kustomize, which gives the real result or the real error. Eligible, recursively:

- a directory with exactly one kustomization file (``kustomization.yaml``/``.yml``/
  ``Kustomization``), its target inside the root, holding one mapping with no other fields than
  ``apiVersion``/``kind`` (``kustomize.config.k8s.io/v1beta1`` ``Kustomization`` or absent),
  ``resources`` (not empty) and ``namespace`` (a DNS-1123 label);
- each resource a local relative path (not remote, not absolute) that stays inside the root with
  symlinks resolved (:func:`~sealed_gitops.render.walk.resolve_inside`, as the scan checks it):
  a directory reached once whose kustomization is itself eligible, or a ``.yaml``/``.yml``
  regular file, listed once, inside its kustomization's directory (kustomize's
  ``LoadRestrictionsRootOnly``; the kustomize path copies other files in, render/relocate.py);
- each file parsed by the safe loader under the build's limits without error, and holding no
  anchor, alias, tag, directive, BOM or CR, nor a plain scalar go-yaml resolves otherwise than
  the YAML 1.2 core schema (``0777``, ``1_000``, a date) (:func:`reads_otherwise`); kustomize
  reads each object with go-yaml and passes it through JSON, so its values must also survive
  that as they are: string keys, no float (``1.0`` comes back ``1``), ints within int64;
- each document a mapping with string ``apiVersion`` (``v1`` or ``group/version``) and ``kind``
  (not a ``...List``), a ``metadata.name``, no kustomize-internal annotation
  (``config.kubernetes.io/...``), an identity in clear (a SOPS document whose name is encrypted
  goes through kustomize), and no two documents of the whole build sharing kind and name
  (kustomize refuses some such pairs and accepts others: let it decide);
- under a ``namespace:``, only kinds whose namespace transform in kustomize is exactly "set
  ``metadata.namespace``" (:data:`RENAMESPACED_KINDS`; its namespace filter also rewrites
  RoleBinding subjects, webhook and APIService service references, and skips cluster-scoped
  kinds), the committed namespace not encrypted.

The result is kustomize's: the objects in its default ("legacy") output order, each either the
committed document itself (the same mapping, so a SOPS document keeps its file, index and MAC)
or a copy whose ``metadata.namespace`` the kustomization set. tests/render/test_kustomize_native*
prove it against the real ``kubectl kustomize``, by examples and by a property test.

Bounds: a directory is reached at most once (so the graph is linear: no overlay bomb), the
counts and bytes stay under the limits the kustomize path enforces
(:data:`~sealed_gitops.render.kustomize_scan.MAX_KUSTOMIZATIONS`, ``OUTPUT_LIMITS``), and each
file is parsed by the safe loader (aliases bounded) under the build's limits; past any of them
the kustomize path runs and refuses with its own error.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sealed_gitops.errors import SealedGitopsError
from sealed_gitops.render.cache import ContentCache
from sealed_gitops.render.committed import CommittedFiles
from sealed_gitops.render.kustomize_scan import MAX_KUSTOMIZATIONS, OUTPUT_LIMITS, is_remote
from sealed_gitops.render.loader import load_bytes, read_limited
from sealed_gitops.render.walk import KUSTOMIZATION_NAMES

__all__ = ["RENAMESPACED_KINDS", "NativeDocument", "build", "reads_otherwise"]

#: (apiVersion, kind) whose namespace transform in kustomize is only ``metadata.namespace``
RENAMESPACED_KINDS = frozenset({("v1", "Secret"), ("v1", "ConfigMap")})

_FIELDS = frozenset({"apiVersion", "kind", "resources", "namespace"})
_TOP_KEYS = (b"apiVersion:", b"kind:", b"resources:", b"namespace:")
#: how a line that is not a top-level key of a block mapping starts (blank, indented, comment,
#: a sequence item or a document marker)
_INDENTED = (b"", b" ", b"\t", b"#", b"-")
_API_VERSION = "kustomize.config.k8s.io/v1beta1"
_SUFFIXES = (".yaml", ".yml")
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_API = re.compile(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]+")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]*")
#: plain scalars that kustomize's reader (go-yaml, then JSON) reads otherwise than the loader's
#: YAML 1.2 core schema: a leading-zero or prefixed number (``0777`` is 511 there, 777 here),
#: digits with ``_`` (a number there, a string here), a date (an RFC 3339 time there)
#: Each alternative has one way to match a token (no two adjacent parts can take the same
#: byte), so a fullmatch is linear in the token: digits with an ``_`` somewhere are found by
#: ``[0-9][0-9_]*`` plus a test for ``_`` (:func:`_number_otherwise`), not by a pattern that
#: places the ``_``, which backtracked quadratically on a committer's ``1_1_1_..._1x``.
_RESOLVED_OTHERWISE = re.compile(
    rb"[-+]?0[0-9_bBoOxX][0-9a-fA-F_]*:?|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}.*"
)
_DIGITS = re.compile(rb"[-+]?[0-9][0-9_]*:?")
#: the first bytes of a token worth a closer look: the above, and a tag (``!``), an anchor
#: (``&``), an alias (``*``) or a directive (``%``), which kustomize's reader handles its own way
_SUSPECT = frozenset(b"0123456789+-!&*%")
_NODE_MARKS = frozenset(b"!&*%")
#: flow indicators and a quoted key's colon split tokens too (``[0777,1]``, ``{"a":0777}``)
_FLOW = bytes.maketrans(b"[]{},", b"     ")
#: ints kustomize keeps exact (go-yaml's int64; past it a float)
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
#: annotation prefixes kustomize reads, sets or removes itself
_INTERNAL = ("config.kubernetes.io/", "internal.config.kubernetes.io/", "kustomize.config.k8s.io/")
#: kustomize's default ("legacy") kind order: these first, in this order, ...
_FIRST = (
    *("Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition"),
    *("ServiceAccount", "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding"),
    *("ClusterRoleBinding", "ConfigMap", "Secret", "Endpoints", "Service", "LimitRange"),
    *("PriorityClass", "PersistentVolume", "PersistentVolumeClaim", "Deployment"),
    *("StatefulSet", "CronJob", "PodDisruptionBudget"),
)
#: ... these last, every other kind between them
_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
_RANK = {kind: i - len(_FIRST) for i, kind in enumerate(_FIRST)} | {
    kind: i + 1 for i, kind in enumerate(_LAST)
}


@dataclass(frozen=True)
class NativeDocument:
    """One object of the build: from ``file`` (resolved, relative to the root), document
    ``index``; ``data`` is what kustomize would print (key order aside): the committed mapping
    itself, or a copy with the namespace the kustomizations set (``renamespaced``)."""

    file: str
    index: int
    data: Mapping[str, Any]
    renamespaced: bool = False


class _Ineligible(Exception):
    """Not provably kustomize's result: kustomize builds it (never reaches the caller)."""


class _Builder:
    """One native build. Paths are resolved strings here, not :class:`Path` objects: the
    pathlib calls were most of the native build's own time (60 us a file)."""

    def __init__(self, root: Path, files: CommittedFiles, cache: ContentCache | None) -> None:
        self.root = str(root)
        self.prefix = self.root.rstrip("/") + "/"
        self.files = files
        self.cache = cache
        self.directories: set[str] = set()
        self.listed: set[str] = set()
        self.size = 0
        self.count = 0

    def rel_of(self, real: str) -> str:
        """A resolved path inside the root, relative to it."""
        return "." if real == self.root else real[len(self.prefix) :]

    def inside(self, rel: str) -> str:
        """``root/rel`` with symlinks resolved, when it stays inside the root (the check of
        :func:`~sealed_gitops.render.walk.resolve_inside`; outside, the scan refuses it)."""
        real = os.path.realpath(os.path.join(self.root, rel))
        if real != self.root and not real.startswith(self.prefix):
            raise _Ineligible
        return real

    def visit(self, directory: str) -> list[NativeDocument]:
        if directory in self.directories or len(self.directories) >= MAX_KUSTOMIZATIONS:
            raise _Ineligible
        self.directories.add(directory)
        spec = self.kustomization(directory)
        namespace = spec.get("namespace")
        entries = spec.get("resources")
        if not isinstance(entries, list) or not entries:
            raise _Ineligible  # nothing to gain from an empty build: kustomize's own answer
        if namespace is not None and not _is_label(namespace):
            raise _Ineligible
        docs: list[NativeDocument] = []
        for entry in entries:
            target, mode = self.resolve(directory, entry)
            is_dir = stat.S_ISDIR(mode)
            docs.extend(self.visit(target) if is_dir else self.read(directory, target, mode))
        return docs if namespace is None else [_renamespaced(d, namespace) for d in docs]

    def kustomization(self, directory: str) -> Mapping[str, Any]:
        found = [
            os.path.join(directory, name)
            for name in KUSTOMIZATION_NAMES
            if os.path.isfile(os.path.join(directory, name))
        ]
        if len(found) != 1:
            raise _Ineligible  # none, or several (kustomize refuses several)
        rel = self.rel_of(directory)
        rel = os.path.basename(found[0]) if rel == "." else f"{rel}/{os.path.basename(found[0])}"
        data = read_limited(Path(self.inside(rel)), file=rel)
        # A top-level key of another field, seen before parsing: kustomize then parses it for
        # its scan, and a fallback costs no second parse. The parse below decides the rest.
        for line in data.split(b"\n"):
            if line[:1] not in _INDENTED and not line.startswith(_TOP_KEYS):
                raise _Ineligible
        docs = load_bytes(data, file=rel)
        if len(docs) != 1 or not isinstance(docs[0][1], Mapping):
            raise _Ineligible
        spec: Mapping[str, Any] = docs[0][1]
        if not _FIELDS.issuperset(spec) or spec.get("apiVersion", _API_VERSION) != _API_VERSION:
            raise _Ineligible
        if spec.get("kind", "Kustomization") != "Kustomization":
            raise _Ineligible
        return spec

    def resolve(self, directory: str, entry: Any) -> tuple[str, int]:
        """The resolved target of one ``resources`` entry and its mode, checked as the scan
        checks it (local, relative, inside the root with symlinks resolved)."""
        if not isinstance(entry, str) or not entry or entry.strip() != entry or "\0" in entry:
            raise _Ineligible
        if is_remote(entry) or os.path.isabs(entry):
            raise _Ineligible
        rel = os.path.normpath(os.path.join(self.rel_of(directory), entry))
        if rel == ".." or rel.startswith("../"):
            raise _Ineligible
        target = self.inside(rel)
        return target, os.stat(target).st_mode

    def read(self, directory: str, target: str, mode: int) -> list[NativeDocument]:
        if (
            target in self.listed
            or not target.endswith(_SUFFIXES)
            or not target.startswith(directory.rstrip("/") + "/")
            or not stat.S_ISREG(mode)
        ):
            raise _Ineligible  # listed twice, not a YAML file, outside its kustomization's dir
        self.listed.add(target)
        rel, where = self.rel_of(target), Path(target)
        data = self.files.read(rel, path=where)
        self.size += len(data)
        if self.size > OUTPUT_LIMITS.max_bytes or reads_otherwise(data):
            raise _Ineligible
        parsed = self.files.documents(rel, path=where, cache=self.cache)
        self.count += len(parsed)
        if self.count > OUTPUT_LIMITS.max_documents:
            raise _Ineligible
        return [NativeDocument(rel, index, _checked(doc)) for index, doc in parsed]


def reads_otherwise(data: bytes) -> bool:
    """Whether kustomize's YAML reader may read ``data`` otherwise than the loader: a
    whitespace- or flow-separated token that may be such a scalar or node mark, a carriage
    return or a BOM (conservative: a token inside a quoted or block string counts too). A token
    split of the bytes, not a regular expression over them: this runs on every file, and a
    regex that tries each position cost more than the file's parse."""
    if b"\r" in data or data.startswith(b"\xef\xbb\xbf"):
        return True
    tokens = data.translate(_FLOW).replace(b'":', b'" ').replace(b"':", b"' ").split()
    for token in tokens:
        first = token[0]
        if first in _SUSPECT and (first in _NODE_MARKS or _number_otherwise(token)):
            return True
    return False


def _number_otherwise(token: bytes) -> bool:
    """A plain scalar go-yaml resolves otherwise than the loader: a leading-zero or prefixed
    number, digits with ``_``, a date (see :data:`_RESOLVED_OTHERWISE`)."""
    if _RESOLVED_OTHERWISE.fullmatch(token):
        return True
    return b"_" in token and _DIGITS.fullmatch(token) is not None


def _is_label(value: Any) -> bool:
    return isinstance(value, str) and _LABEL.fullmatch(value) is not None


def _is_enc(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("ENC[")


def _checked(doc: Any) -> Mapping[str, Any]:
    """``doc`` when it is an object kustomize passes through as it is (see the module
    docstring); else :class:`_Ineligible`."""
    if not isinstance(doc, Mapping):
        raise _Ineligible
    api, kind, meta = doc.get("apiVersion"), doc.get("kind"), doc.get("metadata")
    if not isinstance(api, str) or not _API.fullmatch(api):
        raise _Ineligible
    if not isinstance(kind, str) or not _KIND.fullmatch(kind) or kind.endswith("List"):
        raise _Ineligible
    if not isinstance(meta, Mapping):
        raise _Ineligible
    name, namespace = meta.get("name"), meta.get("namespace")
    if not isinstance(name, str) or not name or _is_enc(name):
        raise _Ineligible
    if namespace is not None and (not isinstance(namespace, str) or _is_enc(namespace)):
        raise _Ineligible
    for field in ("annotations", "labels"):
        notes = meta.get(field)
        if field in meta and not (isinstance(notes, Mapping) and notes):
            raise _Ineligible  # null or empty: kustomize may drop it
        if notes is not None and not all(
            isinstance(k, str) and isinstance(v, str) for k, v in notes.items()
        ):
            raise _Ineligible
    if any(k.startswith(_INTERNAL) for k in meta.get("annotations") or {}):
        raise _Ineligible
    _check_values(doc)
    return doc


def _check_values(value: Any) -> None:
    """Values that survive kustomize's round trip through JSON as they are: string keys (it
    refuses others), no float (``1.0`` comes back as ``1``), ints within int64."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if type(key) is not str:
                raise _Ineligible
            if type(item) is not str:  # most leaves: nothing to check
                _check_values(item)
    elif isinstance(value, list):
        for item in value:
            if type(item) is not str:
                _check_values(item)
    elif isinstance(value, float) or (
        isinstance(value, int) and not isinstance(value, bool) and not _INT_MIN <= value <= _INT_MAX
    ):
        raise _Ineligible


def _renamespaced(doc: NativeDocument, namespace: str) -> NativeDocument:
    """``doc`` under a kustomization's ``namespace:`` (a copy: the committed mapping is shared
    with the build's other readers and maybe the operator's cache)."""
    data = doc.data
    if (data["apiVersion"], data["kind"]) not in RENAMESPACED_KINDS:
        raise _Ineligible
    meta = data["metadata"]
    if meta.get("namespace") == namespace:
        return doc
    moved = {**data, "metadata": {**meta, "namespace": namespace}}
    return NativeDocument(doc.file, doc.index, moved, renamespaced=True)


def _legacy_order(doc: NativeDocument) -> tuple[int, str, str]:
    """kustomize's default output order: kind rank, then group_version_kind, then
    ``namespace|name`` (``~G``, ``~X``: kustomize's words for none)."""
    data = doc.data
    group, _, version = str(data["apiVersion"]).rpartition("/")
    kind = str(data["kind"])
    meta = data["metadata"]
    gvk = f"{group or '~G'}_{version}_{kind}"
    return _RANK.get(kind, 0), gvk, f"{meta.get('namespace') or '~X'}|{meta['name']}"


def build(
    root: Path, directory: Path, *, files: CommittedFiles, cache: ContentCache | None = None
) -> list[NativeDocument] | None:
    """The objects ``kubectl kustomize directory`` would print, or None when that is not
    provably so (the caller then runs kustomize). ``root`` and ``directory`` are resolved;
    ``files`` is the build's (each file read and parsed once); ``cache``: the operator's parsed
    documents by content. Never raises for a problem of the repository: kustomize reports it.
    """
    builder = _Builder(root, files, cache)
    try:
        docs = builder.visit(str(directory))
    except (_Ineligible, SealedGitopsError, OSError):
        return None
    seen: set[tuple[str, str]] = set()
    for doc in docs:
        key = (str(doc.data["kind"]), str(doc.data["metadata"]["name"]))
        if key in seen:
            return None
        seen.add(key)
    return sorted(docs, key=_legacy_order)
