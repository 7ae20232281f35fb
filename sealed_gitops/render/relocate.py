"""Files a kustomization reads from outside its own directory, moved under it in the build's copy.

Why this module exists: Flux builds with no load restriction inside its copy of the repository,
so ``envs: [../secret.env]``, ``resources: [../shared/app.yaml]``, ``patches: [{path:
../patches/p.yaml}]`` or a symlink to a file in another directory build there, and repositories
made for Flux use them. ``kubectl kustomize`` offers only two restrictions: each kustomization's
own directory (``LoadRestrictionsRootOnly``), or none at all (``LoadRestrictionsNone``), which
would also let a file the scan does not parse (a generator's or transformer's own config naming
``/etc/passwd``) be read. So the restriction stays, and such a build runs on a copy
(:mod:`sealed_gitops.render.staging`) in which every file reference that the scan checked, and
that resolves (symlinks followed) outside the kustomization's directory but inside the
repository root, points at a copy of the file placed under that directory:
``<dir>/.sealed-gitops-refs-<nonce>/<n>/<name as written>``. The name as written is kept because
kustomize derives a ``files:`` entry's key from it. Directories (bases, components) are left
alone: each is its own kustomization root already. References that leave the root were refused by
the scan before anything is copied, as in Flux.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealed_gitops.render.kustomize_scan import (
    FILE_LIST_FIELDS,
    PATH_ITEM_FIELDS,
    PATH_OR_INLINE_FIELDS,
    RESOURCE_FIELDS,
    KustomizeScan,
    is_inline,
    is_remote,
)
from sealed_gitops.render.walk import inside, resolve_inside

__all__ = ["Relocation", "plan"]

_GENERATORS = ("configMapGenerator", "secretGenerator")


@dataclass
class Relocation:
    """What the copy needs: rewritten kustomizations and the files placed for them."""

    #: kustomization file (relative to the root) -> its spec with the moved entries rewritten
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the copy's path of a placed file (relative to the root) -> the file it copies (resolved)
    files: dict[str, str] = field(default_factory=dict)


class _Mover:
    """Rewrites one kustomization's entries that resolve outside its directory."""

    def __init__(self, root: Path, kfile: str, folder: str, files: dict[str, str]) -> None:
        self.root, self.kfile, self.files = root, kfile, files
        self.directory = os.path.dirname(kfile)
        self.own = (root / self.directory).resolve()
        self.folder = folder
        self.moved = False

    def __call__(self, entry: Any) -> Any:
        if not isinstance(entry, str) or not entry.strip() or is_inline(entry) or is_remote(entry):
            return entry
        if os.path.isabs(entry):
            return entry  # the scan refused it; kustomize would too
        joined = os.path.normpath(os.path.join(self.directory, entry))
        target = resolve_inside(self.root, joined)
        if target.is_dir() or inside(target, self.own):
            return entry
        name = os.path.basename(os.path.normpath(entry))
        placed = f"{self.folder}/{len(self.files)}/{name}"
        self.files[os.path.normpath(os.path.join(self.directory, placed))] = target.relative_to(
            self.root
        ).as_posix()
        self.moved = True
        return placed


def _map_list(spec: dict[str, Any], name: str, move: Callable[[Any], Any]) -> None:
    value = spec.get(name)
    if isinstance(value, list):
        spec[name] = [move(entry) for entry in value]


def _rewrite(spec: dict[str, Any], move: _Mover) -> None:
    for name in (*RESOURCE_FIELDS, *FILE_LIST_FIELDS, *PATH_OR_INLINE_FIELDS):
        _map_list(spec, name, move)
    for name in PATH_ITEM_FIELDS:
        items = spec.get(name)
        if isinstance(items, list):
            spec[name] = [
                {**item, "path": move(item["path"])}
                if isinstance(item, Mapping) and item.get("path") is not None
                else item
                for item in items
            ]
    openapi = spec.get("openapi")
    if isinstance(openapi, Mapping) and openapi.get("path"):
        spec["openapi"] = {**openapi, "path": move(openapi["path"])}
    for name in _GENERATORS:
        generators = spec.get(name)
        if isinstance(generators, list):
            spec[name] = [_rewrite_generator(gen, move) for gen in generators]


def _rewrite_generator(gen: Any, move: _Mover) -> Any:
    if not isinstance(gen, Mapping):
        return gen
    gen = dict(gen)

    def keyed(entry: Any) -> Any:
        # "key=path" keeps its key; a bare path's key is its name as written, which is kept
        key, sep, path = str(entry).partition("=")
        return f"{key}={move(path)}" if sep else move(entry)

    _map_list(gen, "files", keyed)
    _map_list(gen, "envs", move)
    if gen.get("env"):
        gen["env"] = move(gen["env"])
    return gen


def plan(
    root: Path, scanned: KustomizeScan, *, specs: Mapping[str, Mapping[str, Any]] | None = None
) -> Relocation:
    """The moves the build of ``scanned`` needs (none for a build kustomize takes as it is).

    ``specs``: kustomizations already rewritten for the copy (the generator marks of
    render/generators.py), used instead of the scan's; the result holds every spec either
    rewrote. ``root`` must be resolved, as for the scan.
    """
    result = Relocation()
    folder = f".sealed-gitops-refs-{secrets.token_hex(4)}"
    for kfile, scanned_spec in scanned.specs.items():
        spec = dict((specs or {}).get(kfile, scanned_spec))
        move = _Mover(root, kfile, folder, result.files)
        _rewrite(spec, move)
        if move.moved:
            result.specs[kfile] = spec
        elif specs is not None and kfile in specs:
            result.specs[kfile] = dict(specs[kfile])
    return result
