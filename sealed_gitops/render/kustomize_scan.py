"""The kustomization graph checked before kustomize runs: remote and escaping references refused,
overlay and alias bombs measured. See :mod:`sealed_gitops.render.kustomize` (which runs the build
and re-exports :func:`scan`) for why each check exists.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealed_gitops.errors import FormatError, LimitExceeded, PathError, RenderError
from sealed_gitops.render.loader import Limits, MiB, load_bytes, load_file, read_limited
from sealed_gitops.render.walk import MANIFEST_SUFFIXES, find_kustomization, resolve_inside

__all__ = [
    "FILE_LIST_FIELDS",
    "MAX_KUSTOMIZATIONS",
    "OUTPUT_LIMITS",
    "PATH_ITEM_FIELDS",
    "PATH_OR_INLINE_FIELDS",
    "RESOURCE_FIELDS",
    "KustomizeScan",
    "is_inline",
    "is_remote",
    "scan",
]

#: limits for kustomize's output: one "file" holding every object of the build. 64 MiB and 20,000
#: objects are far above real builds (the largest CRD bundles are a few MiB) and far below what
#: exhausts the operator's memory once parsed (a Python object graph is ~10x its YAML)
OUTPUT_LIMITS = Limits(max_bytes=64 * MiB, max_documents=20_000, max_expanded_bytes=64 * MiB)

#: kustomizations one build may reach counting repetitions (a base reached by three overlays
#: counts three times): kustomize's time is about linear in this. Real trees reach tens or a few
#: hundred; an overlay bomb of 10 levels reaches 3,000 and takes seconds, 14 levels over a minute
MAX_KUSTOMIZATIONS = 1000

_REMOTE = re.compile(
    r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|git::|git@|gh:|github\.com[/:]|gitlab\.com[/:]|"
    r"bitbucket\.org[/:]|[^/]+\.[a-z]{2,}/[^/]+/[^/]+\.git)"
)

#: fields that hold a list of local paths to other kustomizations or manifest files
RESOURCE_FIELDS = ("resources", "bases", "components", "crds")
#: fields that hold a list of local paths to files kustomize reads (never manifests we render)
FILE_LIST_FIELDS = ("configurations",)
#: fields whose list items are mappings with a ``path`` key
PATH_ITEM_FIELDS = ("patches", "patchesJson6902", "replacements")
#: fields whose list items are either a path or an inline YAML document
PATH_OR_INLINE_FIELDS = ("patchesStrategicMerge", "generators", "transformers", "validators")
_REFUSED_FIELDS = ("helmCharts", "helmChartInflationGenerator", "helmGlobals")


def is_remote(ref: str) -> bool:
    """Whether a kustomization reference names something to fetch rather than a local path."""
    return bool(_REMOTE.match(ref.strip())) or "?ref=" in ref or "//" in ref.strip("/")


@dataclass
class KustomizeScan:
    """What a kustomization tree reads: its kustomization files and its manifest files."""

    kustomizations: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    #: every reference the build follows, as (the path as written, relative to its resolved
    #: kustomization's directory, joined; the resolved path): what a copy of the build needs
    #: (render/staging.py), symlinks included
    references: list[tuple[str, str]] = field(default_factory=list)
    #: each kustomization file's spec as the scan parsed it (read-only: copy to rewrite), so
    #: the build's later steps (render/generators.py, render/relocate.py) do not parse it again
    specs: dict[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Expanded:
    """What building one directory costs with repetitions counted (see the module docstring)."""

    kustomizations: int = 0
    files: int = 0
    bytes: int = 0

    def __add__(self, other: _Expanded) -> _Expanded:
        return _Expanded(
            self.kustomizations + other.kustomizations,
            self.files + other.files,
            self.bytes + other.bytes,
        )


def is_inline(entry: str) -> bool:
    """Whether a patch entry is an inline YAML document rather than a path."""
    return "\n" in entry or ": " in entry


def _path_references(spec: Mapping[str, Any], *, kfile: str) -> Iterator[tuple[str, Any]]:
    """(what, path) for every reference to a file kustomize reads that is not a resource."""
    for name in FILE_LIST_FIELDS:
        for entry in _as_list(spec.get(name), kfile=kfile, name=name):
            yield name, entry
    for name in PATH_ITEM_FIELDS:
        for item in _as_list(spec.get(name), kfile=kfile, name=name):
            if isinstance(item, Mapping) and item.get("path") is not None:
                yield f"{name} path", item["path"]
    for name in PATH_OR_INLINE_FIELDS:
        for entry in _as_list(spec.get(name), kfile=kfile, name=name):
            if isinstance(entry, str) and not is_inline(entry):
                yield name, entry
    yield from _generator_references(spec, kfile=kfile)
    openapi = spec.get("openapi")
    if isinstance(openapi, Mapping) and openapi.get("path"):
        yield "openapi path", openapi["path"]


def _generator_references(spec: Mapping[str, Any], *, kfile: str) -> Iterator[tuple[str, Any]]:
    for name in ("configMapGenerator", "secretGenerator"):
        for gen in _as_list(spec.get(name), kfile=kfile, name=name):
            if not isinstance(gen, Mapping):
                continue
            for entry in _as_list(gen.get("files"), kfile=kfile, name=name):
                # "key=path" or "path"
                yield f"{name} file", str(entry).partition("=")[2] or str(entry)
            for entry in _as_list(gen.get("envs"), kfile=kfile, name=name):
                yield f"{name} env file", entry
            if gen.get("env"):
                yield f"{name} env file", gen["env"]


class _Scanner:
    """Walks the kustomization graph once, checking each reference (see :func:`scan`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.result = KustomizeScan()
        self.seen: set[Path] = set()
        #: the expanded cost of each directory built so far (a cycle counts as nothing here;
        #: kustomize reports it)
        self.expanded: dict[Path, _Expanded] = {}
        self.measured: set[Path] = set()
        self.rels: dict[Path, str] = {}

    def measure(self, target: Path) -> None:
        """Refuse a YAML file kustomize would read whose aliases expand past the loader's limits
        (see the module docstring); other problems of the file are kustomize's to report."""
        if target in self.measured or target.suffix not in MANIFEST_SUFFIXES:
            return
        self.measured.add(target)
        rel = self.rel_of(target)
        # The build's limits, not one file's: kustomize may read files larger than 5 MiB (CRD
        # bundles); what it must not do is expand one past what its whole output may be.
        data = read_limited(target, file=rel, limits=OUTPUT_LIMITS)
        if b"*" not in data:
            return
        with contextlib.suppress(FormatError):
            load_bytes(data, file=rel, json_format=target.suffix == ".json", limits=OUTPUT_LIMITS)

    def rel_of(self, path: Path) -> str:
        # remembered: each file is named up to four times and each directory once per entry,
        # and pathlib's relative_to was a third of a scan of a few hundred files
        rel = self.rels.get(path)
        if rel is None:
            rel = path.relative_to(self.root).as_posix() if path != self.root else "."
            self.rels[path] = rel
        return rel

    def check(
        self, base: Path, entry: Any, *, kfile: str, what: str
    ) -> tuple[Path, os.stat_result]:
        if not isinstance(entry, str) or not entry.strip():
            raise RenderError(f"{what}: expected a path, got {type(entry).__name__}", file=kfile)
        if is_remote(entry):
            raise PathError(f"remote {what} {entry!r} refused (only local paths)", file=kfile)
        if os.path.isabs(entry):
            raise PathError(f"absolute {what} path {entry!r} refused", file=kfile)
        target_rel = os.path.normpath(os.path.join(self.rel_of(base), entry))
        if target_rel == ".." or target_rel.startswith("../"):
            raise PathError(f"{what} {entry!r} leaves the repository root", file=kfile)
        try:
            target = resolve_inside(self.root, target_rel, what=what)
        except PathError as exc:
            raise PathError(f"{what} {entry!r}: {exc.reason}", file=kfile) from None
        try:
            # one stat for "exists", "is a directory" and the size (a build lists hundreds)
            status = target.stat()
        except OSError:
            raise RenderError(f"{what} {entry!r} does not exist", file=kfile) from None
        self.result.references.append((target_rel, self.rel_of(target)))
        return target, status

    def visit(self, directory: Path) -> _Expanded:
        if directory in self.seen:
            return self.expanded.get(directory, _Expanded())
        self.seen.add(directory)
        kpath = find_kustomization(directory)
        if kpath is None:
            raise RenderError("directory has no kustomization", file=self.rel_of(directory))
        kfile = self.rel_of(kpath)
        self.result.kustomizations.append(kfile)
        # the kustomization file itself may be a symlink: it is read only inside the root too
        docs = load_file(resolve_inside(self.root, kfile, what="kustomization"), file=kfile)
        spec: Any = docs[0][1] if docs else {}
        if not isinstance(spec, Mapping):
            raise RenderError("kustomization is not a mapping", file=kfile)
        self.result.specs[kfile] = spec
        for name in _REFUSED_FIELDS:
            if spec.get(name):
                raise RenderError(f"{name} is not supported (Helm needs the network)", file=kfile)
        cost = _Expanded(kustomizations=1)
        for name in RESOURCE_FIELDS:
            for entry in _as_list(spec.get(name), kfile=kfile, name=name):
                target, status = self.check(directory, entry, kfile=kfile, what=name.rstrip("s"))
                if stat.S_ISDIR(status.st_mode):
                    cost += self.visit(target)
                else:
                    self.result.manifests.append(self.rel_of(target))
                    cost += _Expanded(files=1, bytes=status.st_size)
                    self.measure(target)
        for what, entry in _path_references(spec, kfile=kfile):
            target, status = self.check(directory, entry, kfile=kfile, what=what)
            if stat.S_ISREG(status.st_mode):
                self.measure(target)
        self.expanded[directory] = cost
        return cost


def _refuse_expansion(cost: _Expanded, *, kfile: str) -> None:
    """Refuse a build whose graph alone says it is over a limit (before kustomize runs)."""
    repeated = "; an overlay tree that reaches the same bases over and over?"
    if cost.kustomizations > MAX_KUSTOMIZATIONS:
        raise LimitExceeded(
            f"the build reaches {cost.kustomizations} kustomizations counting repetitions "
            f"(limit {MAX_KUSTOMIZATIONS}){repeated}",
            file=kfile,
        )
    if cost.files > OUTPUT_LIMITS.max_documents:
        raise LimitExceeded(
            f"the build reads {cost.files} resource files counting repetitions "
            f"(limit {OUTPUT_LIMITS.max_documents} objects){repeated}",
            file=kfile,
        )
    if cost.bytes > OUTPUT_LIMITS.max_bytes:
        raise LimitExceeded(
            f"the build reads {cost.bytes} bytes of resources counting repetitions "
            f"(limit {OUTPUT_LIMITS.max_bytes}){repeated}",
            file=kfile,
        )


def scan(root: Path, directory: Path) -> KustomizeScan:
    """Check every kustomization reachable from ``directory``; return what the build reads.

    Raises :class:`PathError` for a remote reference or one that leaves ``root`` (symlinks
    resolved), :class:`RenderError` for a missing one or an unsupported feature (Helm charts),
    :class:`LimitExceeded` for a graph that repeats itself past the limits (an overlay bomb).
    """
    scanner = _Scanner(root.resolve())
    cost = scanner.visit(directory.resolve())
    result = scanner.result
    if result.kustomizations:
        _refuse_expansion(cost, kfile=result.kustomizations[0])
    result.manifests = sorted({m for m in result.manifests if Path(m).suffix in MANIFEST_SUFFIXES})
    return result


def _as_list(value: Any, *, kfile: str, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RenderError(f"{name} must be a list", file=kfile)
    return value
