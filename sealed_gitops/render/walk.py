"""Which files of a repository are manifests: the deterministic, root-confined file walk.

Why this module exists: the operator reads a checkout it does not control. A symlink to
``/etc/shadow`` or a path with ``../`` must never make it read outside the repository, and the same
commit must always render in the same order, or digests and inventories would churn. The walk also
leaves out what is not a manifest: dotfiles and dot-directories (``.git``, ``.sops.yaml``,
``.sgignore``), the public keys under the root's ``keys/``, and what the root's ``.sgignore``
excludes (gitignore syntax).

A directory that holds a kustomization is not walked into: it is one unit that kustomize builds,
as Flux does when it meets a kustomization below a plain directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sealed_gitops.crypto.patterns import Pattern, compile_pattern, glob_regex
from sealed_gitops.errors import FormatError, PathError

__all__ = [
    "KUSTOMIZATION_NAMES",
    "MANIFEST_SUFFIXES",
    "IgnoreRules",
    "Unit",
    "find_kustomization",
    "inside",
    "resolve_inside",
    "walk",
]

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
IGNORE_FILE = ".sgignore"
KEYS_DIR = "keys"


@dataclass(frozen=True)
class Unit:
    """One thing to render: a manifest file, or a directory kustomize builds.

    ``rel`` is the path relative to the repository root (POSIX form, as the user wrote it, symlinks
    not resolved) and is what every message names; ``path`` is the resolved absolute path.
    """

    rel: str
    path: Path
    kustomize: bool = False


def inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def resolve_inside(root: Path, rel: str, *, what: str = "path") -> Path:
    """``root / rel`` with symlinks resolved; a :class:`PathError` if it leaves ``root``."""
    candidate = root / rel
    try:
        resolved = candidate.resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise PathError(f"{what} cannot be resolved: {exc}", file=rel) from None
    if not inside(resolved, root):
        raise PathError(f"{what} leaves the repository root", file=rel)
    return resolved


def find_kustomization(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_NAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class _Rule:
    regex: Pattern
    negate: bool
    dir_only: bool


class IgnoreRules:
    """The gitignore subset that matters for manifests: globs, ``**``, ``!``, trailing ``/``.

    Like git, a pattern without a slash (other than a trailing one) matches a name at any depth;
    with a slash it is anchored at the root; the last matching rule decides. The globs run on
    RE2 (:mod:`sealed_gitops.crypto.patterns`): a committer writes them, and a backtracking
    translation of ``*a*a*a*a*a*a*a*a*a*a*b`` took minutes per file name.
    """

    def __init__(self, lines: Iterable[str]) -> None:
        self._rules: list[_Rule] = []
        for number, raw in enumerate(lines, start=1):
            line = raw.rstrip("\n").rstrip(" ")
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate or line.startswith("\\"):
                line = line[1:]
            dir_only = line.endswith("/")
            line = line.rstrip("/")
            if not line:
                continue
            anchored = "/" in line
            line = line.lstrip("/")
            body = glob_regex(line)
            # (?s): a directory or file name may hold a newline, and ** must span it too.
            regex = f"(?s)^{body}$" if anchored else f"(?s)^(?:.*/)?{body}$"
            pattern = compile_pattern(regex, what=f"line {number}", file=IGNORE_FILE)
            self._rules.append(_Rule(pattern, negate, dir_only))

    @classmethod
    def from_root(cls, root: Path) -> IgnoreRules:
        path = root / IGNORE_FILE
        if path.is_symlink() or not path.is_file():
            return cls(())
        try:
            return cls(path.read_text(encoding="utf-8").splitlines())
        except UnicodeDecodeError:
            raise FormatError("not UTF-8", file=IGNORE_FILE) from None

    def ignored(self, rel: str, *, is_dir: bool) -> bool:
        result = False
        for rule in self._rules:
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.search(rel):
                result = not rule.negate
        return result


def walk(root: Path, path: str = ".") -> list[Unit]:
    """The units to render under ``path`` (relative to ``root``), sorted by relative path.

    A ``path`` that is a file is one unit (whatever its name); a directory with a kustomization is
    one kustomize unit; otherwise the directory is walked. Symlinks are followed only when they
    stay inside the root; one that leaves it is a :class:`PathError` naming the link.
    """
    root = root.resolve()
    start = resolve_inside(root, path)
    rel_start = start.relative_to(root).as_posix() if start != root else "."
    if not start.exists():
        raise PathError("path does not exist", file=path)
    if start.is_file():
        return [Unit(rel_start, start)]
    if find_kustomization(start) is not None:
        return [Unit(rel_start, start, kustomize=True)]

    rules = IgnoreRules.from_root(root)
    units: list[Unit] = []

    def visit(directory: Path, rel_dir: str, ancestors: frozenset[Path]) -> None:
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            raise PathError(f"cannot list directory: {exc.strerror}", file=rel_dir) from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = entry.name if rel_dir == "." else f"{rel_dir}/{entry.name}"
            target = Path(entry.path)
            if entry.is_symlink():
                target = resolve_inside(root, rel, what="symlink")
                if not target.exists():
                    raise PathError("symlink points to nothing", file=rel)
            is_dir = target.is_dir()
            if is_dir and rel == KEYS_DIR:
                continue
            if rules.ignored(rel, is_dir=is_dir):
                continue
            if is_dir:
                if target in ancestors:  # a symlink back up the tree would never end
                    continue
                if find_kustomization(target) is not None:
                    units.append(Unit(rel, target, kustomize=True))
                else:
                    visit(target, rel, ancestors | {target})
            elif target.suffix in MANIFEST_SUFFIXES and target.is_file():
                units.append(Unit(rel, target))

    visit(start, rel_start, frozenset({start}))
    units.sort(key=lambda u: u.rel)
    return units
